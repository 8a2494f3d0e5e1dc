"""Small networks and datasets shared by the tests of spore.train and spore.nn.wrap."""

from __future__ import annotations

from typing import Any

import numpy as np

from spore import Tensor, nn
from spore.nn.optim import Momentum


def dense_net(in_channels: int = 4, out_channels: int = 3) -> nn.Dense:
    """A Dense layer with fixed weights (0.1 * index), bias zero."""
    weight = np.arange(out_channels * in_channels, dtype=np.float32).reshape(
        out_channels, in_channels
    )
    return nn.Dense(
        in_channels,
        out_channels,
        weight_init=Tensor(0.1 * weight),
        bias_init="zeros",
    )


def cross_entropy() -> nn.SoftmaxCrossEntropyWithLogits:
    return nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")


def momentum(net: nn.Cell, lr: float = 0.1) -> Momentum:
    return Momentum(net.trainable_params(), learning_rate=lr, momentum=0.9)


def separable_batches(
    n_batches: int = 4, batch: int = 8, seed: int = 0
) -> list[tuple[np.ndarray, np.ndarray]]:
    """3 classes of 4-feature points, each class around its own corner."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_batches):
        labels = rng.integers(0, 3, batch).astype(np.int32)
        centers = np.eye(3, 4, dtype=np.float32)[labels] * 4.0
        data = centers + rng.normal(0, 0.3, (batch, 4)).astype(np.float32)
        out.append((data, labels))
    return out


class TupleIteratorDataset:
    """A stand-in for a MindSpore dataset: create_tuple_iterator() and a size."""

    def __init__(self, batches: list[tuple[Any, Any]]) -> None:
        self.batches = batches
        self.iterators_made = 0

    def create_tuple_iterator(self) -> Any:
        self.iterators_made += 1
        return iter(self.batches)

    def get_dataset_size(self) -> int:
        return len(self.batches)
