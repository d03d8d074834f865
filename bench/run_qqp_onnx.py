"""QQP inference timing on the runtimes a user could pick instead of this project: ONNX Runtime and
OpenVINO, running Hugging Face's own ONNX export (torch.onnx) of the same checkpoint.

    python bench/run_qqp_onnx.py --runtime onnxruntime --model_path models/squeezebert-mnli
    python bench/run_qqp_onnx.py --runtime openvino --precision bf16 --model_path models/squeezebert-mnli

Same flags, data, batching and report as run_qqp_torch.py (which loads the checkpoint), so
bench/bench_qqp.py can put these rows beside ours. The export is cached per checkpoint in
$XDG_CACHE_HOME/squeezebert_paddle/onnx/ (~/.cache/... by default) and verified on reuse
(a damaged model.onnx is exported again).
"""
from __future__ import annotations

import atexit
import hashlib
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from squeezebert_paddle import qqp_benchmark as qb  # noqa: E402
from squeezebert_paddle.errors import run_main  # noqa: E402
from squeezebert_paddle.fileio import (atomic_directory, foreign_entry, manifest_problem,  # noqa: E402
                                       read_cache_record, user_cache_dir, write_cache_record)

INPUTS = ("input_ids", "attention_mask", "token_type_ids")
OPSET = 17
ONNX_FILE = "model.onnx"
RECORD_FILE = "export.json"          # what was exported: sizes and digests (fileio.write_cache_record)


def missing_runtime(runtime: str) -> str | None:
    """Why `runtime` cannot run here (its package is not installed), or None."""
    module = {"onnxruntime": "onnxruntime", "openvino": "openvino"}[runtime]
    try:
        __import__(module)
    except ImportError:
        return (f"--runtime {runtime}: the {module} package is not installed; "
                f"`pip install -r requirements.txt` pins it")
    return None


def cache_root() -> Path:
    return user_cache_dir() / "onnx"


def export_key(args, torch_version: str) -> str:
    """Which export a model needs: its files (name, size, mtime), the exporter and the opset."""
    parts = [args.model_type, str(args.random_init), torch_version, str(OPSET)]
    if args.model_path is not None:
        for path in sorted(args.model_path.iterdir()):
            if path.is_file():
                st = path.stat()
                parts.append(f"{path.name}:{st.st_size}:{st.st_mtime_ns}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:20]


def onnx_export(args, say=print) -> Path:
    """Hugging Face's model exported by torch.onnx with dynamic batch and length (cached). A cache is
    reused only when model.onnx still matches the record written with it (`fileio.manifest_problem`);
    otherwise `say` gets one line why, and it is exported again."""
    import torch
    from run_qqp_torch import load_model
    if args.random_init:      # random weights differ per process: nothing to reuse
        key_dir = Path(tempfile.mkdtemp(prefix="squeezebert_onnx_")) / "export"
        atexit.register(shutil.rmtree, key_dir.parent, True)
    else:
        key_dir = cache_root() / export_key(args, torch.__version__)
    problem = cache_problem(key_dir)
    if problem is None:
        return key_dir / ONNX_FILE
    if problem != "none yet":
        say(f"export: the ONNX cache in {key_dir} is not usable ({problem}); exporting again")
    model = load_model(args).eval()
    example = tuple(torch.ones(2, 8, dtype=torch.int64) for _ in INPUTS)
    axes = {name: {0: "batch", 1: "length"} for name in INPUTS}

    def fill(tmp: Path) -> None:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")          # the TorchScript exporter's deprecation notice
            torch.onnx.export(model, example, tmp / ONNX_FILE, input_names=list(INPUTS), output_names=["out"],
                              dynamic_axes=axes | {"out": {0: "batch"}}, opset_version=OPSET, dynamo=False)
        write_cache_record(tmp, RECORD_FILE, opset=OPSET)

    atomic_directory(key_dir, fill)
    return key_dir / ONNX_FILE


def cache_problem(key_dir: Path) -> str | None:
    """Why the export in `key_dir` cannot be reused ("none yet" when there is none), or None. Something
    not ours in its place (a file, a link) is refused: replacing it would lose it."""
    what = foreign_entry(key_dir)
    if what:
        raise qb.UsageError(f"{key_dir} is {what}, not an ONNX export cache; remove it")
    record, problem = read_cache_record(key_dir, RECORD_FILE)
    return problem or manifest_problem(key_dir, record.get("files"), required=(ONNX_FILE,))


def onnxruntime_session(path: Path, args):
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return lambda feed: session.run(None, feed)[0], {"onnxruntime": ort.__version__}


def openvino_model(path: Path, args):
    import openvino as ov
    compiled = ov.Core().compile_model(str(path), "CPU", {
        "INFERENCE_PRECISION_HINT": "bf16" if args.precision == "bf16" else "f32",
        "INFERENCE_NUM_THREADS": args.threads, "PERFORMANCE_HINT": "LATENCY"})
    output = compiled.outputs[0]
    return lambda feed: compiled(feed)[output], {"openvino": ov.__version__}


def main() -> int:
    p = qb.build_parser("ONNX Runtime / OpenVINO")
    p.add_argument("--runtime", choices=("onnxruntime", "openvino"), default="onnxruntime")
    args = qb.parse_checked(p, "torch")
    if args.device != "cpu":
        raise qb.UsageError("--device: the ONNX Runtime / OpenVINO rows are CPU rows; use --device cpu")
    if args.precision == "bf16" and args.runtime == "onnxruntime":
        raise qb.UsageError("--precision bf16: ONNX Runtime's CPU provider runs fp32; use --runtime openvino")
    problem = missing_runtime(args.runtime)
    if problem:
        raise qb.UsageError(problem)
    import torch
    tokenizer = qb.tokenizer_for(args)
    workload = qb.load_workload(args, tokenizer)
    path = onnx_export(args)
    run_onnx, versions = (onnxruntime_session if args.runtime == "onnxruntime" else openvino_model)(path, args)

    def forward(batch):
        out = run_onnx({name: getattr(batch, name) for name in INPUTS})
        return out if out.ndim == 2 else None          # logits; an encoder's hidden states are not compared

    report = qb.common_fields(args, args.runtime, {"torch (export)": torch.__version__, **versions}, "hf-onnx-export")
    report.update(qb.run(args, workload, forward))
    qb.finish(args, report)
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
