"""Metric values checked against numbers worked out by hand on small arrays."""
import math

import numpy as np
import pytest

from squeezebert_paddle.metrics import compute_metrics, primary_metric

# TP=3 (rows 0, 3, 5), TN=1 (row 1), FP=1 (row 2), FN=1 (row 4).
PREDS = [1, 0, 1, 1, 0, 1]
LABELS = [1, 0, 0, 1, 1, 1]


@pytest.mark.parametrize("task", ["QQP", "mrpc"])
def test_accuracy_and_f1(task):
    scores = compute_metrics(task, np.array(PREDS), LABELS)
    # accuracy 4/6; precision = recall = 3/4 so F1 = 3/4.
    assert scores == pytest.approx({"accuracy": 4 / 6, "f1": 0.75, "acc_and_f1": (4 / 6 + 0.75) / 2})


def test_f1_without_positive_predictions_is_zero():
    assert compute_metrics("qqp", [0, 0], [1, 0]) == pytest.approx(
        {"accuracy": 0.5, "f1": 0.0, "acc_and_f1": 0.25})


def test_matthews_correlation():
    # (TP*TN - FP*FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN)) = (3 - 1) / sqrt(4*4*2*2) = 0.25
    assert compute_metrics("cola", PREDS, LABELS) == pytest.approx({"mcc": 0.25})


def test_stsb_correlations():
    # Ranks differ by 1 on every row: Spearman = 1 - 6*4 / (4*(16-1)) = 0.6 (= Pearson on ranks).
    scores = compute_metrics("sts-b", [1.0, 2.0, 3.0, 4.0], [2.0, 1.0, 4.0, 3.0])
    assert scores == pytest.approx({"pearson": 0.6, "spearmanr": 0.6, "corr": 0.6})
    # Monotone but not linear: Spearman 1; Pearson 6.5 / sqrt(5 * 8.75).
    scores = compute_metrics("STSB", np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, 2.0, 3.0, 5.0]))
    pearson = 6.5 / math.sqrt(5 * 8.75)
    assert scores == pytest.approx({"pearson": pearson, "spearmanr": 1.0, "corr": (pearson + 1) / 2})


@pytest.mark.parametrize("task", ["MNLI", "qnli", "RTE", "wnli", "sst2"])
def test_accuracy_tasks(task):
    assert compute_metrics(task, [0, 1, 2, 2], [0, 1, 1, 2]) == {"accuracy": 0.75}


def test_primary_metric():
    expected = {"QQP": "acc_and_f1", "MRPC": "acc_and_f1", "CoLA": "mcc", "STS-B": "corr",
                "MNLI": "accuracy", "SST-2": "accuracy", "QNLI": "accuracy", "RTE": "accuracy",
                "WNLI": "accuracy"}
    for task, key in expected.items():
        assert primary_metric(task) == key
        assert key in compute_metrics(task, [1, 0, 1], [1, 0, 0])


def test_bad_inputs():
    with pytest.raises(ValueError, match="must be 1-D and the same length"):
        compute_metrics("qqp", [1, 0], [1, 0, 1])
    with pytest.raises(ValueError, match="must be 1-D"):
        compute_metrics("mnli", np.zeros((2, 3)), [0, 1])
    with pytest.raises(ValueError, match="no predictions"):
        compute_metrics("rte", [], [])
    with pytest.raises(ValueError, match="unknown GLUE task"):
        compute_metrics("squad", [1], [1])
