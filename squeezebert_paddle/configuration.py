"""SqueezeBertConfig: the Hugging Face field names and defaults, JSON in and out, validation.

Framework-free, so the PyTorch benchmark can read a config without importing Paddle.
"""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from typing import Any

from .errors import ExpectedError

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


@dataclass
class SqueezeBertConfig:
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

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        for name in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                     "intermediate_size", "max_position_embeddings", "type_vocab_size",
                     "num_labels", *GROUP_FIELDS):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"config: {name} must be a positive integer, got {value!r}")
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
        if not 0 <= self.pad_token_id < self.vocab_size:
            raise ConfigError(f"config: pad_token_id {self.pad_token_id} is outside the vocabulary "
                              f"(vocab_size {self.vocab_size})")

    def conv_shapes(self) -> dict[str, tuple[int, int, int]]:
        """(in channels, out channels, groups) of each encoder layer's six grouped 1x1 convolutions,
        keyed by their module path inside a layer (in GROUP_FIELDS order)."""
        h, i = self.hidden_size, self.intermediate_size
        return {"attention.query": (h, h, self.q_groups), "attention.key": (h, h, self.k_groups),
                "attention.value": (h, h, self.v_groups),
                "post_attention.conv1d": (h, h, self.post_attention_groups),
                "intermediate.conv1d": (h, i, self.intermediate_groups),
                "output.conv1d": (i, h, self.output_groups)}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "SqueezeBertConfig":
        values = dict(values)
        known = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        extra = dict(values.pop("extra", {}))
        # HF stores the label count implicitly through id2label; PaddleNLP uses num_classes.
        if "num_labels" not in values:
            if "id2label" in values:
                values["num_labels"] = len(values["id2label"])
            elif "num_classes" in values:
                values["num_labels"] = values["num_classes"]
        kwargs = {k: v for k, v in values.items() if k in known}
        extra.update({k: v for k, v in values.items() if k not in known})
        return cls(**kwargs, extra=extra)

    @classmethod
    def from_json_file(cls, path: str | os.PathLike) -> "SqueezeBertConfig":
        try:
            with open(path, encoding="utf-8") as f:
                values = json.load(f)
        except json.JSONDecodeError as err:
            raise ConfigError(f"{path}: not valid JSON ({err.msg} at line {err.lineno}); "
                              f"restore the file from the checkpoint's source") from None
        if not isinstance(values, dict):
            raise ConfigError(f"{path}: expected a JSON object of config fields")
        try:
            return cls.from_dict(values)
        except ConfigError as err:
            raise ConfigError(f"{path}: {err}") from None
        except TypeError as err:
            raise ConfigError(f"{path}: {err}") from None

    def to_dict(self) -> dict[str, Any]:
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"}
        merged = {**self.extra, **values}
        merged["model_type"] = "squeezebert"
        return merged

    def to_json_file(self, path: str | os.PathLike) -> None:
        from .fileio import atomic_write_text
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")

    def replace(self, **changes) -> "SqueezeBertConfig":
        return dataclasses.replace(self, **changes)


# The three released checkpoints (Hugging Face hub `squeezebert/<name>`): config fields and model class.
RELEASED_CONFIGS = {
    "squeezebert-uncased": dict(vocab_size=30528),
    "squeezebert-mnli": dict(vocab_size=30528, num_labels=3),
    "squeezebert-mnli-headless": dict(vocab_size=30528),
}
RELEASED_ARCHITECTURES = {"squeezebert-uncased": "SqueezeBertForMaskedLM",
                          "squeezebert-mnli": "SqueezeBertForSequenceClassification",
                          "squeezebert-mnli-headless": "SqueezeBertModel"}
