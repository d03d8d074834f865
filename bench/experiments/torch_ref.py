"""HF torch SqueezeBertModel reference timings + reference outputs for parity checks.

Run:  cd /work/main && .venv/bin/python bench/experiments/torch_ref.py [--pairs 1000] [--passes 3] [--save-ref]
Never import paddle here (thread pools interfere). Uses torch.set_num_threads(2).
"""
import argparse, os, sys
import numpy as np
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C

ap = argparse.ArgumentParser()
ap.add_argument("--pairs", type=int, default=1000)
ap.add_argument("--passes", type=int, default=3)
ap.add_argument("--save-ref", action="store_true")
ap.add_argument("--modes", default="fp32,bf16")
args = ap.parse_args()

import torch
from transformers import SqueezeBertConfig, SqueezeBertModel
torch.set_num_threads(2)
cfg = SqueezeBertConfig(vocab_size=30528, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                        intermediate_size=3072, q_groups=4, k_groups=4, v_groups=4, post_attention_groups=1,
                        intermediate_groups=4, output_groups=4, hidden_act="gelu", max_position_embeddings=512,
                        type_vocab_size=2, layer_norm_eps=1e-12)
model = SqueezeBertModel(cfg).eval()
w = C.load_weights()
sd = {k: torch.from_numpy(v) for k, v in w.items()}
missing, unexpected = model.load_state_dict(sd, strict=False)
assert not unexpected and all("position_ids" in k for k in missing), (missing, unexpected)

batches = C.load_batches(args.pairs)
fixed = C.fixed_batch()

if args.save_ref:
    out = {}
    with torch.no_grad():
        for name, (ids, tt, m) in [("b0", batches[0]), ("b1", batches[1]), ("fixed", fixed)]:
            o = model(torch.from_numpy(ids), attention_mask=torch.from_numpy(m), token_type_ids=torch.from_numpy(tt))
            out[name + "_seq"] = o.last_hidden_state.numpy(); out[name + "_pool"] = o.pooler_output.numpy()
    np.savez(os.path.join(C.CACHE, "torch_ref_out.npz"), **out)
    print("saved reference outputs")

for mode in args.modes.split(","):
    def run(ids, tt, m):
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=(mode == "bf16")):
            return model(torch.from_numpy(ids), attention_mask=torch.from_numpy(m),
                         token_type_ids=torch.from_numpy(tt)).last_hidden_state
    ref = np.load(os.path.join(C.CACHE, "torch_ref_out.npz"))
    b0 = batches[0]
    d0 = float(np.abs(run(*b0).float().numpy() - ref["b0_seq"])[b0[2].astype(bool)].max())
    r = C.time_workload(run, batches, passes=args.passes)
    f = C.time_fixed(run, fixed)
    C.emit(dict(form="torch_hf", backend="torch_eager", prec=mode, qqp_passes=[round(x, 1) for x in r],
                qqp_steady=round(max(r[1:] or r), 1), qqp_bestbatch=round(C.best_of_batches(batches), 1),
                fixed16x128=round(f, 1), pairs=args.pairs, maxdiff={"b0": d0}))
    C.BATCH_MIN.clear(); C.CPU_SHARE.clear()
