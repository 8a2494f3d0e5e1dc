"""Evaluation metrics: ``Metric``, ``Accuracy``, ``Loss`` and the names `Model` takes.

A metric accumulates over batches (``update``), reports (``eval``) and starts over
(``clear``). Inputs may be spore Tensors, torch tensors, numpy arrays or lists.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from spore.common.tensor import Tensor

__all__ = ["Accuracy", "Loss", "Metric", "get_metric_fn", "get_metrics"]


class Metric:
    """Base class of metrics: override ``clear``, ``update`` and ``eval``."""

    def __init__(self) -> None:
        self._indexes: list[int] | None = None

    def clear(self) -> None:
        raise NotImplementedError(f"'{type(self).__name__}' should define clear().")

    def update(self, *inputs: Any) -> None:
        raise NotImplementedError(f"'{type(self).__name__}' should define update().")

    def eval(self) -> Any:
        raise NotImplementedError(f"'{type(self).__name__}' should define eval().")

    @property
    def indexes(self) -> list[int] | None:
        """Which of the evaluation network's outputs ``update`` receives (None: all)."""
        return self._indexes

    def set_indexes(self, indexes: list[int]) -> Metric:
        """Choose the outputs passed to ``update``; returns self.

        Raises:
            TypeError: If ``indexes`` is not a list of ints.
        """
        if not isinstance(indexes, list) or not all(
            isinstance(i, int) and not isinstance(i, bool) for i in indexes
        ):
            raise TypeError(
                f"For '{type(self).__name__}.set_indexes', the 'indexes' should be a "
                f"list of ints, but got {indexes!r}."
            )
        self._indexes = indexes
        return self

    def _convert_data(self, data: Any) -> np.ndarray:
        """``data`` as a numpy array.

        Raises:
            TypeError: If it is not a Tensor, torch tensor, numpy array or list.
        """
        if isinstance(data, Tensor):
            return data.asnumpy()
        if isinstance(data, torch.Tensor):
            return data.detach().cpu().numpy()
        if isinstance(data, (np.ndarray, list, np.generic, int, float)):
            return np.asarray(data)
        raise TypeError(
            f"For '{type(self).__name__}', the input should be a Tensor, numpy array "
            f"or list, but got {type(data).__name__}."
        )


class Accuracy(Metric):
    """The fraction of samples classified correctly.

    Args:
        eval_type: ``'classification'`` (the arg-max of each row of ``y_pred``
            against class indices or one-hot rows ``y``) or ``'multilabel'``
            (``y_pred`` rounded must equal ``y`` in every position of the row).
            Default: ``'classification'``.

    Raises:
        ValueError: If ``eval_type`` is unknown; in ``update``, if the inputs are
            not two or their shapes disagree.
        RuntimeError: In ``eval``, if no sample was seen.

    Examples:
        >>> import numpy as np
        >>> metric = Accuracy()
        >>> metric.update(np.array([[0.1, 0.9], [0.8, 0.2]]), np.array([1, 1]))
        >>> metric.eval()
        0.5
    """

    def __init__(self, eval_type: str = "classification") -> None:
        super().__init__()
        if eval_type not in ("classification", "multilabel"):
            raise ValueError(
                "For 'Accuracy', the 'eval_type' should be 'classification' or "
                f"'multilabel', but got {eval_type!r}."
            )
        self._type = eval_type
        self.clear()

    def clear(self) -> None:
        self._correct_num = 0
        self._total_num = 0

    def update(self, *inputs: Any) -> None:
        if len(inputs) != 2:
            raise ValueError(
                "For 'Accuracy.update', it needs 2 inputs (y_pred, y), but got "
                f"{len(inputs)}."
            )
        y_pred = self._convert_data(inputs[0])
        y = self._convert_data(inputs[1])
        if self._type == "classification":
            if y_pred.ndim == y.ndim and y.ndim > 1:
                y = y.argmax(axis=-1)  # one-hot rows
            if y_pred.ndim != 2 or y.shape != y_pred.shape[:1]:
                raise ValueError(
                    "For 'Accuracy.update', 'y_pred' should be (N, C) and 'y' (N,) or "
                    f"(N, C), but got {y_pred.shape} and {y.shape}."
                )
            correct = y_pred.argmax(axis=-1) == y
        else:
            if y_pred.shape != y.shape:
                raise ValueError(
                    "For 'Accuracy.update', 'y_pred' and 'y' should have one shape "
                    f"with 'multilabel', but got {y_pred.shape} and {y.shape}."
                )
            correct = (y_pred.round() == y).reshape(len(y), -1).all(axis=1)
        self._correct_num += int(correct.sum())
        self._total_num += int(correct.shape[0])

    def eval(self) -> float:
        if self._total_num == 0:
            raise RuntimeError(
                "For 'Accuracy.eval', no sample was seen; call update() first."
            )
        return self._correct_num / self._total_num


