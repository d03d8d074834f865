"""Model directories: file names, a safe `.pdparams` reader, save/load of models.

A Paddle model directory uses PaddleNLP's file names, so PaddleNLP loads it too:
    model_config.json      SqueezeBertConfig fields (plus "architectures")
    model_state.pdparams   the state dict (head models prefix the encoder with "squeezebert.")
    vocab.txt, tokenizer_config.json
"""
from __future__ import annotations

import logging
import os
import pickle
import shlex
from pathlib import Path

import numpy as np

from .configuration import CONFIG_FILE, HF_CONFIG_FILE, ConfigError, SqueezeBertConfig, size_problem
from .errors import ExpectedError
from .fileio import atomic_write_bytes
from .input_files import file_problem, is_present, require_regular_file
from .input_files import read_json_object as _read_json_object

logger = logging.getLogger("squeezebert_paddle")

WEIGHTS_FILE = "model_state.pdparams"
HOW_TO_GET = ("convert a Hugging Face checkpoint with `python convert_torch_to_paddle.py --model_dir DIR` "
              "(get one with `huggingface-cli download squeezebert/squeezebert-uncased --local-dir "
              "models/squeezebert-uncased`, or make random demo ones with "
              "`python convert_torch_to_paddle.py --demo`)")


class CheckpointError(ExpectedError):
    """A model directory or weights file that cannot be used; the message says what to do."""


# -- .pdparams without arbitrary unpickling ----------------------------------------------------

