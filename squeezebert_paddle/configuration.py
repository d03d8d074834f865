"""SqueezeBertConfig: the Hugging Face field names and defaults, JSON in and out, validation.

Framework-free, so the PyTorch benchmark can read a config without importing Paddle.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path
from dataclasses import dataclass, field
from typing import Any

from .errors import ExpectedError
from .input_files import is_present, read_json_object

# Activations `transformers` accepts for SqueezeBERT that carry no learnable parameters.
# ("prelu" and "xielu" do; a checkpoint using them would need extra weights we do not map.)
SUPPORTED_ACTIVATIONS = (
    "gelu", "gelu_python", "gelu_new", "gelu_fast", "gelu_pytorch_tanh", "gelu_python_tanh",
    "gelu_accurate", "gelu_10", "quick_gelu", "laplace", "leaky_relu", "linear", "mish", "relu",
    "relu2", "relu6", "sigmoid", "silu", "swish", "tanh",
)

GROUP_FIELDS = ("q_groups", "k_groups", "v_groups", "post_attention_groups", "intermediate_groups",
                "output_groups")

# The one list of model classes (names as in transformers and PaddleNLP); modeling.MODEL_CLASSES,
# the converter and the package's lazy imports all read it.
ARCHITECTURES = ("SqueezeBertModel", "SqueezeBertForSequenceClassification",
                 "SqueezeBertForTokenClassification", "SqueezeBertForQuestionAnswering",
                 "SqueezeBertForMultipleChoice", "SqueezeBertForMaskedLM")


class ConfigError(ExpectedError, ValueError):
    """A configuration that cannot describe a working SqueezeBERT."""


# The integer sizes of a model. Each must fit Paddle's int32 shape attributes (a larger value ends in
# "Integer value ... exceeds int32 range" deep in Paddle); together, validate() also requires the
# float32 parameters to fit this machine's memory, so a damaged size fails here, not in an allocation.
SIZE_FIELDS = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
               "max_position_embeddings", "type_vocab_size", "num_labels", *GROUP_FIELDS)
MAX_SIZE = 2**31 - 1


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def size_problem(name: str, value) -> str | None:
    """Why `value` cannot be the size field `name`, or None."""
    if not _is_int(value) or value < 1:
        return f"{name} must be a positive integer, got {value!r}"
    if value > MAX_SIZE:
        return f"{name} {value} is too large: at most {MAX_SIZE} (Paddle's int32 sizes)"
    return None


def physical_memory() -> int | None:
    """Bytes of RAM on this machine, or None where the platform does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def file_fields_problem(values: dict) -> str | None:
    """Why the fields a config file holds besides the model's sizes (architectures, label maps) are
    unusable, or None: a file's `architectures` picks the model class the scripts build."""
    architectures = values.get("architectures")
    if architectures is not None:
        if not isinstance(architectures, list) or not all(isinstance(a, str) for a in architectures):
            return f"architectures must be a list of model class names, got {architectures!r}"
        unknown = [a for a in architectures if a not in ARCHITECTURES]
        if unknown:
            return f"architectures {unknown} are not SqueezeBERT model classes ({', '.join(ARCHITECTURES)})"
    for name in ("id2label", "label2id", "extra"):
        if values.get(name) is not None and not isinstance(values[name], dict):
            return f"{name} must be a JSON object, got {values[name]!r}"[:200]
    bad_ids = [k for k in values.get("id2label") or {} if not str(k).lstrip("-").isdecimal()]
    if bad_ids:
        return f"id2label keys must be class ids (integers), got {bad_ids[:3]}"
    return None


CONFIG_FILE = "model_config.json"     # a Paddle model directory's config (PaddleNLP's legacy name)
HF_CONFIG_FILE = "config.json"        # Hugging Face's name, and both libraries' name for a config on its own


