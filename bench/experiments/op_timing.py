"""Per-op wall time of single ops at SqueezeBERT shapes in dygraph (N tokens = 1000, B=16, L=62).
Run:  cd /work/main && .venv/bin/python bench/experiments/op_timing.py [--onednn]
"""
import os, sys, time, argparse
import numpy as np
ap = argparse.ArgumentParser(); ap.add_argument("--onednn", action="store_true"); args = ap.parse_args()
import paddle, paddle.nn.functional as F
if args.onednn:
    paddle.set_flags({"FLAGS_use_mkldnn": True})
paddle.base.core.set_num_threads(2)

def t(name, fn, min_t=0.5):
    fn(); fn()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < min_t:
        fn(); n += 1
    print(f"{name:45s} {(time.perf_counter()-t0)/n*1e3:8.3f} ms", flush=True)

B, L = 16, 62; N = B * L
x = paddle.randn([N, 768]); xg = paddle.randn([4, N, 192]); h = paddle.randn([4, N, 768]); hh = paddle.randn([N, 3072])
wg = paddle.randn([4, 192, 768]); wqkv = paddle.randn([4, 192, 576]); wo = paddle.randn([4, 768, 192]); w = paddle.randn([768, 768])
b = paddle.randn([768]); lw = paddle.ones([768]); lb = paddle.zeros([768])
q = paddle.randn([B, 12, L, 64]); s = paddle.randn([B, 12, L, L]); m = paddle.zeros([B, 1, 1, L])
qkv = paddle.randn([4, N, 576])
with paddle.no_grad():
    t("matmul [4,N,192]x[4,192,576] (qkv)", lambda: paddle.matmul(xg, wqkv))
    t("matmul [4,N,192]x[4,192,768] (inter)", lambda: paddle.matmul(xg, wg))
    t("matmul [4,N,768]x[4,768,192] (out)", lambda: paddle.matmul(h, wo))
    t("F.linear [N,768]x[768,768] (post)", lambda: F.linear(x, w, b))
    t("add bias [N,768]", lambda: x + b)
    t("transpose [N,4,192]->[4,N,192]", lambda: x.reshape([-1, 4, 192]).transpose([1, 0, 2]))
    t("transpose+contig [N,4,192]->[4,N,192]", lambda: x.reshape([-1, 4, 192]).transpose([1, 0, 2]).contiguous())
    t("transpose 6D qkv -> [3,B,12,L,64]", lambda: qkv.reshape([4, B, L, 3, 3, 64]).transpose([3, 1, 0, 4, 2, 5]).reshape([3, B, 12, L, 64]))
    t("matmul q k^T [B,12,L,64]", lambda: paddle.matmul(q, q, transpose_y=True))
    t("softmax(s + m) [B,12,L,L]", lambda: F.softmax(s + m, -1))
    t("matmul p v", lambda: paddle.matmul(s, q))
    t("layer_norm [N,768]", lambda: F.layer_norm(x, [768], lw, lb, 1e-12))
    t("gelu [4,N,768]", lambda: F.gelu(h))
    t("gelu approximate [4,N,768]", lambda: F.gelu(h, approximate=True))
    t("conv1d [B,768,L] g4 ->3072", lambda: F.conv1d(x.reshape([B, L, 768]).transpose([0, 2, 1]), paddle.randn([3072, 192, 1]), groups=4))
    # head-major broadcast bmm (form H) vs the [4,N,192]x[4,192,576] bmm it replaces
    xh = paddle.randn([1, B, 4, 1, L, 192]); wh = paddle.randn([3, 1, 4, 3, 192, 64])
    t("broadcast bmm [1,B,4,1,L,192]x[3,1,4,3,192,64]", lambda: paddle.matmul(xh, wh))
    xh5 = paddle.randn([B, 4, L, 192]).unsqueeze(1); wh5 = paddle.randn([4, 192, 576])
    t("broadcast bmm [B,4,L,192]x[4,192,576]", lambda: paddle.matmul(paddle.randn([B, 4, L, 192]), wh5))
    # per-head broadcast bmm over B: [B,12,L,192] x [12,192,64] -> [B,12,L,64]
    xr = paddle.randn([B, 12, L, 192]); wr = paddle.randn([12, 192, 64])
    t("bcast bmm [B,12,L,192]x[12,192,64]", lambda: paddle.matmul(xr, wr))
    wrb = paddle.randn([B, 12, 192, 64])
    t("bmm [B,12,L,192]x[B,12,192,64] (no bcast)", lambda: paddle.matmul(xr, wrb))
