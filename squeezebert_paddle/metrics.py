"""GLUE task metrics computed with scikit-learn and scipy (framework-free, like data.py).

Predictions are class indices (already arg-maxed) for classification tasks and float scores for
STS-B; labels use the same encoding (see data.encode_labels).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import f1_score, matthews_corrcoef

from .data import TaskSpec, get_task

ArrayLike = Sequence[float] | np.ndarray


def _as_arrays(predictions: ArrayLike, labels: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    preds, golds = np.asarray(predictions), np.asarray(labels)
    if preds.ndim != 1 or preds.shape != golds.shape:
        raise ValueError(f"predictions {preds.shape} and labels {golds.shape} must be 1-D and "
                         "the same length (arg-max logits first)")
    if preds.size == 0:
        raise ValueError("no predictions to score")
    return preds, golds


def accuracy(predictions: ArrayLike, labels: ArrayLike) -> float:
    preds, golds = _as_arrays(predictions, labels)
    return float(np.mean(preds == golds))


def acc_and_f1(predictions: ArrayLike, labels: ArrayLike) -> dict[str, float]:
    """Accuracy, binary F1 of class 1, and their mean (the GLUE score for QQP and MRPC)."""
    preds, golds = _as_arrays(predictions, labels)
    acc = accuracy(preds, golds)
    f1 = float(f1_score(golds, preds, pos_label=1, average="binary", zero_division=0))
    return {"accuracy": acc, "f1": f1, "acc_and_f1": (acc + f1) / 2}


def pearson_and_spearman(predictions: ArrayLike, labels: ArrayLike) -> dict[str, float]:
    preds, golds = _as_arrays(predictions, labels)
    pearson = float(pearsonr(preds, golds)[0])
    spearman = float(spearmanr(preds, golds)[0])
    return {"pearson": pearson, "spearmanr": spearman, "corr": (pearson + spearman) / 2}


def compute_metrics(task_name: str | TaskSpec, predictions: ArrayLike,
                    labels: ArrayLike) -> dict[str, float]:
    """The GLUE metrics of a task: QQP/MRPC accuracy+F1, CoLA MCC, STS-B correlations, else accuracy."""
    metric = get_task(task_name).metric
    if metric == "acc_and_f1":
        return acc_and_f1(predictions, labels)
    if metric == "corr":
        return pearson_and_spearman(predictions, labels)
    if metric == "mcc":
        preds, golds = _as_arrays(predictions, labels)
        return {"mcc": float(matthews_corrcoef(golds, preds))}
    return {"accuracy": accuracy(predictions, labels)}


def primary_metric(task_name: str | TaskSpec) -> str:
    """Key of compute_metrics' result that picks the best checkpoint for a task."""
    return get_task(task_name).metric
