"""Shared helpers (numpy only: safe to import from both torch and paddle processes)."""
import os, time, json
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
CACHE = os.path.join(HERE, "_cache")
H, I, LAYERS, HEADS, HEAD_DIM = 768, 3072, 12, 12, 64
G_QKV, G_POST, G_INT, G_OUT = 4, 1, 4, 4
EPS = 1e-12


def load_batches(n_pairs=1000):
    z = np.load(os.path.join(CACHE, "qqp_batches.npz"))
    nb = len(z.files) // 3
    out, seen = [], 0
    for i in range(nb):
        ids, tt, m = z[f"ids{i}"], z[f"tt{i}"], z[f"mask{i}"]
        if seen >= n_pairs:
            break
        if seen + len(ids) > n_pairs:
            k = n_pairs - seen
            ids, tt, m = ids[:k], tt[:k], m[:k]
            L = int(m.sum(1).max()); ids, tt, m = ids[:, :L], tt[:, :L], m[:, :L]
        out.append((ids, tt, m)); seen += len(ids)
    return out


def fixed_batch(B=16, L=128, seed=1):
    rng = np.random.default_rng(seed)
    ids = rng.integers(1000, 30000, size=(B, L)).astype("int64")
    tt = np.zeros((B, L), "int64"); tt[:, L // 2:] = 1
    m = np.ones((B, L), "int64")
    return ids, tt, m


def load_weights():
    return dict(np.load(os.path.join(CACHE, "weights.npz")))


def time_workload(run_batch, batches, passes=3, sync=lambda: None):
    """run_batch(ids, tt, mask) -> anything. Returns list of pairs/s per pass (pass 0 = cold)."""
    n = sum(len(b[0]) for b in batches)
    res = []
    for p in range(passes):
        t0, c0 = time.perf_counter(), _cpu()
        per = []
        for ids, tt, m in batches:
            tb = time.perf_counter()
            run_batch(ids, tt, m)
            per.append(time.perf_counter() - tb)
        sync()
        dt = time.perf_counter() - t0
        if p > 0 or passes == 1:
            BATCH_MIN[:] = per if not BATCH_MIN else [min(a, b) for a, b in zip(BATCH_MIN, per)]
        res.append(n / dt)
        CPU_SHARE.append((_cpu() - c0) / dt / 2)
    return res


BATCH_MIN = []   # per batch: min seconds over the steady passes (robust to bursts of foreign load)


def best_of_batches(batches):
    """pairs/s if every batch ran at its best steady-pass speed (shared machine: filters foreign bursts)."""
    return sum(len(b[0]) for b in batches) / sum(BATCH_MIN) if BATCH_MIN else float("nan")


CPU_SHARE = []   # per timed pass: process CPU seconds / (wall seconds * 2 cores); < ~0.9 means contention


def _cpu():
    t = os.times()
    return t.user + t.system


def cpu_share():
    return [round(x, 2) for x in CPU_SHARE]


def time_fixed(run_batch, batch, iters=8, warm=2):
    for _ in range(warm):
        run_batch(*batch)
    t0 = time.perf_counter()
    for _ in range(iters):
        run_batch(*batch)
    return len(batch[0]) * iters / (time.perf_counter() - t0)


def emit(record):
    """One JSON line per measurement, appended to _cache/results.jsonl and printed."""
    record = dict(record, t=time.strftime("%H:%M:%S"), cpu_share=cpu_share(),
                  loadavg=float(open("/proc/loadavg").read().split()[0]))
    line = json.dumps(record)
    print("RESULT", line, flush=True)
    with open(os.path.join(CACHE, "results.jsonl"), "a") as f:
        f.write(line + "\n")
