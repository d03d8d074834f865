"""SqueezeBERT inference on the CPU through the project's own kernels (`kernels/inference_cpu.cc`).

The packed formulation of `packed_encoder.py` (per-token work on the real tokens only), with the
packing of the real tokens, the embeddings, the whole encoder and the head in one custom op
(sb_infer_classify): oneDNN matmuls (AMX in bf16) with the bias, GELU and residual fused in, attention
per sequence over its real tokens, then the pooler and classifier on one row per sequence. Each batch is
one op call. (Packing with numpy and two head ops around the encoder took ~2 ms of a ~32 ms bf16 batch,
but folding them into the op measured no faster: that time was mostly the first Python work after the
op, slow on caches the encoder had evicted, and it moved to the next.) `run_qqp_paddle.py --backend
kernels` runs it.

Precision "fp32" matches the reference model to ~1e-6; "bf16" rounds the matmul inputs and weights,
Q, K, V and (where attention runs on AMX tiles) the attention weights to bf16, and keeps the softmax,
LayerNorm and residual stream in fp32. SQUEEZEBERT_NO_AMX_ATTENTION=1 in the environment (read once
per process) runs bf16 attention with AVX-512 dot products instead, for comparisons.

Like the exported program, the pooled output of a row whose first position is padding is the
pooler applied to zeros (the reference would pool a padded query position).
"""
from __future__ import annotations

import weakref

import numpy as np
import paddle

from . import cpu_kernels
from .modeling import SqueezeBertForSequenceClassification
from .packed_encoder import PackedAttention, product_weight

PRECISIONS = ("fp32", "bf16")
# what the op's stage clock times (inference_cpu.cc, sb_infer_profile), in order
STAGES = ("embeddings", "qkv", "attention", "post_attention", "layernorm1", "intermediate_gelu",
          "output_residual", "layernorm2")
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


def available(quiet: bool = False) -> bool:
    """Whether the kernels build and load here (`unavailable_reason()` says why not; logged as a warning
    too, unless `quiet`: for callers that say it themselves)."""
    return cpu_kernels.load_inference(quiet) is not None


def unavailable_reason() -> str | None:
    return None if available() else cpu_kernels.inference_failure()


def embedding_weights(embeddings) -> list[paddle.Tensor]:
    """The word, position and type tables and the LayerNorm, in the order the op reads."""
    e = embeddings
    return [e.word_embeddings.weight, e.position_embeddings.weight, e.token_type_embeddings.weight,
            e.LayerNorm.weight, e.LayerNorm.bias]


def layer_weights(layer) -> list[paddle.Tensor]:
    """One SqueezeBertModule's 12 tensors in the order the op reads (see inference_cpu.cc)."""
    qkv = PackedAttention(layer.attention)
    post, inner, outer = layer.post_attention.conv1d, layer.intermediate.conv1d, layer.output.conv1d
    norm1, norm2 = layer.post_attention.layernorm, layer.output.layernorm
    return [qkv.qkv_weight, qkv.qkv_bias.reshape([-1]), product_weight(post), post.bias, norm1.weight, norm1.bias,
            product_weight(inner), inner.bias, product_weight(outer), outer.bias, norm2.weight, norm2.bias]


# what indexes the op's embedding tables: the input, in words, and the config field of the table's size
TABLES = {"input_ids": ("token ids", "vocab_size"), "token_type_ids": ("token types", "type_vocab_size")}


def check_in_table(name: str, values: np.ndarray, mask: np.ndarray, size: int) -> None:
    """ValueError unless `values` index a table of `size` rows at the real tokens (padding is never
    read): said here in words, not as the OSError of the op's own check."""
    outside = (mask == 1) & ((values < 0) | (values >= size))
    if outside.any():
        at = tuple(int(i) for i in np.argwhere(outside)[0])
        what, field = TABLES[name]
        raise ValueError(f"{name} holds {values[at]} at {list(at)}: {what} must lie between 0 and {size - 1} "
                         f"(the model's {field} is {size})")


