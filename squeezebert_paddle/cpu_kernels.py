"""Fused CPU training kernels (`kernels/fused_cpu.cc`), compiled on first use as Paddle custom ops.

Paddle's CPU build runs elementwise ops and their gradients on one thread without vectorizing, and
copies strided views element by element; in a SqueezeBERT training step they cost more than the
matrix products. `fused_cpu_encoder.py` computes the model with these ops (dygraph on the CPU, once a
model is switched with `use_fused_cpu_kernels()`); the reference model, the traced export and GPU runs
use Paddle's own ops. This file builds and loads the ops and wraps each one.

The build needs a C++ compiler (g++ >= 5.4 as `cc`); it runs once and is cached under
`$SQUEEZEBERT_KERNEL_DIR` (default `squeezebert_paddle/kernels` under `$XDG_CACHE_HOME`, else `~/.cache`).
Where it cannot be built, or with `SQUEEZEBERT_FUSED_KERNELS=0`, `use_fused_cpu_kernels()` returns False
and the reference runs (same results, slower). A cached library that no longer loads is rebuilt; one
that cannot be rebuilt here (a cache this process cannot write, a read-only image; no compiler) is
loaded as it is, once it is checked to be a whole ELF file.

Dropout seeds are drawn from Paddle's generator, so `paddle.seed` fixes the masks and a checkpoint's
saved generator state replays them.
"""
from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import hashlib
import io
import logging
import os
import platform
import re
import shutil
import stat
import struct
import sys
import sysconfig
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import paddle

from .fileio import atomic_write_bytes, user_cache_dir

logger = logging.getLogger(__name__)

KERNELS = Path(__file__).resolve().parent / "kernels"
SOURCE = KERNELS / "fused_cpu.cc"
# -march=native: the kernels are built on the machine that runs them. -ffast-math lets GCC vectorize
# expf/erff through glibc's vector math library.
CFLAGS = ["-O3", "-march=native", "-fopenmp", "-ffast-math"]
LDFLAGS = ["-fopenmp"]
NAME = "squeezebert_fused_cpu"


@dataclass(frozen=True)
class Library:
    """A kernel library built from one source file (plus headers copied beside it). Its loops run on
    Paddle's OpenMP runtime (paddle/libs/libiomp5.so), the one oneDNN's matmuls use, not GCC's libgomp:
    two runtimes' idle threads spin against each other on the same cores (on two cores, a 16x64
    training step took 1.6x as long with libgomp). `onednn`: it also calls oneDNN, the copy Paddle
    ships (libdnnl.so.3)."""
    name: str
    source: Path
    what: str                  # for the log lines: "built the <what> in ...", "<what> unavailable (...)"
    fallback: str              # what happens without it, said with the failure
    headers: tuple[Path, ...] = ()
    onednn: bool = False

    def ldflags(self) -> list[str]:
        libs = paddle_libs()
        if not (libs / "libiomp5.so").is_file() and not self.onednn:
            return LDFLAGS          # a Paddle build without Intel's OpenMP: GCC's is all there is
        onednn = ["-l:libdnnl.so.3"] if self.onednn else []
        return [f"-L{libs}", *onednn, "-l:libiomp5.so", f"-Wl,-rpath,{libs}"]


def paddle_libs() -> Path:
    """The shared libraries Paddle's wheel ships (oneDNN, Intel's OpenMP runtime)."""
    return Path(paddle.__file__).resolve().parent / "libs"


INFERENCE = Library("squeezebert_inference_cpu", KERNELS / "inference_cpu.cc", "CPU inference kernels",
                    "use --backend inference", (KERNELS / "onednn_c_api.h",), onednn=True)
_inference_state: dict = {}
_SEED_HIGH = 2**31 - 1          # paddle.randint takes int32 bounds: two draws make a 62-bit seed

_module = None
_failure: str | None = None


def enabled() -> bool:
    return os.environ.get("SQUEEZEBERT_FUSED_KERNELS", "1") != "0"


def training_library() -> Library:
    """Built per call: tests point SOURCE elsewhere."""
    return Library(NAME, SOURCE, "fused CPU kernels", "the model uses Paddle's own ops, which are slower on the CPU")


