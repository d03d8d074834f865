"""The Hugging Face <-> Paddle key map for SqueezeBERT, with strict checks. Numpy only, no model code.

Our module names equal HF's, so a key maps by a prefix rename (HF's head models keep the encoder under
"transformer.", ours and PaddleNLP's under "squeezebert."; base models use no prefix) plus a transpose
of the `nn.Linear` weights, which Paddle stores as [in, out] and torch as [out, in]. Conv weights keep
Conv1d's [out, in/groups, 1] shape in both. Every expected key must be filled, every source key used
or explicitly dropped, every shape must match: otherwise `ConversionError` lists all that is wrong.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .checkpoint import (CONFIG_FILE, SAFETENSORS_FILE, SAFETENSORS_INDEX,
                         WEIGHTS_FILE, CheckpointError, read_pdparams, read_safetensors, shard_files,
                         weights_problem, write_pdparams)
from .errors import ExpectedError
from .fileio import atomic_files, atomic_write_bytes, atomic_write_text, clean_interrupted_writes
from .configuration import ARCHITECTURES, HF_CONFIG_FILE, ConfigError, SqueezeBertConfig
from .demo import MARKER_FILE
from .input_files import is_present, require_regular_file

HF_BIN_FILE = "pytorch_model.bin"
VOCAB_FILE = "vocab.txt"

HF_PREFIX = "transformer."
PADDLE_PREFIX = "squeezebert."

# The nn.Linear weights: the only tensors whose layout differs between the frameworks.
TRANSPOSED_KEYS = (
    "pooler.dense.weight",
    "classifier.weight",
    "qa_outputs.weight",
    "cls.predictions.transform.dense.weight",
)

# HF keys we deliberately do not carry over, and why.
DROPPED_KEYS = {
    "embeddings.position_ids": "buffer (arange) that older checkpoints saved; recomputed at run time",
    "cls.predictions.decoder.weight": "tied to embeddings.word_embeddings.weight (checked equal)",
    "cls.predictions.decoder.bias": "the same tensor as cls.predictions.bias (checked equal)",
}
TIED_TO = {"cls.predictions.decoder.weight": "embeddings.word_embeddings.weight",
           "cls.predictions.decoder.bias": "cls.predictions.bias"}


class ConversionError(ExpectedError):
    """A checkpoint that cannot be converted; the message lists every problem found."""


@dataclass
class ConversionReport:
    architecture: str
    tensors: int
    parameters: int
    transposed: list[str]
    dropped: list[str]


# -- what a model of a given config and architecture holds -------------------------------------

def base_shapes(c: SqueezeBertConfig) -> dict[str, tuple]:
    """Paddle shapes of the encoder's parameters (no prefix)."""
    h = c.hidden_size
    shapes = {
        "embeddings.word_embeddings.weight": (c.vocab_size, c.embedding_size),
        "embeddings.position_embeddings.weight": (c.max_position_embeddings, c.embedding_size),
        "embeddings.token_type_embeddings.weight": (c.type_vocab_size, c.embedding_size),
        "embeddings.LayerNorm.weight": (h,), "embeddings.LayerNorm.bias": (h,),
    }
    for layer in range(c.num_hidden_layers):
        p = f"encoder.layers.{layer}."
        for name, (cin, cout, groups) in c.conv_shapes().items():
            shapes[p + name + ".weight"] = (cout, cin // groups, 1)
            shapes[p + name + ".bias"] = (cout,)
        for norm in ("post_attention.layernorm", "output.layernorm"):
            shapes[p + norm + ".weight"] = (h,)
            shapes[p + norm + ".bias"] = (h,)
    shapes["pooler.dense.weight"] = (h, h)
    shapes["pooler.dense.bias"] = (h,)
    return shapes


def head_shapes(c: SqueezeBertConfig, architecture: str) -> dict[str, tuple]:
    """Paddle shapes of a head's own parameters."""
    h = c.hidden_size
    if architecture in ("SqueezeBertForSequenceClassification", "SqueezeBertForTokenClassification"):
        return {"classifier.weight": (h, c.num_labels), "classifier.bias": (c.num_labels,)}
    if architecture == "SqueezeBertForMultipleChoice":
        return {"classifier.weight": (h, 1), "classifier.bias": (1,)}
    if architecture == "SqueezeBertForQuestionAnswering":
        return {"qa_outputs.weight": (h, c.num_labels), "qa_outputs.bias": (c.num_labels,)}
    if architecture == "SqueezeBertForMaskedLM":
        return {"cls.predictions.transform.dense.weight": (h, h),
                "cls.predictions.transform.dense.bias": (h,),
                "cls.predictions.transform.LayerNorm.weight": (h,),
                "cls.predictions.transform.LayerNorm.bias": (h,),
                "cls.predictions.bias": (c.vocab_size,)}
    return {}


def paddle_shapes(config: SqueezeBertConfig, architecture: str) -> dict[str, tuple]:
    """Every key (with its prefix) and shape of a Paddle model's state dict."""
    base = base_shapes(config)
    if architecture == "SqueezeBertModel":
        return base
    return {PADDLE_PREFIX + k: v for k, v in base.items()} | head_shapes(config, architecture)


def detect_architecture(keys, config_architectures=()) -> str:
    """Which model a set of HF keys belongs to; the config's `architectures` breaks ties."""
    declared = next((a for a in config_architectures if a in ARCHITECTURES), None)
    if any(k.startswith("cls.predictions.") for k in keys):
        return "SqueezeBertForMaskedLM"
    if "qa_outputs.weight" in keys:
        return "SqueezeBertForQuestionAnswering"
    if "classifier.weight" in keys:
        if declared in ("SqueezeBertForTokenClassification", "SqueezeBertForMultipleChoice"):
            return declared
        return "SqueezeBertForSequenceClassification"
    return "SqueezeBertModel"


# -- the key map -----------------------------------------------------------------------------

def _strip(key: str, prefix: str) -> str:
    return key[len(prefix):] if key.startswith(prefix) else key


def _problems(missing, unexpected, mismatched) -> str:
    parts = []
    if missing:
        parts.append(f"missing keys ({len(missing)}): {', '.join(missing)}")
    if unexpected:
        parts.append(f"unexpected keys ({len(unexpected)}): {', '.join(unexpected)}")
    if mismatched:
        parts.append(f"shape mismatches ({len(mismatched)}): {'; '.join(mismatched)}")
    return " | ".join(parts)


def hf_to_paddle(hf_state: dict[str, np.ndarray], config: SqueezeBertConfig, architecture: str,
                 progress=None) -> tuple[dict[str, np.ndarray], ConversionReport]:
    """Map an HF state dict to a Paddle one, strictly. `progress` wraps the key iterator (tqdm)."""
    expected = paddle_shapes(config, architecture)
    prefix = "" if architecture == "SqueezeBertModel" else PADDLE_PREFIX
    base_keys = set(base_shapes(config))
    out, unexpected, mismatched, transposed, dropped = {}, [], [], [], []
    mismatched_targets = set()
    plain = {_strip(k, HF_PREFIX): v for k, v in hf_state.items()}
    items = plain.items() if progress is None else progress(plain.items())
    for key, value in items:
        if key in DROPPED_KEYS:
            tied = TIED_TO.get(key)
            if tied is not None and (tied not in plain or not np.array_equal(plain[tied], value)):
                raise ConversionError(f"{key} is not tied to {tied}; an untied decoder cannot be "
                                      f"represented by SqueezeBertForMaskedLM")
            dropped.append(key)
            continue
        target = (prefix + key) if key in base_keys else key
        if target not in expected:
            unexpected.append(key)
            continue
        if key in TRANSPOSED_KEYS:
            value = np.ascontiguousarray(value.T)
            transposed.append(key)
        if tuple(value.shape) != expected[target]:
            mismatched.append(f"{key}: expected {expected[target]}, found {tuple(value.shape)}")
            mismatched_targets.add(target)
            continue
        out[target] = value
    missing = [k for k in expected if k not in out and k not in mismatched_targets]
    if missing or unexpected or mismatched:
        raise ConversionError(_problems(missing, unexpected, mismatched))
    params = int(sum(v.size for v in out.values()))
    return out, ConversionReport(architecture, len(out), params, transposed, dropped)


def paddle_to_hf(state: dict[str, np.ndarray], config: SqueezeBertConfig,
                 architecture: str) -> dict[str, np.ndarray]:
    """The inverse map, to the keys HF's `save_pretrained` writes (tied tensors stored once)."""
    expected = paddle_shapes(config, architecture)
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    mismatched = [f"{k}: expected {expected[k]}, found {tuple(v.shape)}"
                  for k, v in state.items() if k in expected and tuple(v.shape) != expected[k]]
    if missing or unexpected or mismatched:
        raise ConversionError(_problems(missing, unexpected, mismatched))
    out = {}
    for key, value in state.items():
        plain = _strip(key, PADDLE_PREFIX)
        if plain in TRANSPOSED_KEYS:
            value = np.ascontiguousarray(value.T)
        out[HF_PREFIX + plain if key.startswith(PADDLE_PREFIX) else key] = value
    return out


# -- reading and writing directories -----------------------------------------------------------

def read_config(path: Path, hint: str) -> SqueezeBertConfig:
    """An HF config.json or our model_config.json; unknown fields (architectures, ...) land in extra."""
    if not is_present(path):
        raise ConversionError(f"{path} not found; {hint}")
    try:
        return SqueezeBertConfig.from_json_file(path)
    except ConfigError as err:
        raise ConversionError(str(err)) from None


def read_hf_weights(model_dir: Path) -> tuple[dict[str, np.ndarray], Path]:
    """Load safetensors (preferred; single or sharded) or pytorch_model.bin (weights_only)."""
    single, index, binary = (model_dir / n for n in (SAFETENSORS_FILE, SAFETENSORS_INDEX, HF_BIN_FILE))
    try:
        if is_present(single):
            return read_safetensors([single]), single
        if is_present(index):
            return read_safetensors(shard_files(index)), index
    except CheckpointError as err:
        raise ConversionError(str(err)) from None
    if is_present(binary):
        require_regular_file(binary, ConversionError, "download the checkpoint again")
        return _read_torch_bin(binary), binary
    raise ConversionError(f"{model_dir}: no weights file ({SAFETENSORS_FILE} or {HF_BIN_FILE}); "
                          f"download the checkpoint again")


def _read_torch_bin(path: Path) -> dict[str, np.ndarray]:
    import torch  # only for legacy .bin checkpoints; never unpickles anything but tensors
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        message = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ConversionError(f"{path}: unreadable PyTorch weights ({message}); the file is truncated, "
                              f"corrupt or not a plain state dict, download it again") from None
    if not isinstance(state, dict):
        raise ConversionError(f"{path}: expected a state dict, found {type(state).__name__}")
    bad = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise ConversionError(f"{path}: entries {bad[:5]} are not tensors; expected a plain state dict, "
                              f"download the checkpoint again")
    sparse = [k for k, v in state.items() if v.layout != torch.strided]
    if sparse:
        raise ConversionError(f"{path}: tensors {sparse[:5]} are sparse; a checkpoint stores dense weights, "
                              f"save it with the tensors made dense (`.to_dense()`)")
    out = {}
    for key, tensor in state.items():
        if tensor.dtype == torch.bfloat16:
            raise ConversionError(f"{path}: {key} is bfloat16, which numpy cannot hold; save the "
                                  f"checkpoint in float32 or float16")
        out[key] = tensor.detach().cpu().numpy()
    return out


def convert_hf_dir(hf_dir, out_dir=None, progress=None) -> ConversionReport:
    """Convert an HF checkpoint directory into a Paddle model directory (default: in place).

    Everything is read and checked before anything is written. A new output directory appears whole
    or not at all; in an existing one (in place: beside the HF files) the files appear as
    `fileio.atomic_files` guarantees: model_state.pdparams last, so where it exists the config, vocab
    and random-weights marker beside it are its own.
    """
    hf_dir = Path(hf_dir)
    out_dir = Path(out_dir) if out_dir else hf_dir
    if not hf_dir.is_dir():
        raise ConversionError(f"{hf_dir}: no such directory")
    config = read_config(hf_dir / HF_CONFIG_FILE, "a Hugging Face checkpoint directory needs config.json")
    vocab = hf_dir / VOCAB_FILE
    if not is_present(vocab):
        raise ConversionError(f"{vocab} not found; the checkpoint's vocab.txt is needed by the tokenizer")
    require_regular_file(vocab, ConversionError, "the checkpoint's vocab.txt is needed by the tokenizer")
    hf_state, weights_file = read_hf_weights(hf_dir)
    architecture = detect_architecture(hf_state.keys() | {_strip(k, HF_PREFIX) for k in hf_state},
                                       config.extra.get("architectures") or ())
    state, report = hf_to_paddle(hf_state, config, architecture, progress)
    _check_weights(state, weights_file)
    paddle_config = config.replace(extra={**config.extra, "architectures": [architecture]})

    def fill(tmp: Path) -> None:
        write_pdparams(tmp / WEIGHTS_FILE, state)
        paddle_config.to_json_file(tmp / CONFIG_FILE)
        _copy_side_files(hf_dir, out_dir, tmp)

    _write_outputs(out_dir, fill, WEIGHTS_FILE)
    return report


def convert_paddle_dir(paddle_dir, out_dir) -> str:
    """Paddle model directory -> HF directory (model.safetensors, config.json, vocab). Returns the
    architecture. The files appear together as in `convert_hf_dir` (model.safetensors last)."""
    from safetensors.numpy import save
    paddle_dir, out_dir = Path(paddle_dir), Path(out_dir)
    config = read_config(paddle_dir / CONFIG_FILE, f"is {paddle_dir} a Paddle model directory?")
    try:
        state = read_pdparams(paddle_dir / WEIGHTS_FILE)
    except CheckpointError as err:
        raise ConversionError(str(err)) from None
    _check_weights(state, paddle_dir / WEIGHTS_FILE)
    declared = config.extra.get("architectures") or ()
    keys = {_strip(k, PADDLE_PREFIX) for k in state}
    architecture = detect_architecture(keys, declared)
    hf_state = paddle_to_hf(state, config, architecture)
    hf_config = {k: v for k, v in config.to_dict().items() if k != "num_labels"}
    hf_config["architectures"] = [architecture]
    id2label = {str(k): v for k, v in (config.extra.get("id2label") or {}).items()}
    if len(id2label) != config.num_labels:     # HF derives num_labels from id2label
        id2label = {str(i): f"LABEL_{i}" for i in range(config.num_labels)}
    hf_config["id2label"] = id2label
    hf_config["label2id"] = {v: int(k) for k, v in id2label.items()}

    def fill(tmp: Path) -> None:
        atomic_write_bytes(tmp / SAFETENSORS_FILE, save(hf_state, metadata={"format": "pt"}))
        atomic_write_text(tmp / HF_CONFIG_FILE, json.dumps(hf_config, indent=2, sort_keys=True) + "\n")
        _copy_side_files(paddle_dir, out_dir, tmp)

    _write_outputs(out_dir, fill, SAFETENSORS_FILE)
    return architecture


def _check_weights(state: dict[str, np.ndarray], path: Path) -> None:
    """Refuse weights that are not finite floats (checkpoint.weights_problem), naming the file."""
    problem = weights_problem(state)
    if problem:
        raise ConversionError(f"{path}: {problem}; download the checkpoint again")


def _write_outputs(out_dir: Path, fill, last: str) -> None:
    """`fill(tmp)`'s files into `out_dir` (see `fileio.atomic_files`), after removing what an earlier,
    killed run left there."""
    clean_interrupted_writes(out_dir)
    clean_interrupted_writes(out_dir.parent)
    atomic_files(out_dir, fill, last)


def _copy_side_files(src: Path, dst: Path, stage: Path) -> None:
    """The tokenizer's files, and the random-weights marker of a demo checkpoint (it must follow the
    weights through every conversion), into `stage` (bound for `dst`; nothing when dst is src)."""
    if dst.exists() and src.resolve() == dst.resolve():
        return
    for name in (VOCAB_FILE, "tokenizer_config.json", MARKER_FILE):
        if (src / name).is_file():
            atomic_write_bytes(stage / name, (src / name).read_bytes())
