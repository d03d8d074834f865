"""Shared builders for the parity tests: tiny HF models with random weights and their Paddle twins.

The HF model is the reference. Its weights are drawn with torch.manual_seed, then every parameter
(LayerNorm scales and all biases included, which HF initialises to 1 and 0) gets extra noise, so a
swapped, untransposed or ignored tensor anywhere shows up in the outputs.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TOL = 1e-5                      # the project's fp32 parity bound (max |difference|)

# hidden 32, 2 layers: every group count below divides its channels.
TINY = dict(vocab_size=99, hidden_size=32, embedding_size=32, num_hidden_layers=2, num_attention_heads=4,
            intermediate_size=64, max_position_embeddings=40, type_vocab_size=2,
            hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)

ALL_ARCHITECTURES = ("SqueezeBertModel", "SqueezeBertForSequenceClassification",
                     "SqueezeBertForTokenClassification", "SqueezeBertForQuestionAnswering",
                     "SqueezeBertForMultipleChoice", "SqueezeBertForMaskedLM")

DEMO_NAMES = ("squeezebert-uncased", "squeezebert-mnli", "squeezebert-mnli-headless")


def tiny(**overrides) -> dict:
    return {**TINY, **overrides}


def hf_model(architecture: str, seed: int = 0, noise: float = 0.1, **config):
    """A transformers SqueezeBERT model in eval mode with random (noised) weights."""
    import torch
    import transformers
    kw = tiny(**config)
    torch.manual_seed(seed)
    model = getattr(transformers, architecture)(transformers.SqueezeBertConfig(**kw)).eval()
    with torch.no_grad():
        for param in model.parameters():      # tied tensors are listed once
            param.add_(torch.randn_like(param) * noise)
    return model


def hf_state(model) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy().copy() for k, v in model.state_dict().items()}


def paddle_twin(hf, architecture: str, **config):
    """Our model with the HF model's weights, through conversion.hf_to_paddle + set_state_dict."""
    import paddle

    from squeezebert_paddle import conversion, modeling
    from squeezebert_paddle.configuration import SqueezeBertConfig
    cfg = SqueezeBertConfig(**tiny(**config))
    state, _ = conversion.hf_to_paddle(hf_state(hf), cfg, architecture)
    model = getattr(modeling, architecture)(cfg)
    missing, unexpected = model.set_state_dict({k: paddle.to_tensor(v) for k, v in state.items()})
    assert not missing and not unexpected, (missing, unexpected)
    model.eval()
    return model


def batch(batch_size: int = 3, length: int = 12, vocab: int = 99, seed: int = 0, pad: bool = True):
    """Random ids (never the pad id inside a sequence), a padded attention mask and token types."""
    rng = np.random.RandomState(seed)
    ids = rng.randint(1, vocab, size=(batch_size, length)).astype(np.int64)
    mask = np.ones_like(ids)
    types = np.zeros_like(ids)
    types[:, length // 2:] = 1
    if pad:
        for row in range(1, batch_size):          # row 0 full, the others padded by different amounts
            cut = max(2, length - 3 * row)
            ids[row, cut:] = 0
            mask[row, cut:] = 0
            types[row, cut:] = 0
    return ids, mask, types


def to_torch(*arrays):
    import torch
    return [None if a is None else torch.from_numpy(np.ascontiguousarray(a)) for a in arrays]


def to_paddle(*arrays):
    import paddle
    return [None if a is None else paddle.to_tensor(a) for a in arrays]


def np_of(x) -> np.ndarray:
    if hasattr(x, "detach"):
        return x.detach().cpu().numpy()
    return x.numpy()


def max_diff(a, b) -> float:
    a, b = np.asarray(np_of(a) if not isinstance(a, np.ndarray) else a, dtype=np.float64), \
        np.asarray(np_of(b) if not isinstance(b, np.ndarray) else b, dtype=np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.abs(a - b).max()) if a.size else 0.0


def run_script(*args, cwd=ROOT, timeout=600, env=None):
    """Run one of the project's scripts with this interpreter; returns CompletedProcess (text)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=full_env)


def stderr_lines(proc) -> list[str]:
    """stderr without the interpreter/library warnings that Paddle prints on import."""
    return [line for line in proc.stderr.splitlines() if line.strip()]


def leftovers(directory: Path) -> list[str]:
    """Temporary files an interrupted or failed write could leave behind."""
    return sorted(p.name for p in Path(directory).iterdir() if p.name.startswith(".") or p.suffix == ".tmp")


def link_tree(src: Path, dst: Path, skip=()) -> Path:
    """Hard-link (copy where links fail) every file of src into dst, except the names in skip."""
    import shutil
    dst.mkdir(parents=True, exist_ok=True)
    for path in src.iterdir():
        if path.is_file() and path.name not in skip:
            try:
                os.link(path, dst / path.name)
            except OSError:
                shutil.copyfile(path, dst / path.name)
    return dst
