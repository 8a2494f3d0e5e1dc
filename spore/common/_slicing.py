"""Where a slice of a tensor sits in the whole: offsets from a slice index or a layout.

Pure index arithmetic shared by ``Tensor.init_data`` and ``Parameter.init_data``;
it knows nothing of processes (the caller supplies the rank).
"""

from __future__ import annotations

from collections.abc import Sequence


def check_shape(shape: object, what: str, arg: str = "shape") -> tuple[int, ...]:
    """Validate a shape (a list/tuple of Python ints > 0, or one int); return a tuple.

    Raises:
        ValueError: If a dimension is not an int > 0.
    """
    if type(shape) is tuple or type(shape) is list:
        for dim in shape:  # fast path: plain positive ints (the common case)
            if type(dim) is not int or dim <= 0:
                break
        else:
            return tuple(shape)
    if isinstance(shape, int):
        shape = (shape,)
    if not isinstance(shape, (list, tuple)):
        raise ValueError(
            f"For '{what}', the '{arg}' should be a tuple or list of positive ints, "
            f"but got {shape!r}."
        )
    for dim in shape:
        # bool is an int and MindSpore accepts True as 1; numpy ints are refused.
        if type(dim) not in (int, bool) or dim <= 0:
            raise ValueError(
                f"For '{what}', every dimension of '{arg}' should be an int > 0, "
                f"but got {dim!r} in {shape!r}."
            )
    return tuple(int(d) for d in shape)


def offsets_from_slice_index(
    full_shape: tuple[int, ...], slice_shape: tuple[int, ...], slice_index: int
) -> tuple[int, ...] | None:
    """Offsets of block ``slice_index`` when ``slice_shape`` tiles ``full_shape``.

    Blocks are numbered row-major over the grid ``full_shape // slice_shape``.
    Returns None when ``slice_shape`` does not tile ``full_shape``.

    Raises:
        ValueError: If ``slice_index`` is outside the grid.
    """
    if len(full_shape) != len(slice_shape) or any(
        f % s for f, s in zip(full_shape, slice_shape, strict=True)
    ):
        return None
    grid = [f // s for f, s in zip(full_shape, slice_shape, strict=True)]
    count = 1
    for g in grid:
        count *= g
    if type(slice_index) is not int or not 0 <= slice_index < count:
        raise ValueError(
            f"For 'init_data', the 'slice_index' should be an int in [0, {count}) for "
            f"slices of shape {slice_shape} of {full_shape}, but got {slice_index!r}."
        )
    offsets = []
    for g, s in zip(reversed(grid), reversed(slice_shape), strict=True):
        slice_index, coord = divmod(slice_index, g)
        offsets.append(coord * s)
    return tuple(reversed(offsets))


def offsets_from_layout(
    full_shape: tuple[int, ...],
    dev_mat: Sequence[int],
    tensor_map: Sequence[int],
    rank: int,
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(offsets, slice shape) of ``rank``'s slice under a MindSpore layout.

    ``dev_mat`` is the device matrix (row-major over ranks); ``tensor_map[i]`` is
    -1 when tensor dim ``i`` is not split, else k: split over device-matrix axis
    ``len(dev_mat) - 1 - k`` (MindSpore counts device axes from the right).

    Raises:
        ValueError: If the layout does not fit the shape or the rank.
    """
    if len(tensor_map) != len(full_shape):
        raise ValueError(
            f"For 'init_data', the layout's tensor map {list(tensor_map)} should have "
            f"one entry per dimension of shape {full_shape}."
        )
    devices = 1
    for d in dev_mat:
        devices *= d
    if not 0 <= rank < devices:
        raise ValueError(
            f"For 'init_data', the rank should be in [0, {devices}) for device matrix "
            f"{list(dev_mat)}, but got {rank}."
        )
    coords = []
    rest = rank
    for d in reversed(dev_mat):
        rest, c = divmod(rest, d)
        coords.append(c)
    coords.reverse()
    offsets, shape = [], []
    for dim, axis in zip(full_shape, tensor_map, strict=True):
        if axis == -1:
            offsets.append(0)
            shape.append(dim)
            continue
        if not 0 <= axis < len(dev_mat):
            raise ValueError(
                f"For 'init_data', tensor map entry {axis} does not name an axis of "
                f"device matrix {list(dev_mat)}."
            )
        parts = dev_mat[len(dev_mat) - 1 - axis]
        if dim % parts:
            raise ValueError(
                f"For 'init_data', dimension {dim} of shape {full_shape} is not "
                f"divisible by the {parts} devices it is split over."
            )
        size = dim // parts
        offsets.append(coords[len(dev_mat) - 1 - axis] * size)
        shape.append(size)
    return tuple(offsets), tuple(shape)
