"""Export with `paddle.jit.save` (cached beside the weights) and run with `paddle.inference`.

The exported program takes int64 `input_ids`, `attention_mask`, `token_type_ids` of shape [batch, seq]
(both dynamic) and returns the classifier logits, or the pooled output for a model without a head.
The export is cached under `<model_dir>/inference/` (a user cache directory for a read-only model
directory) together with a fingerprint of the weights, the config and the model code, and a record of
each exported file; any change to those, or a damaged file, re-exports.
"""
from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Callable

import numpy as np
import paddle
from paddle import nn
from paddle.static import InputSpec

from . import activations, modeling, packed_encoder
from .checkpoint import CONFIG_FILE, WEIGHTS_FILE
from .errors import ExpectedError
from .fileio import (atomic_directory, clean_interrupted_writes, foreign_entry, manifest_problem,
                     read_cache_record, unwritable_reason, user_cache_dir, write_cache_record)
from .modeling import SqueezeBertForSequenceClassification

INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
CACHE_DIR = "inference"
META_FILE = "export.json"
PREFIX = "model"


class PairClassifier(nn.Layer):
    """What gets exported for SqueezeBERT: logits for a sequence-classification model, else the
    pooled output. `packed=True` runs the encoder in the packed formulation (`packed_encoder.py`:
    per-token work on the real tokens only); `packed=False` traces the reference model as it is."""

    def __init__(self, model, packed: bool = True):
        super().__init__()
        base = model.base_model
        self.encoder = packed_encoder.PackedEncoder(base) if packed else base
        self.classifier = model.classifier if isinstance(model, SqueezeBertForSequenceClassification) else None

    def forward(self, input_ids, attention_mask, token_type_ids):
        _, pooled = self.encoder(input_ids, attention_mask, token_type_ids)[:2]
        return pooled if self.classifier is None else self.classifier(pooled)


