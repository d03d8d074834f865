"""Measured GEMM peak on this CPU through Paddle: dygraph paddle.matmul (fp32; bf16 under oneDNN if it runs)
and paddle.inference (oneDNN fp32 / bf16) on a tiny exported matmul model; also the SqueezeBERT-shaped
GEMMs ([4, N, 192]x[4,192,768] etc.).

Run:  cd /work/main && .venv/bin/python bench/experiments/peak_matmul.py [--onednn]
"""
import os, sys, time, argparse
import numpy as np
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
ap = argparse.ArgumentParser(); ap.add_argument("--onednn", action="store_true"); ap.add_argument("--threads", type=int, default=2)
args = ap.parse_args()
import paddle
if args.onednn:
    paddle.set_flags({"FLAGS_use_mkldnn": True})
paddle.base.core.set_num_threads(args.threads)


def bench(fn, flops, reps=None, min_t=1.0):
    fn(); fn()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < min_t:
        fn(); n += 1
    dt = (time.perf_counter() - t0) / n
    return flops / dt / 1e9, dt * 1e3


shapes = [("big 2048x2048x2048", [2048, 2048], [2048, 2048]),
          ("fc N=1000 768->768", [1000, 768], [768, 768]),
          ("grp [4,1000,192]x[4,192,768]", [4, 1000, 192], [4, 192, 768]),
          ("grp [4,1000,768]x[4,768,192]", [4, 1000, 768], [4, 768, 192]),
          ("grp [4,500,192]x[4,192,576]", [4, 500, 192], [4, 192, 576])]
for dt in ["float32", "bfloat16"]:
    for name, sa, sb in shapes:
        a = paddle.randn(sa).astype(dt); b = paddle.randn(sb).astype(dt)
        fl = 2 * np.prod(sa) * sb[-1]
        try:
            g, ms = bench(lambda: paddle.matmul(a, b), fl)
            print(f"dygraph{'+onednn' if args.onednn else ''} {dt:9s} {name:32s} {g:8.1f} GFLOP/s  {ms:8.3f} ms", flush=True)
        except Exception as e:
            print(f"dygraph {dt} {name}: FAIL {str(e).splitlines()[0][:120]}")
