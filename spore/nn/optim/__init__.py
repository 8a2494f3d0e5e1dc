"""Optimizers and learning-rate schedules (MindSpore's ``nn.optim``).

Updates run in place on the Parameters' torch tensors, with torch's fused
multi-tensor kernels where they apply (see Note [fused kernels] in ``_kernels.py``).
"""

from spore.nn.optim.adam import Adam as Adam
from spore.nn.optim.adam import AdamWeightDecay as AdamWeightDecay
from spore.nn.optim.ftrl import FTRL as FTRL
from spore.nn.optim.lr_schedule import CosineDecayLR as CosineDecayLR
from spore.nn.optim.lr_schedule import ExponentialDecayLR as ExponentialDecayLR
from spore.nn.optim.lr_schedule import InverseDecayLR as InverseDecayLR
from spore.nn.optim.lr_schedule import LearningRateSchedule as LearningRateSchedule
from spore.nn.optim.lr_schedule import NaturalExpDecayLR as NaturalExpDecayLR
from spore.nn.optim.lr_schedule import PolynomialDecayLR as PolynomialDecayLR
from spore.nn.optim.lr_schedule import WarmUpLR as WarmUpLR
from spore.nn.optim.lr_schedule import exponential_decay_lr as exponential_decay_lr
from spore.nn.optim.lr_schedule import piecewise_constant_lr as piecewise_constant_lr
from spore.nn.optim.momentum import Momentum as Momentum
from spore.nn.optim.optimizer import Optimizer as Optimizer
from spore.nn.optim.sgd import SGD as SGD

__all__ = [
    "FTRL",
    "SGD",
    "Adam",
    "AdamWeightDecay",
    "CosineDecayLR",
    "ExponentialDecayLR",
    "InverseDecayLR",
    "LearningRateSchedule",
    "Momentum",
    "NaturalExpDecayLR",
    "Optimizer",
    "PolynomialDecayLR",
    "WarmUpLR",
    "exponential_decay_lr",
    "piecewise_constant_lr",
]
