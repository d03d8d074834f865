"""Export formulations with paddle.jit.to_static + paddle.jit.save, InputSpec([None, None]) int64 for
input_ids / token_type_ids / attention_mask.

Run:  cd /work/main && .venv/bin/python bench/experiments/export.py --forms A,D,V [--old-ir]
      --old-ir: FLAGS_enable_pir_api=0 at export -> legacy model.pdmodel (default: PIR model.json)
Writes _cache/export/<form>_{pir,old}/model.*
"""
import argparse, os, sys, time
ap = argparse.ArgumentParser()
ap.add_argument("--forms", default="A,D,V")
ap.add_argument("--old-ir", action="store_true")
args = ap.parse_args()
if args.old_ir:
    os.environ["FLAGS_enable_pir_api"] = "0"
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C
import paddle
from paddle.static import InputSpec
import forms

w = C.load_weights()
for n in args.forms.split(","):
    t0 = time.time()
    m = forms.build(n, w); m.eval()
    spec = [InputSpec([None, None], "int64", name) for name in ("input_ids", "token_type_ids", "attention_mask")]
    st = paddle.jit.to_static(m, input_spec=spec, full_graph=True)
    out = os.path.join(C.CACHE, "export", f"{n}_{'old' if args.old_ir else 'pir'}", "model")
    try:
        paddle.jit.save(st, out)
        print(f"exported {n} -> {out} ({time.time()-t0:.1f}s): {sorted(os.listdir(os.path.dirname(out)))}", flush=True)
    except Exception as e:
        print(f"EXPORT FAIL {n}: {type(e).__name__}: {str(e)[-1500:]}", flush=True)
    del m, st
