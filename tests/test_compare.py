"""compare.py: PASS with the diffs on the converted demo checkpoints, FAIL (exit 1) on a tampered
weight, and --tolerance decides."""
import json
import re
import shutil

import pytest

import compare
from helpers import link_tree, run_script
from squeezebert_paddle import parity
from squeezebert_paddle.checkpoint import read_pdparams, write_pdparams

DIFF_LINE = re.compile(r"^\s+(\w+)\s+mean \|diff\| (\S+)\s+max \|diff\| (\S+)\s+(ok|FAIL)$")
TAMPERED_KEY = "encoder.layers.5.intermediate.conv1d.weight"


def _diffs(stdout):
    return [(m.group(1), float(m.group(3)), m.group(4))
            for m in map(DIFF_LINE.match, stdout.splitlines()) if m]


def test_compare_passes_on_all_converted_demo_checkpoints(demo_converted, tmp_path):
    root = demo_converted["squeezebert-mnli"].parent
    proc = run_script("compare.py", "--models_root", root, "--repeats", "1", "--output_json", tmp_path / "p.json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert out.count("=> PASS (tolerance 1e-05)") == 3
    assert out.count("tokenizer ids identical: yes") == 3
    assert out.count("RANDOM demo weights") == 3
    for name in ("squeezebert-uncased", "squeezebert-mnli", "squeezebert-mnli-headless"):   # the start lines
        assert (f"model: {root / name} (RANDOM WEIGHTS from --demo: timings are real, predictions are not)"
                in out.splitlines())
    assert "3 of 3 models match within 1e-05" in out
    diffs = _diffs(out)
    names = sorted(name for name, _, _ in diffs)
    assert names.count("sequence_output") == 3 and names.count("pooled_output") == 3
    assert "prediction_scores" in names and "logits" in names
    # the CPU inference kernels (run_qqp_paddle.py --backend kernels) on the two checkpoints they run
    assert names.count("kernels_logits") == 1 and names.count("kernels_pooled_output") == 1
    assert all(flag == "ok" and 0 < worst <= 1e-5 for _, worst, flag in diffs), diffs
    # the JSON report holds the same figures as the printed lines
    report = json.loads((tmp_path / "p.json").read_text())
    assert report["passed"] == 3 and report["tolerance"] == 1e-5 and all(m["ok"] for m in report["models"])
    printed = sorted(f"{worst:.3e}" for _, worst, _ in diffs)
    written = sorted(f"{d['max_abs_diff']:.3e}" for m in report["models"] for d in m["diffs"].values())
    assert printed == written
    print("\n" + out)


@pytest.fixture(scope="module")
def tampered_dir(demo_converted, tmp_path_factory):
    source = demo_converted["squeezebert-mnli-headless"]
    target = link_tree(source, tmp_path_factory.mktemp("tampered") / "squeezebert-mnli-headless",
                       skip={"model_state.pdparams"})
    state = read_pdparams(source / "model_state.pdparams")
    state[TAMPERED_KEY] = state[TAMPERED_KEY] + 1e-2
    write_pdparams(target / "model_state.pdparams", state)
    return target


@pytest.fixture(scope="module")
def tampered_result(tampered_dir):
    """compare_dir on the tampered directory, once (full-size forward passes are slow on a shared
    2-core machine); the main() calls below reuse it, so they differ only in their arguments."""
    return parity.compare_dir(tampered_dir, warmup=0, repeats=1)


@pytest.fixture
def main_with_cache(tampered_dir, tampered_result, monkeypatch, capsys):
    def cached(model_dir, **kwargs):
        assert str(model_dir) == str(tampered_dir)
        return tampered_result
    monkeypatch.setattr(parity, "compare_dir", cached)

    def run(*argv):
        code = compare.main(["--model_dir", str(tampered_dir), *map(str, argv)])
        return code, capsys.readouterr().out
    return run


def test_tampered_weight_fails(tampered_result, main_with_cache):
    assert tampered_result.tokenizers_agree
    code, out = main_with_cache()
    assert code == 1
    assert "=> FAIL (tolerance 1e-05)" in out and "0 of 1 models match" in out
    diffs = {name: (worst, flag) for name, worst, flag in _diffs(out)}
    assert diffs["sequence_output"][1] == "FAIL" and diffs["sequence_output"][0] > 1e-3


def test_tolerance_is_respected(tampered_result, main_with_cache):
    worst = tampered_result.max_diff()
    code, out = main_with_cache("--tolerance", f"{worst * 2:g}")
    assert code == 0 and "=> PASS" in out and "1 of 1 models match" in out
    code, out = main_with_cache("--tolerance", f"{worst / 2:g}")
    assert code == 1 and "=> FAIL" in out


def test_no_converted_models_is_an_error(tmp_path):
    proc = run_script("compare.py", "--models_root", tmp_path)
    assert proc.returncode == 1
    assert "compare.py: error: no converted models" in proc.stderr and "convert_torch_to_paddle.py" in proc.stderr


def test_directory_without_paddle_files_is_reported(demo_hf, capsys):
    code = compare.main(["--model_dir", str(demo_hf["squeezebert-mnli"]), "--repeats", "1"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("compare.py: error: ") and "model_config.json" in err and "convert_torch_to_paddle.py" in err


def test_a_paddle_only_directory_says_how_to_get_the_reference(demo_converted, tmp_path, capsys):
    """A Paddle model without the Hugging Face files (run_glue.py's output): one line that says what is
    missing and how to make a directory holding both, not transformers' list of file names."""
    paddle_only = tmp_path / "paddle_only"
    paddle_only.mkdir()
    for name in ("model_state.pdparams", "model_config.json", "vocab.txt"):
        shutil.copyfile(demo_converted["squeezebert-mnli"] / name, paddle_only / name)
    assert compare.main(["--model_path", str(paddle_only), "--repeats", "1"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"compare.py: error: {paddle_only}: no Hugging Face checkpoint")
    assert f"--reverse --model_dir {paddle_only} --output_dir NEW" in err
