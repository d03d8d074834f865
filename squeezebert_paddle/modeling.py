"""SqueezeBERT in Paddle: embeddings, grouped-conv attention, the module stack, pooler, six heads.

Module and parameter names follow Hugging Face's `modeling_squeezebert.py` (and PaddleNLP's, which
uses the same names under a `squeezebert.` prefix), so converting a checkpoint is a prefix rename plus
the transposes of the `nn.Linear` weights, and a saved base model loads into PaddleNLP as is.

Layout rule: activations stay `[batch, seq, hidden]` throughout. HF keeps `[batch, hidden, seq]` inside
the encoder because it computes the 1x1 convolutions with `Conv1d`; here a 1x1 convolution is a
(batched) matrix product over the channel axis, which is the same arithmetic without layout shuffles.
Conv weights keep the Conv1d shape `[out, in / groups, 1]` so checkpoints map without reshaping.

This file is the reference formulation, computed the way the paper and Hugging Face do. Two faster
formulations of the same function live in their own files, each tested against this one:
`fused_cpu_encoder.py` (dygraph on the CPU, chosen with `use_fused_cpu_kernels()`) and
`packed_encoder.py` (the traced inference export, chosen by `inference.export`).
"""
from __future__ import annotations

import math
from collections.abc import Mapping

import paddle
import paddle.nn.functional as F
from paddle import nn

from . import fused_cpu_encoder
from .activations import ACTIVATIONS
from .checkpoint import WEIGHTS_FILE
from .configuration import ARCHITECTURES, CONFIG_FILE, HUB_IDS, RELEASED_CONFIGS, SqueezeBertConfig
from .outputs import (BaseModelOutputWithPooling, MaskedLMOutput, MultipleChoiceModelOutput,
                      QuestionAnsweringModelOutput, SequenceClassifierOutput, TokenClassifierOutput)

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


