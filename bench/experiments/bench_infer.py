"""paddle.inference timing of an exported formulation (see export.py) under one Config variant.

Run:  cd /work/main && .venv/bin/python bench/experiments/bench_infer.py --form D --cfg onednn [--pairs 1000 --passes 3]
  --cfg  onednn        enable_onednn(), 2 math threads, ir_optim on            (fp32)
         onednn_bf16   + enable_onednn_bfloat16()                               (bf16)
         plain         disable_onednn() (native CPU kernels, MKL GEMM)          (fp32)
         *_noir        same with switch_ir_optim(False)
         *_capN        set_onednn_cache_capacity(N)
         *_noexe       do not call enable_new_executor() (default: called)
         *_nors        delete_pass("operator_reshape_onednn_fuse_pass") (needed for bf16 of B/D/E/V)
         *_ops         set_onednn_op({matmul, fc, softmax, layer_norm, gelu, add, ...}) only
         *_prof        config.enable_profile() (per-op table printed at exit)
  --warm-shapes  run every distinct batch once before the timed passes (pass 0 is then warm too)
Also checks parity of the first batch against the HF torch reference (torch_ref.py --save-ref).
Results appended to _cache/results.jsonl.
"""
import argparse, os, sys, time
import numpy as np
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C

ap = argparse.ArgumentParser()
ap.add_argument("--form", default="D")
ap.add_argument("--cfg", default="onednn")
ap.add_argument("--pairs", type=int, default=1000)
ap.add_argument("--passes", type=int, default=3)
ap.add_argument("--fixed-iters", type=int, default=6)
ap.add_argument("--warm-shapes", action="store_true")
ap.add_argument("--summary", action="store_true")
args = ap.parse_args()

import paddle.inference as pi

model_dir = os.path.join(C.CACHE, "export", f"{args.form}_pir")
cfgname = args.cfg
config = pi.Config(os.path.join(model_dir, "model.json"), os.path.join(model_dir, "model.pdiparams"))
config.disable_gpu()
config.set_cpu_math_library_num_threads(2)
config.switch_ir_optim("_noir" not in cfgname)
if cfgname.startswith("plain"):
    config.disable_onednn()
else:
    config.enable_onednn()
    if "bf16" in cfgname:
        config.enable_onednn_bfloat16()
        if "_bfmm" in cfgname:   # bf16 only for the GEMM ops; layer_norm/softmax/add/gelu stay fp32
            config.set_bfloat16_op({"fc", "fused_matmul", "matmul", "matmul_v2"})
    if "_cap" in cfgname:
        config.set_onednn_cache_capacity(int(cfgname.split("_cap")[1].split("_")[0]))
if "_ops" in cfgname:   # only the compute-heavy ops on oneDNN; reshape/transpose/slice/stack stay native
    config.set_onednn_op({"matmul", "matmul_v2", "fc", "fused_matmul", "softmax", "layer_norm", "gelu",
                          "elementwise_add", "add", "scale"})
if "_nors" in cfgname:   # works around the bf16 "Broadcast dimension mismatch" at predictor creation
    config.delete_pass("operator_reshape_onednn_fuse_pass")
if "_prof" in cfgname:
    config.enable_profile()
if "_noexe" not in cfgname:
    config.enable_new_executor()
config.disable_glog_info()
t0 = time.time()
pred = pi.create_predictor(config)
t_create = time.time() - t0
if args.summary:
    print(config.summary())
ins = [pred.get_input_handle(n) for n in pred.get_input_names()]
name2idx = {n: i for i, n in enumerate(pred.get_input_names())}
outs = [pred.get_output_handle(n) for n in pred.get_output_names()]


def run(ids, tt, m):
    for name, arr in (("input_ids", ids), ("token_type_ids", tt), ("attention_mask", m)):
        ins[name2idx[name]].copy_from_cpu(arr)
    pred.run()
    return [o.copy_to_cpu() for o in outs]


batches = C.load_batches(args.pairs)
# parity vs HF torch (fp32 reference) on batch 0 and fixed batch
ref = np.load(os.path.join(C.CACHE, "torch_ref_out.npz"))
diffs = {}
for cn, b in (("b0", C.load_batches(16)[0]), ("fixed", C.fixed_batch())):
    t0 = time.time()
    s, p = run(*b)[:2]
    if s.ndim == 2:
        s, p = p, s
    m = b[2].astype(bool)
    diffs[cn] = float(np.abs(s.astype(np.float32) - ref[cn + "_seq"])[m].max())
    diffs[cn + "_pool"] = float(np.abs(p.astype(np.float32) - ref[cn + "_pool"]).max())
    diffs[cn + "_first_run_s"] = round(time.time() - t0, 2)
if args.warm_shapes:
    seen = set()
    for b in batches:
        if b[0].shape not in seen:
            seen.add(b[0].shape); run(*b)
r = C.time_workload(run, batches, passes=args.passes)
f = C.time_fixed(run, C.fixed_batch(), iters=args.fixed_iters, warm=1)
def _threads():
    """CPU seconds per OS thread of this process (to see whether both math threads work)."""
    out = []
    for tid in os.listdir("/proc/self/task"):
        f = open(f"/proc/self/task/{tid}/stat").read().rsplit(")", 1)[1].split()
        out.append(round((int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK"), 1))
    return sorted([x for x in out if x > 0.2], reverse=True)


C.emit(dict(form=args.form, backend="infer:" + cfgname + ("+warmshapes" if args.warm_shapes else ""),
            prec="bf16" if "bf16" in cfgname else "fp32", qqp_passes=[round(x, 1) for x in r],
            qqp_steady=round(max(r[1:] or r), 1), qqp_bestbatch=round(C.best_of_batches(batches), 1), fixed16x128=round(f, 1), pairs=args.pairs,
            create_s=round(t_create, 1), maxdiff=diffs, thread_cpu_s=_threads()))
