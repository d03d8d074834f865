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


def forward_flops(shape: EncoderShape, batch: int, length: int) -> float:
    """FLOPs of one forward pass over a [batch, length] padded batch."""
    h, i = shape.hidden, shape.intermediate
    gq, gk, gv, gp, gi, go = shape.groups
    per_token = 2 * (h * h / gq + h * h / gk + h * h / gv + h * h / gp + h * i / gi + i * h / go)
    attention = 2 * 2 * length * h          # QK^T and probs @ V, per token
    return float(batch * length * shape.layers * (per_token + attention))


def workload_flops(shape: EncoderShape, batch_shapes) -> float:
    """Total FLOPs over batches given as (batch, length) pairs."""
    return sum(forward_flops(shape, b, l) for b, l in batch_shapes)