@dataclass(init=False)
class SqueezeBertConfig:
    """The model's hyper-parameters, with Hugging Face's field names and defaults.

    As in `transformers` and PaddleNLP, the constructor takes any keyword: the fields below are the
    ones the model reads; other keywords (`attention_dropout`, `id2label`, `architectures`, ...) are
    kept in `extra`, read back as attributes and written out by `to_dict`. Values are checked when a
    model is built from the config and when a config is read (`from_dict`, `from_json_file`,
    `from_pretrained`), not by the constructor, so a config can be edited field by field.
    The config also reads like a mapping: `config["vocab_size"]`, `"q_groups" in config`, `**config`.
    """
    vocab_size: int = 30522            # rows of the word-embedding table (released checkpoints: 30528)
    hidden_size: int = 768             # channels between modules
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072      # channels of the expanding conv in each module
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-12
    pad_token_id: int = 0
    embedding_size: int = 768          # must equal hidden_size (no projection layer exists)
    q_groups: int = 4                  # groups of the 1x1 convs; 1 makes a conv a dense layer
    k_groups: int = 4
    v_groups: int = 4
    post_attention_groups: int = 1
    intermediate_groups: int = 4
    output_groups: int = 4
    num_labels: int = 2                # classes of the classification heads; 1 means regression
    # Fields we do not use but keep so a config round-trips (id2label, architectures, ...).
    extra: dict[str, Any] = field(default_factory=dict, repr=False)

    model_type = "squeezebert"
    is_composition = False             # PaddleNLP's flag for configs made of sub-configs
    attribute_map = {"num_classes": "num_labels"}    # PaddleNLP's other names for fields

    def __init__(self, **kwargs):
        kwargs = dict(kwargs)
        extra = dict(kwargs.pop("extra", None) or {})
        kwargs.pop("model_type", None)
        for alias, name in self.attribute_map.items():
            if alias in kwargs:
                kwargs.setdefault(name, kwargs.pop(alias))
        if "num_labels" not in kwargs and isinstance(kwargs.get("id2label"), dict):
            kwargs["num_labels"] = len(kwargs["id2label"])       # HF: the label count is implicit
        for f in dataclasses.fields(self):
            if f.name != "extra":
                default = f.default_factory() if f.default is dataclasses.MISSING else f.default
                object.__setattr__(self, f.name, kwargs.pop(f.name, default))
        object.__setattr__(self, "extra", {**extra, **kwargs})

    # -- unknown keywords as attributes, PaddleNLP's aliases, HF's label maps -----------------------

    def __getattr__(self, name):
        # Only reached when normal lookup fails: the kept keywords.
        extra = self.__dict__.get("extra", {})
        if name in extra:
            return extra[name]
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def __setattr__(self, name, value):
        if name in self.attribute_map:
            name = self.attribute_map[name]
        if name in self.__dataclass_fields__ or isinstance(getattr(type(self), name, None), property) \
                or name.startswith("_"):
            object.__setattr__(self, name, value)
        else:
            self.extra[name] = value

    @property
    def num_classes(self) -> int:
        """PaddleNLP's name for num_labels."""
        return self.num_labels

    @property
    def id2label(self) -> dict[int, str]:
        """Label names by class id: the ones given when they cover num_labels, else LABEL_0, ..."""
        given = self.extra.get("id2label")
        if isinstance(given, dict) and len(given) == self.num_labels:
            return given
        return {i: f"LABEL_{i}" for i in range(self.num_labels)}

    @id2label.setter
    def id2label(self, value: dict) -> None:
        self.extra["id2label"] = dict(value)
        self.num_labels = len(value)

    @property
    def label2id(self) -> dict[str, int]:
        given = self.extra.get("label2id")
        if isinstance(given, dict) and len(given) == self.num_labels:
            return given
        return {name: i for i, name in self.id2label.items()}

    # -- mapping access (PaddleNLP code reads config["vocab_size"]) ----------------------------------

    def keys(self):
        return self.to_dict().keys()

    def __getitem__(self, key: str):
        try:
            return getattr(self, key)
        except AttributeError:
            raise KeyError(key) from None

    def __setitem__(self, key: str, value) -> None:
        setattr(self, key, value)

    def __contains__(self, key) -> bool:
        return key in self.to_dict()

    def get(self, key: str, default=None):
        return getattr(self, key, default)

    # -- checks ------------------------------------------------------------------------------------

    def validate(self) -> "SqueezeBertConfig":
        """Raise ConfigError unless a SqueezeBERT model can be built from these values; returns self."""
        for name in SIZE_FIELDS:
            problem = size_problem(name, getattr(self, name))
            if problem:
                raise ConfigError(f"config: {problem}")
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob", "layer_norm_eps",
                     "initializer_range"):
            value = getattr(self, name)
            if not _is_number(value) or not math.isfinite(value):
                raise ConfigError(f"config: {name} must be a finite number, got {value!r}")
        if not isinstance(self.hidden_act, str):
            raise ConfigError(f"config: hidden_act must be a string naming an activation, got {self.hidden_act!r}")
        if self.hidden_size % self.num_attention_heads:
            raise ConfigError(f"config: hidden_size {self.hidden_size} is not divisible by "
                              f"num_attention_heads {self.num_attention_heads}")
        if self.embedding_size != self.hidden_size:
            raise ConfigError(f"config: embedding_size {self.embedding_size} must equal hidden_size "
                              f"{self.hidden_size} (SqueezeBERT has no embedding projection)")
        for name, (cin, cout, groups) in zip(GROUP_FIELDS, self.conv_shapes().values()):
            if cin % groups or cout % groups:
                raise ConfigError(f"config: {name}={groups} must divide both the input ({cin}) and "
                                  f"output ({cout}) channels of its convolution")
        if self.hidden_act not in SUPPORTED_ACTIVATIONS:
            raise ConfigError(f"config: hidden_act {self.hidden_act!r} is not supported; use one of "
                              f"{', '.join(SUPPORTED_ACTIVATIONS)}")
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ConfigError(f"config: {name} must be in [0, 1), got {getattr(self, name)}")
        if not 0 < self.layer_norm_eps <= 1e-3:
            raise ConfigError(f"config: layer_norm_eps {self.layer_norm_eps} must be in (0, 1e-3] "
                              f"(Paddle's layer_norm rejects larger values)")
        if self.initializer_range < 0:
            raise ConfigError(f"config: initializer_range {self.initializer_range} must be >= 0 (a standard deviation)")
        if not _is_int(self.pad_token_id) or not 0 <= self.pad_token_id < self.vocab_size:
            raise ConfigError(f"config: pad_token_id {self.pad_token_id!r} must be an integer id inside the "
                              f"vocabulary, in [0, vocab_size {self.vocab_size})")
        memory = physical_memory()
        if memory and 4 * self.parameter_count() > memory:
            raise ConfigError(f"config: these sizes make {self.parameter_count():.3g} parameters, "
                              f"{4 * self.parameter_count() / 2**30:.1f} GiB in float32, more than this machine's "
                              f"{memory / 2**30:.1f} GiB of memory; check vocab_size, hidden_size, "
                              f"max_position_embeddings and num_labels")
        return self

    def parameter_count(self) -> int:
        """Parameters of the largest model this config builds (the encoder, pooler and biggest head)."""
        h, e = self.hidden_size, self.embedding_size
        embeddings = (self.vocab_size + self.max_position_embeddings + self.type_vocab_size) * e + 2 * e
        layer = sum(cout * (cin // groups) + cout for cin, cout, groups in self.conv_shapes().values()) + 4 * h
        heads = max(h * self.num_labels + self.num_labels, h * h + 3 * h + self.vocab_size)
        return embeddings + self.num_hidden_layers * layer + h * h + h + heads

    def conv_shapes(self) -> dict[str, tuple[int, int, int]]:
        """(in channels, out channels, groups) of each encoder layer's six grouped 1x1 convolutions,
        keyed by their module path inside a layer (in GROUP_FIELDS order)."""
        h, i = self.hidden_size, self.intermediate_size
        return {"attention.query": (h, h, self.q_groups), "attention.key": (h, h, self.k_groups),
                "attention.value": (h, h, self.v_groups),
                "post_attention.conv1d": (h, h, self.post_attention_groups),
                "intermediate.conv1d": (h, i, self.intermediate_groups),
                "output.conv1d": (i, h, self.output_groups)}

    # -- reading ---------------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "SqueezeBertConfig":
        """A checked config from a mapping (a parsed config file: ours, HF's or PaddleNLP's)."""
        values = dict(values)
        problem = file_fields_problem(values)
        if problem:
            raise ConfigError(f"config: {problem}")
        if isinstance(values.get("id2label"), dict):       # JSON object keys are strings; HF's are ints
            values["id2label"] = {int(k): v for k, v in values["id2label"].items()}
        return cls(**values).validate()

    @classmethod
    def from_json_file(cls, path: str | os.PathLike) -> "SqueezeBertConfig":
        """A checked config from a JSON file; every problem is a ConfigError naming the file and key."""
        values = read_json_object(path, ConfigError)
        try:
            return cls.from_dict(values)
        except (TypeError, ValueError) as err:          # ConfigError is a ValueError
            raise ConfigError(f"{path}: {err}") from None

    @classmethod
    def from_pretrained(cls, model_dir: str | os.PathLike, **overrides) -> "SqueezeBertConfig":
        """The config of a local model directory: our model_config.json, else a Hugging Face
        config.json. Keywords override fields. A hub id is not fetched (the weights need converting
        anyway): the error says how to get a converted directory."""
        model_dir = Path(model_dir)
        for name in (CONFIG_FILE, HF_CONFIG_FILE):
            if is_present(model_dir / name):          # a FIFO or link loop is refused, not skipped
                config = cls.from_json_file(model_dir / name)
                return config.replace(**overrides).validate() if overrides else config
        if not model_dir.is_dir():           # a hub id lands here too: nothing is downloaded
            raise ConfigError(f"{model_dir}: no such directory; this package reads converted model "
                              f"directories, not the hub: {HOW_TO_GET_RELEASED}")
        raise ConfigError(f"{model_dir}: no {CONFIG_FILE} or {HF_CONFIG_FILE} there; {HOW_TO_GET_RELEASED}")

    # -- writing ---------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"}
        merged = {**self.extra, **values}
        merged["model_type"] = self.model_type
        return merged

    def to_json_string(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    def to_json_file(self, path: str | os.PathLike) -> None:
        from .fileio import atomic_write_text
        atomic_write_text(path, self.to_json_string())

    def save_pretrained(self, directory: str | os.PathLike) -> None:
        """Write config.json into `directory` (both libraries' name for a config on its own; a saved
        model's directory holds model_config.json, written by the model's save_pretrained)."""
        Path(directory).mkdir(parents=True, exist_ok=True)
        self.to_json_file(Path(directory) / HF_CONFIG_FILE)

    def replace(self, **changes) -> "SqueezeBertConfig":
        """A copy with `changes` (fields, PaddleNLP's aliases such as num_classes, or extra keys)."""
        fields = {f.name for f in dataclasses.fields(self)} - {"extra"}
        changes = {self.attribute_map.get(k, k): v for k, v in changes.items()}
        changes = {**changes.pop("extra", {}), **changes}
        extra = {**self.extra, **{k: v for k, v in changes.items() if k not in fields}}
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if k in fields}, extra=extra)


# The three released checkpoints (Hugging Face hub `squeezebert/<name>`): config fields and model class.
RELEASED_CONFIGS = {
    "squeezebert-uncased": dict(vocab_size=30528),
    "squeezebert-mnli": dict(vocab_size=30528, num_labels=3),
    "squeezebert-mnli-headless": dict(vocab_size=30528),
}
RELEASED_ARCHITECTURES = {"squeezebert-uncased": "SqueezeBertForMaskedLM",
                          "squeezebert-mnli": "SqueezeBertForSequenceClassification",
                          "squeezebert-mnli-headless": "SqueezeBertModel"}
HUB_IDS = {name: f"squeezebert/{name}" for name in RELEASED_CONFIGS}   # where the converter fetches them
HOW_TO_GET_RELEASED = ("get the released checkpoints converted into models/<name> with "
                       "`python convert_torch_to_paddle.py --download` (Hugging Face hub ids "
                       f"{', '.join(HUB_IDS.values())}), then pass that directory")
