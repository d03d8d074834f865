"""The fused CPU kernels against Paddle's own ops: values, gradients, dropout masks; building and the
fallback. (The model's fused formulation against the reference: test_fused_cpu_encoder.py.)"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import paddle
import paddle.nn.functional as F
import pytest

from squeezebert_paddle import cpu_kernels

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ops():
    module = cpu_kernels.load()
    assert module is not None, f"the fused CPU kernels did not build: {cpu_kernels.failure()}"
    return module


def leaf(*shape, seed=0):
    paddle.seed(seed)
    t = paddle.randn(shape)
    t.stop_gradient = False
    return t


def value_and_grads(fn, inputs, seed=1):
    """fn()'s value and d(sum(fn() * r))/d(inputs) for a fixed random r."""
    out = fn()
    paddle.seed(seed)
    r = paddle.randn(out.shape)
    grads = paddle.grad((out * r).sum(), inputs)
    return out.numpy(), [g.numpy() for g in grads]


def assert_same(fused, reference, inputs, rtol=1e-5, atol=1e-5):
    out_f, grads_f = value_and_grads(fused, inputs)
    out_r, grads_r = value_and_grads(reference, inputs)
    np.testing.assert_allclose(out_f, out_r, rtol=rtol, atol=atol)
    for gf, gr in zip(grads_f, grads_r):
        np.testing.assert_allclose(gf, gr, rtol=rtol, atol=atol)


def tokens(y):
    """grouped [G, N, Cg] -> token-major [N, G * Cg] with Paddle's ops."""
    g, n, cg = y.shape
    return y.transpose([1, 0, 2]).reshape([n, g * cg])


def test_kernels_build_here(ops):
    assert {"sb_group_major", "sb_qkv_heads", "sb_softmax_dropout", "sb_bias_gelu",
            "sb_bias_dropout_residual_layernorm", "sb_dropout"} <= set(dir(ops))


@pytest.mark.skipif(not (cpu_kernels.paddle_libs() / "libiomp5.so").is_file(),
                    reason="this Paddle build ships no libiomp5 (the kernels then use GCC's OpenMP)")
@pytest.mark.skipif(shutil.which("readelf") is None, reason="no readelf (binutils) to read the library")
@pytest.mark.parametrize("library", ["training", "inference"])
def test_kernels_run_on_paddles_openmp_runtime(ops, library):
    """Both libraries link Paddle's libiomp5 and not GCC's libgomp: with two runtimes the idle
    threads of one spin while the other works (a 16x64 training step took 1.6x as long)."""
    if library == "inference":
        assert cpu_kernels.load_inference() is not None, cpu_kernels.inference_failure()
    spec = cpu_kernels.training_library() if library == "training" else cpu_kernels.INFERENCE
    built = cpu_kernels.cache_dir(spec) / spec.name / f"{spec.name}.so"
    needed = re.findall(r"\(NEEDED\).*\[(.+)\]", subprocess.run(
        ["readelf", "-d", str(built)], capture_output=True, text=True, check=True).stdout)
    assert "libiomp5.so" in needed and not any("gomp" in n for n in needed), needed


def test_group_major_and_merge_heads(ops):
    x = leaf(10, 12)
    assert_same(lambda: cpu_kernels.tokens_to_groups(x, 3), lambda: x.reshape([10, 3, 4]).transpose([1, 0, 2]), [x])
    h = leaf(2, 3, 5, 4)
    assert_same(lambda: cpu_kernels.merge_heads(h), lambda: h.transpose([0, 2, 1, 3]).reshape([2, 5, 12]), [h])


