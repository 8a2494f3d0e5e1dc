"""Hash-lane seeds: spore's SeedSequence arithmetic gives numpy's bits."""

from __future__ import annotations

import numpy as np
import pytest

from spore.common import _random_math as rm


def _numpy_word(entropy: list[int]) -> int:
    return int(np.random.SeedSequence(entropy).generate_state(1, np.uint64)[0])


@pytest.mark.parametrize(
    "entropy",
    [
        [0, 0, 1, 0],
        [5, 1, 1, 7],
        [2**64 - 1, 2**40, 1, 2**33],  # words above 32 bits
        [1, 2, 3, 4, 5, 6, 7],  # more words than the pool
        [9],
    ],
)
def test_seed_sequence_word_equals_numpy(entropy):
    assert rm.seed_sequence_word(entropy) == _numpy_word(entropy)


def test_seed_sequence_word_equals_numpy_on_random_lane_keys():
    rng = np.random.default_rng(0)
    keys = [
        [int(rng.integers(0, 2**63)), int(rng.integers(0, 2**20)), 1,
         int(rng.integers(0, 2**34))]
        for _ in range(500)
    ]  # fmt: skip
    assert [rm.seed_sequence_word(k) for k in keys] == [_numpy_word(k) for k in keys]


def test_negative_entropy_is_refused_as_numpy_does():
    with pytest.raises(ValueError, match=r"expected a non-negative integer"):
        rm.seed_sequence_word([-1])
    with pytest.raises(ValueError, match=r"expected non-negative integer"):
        np.random.SeedSequence([-1])
    assert True