def cache_dir(library: Library | None = None) -> Path:
    """The build directory: keyed by everything Paddle's builder records and compares (source, flags,
    the include and library paths of this Python and this Paddle install) plus the CPU (-march=native),
    so two checkouts share one build while two venvs each keep their own."""
    library = library or training_library()
    root = os.environ.get("SQUEEZEBERT_KERNEL_DIR") or user_cache_dir() / "kernels"
    parts = [library.source.read_bytes(), *(h.read_bytes() for h in library.headers),
             *(flag.encode() for flag in CFLAGS + library.ldflags()), paddle.__version__.encode(),
             os.path.realpath(paddle.__file__).encode(), sysconfig.get_paths()["include"].encode(), cpu_identity()]
    return Path(root) / hashlib.sha1(b"\0".join(parts)).hexdigest()[:12]


def cpu_identity() -> bytes:
    """What -march=native builds for: the CPU's vendor, model and feature flags. A cache directory can be
    shared by machines (a home directory mounted on several, containers with one hostname); a build for
    another CPU could stop on an illegal instruction. Where /proc/cpuinfo cannot be read, the machine's
    architecture and name."""
    try:
        first_cpu = Path("/proc/cpuinfo").read_text(errors="replace").split("\n\n", 1)[0]
    except OSError:
        first_cpu = ""
    keys = ("vendor_id", "model name", "flags",                                   # x86
            "CPU implementer", "CPU architecture", "CPU variant", "CPU part", "Features")   # Arm
    lines = [line for line in first_cpu.splitlines() if line.split(":")[0].strip() in keys]
    return ("\n".join(lines) if lines else f"{platform.machine()} {platform.node()}").encode()


