"""Batch-level interleaved comparison ACROSS processes: HF torch (own process) and Paddle inference
predictors (own process) run the same batch one after another, driven in lockstep over pipes, so
foreign load on this shared machine hits every variant alike, while torch and paddle never share a
process (their thread pools would disturb each other). Only one variant computes at any moment.

Run:  cd /work/main && .venv/bin/python bench/experiments/bench_lockstep.py \
          --torch fp32,bf16 --paddle A:onednn,W:onednn_cap0,W:onednn_bf16_nors_cap0 --pairs 1000 --passes 2
CAVEAT: measured torch ~15-25% slower in lockstep than standalone (the idle worker's OpenMP threads
spin while the other runs); use it for paddle-vs-paddle, and standalone torch_ref.py runs bracketing
bench_multi.py for torch-vs-paddle ratios.
Reports per variant: cold pass (pass 0), best steady pass, best-of-batches (per-batch min over steady
passes), speedup vs the first variant (on best-of-batches), and max |diff| vs torch fp32 on batch 0.
"""
import argparse, json, os, subprocess, sys, time
import numpy as np
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import common as C


def worker(kind, variants, pairs):
    batches = C.load_batches(pairs)
    fixed = C.fixed_batch()
    ref = np.load(os.path.join(C.CACHE, "torch_ref_out.npz"))
    runs = []
    if kind == "torch":
        import torch
        from transformers import SqueezeBertConfig, SqueezeBertModel
        torch.set_num_threads(2)
        cfg = SqueezeBertConfig(vocab_size=30528, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                                intermediate_size=3072, q_groups=4, k_groups=4, v_groups=4, post_attention_groups=1,
                                intermediate_groups=4, output_groups=4, hidden_act="gelu", type_vocab_size=2)
        model = SqueezeBertModel(cfg).eval()
        model.load_state_dict({k: torch.from_numpy(v) for k, v in C.load_weights().items()}, strict=False)
        for v in variants:
            def run(ids, tt, m, bf16=(v == "bf16")):
                with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                    return model(torch.from_numpy(ids), attention_mask=torch.from_numpy(m),
                                 token_type_ids=torch.from_numpy(tt)).last_hidden_state.float().numpy()
            runs.append(run)
    else:
        from bench_multi import make  # noqa  (bench_multi's module body needs args: import lazily below)
    out = sys.stdout
    sys.stdout = sys.stderr
    for line in sys.stdin:
        cmd = line.split()
        if cmd[0] == "quit":
            break
        vi = int(cmd[2])
        b = fixed if cmd[1] == "fixed" else batches[int(cmd[1])]
        t0 = time.perf_counter()
        r = runs[vi](*b)
        dt = time.perf_counter() - t0
        d = float("nan")
        if cmd[1] == "0":
            seq = r if kind == "torch" else [o for o in r if o.ndim == 3][0]
            d = float(np.abs(seq.astype(np.float32) - ref["b0_seq"])[b[2].astype(bool)].max())
        out.write(json.dumps([dt, d]) + "\n"); out.flush()


if __name__ == "__main__" and len(sys.argv) > 1 and sys.argv[1] == "--worker":
    kind, variants, pairs = sys.argv[2], sys.argv[3].split(","), int(sys.argv[4])
    if kind == "paddle":
        sys.argv = [sys.argv[0], "--specs", sys.argv[3]]   # let bench_multi parse harmlessly
        import importlib.util
        spec = importlib.util.spec_from_file_location("bm_make", os.path.join(HERE, "bench_multi.py"))
        src = open(os.path.join(HERE, "bench_multi.py")).read().split("specs = [tuple")[0]   # definitions only
        ns = {"__file__": os.path.join(HERE, "bench_multi.py"), "__name__": "bm_make"}
        exec(compile(src, "bench_multi.py", "exec"), ns)
        batches = C.load_batches(pairs)
        fixed = C.fixed_batch()
        ref = np.load(os.path.join(C.CACHE, "torch_ref_out.npz"))
        runs = [ns["make"](*v.split(":")) for v in variants]
        out = sys.stdout
        sys.stdout = sys.stderr
        for line in sys.stdin:
            cmd = line.split()
            if cmd[0] == "quit":
                break
            vi = int(cmd[2]); b = fixed if cmd[1] == "fixed" else batches[int(cmd[1])]
            t0 = time.perf_counter(); r = runs[vi](*b); dt = time.perf_counter() - t0
            d = float("nan")
            if cmd[1] == "0":
                seq = [o for o in r if o.ndim == 3][0]
                d = float(np.abs(seq.astype(np.float32) - ref["b0_seq"])[b[2].astype(bool)].max())
            out.write(json.dumps([dt, d]) + "\n"); out.flush()
    else:
        worker(kind, variants, pairs)
    sys.exit()

