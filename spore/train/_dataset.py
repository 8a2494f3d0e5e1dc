"""What `Model` accepts as a dataset, and how it reads one epoch of it.

A dataset is either an object with MindSpore's ``create_tuple_iterator()`` (a new
iterator each epoch; ``get_dataset_size()`` gives the batch count), or any
iterable that can be iterated once per epoch (a list of batches, a
``torch.utils.data.DataLoader``, a class with ``__iter__``). Each batch is a tuple
or list of columns (``(data, label)``), or a single column; every column is
numpy, a spore Tensor, a torch tensor or a number, and reaches the network as a
spore Tensor (numpy and torch columns without a copy).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from spore.common.tensor import Tensor

__all__ = ["as_tensor", "check_dataset", "dataset_size", "epoch_batches"]


def check_dataset(dataset: Any, arg: str, what: str, epochs: int = 1) -> None:
    """Raises TypeError unless ``dataset`` can be read for ``epochs`` epochs."""
    if callable(getattr(dataset, "create_tuple_iterator", None)):
        return
    if isinstance(dataset, (str, bytes, dict)) or not hasattr(dataset, "__iter__"):
        raise TypeError(
            f"For '{what}', the '{arg}' should be a dataset: an iterable of (data, "
            "label) batches (a list, a DataLoader, a class with __iter__) or an object "
            f"with create_tuple_iterator(), but got {type(dataset).__name__}."
        )
    if epochs > 1 and isinstance(dataset, Iterator):
        raise TypeError(
            f"For '{what}', the '{arg}' is a one-shot iterator "
            f"({type(dataset).__name__}), which is empty after the first of the "
            f"{epochs} epochs; pass a re-iterable such as a list of batches."
        )


def dataset_size(dataset: Any) -> int | None:
    """Batches per epoch, when the dataset can tell without being read."""
    size = getattr(dataset, "get_dataset_size", None)
    if callable(size):
        return int(size())
    if hasattr(dataset, "__len__") and not isinstance(dataset, Iterator):
        try:
            return len(dataset)
        except TypeError:
            return None
    return None


def epoch_batches(dataset: Any, what: str) -> Iterator[tuple[Tensor, ...]]:
    """One epoch of ``dataset``: each batch as a tuple of spore Tensors."""
    make = getattr(dataset, "create_tuple_iterator", None)
    source = make() if callable(make) else iter(dataset)
    for batch in source:
        if isinstance(batch, (tuple, list)):
            yield tuple(as_tensor(item, what) for item in batch)
        elif isinstance(batch, dict):
            yield tuple(as_tensor(item, what) for item in batch.values())
        else:
            yield (as_tensor(batch, what),)


def as_tensor(value: Any, what: str) -> Tensor:
    """One column of a batch as a spore Tensor (numpy and torch data are shared)."""
    if isinstance(value, Tensor):
        return value
    if isinstance(value, torch.Tensor):
        return Tensor._wrap(value)
    if isinstance(value, np.ndarray):
        if not value.flags.writeable or any(step < 0 for step in value.strides):
            value = value.copy()  # torch shares only writable, forward-strided memory
        return Tensor._wrap(torch.from_numpy(value))
    if isinstance(value, (int, float, np.generic, list)):
        return Tensor(value)
    raise TypeError(
        f"For '{what}', every column of a batch should be a numpy array, a Tensor, a "
        f"torch.Tensor or a number, but got {type(value).__name__}."
    )
