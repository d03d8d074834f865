"""Numeric parity of the Paddle model against Hugging Face's PyTorch SqueezeBERT on the same inputs.

Loads both frameworks' models from one directory holding the HF files (config.json + weights) and the
converted Paddle files (model_config.json + model_state.pdparams), tokenizes a fixed batch of pairs
of different lengths with both tokenizers, runs both, and reports per-output differences and timing;
also the CPU inference kernels' fp32 output (`kernels_logits` / `kernels_pooled_output`) where they apply.
"""
from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# Pairs of different lengths (one long enough to be truncated at 64), accents, CJK, punctuation.
SAMPLE_PAIRS = [
    ("How do I learn Python quickly?", "What is the fastest way to learn Python?"),
    ("Why is the sky blue?", "What makes the sky look blue during the day and red at sunset?"),
    ("Is café au lait the same as a latte?", "Café au lait vs latte: what's the difference?"),
    ("What does 你好 mean?", "How do you say hello in Chinese?"),
    ("Who wrote Hamlet?", "Which playwright wrote the tragedy Hamlet, Prince of Denmark, around 1600? " * 4),
    ("Hi", "Hello"),
]


@dataclass
class ParityResult:
    model_dir: str
    architecture: str
    tokenizers_agree: bool
    diffs: dict[str, tuple[float, float]] = field(default_factory=dict)   # name -> (mean, max)
    torch_ms: float = 0.0
    paddle_ms: float = 0.0

    def max_diff(self) -> float:
        return max(m for _, m in self.diffs.values())

    def ok(self, tolerance: float) -> bool:
        return self.tokenizers_agree and self.max_diff() <= tolerance


def encode_both(model_dir: Path, max_seq_len: int = 64):
    """Tokenize SAMPLE_PAIRS with HF's (slow, reference) tokenizer and ours; return both."""
    import transformers

    from .tokenizer import SqueezeBertTokenizer
    firsts, seconds = zip(*SAMPLE_PAIRS)
    hf_tok = transformers.SqueezeBertTokenizer(str(model_dir / "vocab.txt"))
    ref = hf_tok(list(firsts), list(seconds), max_length=max_seq_len, truncation="longest_first",
                 padding=True, return_tensors="np")
    ours = SqueezeBertTokenizer.from_pretrained(model_dir)(list(firsts), list(seconds),
                                                           max_seq_len=max_seq_len, return_tensors="np")
    return {k: ref[k].astype(np.int64) for k in ("input_ids", "token_type_ids", "attention_mask")}, ours


def _timed(fn, warmup: int, repeats: int) -> tuple[object, float]:
    for _ in range(warmup):
        out = fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return out, statistics.median(times) * 1000


def _stats(a, b) -> tuple[float, float]:
    d = np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64))
    return float(d.mean()), float(d.max())


def kernels_output(pd_model, inputs: dict) -> np.ndarray | None:
    """The CPU inference kernels' fp32 output on `inputs` (cpu_encoder.py: logits of a sequence
    classifier, else the pooled output), or None where they do not apply or cannot be built here."""
    from . import cpu_encoder
    if (type(pd_model).__name__ not in ("SqueezeBertModel", "SqueezeBertForSequenceClassification")
            or cpu_encoder.config_problem(pd_model.base_model.config) or not cpu_encoder.available()):
        return None
    encoder = cpu_encoder.CpuEncoder(pd_model, "fp32", threads=os.cpu_count() or 1)
    return encoder(inputs["input_ids"], inputs["attention_mask"], inputs.get("token_type_ids"))


def compare_dir(model_dir, warmup: int = 2, repeats: int = 5) -> ParityResult:
    import paddle
    import torch
    import transformers

    from . import modeling
    from .checkpoint import CONFIG_FILE, require_model_dir
    from .configuration import SqueezeBertConfig

    model_dir = require_model_dir(model_dir)
    config = SqueezeBertConfig.from_json_file(model_dir / CONFIG_FILE)
    architecture = (config.extra.get("architectures") or ["SqueezeBertModel"])[0]
    ref_inputs, our_inputs = encode_both(model_dir)
    agree = all(np.array_equal(ref_inputs[k], our_inputs[k]) for k in ref_inputs)

    hf_model = getattr(transformers, architecture).from_pretrained(model_dir).eval()
    pd_model = getattr(modeling, architecture).from_pretrained(model_dir)
    hf_base = getattr(hf_model, "transformer", hf_model)
    pd_base = pd_model.base_model
    t_in = {k: torch.from_numpy(v) for k, v in ref_inputs.items()}
    p_in = {k: paddle.to_tensor(v) for k, v in ref_inputs.items()}

    with torch.no_grad():
        hf_out, torch_ms = _timed(lambda: hf_model(**t_in), warmup, repeats)
        hf_b = hf_base(**t_in)
    with paddle.no_grad():
        pd_out, paddle_ms = _timed(lambda: pd_model(**p_in), warmup, repeats)
        pd_b = pd_base(**p_in)

    result = ParityResult(str(model_dir), architecture, agree, torch_ms=torch_ms, paddle_ms=paddle_ms)
    result.diffs["sequence_output"] = _stats(hf_b.last_hidden_state.numpy(), pd_b[0].numpy())
    result.diffs["pooled_output"] = _stats(hf_b.pooler_output.numpy(), pd_b[1].numpy())
    if architecture != "SqueezeBertModel":
        head = (hf_out.logits.numpy() if hasattr(hf_out, "logits") else
                np.stack([hf_out.start_logits.numpy(), hf_out.end_logits.numpy()], -1))
        ours = pd_out.numpy() if not isinstance(pd_out, tuple) else np.stack([t.numpy() for t in pd_out], -1)
        name = "prediction_scores" if architecture == "SqueezeBertForMaskedLM" else "logits"
        result.diffs[name] = _stats(head, ours)
    kernels = kernels_output(pd_model, ref_inputs)       # run_qqp_paddle.py --backend kernels' path
    if kernels is not None:
        classifier = architecture == "SqueezeBertForSequenceClassification"
        reference = head if classifier else hf_b.pooler_output.numpy()
        result.diffs["kernels_" + ("logits" if classifier else "pooled_output")] = _stats(reference, kernels)
    return result
