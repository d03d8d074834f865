"""Round-robin driver: runs bench_infer.py for every (form, cfg) in separate processes, `--reps` times,
interleaved so machine-load drift hits all variants alike. Prints a table of best steady pairs/s.

Run:  cd /work/main && .venv/bin/python bench/experiments/sweep.py --forms A,D,V --cfgs onednn,onednn_bf16 \
          --pairs 320 --passes 2 --reps 2 [--tag screen] [--extra "--warm-shapes"]
"""
import argparse, json, os, subprocess, sys, time
HERE = os.path.dirname(os.path.abspath(__file__))
ap = argparse.ArgumentParser()
ap.add_argument("--forms", default="A,D,V")
ap.add_argument("--cfgs", default="onednn,onednn_bf16,plain")
ap.add_argument("--pairs", type=int, default=320)
ap.add_argument("--passes", type=int, default=2)
ap.add_argument("--reps", type=int, default=1)
ap.add_argument("--fixed-iters", type=int, default=3)
ap.add_argument("--extra", default="")
ap.add_argument("--tag", default="sweep")
args = ap.parse_args()
py = sys.executable
table = {}
for rep in range(args.reps):
    for form in args.forms.split(","):
        for cfg in args.cfgs.split(","):
            cmd = [py, os.path.join(HERE, "bench_infer.py"), "--form", form, "--cfg", cfg, "--pairs", str(args.pairs),
                   "--passes", str(args.passes), "--fixed-iters", str(args.fixed_iters)] + args.extra.split()
            t0 = time.time()
            p = subprocess.run(cmd, capture_output=True, text=True)
            line = [l for l in p.stdout.splitlines() if l.startswith("RESULT ")]
            if not line:
                err = (p.stderr or p.stdout).strip().splitlines()
                print(f"[{args.tag}] {form} {cfg}: FAILED: {' | '.join(err[-3:])[:600]}", flush=True)
                continue
            r = json.loads(line[0][7:])
            key = (form, cfg)
            prev = table.get(key)
            table[key] = r if prev is None or r["qqp_bestbatch"] > prev["qqp_bestbatch"] else prev
            print(f"[{args.tag}] rep{rep} {form:3s} {cfg:22s} passes={r['qqp_passes']} bestbatch={r.get('qqp_bestbatch')} cpu={r.get('cpu_share')} fixed={r['fixed16x128']} "
                  f"diff_b0={r['maxdiff']['b0']:.1e} ({time.time()-t0:.0f}s)", flush=True)
print(f"\n[{args.tag}] best-of-batches steady pairs/s | best whole steady pass | cold pass | fixed 16x128 (pairs={args.pairs})")
for (form, cfg), r in sorted(table.items()):
    print(f"  {form:4s} {cfg:24s} {r['qqp_bestbatch']:6.1f} | {r['qqp_steady']:6.1f} | {r['qqp_passes'][0]:6.1f} | {r['fixed16x128']:6.1f}   diff {r['maxdiff']['b0']:.1e}")
