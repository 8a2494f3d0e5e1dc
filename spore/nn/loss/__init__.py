"""Loss functions."""

from spore.nn.loss.loss import L1Loss as L1Loss
from spore.nn.loss.loss import LossBase as LossBase
from spore.nn.loss.loss import MSELoss as MSELoss
from spore.nn.loss.loss import (
    SoftmaxCrossEntropyWithLogits as SoftmaxCrossEntropyWithLogits,
)

__all__ = ["L1Loss", "LossBase", "MSELoss", "SoftmaxCrossEntropyWithLogits"]
