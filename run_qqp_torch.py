"""QQP inference timing in PyTorch (Hugging Face transformers): the reference side of the benchmark.

    python run_qqp_torch.py --model_path models/squeezebert-mnli-headless --device cpu
    python run_qqp_torch.py --random_init --model_type bert --precision bf16 --compile

Same flags, data, batching and report as run_qqp_paddle.py. This process never imports Paddle.
"""
from __future__ import annotations

import sys

from squeezebert_paddle import qqp_benchmark as qb


def load_model(args):
    import transformers
    prefix = "SqueezeBert" if args.model_type == "squeezebert" else "Bert"
    if args.random_init:
        config = (transformers.SqueezeBertConfig(vocab_size=30528) if args.model_type == "squeezebert"
                  else transformers.BertConfig())          # squeezebert-uncased / bert-base-uncased
        return getattr(transformers, f"{prefix}ForSequenceClassification")(config)
    from squeezebert_paddle.checkpoint import CheckpointError, hf_load_error_line, read_json_object
    config_file = args.model_path / "config.json"
    if not config_file.is_file():
        raise qb.UsageError(f"{config_file} not found: --model_path must be a Hugging Face model directory")
    try:
        architectures = read_json_object(config_file).get("architectures") or []
    except CheckpointError as err:
        raise qb.UsageError(f"--model_path: {err}") from None
    head = f"{prefix}ForSequenceClassification"
    cls = getattr(transformers, head if head in architectures else f"{prefix}Model")
    try:
        return cls.from_pretrained(args.model_path)
    except Exception as err:    # noqa: BLE001 (a damaged directory is one line; anything else re-raised)
        line = hf_load_error_line(err)
        if line is None:
            raise
        raise qb.UsageError(f"--model_path {args.model_path}: {line}") from None


def main() -> int:
    p = qb.build_parser("PyTorch")
    p.add_argument("--compile", action="store_true", help="torch.compile the model (dynamic shapes)")
    args = qb.parse_checked(p, "torch")
    import torch
    import transformers
    if args.device == "gpu" and not torch.cuda.is_available():
        raise qb.UsageError("--device gpu: no CUDA GPU is visible to torch; use --device cpu")
    torch.set_num_threads(args.threads)
    device = torch.device("cuda" if args.device == "gpu" else "cpu")
    tokenizer = qb.tokenizer_for(args)
    workload = qb.load_workload(args, tokenizer)
    model = load_model(args).eval().to(device)
    has_head = "ForSequenceClassification" in type(model).__name__
    run_model = torch.compile(model, dynamic=True) if args.compile else model
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(args.precision)

    def forward(batch):
        inputs = {k: torch.from_numpy(getattr(batch, k)).to(device)
                  for k in ("input_ids", "attention_mask", "token_type_ids")}
        with torch.inference_mode(), torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            out = run_model(**inputs)
        return out.logits.float().cpu().numpy() if has_head else None

    sync = torch.cuda.synchronize if args.device == "gpu" else None
    backend = "eager" + ("+compile" if args.compile else "") + ("+autocast" if dtype else "")
    report = qb.common_fields(args, "torch", {"torch": torch.__version__,
                                              "transformers": transformers.__version__}, backend)
    report.update(qb.run(args, workload, forward, sync))
    if args.device == "gpu":
        report["peak_gpu_memory_mb"] = torch.cuda.max_memory_allocated() / 2**20
    qb.finish(args, report)
    return 0


if __name__ == "__main__":
    from squeezebert_paddle.errors import run_main
    sys.exit(run_main(main))
