"""The fused CPU formulation of SqueezeBERT's embeddings and encoder, for dygraph training and evaluation.

The same function as the reference in `modeling.py` (tested against it, values and gradients), computed
with the custom ops of `cpu_kernels.py` over the reference layers' own parameters. Paddle's CPU build
runs elementwise ops and their gradients on one thread and copies strided views element by element;
these ops fuse each elementwise chain (bias + GELU; bias + dropout + residual + LayerNorm; scale + mask
+ softmax + dropout) and each layout change into one vectorized, multi-threaded pass.

Layout rule of this file: activations are token-major `[N, C]` (N = B * L, the [B, L, C] grid
flattened); a grouped product's result stays grouped `[G, N, C/G]` until a kernel consumes it, and the
attention runs on `[B, heads, L, d]`. It needs every attention head inside one channel group of Q, K
and V (true of every released configuration).

Chosen explicitly: `model.use_fused_cpu_kernels()` (run_glue.py, bench_train.py and run_qqp_paddle.py's
dygraph backend call it); the traced export and GPU runs never use it.
"""
from __future__ import annotations

import math

import paddle
import paddle.nn.functional as F

from . import cpu_kernels


def available(model) -> bool:
    """Whether `model` (a SqueezeBertModel) can run fused: fp32 on the CPU, kernels built, and each
    head inside one channel group of Q, K and V."""
    attention = model.encoder.layers[0].attention
    heads_fit = all((conv.cout // conv.groups) % attention.head_size == 0
                    for conv in (attention.query, attention.key, attention.value))
    return heads_fit and cpu_kernels.usable(model.embeddings.word_embeddings.weight)


def applies(model, attention_mask, output_attentions: bool) -> bool:
    """Whether this call can run fused: dygraph (not traced), a [B, L] mask, no attention maps asked
    for (the kernels do not keep the scores), still on the CPU in fp32."""
    return (paddle.in_dynamic_mode() and not output_attentions
            and (attention_mask is None or attention_mask.ndim == 2)
            and cpu_kernels.usable(model.embeddings.word_embeddings.weight))


def encode(model, input_ids, attention_bias, token_type_ids, position_ids, output_hidden_states):
    """ids [B, L], additive attention_bias [B|1, 1, 1, L|1] (modeling.extended_attention_mask) ->
    (sequence output [B, L, H], hidden states [B, L, H] per layer input and at the end when asked for,
    else [])."""
    batch, length = input_ids.shape
    x = embed(model.embeddings, input_ids, token_type_ids, position_ids)              # [N, H]
    mask_bias = paddle.broadcast_to(attention_bias.reshape([attention_bias.shape[0], -1]), [batch, length])
    hidden = []
    for layer in model.encoder.layers:
        if output_hidden_states:
            hidden.append(x.reshape([batch, length, -1]))
        x = encoder_layer(layer, x, mask_bias, batch)
    if output_hidden_states:
        hidden.append(x.reshape([batch, length, -1]))
    return x.reshape([batch, length, -1]), hidden


def drop_rate(dropout: paddle.nn.Dropout) -> float:
    """The rate a Dropout layer applies now: its p in training, 0 in evaluation."""
    return dropout.p if dropout.training else 0.0


def embed(embeddings, input_ids, token_type_ids, position_ids):
    """SqueezeBertEmbeddings' function: ids [B, L] -> token-major [N, H]."""
    batch, length = input_ids.shape
    if position_ids is None:
        position_ids = paddle.arange(length, dtype="int64").unsqueeze(0)
    words = embeddings.word_vectors(input_ids)
    # Lookups at full [B, L] shape: a broadcast add's gradient is a slow reduction on the CPU.
    others = embeddings.position_embeddings(position_ids.expand([batch, length]))
    if token_type_ids is None:
        token_type_ids = paddle.zeros([batch, length], dtype="int64")
    others = others + embeddings.token_type_embeddings(token_type_ids)
    hidden = words.shape[-1]
    zero = paddle.zeros([hidden], dtype=words.dtype)
    normed = cpu_kernels.bias_dropout_residual_layernorm(
        others.reshape([1, -1, hidden]), zero, words.reshape([-1, hidden]), embeddings.LayerNorm, 0.0)
    return cpu_kernels.dropout(normed, drop_rate(embeddings.dropout))


def grouped_product(conv, x):
    """A Conv1x1's bias-free product: token-major x [N, C_in] -> grouped [G, N, C_out/G]. The weight
    enters the matmul as stored (transpose_y), so no copy of it is made in either direction."""
    g = conv.groups
    if g == 1:      # a reshape, not w[0]: a slice's gradient is a slow zero-fill-and-copy on the CPU
        return paddle.matmul(x, conv.weight.reshape([conv.cout, conv.cin]), transpose_y=True).unsqueeze(0)
    w = conv.weight.reshape([g, conv.cout // g, conv.cin // g])
    return paddle.matmul(cpu_kernels.tokens_to_groups(x, g), w, transpose_y=True)


def attend(attention, x, mask_bias, batch: int):
    """SqueezeBertSelfAttention's function: x [N, H], mask_bias additive [B, L] -> context [N, H].
    Each head lies inside one channel group, so the grouped products go straight to [B, nh, L, d]
    with their biases added on the way."""
    convs = (attention.query, attention.key, attention.value)
    g, heads = attention.query.groups, attention.num_heads
    if all(c.groups == g for c in convs):
        # One product for Q, K and V: each group's three weight blocks side by side.
        w = paddle.concat([c.weight.reshape([g, c.cout // g, c.cin // g]) for c in convs], axis=1)
        xg = cpu_kernels.tokens_to_groups(x, g) if g > 1 else x.unsqueeze(0)
        q, k, v = cpu_kernels.qkv_heads(paddle.matmul(xg, w, transpose_y=True),
                                        paddle.concat([c.bias for c in convs]), batch, heads)
    else:
        q, k, v = (cpu_kernels.bias_heads(grouped_product(c, x), c.bias, batch, heads) for c in convs)
    probs = cpu_kernels.softmax_dropout(paddle.matmul(q, k, transpose_y=True), mask_bias,
                                        1.0 / math.sqrt(attention.head_size), drop_rate(attention.dropout))
    context = cpu_kernels.merge_heads(paddle.matmul(probs, v))                       # [B, L, H]
    return context.reshape([-1, heads * attention.head_size])


def encoder_layer(module, x, mask_bias, batch: int):
    """SqueezeBertModule's function on token-major x [N, H] -> [N, H]."""
    context = attend(module.attention, x, mask_bias, batch)
    post = module.post_attention
    attended = cpu_kernels.bias_dropout_residual_layernorm(
        grouped_product(post.conv1d, context), post.conv1d.bias, x, post.layernorm, drop_rate(post.dropout))
    inner, outer = module.intermediate.conv1d, module.output.conv1d
    h = grouped_product(inner, attended)                                              # [gi, N, I/gi]
    if module.intermediate.act is F.gelu:                                             # exact (erf) GELU
        h = cpu_kernels.bias_gelu(h, inner.bias)
    else:
        h = module.intermediate.act(h + inner.bias.reshape([inner.groups, 1, -1]))
    # Output group j reads exactly intermediate group j's channels when the counts agree: stay grouped.
    if outer.groups == inner.groups:
        w = outer.weight.reshape([outer.groups, outer.cout // outer.groups, outer.cin // outer.groups])
        y = paddle.matmul(h, w, transpose_y=True)
    else:
        y = grouped_product(outer, h.transpose([1, 0, 2]).reshape([-1, inner.cout]))
    return cpu_kernels.bias_dropout_residual_layernorm(
        y, outer.bias, attended, module.output.layernorm, drop_rate(module.output.dropout))
