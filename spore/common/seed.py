"""The global seed and the keys of lazy tensors.

See Note [init keys]: every lazy tensor gets a key when it is created, made of
the global seed and a creation counter. Random initializer values are a pure
function of (key, element index), so any slice can be computed alone, and every
rank running the same program derives the same keys.
"""

from __future__ import annotations

import os

import numpy as np
import torch

_MAX_SEED = 2**64 - 1
_global_seed: int | None = None
# Without set_seed, keys still need a seed: one random value per process.
_process_seed = int.from_bytes(os.urandom(8), "little")
_key_counter = 0


def set_seed(seed: int) -> None:
    """Set the global seed: initializers, numpy and torch become reproducible.

    Args:
        seed: A non-negative int.

    Raises:
        TypeError: If ``seed`` is not an int.
        ValueError: If ``seed`` is negative or too large.

    Examples:
        >>> import spore
        >>> spore.set_seed(1)
        >>> spore.get_seed()
        1
    """
    global _global_seed, _key_counter
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(
            f"For 'set_seed', the 'seed' should be int, but got {type(seed).__name__}."
        )
    if not 0 <= seed <= _MAX_SEED:
        raise ValueError(
            f"For 'set_seed', the 'seed' should be in [0, 2**64 - 1], but got {seed}."
        )
    _global_seed = seed
    _key_counter = 0
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def get_seed() -> int | None:
    """Return the global seed, or None when none was set."""
    return _global_seed


def next_init_key() -> tuple[int, int]:
    """Return a fresh (seed, counter) key for a lazy tensor and advance the counter."""
    global _key_counter
    seed = _process_seed if _global_seed is None else _global_seed
    key = (seed, _key_counter)
    _key_counter += 1
    return key
