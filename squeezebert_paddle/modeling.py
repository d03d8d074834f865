"""SqueezeBERT in Paddle: embeddings, grouped-conv attention, the module stack, pooler, six heads.

Module and parameter names follow Hugging Face's `modeling_squeezebert.py` (and PaddleNLP's, which
uses the same names under a `squeezebert.` prefix), so converting a checkpoint is a prefix rename plus
the transposes of the `nn.Linear` weights, and a saved base model loads into PaddleNLP as is.

Layout rule: activations stay `[batch, seq, hidden]` throughout. HF keeps `[batch, hidden, seq]` inside
the encoder because it computes the 1x1 convolutions with `Conv1d`; here a 1x1 convolution is a
(batched) matrix product over the channel axis, which is the same arithmetic without layout shuffles.
Conv weights keep the Conv1d shape `[out, in / groups, 1]` so checkpoints map without reshaping.
"""
from __future__ import annotations

import math

import paddle
import paddle.nn.functional as F
from paddle import _C_ops, nn

from . import cpu_kernels
from .configuration import SqueezeBertConfig

# ---------------------------------------------------------------------------------------------
# Activations, with the exact formulas `transformers.activations.ACT2FN` uses.

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


def _gelu_tanh(x):
    return 0.5 * x * (1.0 + paddle.tanh(_SQRT_2_OVER_PI * (x + 0.044715 * paddle.pow(x, 3.0))))


ACTIVATIONS = {
    "gelu": F.gelu,
    "gelu_python": F.gelu,
    "gelu_new": _gelu_tanh,
    "gelu_accurate": _gelu_tanh,
    "gelu_python_tanh": _gelu_tanh,
    "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate=True),
    "gelu_fast": lambda x: 0.5 * x * (1.0 + paddle.tanh(x * 0.7978845608 * (1.0 + 0.044715 * x * x))),
    "gelu_10": lambda x: paddle.clip(F.gelu(x), -10.0, 10.0),
    "quick_gelu": lambda x: x * F.sigmoid(1.702 * x),
    "laplace": lambda x: 0.5 * (1.0 + paddle.erf((x - 0.707107) / (0.282095 * math.sqrt(2.0)))),
    "leaky_relu": lambda x: F.leaky_relu(x, 0.01),
    "linear": lambda x: x,
    "mish": F.mish,
    "relu": F.relu,
    "relu2": lambda x: paddle.square(F.relu(x)),
    "relu6": F.relu6,
    "sigmoid": F.sigmoid,
    "silu": F.silu,
    "swish": F.silu,
    "tanh": paddle.tanh,
}


def extended_attention_mask(attention_mask, dtype):
    """[B, L] (or [B, Lq, Lk]) 1/0 mask -> additive [B, 1, 1|Lq, Lk] bias in `dtype`.

    Masked positions get the dtype's most negative finite value (as HF does), so the bias cannot
    overflow in fp16/bf16.
    """
    if attention_mask.ndim == 2:
        attention_mask = attention_mask.unsqueeze([1, 2])
    elif attention_mask.ndim == 3:
        attention_mask = attention_mask.unsqueeze(1)
    keep = attention_mask.astype(dtype)
    return (1.0 - keep) * paddle.finfo(dtype).min


def _cross_entropy(logits, labels):
    """Mean cross-entropy over the labels that are not -100, as torch's CrossEntropyLoss (HF's loss).

    Paddle 3.3's F.cross_entropy(reduction="mean") with a negative ignore_index divides by the count
    of ALL labels, ignored ones included, so the mean is taken here over the kept labels.
    """
    labels = labels.astype("int64")
    losses = F.cross_entropy(logits, labels, ignore_index=-100, reduction="none")
    return losses.sum() / (labels != -100).astype(losses.dtype).sum()


# ---------------------------------------------------------------------------------------------
# Building blocks


