"""Numerical parity of every Paddle formulation vs formulation A (PaddleNLP-style conv) and vs the HF torch
reference outputs saved by `torch_ref.py --save-ref` (same random weights). fp32 dygraph.

Run:  cd /work/main && .venv/bin/python bench/experiments/check_parity.py [A B C ...]
Max abs diff over real (non-pad) positions; pad positions are also reported for the padded forms.
"""
import os, sys
import numpy as np
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C
import paddle
paddle.base.core.set_num_threads(2)
import forms

w = C.load_weights()
ref = np.load(os.path.join(C.CACHE, "torch_ref_out.npz"))
b = C.load_batches(1000)
cases = {"b0": b[0], "b1": b[1], "fixed": C.fixed_batch()}
names = sys.argv[1:] or forms.ALL
outs = {}
with paddle.no_grad():
    for n in names:
        model = forms.build(n, w); model.eval()
        outs[n] = {}
        for cn, (ids, tt, m) in cases.items():
            s, p = model(paddle.to_tensor(ids), paddle.to_tensor(tt), paddle.to_tensor(m))
            outs[n][cn] = (np.array(s.numpy(), copy=True), np.array(p.numpy(), copy=True), m.astype(bool))
        del model
for n in names:
    row = []
    for cn in cases:
        s, p, m = outs[n][cn]
        rs, rp = ref[cn + "_seq"], ref[cn + "_pool"]
        d_real = np.abs(s - rs)[m].max(); d_pool = np.abs(p - rp).max()
        d_pad = np.abs(s - rs)[~m].max() if (~m).any() else 0.0
        extra = ""
        if "A" in outs and n != "A":
            extra = f" vsA_real={np.abs(s - outs['A'][cn][0])[m].max():.1e}"
        row.append(f"{cn}: vsHF_real={d_real:.1e} pool={d_pool:.1e} pad={d_pad:.1e}{extra}")
    print(f"{n:3s} | " + " | ".join(row), flush=True)
