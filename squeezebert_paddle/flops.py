"""Analytic forward FLOPs of SqueezeBERT and BERT encoders on padded batches (framework-free).

Counts multiply-adds as 2 FLOPs in the projections (grouped 1x1 convs or dense layers) and in the two
attention products; embeddings, LayerNorm, softmax and activations are ignored (a few percent).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EncoderShape:
    hidden: int = 768
    intermediate: int = 3072
    layers: int = 12
    # groups of q, k, v, post-attention, intermediate, output projections (1 = dense, as in BERT)
    groups: tuple[int, int, int, int, int, int] = (1, 1, 1, 1, 1, 1)


SQUEEZEBERT = EncoderShape(groups=(4, 4, 4, 1, 4, 4))
BERT_BASE = EncoderShape()


def projection_flops(shape: EncoderShape) -> float:
    """FLOPs of the six projections of every layer, per token."""
    h, i = shape.hidden, shape.intermediate
    gq, gk, gv, gp, gi, go = shape.groups
    return 2 * shape.layers * (h * h / gq + h * h / gk + h * h / gv + h * h / gp + h * i / gi + i * h / go)


def attention_flops(shape: EncoderShape, batch: int, length: int) -> float:
    """FLOPs of QK^T and probs @ V over a [batch, length] grid, all layers."""
    return 2 * 2 * shape.layers * batch * length * length * shape.hidden


def forward_flops(shape: EncoderShape, batch: int, length: int) -> float:
    """FLOPs of one forward pass over a [batch, length] padded batch."""
    return float(batch * length * projection_flops(shape) + attention_flops(shape, batch, length))


def packed_flops(shape: EncoderShape, batch: int, length: int, tokens: int, multiple: int) -> float:
    """FLOPs the packed inference path executes: projections on the `tokens` real tokens only,
    attention on the grid padded to a multiple of `multiple` (the predictor's, see inference.pad_length)."""
    padded = -(-length // multiple) * multiple
    return float(tokens * projection_flops(shape) + attention_flops(shape, batch, padded))


def workload_flops(shape: EncoderShape, batch_shapes) -> float:
    """Total FLOPs over batches given as (batch, length) pairs."""
    return sum(forward_flops(shape, b, l) for b, l in batch_shapes)
