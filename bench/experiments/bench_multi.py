"""Side-by-side paddle.inference comparison in ONE process: several (form, config) predictors are run on
the same batch one after another (order rotated per batch), so bursts of foreign load on this shared
2-core machine hit all variants alike. Per variant: cold pass (first time each shape is seen), best whole
steady pass, and best-of-batches (sum over batches of the min time over steady passes).

Run:  cd /work/main && .venv/bin/python bench/experiments/bench_multi.py \
          --specs A:onednn,A:onednn_cap0,V:onednn_cap0 --pairs 1000 --passes 3
  spec = FORM:CFG, CFG as in bench_infer.py (onednn, onednn_cap0, onednn_bf16_nors_cap0, plain, ...).
  env ONEDNN_PRIMITIVE_CACHE_CAPACITY etc. apply to all variants.
"""
import argparse, os, sys, time, json
import numpy as np
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C

ap = argparse.ArgumentParser()
ap.add_argument("--specs", required=True)
ap.add_argument("--pairs", type=int, default=1000)
ap.add_argument("--passes", type=int, default=3)
ap.add_argument("--fixed-iters", type=int, default=3)
ap.add_argument("--tag", default="multi")
args = ap.parse_args()

import paddle.inference as pi


def make(form, cfgname):
    d = os.path.join(C.CACHE, "export", f"{form}_pir")
    c = pi.Config(os.path.join(d, "model.json"), os.path.join(d, "model.pdiparams"))
    c.disable_gpu(); c.set_cpu_math_library_num_threads(2); c.switch_ir_optim("_noir" not in cfgname)
    if cfgname.startswith("plain"):
        c.disable_onednn()
    else:
        c.enable_onednn()
        if "bf16" in cfgname:
            c.enable_onednn_bfloat16()
        if "_bfmm" in cfgname:   # bf16 only for the GEMM ops; layer_norm/softmax/add/gelu stay fp32
            c.set_bfloat16_op({"fc", "fused_matmul", "matmul", "matmul_v2"})
        if "_cap" in cfgname:
            c.set_onednn_cache_capacity(int(cfgname.split("_cap")[1].split("_")[0]))
    if "_nors" in cfgname:
        c.delete_pass("operator_reshape_onednn_fuse_pass")
    if "_noexe" not in cfgname:
        c.enable_new_executor()
    c.disable_glog_info()
    p = pi.create_predictor(c)
    ins = {n: p.get_input_handle(n) for n in p.get_input_names()}
    outs = [p.get_output_handle(n) for n in p.get_output_names()]

    def run(ids, tt, m):
        ins["input_ids"].copy_from_cpu(ids); ins["token_type_ids"].copy_from_cpu(tt); ins["attention_mask"].copy_from_cpu(m)
        p.run()
        return [o.copy_to_cpu() for o in outs]
    return run


specs = [tuple(s.split(":")) for s in args.specs.split(",")]
runs = {s: make(*s) for s in specs}
batches = C.load_batches(args.pairs)
n_pairs = sum(len(b[0]) for b in batches)
ref = np.load(os.path.join(C.CACHE, "torch_ref_out.npz"))
times = {s: np.zeros((args.passes, len(batches))) for s in specs}
diff = {}
for p in range(args.passes):
    for bi, b in enumerate(batches):
        order = specs[(bi + p) % len(specs):] + specs[:(bi + p) % len(specs)]
        for s in order:
            t0 = time.perf_counter()
            out = runs[s](*b)
            times[s][p, bi] = time.perf_counter() - t0
            if p == 0 and bi == 0:
                seq = [o for o in out if o.ndim == 3][0].astype(np.float32)
                diff[s] = float(np.abs(seq - ref["b0_seq"])[b[2].astype(bool)].max())
    print(f"[{args.tag}] pass {p}: " + "  ".join(f"{f}:{c}={n_pairs / times[(f, c)][p].sum():.1f}" for f, c in specs), flush=True)
fixed = C.fixed_batch()
fx = {}
for s in specs:
    runs[s](*fixed)
for s in specs:
    ts = []
    for _ in range(args.fixed_iters):
        for s2 in specs:  # interleave
            t0 = time.perf_counter(); runs[s2](*fixed); dt = time.perf_counter() - t0
            if s2 == s:
                ts.append(dt)
    fx[s] = len(fixed[0]) / min(ts)
    if len(specs) > 3:
        break
base = specs[0]
print(f"\n[{args.tag}] pairs/s on first {n_pairs} QQP pairs (bs16, dynamic padding), {os.cpu_count()} cores, loadavg {open('/proc/loadavg').read().split()[0]}")
print(f"  {'form:config':34s} {'cold':>7s} {'steady':>7s} {'bestb':>7s} {'vs ' + base[0]:>8s}  {'16x128':>7s}  maxdiff")
for s in specs:
    t = times[s]
    cold = n_pairs / t[0].sum()
    steady = max(n_pairs / t[i].sum() for i in range(1, args.passes)) if args.passes > 1 else cold
    bestb = n_pairs / t[1:].min(0).sum() if args.passes > 1 else cold
    rel = (t[1:].min(0).sum() if args.passes > 1 else t[0].sum())
    relb = (times[base][1:].min(0).sum() if args.passes > 1 else times[base][0].sum())
    print(f"  {s[0] + ':' + s[1]:34s} {cold:7.1f} {steady:7.1f} {bestb:7.1f} {relb / rel:8.2f}x  {fx.get(s, float('nan')):7.1f}  {diff[s]:.1e}")
    C.emit(dict(form=s[0], backend="infer:" + s[1], prec="bf16" if "bf16" in s[1] else "fp32", mode=args.tag,
                qqp_cold=round(cold, 1), qqp_steady=round(steady, 1), qqp_bestbatch=round(bestb, 1),
                fixed16x128=round(fx.get(s, float("nan")), 1), pairs=n_pairs, maxdiff_b0=diff[s]))
