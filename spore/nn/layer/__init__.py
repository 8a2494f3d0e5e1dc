"""Layers: basic, convolution, norm, embedding, pooling, activations, containers."""

from spore.nn.layer.activation import GELU as GELU
from spore.nn.layer.activation import ReLU as ReLU
from spore.nn.layer.activation import Sigmoid as Sigmoid
from spore.nn.layer.activation import Softmax as Softmax
from spore.nn.layer.activation import Tanh as Tanh
from spore.nn.layer.activation import get_activation as get_activation
from spore.nn.layer.basic import Dense as Dense
from spore.nn.layer.basic import Dropout as Dropout
from spore.nn.layer.basic import Flatten as Flatten
from spore.nn.layer.container import CellList as CellList
from spore.nn.layer.container import SequentialCell as SequentialCell
from spore.nn.layer.conv import Conv2d as Conv2d
from spore.nn.layer.embedding import Embedding as Embedding
from spore.nn.layer.normalization import BatchNorm1d as BatchNorm1d
from spore.nn.layer.normalization import BatchNorm2d as BatchNorm2d
from spore.nn.layer.normalization import LayerNorm as LayerNorm
from spore.nn.layer.pooling import AvgPool2d as AvgPool2d
from spore.nn.layer.pooling import MaxPool2d as MaxPool2d

__all__ = [
    "AvgPool2d",
    "BatchNorm1d",
    "BatchNorm2d",
    "CellList",
    "Conv2d",
    "Dense",
    "Dropout",
    "Embedding",
    "Flatten",
    "GELU",
    "LayerNorm",
    "MaxPool2d",
    "ReLU",
    "SequentialCell",
    "Sigmoid",
    "Softmax",
    "Tanh",
    "get_activation",
]
