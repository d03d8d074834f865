"""Dev evaluation, GLUE test predictions, and the run's records of them: metrics.jsonl, VisualDL
scalars and the training-curve plot."""
from __future__ import annotations

import io
import json
import logging
import os
from pathlib import Path

import numpy as np
import paddle
from tqdm import tqdm

from ..data import Batch, Split, TaskSpec, make_batches
from ..fileio import atomic_write_bytes, atomic_write_text
from ..metrics import compute_metrics
from . import models
from .output_layout import METRICS_FILE, VISUALDL_DIR
from .processes import Dist, all_gather
from .state import Run

logger = logging.getLogger("squeezebert_paddle.training")


def eval_batches(split: Split, batch_size: int, pad_id: int) -> list[Batch]:
    return make_batches(split.encoded, batch_size, pad_id, sort_by_length=True, labels=split.labels)


@paddle.no_grad()
def predict_logits(run: Run, split: Split, desc: str,
                   ctx: Dist | None = None) -> tuple[np.ndarray, float | None]:
    """Logits [N, labels] in file order and the mean loss, if labelled. Each of `ctx`'s processes
    (default: all) runs every world-th batch; all of them receive the merged result."""
    ctx = ctx or run.dist
    model = models.unwrap(run.model)
    was_training = model.training
    model.eval()
    batches = eval_batches(split, run.settings.eval_batch_size, run.tokenizer.pad_token_id)
    mine = batches[ctx.rank::ctx.world]
    results = []
    for batch in tqdm(mine, desc=desc, unit="batch", leave=False, disable=None if ctx.is_main else True):
        with run.autocast():
            out = models.forward_batch(model, batch, with_labels=batch.labels is not None)
        loss, logits = out if batch.labels is not None else (None, out)
        loss_sum = float(loss) * len(batch) if loss is not None else 0.0
        results.append((batch.indices, logits.astype("float32").numpy(), loss_sum))
    if was_training:
        model.train()
    merged = [r for part in all_gather(results, ctx) for r in part]
    indices = np.concatenate([r[0] for r in merged])
    logits = np.empty((len(split), merged[0][1].shape[1]), dtype=np.float32)
    logits[indices] = np.concatenate([r[1] for r in merged])
    mean_loss = sum(r[2] for r in merged) / len(split) if split.labels is not None else None
    return logits, mean_loss


def to_predictions(task: TaskSpec, logits: np.ndarray) -> np.ndarray:
    """[N] scores (regression) or label ids from logits [N, labels]."""
    return logits[:, 0] if task.is_regression else logits.argmax(axis=-1)


def evaluate_dev(run: Run) -> dict[str, float]:
    """Metrics of every dev file, keyed "<file stem>/<metric>" (e.g. dev_matched/accuracy)."""
    results = {}
    for split in run.splits["dev"]:
        logits, loss = predict_logits(run, split, f"eval {split.name}")
        scores = compute_metrics(run.task, to_predictions(run.task, logits), split.labels)
        results.update({f"{split.name}/{k}": v for k, v in scores.items()})
        results[f"{split.name}/loss"] = loss
    return results


def write_predictions(run: Run, directory: Path) -> list[Path]:
    """GLUE submission files (`index<TAB>prediction`, label strings) for every test file; rank 0
    alone, so that no other node needs the saved best model."""
    written = []
    for split, name in zip(run.splits["test"], run.task.submission_files):
        logits, _ = predict_logits(run, split, f"predict {split.name}", ctx=Dist())
        preds = to_predictions(run.task, logits)
        lines = ["index\tprediction"]
        for guid, pred in zip(split.guids, preds):
            label = f"{float(pred):.3f}" if run.task.is_regression else run.task.label_list[int(pred)]
            lines.append(f"{guid.rsplit('-', 1)[1]}\t{label}")
        directory.mkdir(parents=True, exist_ok=True)
        atomic_write_text(directory / name, "\n".join(lines) + "\n")
        written.append(directory / name)
        logger.info("wrote %d predictions to %s", len(preds), directory / name)
    return written


class MetricsWriter:
    """metrics.jsonl (one JSON object per evaluation) and VisualDL scalars; rank 0 only."""

    def __init__(self, output_dir: Path, history: list[dict], enabled: bool):
        self.enabled = enabled
        self.path = output_dir / METRICS_FILE
        self.vdl = None
        if enabled:
            atomic_write_text(self.path, "".join(json.dumps(r) + "\n" for r in history))
            from visualdl import LogWriter
            self.vdl = LogWriter(logdir=str(output_dir / VISUALDL_DIR))

    def scalars(self, values: dict[str, float], step: int) -> None:
        if self.vdl is not None:
            for tag, value in values.items():
                self.vdl.add_scalar(tag, float(value), step)

    def evaluation(self, record: dict) -> None:
        """Append one evaluation; on disk before the run goes on (an appended line, not a rewrite)."""
        if not self.enabled:
            return
        line = (json.dumps(record) + "\n").encode("utf-8")
        with open(self.path, "ab", buffering=0) as f:
            size = f.seek(0, os.SEEK_END)
            try:
                done = 0
                while done < len(line):
                    done += f.write(line[done:])
                os.fsync(f.fileno())
            except OSError:
                f.truncate(size)              # no half line (a full disk still lets a file shrink)
                raise
        self.scalars({k: v for k, v in record.items() if "/" in k}, record["step"])

    def close(self) -> None:
        if self.vdl is not None:
            self.vdl.close()


def plot_curves(path: Path, train_log: list[dict], eval_log: list[dict], metric_key: str) -> None:
    """PNG with the training loss and the dev metrics against the step (Agg canvas, no display)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(11, 4))
    FigureCanvasAgg(fig)
    loss_ax, metric_ax = fig.subplots(1, 2)
    loss_ax.plot([r["step"] for r in train_log], [r["loss"] for r in train_log])
    loss_ax.set(xlabel="step", ylabel="training loss", title="training loss")
    keys = [k for k in (eval_log[0] if eval_log else {}) if "/" in k and not k.endswith("/loss")]
    for key in keys:
        metric_ax.plot([r["step"] for r in eval_log], [r[key] for r in eval_log], marker="o", label=key,
                       linewidth=2.5 if key == metric_key else 1.0)
    metric_ax.set(xlabel="step", ylabel="dev metric", title=f"dev metrics (best by {metric_key})")
    if keys:
        metric_ax.legend(fontsize="small")
    fig.tight_layout()
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=100)
    atomic_write_bytes(path, png.getvalue())