ap = argparse.ArgumentParser()
ap.add_argument("--torch", default="fp32,bf16")
ap.add_argument("--paddle", default="A:onednn,W:onednn_cap0,W:onednn_bf16_nors_cap0")
ap.add_argument("--pairs", type=int, default=1000)
ap.add_argument("--passes", type=int, default=2)
ap.add_argument("--fixed-iters", type=int, default=2)
ap.add_argument("--tag", default="lockstep")
args = ap.parse_args()
workers, variants = {}, []
if args.torch:
    workers["torch"] = subprocess.Popen([sys.executable, __file__, "--worker", "torch", args.torch, str(args.pairs)],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    variants += [("torch", i, "torch:" + v) for i, v in enumerate(args.torch.split(","))]
if args.paddle:
    workers["paddle"] = subprocess.Popen([sys.executable, __file__, "--worker", "paddle", args.paddle, str(args.pairs)],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    variants += [("paddle", i, v) for i, v in enumerate(args.paddle.split(","))]


def call(w, b, vi):
    p = workers[w]
    p.stdin.write(f"run {b} {vi}\n"); p.stdin.flush()
    line = p.stdout.readline()
    if not line:
        raise RuntimeError(f"{w} worker died")
    return json.loads(line)


batches = C.load_batches(args.pairs)
n_pairs = sum(len(b[0]) for b in batches)
T = {v[2]: np.zeros((args.passes, len(batches))) for v in variants}
diff = {}
for p in range(args.passes):
    for bi in range(len(batches)):
        k = (bi + p) % len(variants)
        for w, vi, name in variants[k:] + variants[:k]:
            dt, d = call(w, bi, vi)
            T[name][p, bi] = dt
            if bi == 0 and p == 0:
                diff[name] = d
    print(f"[{args.tag}] pass {p}: " + "  ".join(f"{n}={n_pairs / T[n][p].sum():.1f}" for _, _, n in variants), flush=True)
fx = {}
for w, vi, name in variants:
    call(w, "fixed", vi)
for it in range(args.fixed_iters):
    for w, vi, name in variants:
        fx[name] = min(fx.get(name, 1e9), call(w, "fixed", vi)[0])
for p in workers.values():
    p.stdin.write("quit\n"); p.stdin.flush()
base = variants[0][2]
bb = lambda n: n_pairs / (T[n][1:].min(0).sum() if args.passes > 1 else T[n][0].sum())
print(f"\n[{args.tag}] pairs/s, first {n_pairs} QQP pairs, bs16, pad-to-longest; loadavg {open('/proc/loadavg').read().split()[0]}")
print(f"  {'variant':34s} {'cold':>7s} {'steady':>7s} {'bestb':>7s} {'vs ' + base:>14s} {'16x128':>7s}  maxdiff_vs_torch_fp32")
for _, _, n in variants:
    cold = n_pairs / T[n][0].sum()
    steady = max(n_pairs / T[n][i].sum() for i in range(1, args.passes)) if args.passes > 1 else cold
    print(f"  {n:34s} {cold:7.1f} {steady:7.1f} {bb(n):7.1f} {bb(n) / bb(base):13.2f}x {16 / fx[n]:7.1f}  {diff[n]:.1e}")
    C.emit(dict(form=n, mode=args.tag, qqp_cold=round(cold, 1), qqp_steady=round(steady, 1), qqp_bestbatch=round(bb(n), 1),
                fixed16x128=round(16 / fx[n], 1), pairs=n_pairs, maxdiff_b0=diff[n]))
