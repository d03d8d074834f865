"""Training-step speed on CPU: Paddle (this package) vs PyTorch (transformers) on the same full-size
SqueezeBERT classifier, the same weights and the same batches.

    python bench/bench_train.py                               # 16x128 and 16x64
    python bench/bench_train.py --shapes 16x64 --steps 3 --profile

A step is forward + loss + backward + global-norm clipping + AdamW (decay by rank), dropout on, as in
fine-tuning; Paddle's runs through the fused CPU kernels (squeezebert_paddle.cpu_kernels) as
run_glue.py does. Both workers keep freed memory for reuse (squeezebert_paddle.host_memory) unless
--default_malloc. Each framework runs in its own process (their thread pools would fight), with the same
thread count; `--warmup` untimed steps come first, then `--steps` timed ones (median reported).
With --profile the Paddle worker also prints paddle.profiler's operator summary for one step.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# squeezebert-uncased (HF hub), with a two-label classifier head.
FULL = dict(vocab_size=30528, num_labels=2)
LR, WEIGHT_DECAY, EPS, CLIP = 4e-5, 0.01, 1e-6, 1.0


def random_batches(batch: int, length: int, count: int, seed: int = 0) -> list[dict[str, np.ndarray]]:
    """Random full-length pairs ([CLS] a [SEP] b [SEP]-shaped token types), random labels."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        ids = rng.integers(1000, 30000, size=(batch, length)).astype(np.int64)
        ids[:, 0], ids[:, length // 2], ids[:, -1] = 101, 102, 102
        types = np.zeros((batch, length), np.int64)
        types[:, length // 2 + 1:] = 1
        out.append(dict(input_ids=ids, token_type_ids=types, attention_mask=np.ones_like(ids),
                        labels=rng.integers(0, 2, size=batch).astype(np.int64)))
    return out


def timed(step, batches, warmup: int) -> dict[str, list[float]]:
    """Wall-clock and process CPU seconds of each timed step (CPU time is the steadier figure when
    other work shares the machine)."""
    for batch in batches[:warmup]:
        step(batch)
    wall, cpu = [], []
    for batch in batches[warmup:]:
        start, start_cpu = time.perf_counter(), time.process_time()
        step(batch)
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return {"seconds": wall, "cpu_seconds": cpu}


# -- workers (one framework per process) -------------------------------------------------------------

def make_weights(model_dir: Path) -> None:
    import paddle
    from squeezebert_paddle import SqueezeBertConfig, SqueezeBertForSequenceClassification
    paddle.seed(0)
    SqueezeBertForSequenceClassification(SqueezeBertConfig(**FULL)).save_pretrained(model_dir)


def paddle_worker(model_dir: Path, batches, warmup: int, threads: int, profile: bool, retain: bool) -> dict:
    import paddle
    from squeezebert_paddle import SqueezeBertForSequenceClassification
    from squeezebert_paddle import cpu_kernels
    from squeezebert_paddle.host_memory import retain_freed_memory
    from squeezebert_paddle.training.optim import build_optimizer, build_scheduler
    paddle.set_device("cpu")                        # as run_glue.py's setup_distributed does:
    paddle.base.core.set_num_threads(threads)       # Paddle's default is 1 thread
    cpu_kernels.set_threads(threads)
    if retain:
        retain_freed_memory()
    model = SqueezeBertForSequenceClassification.from_pretrained(model_dir)
    fused = model.use_fused_cpu_kernels()           # as run_glue.py does on the CPU
    model.train()
    optimizer = build_optimizer(model, build_scheduler(LR, 0, 0, 1), WEIGHT_DECAY, EPS, CLIP)

    def step(batch):
        loss, _ = model(**{k: paddle.to_tensor(v) for k, v in batch.items()})
        loss.backward()
        optimizer.step()
        optimizer.clear_grad()
        return float(loss)

    times = timed(step, batches, warmup)
    if profile:
        import paddle.profiler as profiler
        prof = profiler.Profiler(targets=[profiler.ProfilerTarget.CPU], on_trace_ready=lambda p: None)
        prof.start()
        step(batches[-1])
        prof.step()
        prof.stop()
        prof.summary(op_detail=True, thread_sep=False, time_unit="ms", sorted_by=profiler.SortedKeys.CPUTotal)
    return {"framework": "paddle", "version": paddle.__version__, "fused_kernels": fused, **times}


def torch_worker(model_dir: Path, batches, warmup: int, threads: int, retain: bool) -> dict:
    import torch
    import transformers
    from squeezebert_paddle.checkpoint import CONFIG_FILE, WEIGHTS_FILE, read_pdparams
    from squeezebert_paddle.configuration import SqueezeBertConfig
    from squeezebert_paddle.conversion import paddle_to_hf
    torch.set_num_threads(threads)
    if retain:                                      # the same malloc policy as the Paddle worker
        from squeezebert_paddle.host_memory import retain_freed_memory
        retain_freed_memory()
    config = SqueezeBertConfig.from_json_file(model_dir / CONFIG_FILE)
    hf_config = {k: v for k, v in config.to_dict().items() if k not in ("model_type", "architectures")}
    model = transformers.SqueezeBertForSequenceClassification(transformers.SqueezeBertConfig(**hf_config))
    state = paddle_to_hf(read_pdparams(model_dir / WEIGHTS_FILE), config,
                         "SqueezeBertForSequenceClassification")
    model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, strict=False)
    model.train()
    params = list(model.parameters())
    optimizer = torch.optim.AdamW([{"params": [p for p in params if p.ndim >= 2], "weight_decay": WEIGHT_DECAY},
                                   {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}],
                                  lr=LR, eps=EPS)

    def step(batch):
        loss = model(**{k: torch.from_numpy(v) for k, v in batch.items()}).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, CLIP)
        optimizer.step()
        optimizer.zero_grad()
        return loss.item()

    return {"framework": "torch", "version": torch.__version__, **timed(step, batches, warmup)}