@pytest.mark.parametrize("groups", [1, 2, 4])
def test_bias_heads_and_qkv_heads(ops, groups):
    batch, length, heads, d = 2, 5, 4, 3
    c = heads * d
    y, b = leaf(groups, batch * length, c // groups), leaf(c, seed=2)

    def split(t):                                   # token-major [N, C] -> [B, heads, L, d]
        return t.reshape([batch, length, heads, d]).transpose([0, 2, 1, 3])

    assert_same(lambda: cpu_kernels.bias_heads(y, b, batch, heads), lambda: split(tokens(y) + b), [y, b])
    y3, b3 = leaf(groups, batch * length, 3 * c // groups, seed=3), leaf(3 * c, seed=4)
    cg = c // groups
    for part in range(3):                           # each group's columns: [Q | K | V]
        reference = lambda p=part: split(tokens(y3[:, :, p * cg:(p + 1) * cg]) + b3[p * c:(p + 1) * c])
        assert_same(lambda p=part: cpu_kernels.qkv_heads(y3, b3, batch, heads)[p], reference, [y3, b3])


def test_softmax_with_mask_bias(ops):
    scores = leaf(2, 3, 4, 6)
    mask = paddle.to_tensor(np.array([[0, 0, 0, 0, -1e30, -1e30], [0] * 6], np.float32))
    assert_same(lambda: cpu_kernels.softmax_dropout(scores, mask, 0.5, 0.0),
                lambda: F.softmax(scores * 0.5 + mask.reshape([2, 1, 1, 6]), axis=-1), [scores])
    probs = cpu_kernels.softmax_dropout(scores, mask, 0.5, 0.0).numpy()
    assert np.all(probs[0, :, :, 4:] == 0.0) and np.allclose(probs.sum(-1), 1.0, atol=1e-6)


def test_bias_gelu_is_exact_gelu(ops):
    x, b = leaf(3, 7, 8), leaf(24, seed=2)
    assert_same(lambda: cpu_kernels.bias_gelu(x, b), lambda: F.gelu(x + b.reshape([3, 1, 8])), [x, b])


@pytest.mark.parametrize("groups", [1, 4])
def test_bias_residual_layernorm(ops, groups):
    n, c = 9, 16
    y, b, r = leaf(groups, n, c // groups), leaf(c, seed=2), leaf(n, c, seed=3)
    norm = paddle.nn.LayerNorm(c, epsilon=1e-12)
    norm.weight.set_value(paddle.rand([c]) + 0.5)
    norm.bias.set_value(paddle.rand([c]))
    inputs = [y, b, r, norm.weight, norm.bias]
    assert_same(lambda: cpu_kernels.bias_dropout_residual_layernorm(y, b, r, norm, 0.0),
                lambda: norm(tokens(y) + b + r), inputs)


# -- dropout: one mask per (seed, element), the same in the forward and the backward pass ------------

def test_dropout_keeps_the_expected_share_and_scales(ops):
    x = paddle.ones([256, 256])
    x.stop_gradient = False
    out = ops.sb_dropout(x, 0.3, 42)
    kept = out.numpy() != 0
    assert abs(kept.mean() - 0.7) < 0.01
    np.testing.assert_allclose(out.numpy()[kept], 1 / 0.7, rtol=1e-6)
    (grad,) = paddle.grad(out.sum(), [x])
    np.testing.assert_array_equal(grad.numpy(), kept / np.float32(0.7))
    again, other = ops.sb_dropout(x, 0.3, 42).numpy(), ops.sb_dropout(x, 0.3, 43).numpy()
    assert np.array_equal(again, out.numpy()) and 0.3 < np.mean((other != 0) != kept) < 0.5


def test_dropout_seeds_come_from_paddles_generator(ops):
    x = paddle.ones([64, 64])
    paddle.seed(5)
    first = cpu_kernels.dropout(x, 0.5).numpy()
    paddle.seed(5)
    assert np.array_equal(cpu_kernels.dropout(x, 0.5).numpy(), first)
    assert not np.array_equal(cpu_kernels.dropout(x, 0.5).numpy(), first)


def test_fused_dropouts_use_the_plain_dropout_mask(ops):
    """The softmax and LayerNorm kernels drop exactly the elements sb_dropout drops for the same seed
    and flat index, in the forward and in the backward pass."""
    p, seed = 0.25, 1234
    scores, mask = leaf(2, 3, 4, 8), paddle.zeros([2, 8])
    assert_same(lambda: ops.sb_softmax_dropout(scores, mask, 1.0, p, seed)[0],
                lambda: ops.sb_dropout(F.softmax(scores, axis=-1), p, seed), [scores])
    n, c = 6, 16
    y, b, r = leaf(2, n, c // 2), leaf(c, seed=2), leaf(n, c, seed=3)
    norm = paddle.nn.LayerNorm(c, epsilon=1e-12)
    assert_same(lambda: ops.sb_bias_dropout_residual_layernorm(y, b, r, norm.weight, norm.bias, p, seed, 1e-12)[0],
                lambda: norm(ops.sb_dropout(tokens(y) + b, p, seed) + r), [y, b, r, norm.weight, norm.bias])


def test_a_failed_build_falls_back_with_the_reason(monkeypatch, caplog, tmp_path):
    import paddle.utils.cpp_extension as cpp_extension

    def no_compiler(**kwargs):
        raise RuntimeError("command 'c++' failed\nerror: cc not found")

    monkeypatch.setattr(cpp_extension, "load", no_compiler)
    monkeypatch.setattr(cpu_kernels, "_module", None)
    monkeypatch.setattr(cpu_kernels, "_failure", None)
    monkeypatch.setenv("SQUEEZEBERT_KERNEL_DIR", str(tmp_path))
    with caplog.at_level("WARNING"):
        assert cpu_kernels.load() is None
    assert cpu_kernels.failure() == "RuntimeError: error: cc not found"
    assert "fused CPU kernels unavailable (RuntimeError: error: cc not found)" in caplog.text
    assert not cpu_kernels.usable(paddle.ones([2]))
    monkeypatch.setattr(cpu_kernels, "_failure", None)
    monkeypatch.setenv("SQUEEZEBERT_FUSED_KERNELS", "0")
    assert cpu_kernels.load() is None and "SQUEEZEBERT_FUSED_KERNELS=0" in cpu_kernels.failure()


def test_an_unusable_kernel_dir_names_the_variable(monkeypatch, tmp_path, caplog):
    (tmp_path / "a_file").write_text("not a directory")
    monkeypatch.setattr(cpu_kernels, "_module", None)
    monkeypatch.setattr(cpu_kernels, "_failure", None)
    monkeypatch.setenv("SQUEEZEBERT_KERNEL_DIR", str(tmp_path / "a_file"))
    with caplog.at_level("WARNING"):
        assert cpu_kernels.load() is None
    assert cpu_kernels.failure().startswith(("FileExistsError", "NotADirectoryError")), cpu_kernels.failure()
    assert cpu_kernels.failure().endswith(f"under SQUEEZEBERT_KERNEL_DIR={tmp_path / 'a_file'}: point it at a "
                                          f"writable directory, or unset it")
    assert "SQUEEZEBERT_KERNEL_DIR=" in caplog.text


# -- the build cache: one quiet build, shared by checkouts, no files left per process -----------------

LOAD = "from squeezebert_paddle import cpu_kernels; assert cpu_kernels.load() is not None, cpu_kernels.failure()"


def load_in_process(package_root, cwd, kernel_dir):
    """Load the kernels in a fresh Python whose squeezebert_paddle comes from `package_root`;
    returns everything it printed."""
    env = dict(os.environ, PYTHONPATH=str(package_root), SQUEEZEBERT_KERNEL_DIR=str(kernel_dir),
               SQUEEZEBERT_FUSED_KERNELS="1")
    proc = subprocess.run([sys.executable, "-c", LOAD], cwd=cwd, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout + proc.stderr


def files_under(root):
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


def test_first_build_says_so_before_and_after_and_other_checkouts_reuse_it(tmp_path):
    kernel_dir = tmp_path / "kernels"
    first = load_in_process(ROOT, ROOT, kernel_dir)
    lines = first.strip().splitlines()
    assert len(lines) == 2 and re.search(r"building the fused CPU kernels once \(about 20 s; cached in "
                                         + re.escape(str(kernel_dir)), lines[0]), first
    assert re.search(r"built the fused CPU kernels in \d+\.\d s \(cached in " + re.escape(str(kernel_dir)),
                     lines[1]), first
    built = files_under(kernel_dir)
    assert sum(name.endswith(".so") for name in built) == 1
    # A second checkout of the same code (another path), started from elsewhere: no rebuild, no output,
    # no file added (the wrapper file a killed process left behind is removed), the library untouched.
    (key_dir,) = kernel_dir.iterdir()
    leftover = key_dir / "squeezebert_fused_cpu" / "squeezebert_fused_cpu_1234.py"
    leftover.write_text("# left by a killed process\n")
    checkout = tmp_path / "checkout2"
    shutil.copytree(ROOT / "squeezebert_paddle", checkout / "squeezebert_paddle",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "elsewhere").mkdir()
    assert load_in_process(checkout, tmp_path / "elsewhere", kernel_dir) == ""
    again = files_under(kernel_dir)
    assert again.keys() == built.keys()
    so = next(name for name in built if name.endswith(".so"))
    assert again[so] == built[so]
    # A cached library that no longer loads (truncated on a full disk, corrupt): said in one line, rebuilt.
    library = kernel_dir / so
    library.write_bytes(library.read_bytes()[:4096])
    lines = load_in_process(ROOT, ROOT, kernel_dir).strip().splitlines()
    assert len(lines) == 3 and f"the cached fused CPU kernel library {library} cannot be loaded (" in lines[0] \
        and lines[0].endswith("); rebuilding it"), lines
    assert "building the fused CPU kernels once" in lines[1] and "built the fused CPU kernels" in lines[2]
    assert library.stat().st_size > 4096


def test_cache_key_follows_the_paddle_install_not_the_checkout(monkeypatch, tmp_path):
    here = cpu_kernels.cache_dir()
    copy = tmp_path / "fused_cpu.cc"
    shutil.copyfile(cpu_kernels.SOURCE, copy)
    monkeypatch.setattr(cpu_kernels, "SOURCE", copy)            # same code in another checkout
    assert cpu_kernels.cache_dir() == here
    copy.write_text(copy.read_text() + "\n// changed\n")        # changed code
    assert cpu_kernels.cache_dir() != here
    monkeypatch.setattr(cpu_kernels, "SOURCE", ROOT / "squeezebert_paddle" / "kernels" / "fused_cpu.cc")
    monkeypatch.setattr(paddle, "__file__", str(tmp_path / "other_venv" / "paddle" / "__init__.py"))
    assert cpu_kernels.cache_dir() != here                       # another venv's Paddle


def test_cache_key_follows_the_cpu_features(monkeypatch):
    """-march=native: a build is for this CPU's features; another CPU sharing the cache builds its own."""
    identity = cpu_kernels.cpu_identity()
    if Path("/proc/cpuinfo").is_file():
        assert b"flags" in identity and b"model name" in identity
    here = cpu_kernels.cache_dir()
    monkeypatch.setattr(cpu_kernels, "cpu_identity", lambda: identity.replace(b"avx512f", b"no-avx512f") + b" x")
    assert cpu_kernels.cache_dir() != here


@pytest.mark.parametrize("cpuinfo, expected", [
    ("processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Xeon\nflags\t\t: fpu avx512f\n\nprocessor\t: 1\n",
     b"vendor_id\t: GenuineIntel\nmodel name\t: Xeon\nflags\t\t: fpu avx512f"),
    ("processor\t: 0\nFeatures\t: fp asimd sve\nCPU implementer\t: 0x41\nCPU part\t: 0xd40\n\n",
     b"Features\t: fp asimd sve\nCPU implementer\t: 0x41\nCPU part\t: 0xd40"),
])
def test_cpu_identity_reads_x86_and_arm_cpuinfo(cpuinfo, expected, monkeypatch, tmp_path):
    real_read = Path.read_text
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: cpuinfo if str(self) == "/proc/cpuinfo"
                        else real_read(self, *a, **k))
    assert cpu_kernels.cpu_identity() == expected


def test_a_kernel_dir_with_a_space_is_refused_in_words(monkeypatch, tmp_path):
    monkeypatch.setattr(cpu_kernels, "_module", None)
    monkeypatch.setattr(cpu_kernels, "_failure", None)
    monkeypatch.setenv("SQUEEZEBERT_KERNEL_DIR", str(tmp_path / "k dir"))
    assert cpu_kernels.load() is None
    assert "has a space in its path" in cpu_kernels.failure() and "SQUEEZEBERT_KERNEL_DIR" in cpu_kernels.failure()


def test_a_compiler_error_is_named_in_the_reason(monkeypatch, tmp_path):
    import paddle.utils.cpp_extension as cpp_extension

    def failing_compiler(**kwargs):
        os.system("echo 'fused_cpu.cc:3:1: error: expected unqualified-id' >&2")    # what g++ prints
        raise RuntimeError("Failed to run command: ... returned non-zero exit status 1.")

    monkeypatch.setattr(cpp_extension, "load", failing_compiler)
    monkeypatch.setattr(cpu_kernels, "_module", None)
    monkeypatch.setattr(cpu_kernels, "_failure", None)
    monkeypatch.setenv("SQUEEZEBERT_KERNEL_DIR", str(tmp_path))
    assert cpu_kernels.load() is None
    assert cpu_kernels.failure() == ("RuntimeError: Failed to run command: ... returned non-zero exit status 1. "
                                     "(first compiler error: fused_cpu.cc:3:1: error: expected unqualified-id)")


# -- a cache this process cannot write: a prebuilt one loads as it is, an empty one falls back --------

READ_ONLY_LOAD = """
import errno, os
if os.geteuid() == 0:           # root writes through chmod a-w: opening the lock fails as it would for a user
    real_open = os.open
    def read_only_open(path, flags, *args, **kwargs):
        if str(path).endswith("/.lock") and flags & (os.O_RDWR | os.O_WRONLY | os.O_CREAT):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        return real_open(path, flags, *args, **kwargs)
    os.open = read_only_open
from squeezebert_paddle import cpu_kernels
import numpy as np, paddle
assert cpu_kernels.load() is not None, cpu_kernels.failure()
x = np.arange(12, dtype="float32").reshape([3, 4])
grouped = cpu_kernels.tokens_to_groups(paddle.to_tensor(x), 2).numpy()
assert np.array_equal(grouped, x.reshape([3, 2, 2]).transpose([1, 0, 2]))
print("loaded")
"""


def test_a_prebuilt_cache_that_cannot_be_written_loads_without_the_lock(ops, tmp_path):
    """A fully built cache shipped read-only (an image, chmod -R a-w): loading needs no lock and writes
    nothing there, so the library loads as it is, silently."""
    built = cpu_kernels.cache_dir()
    kernel_dir = tmp_path / "kernels"
    shutil.copytree(built, kernel_dir / built.name, symlinks=True)
    before = files_under(kernel_dir)
    subprocess.run(["chmod", "-R", "a-w", str(kernel_dir)], check=True)
    try:
        env = dict(os.environ, PYTHONPATH=str(ROOT), SQUEEZEBERT_KERNEL_DIR=str(kernel_dir),
                   SQUEEZEBERT_FUSED_KERNELS="1")
        proc = subprocess.run([sys.executable, "-c", READ_ONLY_LOAD], cwd=tmp_path, env=env, capture_output=True,
                              text=True)
    finally:
        subprocess.run(["chmod", "-R", "u+w", str(kernel_dir)], check=True)
    assert proc.returncode == 0 and proc.stdout == "loaded\n" and proc.stderr == "", proc.stdout + proc.stderr
    assert files_under(kernel_dir) == before


@pytest.fixture
def read_only_lock(monkeypatch, tmp_path):
    """A kernel cache under tmp_path whose lock cannot be opened, as in a read-only directory (which
    root, writing through chmod a-w, cannot be shown otherwise); the fused kernels not yet loaded."""
    real_open = os.open

    def read_only_open(path, flags, *args, **kwargs):
        if str(path).endswith("/.lock"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", read_only_open)
    monkeypatch.setattr(cpu_kernels, "_module", None)
    monkeypatch.setattr(cpu_kernels, "_failure", None)
    monkeypatch.setenv("SQUEEZEBERT_KERNEL_DIR", str(tmp_path))
    return cpu_kernels.cache_dir()


def test_an_empty_cache_that_cannot_be_written_still_falls_back(read_only_lock, tmp_path, caplog):
    """Nothing built and no lock to build under: the warning names the lock, and the reference runs."""
    with caplog.at_level("WARNING"):
        assert cpu_kernels.load() is None
    assert cpu_kernels.failure() == (f"PermissionError: [Errno 13] Permission denied: '{read_only_lock / '.lock'}' "
                                     f"under SQUEEZEBERT_KERNEL_DIR={tmp_path}: point it at a writable directory, "
                                     f"or unset it")
    assert "fused CPU kernels unavailable (PermissionError" in caplog.text


def test_a_broken_library_in_a_cache_that_cannot_be_written_falls_back_in_words(read_only_lock, caplog):
    library = read_only_lock / cpu_kernels.NAME / f"{cpu_kernels.NAME}.so"
    library.parent.mkdir(parents=True)
    library.write_bytes(b"not a shared library")
    with caplog.at_level("WARNING"):
        assert cpu_kernels.load() is None
    failure = cpu_kernels.failure()          # refused before dlopen: no ELF header
    assert failure == (f"the cached library {library} cannot be loaded (OSError: not a 64-bit little-endian ELF "
                       f"file) nor rebuilt in its read-only directory; point SQUEEZEBERT_KERNEL_DIR at a writable "
                       f"directory"), failure
    assert f"fused CPU kernels unavailable ({failure}); the model uses Paddle's own ops" in caplog.text


NO_COMPILER_LOAD = """
import shutil
shutil.which = lambda *args, **kwargs: None      # no c++ or g++ on PATH: nothing can be built
from squeezebert_paddle import cpu_kernels
module = cpu_kernels.load()
print("loaded" if module is not None else f"unavailable: {cpu_kernels.failure()}")
"""


@pytest.mark.parametrize("library", ["whole", "truncated"])
def test_without_a_compiler_a_built_cache_still_loads_and_a_truncated_one_falls_back(library, ops, tmp_path):
    """An image with a prebuilt cache but no compiler loads the library as it is; one cut short (a full
    disk) is refused in words before it is mapped (loading it would die of SIGBUS, not raise)."""
    built = cpu_kernels.cache_dir()
    kernel_dir = tmp_path / "kernels"
    shutil.copytree(built, kernel_dir / built.name, symlinks=True)
    so = kernel_dir / built.name / cpu_kernels.NAME / f"{cpu_kernels.NAME}.so"
    if library == "truncated":
        so.write_bytes(so.read_bytes()[:1000])
    env = dict(os.environ, PYTHONPATH=str(ROOT), SQUEEZEBERT_KERNEL_DIR=str(kernel_dir), SQUEEZEBERT_FUSED_KERNELS="1")
    proc = subprocess.run([sys.executable, "-c", NO_COMPILER_LOAD], cwd=tmp_path, env=env, capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    if library == "whole":
        assert proc.stdout == "loaded\n" and proc.stderr == "", proc.stdout + proc.stderr
    else:
        assert proc.stdout.startswith(f"unavailable: the cached library {so} cannot be loaded (OSError: truncated: "
                                      f"1000 bytes") and proc.stdout.endswith(" nor rebuilt: no C++ compiler (c++ or g++) on PATH; install g++\n"), \
            proc.stdout
