"""Each parallel test starts and ends in stand-alone mode with a fixed seed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import spore


@pytest.fixture(autouse=True)
def _fresh_context() -> Iterator[None]:
    spore.reset_auto_parallel_context()
    yield
    spore.reset_auto_parallel_context()