class Conv1x1(nn.Layer):
    """Grouped 1x1 convolution over the channel axis of `[B, L, C_in]` -> `[B, L, C_out]`.

    The weight has Conv1d's shape `[C_out, C_in / groups, 1]`; each group is a small dense layer,
    computed for all groups at once as one batched matrix product.
    """

    def __init__(self, cin: int, cout: int, groups: int):
        super().__init__()
        self.cin, self.cout, self.groups = cin, cout, groups
        self.weight = self.create_parameter([cout, cin // groups, 1])
        self.bias = self.create_parameter([cout], is_bias=True)

    def grouped_weight(self):
        """[g, C_in/g, C_out/g] (for g = 1: [C_in, C_out]): the matrices of `x_g @ w_g`."""
        frozen = self._parameters.get("frozen_weight")
        if frozen is not None:
            return frozen
        g = self.groups
        if g == 1:
            return self.weight.squeeze(-1).t()
        return self.weight.reshape([g, self.cout // g, self.cin // g]).transpose([0, 2, 1])

    def grouped_bias(self):
        return self.bias.reshape([self.groups, 1, self.cout // self.groups])

    def dense_weight(self):
        """[C_in, C_out] with zero blocks off the diagonal: the same map as one dense product."""
        w, g = self.grouped_weight(), self.groups
        if g == 1:
            return w
        eye = paddle.eye(g, dtype=w.dtype).reshape([g, 1, g, 1])
        return (eye * w.unsqueeze(2)).reshape([self.cin, self.cout])        # [g, in/g, g, out/g]

    def product(self, x):
        """The bias-free product as grouped [g, N, C_out/g] ([1, N, C_out] for g = 1), from token-major
        x [N, C_in] or x already grouped by this conv's groups [g, N, C_in/g] (the fused CPU path).
        The weight enters the matmul as stored (transpose_y): no copy of it in either direction."""
        g = self.groups
        if g == 1:
            w = self.weight.reshape([self.cout, self.cin])
            return paddle.matmul(x.reshape([-1, self.cin]), w, transpose_y=True).unsqueeze(0)
        if x.ndim == 2:
            x = cpu_kernels.group_major(x, g)
        return paddle.matmul(x, self.weight.reshape([g, self.cout // g, self.cin // g]), transpose_y=True)

    def forward(self, x):
        g = self.groups
        if g == 1:
            return paddle.matmul(x, self.grouped_weight()) + self.bias
        batch_shape = x.shape[:-1]
        y = paddle.matmul(group_major(x, g), self.grouped_weight())           # [g, B*L, Cout/g]
        return y.transpose([1, 0, 2]).reshape([*batch_shape, self.cout]) + self.bias


def lookup_rows(table, index):
    """table[index] for a computed 2-D `table` [N, C] and an int64 `index` [...]: [..., C].
    (F.embedding checks its padding index against the table's length, which a traced program does
    not know; the underlying op needs no such check.)"""
    return _C_ops.embedding(index, table, -1, False)


def drop_rate(dropout: nn.Dropout) -> float:
    """The rate a Dropout layer applies now: its p in training, 0 in evaluation."""
    return dropout.p if dropout.training else 0.0


def group_major(x, groups: int):
    """[N, C] -> [groups, N, C/groups]: the channel groups of every row, one matrix per group."""
    return x.reshape([-1, groups, x.shape[-1] // groups]).transpose([1, 0, 2])


class SqueezeBertEmbeddings(nn.Layer):
    """Word + position + token-type embeddings, LayerNorm, dropout: ids [B, L] -> [B, L, H]."""

    def __init__(self, config: SqueezeBertConfig):
        super().__init__()
        h = config.embedding_size
        self.word_embeddings = nn.Embedding(config.vocab_size, h)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, h)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, h)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, epsilon=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.pad_token_id = config.pad_token_id

    def forward(self, input_ids, token_type_ids=None, position_ids=None):
        if position_ids is None:
            position_ids = paddle.arange(input_ids.shape[1], dtype="int64").unsqueeze(0)
        words = self.word_embeddings(input_ids)
        if self.training:
            # As torch's padding_idx: the lookup sends no gradient into the pad row. (Paddle's own
            # padding_idx also zeroes the vector looked up, unlike torch, so it would break parity.)
            words = paddle.where((input_ids == self.pad_token_id).unsqueeze(-1), words.detach(), words)
        embeddings = words + self.position_embeddings(position_ids)
        if token_type_ids is None:
            # Type 0 everywhere: one row, broadcast, instead of a lookup of a zeros tensor.
            embeddings = embeddings + self.token_type_embeddings.weight[0]
        else:
            embeddings = embeddings + self.token_type_embeddings(token_type_ids)
        return self.dropout(self.LayerNorm(embeddings))

    def forward_fused(self, input_ids, token_type_ids=None, position_ids=None):
        """The same with the fused CPU kernels: -> token-major [B * L, H]."""
        batch, length = input_ids.shape
        if position_ids is None:
            position_ids = paddle.arange(length, dtype="int64").unsqueeze(0)
        words = self.word_embeddings(input_ids)
        if self.training:               # no gradient into the pad row, as in forward()
            words = paddle.where((input_ids == self.pad_token_id).unsqueeze(-1), words.detach(), words)
        # Lookups at full [B, L] shape: a broadcast add's gradient is a slow reduction on the CPU.
        others = self.position_embeddings(position_ids.expand([batch, length]))
        if token_type_ids is None:
            token_type_ids = paddle.zeros([batch, length], dtype="int64")
        others = others + self.token_type_embeddings(token_type_ids)
        hidden = words.shape[-1]
        zero = paddle.zeros([hidden], dtype=words.dtype)
        normed = cpu_kernels.bias_dropout_residual_layernorm(
            others.reshape([1, -1, hidden]), zero, words.reshape([-1, hidden]), self.LayerNorm, 0.0)
        return cpu_kernels.dropout(normed, drop_rate(self.dropout))


class SqueezeBertSelfAttention(nn.Layer):
    """Multi-head self-attention whose Q, K, V projections are grouped 1x1 convolutions."""

    def __init__(self, config: SqueezeBertConfig):
        super().__init__()
        h = config.hidden_size
        self.num_heads = config.num_attention_heads
        self.head_size = h // self.num_heads
        self.query = Conv1x1(h, h, config.q_groups)
        self.key = Conv1x1(h, h, config.k_groups)
        self.value = Conv1x1(h, h, config.v_groups)
        self.dropout = nn.Dropout(config.attention_probs_dropout_prob)

    def _split_heads(self, x):
        """[B, L, H] -> [B, nh, L, d]. Constant reshape dims (0 = keep): oneDNN folds the pair into the
        next matmul."""
        return x.reshape([0, 0, self.num_heads, self.head_size]).transpose([0, 2, 1, 3])

    def forward(self, hidden_states, attention_bias, output_attentions=False):
        """hidden_states [B, L, H], attention_bias additive [B, 1, 1, L] -> context [B, L, H]."""
        q = self._split_heads(self.query(hidden_states))                     # [B, nh, L, d]
        k = self._split_heads(self.key(hidden_states))
        v = self._split_heads(self.value(hidden_states))
        return self.attend(q, k, v, attention_bias, output_attentions)

    def forward_fused(self, x, mask_bias, batch: int):
        """With the fused CPU kernels: x token-major [N, H], mask_bias additive [B, L] ->
        context [N, H]. Each head lies inside one channel group, so the grouped products go straight
        to [B, nh, L, d] with their biases added on the way."""
        convs = (self.query, self.key, self.value)
        g = self.query.groups
        if all(c.groups == g for c in convs):
            # One product for Q, K and V: each group's three weight blocks side by side.
            w = paddle.concat([c.weight.reshape([g, c.cout // g, c.cin // g]) for c in convs], axis=1)
            xg = cpu_kernels.group_major(x, g) if g > 1 else x.unsqueeze(0)
            q, k, v = cpu_kernels.qkv_heads(paddle.matmul(xg, w, transpose_y=True),
                                            paddle.concat([c.bias for c in convs]), batch, self.num_heads)
        else:
            q, k, v = (cpu_kernels.bias_heads(c.product(x), c.bias, batch, self.num_heads) for c in convs)
        probs = cpu_kernels.softmax_dropout(paddle.matmul(q, k, transpose_y=True), mask_bias,
                                            1.0 / math.sqrt(self.head_size), drop_rate(self.dropout))
        context = cpu_kernels.merge_heads(paddle.matmul(probs, v))                   # [B, L, H]
        return context.reshape([-1, self.num_heads * self.head_size])

    def fusable(self) -> bool:
        """Whether every head lies inside one channel group of Q, K and V (the fused layout)."""
        return all((conv.cout // conv.groups) % self.head_size == 0 for conv in (self.query, self.key, self.value))

    def attend(self, q, k, v, attention_bias, output_attentions=False, scale=True):
        """q, k, v [B, nh, L, d] -> context [B, L, H] (and the scores when asked for)."""
        scores = paddle.matmul(q, k, transpose_y=True)
        if scale:
            scores = scores / math.sqrt(self.head_size)
        scores = scores + attention_bias
        probs = self.dropout(F.softmax(scores, axis=-1))
        context = paddle.matmul(probs, v).transpose([0, 2, 1, 3])             # [B, L, nh, d]
        context = context.reshape([0, 0, self.num_heads * self.head_size])
        return (context, scores) if output_attentions else (context, None)

    def grouped_qkv(self) -> bool:
        """Whether Q, K and V share a group count > 1: then the packed path computes them as one
        grouped product; otherwise as one dense product with block-diagonal weights."""
        g = self.query.groups
        return g > 1 and self.key.groups == g and self.value.groups == g

    def packed_qkv_weight(self):
        """Q, K and V weights side by side, with the 1/sqrt(head size) score scale folded into Q:
        dense [H, 3H] and bias [3H], or when grouped [g, H/g, 3H/g] and bias [g, 1, 3H/g]."""
        if "frozen_qkv_weight" in self._parameters:
            return self.frozen_qkv_weight, self.frozen_qkv_bias
        scale = 1.0 / math.sqrt(self.head_size)
        convs, scales = (self.query, self.key, self.value), (scale, 1.0, 1.0)
        if self.grouped_qkv():
            return (paddle.concat([c.grouped_weight() * s for c, s in zip(convs, scales)], axis=-1),
                    paddle.concat([c.grouped_bias() * s for c, s in zip(convs, scales)], axis=-1))
        return (paddle.concat([c.dense_weight() * s for c, s in zip(convs, scales)], axis=1),
                paddle.concat([c.bias * s for c, s in zip(convs, scales)]))

    def forward_packed(self, x, slots, tokens, attention_bias):
        """Real tokens x [T, H] -> context [T, H].

        `slots` [B, L] maps every grid position to a row of x (padded positions to any real row: the
        mask hides them) and `tokens` [T, 2] holds the (row, position) of each real token. The
        projections run on the real tokens only; the attention products on the padded grid.
        """
        w, b = self.packed_qkv_weight()
        h = self.num_heads * self.head_size
        if self.grouped_qkv():
            g = self.query.groups
            qkv = paddle.matmul(group_major(x, g), w) + b                         # [g, T, 3H/g]
            qkv = qkv.reshape([g, -1, 3, h // g]).transpose([1, 2, 0, 3]).reshape([-1, 3 * h])
        else:
            qkv = paddle.matmul(x, w) + b                                         # [T, 3H]
        qkv = lookup_rows(qkv, slots)                                             # [B, L, 3H]
        q, k, v = (self._split_heads(qkv[:, :, i * h:(i + 1) * h]) for i in range(3))
        context, _ = self.attend(q, k, v, attention_bias, scale=False)
        return paddle.gather_nd(context, tokens)


class ConvDropoutLayerNorm(nn.Layer):
    """conv -> dropout -> + residual -> LayerNorm."""

    def __init__(self, cin: int, cout: int, groups: int, dropout_prob: float, eps: float):
        super().__init__()
        self.conv1d = Conv1x1(cin, cout, groups)
        self.layernorm = nn.LayerNorm(cout, epsilon=eps)
        self.dropout = nn.Dropout(dropout_prob)

    def forward(self, hidden_states, residual):
        return self.layernorm(self.dropout(self.conv1d(hidden_states)) + residual)


class ConvActivation(nn.Layer):
    """conv -> activation."""

    def __init__(self, cin: int, cout: int, groups: int, act: str):
        super().__init__()
        self.conv1d = Conv1x1(cin, cout, groups)
        self.act = ACTIVATIONS[act]

    def forward(self, x):
        return self.act(self.conv1d(x))


class SqueezeBertModule(nn.Layer):
    """One encoder layer: attention, post-attention conv, intermediate conv, output conv."""

    def __init__(self, config: SqueezeBertConfig):
        super().__init__()
        # HF's (and PaddleNLP's) encoder LayerNorms are SqueezeBertLayerNorm(cout) with its default
        # eps=1e-12, whatever config.layer_norm_eps says (that one only reaches the embedding and
        # MLM-transform LayerNorms).
        h, i, eps = config.hidden_size, config.intermediate_size, 1e-12
        p = config.hidden_dropout_prob
        self.attention = SqueezeBertSelfAttention(config)
        self.post_attention = ConvDropoutLayerNorm(h, h, config.post_attention_groups, p, eps)
        self.intermediate = ConvActivation(h, i, config.intermediate_groups, config.hidden_act)
        self.output = ConvDropoutLayerNorm(i, h, config.output_groups, p, eps)

    def forward(self, hidden_states, attention_bias, output_attentions=False):
        context, scores = self.attention(hidden_states, attention_bias, output_attentions)
        attended = self.post_attention(context, hidden_states)
        return self.feed_forward(attended), scores

    def forward_packed(self, x, attention_bias, slots, tokens):
        """The same layer on the real tokens only: x [T, H] -> [T, H] (see SqueezeBertModel)."""
        context = self.attention.forward_packed(x, slots, tokens, attention_bias)
        return self.feed_forward(self.post_attention(context, x))

    def forward_fused(self, x, mask_bias, batch: int):
        """With the fused CPU kernels on token-major x [N, H] -> [N, H]."""
        context = self.attention.forward_fused(x, mask_bias, batch)
        post = self.post_attention
        attended = cpu_kernels.bias_dropout_residual_layernorm(
            post.conv1d.product(context), post.conv1d.bias, x, post.layernorm, drop_rate(post.dropout))
        inner, outer = self.intermediate.conv1d, self.output.conv1d
        h = inner.product(attended)                                                   # [gi, N, I/gi]
        if self.intermediate.act is F.gelu:                                           # exact (erf) GELU
            h = cpu_kernels.bias_gelu(h, inner.bias)
        else:
            h = self.intermediate.act(h + inner.grouped_bias())
        if outer.groups != inner.groups:                                              # back to [N, I]
            h = h.transpose([1, 0, 2]).reshape([-1, inner.cout])
        return cpu_kernels.bias_dropout_residual_layernorm(
            outer.product(h), outer.bias, attended, self.output.layernorm, drop_rate(self.output.dropout))

    def feed_forward(self, attended):
        """Intermediate conv, activation, output conv, dropout, + residual, LayerNorm: [..., H] -> same."""
        inner, outer = self.intermediate.conv1d, self.output.conv1d
        if inner.groups != outer.groups or inner.groups == 1:
            return self.output(self.intermediate(attended), attended)
        # Output group j reads exactly intermediate group j's channels: stay group-major in between.
        h = self.intermediate.act(paddle.matmul(group_major(attended, inner.groups), inner.grouped_weight())
                                  + inner.grouped_bias())
        z = (paddle.matmul(h, outer.grouped_weight()) + outer.grouped_bias()).transpose([1, 0, 2])
        if attended.ndim == 2:          # packed tokens [T, H]
            z = z.reshape([-1, attended.shape[-1]])
        else:                           # [B, L, H]: a shape tensor, as both may be dynamic when traced
            z = z.reshape(paddle.shape(attended))
        return self.output.layernorm(self.output.dropout(z) + attended)


class SqueezeBertEncoder(nn.Layer):
    def __init__(self, config: SqueezeBertConfig):
        super().__init__()
        self.layers = nn.LayerList([SqueezeBertModule(config) for _ in range(config.num_hidden_layers)])

    def forward(self, hidden_states, attention_bias, output_attentions=False, output_hidden_states=False):
        all_hidden, all_scores = [], []
        for layer in self.layers:
            if output_hidden_states:
                all_hidden.append(hidden_states)
            hidden_states, scores = layer(hidden_states, attention_bias, output_attentions)
            if output_attentions:
                all_scores.append(scores)
        if output_hidden_states:
            all_hidden.append(hidden_states)
        return hidden_states, all_hidden, all_scores


class SqueezeBertPooler(nn.Layer):
    """tanh(dense(hidden state of the first token))."""

    def __init__(self, config: SqueezeBertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, sequence_output):
        return paddle.tanh(self.dense(sequence_output[:, 0]))


# ---------------------------------------------------------------------------------------------
# Models


class SqueezeBertPreTrainedModel(nn.Layer):
    """Initialisation and the `from_pretrained` / `save_pretrained` pair shared by every model.

    `base_model_prefix` is the attribute holding the `SqueezeBertModel` inside a head model; the same
    string prefixes those parameters in a saved state dict (as in PaddleNLP).
    """

    base_model_prefix = "squeezebert"

    def __init__(self, config: SqueezeBertConfig):
        super().__init__()
        self.config = config

    def init_weights(self, *parts):
        """Normal(0, initializer_range) weights, zero biases, unit LayerNorms (HF's scheme), for the
        whole model or, when given, only `parts` (a head's own layers: the encoder did its own)."""
        std = self.config.initializer_range
        layers = [l for part in parts for l in part.sublayers(include_self=True)] if parts else \
            self.sublayers(include_self=True)
        for layer in layers:
            if isinstance(layer, (nn.Linear, Conv1x1, nn.Embedding)):
                layer.weight.set_value(paddle.normal(0.0, std, layer.weight.shape).astype(layer.weight.dtype))
                if getattr(layer, "bias", None) is not None:
                    layer.bias.set_value(paddle.zeros_like(layer.bias))
            elif isinstance(layer, nn.LayerNorm):
                layer.weight.set_value(paddle.ones_like(layer.weight))
                layer.bias.set_value(paddle.zeros_like(layer.bias))
        if not parts:
            with paddle.no_grad():
                self.base_model.embeddings.word_embeddings.weight[self.config.pad_token_id] = 0.0

    @property
    def base_model(self) -> "SqueezeBertModel":
        return getattr(self, self.base_model_prefix, self)

    @classmethod
    def from_pretrained(cls, model_dir, **kwargs):
        from .checkpoint import load_pretrained
        return load_pretrained(cls, model_dir, **kwargs)

    def save_pretrained(self, model_dir):
        from .checkpoint import save_pretrained
        save_pretrained(self, model_dir)


class SqueezeBertModel(SqueezeBertPreTrainedModel):
    """The bare encoder. forward -> (sequence_output [B, L, H], pooled_output [B, H]).

    `pack_tokens = True` (set by the inference export) runs every per-token operation, which is
    all but the attention products, on the real tokens only: with dynamic padding about half the
    work of a QQP batch is padding. Outputs at real positions are unchanged (padded keys get exactly
    zero attention weight either way); the sequence output is 0 at padded positions.
    """

    pack_tokens = False

    def __init__(self, config: SqueezeBertConfig):
        super().__init__(config)
        self.embeddings = SqueezeBertEmbeddings(config)
        self.encoder = SqueezeBertEncoder(config)
        self.pooler = SqueezeBertPooler(config)
        self.init_weights()

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, position_ids=None,
                output_attentions=False, output_hidden_states=False):
        """input_ids [B, L] int64; attention_mask [B, L] 1 = attend, 0 = padding.

        Returns (sequence_output, pooled_output), followed by the per-layer hidden states [B, L, H]
        and/or attention scores [B, nh, L, L] when asked for.
        """
        if not output_attentions and self._use_fused_kernels(input_ids, attention_mask):
            sequence_output, hidden = self._encode_fused(input_ids, attention_mask, token_type_ids, position_ids,
                                                         output_hidden_states)
            outputs = (sequence_output, self.pooler(sequence_output))
            return outputs + (tuple(hidden),) if output_hidden_states else outputs
        embedding_output = self.embeddings(input_ids, token_type_ids, position_ids)
        if attention_mask is None:
            bias = paddle.zeros([1, 1, 1, 1], dtype=embedding_output.dtype)
        else:
            bias = extended_attention_mask(attention_mask, embedding_output.dtype)
        if (self.pack_tokens and attention_mask is not None and attention_mask.ndim == 2
                and not (output_attentions or output_hidden_states)):
            sequence_output, hidden, scores = self._encode_packed(embedding_output, attention_mask, bias)
        else:
            sequence_output, hidden, scores = self.encoder(
                embedding_output, bias, output_attentions, output_hidden_states)
        outputs = (sequence_output, self.pooler(sequence_output))
        if output_hidden_states:
            outputs += (tuple(hidden),)
        if output_attentions:
            outputs += (tuple(scores),)
        return outputs


    def _use_fused_kernels(self, input_ids, attention_mask) -> bool:
        """Dygraph (not traced for export) on the CPU in fp32 without autocast, a [B, L] mask, kernels
        built, and not asked for the packed formulation: use them, in training and in evaluation alike."""
        if self.pack_tokens or not paddle.in_dynamic_mode():
            return False
        if attention_mask is not None and attention_mask.ndim != 2:
            return False
        tracer = paddle.base.framework._dygraph_tracer()
        if tracer is None or tracer._amp_level != paddle.base.core.AmpLevel.O0:
            return False
        return (self.encoder.layers[0].attention.fusable()
                and cpu_kernels.usable(self.embeddings.word_embeddings.weight))

    def _encode_fused(self, input_ids, attention_mask, token_type_ids, position_ids, output_hidden_states):
        batch, length = input_ids.shape
        x = self.embeddings.forward_fused(input_ids, token_type_ids, position_ids)    # [B * L, H]
        if attention_mask is None:
            mask_bias = paddle.zeros([batch, length], dtype=x.dtype)
        else:
            mask_bias = extended_attention_mask(attention_mask, x.dtype).reshape([batch, length])
        hidden = []
        for layer in self.encoder.layers:
            if output_hidden_states:
                hidden.append(x.reshape([batch, length, -1]))
            x = layer.forward_fused(x, mask_bias, batch)
        if output_hidden_states:
            hidden.append(x.reshape([batch, length, -1]))
        return x.reshape([batch, length, -1]), hidden

    def _encode_packed(self, embeddings, attention_mask, bias):
        batch, length = embeddings.shape[0], embeddings.shape[1]
        keep = attention_mask.astype("int64")
        tokens = paddle.nonzero(keep)                                                  # [T, 2]
        slots = paddle.clip(paddle.cumsum(keep.reshape([-1])) - 1, min=0).reshape([batch, length])
        x = paddle.gather_nd(embeddings, tokens)                                       # [T, H]
        for layer in self.encoder.layers:
            x = layer.forward_packed(x, bias, slots, tokens)
        grid = lookup_rows(x, slots)                                                   # [B, L, H]
        return grid * keep.unsqueeze(-1).astype(x.dtype), [], []


class SqueezeBertForSequenceClassification(SqueezeBertPreTrainedModel):
    """Pooled output -> dropout -> linear. forward -> logits [B, num_labels] (or (loss, logits)).

    The loss is cross-entropy, or mean squared error when num_labels == 1 (regression, e.g. STS-B).
    """

    def __init__(self, config: SqueezeBertConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.squeezebert = SqueezeBertModel(config)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.init_weights(self.classifier)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, position_ids=None,
                labels=None):
        _, pooled = self.squeezebert(input_ids, attention_mask, token_type_ids, position_ids)[:2]
        logits = self.classifier(self.dropout(pooled))
        if labels is None:
            return logits
        if self.num_labels == 1:
            loss = F.mse_loss(logits.squeeze(-1), labels.astype(logits.dtype).reshape([-1]))
        else:
            loss = _cross_entropy(logits, labels.reshape([-1]))
        return loss, logits


class SqueezeBertForTokenClassification(SqueezeBertPreTrainedModel):
    """Per-token linear classifier. forward -> logits [B, L, num_labels] (or (loss, logits))."""

    def __init__(self, config: SqueezeBertConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.squeezebert = SqueezeBertModel(config)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.init_weights(self.classifier)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, position_ids=None,
                labels=None):
        sequence, _ = self.squeezebert(input_ids, attention_mask, token_type_ids, position_ids)[:2]
        logits = self.classifier(self.dropout(sequence))
        if labels is None:
            return logits
        loss = _cross_entropy(logits.reshape([-1, self.num_labels]), labels.reshape([-1]))
        return loss, logits


class SqueezeBertForQuestionAnswering(SqueezeBertPreTrainedModel):
    """Span head. forward -> (start_logits [B, L], end_logits [B, L]) (loss first with positions)."""

    def __init__(self, config: SqueezeBertConfig):
        super().__init__(config)
        self.squeezebert = SqueezeBertModel(config)
        self.qa_outputs = nn.Linear(config.hidden_size, config.num_labels)
        self.init_weights(self.qa_outputs)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, position_ids=None,
                start_positions=None, end_positions=None):
        sequence, _ = self.squeezebert(input_ids, attention_mask, token_type_ids, position_ids)[:2]
        logits = self.qa_outputs(sequence)
        start_logits, end_logits = logits[..., 0], logits[..., 1]
        if start_positions is None or end_positions is None:
            return start_logits, end_logits
        # Positions outside the sequence are clamped to L and ignored, as in HF.
        length = start_logits.shape[1]
        start = start_positions.reshape([-1]).astype("int64").clip(0, length)
        end = end_positions.reshape([-1]).astype("int64").clip(0, length)
        loss = (F.cross_entropy(start_logits, start, ignore_index=length)
                + F.cross_entropy(end_logits, end, ignore_index=length)) / 2
        return loss, start_logits, end_logits


class SqueezeBertForMultipleChoice(SqueezeBertPreTrainedModel):
    """Scores each choice. inputs [B, C, L] -> logits [B, C] (or (loss, logits))."""

    def __init__(self, config: SqueezeBertConfig):
        super().__init__(config)
        self.squeezebert = SqueezeBertModel(config)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.classifier = nn.Linear(config.hidden_size, 1)
        self.init_weights(self.classifier)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, position_ids=None,
                labels=None):
        num_choices = input_ids.shape[1]
        flat = [None if t is None else t.reshape([-1, t.shape[-1]])
                for t in (input_ids, attention_mask, token_type_ids, position_ids)]
        _, pooled = self.squeezebert(*flat)[:2]
        logits = self.classifier(self.dropout(pooled)).reshape([-1, num_choices])
        if labels is None:
            return logits
        return _cross_entropy(logits, labels.reshape([-1])), logits


class SqueezeBertLMPredictionHead(nn.Layer):
    """dense -> act -> LayerNorm, then scores against the (tied) word embeddings plus a bias."""

    def __init__(self, config: SqueezeBertConfig, word_embeddings: nn.Embedding):
        super().__init__()
        self.transform = nn.Layer()
        self.transform.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.transform.LayerNorm = nn.LayerNorm(config.hidden_size, epsilon=config.layer_norm_eps)
        self.act = ACTIVATIONS[config.hidden_act]
        self.bias = self.create_parameter([config.vocab_size], is_bias=True)
        # A plain attribute, not a sublayer, so the tied weight is stored once (under embeddings).
        self.__dict__["word_embeddings"] = word_embeddings

    def forward(self, hidden_states):
        h = self.transform.LayerNorm(self.act(self.transform.dense(hidden_states)))
        return paddle.matmul(h, self.word_embeddings.weight, transpose_y=True) + self.bias


class SqueezeBertForMaskedLM(SqueezeBertPreTrainedModel):
    """forward -> prediction scores [B, L, vocab_size] (or (loss, scores) with labels, -100 ignored)."""

    def __init__(self, config: SqueezeBertConfig):
        super().__init__(config)
        self.squeezebert = SqueezeBertModel(config)
        self.cls = nn.Layer()
        self.cls.predictions = SqueezeBertLMPredictionHead(
            config, self.squeezebert.embeddings.word_embeddings)
        self.init_weights(self.cls)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, position_ids=None,
                labels=None):
        sequence, _ = self.squeezebert(input_ids, attention_mask, token_type_ids, position_ids)[:2]
        scores = self.cls.predictions(sequence)
        if labels is None:
            return scores
        loss = _cross_entropy(scores.reshape([-1, scores.shape[-1]]), labels.reshape([-1]))
        return loss, scores


def freeze_derived_weights(model) -> None:
    """Store the regrouped and fused weights the fast path computes on the fly as parameters, so an
    exported program reads them directly instead of re-deriving them on every run (which also keeps
    oneDNN's bf16 matmuls on plain weights). For inference copies only: adds state-dict entries."""
    def frozen(value):
        param = paddle.create_parameter(value.shape, value.dtype)
        param.set_value(value)
        param.stop_gradient = True
        return param

    with paddle.no_grad():
        for layer in model.sublayers():
            if isinstance(layer, SqueezeBertSelfAttention):
                w, b = layer.packed_qkv_weight()
                layer.add_parameter("frozen_qkv_weight", frozen(w))
                layer.add_parameter("frozen_qkv_bias", frozen(b))
        for layer in model.sublayers():
            if isinstance(layer, Conv1x1):
                layer.add_parameter("frozen_weight", frozen(layer.grouped_weight()))


MODEL_CLASSES = {cls.__name__: cls for cls in (
    SqueezeBertModel, SqueezeBertForSequenceClassification, SqueezeBertForTokenClassification,
    SqueezeBertForQuestionAnswering, SqueezeBertForMultipleChoice, SqueezeBertForMaskedLM)}
