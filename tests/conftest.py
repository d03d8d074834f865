"""Shared fixtures: the real test data beside the project, and tiny model configs.

`../shared/data` (or $SQUEEZEBERT_SHARED_DATA) holds the real vocab and QQP/GLUE samples. On a user's
clone without it the tests that need it skip with a reason; under CI (CI=true) they fail instead, so a
missing fixture can never turn a parity test into a silent skip.
"""
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SHARED_DATA = Path(os.environ.get("SQUEEZEBERT_SHARED_DATA", ROOT.parent / "shared" / "data"))


def _require(path: Path) -> Path:
    if path.exists():
        return path
    message = (f"test data {path} not found: put the shared data beside the project or set "
               f"SQUEEZEBERT_SHARED_DATA")
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message + " (CI=true: missing fixtures fail, they never skip)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return _require(SHARED_DATA)


@pytest.fixture(scope="session")
def vocab_file(shared_data) -> Path:
    return _require(shared_data / "vocab" / "bert-base-uncased-vocab.txt")


@pytest.fixture(scope="session")
def qqp_jsonl(shared_data) -> Path:
    return _require(shared_data / "qqp" / "qqp_pairs.jsonl")


@pytest.fixture(scope="session")
def glue_dir(shared_data) -> Path:
    return _require(shared_data / "glue")


# -- full-size random-weight checkpoints of the three released layouts, built once per session -----

DEMO_NAMES = ("squeezebert-uncased", "squeezebert-mnli", "squeezebert-mnli-headless")


@pytest.fixture(scope="session")
def demo_hf(tmp_path_factory, vocab_file) -> dict:
    """Pristine Hugging Face directories (no Paddle files) at the released configurations, random
    weights (seeds 0, 1, 2), written by squeezebert_paddle.demo. Never modify them."""
    from squeezebert_paddle.demo import write_demo_checkpoint
    root = tmp_path_factory.mktemp("demo_hf")
    return {name: write_demo_checkpoint(name, root / name, vocab_file, seed=seed)
            for seed, name in enumerate(DEMO_NAMES)}


@pytest.fixture(scope="session")
def demo_converted(tmp_path_factory, demo_hf) -> dict:
    """The demo directories converted in place by the CLI (HF and Paddle files side by side, as
    compare.py wants them). The HF files are hard links to demo_hf's. Never modify them."""
    from helpers import link_tree, run_script
    root = tmp_path_factory.mktemp("demo_converted")
    dirs = {name: link_tree(path, root / name) for name, path in demo_hf.items()}
    proc = run_script("convert_torch_to_paddle.py", "--models_root", root)
    assert proc.returncode == 0, proc.stderr
    dirs["_stdout"] = proc.stdout
    return dirs


@pytest.fixture(scope="session")
def demo_paddle_only(tmp_path_factory, demo_converted) -> dict:
    """Paddle-only model directories (model_config.json, model_state.pdparams, vocab.txt)."""
    from helpers import link_tree
    root = tmp_path_factory.mktemp("demo_paddle")
    keep = {"model_config.json", "model_state.pdparams", "vocab.txt"}
    return {name: link_tree(demo_converted[name], root / name,
                            skip={p.name for p in demo_converted[name].iterdir()} - keep)
            for name in DEMO_NAMES}


class _FullSizeModels:
    """Loads each full-size demo model once per session (loading 51M parameters takes seconds):
    .hf(name) from the pristine HF directory with transformers, .ours(name) from the converted one."""

    def __init__(self, demo_hf, demo_converted):
        self._hf_dirs, self._pd_dirs, self._cache = demo_hf, demo_converted, {}

    def _get(self, key, load):
        if key not in self._cache:
            self._cache[key] = load()
        return self._cache[key]

    def hf(self, name):
        import transformers
        from squeezebert_paddle.demo import ARCHITECTURE
        return self._get(("hf", name), lambda: getattr(transformers, ARCHITECTURE[name]).from_pretrained(
            self._hf_dirs[name]).eval())

    def ours(self, name):
        from squeezebert_paddle import modeling
        from squeezebert_paddle.demo import ARCHITECTURE
        return self._get(("ours", name), lambda: getattr(modeling, ARCHITECTURE[name]).from_pretrained(
            self._pd_dirs[name]))


@pytest.fixture(scope="session")
def full_models(demo_hf, demo_converted) -> _FullSizeModels:
    return _FullSizeModels(demo_hf, demo_converted)
