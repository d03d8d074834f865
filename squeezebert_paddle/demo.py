"""Hugging Face-format SqueezeBERT checkpoints with RANDOM weights at the released configurations.

For users without the real checkpoints (and for CI): the whole pipeline (convert, compare, benchmark,
fine-tune) runs on these exactly as on the real ones. The layouts mimic what the hub serves:
  squeezebert-uncased        masked-LM head, legacy pytorch_model.bin with the tied decoder copy and
                             the `embeddings.position_ids` buffer that older checkpoints carry
  squeezebert-mnli           sequence-classification head (3 MNLI labels), model.safetensors
  squeezebert-mnli-headless  bare encoder, keys without the "transformer." prefix, model.safetensors
"""
from __future__ import annotations

import io
import json
from pathlib import Path

from .assets import VOCAB_FILE
from .configuration import HF_CONFIG_FILE, RELEASED_ARCHITECTURES, RELEASED_CONFIGS
from .fileio import atomic_directory, atomic_write_bytes, atomic_write_text

MARKER_FILE = "RANDOM_WEIGHTS.txt"
MARKER_KEY = "_demo_random_weights"
MNLI_LABELS = {0: "contradiction", 1: "entailment", 2: "neutral"}


def is_demo(model_dir: str | Path) -> bool:
    return (Path(model_dir) / MARKER_FILE).is_file()


def model_line(model: str | Path, random_source: str | None = None) -> str:
    """A script's start-summary line, `model: <model>`, flagged when the weights are random: drawn by
    the script (`random_source`, e.g. "--random_init") or a directory written by --demo."""
    if random_source is None and is_demo(model):
        random_source = "--demo"
    note = f" (RANDOM WEIGHTS from {random_source}: timings are real, predictions are not)" if random_source else ""
    return f"model: {model}{note}"


def write_demo_checkpoint(name: str, out_dir: str | Path, vocab_file: str | Path = VOCAB_FILE, seed: int = 0,
                          **config_overrides) -> Path:
    """Write one random-weight HF checkpoint directory; returns it. The vocabulary defaults to the
    uncased one shipped with the package, which the released checkpoints use."""
    import torch
    import transformers

    out_dir = Path(out_dir)
    torch.manual_seed(seed)
    fields = dict(RELEASED_CONFIGS[name], **config_overrides)
    if name == "squeezebert-mnli":
        fields.update(id2label=MNLI_LABELS, label2id={v: k for k, v in MNLI_LABELS.items()})
    fields.pop("num_labels", None)
    config = transformers.SqueezeBertConfig(**fields)
    config.update({MARKER_KEY: True})
    model = getattr(transformers, RELEASED_ARCHITECTURES[name])(config).eval()

    def fill(tmp: Path) -> None:
        # Serialised in memory, written by fileio: a full disk ends in one line naming the file.
        config.architectures, config.dtype = [type(model).__name__], "float32"    # as save_pretrained sets them
        atomic_write_text(tmp / HF_CONFIG_FILE, config.to_json_string(use_diff=True))
        state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
        if name == "squeezebert-uncased":
            # Old-style .bin: every tensor stored, tied ones included, plus the position_ids buffer.
            state = {k: v.clone() for k, v in state.items()}
            state["transformer.embeddings.position_ids"] = torch.arange(config.max_position_embeddings)[None]
            state["cls.predictions.decoder.bias"] = state["cls.predictions.bias"].clone()
            buffer = io.BytesIO()
            torch.save(state, buffer)
            atomic_write_bytes(tmp / "pytorch_model.bin", buffer.getvalue())
        else:
            from safetensors.torch import save
            atomic_write_bytes(tmp / "model.safetensors", save(state, metadata={"format": "pt"}))
        atomic_write_bytes(tmp / "vocab.txt", Path(vocab_file).read_bytes())
        atomic_write_text(tmp / MARKER_FILE, (
            f"RANDOM WEIGHTS. This is not the released {name} checkpoint: it has its exact configuration "
            f"and file layout but weights drawn at random (seed {seed}), for demonstrations and tests. "
            f"Real weights: huggingface-cli download squeezebert/{name} --local-dir {out_dir}\n"))
        with open(tmp / HF_CONFIG_FILE, encoding="utf-8") as f:
            assert json.load(f).get(MARKER_KEY) is True

    atomic_directory(out_dir, fill)
    return out_dir
