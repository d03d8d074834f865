"""Final comparison driver: alternates the HF torch reference process and the side-by-side Paddle
inference process (never both libraries in one process), `--rounds` times, then a short dygraph round.
Everything is appended to _cache/results.jsonl; the console shows the tables.

Run:  cd /work/main && .venv/bin/python bench/experiments/final.py [--rounds 2] [--pairs 1000]
Prereqs: prep_data.py, torch_ref.py --save-ref, export.py --forms A,D,W,WD,X
"""
import argparse, os, subprocess, sys
HERE = os.path.dirname(os.path.abspath(__file__))
ap = argparse.ArgumentParser()
ap.add_argument("--rounds", type=int, default=2)
ap.add_argument("--pairs", type=int, default=1000)
ap.add_argument("--passes", type=int, default=2)
ap.add_argument("--specs", default="A:onednn,A:onednn_cap0,D:onednn_cap0,W:onednn_cap0,X:onednn_cap0,"
                                   "A:onednn_bf16,A:onednn_bf16_cap0,W:onednn_bf16_nors_cap0,WD:onednn_bf16_nors_cap0")
ap.add_argument("--dygraph", default="A,D,W")
args = ap.parse_args()
py = sys.executable
for r in range(args.rounds):
    print(f"===== round {r}: torch", flush=True)
    subprocess.run([py, os.path.join(HERE, "torch_ref.py"), "--pairs", str(args.pairs), "--passes", str(args.passes + 1)])
    print(f"===== round {r}: paddle inference", flush=True)
    subprocess.run([py, os.path.join(HERE, "bench_multi.py"), "--specs", args.specs, "--pairs", str(args.pairs),
                    "--passes", str(args.passes), "--tag", f"final{r}"])
if args.dygraph:
    print("===== dygraph fp32 (160 pairs)", flush=True)
    subprocess.run([py, os.path.join(HERE, "bench_dygraph.py"), "--forms", args.dygraph, "--pairs", "160", "--passes", "2", "--fixed-iters", "1"])
    print("===== dygraph+onednn bf16 (160 pairs)", flush=True)
    subprocess.run([py, os.path.join(HERE, "bench_dygraph.py"), "--forms", args.dygraph, "--pairs", "160", "--passes", "2",
                    "--fixed-iters", "1", "--onednn", "--bf16"])
