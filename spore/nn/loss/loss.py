"""Losses: ``LossBase``, ``SoftmaxCrossEntropyWithLogits``, ``MSELoss``, ``L1Loss``."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from spore.common.tensor import Tensor
from spore.nn import _validate
from spore.nn.cell import Cell

__all__ = ["L1Loss", "LossBase", "MSELoss", "SoftmaxCrossEntropyWithLogits"]

_REDUCTIONS = ("mean", "sum", "none")


class LossBase(Cell):
    """Base class of losses: `get_loss` weights and reduces an element-wise loss.

    Args:
        reduction: ``'mean'``, ``'sum'`` or ``'none'``. Default: ``'mean'``.

    Raises:
        ValueError: If ``reduction`` is not one of them.
    """

    def __init__(self, reduction: str = "mean") -> None:
        cls = type(self).__name__
        if not isinstance(reduction, str):
            raise TypeError(
                f"For '{cls}', the 'reduction' should be str, but got "
                f"{type(reduction).__name__}."
            )
        _validate.check_choice(reduction.lower(), "reduction", cls, _REDUCTIONS)
        super().__init__()
        self.reduction = reduction.lower()

    def get_loss(self, x: Any, weights: Any = 1.0) -> Tensor:
        """``x * weights``, then reduced over all elements as ``reduction`` says."""
        data = _validate.to_torch(x, "x", self.cls_name)
        if isinstance(weights, (Tensor, torch.Tensor)):
            weights = _validate.to_torch(weights, "weights", self.cls_name)
            data = data * weights
        elif weights != 1.0:  # skip a no-op multiply: it costs a kernel each way
            data = data * weights
        if self.reduction == "mean":
            data = data.mean()
        elif self.reduction == "sum":
            data = data.sum()
        return _validate.wrap(data)

    def _pair(self, logits: Any, labels: Any) -> tuple[torch.Tensor, torch.Tensor]:
        cls = self.cls_name
        return _validate.to_torch(logits, "logits", cls), _validate.to_torch(
            labels, "labels", cls
        )


class SoftmaxCrossEntropyWithLogits(LossBase):
    """Cross entropy of ``softmax(logits)`` against labels, per sample.

    Args:
        sparse: Labels are class indices (N,) instead of (N, C) distributions.
            Default: ``False``.
        reduction: ``'mean'``, ``'sum'`` or ``'none'``. Default: ``'none'``.

    Inputs:
        logits: (N, C) floats.
        labels: (N, C) floats, or (N,) integers when ``sparse``.

    Outputs:
        (N,) losses for ``'none'``, else a scalar.

    Raises:
        TypeError: If ``sparse`` is not a bool.
        ValueError: If ``reduction`` is unknown.
    """

    def __init__(self, sparse: bool = False, reduction: str = "none") -> None:
        _validate.check_bool(sparse, "sparse", "SoftmaxCrossEntropyWithLogits")
        super().__init__(reduction)
        self.sparse = sparse

    def construct(self, logits: Any, labels: Any) -> Tensor:
        logits_t, labels_t = self._pair(logits, labels)
        if logits_t.dim() == 2:
            # One fused torch kernel (classes on dim 1, as MindSpore's 2-D logits).
            target = labels_t.long() if self.sparse else labels_t.to(logits_t.dtype)
            return _validate.wrap(
                F.cross_entropy(logits_t, target, reduction=self.reduction)
            )
        log_probs = F.log_softmax(logits_t, dim=-1)
        if self.sparse:
            nll = -log_probs.gather(-1, labels_t.long().unsqueeze(-1)).squeeze(-1)
        else:
            nll = -(labels_t.to(log_probs.dtype) * log_probs).sum(-1)
        return self.get_loss(_validate.wrap(nll))


class MSELoss(LossBase):
    """Squared error ``(logits - labels) ** 2``, reduced.

    Examples:
        >>> import numpy as np
        >>> from spore import Tensor, nn
        >>> a = Tensor(np.array([1.0, 2.0], np.float32))
        >>> b = Tensor(np.array([1.0, 4.0], np.float32))
        >>> float(nn.MSELoss()(a, b).asnumpy())
        2.0
    """

    def construct(self, logits: Any, labels: Any) -> Tensor:
        logits_t, labels_t = self._pair(logits, labels)
        return self.get_loss(_validate.wrap((logits_t - labels_t) ** 2))


class L1Loss(LossBase):
    """Absolute error ``|logits - labels|``, reduced."""

    def construct(self, logits: Any, labels: Any) -> Tensor:
        logits_t, labels_t = self._pair(logits, labels)
        return self.get_loss(_validate.wrap((logits_t - labels_t).abs()))
