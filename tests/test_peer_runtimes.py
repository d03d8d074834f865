"""bench/run_qqp_onnx.py: ONNX Runtime and OpenVINO on Hugging Face's ONNX export of the tiny 2-label
checkpoint give the transformers logits (fp32) or nearly the same predictions (OpenVINO bf16); the export
is cached per checkpoint; bench_qqp shows the peer rows, or says why one is skipped."""
import json
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from conftest import TINY_QQP_PAIRS
from helpers import ROOT, run_script
from squeezebert_paddle.qqp_benchmark import cpu_has_bf16

sys.path.insert(0, str(ROOT / "bench"))
import bench_qqp  # noqa: E402
import run_qqp_onnx  # noqa: E402

RUNS = {"onnxruntime-fp32": ("onnxruntime", "fp32"), "openvino-fp32": ("openvino", "fp32")}
if cpu_has_bf16():
    RUNS["openvino-bf16"] = ("openvino", "bf16")


@pytest.fixture(scope="module")
def peer_runs(tiny_qqp, qqp_jsonl, tmp_path_factory):
    root = tmp_path_factory.mktemp("peers")
    cache = root / "cache"

    def one(item):
        name, (runtime, precision) = item
        out = root / f"{name}.json"
        proc = run_script("bench/run_qqp_onnx.py", "--runtime", runtime, "--precision", precision,
                          "--model_path", str(tiny_qqp["dir"]), "--data_path", str(qqp_jsonl),
                          "--limit", str(TINY_QQP_PAIRS), "--batch_size", "8", "--threads", "1",
                          "--warmup", "1", "--no_progress", "--output_json", str(out),
                          env={"XDG_CACHE_HOME": str(cache)}, timeout=400)
        return name, (proc, json.loads(out.read_text()) if proc.returncode == 0 else None)

    first = dict([one(("onnxruntime-fp32", RUNS["onnxruntime-fp32"]))])      # writes the export cache
    with ThreadPoolExecutor(max_workers=2) as pool:
        rest = dict(pool.map(one, [(n, r) for n, r in RUNS.items() if n != "onnxruntime-fp32"]))
    return {**first, **rest, "cache": cache}


@pytest.mark.parametrize("name", [n for n in RUNS if n.endswith("fp32")])
def test_fp32_peers_give_the_transformers_logits(peer_runs, tiny_qqp, name):
    proc, report = peer_runs[name]
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert report["framework"] == RUNS[name][0] and report["precision"] == "fp32"
    assert report["examples"] == TINY_QQP_PAIRS and report["examples_per_second"] > 0
    logits = np.array(report["logits"])
    assert logits.shape == tiny_qqp["logits"].shape
    assert np.abs(logits - tiny_qqp["logits"]).max() <= 1e-4
    assert report["predictions"] == tiny_qqp["logits"].argmax(-1).tolist()


@pytest.mark.skipif("openvino-bf16" not in RUNS, reason="this CPU has no bf16 (AMX or AVX-512 BF16)")
def test_openvino_bf16_mostly_agrees(peer_runs, tiny_qqp):
    proc, report = peer_runs["openvino-bf16"]
    assert proc.returncode == 0, proc.stderr[-2000:]
    logits = np.array(report["logits"])
    assert 0 < np.abs(logits - tiny_qqp["logits"]).max() <= 0.2       # bf16 rounding shows, but small
    agree = np.mean(np.array(report["predictions"]) == tiny_qqp["logits"].argmax(-1))
    assert agree >= 0.9


def test_export_is_cached_once_per_checkpoint(peer_runs):
    exports = list(peer_runs["cache"].glob("squeezebert_paddle/onnx/*/model.onnx"))
    assert len(exports) == 1                         # three runs, one export
    assert not list(peer_runs["cache"].glob("squeezebert_paddle/onnx/.tmp-*"))


def test_bf16_on_onnxruntime_is_refused_in_one_line(tiny_qqp, qqp_jsonl):
    proc = run_script("bench/run_qqp_onnx.py", "--runtime", "onnxruntime", "--precision", "bf16",
                      "--model_path", str(tiny_qqp["dir"]), "--data_path", str(qqp_jsonl), "--no_progress")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].endswith("use --runtime openvino")


def test_bench_qqp_skips_a_peer_whose_package_is_missing(monkeypatch):
    monkeypatch.setattr(bench_qqp, "missing_runtime",
                        lambda runtime: f"--runtime {runtime}: the {runtime} package is not installed")
    row = bench_qqp.run_row("openvino-bf16", None)
    assert row == {"skipped": "--runtime openvino: the openvino package is not installed"}
    table = bench_qqp.table({"openvino-bf16": row}, {})
    assert "| openvino-bf16 | skipped: --runtime openvino: the openvino package is not installed |" in table
    assert bench_qqp.failed_rows({"openvino-bf16": row}, {}) == []


def test_missing_runtime_names_the_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "openvino", None)          # import fails as if not installed
    assert run_qqp_onnx.missing_runtime("openvino") == (
        "--runtime openvino: the openvino package is not installed; `pip install -r requirements.txt` pins it")
    assert run_qqp_onnx.missing_runtime("onnxruntime") is None