class _ArraysOnlyUnpickler(pickle.Unpickler):
    """Unpickles `paddle.save` state dicts (dicts of numpy arrays) and refuses anything else,
    so a malicious .pdparams cannot run code."""

    ALLOWED = {("numpy._core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("collections", "OrderedDict")}

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise _Refused(f"refusing to load {module}.{name}")


class _Refused(pickle.UnpicklingError):
    """A pickle naming a class outside the allow-list."""


# numpy dtype kinds a state dict may hold: bool, signed and unsigned integers, floats, complex.
# (Object, string, structured and datetime arrays are never weights; an object array also unpickles
# its elements, which only the allow-list above keeps harmless.)
NUMERIC_KINDS = "biufc"


def read_pdparams(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read a `paddle.save`d state dict into numpy arrays, safely: only numeric or bool arrays under
    string names pass; anything else is a CheckpointError naming the file and the entries."""
    if is_present(path):
        require_regular_file(path, CheckpointError, "pass the model directory's weights file")
    try:
        with open(path, "rb") as f:
            state = _ArraysOnlyUnpickler(f).load()
    except FileNotFoundError:
        raise CheckpointError(f"{path}: weights file not found; {HOW_TO_GET}") from None
    except _Refused as err:
        raise CheckpointError(f"{path}: {err}: the file holds objects other than arrays (a state dict never "
                              f"does; unpickling them could run code); do not use it, get the weights "
                              f"from a trusted source") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as err:
        raise CheckpointError(f"{path}: not a readable Paddle state dict ({err}); the file is "
                              f"truncated or corrupt, convert the checkpoint again") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: expected a dict of named tensors, found {type(state).__name__}")
    state.pop("StructuredToParameterName@@", None)
    bad = [k for k, v in state.items() if not isinstance(v, np.ndarray)]
    if bad:
        raise CheckpointError(f"{path}: entries {bad[:5]} are not tensors")
    names = [k for k in state if not isinstance(k, str)]
    if names:
        raise CheckpointError(f"{path}: entry names {names[:5]} are not strings; a state dict names its "
                              f"tensors, convert the checkpoint again")
    odd = [f"{k} ({v.dtype})" for k, v in state.items() if v.dtype.kind not in NUMERIC_KINDS or v.dtype.fields]
    if odd:
        raise CheckpointError(f"{path}: entries {', '.join(odd[:5])}{' ...' if len(odd) > 5 else ''} are not "
                              f"numeric tensors; a state dict holds numbers only, convert the checkpoint again")
    return state


def weights_problem(state: dict[str, np.ndarray]) -> str | None:
    """Why `state` cannot be a model's float weights, or None: tensors that are not floating-point
    (int, bool, complex) or hold NaN or infinity, each listed by name. (np.isfinite over the full-size
    model's 51.7M floats takes about 0.03 s.)"""
    not_float = [f"{k} ({v.dtype})" for k, v in state.items() if v.dtype.kind != "f"]
    if not_float:
        return (f"tensors {', '.join(not_float[:5])}{' ...' if len(not_float) > 5 else ''} are not floating-point; "
                f"weights are float16/32/64")
    non_finite = [k for k, v in state.items() if not np.isfinite(v).all()]
    if non_finite:
        return (f"tensors {', '.join(non_finite[:5])}{' ...' if len(non_finite) > 5 else ''} hold NaN or "
                f"infinite values ({len(non_finite)} of {len(state)} tensors)")
    return None


def write_pdparams(path: str | os.PathLike, state: dict[str, np.ndarray]) -> None:
    """Write a state dict in `paddle.save`'s format (a pickled dict of numpy arrays), atomically."""
    payload = {k: np.ascontiguousarray(v) for k, v in state.items()}
    atomic_write_bytes(path, pickle.dumps(payload, protocol=4))


# -- model directories -----------------------------------------------------------------------

HF_WEIGHTS_FILES = ("model.safetensors", "pytorch_model.bin")
GET_CHECKPOINTS = ("get the released checkpoints (downloaded and converted into models/<name>) with "
                   "`python convert_torch_to_paddle.py --download` (or `huggingface-cli download "
                   "squeezebert/<name> --local-dir models/<name>`, then `python convert_torch_to_paddle.py`), "
                   "or random-weight ones at the released configurations, offline, with "
                   "`python convert_torch_to_paddle.py --demo`")


def require_model_dir(model_dir: str | os.PathLike, files=(CONFIG_FILE, WEIGHTS_FILE),
                      check_vocab: bool = True) -> Path:
    """`model_dir` when it holds `files`; with `check_vocab` (what the scripts need) also a valid
    model_config.json and a vocab.txt the model's embedding table can take (`check_vocab_fits`).
    Otherwise a CheckpointError saying what the directory is (missing, empty, an
    unconverted Hugging Face checkpoint) and the command that makes it usable."""
    model_dir = Path(model_dir)
    odd = [f"{name} is {file_problem(model_dir / name)}" for name in files
           if is_present(model_dir / name) and file_problem(model_dir / name)]
    if odd:
        raise CheckpointError(f"model directory {model_dir}: {'; '.join(odd)}; restore the file from the "
                              f"checkpoint's source")
    missing = [name for name in files if not (model_dir / name).is_file()]
    if not missing:
        if check_vocab:
            vocab_size = None
            if CONFIG_FILE in files:      # every field checked now, before a script reads its data
                try:
                    vocab_size = SqueezeBertConfig.from_json_file(model_dir / CONFIG_FILE).vocab_size
                except ConfigError as err:
                    raise CheckpointError(str(err)) from None
            check_vocab_fits(model_dir, vocab_size)
        return model_dir
    if is_hf_checkpoint(model_dir):
        found = [n for n in (HF_CONFIG_FILE, *HF_WEIGHTS_FILES) if (model_dir / n).is_file()]
        raise CheckpointError(f"{model_dir} is a Hugging Face checkpoint ({', '.join(found)}), not converted for "
                              f"Paddle yet (no {', '.join(missing)}); convert it in place with "
                              f"`python convert_torch_to_paddle.py --model_dir {shlex.quote(str(model_dir))}`")
    state = ("does not exist" if not model_dir.is_dir() else "is empty" if not any(model_dir.iterdir())
             else f"lacks {', '.join(missing)}")
    raise CheckpointError(f"model directory {model_dir} {state}; a converted Paddle model directory holds "
                          f"{CONFIG_FILE}, {WEIGHTS_FILE} and vocab.txt: {GET_CHECKPOINTS}")


def vocab_problem(model_dir: str | os.PathLike, vocab_size: int | None = None) -> str | None:
    """Why the vocab.txt in `model_dir` cannot feed the model there, or None (also when there is no
    vocab.txt): the tokenizer gives ids up to its line count - 1, which must be rows of the embedding
    table (`vocab_size`, default: read from the directory's config)."""
    model_dir = Path(model_dir)
    vocab = model_dir / "vocab.txt"
    if not is_present(vocab):
        return None
    problem = file_problem(vocab)
    if problem:
        return f"{vocab} is {problem}"
    if vocab_size is None:
        config = next((model_dir / n for n in (CONFIG_FILE, HF_CONFIG_FILE) if is_present(model_dir / n)), None)
        if config is None:
            return None
        vocab_size = read_json_object(config).get("vocab_size")
        if not isinstance(vocab_size, int):
            return None                    # the config's own check names that
    with open(vocab, "rb") as f:
        data = f.read()
    entries = data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1)
    if entries > vocab_size:
        return (f"{vocab} has {entries} entries but the model's vocab_size is {vocab_size}: ids past "
                f"{vocab_size - 1} have no embedding; use the vocab.txt the checkpoint was trained with")
    return None


def check_vocab_fits(model_dir: str | os.PathLike, vocab_size: int | None = None) -> None:
    """Raise CheckpointError with `vocab_problem`'s line, if any. Call it wherever a script pairs a
    model directory's tokenizer with its model."""
    problem = vocab_problem(model_dir, vocab_size)
    if problem:
        raise CheckpointError(problem)


def is_hf_checkpoint(model_dir: str | os.PathLike) -> bool:
    """Whether `model_dir` holds a Hugging Face checkpoint (config.json and its weights)."""
    model_dir = Path(model_dir)
    return (model_dir / HF_CONFIG_FILE).is_file() and any((model_dir / n).is_file() for n in HF_WEIGHTS_FILES)


def save_pretrained(model, model_dir: str | os.PathLike) -> None:
    """Write config and weights (each atomically) into `model_dir`."""
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    config = model.config.replace(extra={**model.config.extra, "architectures": [type(model).__name__]})
    state = {k: v.numpy() for k, v in model.state_dict().items()}
    write_pdparams(model_dir / WEIGHTS_FILE, state)
    config.to_json_file(model_dir / CONFIG_FILE)


def adapt_state_dict(state: dict, expected: dict[str, tuple], prefix: str):
    """Fit a saved state dict to a model's keys across base/head layouts.

    A head model's encoder keys carry `prefix` ("squeezebert."); a base model's do not. Returns
    (state with the model's key names, keys of the model not in the file, file keys not used).
    """
    model_has_prefix = any(k.startswith(prefix) for k in expected)
    file_has_prefix = any(k.startswith(prefix) for k in state)
    if model_has_prefix and not file_has_prefix:        # base checkpoint into a head model
        state = {prefix + k: v for k, v in state.items()}
    elif file_has_prefix and not model_has_prefix:      # head checkpoint into a base model
        state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)} | {
            k: v for k, v in state.items() if not k.startswith(prefix)}
    missing = [k for k in expected if k not in state]
    unused = [k for k in state if k not in expected]
    return {k: v for k, v in state.items() if k in expected}, missing, unused


def load_pretrained(cls, model_dir: str | os.PathLike, config=None, ignore_mismatched_sizes=False,
                    **config_overrides):
    """Build `cls` from a Paddle model directory. Config fields can be overridden (num_labels=2,
    hidden_dropout_prob=0.0, ...). A head missing from the file is newly initialised and a head in
    the file that `cls` lacks is ignored; both are logged. Anything else missing is an error."""
    model_dir = require_model_dir(model_dir, check_vocab=False)   # a library user may bring their own tokenizer
    if config is None:
        config = SqueezeBertConfig.from_json_file(model_dir / CONFIG_FILE)
    if config_overrides:
        config = config.replace(**config_overrides)
    model = cls(config)
    path = model_dir / WEIGHTS_FILE
    set_checked_state(model, read_pdparams(path), path, cls.base_model_prefix + ".", ignore_mismatched_sizes)
    return model


def set_checked_state(model, state: dict[str, np.ndarray], path: Path, prefix: str,
                      ignore_mismatched_sizes: bool = False) -> None:
    """Fill `model` (eval mode after) with `state` read from `path`, across base/head layouts (the
    encoder's keys under `prefix` in a head model). A head missing from the file is newly initialised,
    weights the model does not use are ignored (both logged); a missing encoder weight or a shape
    mismatch is a CheckpointError naming the file."""
    params = model.state_dict()
    expected = {k: tuple(v.shape) for k, v in params.items()}
    state, missing, unused = adapt_state_dict(state, expected, prefix)
    is_head = any(k.startswith(prefix) for k in expected)
    encoder_missing = [k for k in missing if not is_head or k.startswith(prefix)]
    if encoder_missing:
        raise CheckpointError(f"{path}: missing encoder weights {encoder_missing[:5]}"
                              f"{' ...' if len(encoder_missing) > 5 else ''}; the file does not match "
                              f"the model's config (convert or download the checkpoint again)")
    mismatched = [f"{k}: expected {expected[k]}, found {tuple(v.shape)}"
                  for k, v in state.items() if tuple(v.shape) != expected[k]]
    if mismatched and not ignore_mismatched_sizes:
        raise CheckpointError(f"{path}: shape mismatch for {'; '.join(mismatched[:5])} "
                              f"(ignore_mismatched_sizes=True, run_glue.py's --ignore_mismatched_sizes, "
                              f"re-initialises a head of a different size)")
    floating = {k: v for k, v in state.items() if params[k].is_floating_point()}
    problem = weights_problem(floating)
    if problem:
        raise CheckpointError(f"{path}: {problem}; convert or download the checkpoint again")
    where = path.parent
    if mismatched:
        state = {k: v for k, v in state.items() if tuple(v.shape) == expected[k]}
        logger.warning("%s: re-initialised weights of a different size: %s", where, "; ".join(mismatched))
    if missing:
        logger.warning("%s: newly initialised (not in the checkpoint; train them before use): %s",
                       where, ", ".join(missing))
    if unused:
        logger.warning("%s: ignored checkpoint weights that %s does not use: %s",
                       where, type(model).__name__, ", ".join(unused))
    import paddle
    for key, value in state.items():
        params[key].set_value(paddle.to_tensor(value).astype(params[key].dtype))
    model.eval()


# -- other model families (PaddleNLP's BERT) without PaddleNLP's unpickling loader -------------------

SAFETENSORS_FILE = "model.safetensors"
SAFETENSORS_INDEX = "model.safetensors.index.json"
PDPARAMS_INDEX = "model_state.pdparams.index.json"


def read_json_object(path: str | os.PathLike) -> dict:
    """A JSON object from `path` (UTF-8), or a CheckpointError naming the file and what is wrong."""
    return _read_json_object(path, CheckpointError)


def shard_files(index: Path) -> list[Path]:
    """The shard files a sharded checkpoint's `*.index.json` lists (its "weight_map" values)."""
    weight_map = read_json_object(index).get("weight_map")
    if not isinstance(weight_map, dict) or not weight_map or not all(isinstance(v, str) for v in weight_map.values()):
        raise CheckpointError(f"{index}: no \"weight_map\" of tensor names to shard files; restore the file "
                              f"from the checkpoint's source")
    shards = sorted(set(weight_map.values()))
    escaping = [s for s in shards if Path(s).is_absolute() or ".." in Path(s).parts]
    if escaping:
        raise CheckpointError(f"{index}: shard names {escaping[:3]} point outside {index.parent}")
    return [index.parent / s for s in shards]


def read_safetensors(paths) -> dict[str, np.ndarray]:
    """Tensors of one or more safetensors files (no code runs on load), as numpy arrays."""
    from safetensors.numpy import load_file
    state = {}
    for path in paths:
        if is_present(path):
            require_regular_file(path, CheckpointError, "download the checkpoint again")
        try:
            state.update(load_file(str(path)))
        except FileNotFoundError:
            raise CheckpointError(f"{path}: weights file not found (listed in the index?); download the "
                                  f"checkpoint again") from None
        except Exception as err:  # safetensors raises its own error types for corrupt headers/data
            if "bfloat16" in str(err):   # a valid file numpy cannot hold: not "corrupt"
                raise CheckpointError(f"{path}: holds bfloat16 tensors, which numpy cannot hold; save "
                                      f"the checkpoint in float32 or float16") from None
            raise CheckpointError(f"{path}: unreadable safetensors file ({err}); the file is truncated "
                                  f"or corrupt, download it again") from None
    return state


def read_model_weights(model_dir: Path) -> tuple[dict[str, np.ndarray], Path]:
    """(state dict, file) of the weights PaddleNLP's `from_pretrained` would pick in `model_dir`, in
    its order (sharded safetensors, safetensors, sharded .pdparams, .pdparams), each read without
    arbitrary unpickling: a .pdparams holding anything but arrays is refused."""
    index, single = model_dir / SAFETENSORS_INDEX, model_dir / SAFETENSORS_FILE
    pd_index, pd_single = model_dir / PDPARAMS_INDEX, model_dir / WEIGHTS_FILE
    if index.is_file():
        return read_safetensors(shard_files(index)), index
    if single.is_file():
        return read_safetensors([single]), single
    if pd_index.is_file():
        state = {}
        for shard in shard_files(pd_index):
            state.update(read_pdparams(shard))
        return state, pd_index
    if pd_single.is_file():
        return read_pdparams(pd_single), pd_single
    raise CheckpointError(f"{model_dir}: no weights ({SAFETENSORS_FILE} or {WEIGHTS_FILE}, or their sharded "
                          f"index); pass a directory saved by PaddleNLP's save_pretrained")


def load_paddlenlp_model(cls, model_dir: str | os.PathLike, ignore_mismatched_sizes: bool = False,
                         **config_overrides):
    """A PaddleNLP model class `cls` (e.g. BertForSequenceClassification) built from the config in
    `model_dir` and filled with its weights through `read_model_weights`, never through PaddleNLP's
    loader (which unpickles .pdparams files whole, so a crafted file runs code). Same rules as
    `load_pretrained` for heads and shapes; returns the model in eval mode."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise CheckpointError(f"{model_dir}: no such model directory")
    config_files = [model_dir / n for n in (HF_CONFIG_FILE, CONFIG_FILE) if (model_dir / n).is_file()]
    if not config_files:
        raise CheckpointError(f"{model_dir}: no config.json; pass a directory saved by PaddleNLP's save_pretrained")
    read_json_object(config_files[0])                  # one line for a broken file, before PaddleNLP reads it
    try:
        config = cls.config_class.from_pretrained(str(model_dir), **config_overrides)
    except (ValueError, TypeError, KeyError, OSError) as err:
        raise CheckpointError(f"{config_files[0]}: not a usable {cls.config_class.__name__} "
                              f"({' '.join(str(err).split())[:200]})") from None
    state, path = read_model_weights(model_dir)
    model = cls(config)
    set_checked_state(model, state, path, cls.base_model_prefix + ".", ignore_mismatched_sizes)
    return model


# -- the sequence lengths a model takes (flags are checked against these at parse time) ---------------

DEFAULT_MAX_POSITIONS = 512          # the released SqueezeBERT and BERT checkpoints


def max_positions(model_dir: str | os.PathLike | None, config_names=(CONFIG_FILE, "config.json")) -> int:
    """The model's `max_position_embeddings` from the first of `config_names` in `model_dir`; the
    released checkpoints' 512 when there is no directory or no such field. A broken config file is a
    CheckpointError naming it."""
    for name in config_names:
        path = Path(model_dir) / name if model_dir is not None else None
        if path is not None and path.is_file():
            value = read_json_object(path).get("max_position_embeddings", DEFAULT_MAX_POSITIONS)
            problem = size_problem("max_position_embeddings", value)
            if problem:
                raise CheckpointError(f"{path}: {problem}")
            return value
    return DEFAULT_MAX_POSITIONS


def unsafe_pickle_refusal(err: BaseException) -> str | None:
    """One line when `err` (from transformers' `from_pretrained`) comes from torch's weights_only loader
    refusing a pickled .bin (objects other than tensors: loading them could run code), else None.
    transformers re-raises that as "Unable to load weights ... from_tf=True", naming the file in quotes."""
    causes, cause = [], err
    while cause is not None and len(causes) < 8:
        causes.append(cause)
        cause = cause.__cause__ or cause.__context__
    if not any(isinstance(c, pickle.UnpicklingError) for c in causes):
        return None
    quoted = str(err).split("'")
    name = quoted[1] if len(quoted) > 2 else "the PyTorch weights file"
    return (f"{name}: refused as unsafe: torch's weights_only loader found objects other than tensors in "
            f"this pickle (loading them could run code); do not use it, get the weights from a trusted source")


def hf_load_error_line(err: Exception) -> str | None:
    """One line for what transformers' `from_pretrained` raised on a damaged or mismatched model
    directory, or None when it is not that (a bug keeps its traceback)."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()] or [type(err).__name__]
    refused = unsafe_pickle_refusal(err)
    if refused:
        return refused
    if isinstance(err, (OSError, ValueError)):                 # missing files, unreadable config.json
        return lines[0]
    if type(err).__name__ == "SafetensorError":
        return f"unreadable safetensors file ({lines[0]}); it is truncated or corrupt, download or convert again"
    if isinstance(err, RuntimeError) and "size mismatch" in str(err):   # load_state_dict's shape check
        return f"the weights do not match config.json ({lines[-1]})"
    return None
