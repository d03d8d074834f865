"""The packed inference formulation of SqueezeBertModel, the one `inference.export` traces.

With dynamic padding about half of a QQP batch is padding. Here every per-token operation (the six
projections, LayerNorms, GELU) runs on the T real tokens only, `[T, H]`; only the two attention
products see the padded `[B, L]` grid. Outputs at real positions equal the reference's (padded keys
get exactly zero attention weight either way); the sequence output is 0 at padded positions.

Also for speed, and exact in value:
- Q, K and V are one product (grouped when they share a group count, else one dense product with
  block-diagonal weights), with 1/sqrt(head size) folded into Q's weights.
- The weights in the layouts the products read are computed once, here, and stored as parameters, so
  the exported program reads them directly (which also keeps oneDNN's bf16 matmuls on plain weights).
- Heads are split and merged with constant reshape dims (`[0, 0, heads, d]`), which oneDNN's
  `reshape_transpose_matmul` / `matmul_transpose_reshape` passes fold into the attention matmuls.
For an eval-mode model only (no dropout); the reference layers' embeddings, LayerNorms and pooler are
shared, not copied.
"""
from __future__ import annotations

import math

import paddle
from paddle import _C_ops, nn

from .modeling import extended_attention_mask, group_channels


def frozen(value) -> paddle.Tensor:
    """`value` stored as a parameter that no optimizer touches."""
    param = paddle.create_parameter(value.shape, value.dtype)
    param.set_value(value)
    param.stop_gradient = True
    return param


