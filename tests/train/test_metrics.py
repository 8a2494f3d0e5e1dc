"""Metrics (spore/train/metrics.py): Accuracy, Loss and the names Model accepts."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spore import Tensor
from spore.train import Accuracy, Loss, Metric
from spore.train.metrics import get_metric_fn, get_metrics

LOGITS = np.array([[0.1, 0.9, 0.0], [0.8, 0.1, 0.1], [0.2, 0.3, 0.5]], np.float32)


def test_accuracy_with_class_indices() -> None:
    metric = Accuracy()
    metric.update(LOGITS, np.array([1, 0, 0]))
    assert metric.eval() == pytest.approx(2 / 3)


def test_accuracy_with_one_hot_labels() -> None:
    metric = Accuracy()
    metric.update(LOGITS, np.eye(3, dtype=np.float32)[[1, 2, 2]])
    assert metric.eval() == pytest.approx(2 / 3)


def test_accuracy_accumulates_over_updates() -> None:
    metric = Accuracy()
    metric.update(LOGITS, np.array([1, 0, 2]))
    metric.update(LOGITS, np.array([0, 1, 0]))
    assert metric.eval() == 0.5


def test_accuracy_accepts_spore_and_torch_tensors() -> None:
    metric = Accuracy()
    metric.update(Tensor(LOGITS), torch.tensor([1, 0, 2]))
    assert metric.eval() == 1.0


def test_accuracy_multilabel_needs_every_position_right() -> None:
    metric = Accuracy("multilabel")
    metric.update(np.array([[0.9, 0.2], [0.7, 0.6]]), np.array([[1, 0], [1, 0]]))
    assert metric.eval() == 0.5


def test_accuracy_clear_starts_over() -> None:
    metric = Accuracy()
    metric.update(LOGITS, np.array([0, 1, 0]))
    metric.clear()
    metric.update(LOGITS, np.array([1, 0, 2]))
    assert metric.eval() == 1.0


def test_accuracy_without_samples_is_a_runtime_error() -> None:
    with pytest.raises(RuntimeError, match=r"For 'Accuracy.eval', no sample was seen"):
        Accuracy().eval()


def test_accuracy_needs_two_inputs() -> None:
    with pytest.raises(ValueError, match=r"it needs 2 inputs \(y_pred, y\), but got 1"):
        Accuracy().update(LOGITS)


def test_accuracy_shapes_must_agree() -> None:
    with pytest.raises(ValueError, match=r"'y_pred' should be \(N, C\)"):
        Accuracy().update(LOGITS, np.array([1, 0]))


def test_accuracy_unknown_eval_type() -> None:
    with pytest.raises(ValueError, match=r"the 'eval_type' should be 'classification'"):
        Accuracy("regression")


def test_loss_is_the_mean_of_batch_means() -> None:
    metric = Loss()
    metric.update(Tensor(np.float32(1.0)))
    metric.update(np.array([2.0, 4.0]))
    assert metric.eval() == 2.0


def test_loss_refuses_two_dimensional_input() -> None:
    with pytest.raises(ValueError, match=r"the loss should be 0-d or 1-d"):
        Loss().update(np.ones((2, 2)))


def test_loss_without_updates_is_a_runtime_error() -> None:
    with pytest.raises(RuntimeError, match=r"For 'Loss.eval', no loss was seen"):
        Loss().eval()


def test_metric_input_of_unknown_type_is_refused() -> None:
    with pytest.raises(TypeError, match=r"For 'Loss', the input should be a Tensor"):
        Loss().update("1.0")


def test_metric_names_give_new_metrics() -> None:
    metrics = get_metrics({"loss", "accuracy"})
    assert list(metrics) == ["accuracy", "loss"]
    assert isinstance(metrics["accuracy"], Accuracy) and isinstance(
        metrics["loss"], Loss
    )


def test_acc_is_an_alias_of_accuracy() -> None:
    assert isinstance(get_metric_fn("acc"), Accuracy)


def test_metric_dict_values_must_be_metrics() -> None:
    with pytest.raises(TypeError, match=r"the metric 'acc' should be a Metric"):
        get_metrics({"acc": "accuracy"})


def test_metrics_of_wrong_type_are_refused() -> None:
    with pytest.raises(TypeError, match=r"the 'metrics' should be a set or list"):
        get_metrics("accuracy")


def test_set_indexes_chooses_the_outputs() -> None:
    metric = Accuracy().set_indexes([1, 2])
    assert isinstance(metric, Metric) and metric.indexes == [1, 2]
