"""Shared fixtures: the vocab and QQP/GLUE data the tests read, and tiny model configs.

The vocab is the one shipped in the package (the checkpoints' own vocab.txt, sha256 checked in
test_assets.py). QQP pairs and GLUE files come from the real data beside the project,
`../shared/data` (or $SQUEEZEBERT_SHARED_DATA), when it is there; on a user's clone without it,
tests that only need realistic pairs or GLUE-format files run on the sample shipped in
squeezebert_paddle/assets/glue_sample. Tests that check the real files themselves (`real_*`
fixtures) skip without them, and under CI (CI=true) fail instead, so a missing fixture can never turn
a parity test into a silent skip. The end of the run says how many skipped for that reason.
"""
import csv
import json
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from squeezebert_paddle.assets import SAMPLE_GLUE_DIR, VOCAB_FILE  # noqa: E402

SHARED_DATA = Path(os.environ.get("SQUEEZEBERT_SHARED_DATA") or ROOT.parent / "shared" / "data")   # empty = unset
MISSING_DATA = "needs the real test data"       # starts every skip reason counted in the summary line


def _require(path: Path) -> Path:
    if path.exists():
        return path
    message = (f"{MISSING_DATA} {path} (not part of a clone): put the shared data beside the project "
               f"or set SQUEEZEBERT_SHARED_DATA")
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message + " (CI=true: missing fixtures fail, they never skip)")
    pytest.skip(message)


def _skip_reason(report) -> str:
    longrepr = report.longrepr
    return longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)


def pytest_unconfigure(config):
    """The last line of the run: how many tests skipped because ../shared/data is missing, and why.
    (Here rather than in pytest_terminal_summary, whose output comes before pytest's own summary.)"""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None or not reporter.stats:
        return
    skipped = [r for r in reporter.stats.get("skipped", []) if MISSING_DATA in _skip_reason(r)]
    if not skipped:
        reporter.write_line(f"no test skipped for missing real data ({SHARED_DATA})")
        return
    count = f"{len(skipped)} test{'s' if len(skipped) > 1 else ''}"
    reporter.write_line(
        f"{count} skipped: {'they check' if len(skipped) > 1 else 'it checks'} the real QQP/GLUE files in "
        f"{SHARED_DATA} (the 8,999 QQP pairs, GLUE's own rows), which a clone does not have; everything "
        f"else ran on the vocab and GLUE-format sample shipped in squeezebert_paddle/assets. Set "
        f"SQUEEZEBERT_SHARED_DATA to run them.")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return _require(SHARED_DATA)


@pytest.fixture(scope="session")
def vocab_file() -> Path:
    """The uncased WordPiece vocab of all three checkpoints, shipped with the package."""
    return VOCAB_FILE


@pytest.fixture(scope="session")
def real_qqp_jsonl(shared_data) -> Path:
    """The 8,999 real QQP pairs as JSON lines (sentence1, sentence2, label)."""
    return _require(shared_data / "qqp" / "qqp_pairs.jsonl")


@pytest.fixture(scope="session")
def real_glue_dir(shared_data) -> Path:
    """GLUE's own rows: <TASK>/{train,dev}.tsv of CoLA, SST-2, MRPC, STS-B, QQP, MNLI, RTE."""
    return _require(shared_data / "glue")


@pytest.fixture(scope="session")
def qqp_jsonl(tmp_path_factory) -> Path:
    """Labelled QQP pairs as JSON lines: the real ones when ../shared/data is here, else the shipped
    sample's dev then train pairs (500), written out in the same line format."""
    real = SHARED_DATA / "qqp" / "qqp_pairs.jsonl"
    if real.is_file():
        return real
    path = tmp_path_factory.mktemp("qqp_sample") / "qqp_sample_pairs.jsonl"
    with open(path, "w", encoding="utf-8") as out:
        for name in ("dev.tsv", "train.tsv"):
            with open(SAMPLE_GLUE_DIR / "QQP" / name, encoding="utf-8", newline="") as f:
                for row in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
                    record = {"sentence1": row["question1"], "sentence2": row["question2"],
                              "label": int(row["is_duplicate"])}
                    out.write(json.dumps(record) + "\n")
    return path