@contextlib.contextmanager
def _output_captured(captured: list[str]):
    """Capture what Paddle's builder prints: Python-level writes and warnings, and file descriptors 1
    and 2 (the setuptools subprocess's log and the compiler's messages); the text is appended to
    `captured` when the block ends."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(AttributeError, ValueError):
            stream.flush()
    text = io.StringIO()
    with tempfile.TemporaryFile() as sink:
        saved = []
        try:
            for fd in (1, 2):
                saved.append((fd, os.dup(fd)))
                os.dup2(sink.fileno(), fd)
        except OSError:         # no such descriptor (a daemon): nothing to redirect there
            pass
        try:
            with contextlib.redirect_stdout(text), contextlib.redirect_stderr(text), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                yield
        finally:
            for fd, copy in saved:
                os.dup2(copy, fd)
                os.close(copy)
            sink.seek(0)
            captured.append(text.getvalue() + sink.read().decode(errors="replace"))


def _build(directory: Path, spec: Library):
    """Paddle's build-and-load of the ops, from a copy of the source (and headers) inside `directory`
    (its path is part of what the builder compares), quietly; returns the module and whether it compiled."""
    from paddle.utils.cpp_extension import load as build
    for original in (spec.source, *spec.headers):
        copy = directory / original.name
        if not copy.is_file():    # the key hashes the source and headers: an existing copy is the same text
            atomic_write_bytes(copy, original.read_bytes())
    name = spec.name
    library = directory / name / f"{name}.so"
    before = library.stat().st_mtime_ns if library.exists() else None
    if before is None:           # (a silent wait of ~20 s on a first run would look like a hang)
        logger.info("building the %s once (about 20 s; cached in %s)", spec.what, directory)
    output: list[str] = []
    try:
        with _output_captured(output):
            module = build(name=name, sources=[str(directory / spec.source.name)],
                           extra_cxx_cflags=CFLAGS + [f"-I{directory}"], extra_ldflags=spec.ldflags(),
                           build_directory=str(directory), verbose=False)
    except Exception as error:
        cached = before is not None and library.exists() and library.stat().st_mtime_ns == before
        raise BuildError(error, "".join(output), cached_library=library if cached else None) from None
    # Paddle writes the ops' Python wrappers to NAME_<thread id>.py for each process and deletes it
    # only at a clean exit; the module is loaded by now, so remove it (and any a killed process left).
    for stale in (directory / name).glob(f"{name}_[0-9]*.py"):
        stale.unlink(missing_ok=True)
    return module, library.stat().st_mtime_ns != before


class BuildError(Exception):
    """A failed kernel build, with what the builder printed."""

    def __init__(self, error: Exception, output: str, cached_library: Path | None = None):
        self.cached_library = cached_library     # set when loading an existing build failed (not compiling)
        lines = str(error).strip().splitlines()
        # a library that does not load: dlopen's reason is in Paddle's first line, generic advice in its last
        dlopen = re.search(r"\(error code is (.*)\)$", lines[0]) if lines else None
        reason = f"{type(error).__name__}: {dlopen.group(1) if dlopen else lines[-1] if lines else ''}"
        compiler = [line.strip() for line in output.splitlines() if "error:" in line]
        super().__init__(reason + (f" (first compiler error: {compiler[0]})" if compiler else ""))


def load():
    """The compiled training op module, or None (with the reason in `failure()`) when it cannot be
    built. The first build logs one line with its time; later processes load the cached build silently."""
    global _module, _failure
    if _module is None and _failure is None:
        _module, _failure = _load(training_library())
    return _module


def load_inference(quiet: bool = False):
    """The compiled inference op module (kernels/inference_cpu.cc), or None with the reason in
    `inference_failure()`; as `load`. `quiet`: the caller says the reason itself (no warning)."""
    if "module" not in _inference_state:
        _inference_state["module"], _inference_state["failure"] = _load(INFERENCE, quiet)
    return _inference_state["module"]


def inference_failure() -> str | None:
    return _inference_state.get("failure")


def _load(spec: Library, quiet: bool = False):
    """(module, None) or (None, reason); the reason also logged as a warning unless `quiet`."""
    if not enabled():
        return None, "disabled by SQUEEZEBERT_FUSED_KERNELS=0"
    directory = cache_dir(spec)
    library = directory / spec.name / f"{spec.name}.so"
    if not any(shutil.which(c) for c in ("c++", "g++")):
        if library.is_file():          # built before, or shipped prebuilt in an image without a compiler
            return _load_prebuilt(spec, library, ": no C++ compiler (c++ or g++) on PATH; install g++", quiet)
        return _unavailable(spec, "no C++ compiler (c++ or g++) on PATH to build them; install g++", quiet)
    if any(c.isspace() for c in str(directory)):      # Paddle's builder runs `cd <dir> && ...` unquoted
        return _unavailable(spec, f"the kernel cache directory {directory} has a space in its path, which "
                                  f"Paddle's extension builder cannot handle; set SQUEEZEBERT_KERNEL_DIR to a "
                                  f"path without spaces", quiet)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        # One builder at a time (several processes of a distributed launch start together). O_NOFOLLOW
        # and no truncation: a link planted at the lock's name is refused, its target never touched.
        try:
            lock = os.open(directory / ".lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o666)
        except OSError as error:
            if error.errno not in READ_ONLY or not library.is_file():
                raise
            return _load_prebuilt(spec, library, " in its read-only directory; point SQUEEZEBERT_KERNEL_DIR at "
                                                 "a writable directory", quiet)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            start = time.perf_counter()
            module, compiled = _build_or_rebuild(directory, spec)
        finally:
            os.close(lock)
        if compiled:
            logger.info("built the %s in %.1f s (cached in %s)", spec.what, time.perf_counter() - start, directory)
        return module, None
    except Exception as error:      # no compiler, read-only cache, ABI mismatch: fall back, say why
        failure = str(error) if isinstance(error, BuildError) else str(BuildError(error, ""))
        if isinstance(error, OSError) and os.environ.get("SQUEEZEBERT_KERNEL_DIR"):
            failure += (f" under SQUEEZEBERT_KERNEL_DIR={os.environ['SQUEEZEBERT_KERNEL_DIR']}: point it at a "
                        f"writable directory, or unset it")
        return _unavailable(spec, failure, quiet)


# what opening the lock gives in a directory this process cannot write (a read-only image, chmod a-w)
READ_ONLY = (errno.EACCES, errno.EROFS, errno.EPERM)


def _load_prebuilt(spec: Library, library: Path, cannot_rebuild: str, quiet: bool):
    """Load a library that cannot be rebuilt here (a cache directory this process cannot write, shipped
    prebuilt in a read-only image; or no compiler): without the lock, which only building needs, and
    without Paddle's builder, which writes there: the ops are registered as its loader does, their Python
    wrappers written to a temporary directory. (module, None) or (None, reason)."""
    from paddle.utils.cpp_extension import extension_utils
    problem = elf_problem(library)      # (a truncated library maps past its end: SIGBUS, not an error)
    output: list[str] = []
    try:
        if problem:
            raise OSError(problem)
        with tempfile.TemporaryDirectory() as scratch, _output_captured(output):
            ops = extension_utils.load_op_meta_info_and_register_op(str(library))
            return extension_utils._generate_python_module(spec.name, ops, scratch), None
    except Exception as error:
        reason = BuildError(error, "".join(output))
        return _unavailable(spec, f"the cached library {library} cannot be loaded ({reason}) nor rebuilt"
                                  f"{cannot_rebuild}", quiet)


def elf_problem(path: Path) -> str | None:
    """Why `path` is not a whole 64-bit ELF file (every segment and header table inside it), or None."""
    try:
        with open(path, "rb") as f:
            info = os.fstat(f.fileno())
            if not stat.S_ISREG(info.st_mode):         # (a link to /dev/zero would never end)
                return "not a regular file"
            size = info.st_size
            header = f.read(64)
            if len(header) < 64 or header[:5] != b"\x7fELF\x02" or header[5] != 1:
                return "not a 64-bit little-endian ELF file"
            program_at, sections_at = struct.unpack_from("<QQ", header, 32)
            program_size, programs, section_size, sections = struct.unpack_from("<HHHH", header, 54)
            f.seek(program_at)
            table = f.read(program_size * programs)
    except OSError as error:
        return str(error)
    ends = [program_at + program_size * programs, sections_at + section_size * sections]
    for i in range(programs if len(table) == program_size * programs else 0):
        offset, _, _, file_size = struct.unpack_from("<QQQQ", table, i * program_size + 8)   # p_offset .. p_filesz
        ends.append(offset + file_size)
    if max(ends) > size:
        return f"truncated: {size} bytes, its headers reach byte {max(ends)}"
    return None


def _unavailable(spec: Library, failure: str, quiet: bool = False):
    """Say once (unless `quiet`) why `spec` cannot be used and what happens instead; (None, failure)."""
    if not quiet:
        logger.warning("%s unavailable (%s); %s", spec.what, failure, spec.fallback)
    return None, failure


def _build_or_rebuild(directory: Path, spec: Library):
    """`_build`; a cached library that no longer loads (truncated, corrupt) is said, removed and rebuilt."""
    try:
        return _build(directory, spec)
    except BuildError as error:
        if error.cached_library is None:
            raise
        logger.warning("the cached %s library %s cannot be loaded (%s); rebuilding it",
                       spec.what.replace("kernels", "kernel"), error.cached_library, error)
        error.cached_library.unlink(missing_ok=True)
        return _build(directory, spec)


def failure() -> str | None:
    return _failure


def set_threads(count: int) -> None:
    """Threads for the kernels' OpenMP runtime (Paddle's libiomp5, or GCC's where the kernels fell
    back to it); Paddle's own thread setting does not reach every OpenMP team."""
    for runtime in (str(paddle_libs() / "libiomp5.so"), "libgomp.so.1"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(runtime).omp_set_num_threads(int(count))


def usable(x) -> bool:
    """Whether the fused ops can run on tensor x (fp32 on the CPU) and were built."""
    return x.place.is_cpu_place() and x.dtype == paddle.float32 and load() is not None


def _seed(p: float) -> int:
    if p <= 0:
        return 0
    low, high = paddle.randint(0, _SEED_HIGH, [2]).tolist()
    return (high << 31) | low


# -- the ops (shapes in the C++ file's terms: grouped [G, N, C/G], token-major [N, C]) ----------------

def tokens_to_groups(x, groups: int):
    """Token-major [N, C] -> grouped [groups, N, C/groups] (a contiguous copy)."""
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
