"""QQP inference timing in Paddle: SqueezeBERT (this package) or BERT (PaddleNLP).

    python run_qqp_paddle.py --model_path models/squeezebert-mnli-headless --device cpu
    python run_qqp_paddle.py --model_path models/squeezebert-mnli --precision bf16
    python run_qqp_paddle.py --random_init --model_type bert --backend dygraph

Backends: `kernels` (SqueezeBERT on the CPU through the project's own kernels, cpu_encoder.py: the
fastest CPU path), `inference` (exported once with paddle.jit.save, cached in the model directory, run
with paddle.inference: oneDNN on CPU, CUDA/TensorRT on GPU) and `dygraph` (eager). The default, `auto`,
takes the kernels for SqueezeBERT on the CPU in fp32 or bf16, and the exported predictor
otherwise or where the kernels cannot run (it prints why). Same flags, data, batching and report as
run_qqp_torch.py.
"""
from __future__ import annotations

import logging
import shutil
import sys
import tempfile
import warnings

from squeezebert_paddle import qqp_benchmark as qb


def build_model(args):
    """The Paddle model (eval mode) and whether it ends in a classification head."""
    if args.model_type == "squeezebert":
        from squeezebert_paddle import modeling
        from squeezebert_paddle.checkpoint import CONFIG_FILE, CheckpointError
        from squeezebert_paddle.configuration import RELEASED_CONFIGS, SqueezeBertConfig
        if args.random_init:
            config = SqueezeBertConfig(**RELEASED_CONFIGS["squeezebert-uncased"], num_labels=2)
            return modeling.SqueezeBertForSequenceClassification(config).eval()
        try:
            config = SqueezeBertConfig.from_json_file(args.model_path / CONFIG_FILE)
            arch = (config.extra.get("architectures") or ["SqueezeBertModel"])[0]
            cls = (modeling.SqueezeBertForSequenceClassification
                   if arch == "SqueezeBertForSequenceClassification" else modeling.SqueezeBertModel)
            return cls.from_pretrained(args.model_path)
        except (CheckpointError, FileNotFoundError, ValueError) as err:
            raise qb.UsageError(str(err)) from None
    if args.backend == "kernels":        # (random init, checked in main): BERT-base is SqueezeBERT with groups 1
        from squeezebert_paddle import modeling
        from squeezebert_paddle.configuration import GROUP_FIELDS, RELEASED_CONFIGS, SqueezeBertConfig
        shape = dict(RELEASED_CONFIGS["squeezebert-uncased"], **dict.fromkeys(GROUP_FIELDS, 1), vocab_size=30522)
        return modeling.SqueezeBertForSequenceClassification(SqueezeBertConfig(**shape, num_labels=2)).eval()
    with warnings.catch_warnings():
        # PaddleNLP imports pip, whose setuptools shim warns about distutils; and datasets (imported by
        # PaddleNLP) logs its torch version at INFO, which Paddle's root log handler shows.
        warnings.filterwarnings("ignore", message="Setuptools is replacing distutils")
        logging.getLogger("datasets").setLevel(logging.WARNING)
        from paddlenlp.transformers import BertConfig, BertForSequenceClassification, BertModel
    if args.random_init:
        return BertForSequenceClassification(BertConfig(num_labels=2)).eval()   # bert-base-uncased shape
    # Built from its config and filled through the safe readers: PaddleNLP's own from_pretrained would
    # unpickle model_state.pdparams whole, running whatever a crafted file holds.
    from squeezebert_paddle.checkpoint import CheckpointError, load_paddlenlp_model, read_json_object
    try:
        architectures = read_json_object(args.model_path / "config.json").get("architectures") or []
        cls = BertForSequenceClassification if "BertForSequenceClassification" in architectures else BertModel
        return load_paddlenlp_model(cls, args.model_path)
    except CheckpointError as err:        # (its message names the file)
        raise qb.UsageError(f"--model_path: {err}") from None


