"""Fused CPU training kernels (`kernels/fused_cpu.cc`), compiled on first use as Paddle custom ops.

Paddle's CPU build runs elementwise ops and their gradients on one thread without vectorizing, and
copies strided views element by element; in a SqueezeBERT training step they cost more than the
matrix products. `SqueezeBertModel` on the CPU in dygraph (training and evaluation) uses these ops
instead; the traced export (`inference.py`) and GPU runs keep Paddle's own ops.

The build needs a C++ compiler (g++ >= 5.4 as `cc`); it runs once and is cached under
`$SQUEEZEBERT_KERNEL_DIR` (default `~/.cache/squeezebert_paddle/kernels`). Where it cannot be built,
or with `SQUEEZEBERT_FUSED_KERNELS=0`, training falls back to Paddle's ops (same results, slower).

Dropout seeds are drawn from Paddle's generator, so `paddle.seed` fixes the masks and a checkpoint's
saved generator state replays them.
"""
from __future__ import annotations

import contextlib
import ctypes
import fcntl
import hashlib
import io
import logging
import os
import platform
import warnings
from pathlib import Path

import paddle

logger = logging.getLogger(__name__)

SOURCE = Path(__file__).resolve().parent / "kernels" / "fused_cpu.cc"
# -march=native: the kernels are built on the machine that runs them. -ffast-math lets GCC vectorize
# expf/erff through glibc's vector math library.
CFLAGS = ["-O3", "-march=native", "-fopenmp", "-ffast-math"]
_SEED_HIGH = 2**31 - 1          # paddle.randint takes int32 bounds: two draws make a 62-bit seed

_module = None
_failure: str | None = None


def enabled() -> bool:
    return os.environ.get("SQUEEZEBERT_FUSED_KERNELS", "1") != "0"


def cache_dir() -> Path:
    root = os.environ.get("SQUEEZEBERT_KERNEL_DIR") or Path.home() / ".cache" / "squeezebert_paddle" / "kernels"
    key = hashlib.sha1(SOURCE.read_bytes() + " ".join(CFLAGS).encode() + paddle.__version__.encode()
                       + platform.node().encode()).hexdigest()[:12]
    return Path(root) / key


def load():
    """The compiled op module, or None (with the reason in `failure()`) when it cannot be built."""
    global _module, _failure
    if _module is not None or _failure is not None:
        return _module
    if not enabled():
        _failure = "disabled by SQUEEZEBERT_FUSED_KERNELS=0"
        return None
    from paddle.utils.cpp_extension import load as build
    directory = cache_dir()
    builder_log = logging.getLogger("utils.cpp_extension")      # Paddle's build chatter
    level = builder_log.level
    try:
        directory.mkdir(parents=True, exist_ok=True)
        if not (directory / "squeezebert_fused_cpu" / "squeezebert_fused_cpu.so").exists():
            logger.info("building the fused CPU kernels into %s (once)", directory)
        builder_log.setLevel(logging.WARNING)
        # One builder at a time (several processes of a distributed launch start together).
        with open(directory / ".lock", "w") as lock, contextlib.redirect_stdout(io.StringIO()), \
                warnings.catch_warnings():
            warnings.simplefilter("ignore")             # "No ccache found"
            fcntl.flock(lock, fcntl.LOCK_EX)
            _module = build(name="squeezebert_fused_cpu", sources=[str(SOURCE)], extra_cxx_cflags=CFLAGS,
                            extra_ldflags=["-fopenmp"], build_directory=str(directory), verbose=False)
    except Exception as error:      # no compiler, read-only cache, ABI mismatch: fall back, say why
        lines = str(error).strip().splitlines()
        _failure = f"{type(error).__name__}: {lines[-1] if lines else ''}"
        logger.warning("fused CPU kernels unavailable (%s); the model uses Paddle's own ops, which are "
                       "slower on the CPU", _failure)
    finally:
        builder_log.setLevel(level)
    return _module


def failure() -> str | None:
    return _failure


def set_threads(count: int) -> None:
    """Threads for the kernels (GCC's OpenMP runtime, which Paddle's own thread setting does not reach)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libgomp.so.1").omp_set_num_threads(int(count))


def usable(x) -> bool:
    """Whether the fused ops can run on tensor x (fp32 on the CPU) and were built."""
    return x.place.is_cpu_place() and x.dtype == paddle.float32 and load() is not None


def _seed(p: float) -> int:
    if p <= 0:
        return 0
    low, high = paddle.randint(0, _SEED_HIGH, [2]).tolist()
    return (high << 31) | low


# -- the ops (shapes in the C++ file's terms: grouped [G, N, C/G], token-major [N, C]) ----------------

def group_major(x, groups: int):
    """[N, C] -> [groups, N, C/groups]."""
    return _module.sb_group_major(x, groups)


def bias_heads(y, bias, batch: int, heads: int):
    """Grouped projection [G, B*L, C/G] + bias [C] -> attention heads [B, heads, L, C/heads]."""
    return _module.sb_bias_heads(y, bias, batch, heads)


def qkv_heads(y, bias, batch: int, heads: int):
    """One product for Q, K and V, grouped [G, B*L, 3C/G] (each group's Q, K, V columns side by side),
    + bias [3C] (Q's, K's, V's) -> q, k, v [B, heads, L, C/heads]."""
    return _module.sb_qkv_heads(y, bias, batch, heads)


def merge_heads(x):
    """[B, heads, L, d] -> [B, L, heads * d]."""
    return _module.sb_merge_heads(x)


def softmax_dropout(scores, mask_bias, scale: float, p: float):
    """dropout(softmax(scores * scale + mask_bias)) over the last axis; mask_bias [B, Lk] additive."""
    return _module.sb_softmax_dropout(scores, mask_bias, scale, p, _seed(p))[0]


def bias_gelu(x, bias):
    """Exact (erf) GELU of grouped x [G, N, C/G] + bias [C]."""
    return _module.sb_bias_gelu(x, bias)


def bias_dropout_residual_layernorm(y, bias, residual, norm: paddle.nn.LayerNorm, p: float):
    """LayerNorm(dropout(y + bias) + residual): y grouped [G, N, C/G], residual and result [N, C]."""
    return _module.sb_bias_dropout_residual_layernorm(y, bias, residual, norm.weight, norm.bias, p, _seed(p),
                                                       norm._epsilon)[0]


def dropout(x, p: float):
    """x * mask / (1 - p), the mask keyed by a seed from Paddle's generator."""
    return _module.sb_dropout(x, p, _seed(p)) if p > 0 else x
