"""SqueezeBERT for PaddlePaddle, faithful to the Hugging Face PyTorch reference.

Public names are imported lazily: `from squeezebert_paddle import SqueezeBertTokenizer` (or the
framework-free submodules data, metrics, timing, conversion) does not import Paddle, so the PyTorch
benchmark can share them without starting Paddle's thread pools.
"""
import importlib
import warnings

__version__ = "0.1.0"

# `import paddle` warns when ccache is not installed; it would only speed up rebuilding C++ extensions,
# and cpu_kernels builds its kernels once and caches them.
warnings.filterwarnings("ignore", message="No ccache found", category=UserWarning)

from .configuration import ARCHITECTURES     # framework-free

_LAZY = {"SqueezeBertConfig": "configuration", "SqueezeBertTokenizer": "tokenizer",
         "SqueezeBertPreTrainedModel": "modeling", **{name: "modeling" for name in ARCHITECTURES}}

__all__ = list(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
