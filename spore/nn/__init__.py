"""Networks (MindSpore's ``mindspore.nn``): ``Cell``, layers, containers, losses."""

from spore.nn.cell import Cell as Cell
from spore.nn.layer import GELU as GELU
from spore.nn.layer import AvgPool2d as AvgPool2d
from spore.nn.layer import BatchNorm1d as BatchNorm1d
from spore.nn.layer import BatchNorm2d as BatchNorm2d
from spore.nn.layer import CellList as CellList
from spore.nn.layer import Conv2d as Conv2d
from spore.nn.layer import Dense as Dense
from spore.nn.layer import Dropout as Dropout
from spore.nn.layer import Embedding as Embedding
from spore.nn.layer import Flatten as Flatten
from spore.nn.layer import LayerNorm as LayerNorm
from spore.nn.layer import MaxPool2d as MaxPool2d
from spore.nn.layer import ReLU as ReLU
from spore.nn.layer import SequentialCell as SequentialCell
from spore.nn.layer import Sigmoid as Sigmoid
from spore.nn.layer import Softmax as Softmax
from spore.nn.layer import Tanh as Tanh
from spore.nn.layer import get_activation as get_activation
from spore.nn.loss import L1Loss as L1Loss
from spore.nn.loss import LossBase as LossBase
from spore.nn.loss import MSELoss as MSELoss
from spore.nn.loss import SoftmaxCrossEntropyWithLogits as SoftmaxCrossEntropyWithLogits
from spore.nn.optim import FTRL as FTRL
from spore.nn.optim import SGD as SGD
from spore.nn.optim import Adam as Adam
from spore.nn.optim import AdamWeightDecay as AdamWeightDecay
from spore.nn.optim import CosineDecayLR as CosineDecayLR
from spore.nn.optim import ExponentialDecayLR as ExponentialDecayLR
from spore.nn.optim import InverseDecayLR as InverseDecayLR
from spore.nn.optim import LearningRateSchedule as LearningRateSchedule
from spore.nn.optim import Momentum as Momentum
from spore.nn.optim import NaturalExpDecayLR as NaturalExpDecayLR
from spore.nn.optim import Optimizer as Optimizer
from spore.nn.optim import PolynomialDecayLR as PolynomialDecayLR
from spore.nn.optim import WarmUpLR as WarmUpLR
from spore.nn.optim import exponential_decay_lr as exponential_decay_lr
from spore.nn.optim import piecewise_constant_lr as piecewise_constant_lr

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
    "AvgPool2d",
    "BatchNorm1d",
    "BatchNorm2d",
    "Cell",
    "CellList",
    "Conv2d",
    "Dense",
    "Dropout",
    "Embedding",
    "Flatten",
    "GELU",
    "L1Loss",
    "LayerNorm",
    "LossBase",
    "MSELoss",
    "MaxPool2d",
    "ReLU",
    "SequentialCell",
    "Sigmoid",
    "Softmax",
    "SoftmaxCrossEntropyWithLogits",
    "Tanh",
    "get_activation",
]

# Training wrappers (spore/nn/wrap/), appended by their module's author.
from spore.nn.wrap import TrainOneStepCell as TrainOneStepCell
from spore.nn.wrap import WithEvalCell as WithEvalCell
from spore.nn.wrap import WithLossCell as WithLossCell

__all__ += ["TrainOneStepCell", "WithEvalCell", "WithLossCell"]

# Data parallel (issue 5): the gradient reducer TrainOneStepCell uses.
from spore.nn.wrap import DistributedGradReducer as DistributedGradReducer  # noqa: E402

__all__ += ["DistributedGradReducer"]

# Tensor parallel (issue 6): layers whose weights are split across ranks.
from spore.nn.layer.parallel_dense import ColumnParallelDense as ColumnParallelDense  # noqa: E402
from spore.nn.layer.parallel_dense import RowParallelDense as RowParallelDense  # noqa: E402
from spore.nn.layer.parallel_dense import (  # noqa: E402
    VocabParallelEmbedding as VocabParallelEmbedding,
)

__all__ += ["ColumnParallelDense", "RowParallelDense", "VocabParallelEmbedding"]
