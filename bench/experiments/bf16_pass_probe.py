"""Find which oneDNN IR pass breaks the bf16 predictor of a formulation (Broadcast dimension mismatch).
Run:  cd /work/main && .venv/bin/python bench/experiments/bf16_pass_probe.py D [pass_to_delete ...]
"""
import os, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import numpy as np
import common as C
import paddle.inference as pi
form = sys.argv[1]
d = os.path.join(C.CACHE, "export", f"{form}_pir")
cfg = pi.Config(os.path.join(d, "model.json"), os.path.join(d, "model.pdiparams"))
cfg.disable_gpu(); cfg.set_cpu_math_library_num_threads(2); cfg.enable_onednn(); cfg.enable_onednn_bfloat16()
for p in sys.argv[2:]:
    cfg.delete_pass(p)
if os.environ.get("QUIET", "1") == "1":
    cfg.disable_glog_info()
try:
    pred = pi.create_predictor(cfg)
except Exception as e:
    print('FAIL(create)', sys.argv[2:], ' | '.join(l for l in str(e).splitlines() if 'Broadcast' in l or 'shape' in l.lower())[:400]); sys.exit()
ins = {n: pred.get_input_handle(n) for n in pred.get_input_names()}
ids, tt, m = C.load_batches(16)[0]
ins["input_ids"].copy_from_cpu(ids); ins["token_type_ids"].copy_from_cpu(tt); ins["attention_mask"].copy_from_cpu(m)
try:
    pred.run()
    outs = [pred.get_output_handle(n).copy_to_cpu() for n in pred.get_output_names()]
    ref = np.load(os.path.join(C.CACHE, "torch_ref_out.npz"))
    s = [o for o in outs if o.ndim == 3][0]
    print("OK", sys.argv[2:], "maxdiff real", float(np.abs(s.astype(np.float32) - ref["b0_seq"])[m.astype(bool)].max()))
except Exception as e:
    print("FAIL", sys.argv[2:], str(e).splitlines()[-1][:200] if str(e) else type(e))