def group_channels(x, groups: int):
    """[N, C] -> [groups, N, C/groups]: each row's channel groups, one matrix per group."""
    return x.reshape([-1, groups, x.shape[-1] // groups]).transpose([1, 0, 2])


class Conv1x1(nn.Layer):
    """Grouped 1x1 convolution over the channel axis: [B, L, C_in] -> [B, L, C_out].

    The weight has Conv1d's shape `[C_out, C_in / groups, 1]`; each group is a small dense layer,
    computed for all groups at once as one batched matrix product.
    """

    def __init__(self, cin: int, cout: int, groups: int):
        super().__init__()
        self.cin, self.cout, self.groups = cin, cout, groups
        self.weight = self.create_parameter([cout, cin // groups, 1])
        self.bias = self.create_parameter([cout], is_bias=True)

    def forward(self, x):
        g = self.groups
        w = self.weight.reshape([g, self.cout // g, self.cin // g])                # group g: [out/g, in/g]
        if g == 1:
            return paddle.matmul(x, w[0], transpose_y=True) + self.bias
        y = paddle.matmul(group_channels(x, g), w, transpose_y=True)                # [g, B*L, out/g]
        return y.transpose([1, 0, 2]).reshape([*x.shape[:-1], self.cout]) + self.bias


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

    def word_vectors(self, input_ids):
        """The word lookup [B, L, H]. As torch's padding_idx, no gradient reaches the pad row in
        training (Paddle's own padding_idx also zeroes the vector looked up, which breaks parity)."""
        words = self.word_embeddings(input_ids)
        if self.training:
            words = paddle.where((input_ids == self.pad_token_id).unsqueeze(-1), words.detach(), words)
        return words

    def forward(self, input_ids, token_type_ids=None, position_ids=None):
        if position_ids is None:
            position_ids = paddle.arange(input_ids.shape[1], dtype="int64").unsqueeze(0)
        embeddings = self.word_vectors(input_ids) + self.position_embeddings(position_ids)
        if token_type_ids is None:
            # Type 0 everywhere: one row, broadcast, instead of a lookup of a zeros tensor.
            embeddings = embeddings + self.token_type_embeddings.weight[0]
        else:
            embeddings = embeddings + self.token_type_embeddings(token_type_ids)
        return self.dropout(self.LayerNorm(embeddings))


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

    def split_heads(self, x):
        """[B, L, H] -> [B, nh, L, d]."""
        return x.reshape([0, 0, self.num_heads, self.head_size]).transpose([0, 2, 1, 3])

    def forward(self, hidden_states, attention_bias, output_attentions=False):
        """hidden_states [B, L, H], attention_bias additive [B, 1, 1|L, L] -> (context [B, L, H],
        scores [B, nh, L, L] before the softmax, or None)."""
        q = self.split_heads(self.query(hidden_states))
        k = self.split_heads(self.key(hidden_states))
        v = self.split_heads(self.value(hidden_states))
        scores = paddle.matmul(q, k, transpose_y=True) / math.sqrt(self.head_size) + attention_bias
        probs = self.dropout(F.softmax(scores, axis=-1))
        context = paddle.matmul(probs, v).transpose([0, 2, 1, 3])                # [B, L, nh, d]
        context = context.reshape([0, 0, self.num_heads * self.head_size])
        return context, (scores if output_attentions else None)


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
        convs, eps, p = config.conv_shapes(), 1e-12, config.hidden_dropout_prob
        self.attention = SqueezeBertSelfAttention(config)
        self.post_attention = ConvDropoutLayerNorm(*convs["post_attention.conv1d"], p, eps)
        self.intermediate = ConvActivation(*convs["intermediate.conv1d"], config.hidden_act)
        self.output = ConvDropoutLayerNorm(*convs["output.conv1d"], p, eps)

    def forward(self, hidden_states, attention_bias, output_attentions=False):
        """[B, L, H] -> ([B, L, H], attention scores or None)."""
        context, scores = self.attention(hidden_states, attention_bias, output_attentions)
        attended = self.post_attention(context, hidden_states)
        return self.output(self.intermediate(attended), attended), scores


class SqueezeBertEncoder(nn.Layer):
    def __init__(self, config: SqueezeBertConfig):
        super().__init__()
        self.layers = nn.LayerList([SqueezeBertModule(config) for _ in range(config.num_hidden_layers)])

    def forward(self, hidden_states, attention_bias, output_attentions=False, output_hidden_states=False):
        """-> (last hidden state [B, L, H], hidden states per layer input and at the end, scores)."""
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
    """Construction, initialisation and the `from_pretrained` / `save_pretrained` pair of every model.

    A model is built from a SqueezeBertConfig, a mapping of config fields or keywords
    (`SqueezeBertModel(config)`, `SqueezeBertModel(**config_dict)`); a head model also from a built
    SqueezeBertModel, which it then wraps (PaddleNLP's older style). `base_model_prefix` is the
    attribute holding the SqueezeBertModel inside a head model; the same string prefixes those
    parameters in a saved state dict (as in PaddleNLP).

    The class attributes below are the hooks PaddleNLP's tooling reads. The released checkpoints are
    named as in PaddleNLP, but their weights are the Hugging Face hub's (`HUB_IDS`): there is no
    Paddle download, so the resource map gives the hub id the converter fetches, not a URL.
    """

    base_model_prefix = "squeezebert"
    config_class = SqueezeBertConfig
    model_config_file = CONFIG_FILE
    resource_files_names = {"model_state": WEIGHTS_FILE}
    pretrained_init_configuration = {name: SqueezeBertConfig(**fields).to_dict()
                                     for name, fields in RELEASED_CONFIGS.items()}
    pretrained_resource_files_map = {"model_state": dict(HUB_IDS)}

    def __init__(self, config=None, **kwargs):
        super().__init__()
        if isinstance(config, SqueezeBertPreTrainedModel):      # a built encoder, wrapped by a head
            config = config.config
        if isinstance(config, SqueezeBertConfig):
            config = config.replace(**kwargs) if kwargs else config
        elif config is None or isinstance(config, Mapping):
            config = SqueezeBertConfig(**{**(config or {}), **kwargs})
        else:
            raise TypeError(f"{type(self).__name__}: expected a SqueezeBertConfig, a mapping of config "
                            f"fields or a SqueezeBertModel, got {type(config).__name__}")
        self.config = config.validate()

    def encoder_for(self, config) -> "SqueezeBertModel":
        """A head's encoder: the SqueezeBertModel it was given, else a new one for its config."""
        return config if isinstance(config, SqueezeBertModel) else SqueezeBertModel(self.config)

    def config_flag(self, name: str, value) -> bool:
        """`value`, or when None the config's `name` (False without one): as in both libraries, a
        config can set output_attentions, output_hidden_states and return_dict for every call."""
        return bool(self.config.get(name, False)) if value is None else value

    def head_output(self, output_class, return_dict, loss, *values, encoded: BaseModelOutputWithPooling):
        """What a head returns: `output_class(loss, *values, hidden_states, attentions)` with
        return_dict, else its set fields as a tuple, or the one tensor when only one is set (so the
        default stays `logits`, or `(loss, logits)` with labels, as before named outputs existed)."""
        out = output_class(loss, *values, hidden_states=encoded.hidden_states, attentions=encoded.attentions)
        if self.config_flag("return_dict", return_dict):
            return out
        fields = out.to_tuple()
        return fields[0] if len(fields) == 1 else fields

    @classmethod
    def constructed_from_pretrained_config(cls) -> bool:
        """PaddleNLP's question "is this model built from a config object?" (yes)."""
        return True

    @property
    def model_name_list(self) -> list[str]:
        """The released checkpoints' names (see HUB_IDS for where they come from)."""
        return list(self.pretrained_init_configuration)

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

    def use_fused_cpu_kernels(self, enabled: bool = True) -> bool:
        """Run this model's dygraph forward and backward through the fused CPU kernels
        (`fused_cpu_encoder.py`: same results, several times faster on the CPU than Paddle's ops).
        Returns whether they will run: fp32 weights on the CPU and kernels that could be built (else
        the reference computation runs, with the reason logged once by `cpu_kernels`)."""
        base = self.base_model
        base.fused_cpu_kernels = bool(enabled) and fused_cpu_encoder.available(base)
        return base.fused_cpu_kernels

    @property
    def base_model(self) -> "SqueezeBertModel":
        return getattr(self, self.base_model_prefix, self)

    def get_input_embeddings(self) -> nn.Embedding:
        return self.base_model.embeddings.word_embeddings

    def set_input_embeddings(self, embeddings: nn.Embedding) -> None:
        self.base_model.embeddings.word_embeddings = embeddings

    def resize_token_embeddings(self, new_num_tokens: int | None = None) -> nn.Embedding:
        """Give the word-embedding table `new_num_tokens` rows (config.vocab_size follows): the
        first rows are kept, new ones drawn like a fresh model's. Returns the (new) table."""
        old = self.get_input_embeddings()
        if new_num_tokens is None or new_num_tokens == old.weight.shape[0]:
            return old
        new = nn.Embedding(new_num_tokens, old.weight.shape[1])
        keep = min(new_num_tokens, old.weight.shape[0])
        with paddle.no_grad():
            rows = paddle.normal(0.0, self.config.initializer_range, new.weight.shape).astype(new.weight.dtype)
            rows[:keep] = old.weight[:keep].astype(new.weight.dtype)
            new.weight.set_value(rows)
        self.set_input_embeddings(new)
        for config in {id(c): c for c in (self.config, self.base_model.config)}.values():
            config.vocab_size = new_num_tokens
        return new

    @classmethod
    def from_pretrained(cls, model_dir, **kwargs):
        from .checkpoint import load_pretrained
        return load_pretrained(cls, model_dir, **kwargs)

    def save_pretrained(self, model_dir):
        from .checkpoint import save_pretrained
        save_pretrained(self, model_dir)


class SqueezeBertModel(SqueezeBertPreTrainedModel):
    """The bare encoder. forward -> (sequence_output [B, L, H], pooled_output [B, H]), or with
    `return_dict=True` a BaseModelOutputWithPooling (last_hidden_state, pooler_output, ...).

    `use_fused_cpu_kernels()` switches this model to the fused CPU formulation
    (`fused_cpu_encoder.py`) for dygraph forward and backward on the CPU; the default is the
    reference computation below.
    """

    def __init__(self, config=None, **kwargs):
        super().__init__(config, **kwargs)
        self.embeddings = SqueezeBertEmbeddings(self.config)
        self.encoder = SqueezeBertEncoder(self.config)
        self.pooler = SqueezeBertPooler(self.config)
        self.fused_cpu_kernels = False
        self.init_weights()

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, position_ids=None,
                output_attentions=None, output_hidden_states=None, return_dict=None):
        """input_ids [B, L] int64; attention_mask [B, L] 1 = attend, 0 = padding.

        Returns (sequence_output, pooled_output), followed by the hidden states (the embeddings and
        each layer's output, num_hidden_layers + 1 of [B, L, H]) and/or the attention scores
        [B, nh, L, L] when asked for; the same fields named with `return_dict=True`. A flag left at
        None takes the config's value of that name (False when it has none).
        """
        output_attentions = self.config_flag("output_attentions", output_attentions)
        output_hidden_states = self.config_flag("output_hidden_states", output_hidden_states)
        return_dict = self.config_flag("return_dict", return_dict)
        dtype = self.embeddings.word_embeddings.weight.dtype
        if attention_mask is None:
            bias = paddle.zeros([1, 1, 1, 1], dtype=dtype)
        else:
            bias = extended_attention_mask(attention_mask, dtype)
        if self.fused_cpu_kernels and fused_cpu_encoder.applies(self, attention_mask, output_attentions):
            sequence_output, hidden = fused_cpu_encoder.encode(
                self, input_ids, bias, token_type_ids, position_ids, output_hidden_states)
            scores = []
        else:
            embedding_output = self.embeddings(input_ids, token_type_ids, position_ids)
            sequence_output, hidden, scores = self.encoder(
                embedding_output, bias, output_attentions, output_hidden_states)
        pooled_output = self.pooler(sequence_output)
        if return_dict:
            return BaseModelOutputWithPooling(sequence_output, pooled_output,
                                              tuple(hidden) if output_hidden_states else None,
                                              tuple(scores) if output_attentions else None)
        outputs = (sequence_output, pooled_output)
        if output_hidden_states:
            outputs += (tuple(hidden),)
        if output_attentions:
            outputs += (tuple(scores),)
        return outputs


class LinearClassifierModel(SqueezeBertPreTrainedModel):
    """The encoder, dropout and a linear layer to num_labels: what the sequence and token
    classification heads share (they differ in what they classify)."""

    def __init__(self, config=None, **kwargs):
        super().__init__(config, **kwargs)
        self.num_labels = self.config.num_labels
        self.squeezebert = self.encoder_for(config)
        self.dropout = nn.Dropout(self.config.hidden_dropout_prob)
        self.classifier = nn.Linear(self.config.hidden_size, self.num_labels)
        self.init_weights(self.classifier)


class SqueezeBertForSequenceClassification(LinearClassifierModel):
    """Pooled output -> dropout -> linear. forward -> logits [B, num_labels] (or (loss, logits));
    SequenceClassifierOutput with return_dict=True.

    The loss is cross-entropy, or mean squared error when num_labels == 1 (regression, e.g. STS-B).
    """

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, position_ids=None,
                labels=None, output_attentions=None, output_hidden_states=None, return_dict=None):
        encoded = self.squeezebert(input_ids, attention_mask, token_type_ids, position_ids,
                                   output_attentions, output_hidden_states, return_dict=True)
        logits = self.classifier(self.dropout(encoded.pooler_output))
        loss = None
        if labels is not None and self.num_labels == 1:
            loss = F.mse_loss(logits.squeeze(-1), labels.astype(logits.dtype).reshape([-1]))
        elif labels is not None:
            loss = _cross_entropy(logits, labels.reshape([-1]))
        return self.head_output(SequenceClassifierOutput, return_dict, loss, logits, encoded=encoded)


class SqueezeBertForTokenClassification(LinearClassifierModel):
    """Per-token linear classifier. forward -> logits [B, L, num_labels] (or (loss, logits));
    TokenClassifierOutput with return_dict=True."""

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, position_ids=None,
                labels=None, output_attentions=None, output_hidden_states=None, return_dict=None):
        encoded = self.squeezebert(input_ids, attention_mask, token_type_ids, position_ids,
                                   output_attentions, output_hidden_states, return_dict=True)
        logits = self.classifier(self.dropout(encoded.last_hidden_state))
        loss = None
        if labels is not None:
            loss = _cross_entropy(logits.reshape([-1, self.num_labels]), labels.reshape([-1]))
        return self.head_output(TokenClassifierOutput, return_dict, loss, logits, encoded=encoded)


class SqueezeBertForQuestionAnswering(SqueezeBertPreTrainedModel):
    """Span head. forward -> (start_logits [B, L], end_logits [B, L]) (loss first with positions);
    QuestionAnsweringModelOutput with return_dict=True."""

    def __init__(self, config=None, **kwargs):
        super().__init__(config, **kwargs)
        self.squeezebert = self.encoder_for(config)
        self.qa_outputs = nn.Linear(self.config.hidden_size, self.config.num_labels)
        self.init_weights(self.qa_outputs)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, position_ids=None,
                start_positions=None, end_positions=None, output_attentions=None,
                output_hidden_states=None, return_dict=None):
        encoded = self.squeezebert(input_ids, attention_mask, token_type_ids, position_ids,
                                   output_attentions, output_hidden_states, return_dict=True)
        logits = self.qa_outputs(encoded.last_hidden_state)
        start_logits, end_logits = logits[..., 0], logits[..., 1]
        loss = None
        if start_positions is not None and end_positions is not None:
            # Positions outside the sequence are clamped to L and ignored, as in HF.
            length = start_logits.shape[1]
            start = start_positions.reshape([-1]).astype("int64").clip(0, length)
            end = end_positions.reshape([-1]).astype("int64").clip(0, length)
            loss = (F.cross_entropy(start_logits, start, ignore_index=length)
                    + F.cross_entropy(end_logits, end, ignore_index=length)) / 2
        return self.head_output(QuestionAnsweringModelOutput, return_dict, loss, start_logits, end_logits,
                           encoded=encoded)


class SqueezeBertForMultipleChoice(SqueezeBertPreTrainedModel):
    """Scores each choice. inputs [B, C, L] -> logits [B, C] (or (loss, logits));
    MultipleChoiceModelOutput with return_dict=True."""

    def __init__(self, config=None, **kwargs):
        super().__init__(config, **kwargs)
        self.squeezebert = self.encoder_for(config)
        self.dropout = nn.Dropout(self.config.hidden_dropout_prob)
        self.classifier = nn.Linear(self.config.hidden_size, 1)
        self.init_weights(self.classifier)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, position_ids=None,
                labels=None, output_attentions=None, output_hidden_states=None, return_dict=None):
        num_choices = input_ids.shape[1]
        flat = [None if t is None else t.reshape([-1, t.shape[-1]])
                for t in (input_ids, attention_mask, token_type_ids, position_ids)]
        encoded = self.squeezebert(*flat, output_attentions, output_hidden_states, return_dict=True)
        logits = self.classifier(self.dropout(encoded.pooler_output)).reshape([-1, num_choices])
        loss = None if labels is None else _cross_entropy(logits, labels.reshape([-1]))
        return self.head_output(MultipleChoiceModelOutput, return_dict, loss, logits, encoded=encoded)


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
    """forward -> prediction scores [B, L, vocab_size] (or (loss, scores) with labels, -100 ignored);
    MaskedLMOutput with return_dict=True. The decoder is tied to the word embeddings."""

    def __init__(self, config=None, **kwargs):
        super().__init__(config, **kwargs)
        self.squeezebert = self.encoder_for(config)
        self.cls = nn.Layer()
        self.cls.predictions = SqueezeBertLMPredictionHead(
            self.config, self.squeezebert.embeddings.word_embeddings)
        self.init_weights(self.cls)

    def get_output_embeddings(self) -> nn.Embedding:
        return self.cls.predictions.word_embeddings

    def resize_token_embeddings(self, new_num_tokens: int | None = None) -> nn.Embedding:
        """As the base class, and the tied decoder and its bias follow (new bias entries 0)."""
        embeddings = super().resize_token_embeddings(new_num_tokens)
        head = self.cls.predictions
        head.__dict__["word_embeddings"] = embeddings
        old_bias, rows = head.bias, embeddings.weight.shape[0]
        if old_bias.shape[0] != rows:
            keep = min(rows, old_bias.shape[0])
            head.bias = head.create_parameter([rows], dtype=old_bias.dtype, is_bias=True)
            with paddle.no_grad():
                head.bias[:keep] = old_bias[:keep]
        return embeddings

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, position_ids=None,
                labels=None, output_attentions=None, output_hidden_states=None, return_dict=None):
        encoded = self.squeezebert(input_ids, attention_mask, token_type_ids, position_ids,
                                   output_attentions, output_hidden_states, return_dict=True)
        scores = self.cls.predictions(encoded.last_hidden_state)
        loss = None
        if labels is not None:
            loss = _cross_entropy(scores.reshape([-1, scores.shape[-1]]), labels.reshape([-1]))
        return self.head_output(MaskedLMOutput, return_dict, loss, scores, encoded=encoded)


MODEL_CLASSES = {name: globals()[name] for name in ARCHITECTURES}
