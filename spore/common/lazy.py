"""``spore.lazy_init()``: a scope in which new Parameters stay lazy until used.

MindSpore materialises ``Parameter(initializer(...))`` at once (outside the
parallel modes). Inside this scope a Parameter keeps only shape, dtype and its
initializer key, so a model of any size is built in milliseconds with no
memory; ``init_data()`` (or any access to values) materialises it later with
exactly the values it would have had.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

_state = threading.local()


@contextlib.contextmanager
def lazy_init() -> Iterator[None]:
    """Keep every Parameter created in this scope lazy.

    Examples:
        >>> import spore
        >>> from spore.common.initializer import initializer
        >>> with spore.lazy_init():
        ...     w = spore.Parameter(initializer("normal", (4096, 4096)), name="w")
        >>> w.has_init
        True
    """
    depth = getattr(_state, "depth", 0)
    _state.depth = depth + 1
    try:
        yield
    finally:
        _state.depth = depth


def in_lazy_scope() -> bool:
    """True inside ``lazy_init()``."""
    return getattr(_state, "depth", 0) > 0
