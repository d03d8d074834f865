"""Tokenize the first N QQP pairs into batches of 16 (file order, pad to longest) and make random
SqueezeBERT-uncased weights shared by all experiments.

Run:  cd /work/main && .venv/bin/python bench/experiments/prep_data.py
Writes bench/experiments/_cache/{qqp_batches.npz, weights.npz}  (torch/transformers only imported here).
"""
import json, os, sys
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
CACHE = os.path.join(HERE, "_cache")
DATA = os.environ.get("SQUEEZEBERT_SHARED_DATA", "/work/shared/data")
N_PAIRS, BS, MAX_LEN = 1000, 16, 128

H, I, LAYERS, VOCAB, MAXPOS, TYPES = 768, 3072, 12, 30528, 512, 2
G_QKV, G_POST, G_INT, G_OUT = 4, 1, 4, 4


def make_batches():
    from transformers import BertTokenizerFast
    tok = BertTokenizerFast(vocab_file=os.path.join(DATA, "vocab", "bert-base-uncased-vocab.txt"))
    pairs = []
    with open(os.path.join(DATA, "qqp", "qqp_pairs.jsonl")) as f:
        for line in f:
            r = json.loads(line)
            pairs.append((r["sentence1"], r["sentence2"]))
            if len(pairs) == N_PAIRS:
                break
    out = {}
    real, padded = 0, 0
    for bi, s in enumerate(range(0, len(pairs), BS)):
        chunk = pairs[s:s + BS]
        enc = tok([a for a, _ in chunk], [b for _, b in chunk], truncation=True, max_length=MAX_LEN,
                  padding="longest", return_tensors="np")
        out[f"ids{bi}"] = enc["input_ids"].astype("int64")
        out[f"tt{bi}"] = enc["token_type_ids"].astype("int64")
        out[f"mask{bi}"] = enc["attention_mask"].astype("int64")
        real += int(enc["attention_mask"].sum()); padded += enc["attention_mask"].size
    lens = [out[f"ids{i}"].shape[1] for i in range(len(out) // 3)]
    print(f"{len(pairs)} pairs, {len(lens)} batches, real tokens/pair {real/len(pairs):.1f}, "
          f"padded tokens/pair {padded/len(pairs):.1f} (padding overhead {padded/real-1:.0%}), "
          f"distinct batch lengths {len(set(lens))}, min/mean/max L {min(lens)}/{np.mean(lens):.1f}/{max(lens)}")
    np.savez(os.path.join(CACHE, "qqp_batches.npz"), **out)


def make_weights():
    """Torch (HF) naming and layout: conv weights [out, in/groups, 1], Linear weights [out, in]."""
    rng = np.random.default_rng(0)
    w = {}
    n = lambda *s: (rng.standard_normal(s) * 0.02).astype("float32")
    w["embeddings.word_embeddings.weight"] = n(VOCAB, H)
    w["embeddings.position_embeddings.weight"] = n(MAXPOS, H)
    w["embeddings.token_type_embeddings.weight"] = n(TYPES, H)
    w["embeddings.LayerNorm.weight"] = 1 + n(H); w["embeddings.LayerNorm.bias"] = n(H)
    for l in range(LAYERS):
        p = f"encoder.layers.{l}."
        for name in ("query", "key", "value"):
            w[p + f"attention.{name}.weight"] = n(H, H // G_QKV, 1); w[p + f"attention.{name}.bias"] = n(H)
        w[p + "post_attention.conv1d.weight"] = n(H, H // G_POST, 1); w[p + "post_attention.conv1d.bias"] = n(H)
        w[p + "post_attention.layernorm.weight"] = 1 + n(H); w[p + "post_attention.layernorm.bias"] = n(H)
        w[p + "intermediate.conv1d.weight"] = n(I, H // G_INT, 1); w[p + "intermediate.conv1d.bias"] = n(I)
        w[p + "output.conv1d.weight"] = n(H, I // G_OUT, 1); w[p + "output.conv1d.bias"] = n(H)
        w[p + "output.layernorm.weight"] = 1 + n(H); w[p + "output.layernorm.bias"] = n(H)
    w["pooler.dense.weight"] = n(H, H); w["pooler.dense.bias"] = n(H)
    np.savez(os.path.join(CACHE, "weights.npz"), **w)


if __name__ == "__main__":
    os.makedirs(CACHE, exist_ok=True)
    make_batches()
    make_weights()