@pytest.fixture(scope="session")
def glue_dir() -> Path:
    """A directory of GLUE task directories: the real data when ../shared/data is here, else the
    shipped sample (every task, train/dev/test). Never write into it."""
    real = SHARED_DATA / "glue"
    return real if real.is_dir() else SAMPLE_GLUE_DIR


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
        from squeezebert_paddle.configuration import RELEASED_ARCHITECTURES as ARCHITECTURE
        return self._get(("hf", name), lambda: getattr(transformers, ARCHITECTURE[name]).from_pretrained(
            self._hf_dirs[name]).eval())

    def ours(self, name):
        from squeezebert_paddle import modeling
        from squeezebert_paddle.configuration import RELEASED_ARCHITECTURES as ARCHITECTURE
        return self._get(("ours", name), lambda: getattr(modeling, ARCHITECTURE[name]).from_pretrained(
            self._pd_dirs[name]))


@pytest.fixture(scope="session")
def full_models(demo_hf, demo_converted) -> _FullSizeModels:
    return _FullSizeModels(demo_hf, demo_converted)


# -- a tiny 2-label QQP classifier (HF and converted Paddle files side by side), built once ----------

TINY_QQP = dict(vocab_size=30522, hidden_size=64, embedding_size=64, num_attention_heads=4,
                intermediate_size=128, num_hidden_layers=2, max_position_embeddings=128)
TINY_QQP_PAIRS = 40          # reference logits are computed for the first 40 pairs of qqp_jsonl
TINY_QQP_MAX_LEN = 128       # at the benchmark scripts' default --max_seq_len


@pytest.fixture(scope="session")
def tiny_qqp(tmp_path_factory, vocab_file, qqp_jsonl) -> dict:
    """A tiny random-weight SqueezeBertForSequenceClassification with 2 labels (the released group
    layout 4/4/4/1/4/4 at hidden 64), saved by transformers (config.json, model.safetensors, vocab.txt)
    and converted in place (model_config.json, model_state.pdparams). Its classifier is rescaled so
    that on the first 40 QQP pairs the logit margin has median 0 and spread 3: both classes are
    predicted, about half each, so comparing predictions means something.

    Returns {"dir": the directory (never modify it: copy it with helpers.link_tree), "logits": HF's
    logits [40, 2] on those pairs in input order, "config": the config overrides}."""
    import shutil

    import numpy as np
    import torch

    from helpers import hf_model
    from squeezebert_paddle.conversion import convert_hf_dir
    from squeezebert_paddle.data import encode_examples, make_batches, read_pairs, restore_order
    from squeezebert_paddle.tokenizer import SqueezeBertTokenizer

    hf = hf_model("SqueezeBertForSequenceClassification", seed=3, noise=0.1, **TINY_QQP)
    examples, _ = read_pairs(qqp_jsonl)
    tokenizer = SqueezeBertTokenizer(vocab_file)
    encoded = encode_examples(tokenizer, examples[:TINY_QQP_PAIRS], TINY_QQP_MAX_LEN)
    batches = make_batches(encoded, 8, tokenizer.pad_token_id)

    def pooled_and_logits():
        pooled, logits = [], []
        with torch.no_grad():
            for b in batches:
                out = hf.transformer(torch.from_numpy(b.input_ids), torch.from_numpy(b.attention_mask),
                                     torch.from_numpy(b.token_type_ids))
                pooled.append(out.pooler_output.numpy())
                logits.append(hf.classifier(out.pooler_output).numpy())
        return restore_order(batches, pooled), restore_order(batches, logits)

    pooled, _ = pooled_and_logits()
    with torch.no_grad():                  # logits (-m/2, m/2) with the margin m = s (u - median(u))
        u = hf.classifier.weight[1] - hf.classifier.weight[0]
        margin = pooled @ u.numpy()
        scale = 0.5 / float(margin.std())
        hf.classifier.weight.copy_(torch.stack([-u, u]) * (scale / 2))
        shift = scale * float(np.median(margin)) / 2
        hf.classifier.bias.copy_(torch.tensor([shift, -shift]))
    _, logits = pooled_and_logits()

    path = tmp_path_factory.mktemp("tiny_qqp") / "squeezebert-tiny-qqp"
    hf.save_pretrained(path)
    shutil.copyfile(vocab_file, path / "vocab.txt")
    convert_hf_dir(path)
    return {"dir": path, "logits": logits, "config": dict(TINY_QQP)}