def predictor_for(args, model):
    """Export (cached in the model directory for SqueezeBERT) and build a paddle.inference predictor."""
    from squeezebert_paddle.inference import Predictor, cached_export, export
    max_length = model.config.max_position_embeddings
    if args.model_type == "squeezebert" and not args.random_init:
        prefix, reused = cached_export(args.model_path)
        print(f"export: {'reused cache' if reused else 'written'} at {prefix.parent}")
        return Predictor(prefix, args.device, args.precision, args.threads, args.tensorrt, max_length=max_length)
    tmp = tempfile.mkdtemp(prefix="qqp_export_")   # uncached export: the predictor has read it, remove it
    try:
        return Predictor(export(model, tmp), args.device, args.precision, args.threads, args.tensorrt,
                         max_length=max_length)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def check_export_location(args) -> None:
    """Before any work: the export cache must be readable as it is, or writable somewhere (the model
    directory, else the user cache directory), and its place in the model directory free of a file or link."""
    if args.backend != "inference" or args.model_type != "squeezebert" or args.random_init:
        return
    from squeezebert_paddle.fileio import unwritable_reason
    from squeezebert_paddle.inference import CACHE_DIR, META_FILE, cache_location_problem, export_cache_root
    odd = cache_location_problem(args.model_path / CACHE_DIR)
    if odd:
        raise qb.UsageError(f"--model_path: {odd}")
    in_model_dir, in_user_cache = unwritable_reason(args.model_path), unwritable_reason(export_cache_root())
    if in_model_dir and in_user_cache and not (args.model_path / CACHE_DIR / META_FILE).is_file():
        raise qb.UsageError(f"--model_path {args.model_path}: no export cache and nowhere to write one "
                            f"({in_model_dir}; {in_user_cache}); set XDG_CACHE_HOME to a writable directory "
                            f"or use --backend dygraph")


def auto_backend(args) -> str:
    """What --backend auto means for these flags, before the model is read: the kernels for SqueezeBERT
    on the CPU in fp32 or bf16, else the exported predictor."""
    kernels = (args.device == "cpu" and args.precision in ("fp32", "bf16") and args.model_type == "squeezebert"
               and not args.tensorrt)
    return "kernels" if kernels else "inference"


def kernels_problem(model) -> tuple[str, type] | None:
    """Why the CPU kernels cannot run `model` here (one line) and the error that says so under --backend
    kernels (a usage error where the model is the cause), or None."""
    from squeezebert_paddle import cpu_encoder
    from squeezebert_paddle.errors import ExpectedError
    if not cpu_encoder.available(quiet=True):        # (the NOTE or the error below says why, once)
        return f"the CPU inference kernels are unavailable ({cpu_encoder.unavailable_reason()})", ExpectedError
    problem = cpu_encoder.config_problem(model.base_model.config)
    return (problem, qb.UsageError) if problem else None


def kernels_forward(args, model, has_head: bool):
    from squeezebert_paddle import cpu_encoder
    encoder = cpu_encoder.CpuEncoder(model, args.precision, args.threads)

    def forward(batch):
        out = encoder(batch.input_ids, batch.attention_mask, batch.token_type_ids)
        return out if has_head else None
    return forward


def dygraph_forward(args, model):
    import paddle
    dtype = {"bf16": "bfloat16", "fp16": "float16"}.get(args.precision)

    def forward(batch):
        inputs = {k: paddle.to_tensor(getattr(batch, k)) for k in ("input_ids", "attention_mask", "token_type_ids")}
        with paddle.no_grad(), paddle.amp.auto_cast(enable=dtype is not None, dtype=dtype or "float16", level="O1"):
            out = model(**inputs)
        return None if isinstance(out, tuple) else out.astype("float32").numpy()
    return forward


