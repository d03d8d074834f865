"""Dygraph (paddle.no_grad) timing of the formulations in forms.py, interleaved round-robin per pass.

Run:  cd /work/main && .venv/bin/python bench/experiments/bench_dygraph.py --forms A,D,V --pairs 1000 --passes 3
      [--onednn]   set FLAGS_use_mkldnn=1 (dygraph oneDNN kernels)
      [--bf16]     paddle.amp.auto_cast(dtype='bfloat16', level=O1) (needs --onednn: no plain-CPU bf16 kernels)
Results appended to _cache/results.jsonl.
"""
import argparse, os, sys, time
import numpy as np
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C

ap = argparse.ArgumentParser()
ap.add_argument("--forms", default="A,D,V")
ap.add_argument("--pairs", type=int, default=1000)
ap.add_argument("--passes", type=int, default=3)
ap.add_argument("--onednn", action="store_true")
ap.add_argument("--bf16", action="store_true")
ap.add_argument("--fixed-iters", type=int, default=4)
args = ap.parse_args()

import paddle
if args.onednn:
    paddle.set_flags({"FLAGS_use_mkldnn": True})
paddle.base.core.set_num_threads(2)
import forms

w = C.load_weights()
batches = C.load_batches(args.pairs)
fixed = C.fixed_batch()
names = args.forms.split(",")
models = {}
for n in names:
    models[n] = forms.build(n, w); models[n].eval()
del w


def runner(model):
    def run(ids, tt, m):
        with paddle.no_grad(), paddle.amp.auto_cast(enable=args.bf16, dtype="bfloat16", level="O1"):
            s, p = model(paddle.to_tensor(ids), paddle.to_tensor(tt), paddle.to_tensor(m))
        return s.numpy()
    return run


res = {n: [] for n in names}
bmin = {n: None for n in names}
share = {n: [] for n in names}
for p in range(args.passes):
    for n in names:
        C.BATCH_MIN.clear(); C.CPU_SHARE.clear()
        res[n] += C.time_workload(runner(models[n]), batches, passes=1)
        share[n] += C.CPU_SHARE
        if p > 0:
            bmin[n] = list(C.BATCH_MIN) if bmin[n] is None else [min(a, b) for a, b in zip(bmin[n], C.BATCH_MIN)]
        print(f"pass {p} {n}: {res[n][-1]:.1f} pairs/s", flush=True)
for n in names:
    f = C.time_fixed(runner(models[n]), fixed, iters=args.fixed_iters, warm=1)
    r = res[n]
    C.CPU_SHARE[:] = share[n]
    bb = sum(len(b[0]) for b in batches) / sum(bmin[n]) if bmin[n] else r[0]
    C.emit(dict(qqp_bestbatch=round(bb, 1), form=n, backend="dygraph" + ("+onednn" if args.onednn else ""), prec="bf16" if args.bf16 else "fp32",
                qqp_passes=[round(x, 1) for x in r], qqp_steady=round(max(r[1:] or r), 1),
                fixed16x128=round(f, 1), pairs=args.pairs))
