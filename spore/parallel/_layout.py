"""Sharded-parameter layouts: MindSpore's layout tuple as an object, and declaring one.

A `Layout` *is* MindSpore 2.10's layout tuple (``parameter_layout_dict`` entries:
device matrix, tensor map, slice shape, field size, uniform split, optimizer-shard
group, full shape, slice shape after reshape), so it can be passed anywhere the
tuple is expected, ``Parameter.init_data(layout)`` included, and any such tuple
converts back with `Layout.from_tuple`.

Axis convention (MindSpore's): ``tensor_map[d] == -1`` leaves tensor dimension
``d`` whole; ``k >= 0`` splits it over device-matrix axis ``len(dev_mat) - 1 - k``
(axes counted from the right). Ranks are laid out row-major over the device
matrix; ranks that differ only on axes no dimension is split over hold the same
slice (replicas). See Note [sharded init] in ``spore/parallel/shard.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from spore.common import _slicing

__all__ = ["Layout", "get_layout", "set_layout"]


def _prod(values: Sequence[int]) -> int:
    out = 1
    for v in values:
        out *= v
    return out


def _int_list(value: Any, what: str, allow_negative_one: bool) -> tuple[int, ...]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value,)
    if not isinstance(value, (list, tuple)):
        raise TypeError(
            f"For 'Layout', the '{what}' should be a tuple or list of int, but got "
            f"{type(value).__name__}."
        )
    for v in value:
        if isinstance(v, bool) or not isinstance(v, int):
            raise TypeError(
                f"For 'Layout', every entry of '{what}' should be int, but got "
                f"{type(v).__name__} in {list(value)}."
            )
        if v <= 0 and not (allow_negative_one and v >= -1):
            low = "-1" if allow_negative_one else "1"
            raise ValueError(
                f"For 'Layout', every entry of '{what}' should be >= {low}, but got "
                f"{v} in {list(value)}."
            )
    return tuple(value)


class Layout(NamedTuple):
    """How one Parameter is split over devices (MindSpore's 8-entry layout tuple).

    Build it with `Layout.create` (which validates and derives the slice shape),
    or convert a MindSpore tuple with `Layout.from_tuple`.

    Examples:
        >>> lay = Layout.create((4, 8), dev_mat=(2, 2), tensor_map=(1, 0))
        >>> lay.slice_shape, lay.slice_index(3), lay.offsets(3)
        ((2, 4), 3, (2, 4))
    """

    dev_mat: tuple[int, ...]
    tensor_map: tuple[int, ...]
    slice_shape: tuple[int, ...]
    field_size: int = 0
    uniform_split: bool = True
    opt_shard_group: str = ""
    full_shape: tuple[int, ...] = ()
    after_reshape_slice_shape: tuple[int, ...] = ()

    @classmethod
    def create(
        cls,
        full_shape: Sequence[int],
        dev_mat: Sequence[int],
        tensor_map: Sequence[int],
        opt_shard_group: str = "",
        world_size: int | None = None,
    ) -> Layout:
        """Validate a layout for a tensor of ``full_shape`` and derive the rest.

        Args:
            full_shape: The unsharded shape.
            dev_mat: The device matrix; its product is the number of devices.
            tensor_map: One entry per dimension: -1 (whole) or a device axis
                counted from the right.
            opt_shard_group: The optimizer-shard group name; non-empty means the
                optimizer state is split further over the replicas of each slice.
            world_size: If given, the device matrix must hold exactly this many
                devices.

        Raises:
            TypeError: If an argument has the wrong type.
            ValueError: If the tensor map is longer (or shorter) than the shape,
                names a missing axis or one axis twice, a split dimension is not
                divisible, or the device matrix does not match ``world_size``.
        """
        shape = _slicing.check_shape(tuple(full_shape), "Layout", "full_shape")
        dev = _int_list(dev_mat, "dev_mat", allow_negative_one=False)
        tmap = _int_list(tensor_map, "tensor_map", allow_negative_one=True)
        if not isinstance(opt_shard_group, str):
            raise TypeError(
                "For 'Layout', the 'opt_shard_group' should be str, but got "
                f"{type(opt_shard_group).__name__}."
            )
        if len(tmap) != len(shape):
            raise ValueError(
                f"For 'Layout', the tensor map {list(tmap)} should have one entry per "
                f"dimension of shape {shape} ({len(shape)}), but has {len(tmap)}."
            )
        used = [k for k in tmap if k != -1]
        if len(set(used)) != len(used):
            raise ValueError(
                f"For 'Layout', the tensor map {list(tmap)} splits two dimensions over "
                "one device axis; give each split dimension its own axis."
            )
        for k in used:
            if k >= len(dev):
                raise ValueError(
                    f"For 'Layout', tensor map entry {k} names no axis of device "
                    f"matrix {list(dev)} (valid: -1 .. {len(dev) - 1})."
                )
        if world_size is not None and _prod(dev) != world_size:
            raise ValueError(
                f"For 'Layout', the device matrix {list(dev)} has {_prod(dev)} "
                f"devices, but the world size is {world_size}; make the product of "
                "the device matrix equal the number of ranks."
            )
        slice_shape = []
        for dim, k in zip(shape, tmap, strict=True):
            parts = 1 if k == -1 else dev[len(dev) - 1 - k]
            if dim % parts:
                raise ValueError(
                    f"For 'Layout', dimension {dim} of shape {shape} is not divisible "
                    f"by the {parts} devices it is split over (tensor map "
                    f"{list(tmap)}, device matrix {list(dev)})."
                )
            slice_shape.append(dim // parts)
        sl = tuple(slice_shape)
        return cls(dev, tmap, sl, 0, True, opt_shard_group, shape, sl)

    @classmethod
    def from_tuple(
        cls, layout: Sequence[Any], full_shape: Sequence[int] | None = None
    ) -> Layout:
        """Convert MindSpore's layout tuple (6 entries in r1.x, 8 in 2.x).

        ``full_shape`` is needed for the 6-entry form; the 8-entry form carries it.

        Raises:
            TypeError: If ``layout`` is not a tuple or list.
            ValueError: If it is too short, lacks the full shape, or is inconsistent.
        """
        if not isinstance(layout, (tuple, list)):
            raise TypeError(
                "For 'Layout.from_tuple', the 'layout' should be a tuple, but got "
                f"{type(layout).__name__}."
            )
        if len(layout) < 6:
            raise ValueError(
                "For 'Layout.from_tuple', the 'layout' should have at least 6 items "
                f"(dev_mat, tensor_map, slice_shape, ...), but got {len(layout)}."
            )
        if full_shape is None and len(layout) >= 7 and layout[6]:
            full_shape = layout[6]
        if full_shape is None:
            raise ValueError(
                "For 'Layout.from_tuple', a 6-item layout carries no full shape; pass "
                "full_shape=param.shape."
            )
        out = cls.create(full_shape, layout[0], layout[1], str(layout[5] or ""))
        if tuple(layout[2]) != out.slice_shape:
            raise ValueError(
                f"For 'Layout.from_tuple', the slice shape {tuple(layout[2])} does not "
                f"match {out.slice_shape}, the one its device matrix and tensor map "
                f"give for shape {out.full_shape}."
            )
        return out

    def to_tuple(self) -> tuple[Any, ...]:
        """MindSpore 2.10's layout tuple, lists as in ``parameter_layout_dict``."""
        return (
            list(self.dev_mat), list(self.tensor_map), list(self.slice_shape),
            self.field_size, self.uniform_split, self.opt_shard_group,
            list(self.full_shape), list(self.after_reshape_slice_shape),
        )  # fmt: skip

    # ---- derived quantities ---------------------------------------------------------

    @property
    def device_num(self) -> int:
        """How many devices the device matrix holds."""
        return _prod(self.dev_mat)

    @property
    def strategy(self) -> tuple[int, ...]:
        """Number of pieces along each tensor dimension (MindSpore's strategy)."""
        n = len(self.dev_mat)
        return tuple(1 if k == -1 else self.dev_mat[n - 1 - k] for k in self.tensor_map)

    @property
    def slice_count(self) -> int:
        """Number of distinct slices."""
        return _prod(self.strategy)

    @property
    def replicas(self) -> int:
        """How many ranks hold each slice."""
        return self.device_num // self.slice_count

    @property
    def opt_shard_size(self) -> int:
        """How many ways the optimizer state of a slice is split (1: not at all).

        MindSpore's optimizer parallel splits it over the slice's replicas.
        """
        return self.replicas if self.opt_shard_group else 1

    def _coords(self, rank: int) -> list[int]:
        if isinstance(rank, bool) or not isinstance(rank, int):
            raise TypeError(f"For 'Layout', the rank should be int, but got {rank!r}.")
        if not 0 <= rank < self.device_num:
            raise ValueError(
                f"For 'Layout', the rank should be in [0, {self.device_num}) for "
                f"device matrix {list(self.dev_mat)}, but got {rank}."
            )
        coords, rest = [], rank
        for d in reversed(self.dev_mat):
            rest, c = divmod(rest, d)
            coords.append(c)
        coords.reverse()
        return coords

    def slice_index(self, rank: int) -> int:
        """The slice ``rank`` holds, numbered row-major over `strategy` (MindSpore's
        ``_get_tensor_slice_index``); replicas share an index."""
        coords, n = self._coords(rank), len(self.dev_mat)
        index = 0
        for k, parts in zip(self.tensor_map, self.strategy, strict=True):
            index = index * parts + (0 if k == -1 else coords[n - 1 - k])
        return index

    def offsets(self, rank: int) -> tuple[int, ...]:
        """Where ``rank``'s slice starts in the full tensor."""
        self._coords(rank)
        offsets, _ = _slicing.offsets_from_layout(
            self.full_shape, self.dev_mat, self.tensor_map, rank
        )
        return offsets

    def slice_offsets(self, slice_index: int) -> tuple[int, ...]:
        """Where slice ``slice_index`` starts in the full tensor."""
        out = []
        pairs = zip(reversed(self.strategy), reversed(self.slice_shape), strict=True)
        for parts, size in pairs:
            slice_index, c = divmod(slice_index, parts)
            out.append(c * size)
        return tuple(reversed(out))

    def ranks_of_slice(self, slice_index: int) -> list[int]:
        """The ranks that hold slice ``slice_index``, ascending."""
        return [r for r in range(self.device_num) if self.slice_index(r) == slice_index]

    def first_holders(self) -> list[int]:
        """One rank per slice (the lowest), in slice order."""
        out: dict[int, int] = {}
        for r in range(self.device_num):
            out.setdefault(self.slice_index(r), r)
        return [out[i] for i in range(self.slice_count)]


def _as_layout(param: Any, layout: Any) -> Layout:
    if isinstance(layout, Layout):
        if layout.full_shape != tuple(param.shape):
            raise ValueError(
                f"For 'set_layout', the layout is for shape {layout.full_shape}, but "
                f"Parameter '{param.name}' has shape {tuple(param.shape)}."
            )
        return layout
    return Layout.from_tuple(layout, full_shape=param.shape)


def set_layout(
    param: Any,
    dev_mat: Sequence[int] | Layout | tuple,
    tensor_map: Sequence[int] | None = None,
    opt_shard_group: str = "",
    world_size: int | None = None,
) -> Layout:
    """Declare how ``param`` is sharded; return the `Layout`.

    Either ``set_layout(param, dev_mat, tensor_map)`` or
    ``set_layout(param, layout)`` with a `Layout` or MindSpore layout tuple. A lazy
    Parameter then materialises only its slice (``init_data()``,
    `spore.parallel.init_params`).

    Raises:
        TypeError: If ``param`` is not a Parameter.
        ValueError: If the layout does not fit the Parameter (see `Layout.create`)
            or, when ``world_size`` is given, the device matrix does not match it.
    """
    from spore.common.parameter import Parameter

    if not isinstance(param, Parameter):
        raise TypeError(
            f"For 'set_layout', the 'param' should be a Parameter, but got "
            f"{type(param).__name__}."
        )
    if tensor_map is None:
        layout = _as_layout(param, dev_mat)
        if world_size is not None and layout.device_num != world_size:
            Layout.create(layout.full_shape, layout.dev_mat, layout.tensor_map,
                          world_size=world_size)  # fmt: skip  # raises
    else:
        layout = Layout.create(
            param.shape,
            dev_mat,
            tensor_map,
            opt_shard_group,
            world_size,  # type: ignore[arg-type]
        )
    if not param.has_init and param.sliced and tuple(param.shape) != layout.slice_shape:
        raise ValueError(
            f"For 'set_layout', Parameter '{param.name}' already holds a slice of "
            f"shape {tuple(param.shape)}, not {layout.slice_shape}."
        )
    param._layout = layout
    return layout


def get_layout(param: Any) -> Layout | None:
    """The layout declared for ``param``, or None if it is not sharded."""
    layout = getattr(param, "_layout", None)
    if layout is None or isinstance(layout, Layout):
        return layout
    return Layout.from_tuple(layout, full_shape=param.shape)