def checked_inputs(input_ids, attention_mask=None, token_type_ids=None, table_sizes=None):
    """The batch as the op takes it: int64 ids, mask and types [B, L] (mask all ones where None, as in
    transformers; types 0 where None). Ids and types must be integers and the mask 0/1 (ValueError
    otherwise: a float id would be truncated, and a fractional mask has no packed meaning); with
    `table_sizes` (the word, type and position tables' rows), the real tokens' ids, types and positions
    must index them."""
    for name, array in (("input_ids", input_ids), ("token_type_ids", token_type_ids)):
        if array is not None and np.asarray(array).dtype.kind not in "iub":
            raise ValueError(f"{name} must be integers, got {np.asarray(array).dtype}")
    ids = np.asarray(input_ids)
    mask = np.ones_like(ids) if attention_mask is None else np.asarray(attention_mask)
    if not np.isin(mask, (0, 1)).all():
        raise ValueError("attention_mask must hold only 0 and 1")
    types = np.zeros_like(ids) if token_type_ids is None else np.asarray(token_type_ids)
    if ids.ndim != 2 or mask.shape != ids.shape or types.shape != ids.shape:
        raise ValueError(f"input_ids, attention_mask and token_type_ids must be [batch, length] alike, got "
                         f"{ids.shape}, {mask.shape}, {types.shape}")
    ids, mask, types = (np.ascontiguousarray(a, dtype=np.int64) for a in (ids, mask, types))
    if table_sizes:
        words, type_rows, positions = table_sizes
        for name, values, size in zip(TABLES, (ids, types), (words, type_rows)):
            check_in_table(name, values, mask, size)
        late = np.argwhere(mask[:, positions:] == 1)
        if len(late):
            raise ValueError(f"attention_mask marks a real token at position {positions + int(late[0][1])} of row "
                             f"{int(late[0][0])}: the model has {positions} positions "
                             f"(max_position_embeddings); cut the inputs to {positions} tokens")
    return ids, mask, types


class CpuEncoder:
    """`model` (a SqueezeBertModel or SqueezeBertForSequenceClassification, eval) as a callable on
    int arrays [B, L] -> the logits (or, without a head, the pooled output), float32 numpy.
    The weights are copied when the encoder is built: after changing the model, build a new one."""

    def __init__(self, model, precision: str = "fp32", threads: int = 1):
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, not {precision!r}")
        if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)):
            raise TypeError(f"threads must be an int (0: OpenMP's default), not {threads!r}")
        self._ops = cpu_kernels.load_inference()
        if self._ops is None:
            raise RuntimeError(f"the CPU inference kernels are unavailable: {cpu_kernels.inference_failure()}")
        base = model.base_model
        problem = config_problem(base.config)
        if problem:
            raise ValueError(problem)
        # A snapshot, like the packed encoder weights: a later change to `model` does not reach it.
        # (Paddle's Linear weights are [in, out], as the op reads them.)
        head = [base.pooler.dense]
        if isinstance(model, SqueezeBertForSequenceClassification):
            head.append(model.classifier)
        self.threads = int(threads)
        with paddle.no_grad():
            tensors = (embedding_weights(base.embeddings) + [w for l in base.encoder.layers for w in layer_weights(l)]
                       + [w for layer in head for w in (layer.weight, layer.bias)])
            weights = [w.astype("float32").cpu() for w in tensors]
            # the rows of the word, type and position tables, which checked_inputs holds the inputs to
            self._table_sizes = (weights[0].shape[0], weights[2].shape[0], weights[1].shape[0])
            # The layers' LayerNorms keep 1e-12 whatever the config says (as in transformers); the
            # config's layer_norm_eps reaches the embeddings' only.
            layer_eps = base.encoder.layers[0].output.layernorm._epsilon
            self._handle = self._ops.sb_infer_pack(weights, base.config.num_attention_heads, layer_eps,
                                                   base.embeddings.LayerNorm._epsilon, precision == "bf16",
                                                   len(head))
        # Released with the encoder, or at exit before Paddle is torn down (a __del__ would run after).
        weakref.finalize(self, self._ops.sb_infer_release, self._handle)
        self.precision = precision

    def profile(self, enable: bool = True) -> dict:
        """Turn the op's per-stage clock on (or off). Returns what it timed since the previous call:
        seconds per stage (STAGES) and the number of calls ("calls")."""
        values = self._ops.sb_infer_profile(self._handle, enable).numpy()
        return {"calls": int(values[-1]), **dict(zip(STAGES, values[:-1].tolist()))}

    def implementations(self, rows: int = 256) -> list[str]:
        """The matmul implementations oneDNN picks for the four projections at `rows` tokens."""
        names = self._ops.sb_infer_implementations(self._handle, rows)
        return bytes(names.numpy()).decode().split()

    def __call__(self, input_ids, attention_mask=None, token_type_ids=None) -> np.ndarray:
        out, _ = self._run(*checked_inputs(input_ids, attention_mask, token_type_ids, self._table_sizes))
        return out.numpy()

    def _run(self, ids: np.ndarray, mask: np.ndarray, types: np.ndarray):
        """The op on checked int64 [B, L] arrays: (head output [B, N], last hidden states of the real
        tokens [T, H]) as tensors."""
        with paddle.no_grad():
            return self._ops.sb_infer_classify(*map(paddle.to_tensor, (ids, mask, types)), self._handle,
                                               self.threads)
