"""Forward and backward time of the non-matmul pieces of a 16x128 SqueezeBERT training step: Paddle's own
ops, the fused CPU kernels (squeezebert_paddle.cpu_kernels) and torch, at the step's shapes.

    python bench/train_op_timing.py [--default_malloc]

Each figure is the median of 15 calls in ms; "bwd" is (forward + paddle.grad / autograd.grad) minus
forward. Dropout rates are 0.1 as in fine-tuning.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))     # the package, from a plain clone


def median_ms(fn, repeats=15):
    fn(), fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * float(np.median(times))


def fwd_bwd(forward, inputs, grad_fn):
    out = forward()
    g = np.random.default_rng(0).standard_normal(out.shape).astype(np.float32)
    f = median_ms(forward)
    return f, median_ms(lambda: grad_fn(forward(), inputs, g)) - f


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--default_malloc", action="store_true", help="without host_memory.retain_freed_memory()")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    import paddle
    import paddle.nn.functional as F
    import torch

    from squeezebert_paddle import cpu_kernels as ck
    from squeezebert_paddle.host_memory import retain_freed_memory
    paddle.set_device("cpu")
    paddle.base.core.set_num_threads(args.threads)
    ck.set_threads(args.threads)
    torch.set_num_threads(args.threads)
    if not args.default_malloc:
        retain_freed_memory()
    assert ck.load() is not None, ck.failure()

    def pg(out, inputs, g):
        return paddle.grad(out, inputs, paddle.to_tensor(g))

    def tg(out, inputs, g):
        return torch.autograd.grad(out, inputs, torch.from_numpy(g))

    def leaf(*shape):
        t = paddle.randn(shape)
        t.stop_gradient = False
        return t

    def tleaf(t):
        return torch.from_numpy(t.numpy()).requires_grad_()

    n, c, i = 2048, 768, 3072
    x, b, r = leaf(4, n, c // 4), leaf(c), leaf(n, c)
    xi, bi = leaf(4, n, i // 4), leaf(i)
    s, mask = leaf(16, 12, 128, 128), paddle.zeros([16, 128])
    norm = paddle.nn.LayerNorm(c, epsilon=1e-12)
    tx, tb, tr, txi, tbi, ts = map(tleaf, (x, b, r, xi, bi, s))
    tnorm = torch.nn.LayerNorm(c, eps=1e-12)

    def tokens(y):
        return y.transpose([1, 0, 2]).reshape([n, -1])

    rows = {
        "bias + GELU [4, 2048, 768]": (
            (lambda: F.gelu(xi + bi.reshape([4, 1, 768])), [xi, bi], pg),
            (lambda: ck.bias_gelu(xi, bi), [xi, bi], pg),
            (lambda: torch.nn.functional.gelu(txi + tbi.reshape(4, 1, 768)), [txi, tbi], tg)),
        "bias, dropout, residual, LayerNorm": (
            (lambda: norm(F.dropout(tokens(x) + b, 0.1) + r), [x, b, r], pg),
            (lambda: ck.bias_dropout_residual_layernorm(x, b, r, norm, 0.1), [x, b, r], pg),
            (lambda: tnorm(torch.nn.functional.dropout(tx.transpose(0, 1).reshape(n, c) + tb, 0.1) + tr),
             [tx, tb, tr], tg)),
        "masked softmax + dropout": (
            (lambda: F.dropout(F.softmax(s * 0.125 + mask.reshape([16, 1, 1, 128]), -1), 0.1), [s], pg),
            (lambda: ck.softmax_dropout(s, mask, 0.125, 0.1), [s], pg),
            (lambda: torch.nn.functional.dropout(torch.softmax(ts * 0.125, -1), 0.1), [ts], tg)),
        "group-major layout [2048, 768]": (
            (lambda: r.reshape([n, 4, 192]).transpose([1, 0, 2]) * 1.0, [r], pg),
            (lambda: ck.tokens_to_groups(r, 4), [r], pg),
            (lambda: tr.reshape(n, 4, 192).transpose(0, 1).contiguous(), [tr], tg)),
    }
    print(f"{args.threads} threads, {'default' if args.default_malloc else 'retained'} malloc; ms fwd / bwd")
    print(f"{'piece':38s} {'paddle ops':>15s} {'fused kernels':>15s} {'torch':>15s}")
    for name, cases in rows.items():
        cells = ["%6.2f / %6.2f" % fwd_bwd(*case) for case in cases]
        print(f"{name:38s} " + " ".join(f"{cell:>15s}" for cell in cells))


if __name__ == "__main__":
    from squeezebert_paddle.errors import run_main
    sys.exit(run_main(main))
