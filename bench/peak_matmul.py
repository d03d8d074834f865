"""Measured matmul peak of this machine (GFLOP/s), fp32 and bf16, in torch and in Paddle.

    python bench/peak_matmul.py [--threads N] [--size 2048]

Prints one JSON line: {"fp32": best GFLOP/s, "bf16": ..., "detail": {...}}. Each framework runs in its
own process (their thread pools disturb each other).
"""
import argparse
import json
import os
import subprocess
import sys

CODE = {
    "torch": """
import torch, time, sys
torch.set_num_threads({threads})
n = {size}
out = {{}}
for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
    a = torch.randn(n, n).to(dtype); b = torch.randn(n, n).to(dtype)
    for _ in range(3): a @ b
    reps = 10; t = time.perf_counter()
    for _ in range(reps): a @ b
    out[name] = 2 * n ** 3 * reps / (time.perf_counter() - t) / 1e9
print(out)
""",
    "paddle": """
import paddle, time
paddle.set_device("cpu")
n = {size}
out = {{}}
# fp32 only: Paddle 3.3's CPU build has no eager bf16 matmul kernel (bf16 runs through oneDNN inference)
a = paddle.randn([n, n]); b = paddle.randn([n, n])
for _ in range(3): paddle.matmul(a, b).numpy()
reps = 10; t = time.perf_counter()
for _ in range(reps): c = paddle.matmul(a, b)
c.numpy()
out["fp32"] = 2 * n ** 3 * reps / (time.perf_counter() - t) / 1e9
print(out)
""",
}


def measure(framework: str, threads: int, size: int) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), GLOG_minloglevel="2")
    proc = subprocess.run([sys.executable, "-c", CODE[framework].format(threads=threads, size=size)],
                          capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed"}
    return eval(proc.stdout.strip().splitlines()[-1])  # our own child's dict literal


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--size", type=int, default=2048)
    args = p.parse_args()
    detail = {fw: measure(fw, args.threads, args.size) for fw in ("torch", "paddle")}
    best = {prec: max((d.get(prec, 0.0) for d in detail.values()), default=0.0) for prec in ("fp32", "bf16")}
    print(json.dumps({**best, "threads": args.threads, "size": args.size, "detail": detail}))


if __name__ == "__main__":
    main()