def product_weight(conv) -> paddle.Tensor:
    """A Conv1x1's weight as the matrices of `x_g @ w_g`: [g, C_in/g, C_out/g] ([C_in, C_out] for g = 1)."""
    g = conv.groups
    w = conv.weight.reshape([g, conv.cout // g, conv.cin // g]).transpose([0, 2, 1])
    return w[0] if g == 1 else w


def dense_weight(conv) -> paddle.Tensor:
    """[C_in, C_out] with zero blocks off the diagonal: the grouped conv as one dense product."""
    w, g = product_weight(conv), conv.groups
    if g == 1:
        return w
    eye = paddle.eye(g, dtype=w.dtype).reshape([g, 1, g, 1])
    return (eye * w.unsqueeze(2)).reshape([conv.cin, conv.cout])                # [g, in/g, g, out/g]


def lookup_rows(table, index):
    """table[index] for a computed 2-D `table` [N, C] and an int64 `index` [...]: [..., C].
    (F.embedding checks its padding index against the table's length, which a traced program does
    not know; the underlying op needs no such check.)"""
    return _C_ops.embedding(index, table, -1, False)


class PackedConv(nn.Layer):
    """A Conv1x1 on real tokens: [T, C_in] -> [T, C_out], its weight stored as `product_weight`."""

    def __init__(self, conv):
        super().__init__()
        self.groups, self.cout = conv.groups, conv.cout
        self.weight = frozen(product_weight(conv))
        self.bias = conv.bias

    def forward(self, x):
        if self.groups == 1:
            return paddle.matmul(x, self.weight) + self.bias
        y = paddle.matmul(group_channels(x, self.groups), self.weight)           # [g, T, out/g]
        return y.transpose([1, 0, 2]).reshape([-1, self.cout]) + self.bias

    def grouped(self, xg):
        """Already grouped input [g, T, C_in/g] -> grouped output [g, T, C_out/g], bias added."""
        return paddle.matmul(xg, self.weight) + self.bias.reshape([self.groups, 1, -1])


class PackedAttention(nn.Layer):
    """SqueezeBertSelfAttention on real tokens: x [T, H] -> context [T, H]."""

    def __init__(self, attention):
        super().__init__()
        self.num_heads, self.head_size = attention.num_heads, attention.head_size
        convs = (attention.query, attention.key, attention.value)
        scales = (1.0 / math.sqrt(self.head_size), 1.0, 1.0)      # the score scale, folded into Q
        g = attention.query.groups
        self.groups = g if g > 1 and all(c.groups == g for c in convs) else 1
        with paddle.no_grad():
            if self.groups > 1:       # [g, H/g, 3H/g]: each group's Q, K, V columns side by side
                w = paddle.concat([product_weight(c) * s for c, s in zip(convs, scales)], axis=-1)
                b = paddle.concat([c.bias.reshape([g, 1, -1]) * s for c, s in zip(convs, scales)], axis=-1)
            else:                     # [H, 3H], block-diagonal where a conv is grouped
                w = paddle.concat([dense_weight(c) * s for c, s in zip(convs, scales)], axis=1)
                b = paddle.concat([c.bias * s for c, s in zip(convs, scales)])
        self.qkv_weight, self.qkv_bias = frozen(w), frozen(b)

    def split_heads(self, x):
        """[B, L, H] -> [B, nh, L, d] (constant dims: oneDNN folds this into the next matmul)."""
        return x.reshape([0, 0, self.num_heads, self.head_size]).transpose([0, 2, 1, 3])

    def forward(self, x, slots, tokens, attention_bias):
        """`slots` [B, L] maps every grid position to a row of x (padded positions to any real row:
        the mask hides them); `tokens` [T, 2] holds the (row, position) of each real token."""
        h, g = self.num_heads * self.head_size, self.groups
        if g > 1:
            qkv = paddle.matmul(group_channels(x, g), self.qkv_weight) + self.qkv_bias   # [g, T, 3H/g]
            qkv = qkv.reshape([g, -1, 3, h // g]).transpose([1, 2, 0, 3]).reshape([-1, 3 * h])
        else:
            qkv = paddle.matmul(x, self.qkv_weight) + self.qkv_bias                     # [T, 3H]
        qkv = lookup_rows(qkv, slots)                                                   # [B, L, 3H]
        q, k, v = (self.split_heads(qkv[:, :, i * h:(i + 1) * h]) for i in range(3))
        probs = paddle.nn.functional.softmax(paddle.matmul(q, k, transpose_y=True) + attention_bias, axis=-1)
        context = paddle.matmul(probs, v).transpose([0, 2, 1, 3]).reshape([0, 0, h])     # [B, L, H]
        return paddle.gather_nd(context, tokens)


class PackedLayer(nn.Layer):
    """SqueezeBertModule on real tokens: [T, H] -> [T, H]."""

    def __init__(self, module):
        super().__init__()
        self.attention = PackedAttention(module.attention)
        self.post_conv, self.post_norm = PackedConv(module.post_attention.conv1d), module.post_attention.layernorm
        self.inner, self.act = PackedConv(module.intermediate.conv1d), module.intermediate.act
        self.outer, self.out_norm = PackedConv(module.output.conv1d), module.output.layernorm

    def forward(self, x, slots, tokens, attention_bias):
        context = self.attention(x, slots, tokens, attention_bias)
        attended = self.post_norm(self.post_conv(context) + x)
        return self.out_norm(self.feed_forward(attended) + attended)

    def feed_forward(self, x):
        """Intermediate conv, activation, output conv: [T, H] -> [T, H]."""
        g = self.inner.groups
        if g == 1 or self.outer.groups != g:
            return self.outer(self.act(self.inner(x)))
        # Output group j reads exactly intermediate group j's channels: stay grouped in between.
        y = self.outer.grouped(self.act(self.inner.grouped(group_channels(x, g))))       # [g, T, H/g]
        return y.transpose([1, 0, 2]).reshape([-1, x.shape[-1]])


class PackedEncoder(nn.Layer):
    """SqueezeBertModel (eval) on real tokens: (input_ids, attention_mask, token_type_ids) [B, L] ->
    (sequence_output [B, L, H], 0 at padded positions; pooled_output [B, H])."""

    def __init__(self, model):
        super().__init__()
        self.embeddings, self.pooler = model.embeddings, model.pooler
        self.layers = nn.LayerList([PackedLayer(m) for m in model.encoder.layers])

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        embeddings = self.embeddings(input_ids, token_type_ids)
        bias = extended_attention_mask(attention_mask, embeddings.dtype)
        batch, length = embeddings.shape[0], embeddings.shape[1]
        keep = attention_mask.astype("int64")
        tokens = paddle.nonzero(keep)                                                  # [T, 2]
        slots = paddle.clip(paddle.cumsum(keep.reshape([-1])) - 1, min=0).reshape([batch, length])
        x = paddle.gather_nd(embeddings, tokens)                                       # [T, H]
        for layer in self.layers:
            x = layer(x, slots, tokens, bias)
        sequence = lookup_rows(x, slots) * keep.unsqueeze(-1).astype(x.dtype)          # [B, L, H]
        return sequence, self.pooler(sequence)
