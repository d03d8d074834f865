"""The model and tokenizer of a run (this package's SqueezeBERT, or PaddleNLP's BERT for comparison),
their files, and one forward pass over a batch."""
from __future__ import annotations

import os
from pathlib import Path

import paddle

from ..checkpoint import WEIGHTS_FILE, CheckpointError, read_pdparams, weights_problem
from ..configuration import ConfigError
from ..data import Batch
from ..demo import MARKER_FILE, is_demo
from ..errors import ExpectedError
from ..fileio import atomic_write_text
from .errors import TrainingError


class PaddleNLPPairTokenizer:
    """PaddleNLP's BertTokenizer behind the `encode_pairs` interface that the data package uses."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.pad_token_id = tokenizer.pad_token_id

    def encode_pairs(self, texts_a, texts_b, max_seq_len):
        out = self.tokenizer(list(texts_a), list(texts_b) if texts_b is not None else None,
                             max_length=max_seq_len, truncation=True)
        return list(zip(out["input_ids"], out["token_type_ids"]))

    def save_pretrained(self, directory) -> None:
        self.tokenizer.save_pretrained(str(directory))


def load_glue_tokenizer(model_type: str, model_dir: str | os.PathLike):
    try:
        if model_type == "squeezebert":
            from ..tokenizer import SqueezeBertTokenizer
            return SqueezeBertTokenizer.from_pretrained(model_dir)
        from paddlenlp.transformers import BertTokenizer
        return PaddleNLPPairTokenizer(BertTokenizer.from_pretrained(str(model_dir)))
    except ExpectedError:               # the tokenizer's own line names the file
        raise
    except ValueError as err:           # also a file that is not UTF-8 or not JSON
        raise TrainingError(f"{model_dir}: the tokenizer files (vocab.txt, tokenizer_config.json) cannot be "
                            f"read ({' '.join(str(err).split())}); restore them from the checkpoint's "
                            f"source") from None


def load_glue_model(model_type: str, model_dir: str | os.PathLike, num_labels: int,
                    overrides: dict[str, float], ignore_mismatched_sizes: bool = False):
    """A sequence classifier with `num_labels` outputs; `overrides` replace config fields
    (dropout probabilities). A head absent from the directory is newly initialised (and logged)."""
    if model_type == "squeezebert":
        from ..modeling import SqueezeBertForSequenceClassification
        try:
            return SqueezeBertForSequenceClassification.from_pretrained(
                model_dir, num_labels=num_labels, ignore_mismatched_sizes=ignore_mismatched_sizes,
                **overrides)
        except (CheckpointError, ConfigError) as err:
            raise TrainingError(str(err)) from None
    from paddlenlp.transformers import BertForSequenceClassification

    from ..checkpoint import load_paddlenlp_model
    try:   # not PaddleNLP's from_pretrained: it unpickles model_state.pdparams whole (a crafted file runs code)
        return load_paddlenlp_model(BertForSequenceClassification, model_dir, num_labels=num_labels,
                                    ignore_mismatched_sizes=ignore_mismatched_sizes, **overrides)
    except CheckpointError as err:
        raise TrainingError(str(err)) from None


def switch_to_fused_kernels(model, device: str) -> bool:
    """On the CPU, switch a SqueezeBERT model to the fused CPU kernels (`fused_cpu_encoder.py`: same
    results, several times faster); returns whether they will run."""
    return device == "cpu" and hasattr(model, "use_fused_cpu_kernels") and model.use_fused_cpu_kernels()


def load_weights_from(model, model_dir: Path) -> None:
    """Overwrite `model`'s weights with those saved in `model_dir` (a best/ or checkpoint dir)."""
    state = read_pdparams(model_dir / WEIGHTS_FILE)
    problem = weights_problem(state)
    if problem:
        raise TrainingError(f"{model_dir / WEIGHTS_FILE}: {problem}")
    model.set_state_dict({k: paddle.to_tensor(v) for k, v in state.items()})


def save_model_dir(model, tokenizer, directory: Path, started_from) -> None:
    """Model and tokenizer files into `directory`, loadable with `from_pretrained`. A model trained from
    demo (random) weights, `started_from` a directory marked as such, carries the marker on: the
    scripts that load it later say so instead of reporting its metrics as SqueezeBERT's."""
    model.save_pretrained(str(directory))
    tokenizer.save_pretrained(directory)
    if is_demo(started_from):
        atomic_write_text(Path(directory) / MARKER_FILE,
                          f"RANDOM WEIGHTS. Fine-tuned from the demo (random) weights in {started_from}: its "
                          f"metrics say nothing about SqueezeBERT.\n")


def unwrap(model):
    return model._layers if isinstance(model, paddle.DataParallel) else model


def forward_batch(model, batch: Batch, with_labels: bool):
    """(loss, logits [B, labels]) with labels, else logits. Both model families take these keywords."""
    inputs = dict(input_ids=paddle.to_tensor(batch.input_ids),
                  attention_mask=paddle.to_tensor(batch.attention_mask),
                  token_type_ids=paddle.to_tensor(batch.token_type_ids))
    if with_labels:
        inputs["labels"] = paddle.to_tensor(batch.labels)
    return model(**inputs)
