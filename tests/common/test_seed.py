"""Tests for spore.set_seed / spore.get_seed (spec §3.4)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import spore
from spore.common import seed as seed_module


@pytest.fixture(autouse=True)
def restore_seed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Put the global seed and key counter back after every test here."""
    monkeypatch.setattr(seed_module, "_global_seed", seed_module._global_seed)
    monkeypatch.setattr(seed_module, "_key_counter", seed_module._key_counter)


@pytest.mark.parametrize("bad", [1.0, "1", None, True, np.int64(3), [1]], ids=repr)
def test_set_seed_non_int_is_typeerror(bad) -> None:
    with pytest.raises(
        TypeError, match=r"For 'set_seed', the 'seed' should be int"
    ) as info:
        spore.set_seed(bad)
    assert f"but got {type(bad).__name__}." in str(info.value)


@pytest.mark.parametrize("bad", [-1, -(2**40), 2**64])
def test_set_seed_out_of_range_is_valueerror(bad: int) -> None:
    with pytest.raises(
        ValueError, match=r"For 'set_seed', the 'seed' should be in"
    ) as info:
        spore.set_seed(bad)
    assert f"but got {bad}." in str(info.value)


@pytest.mark.parametrize("seed", [0, 1, 2**32 + 5, 2**64 - 1])
def test_get_seed_returns_the_seed(seed: int) -> None:
    spore.set_seed(seed)
    assert spore.get_seed() == seed


def test_get_seed_is_none_before_set_seed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(seed_module, "_global_seed", None)
    assert spore.get_seed() is None


def test_failed_set_seed_keeps_the_seed() -> None:
    spore.set_seed(5)
    with pytest.raises(ValueError, match=r"For 'set_seed'"):
        spore.set_seed(-1)
    assert spore.get_seed() == 5


def test_set_seed_seeds_numpy() -> None:
    spore.set_seed(7)
    first = np.random.rand(4)
    spore.set_seed(7)
    assert np.array_equal(np.random.rand(4), first)


def test_set_seed_seeds_torch() -> None:
    spore.set_seed(7)
    first = torch.rand(4)
    spore.set_seed(7)
    assert torch.equal(torch.rand(4), first)


def test_set_seed_makes_initializer_sequence_reproducible() -> None:
    from spore import dtype as mstype
    from spore.common.initializer import initializer

    spore.set_seed(3)
    a = initializer("normal", (4, 4), mstype.float32).asnumpy()
    b = initializer("normal", (4, 4), mstype.float32).asnumpy()
    spore.set_seed(3)
    a2 = initializer("normal", (4, 4), mstype.float32).asnumpy()
    b2 = initializer("normal", (4, 4), mstype.float32).asnumpy()
    assert np.array_equal(a, a2) and np.array_equal(b, b2) and not np.array_equal(a, b)