def main() -> int:
    p = qb.build_parser("Paddle")
    p.add_argument("--backend", choices=("auto", "kernels", "inference", "dygraph"), default="auto",
                   help="kernels: the project's own CPU kernels (SqueezeBERT, CPU, fp32/bf16; fastest on CPU); "
                        "inference: the exported program in a paddle.inference predictor (oneDNN on CPU, CUDA "
                        "or TensorRT on GPU); dygraph: the Paddle model as it is; auto (default): kernels where "
                        "they can run the job, else inference")
    p.add_argument("--tensorrt", action="store_true", help="GPU inference through TensorRT")
    args = qb.parse_checked(p, "paddle")
    automatic = args.backend == "auto"
    if automatic:
        args.backend = auto_backend(args)
    import paddle
    if args.device == "gpu" and not paddle.device.is_compiled_with_cuda():
        raise qb.UsageError("--device gpu: this Paddle build has no CUDA support (install paddlepaddle-gpu) "
                            "or no GPU is visible; use --device cpu")
    if args.tensorrt and (args.device != "gpu" or args.backend != "inference"):
        raise qb.UsageError("--tensorrt needs --device gpu and --backend inference")
    if args.backend == "dygraph" and args.device == "cpu" and args.precision == "bf16":
        # paddle.amp.auto_cast only acts on GPU/XPU/custom places: on CPU it would silently run fp32.
        raise qb.UsageError("--precision bf16 with --backend dygraph: Paddle's AMP does nothing on CPU (it "
                            "would run fp32); use --backend inference for oneDNN bf16")
    if args.backend == "kernels" and (args.device != "cpu" or args.precision not in ("fp32", "bf16")
                                      or (args.model_type == "bert" and not args.random_init)):
        raise qb.UsageError("--backend kernels runs SqueezeBERT on the CPU in fp32 or bf16 (BERT-base only as "
                            "--random_init: SqueezeBERT with groups 1); use --backend inference for --device "
                            "gpu, a BERT checkpoint or fp16")
    check_export_location(args)
    paddle.set_device("gpu" if args.device == "gpu" else "cpu")
    paddle.set_flags({"FLAGS_use_mkldnn": args.device == "cpu"}) if args.backend == "dygraph" else None
    tokenizer = qb.tokenizer_for(args)
    workload = qb.load_workload(args, tokenizer)
    model = build_model(args)
    has_head = "ForSequenceClassification" in type(model).__name__
    problem = kernels_problem(model) if args.backend == "kernels" else None
    if problem and not automatic:
        reason, error = problem
        raise error(f"--backend kernels: {reason}; use --backend inference")
    if problem:               # --backend auto: the exported predictor runs what the kernels cannot
        print(f"NOTE: backend inference, not kernels: {problem[0]}", flush=True)
        args.backend = "inference"
        check_export_location(args)
    if args.backend == "inference":
        predictor = predictor_for(args, model)
        forward = lambda b: (lambda out: out.astype("float32") if has_head else None)(  # noqa: E731
            predictor(b.input_ids, b.attention_mask, b.token_type_ids))
        sync = None   # predictor.run() returns after the outputs are copied to the host
        # our SqueezeBERT export skips the padding (BERT's does not): count what it executes
        packed_multiple = predictor.pad_multiple if args.model_type == "squeezebert" else None
    elif args.backend == "kernels":
        forward, sync, packed_multiple = kernels_forward(args, model, has_head), None, None
    else:
        packed_multiple = None
        paddle.base.core.set_num_threads(args.threads)   # dygraph's math threads (default: 1)
        if args.device == "cpu" and args.model_type == "squeezebert":
            from squeezebert_paddle import cpu_kernels
            cpu_kernels.set_threads(args.threads)        # the fused kernels' OpenMP threads
            model.use_fused_cpu_kernels()
        forward = dygraph_forward(args, model)
        sync = paddle.device.synchronize if args.device == "gpu" else None
    from importlib.metadata import version   # not `import paddlenlp`: it would import torch too
    report = qb.common_fields(args, "paddle", {"paddle": paddle.__version__, "paddlenlp": version("paddlenlp")},
                              args.backend + ("+tensorrt" if args.tensorrt else ""))
    report.update(qb.run(args, workload, forward, sync, packed_multiple=packed_multiple,
                         per_sequence=args.backend == "kernels"))
    qb.finish(args, report)
    return 0


if __name__ == "__main__":
    from squeezebert_paddle.errors import run_main
    sys.exit(run_main(main))