class Loss(Metric):
    """The mean of the loss over the batches seen (each batch's loss averaged).

    Raises:
        ValueError: In ``update``, if not exactly one input, or it has more than
            one dimension.
        RuntimeError: In ``eval``, if no batch was seen.

    Examples:
        >>> metric = Loss()
        >>> metric.update(1.0)
        >>> metric.update([2.0, 4.0])
        >>> metric.eval()
        2.0
    """

    def __init__(self) -> None:
        super().__init__()
        self.clear()

    def clear(self) -> None:
        self._sum_loss = 0.0
        self._total_num = 0

    def update(self, *inputs: Any) -> None:
        if len(inputs) != 1:
            raise ValueError(
                "For 'Loss.update', it needs 1 input (the loss), but got "
                f"{len(inputs)}."
            )
        loss = self._convert_data(inputs[0])
        if loss.ndim > 1:
            raise ValueError(
                "For 'Loss.update', the loss should be 0-d or 1-d, but got shape "
                f"{loss.shape}."
            )
        self._sum_loss += float(np.mean(loss))
        self._total_num += 1

    def eval(self) -> float:
        if self._total_num == 0:
            raise RuntimeError(
                "For 'Loss.eval', no loss was seen; call update() first."
            )
        return self._sum_loss / self._total_num


_BY_NAME: dict[str, type[Metric]] = {
    "accuracy": Accuracy,
    "acc": Accuracy,
    "loss": Loss,
}


def get_metric_fn(name: str, *args: Any, **kwargs: Any) -> Metric:
    """A new metric by name (``'accuracy'``/``'acc'``, ``'loss'``).

    Raises:
        KeyError: If the name is unknown.
    """
    if name not in _BY_NAME:
        raise KeyError(
            f"For 'get_metric_fn', the metric {name!r} is unknown; expected one of "
            f"{sorted(_BY_NAME)}."
        )
    return _BY_NAME[name](*args, **kwargs)


def get_metrics(metrics: Any) -> dict[str, Metric] | None:
    """``Model``'s ``metrics`` (a set/list of names, or a dict of name to Metric)
    as a dict of name to Metric.

    Raises:
        TypeError: If ``metrics`` is not None, a set, list, tuple or dict, or a
            dict value is not a Metric.
        KeyError: If a name is unknown.
    """
    if metrics is None:
        return None
    if isinstance(metrics, dict):
        for name, metric in metrics.items():
            if not isinstance(metric, Metric):
                raise TypeError(
                    f"For 'Model', the metric {name!r} should be a Metric, but got "
                    f"{type(metric).__name__}."
                )
        return dict(metrics)
    if isinstance(metrics, (set, list, tuple)):
        names = sorted(metrics) if isinstance(metrics, set) else list(metrics)
        return {name: get_metric_fn(name) for name in names}
    raise TypeError(
        "For 'Model', the 'metrics' should be a set or list of names or a dict of "
        f"name to Metric, but got {type(metrics).__name__}."
    )