def worker(args) -> None:
    if args.make_weights:
        make_weights(Path(args.model_dir))
        return
    batch, length = map(int, args.shape.split("x"))
    batches = random_batches(batch, length, args.warmup + args.steps)
    if args.worker == "paddle":
        result = paddle_worker(Path(args.model_dir), batches, args.warmup, args.threads, args.profile,
                               not args.default_malloc)
    else:
        result = torch_worker(Path(args.model_dir), batches, args.warmup, args.threads, not args.default_malloc)
    print("RESULT " + json.dumps(result | {"shape": args.shape}), flush=True)


# -- driver ----------------------------------------------------------------------------------------------

def spawn(args, *extra) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    return subprocess.run([sys.executable, __file__, "--threads", str(args.threads), *map(str, extra)],
                          env=env, capture_output=True, text=True)


def run_worker(args, model_dir: Path, framework: str, shape: str) -> dict:
    done = spawn(args, "--worker", framework, "--model_dir", model_dir, "--shape", shape,
                 "--steps", args.steps, "--warmup", args.warmup, *(["--profile"] if args.profile else []),
                 *(["--default_malloc"] if args.default_malloc else []))
    if done.returncode != 0:
        sys.exit(f"{framework} worker failed:\n{done.stderr[-3000:]}")
    if args.profile and framework == "paddle":
        print(done.stdout[:done.stdout.rfind("RESULT ")])
    result = json.loads(done.stdout[done.stdout.rfind("RESULT ") + 7:])
    if framework == "paddle" and not result["fused_kernels"]:
        print("note: the Paddle worker ran without the fused CPU kernels (Paddle's own ops; see its log)")
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shapes", default="16x128,16x64", help="comma-separated BATCHxLENGTH list")
    p.add_argument("--steps", type=int, default=5, help="timed training steps per framework and shape")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    p.add_argument("--rounds", type=int, default=1, help="alternate the two frameworks this many times")
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="CPU threads for both frameworks")
    p.add_argument("--profile", action="store_true", help="print paddle.profiler's op summary of one step")
    p.add_argument("--default_malloc", action="store_true",
                   help="both workers with glibc's default malloc thresholds (by default both keep freed "
                        "memory for reuse, as run_glue.py does: squeezebert_paddle.host_memory)")
    p.add_argument("--json", default=None, help="also write the results to this JSON file")
    p.add_argument("--worker", choices=("paddle", "torch"), help=argparse.SUPPRESS)
    p.add_argument("--make_weights", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--model_dir", help=argparse.SUPPRESS)
    p.add_argument("--shape", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker or args.make_weights:
        worker(args)
        return
    with tempfile.TemporaryDirectory(prefix="squeezebert-bench-") as tmp:
        model_dir = Path(tmp) / "model"
        done = spawn(args, "--make_weights", "--model_dir", model_dir)
        if done.returncode != 0:
            sys.exit(f"could not build the model:\n{done.stderr[-3000:]}")
        print(f"SqueezeBERT-uncased size, 2 labels; {args.threads} CPU threads; {args.warmup} warm-up + "
              f"{args.steps} timed steps x {args.rounds} rounds (frameworks alternate); median seconds per "
              f"training step, wall clock (process CPU time)")
        print(f"{'shape':>8} {'torch':>17} {'paddle':>17} {'paddle speed vs torch':>22}")
        results = []
        for shape in args.shapes.split(","):
            runs = {"torch": [], "paddle": []}
            for _ in range(args.rounds):
                for fw in runs:
                    runs[fw].append(run_worker(args, model_dir, fw, shape))
            med = {fw: {k: float(np.median([x for r in rs for x in r[k]])) for k in ("seconds", "cpu_seconds")}
                   for fw, rs in runs.items()}
            t, q = med["torch"], med["paddle"]
            print(f"{shape:>8} {t['seconds']:8.3f} ({t['cpu_seconds']:6.2f}) {q['seconds']:8.3f} "
                  f"({q['cpu_seconds']:6.2f}) {t['seconds'] / q['seconds']:13.2f}x "
                  f"({t['cpu_seconds'] / q['cpu_seconds']:.2f}x)", flush=True)
            results.append({"shape": shape, "torch": t, "paddle": q,
                            "paddle_speedup": t["seconds"] / q["seconds"], "raw": runs})
    if args.json:
        from squeezebert_paddle.fileio import atomic_write_json
        atomic_write_json(args.json, results)


if __name__ == "__main__":
    from squeezebert_paddle.errors import run_main
    sys.exit(run_main(main))
