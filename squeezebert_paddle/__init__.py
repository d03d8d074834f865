"""SqueezeBERT for PaddlePaddle, faithful to the Hugging Face PyTorch reference.

Public names are imported lazily: `from squeezebert_paddle import SqueezeBertTokenizer` (or the
framework-free submodules data, metrics, timing, conversion) does not import Paddle, so the PyTorch
benchmark can share them without starting Paddle's thread pools.
"""
import importlib

__version__ = "0.1.0"

_LAZY = {
    "SqueezeBertConfig": "configuration",
    "SqueezeBertTokenizer": "tokenizer",
    "SqueezeBertModel": "modeling",
    "SqueezeBertForSequenceClassification": "modeling",
    "SqueezeBertForMaskedLM": "modeling",
    "SqueezeBertForTokenClassification": "modeling",
    "SqueezeBertForQuestionAnswering": "modeling",
    "SqueezeBertForMultipleChoice": "modeling",
}

__all__ = list(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
