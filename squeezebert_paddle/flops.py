"""Analytic forward FLOPs of SqueezeBERT and BERT encoders on padded batches (framework-free).

Counts multiply-adds as 2 FLOPs in the projections (grouped 1x1 convs or dense layers) and in the two
attention products; embeddings, LayerNorm, softmax and activations are ignored (a few percent).
"""
from __future__ import annotations

from dataclasses import dataclass

from .configuration import GROUP_FIELDS, SqueezeBertConfig


@dataclass(frozen=True)
class EncoderShape:
    hidden: int
    layers: int
    convs: tuple[tuple[int, int, int], ...]     # (in, out, groups) of each layer's six projections

    @classmethod
    def of(cls, config: SqueezeBertConfig) -> "EncoderShape":
        return cls(config.hidden_size, config.num_hidden_layers, tuple(config.conv_shapes().values()))


SQUEEZEBERT = EncoderShape.of(SqueezeBertConfig())
BERT_BASE = EncoderShape.of(SqueezeBertConfig(**dict.fromkeys(GROUP_FIELDS, 1)))   # groups 1 = dense


def projection_flops(shape: EncoderShape) -> float:
    """FLOPs of the six projections of every layer, per token."""
    return 2 * shape.layers * sum(cin * cout / groups for cin, cout, groups in shape.convs)


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


def sequence_flops(shape: EncoderShape, lengths) -> float:
    """FLOPs of the per-sequence path (cpu_encoder.py): projections on the real tokens, attention over
    each sequence's `lengths` real tokens only."""
    lengths = [int(n) for n in lengths]
    return float(sum(lengths) * projection_flops(shape) + 2 * 2 * shape.layers * shape.hidden * sum(n * n for n in lengths))


def workload_flops(shape: EncoderShape, batch_shapes) -> float:
    """Total FLOPs over batches given as (batch, length) pairs."""
    return sum(forward_flops(shape, b, l) for b, l in batch_shapes)