class WholeModel(nn.Layer):
    """What gets exported for another model (PaddleNLP's BERT: run_qqp_paddle.py --model_type bert),
    traced as it is: a classifier's logits, else the pooled output."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, token_type_ids):
        out = self.model(input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
        return out[1] if isinstance(out, tuple) else out


def remove_dropout(model) -> None:
    """Replace every Dropout with Identity: in eval mode it is the identity anyway, but a traced
    program still runs it as an op (a copy), and it splits the oneDNN bf16 regions."""
    for layer in model.sublayers(include_self=True):
        for name, sub in list(layer.named_children()):
            if isinstance(sub, nn.Dropout):
                setattr(layer, name, nn.Identity())


def export(model, out_dir: str | Path, packed: bool = True) -> Path:
    """Trace `model` (eval mode) to a static program with dynamic batch and length; returns prefix."""
    model = copy.deepcopy(model).eval()
    remove_dropout(model)
    spec = [InputSpec([None, None], "int64", name) for name in INPUT_NAMES]
    ours = isinstance(model, modeling.SqueezeBertPreTrainedModel)
    traced = PairClassifier(model, packed) if ours else WholeModel(model)
    static = paddle.jit.to_static(traced, input_spec=spec, full_graph=True)
    prefix = Path(out_dir) / PREFIX
    paddle.jit.save(static, str(prefix))
    return prefix


def fingerprint(model_dir: Path) -> str:
    digest = hashlib.sha256()
    code = [Path(m.__file__) for m in (modeling, activations, packed_encoder)] + [Path(__file__)]
    for path in (model_dir / WEIGHTS_FILE, model_dir / CONFIG_FILE, *code):
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 24), b""):
                digest.update(chunk)
    digest.update(paddle.__version__.encode())
    return digest.hexdigest()


def cached_export(model_dir: str | Path, architecture: str | None = None,
                  say: Callable[[str], None] = print) -> tuple[Path, bool]:
    """Export the model in `model_dir` once; returns (prefix, reused_cache). The program returns the
    logits of a sequence-classification checkpoint, else the encoder's pooled output.

    The cache is `<model_dir>/inference/`, or for a model directory this process cannot write,
    `export_cache_root()/<fingerprint>`. A cache is reused only when its export.json matches the
    fingerprint and every exported file, the program and parameters the predictor loads included,
    still has the size, mtime and head/tail digest recorded at export (`fileio.manifest_problem`);
    otherwise it is exported again. `say` gets one line for each of these decisions that is not the
    plain case (another cache location, a cache that does not verify). A cache location that is a file
    or a symbolic link is refused (ExpectedError) before any work."""
    model_dir = Path(model_dir)
    key = fingerprint(model_dir)
    cache = model_dir / CACHE_DIR
    refuse_odd_location(cache)
    problem = _cache_problem(cache, key)
    if problem is None:
        return cache / PREFIX, True
    reason = unwritable_reason(model_dir)
    if reason is not None:
        cache = export_cache_root() / key[:32]
        say(f"export: {reason}; the export is cached in {cache} instead")
        refuse_odd_location(cache)
        problem = _cache_problem(cache, key)
        if problem is None:
            return cache / PREFIX, True
    if problem != "none yet":
        say(f"export: the cache in {cache} is not usable ({problem}); exporting again")
    config = json.loads((model_dir / CONFIG_FILE).read_text(encoding="utf-8"))
    if architecture is None:
        declared = (config.get("architectures") or ["SqueezeBertModel"])[0]
        architecture = declared if declared == "SqueezeBertForSequenceClassification" else "SqueezeBertModel"
    model = modeling.MODEL_CLASSES[architecture].from_pretrained(model_dir)

    def fill(tmp: Path) -> None:
        export(model, tmp)
        write_cache_record(tmp, META_FILE, fingerprint=key, architecture=architecture)

    clean_interrupted_writes(cache.parent)     # what a killed or failed export left
    try:
        atomic_directory(cache, fill)
    except OSError:
        if _cache_problem(cache, key) is not None:  # not a concurrent run that renamed the same export first
            raise
    return cache / PREFIX, False


def export_cache_root() -> Path:
    """Where exports of read-only model directories go: $XDG_CACHE_HOME (else ~/.cache)/squeezebert_paddle/exports."""
    return user_cache_dir() / "exports"


def cache_location_problem(cache: Path) -> str | None:
    """Why `cache` cannot hold the export cache (something not ours is there), as one line, or None."""
    what = foreign_entry(cache)
    if what is None:
        return None
    return (f"{cache} is {what}, not the export cache directory; remove or rename it so that the export "
            f"can be cached there (or use --backend dygraph)")


def refuse_odd_location(cache: Path) -> None:
    problem = cache_location_problem(cache)
    if problem:
        raise ExpectedError(problem)


def _cache_problem(cache: Path, key: str) -> str | None:
    """Why the export cache in `cache` cannot be reused for fingerprint `key`, or None when it can."""
    meta, problem = read_cache_record(cache, META_FILE)
    if problem:
        return problem
    if meta.get("fingerprint") != key:
        return "the weights, config or model code changed"
    loaded = tuple(Path(p).name for p in program_files(cache / PREFIX))     # what the predictor reads
    return manifest_problem(cache, meta.get("files"), required=loaded)


def program_files(prefix: Path) -> tuple[str, str]:
    """Paddle 3 writes `prefix.json` (PIR); older exports `prefix.pdmodel`."""
    program = prefix.with_suffix(".json")
    if not program.is_file():
        program = prefix.with_suffix(".pdmodel")
    return str(program), str(prefix.with_suffix(".pdiparams"))


def pad_length(input_ids, attention_mask, token_type_ids, multiple: int, max_length: int | None):
    """int64 copies padded (mask 0) to a length that is a multiple of `multiple`, at most max_length.

    oneDNN builds and caches its kernels per tensor shape, and building them costs about as much
    as running them: with dynamic padding nearly every batch has a new length, so a few padded
    columns (which the mask hides) buy back far more than they cost.
    """
    arrays = [np.ascontiguousarray(a, dtype=np.int64) for a in (input_ids, attention_mask, token_type_ids)]
    length = arrays[0].shape[1]
    target = -(-length // multiple) * multiple
    if max_length is not None:
        target = min(target, max(length, max_length))
    if target == length:
        return arrays
    return [np.pad(a, ((0, 0), (0, target - length))) for a in arrays]


class Predictor:
    """A `paddle.inference` predictor: oneDNN on CPU (fp32 or bf16), CUDA on GPU (fp32 or fp16).

    On CPU the inputs are padded to a multiple of `pad_multiple` tokens (see `pad_length`);
    `max_length` (the model's position table) caps that padding.
    """

    def __init__(self, prefix: Path, device: str = "cpu", precision: str = "fp32", threads: int = 1,
                 tensorrt: bool = False, pad_multiple: int = 16, max_length: int | None = None,
                 profile: bool = False):
        from paddle import inference as pi
        self.pad_multiple = pad_multiple if device == "cpu" else 1
        self.max_length = max_length
        config = pi.Config(*program_files(Path(prefix)))
        if device == "gpu":
            mode = pi.PrecisionType.Half if precision == "fp16" else pi.PrecisionType.Float32
            config.enable_use_gpu(256, 0, mode)
            if tensorrt:
                config.enable_tensorrt_engine(workspace_size=1 << 30, max_batch_size=64, min_subgraph_size=3,
                                              precision_mode=mode, use_static=False, use_calib_mode=False)
        else:
            config.disable_gpu()
            config.enable_onednn()
            # Dynamic lengths would create a oneDNN primitive per shape; bound the cache.
            config.set_onednn_cache_capacity(64)
            if precision == "bf16":
                config.enable_onednn_bfloat16()
                # This fuse fails on the bf16 graph ("Broadcast dimension mismatch") in Paddle 3.3.
                config.delete_pass("operator_reshape_onednn_fuse_pass")
            config.set_cpu_math_library_num_threads(threads)
        config.switch_ir_optim(True)
        config.disable_glog_info()
        if profile:            # per-operator table, printed when the predictor is destroyed
            config.enable_profile()
        self._predictor = pi.create_predictor(config)
        self._inputs = [self._predictor.get_input_handle(n) for n in INPUT_NAMES]
        self._output = self._predictor.get_output_handle(self._predictor.get_output_names()[0])

    def __call__(self, input_ids: np.ndarray, attention_mask: np.ndarray,
                 token_type_ids: np.ndarray) -> np.ndarray:
        arrays = pad_length(input_ids, attention_mask, token_type_ids, self.pad_multiple, self.max_length)
        for handle, array in zip(self._inputs, arrays):
            handle.reshape(array.shape)
            handle.copy_from_cpu(array)
        self._predictor.run()
        return self._output.copy_to_cpu()
