"""Named model outputs (`return_dict=True`), with the field names Hugging Face and PaddleNLP use.

An output reads three ways, as in both libraries: by attribute (`out.logits`), by key (`out["logits"]`),
and by position like the tuple `return_dict=False` returns (`out[0]`, `out[:2]`, `len(out)`), where the
positions count only the fields that are set (a `loss` appears only when labels were given; `hidden_states`
and `attentions` only when asked for). Iterating goes over the names of the set fields, as in HF.
Framework-free: the fields hold whatever the model computed.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


class ModelOutput:
    """Base of the output dataclasses: mapping over the set fields, tuple-like positions."""

    def keys(self) -> list[str]:
        return [f.name for f in dataclasses.fields(self) if getattr(self, f.name) is not None]

    def values(self) -> list[Any]:
        return [getattr(self, name) for name in self.keys()]

    def items(self) -> list[tuple[str, Any]]:
        return [(name, getattr(self, name)) for name in self.keys()]

    def to_tuple(self) -> tuple:
        """The set fields in order: what `return_dict=False` returns."""
        return tuple(self.values())

    def __getitem__(self, key):
        if isinstance(key, str):
            if key not in self.keys():
                raise KeyError(key)
            return getattr(self, key)
        return self.to_tuple()[key]

    def __contains__(self, key) -> bool:
        return key in self.keys()

    def __iter__(self):
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self.keys())

    def get(self, key: str, default=None):
        return getattr(self, key) if key in self.keys() else default


@dataclass(eq=False)
class BaseModelOutputWithPooling(ModelOutput):
    """SqueezeBertModel: last_hidden_state [B, L, H], pooler_output [B, H]; hidden_states (the
    embeddings and each layer's output, num_hidden_layers + 1 of [B, L, H]) and attentions (each
    layer's attention scores before the softmax, [B, heads, L, L]) when asked for."""
    last_hidden_state: Any = None
    pooler_output: Any = None
    hidden_states: tuple | None = None
    attentions: tuple | None = None


@dataclass(eq=False)
class LogitsOutput(ModelOutput):
    """The fields of every head with one logits tensor (the classes below name the head)."""
    loss: Any = None
    logits: Any = None
    hidden_states: tuple | None = None
    attentions: tuple | None = None


@dataclass(eq=False)
class SequenceClassifierOutput(LogitsOutput):
    """logits [B, num_labels]; loss with labels."""


@dataclass(eq=False)
class TokenClassifierOutput(LogitsOutput):
    """logits [B, L, num_labels]; loss with labels."""


@dataclass(eq=False)
class QuestionAnsweringModelOutput(ModelOutput):
    """start_logits, end_logits [B, L]; loss with start and end positions."""
    loss: Any = None
    start_logits: Any = None
    end_logits: Any = None
    hidden_states: tuple | None = None
    attentions: tuple | None = None


@dataclass(eq=False)
class MultipleChoiceModelOutput(LogitsOutput):
    """logits [B, num_choices]; loss with labels. hidden_states/attentions are per flattened choice
    ([B * num_choices, ...]), as in HF."""


@dataclass(eq=False)
class MaskedLMOutput(LogitsOutput):
    """logits [B, L, vocab_size] (prediction scores); loss with labels (-100 ignored)."""
