"""What travels between parameter-server workers and servers besides tensors.

Every message is tensors plus plain values (str, int, float, bool, None, and lists
or dicts of them), checked here on arrival: see Note [PS messages]. A lazy
Parameter is sent as its initializer's name, arguments and random key instead of
its values, so a server computes exactly the values a local init would (DESIGN.md:
values are a pure function of seed, key and element index).
"""

from __future__ import annotations

from typing import Any

import torch

from spore.common import dtype as mstype
from spore.common._initializer_base import _INITIALIZER_ALIAS, Initializer
from spore.common.tensor import Tensor

# Note [PS messages]: torch.distributed.rpc frames a Python call with pickle, so a
# peer in the job can make this process run code: the cluster must be trusted, as
# with any torch.distributed.rpc program (bind it to a private network). What
# spore itself puts in a message is limited to tensors and the plain values
# below, and every handler checks what it receives before using it.
_PLAIN = (str, int, float, bool, type(None))


def is_plain(value: Any) -> bool:
    """Whether ``value`` is built only from plain values, lists, tuples and dicts."""
    if isinstance(value, _PLAIN):
        return True
    if isinstance(value, (list, tuple)):
        return all(is_plain(item) for item in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and is_plain(v) for k, v in value.items())
    return False


def initializer_spec(lazy: Tensor) -> dict[str, Any] | None:
    """The plain description of a lazy tensor's values, or None when its
    initializer cannot be rebuilt from plain arguments (the values are sent then)."""
    init = lazy.init
    if not isinstance(init, Initializer) or lazy._init_key is None:
        return None
    name = type(init).__name__.lower()
    if _INITIALIZER_ALIAS.get(name) is not type(init) or not is_plain(init._kwargs):
        return None
    return {
        "name": name,
        "kwargs": dict(init._kwargs),
        "seed": init._seed,
        "key": [int(k) for k in lazy._init_key],
        "shape": list(lazy.shape),
        "dtype": str(lazy.dtype),
    }


def lazy_from_spec(spec: dict[str, Any]) -> Tensor:
    """The lazy tensor a spec describes (same initializer, arguments and key).

    Raises:
        ValueError: If the spec names an unknown initializer or dtype.
    """
    cls = _INITIALIZER_ALIAS.get(spec["name"])
    if cls is None:
        raise ValueError(f"unknown initializer {spec['name']!r} in a registration")
    init = cls(**spec["kwargs"])
    init._seed = spec["seed"]
    out = Tensor.__new__(Tensor)
    out._set_lazy(
        tuple(int(d) for d in spec["shape"]),
        dtype_from_name(spec["dtype"]),
        init,
        (int(spec["key"][0]), int(spec["key"][1])),
    )
    return out


def dtype_from_name(name: str) -> mstype.Type:
    """The spore dtype printed as ``name`` (e.g. ``"Float32"``).

    Raises:
        ValueError: If no dtype prints so.
    """
    for dtype in mstype.number_type + (mstype.bool_,):
        if str(dtype) == name:
            return dtype
    raise ValueError(f"unknown dtype {name!r} in a registration")


def rows_of(total: int, server_num: int, index: int) -> tuple[int, int]:
    """Server ``index``'s rows ``[start, stop)`` when ``total`` rows are split
    into ``server_num`` contiguous, near-equal parts (the first ones larger)."""
    base, extra = divmod(total, server_num)
    start = index * base + min(index, extra)
    return start, start + base + (1 if index < extra else 0)


def check_tensor(value: Any, what: str) -> torch.Tensor:
    """``value`` if it is a CPU torch tensor, else a ValueError naming ``what``."""
    if not isinstance(value, torch.Tensor):
        raise ValueError(f"{what} should be a tensor, but got {type(value).__name__}")
    return value
