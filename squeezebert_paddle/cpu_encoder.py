"""SqueezeBERT inference on the CPU through the project's own kernels (`kernels/inference_cpu.cc`).

The packed formulation of `packed_encoder.py` (per-token work on the real tokens only), with the
whole encoder in one custom op: oneDNN matmuls (AMX in bf16) with the bias, GELU and residual fused
in, and attention per sequence over its real tokens. The embeddings, pooler and classifier stay
Paddle ops (a few per batch). `run_qqp_paddle.py --backend kernels` runs it.

Precision "fp32" matches the reference model to ~1e-6; "bf16" rounds the matmul inputs and weights
to bf16 and keeps the softmax, LayerNorm and residual stream in fp32.

Like the exported program, the pooled output of a row whose first position is padding is the
pooler applied to zeros (the reference would pool a padded query position).
"""
from __future__ import annotations

import numpy as np
import paddle

from . import cpu_kernels
from .modeling import SqueezeBertForSequenceClassification
from .packed_encoder import PackedAttention, product_weight

PRECISIONS = ("fp32", "bf16")
ACTIVATIONS = ("gelu", "gelu_python")      # exact (erf) GELU: what the kernels fuse into the inner projection


def config_problem(config) -> str | None:
    """Why the kernels cannot compute a model with this config (one line), or None."""
    if config.hidden_act not in ACTIVATIONS:
        return (f"hidden_act {config.hidden_act!r}: the CPU inference kernels compute the exact GELU only "
                f"({', '.join(ACTIVATIONS)})")
    heads, hidden = config.num_attention_heads, config.hidden_size
    same = config.q_groups == config.k_groups == config.v_groups
    qkv_groups = config.q_groups if same else 1         # as PackedAttention forms the Q, K, V product
    if hidden % heads or (hidden // qkv_groups) % (hidden // heads):
        return "an attention head spans two Q groups, which the CPU inference kernels do not split"
    return None


def available() -> bool:
    """Whether the kernels build and load here (`unavailable_reason()` says why not)."""
    return cpu_kernels.load_inference() is not None


def unavailable_reason() -> str | None:
    return None if available() else cpu_kernels.inference_failure()


def layer_weights(layer) -> list[paddle.Tensor]:
    """One SqueezeBertModule's 12 tensors in the order the op reads (see inference_cpu.cc)."""
    qkv = PackedAttention(layer.attention)
    post, inner, outer = layer.post_attention.conv1d, layer.intermediate.conv1d, layer.output.conv1d
    norm1, norm2 = layer.post_attention.layernorm, layer.output.layernorm
    return [qkv.qkv_weight, qkv.qkv_bias.reshape([-1]), product_weight(post), post.bias, norm1.weight, norm1.bias,
            product_weight(inner), inner.bias, product_weight(outer), outer.bias, norm2.weight, norm2.bias]


def packed_inputs(input_ids, attention_mask, token_type_ids):
    """The real tokens of a [B, L] batch, row after row: (ids, positions, types) [T] and offsets [B + 1]."""
    mask = np.asarray(attention_mask) != 0
    _, positions = np.nonzero(mask)
    offsets = np.concatenate([[0], np.cumsum(mask.sum(axis=1))]).astype(np.int64)
    types = np.zeros_like(input_ids) if token_type_ids is None else np.asarray(token_type_ids)
    return (np.asarray(input_ids)[mask].astype(np.int64), positions.astype(np.int64),
            types[mask].astype(np.int64), offsets)


class CpuEncoder:
    """`model` (a SqueezeBertModel or SqueezeBertForSequenceClassification, eval) as a callable on
    int arrays [B, L] -> the logits (or, without a head, the pooled output), float32 numpy."""

    def __init__(self, model, precision: str = "fp32", threads: int = 1):
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, not {precision!r}")
        self._ops = cpu_kernels.load_inference()
        if self._ops is None:
            raise RuntimeError(f"the CPU inference kernels are unavailable: {cpu_kernels.inference_failure()}")
        base = model.base_model
        problem = config_problem(base.config)
        if problem:
            raise ValueError(problem)
        self.embeddings, self.pooler = base.embeddings, base.pooler
        self.classifier = model.classifier if isinstance(model, SqueezeBertForSequenceClassification) else None
        self.threads = threads
        config = base.config
        with paddle.no_grad():
            weights = [w.astype("float32").cpu() for layer in base.encoder.layers for w in layer_weights(layer)]
            self._handle = self._ops.sb_infer_pack(weights, config.num_attention_heads, config.layer_norm_eps,
                                                   precision == "bf16")
        self.precision = precision

    def __del__(self):
        handle = getattr(self, "_handle", None)
        if handle is not None:
            self._ops.sb_infer_release(handle)

    def implementations(self, rows: int = 256) -> list[str]:
        """The matmul implementations oneDNN picks for the four projections at `rows` tokens."""
        names = self._ops.sb_infer_implementations(self._handle, rows)
        return bytes(names.numpy()).decode().split()

    def __call__(self, input_ids, attention_mask, token_type_ids=None) -> np.ndarray:
        ids, positions, types, offsets = packed_inputs(input_ids, attention_mask, token_type_ids)
        if len(ids) == 0:                                   # no real token at all: every row pools zeros
            hidden = paddle.zeros([0, self.embeddings.word_embeddings.weight.shape[1]])
            return self._head(first_tokens(hidden, offsets, attention_mask))
        with paddle.no_grad():
            e = self.embeddings
            x = e.LayerNorm(e.word_embeddings(paddle.to_tensor(ids)) + e.position_embeddings(paddle.to_tensor(positions))
                            + e.token_type_embeddings(paddle.to_tensor(types)))
            hidden = self._ops.sb_infer_encode(x, paddle.to_tensor(offsets), self._handle, self.threads)
        return self._head(first_tokens(hidden, offsets, attention_mask))

    def _head(self, first: paddle.Tensor) -> np.ndarray:
        """Pooler (and classifier) on the first tokens [B, H]."""
        with paddle.no_grad():
            pooled = self.pooler.dense(first).tanh()
            out = pooled if self.classifier is None else self.classifier(pooled)
        return out.numpy()


def first_tokens(hidden, offsets, attention_mask):
    """Each row's hidden state at position 0: [B, H]; zeros where position 0 is padding (or the row empty)."""
    first = np.asarray(attention_mask)[:, 0] != 0
    rows = np.where(first, offsets[:-1], 0)
    if hidden.shape[0] == 0:
        return paddle.zeros([len(rows), hidden.shape[1]], dtype=hidden.dtype)
    return paddle.gather(hidden, paddle.to_tensor(rows)) * paddle.to_tensor(first[:, None].astype(np.float32))
