"""GEMM peak through paddle.inference + oneDNN, fp32 vs bf16 (AMX): exports a chain of 8 matmuls
(x @ W, same shape in/out) and times it. Compare with the model's achieved GFLOP/s.

Run:  cd /work/main && .venv/bin/python bench/experiments/peak_infer.py
"""
import os, sys, time, subprocess, json
import numpy as np
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C

SHAPES = {"sq2048": ([2048, 2048], [2048, 2048]), "fc1000x768": ([1000, 768], [768, 768]),
          "grp4x1000x192": ([4, 1000, 192], [4, 192, 192]), "grp4x500x768": ([4, 500, 768], [4, 768, 768]),
          "fc500x768": ([500, 768], [768, 768])}
CHAIN = 8

if len(sys.argv) == 1:   # driver: export in one process, time each precision in a fresh process
    for name in SHAPES:
        subprocess.run([sys.executable, __file__, "export", name], check=True, capture_output=True)
        for prec in ("fp32", "bf16"):
            p = subprocess.run([sys.executable, __file__, "time", name, prec], capture_output=True, text=True)
            print([l for l in p.stdout.splitlines() if l.startswith("PEAK")] or p.stderr[-500:], flush=True)
    sys.exit()

mode, name = sys.argv[1], sys.argv[2]
sa, sb = SHAPES[name]
d = os.path.join(C.CACHE, "export", f"peak_{name}")
if mode == "export":
    import paddle
    from paddle.static import InputSpec
    class M(paddle.nn.Layer):
        def __init__(self):
            super().__init__()
            self.w = paddle.create_parameter(sb, "float32", default_initializer=paddle.nn.initializer.Normal(0, 1 / np.sqrt(sb[-2])))
        def forward(self, x):
            for _ in range(CHAIN):
                x = paddle.matmul(x, self.w)
            return x
    m = M()
    paddle.jit.save(paddle.jit.to_static(m, input_spec=[InputSpec(sa, "float32", "x")], full_graph=True), os.path.join(d, "model"))
else:
    prec = sys.argv[3]
    import paddle.inference as pi
    cfg = pi.Config(os.path.join(d, "model.json"), os.path.join(d, "model.pdiparams"))
    cfg.disable_gpu(); cfg.set_cpu_math_library_num_threads(2); cfg.enable_onednn(); cfg.disable_glog_info()
    if prec == "bf16":
        cfg.enable_onednn_bfloat16()
    pred = pi.create_predictor(cfg)
    h = pred.get_input_handle(pred.get_input_names()[0]); o = pred.get_output_handle(pred.get_output_names()[0])
    x = np.random.default_rng(0).standard_normal(sa).astype("float32")
    def run():
        h.copy_from_cpu(x); pred.run(); return o.copy_to_cpu()
    run(); run()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < 1.5:
        run(); n += 1
    dt = (time.perf_counter() - t0) / n
    fl = 2 * np.prod(sa) * sb[-1] * CHAIN
    print(f"PEAK infer-onednn {prec} {name:14s} {fl/dt/1e9:8.1f} GFLOP/s ({dt/CHAIN*1e3:.3f} ms/matmul)")
