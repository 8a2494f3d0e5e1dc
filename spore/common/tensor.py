"""``spore.Tensor``: MindSpore's Tensor over a ``torch.Tensor``, with lazy init.

A Tensor either holds data (``_data``, a ``torch.Tensor``) or is lazy: it holds
only ``shape``, ``dtype``, an Initializer (``init``) and the key that fixes its
random values (see Note [init keys] in ``seed.py``). Any access that needs
values materialises a lazy Tensor in place.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from spore.common import _slicing
from spore.common import dtype as mstype
from spore.common import seed as _seed
from spore.common._tensor_format import format_tensor_repr
from spore.common._tensor_ops import TensorOperators

_SCALAR_INPUTS = (bool, int, float, complex, np.generic)


def _check_dtype(dtype: Any, what: str = "Tensor") -> None:
    if dtype is not None and not mstype.is_number(dtype):
        raise TypeError(
            f"For '{what}', the 'dtype' should be a spore number type such as "
            f"spore.float32, but got {dtype!r}."
        )


def _numpy_from_input(input_data: Any, dtype: mstype.Type | None) -> np.ndarray:
    """Turn list/tuple/scalar/ndarray input into an ndarray with MindSpore's dtypes."""
    if isinstance(input_data, np.ndarray):
        arr = input_data
    else:
        try:
            arr = np.array(input_data)
        except ValueError as err:  # ragged nesting
            raise TypeError(
                f"For 'Tensor', the 'input_data' should be a rectangular nested "
                f"list/tuple of numbers, but got {input_data!r}."
            ) from err
        # MindSpore 2.x: Python floats (alone or in lists) default to float32. Not
        # numpy scalars (np.float64 subclasses float but stays Float64), and not
        # when a dtype is given (Tensor(0.1, float64) must not round through float32).
        if (
            dtype is None
            and arr.dtype == np.float64
            and isinstance(input_data, (float, list, tuple))
            and not isinstance(input_data, np.generic)
        ):
            arr = arr.astype(np.float32)
    if arr.dtype.kind not in "biufc":
        raise TypeError(
            f"For 'Tensor', the 'input_data' should hold bool or numbers, but got "
            f"numpy dtype {arr.dtype}."
        )
    return arr


def _torch_from_numpy(arr: np.ndarray, dtype: mstype.Type | None) -> torch.Tensor:
    """A new torch tensor (own storage) holding ``arr`` cast like numpy's ``astype``."""
    if dtype is None:
        # torch.from_numpy refuses non-native byte order and numpy's alias types
        # (np.array(2**63) is ulonglong); the canonical native dtype of the same
        # kind and size is what torch accepts.
        native = np.dtype(arr.dtype.newbyteorder("=").str)
        owned = np.array(arr, native, order="C", copy=True)
        return torch.from_numpy(owned.view(native))
    if dtype is mstype.bfloat16:
        return torch.from_numpy(np.array(arr, np.float32, order="C")).to(torch.bfloat16)
    return torch.from_numpy(np.array(arr, mstype.dtype_to_nptype(dtype), order="C"))


class Tensor(TensorOperators):
    """A multi-dimensional array of one dtype, backed by a ``torch.Tensor``.

    Args:
        input_data: A Tensor, numpy array, list, tuple or Python/numpy scalar.
        dtype: A spore number type; inferred from ``input_data`` when None.
        shape: The shape of a lazy (``init``) or uninitialised tensor.
        init: An Initializer that produces the values lazily.
        const_arg: Accepted for MindSpore compatibility; no effect.
        device: Accepted for MindSpore compatibility; no effect.

    Raises:
        TypeError: If ``input_data`` or ``dtype`` has an unsupported type.
        ValueError: If ``input_data`` is combined with ``shape`` or ``init``, or
            ``init`` is given without ``shape`` and ``dtype``.

    Examples:
        >>> import numpy as np
        >>> from spore import Tensor
        >>> Tensor(np.ones((2, 2), np.float32)).shape
        (2, 2)
    """

    # A Tensor is not hashable by value; identity is what sets and dicts need.
    __hash__ = object.__hash__

    def __init__(
        self,
        input_data: Any = None,
        dtype: mstype.Type | None = None,
        shape: Any = None,
        init: Any = None,
        const_arg: bool = False,
        device: Any = None,
    ) -> None:
        if input_data is not None and shape is not None:
            raise ValueError(
                "For 'Tensor', 'input_data' and 'shape' should not both be given; "
                f"got input_data={input_data!r} and shape={shape!r}."
            )
        if init is not None and (shape is None or dtype is None):
            raise ValueError(
                "For 'Tensor', 'init' needs both 'shape' and 'dtype', but got "
                f"shape={shape!r} and dtype={dtype!r}."
            )
        _check_dtype(dtype)
        self.init = None
        self._init_key: tuple[int, int] | None = None
        if init is not None:
            self._set_lazy(
                _slicing.check_shape(shape, "Tensor"),
                dtype,
                init,
                _seed.next_init_key(),
            )
            return
        if input_data is None:
            if shape is None or dtype is None:
                raise TypeError(
                    "For 'Tensor', 'input_data' should be given (or 'init' with "
                    "'shape' and 'dtype'), but got nothing."
                )
            shape = _slicing.check_shape(shape, "Tensor")
            self._set_data(torch.zeros(shape, dtype=mstype.to_torch(dtype)))
            return
        self._set_data(self._convert_input(input_data, dtype))

    @staticmethod
    def _convert_input(input_data: Any, dtype: mstype.Type | None) -> torch.Tensor:
        if isinstance(input_data, Tensor):
            source = input_data._materialized()
            if dtype is None or dtype is input_data.dtype:
                return source.detach()  # MindSpore 2.x: Tensor(t) shares t's storage
            return source.detach().to(mstype.to_torch(dtype))
        if not isinstance(input_data, (np.ndarray, list, tuple, *_SCALAR_INPUTS)):
            raise TypeError(
                "For 'Tensor', the 'input_data' should be a Tensor, numpy array, list, "
                f"tuple or number, but got {type(input_data).__name__}."
            )
        return _torch_from_numpy(_numpy_from_input(input_data, dtype), dtype)

    # ---- state ------------------------------------------------------------------

    def _set_data(self, data: torch.Tensor) -> None:
        self._data: torch.Tensor | None = data
        self._dtype = mstype.from_torch(data.dtype)
        self._shape = tuple(data.shape)

    def _set_lazy(
        self,
        shape: tuple[int, ...],
        dtype: mstype.Type,
        init: Any,
        key: tuple[int, int],
    ) -> None:
        self._data = None
        self._shape = shape
        self._dtype = dtype
        self.init = init
        self._init_key = key

    @classmethod
    def _lazy(cls, shape: tuple[int, ...], dtype: Any, init: Any) -> Tensor:
        """A lazy Tensor from an already checked shape (``initializer``'s fast path).

        Raises:
            ValueError: If ``dtype`` is None.
            TypeError: If ``dtype`` is not a spore number type.
        """
        if dtype is None:
            raise ValueError("For 'initializer', the 'dtype' should not be None.")
        _check_dtype(dtype, "initializer")
        out = Tensor.__new__(Tensor)
        out._set_lazy(shape, dtype, init, _seed.next_init_key())
        return out

    def _materialized(self) -> torch.Tensor:
        """The torch data, materialising a lazy tensor first."""
        if self._data is None:
            self.init_data()
        assert self._data is not None
        return self._data

    @classmethod
    def _wrap(cls, data: torch.Tensor) -> Tensor:
        """A Tensor around ``data`` without copying (internal fast path)."""
        out = Tensor.__new__(Tensor)
        out.init = None
        out._init_key = None
        out._set_data(data)
        return out

    # ---- the torch bridge ----------------------------------------------------------

    @classmethod
    def from_torch(cls, data: torch.Tensor) -> Tensor:
        """Wrap a ``torch.Tensor`` without copying: both see the same storage.

        Raises:
            TypeError: If ``data`` is not a torch.Tensor or has no spore dtype.
        """
        if not isinstance(data, torch.Tensor):
            raise TypeError(
                "For 'Tensor.from_torch', the input should be a torch.Tensor, but got "
                f"{type(data).__name__}."
            )
        return cls._wrap(data)

    def to_torch(self) -> torch.Tensor:
        """The underlying ``torch.Tensor`` (no copy; autograd sees the same tensor)."""
        return self._materialized()

    # ---- properties ------------------------------------------------------------

    @property
    def shape(self) -> tuple[int, ...]:
        return self._shape

    @property
    def dtype(self) -> mstype.Type:
        return self._dtype

    @property
    def size(self) -> int:
        return math.prod(self._shape)

    @property
    def ndim(self) -> int:
        return len(self._shape)

    @property
    def itemsize(self) -> int:
        return mstype.type_size_in_bytes(self._dtype)

    @property
    def nbytes(self) -> int:
        return self.size * self.itemsize

    @property
    def strides(self) -> tuple[int, ...]:
        """Byte strides of the C-contiguous layout, numpy style."""
        step, out = self.itemsize, []
        for dim in reversed(self._shape):
            out.append(step)
            step *= dim
        return tuple(reversed(out))

    @property
    def has_init(self) -> bool:
        return self.init is not None

    # ---- lazy initialisation -----------------------------------------------------

    def init_data(
        self,
        slice_index: int | None = None,
        shape: Any = None,
        opt_shard_group: Any = None,
    ) -> Tensor:
        """Materialise a lazy tensor in place and return it.

        With ``slice_index`` and ``shape`` only that block of the full tensor is
        produced, and its values equal the same block of the full tensor bit for bit.

        Args:
            slice_index: Row-major number of the block among blocks of ``shape``.
            shape: The shape to produce; default: the full shape.
            opt_shard_group: Optimizer-shard group; not supported yet (must be None).

        Raises:
            TypeError: If the tensor is not lazy, or its `init` is not an Initializer.
            ValueError: If ``shape``/``slice_index`` do not select a block.
        """
        if self.init is None:
            raise TypeError(
                "For 'init_data', the Tensor should be lazy (created with 'init'), "
                "but it already holds data."
            )
        if not callable(getattr(self.init, "_fill", None)):
            # MindSpore parity: Tensor(init="ones") is stored, then fails here (2.10:
            # TypeError, 'str' object is not callable).
            raise TypeError(
                "For 'init_data', the 'init' should be an Initializer such as One(), "
                f"but got {type(self.init).__name__}; build the tensor with "
                "initializer(init, shape, dtype)."
            )
        if opt_shard_group is not None:
            raise NotImplementedError(
                "For 'init_data', 'opt_shard_group' is not supported yet; got "
                f"{opt_shard_group!r}."
            )
        full = self._shape
        block = full if shape is None else _slicing.check_shape(shape, "init_data")
        offsets = _slicing.offsets_from_slice_index(full, block, slice_index or 0)
        if offsets is None:
            if not getattr(self.init, "position_independent", False):
                raise ValueError(
                    f"For 'init_data', the 'shape' {block} should tile the full shape "
                    f"{full} so that the slice's values are those of the full tensor."
                )
            offsets = (0,) * len(block)
        self._materialize_block(offsets, block)
        return self

    def _materialize_block(
        self, offsets: tuple[int, ...], block: tuple[int, ...]
    ) -> None:
        """Produce the block at ``offsets`` of the full tensor and make it the data."""
        assert self._init_key is not None
        torch_dtype = mstype.to_torch(self._dtype)
        if self._dtype is mstype.bfloat16:  # numpy has no bfloat16: go through float32
            staging = np.empty(block, np.float32)
            self.init._fill(staging, self._shape, offsets, self._init_key)
            data = torch.from_numpy(staging).to(torch_dtype)
        else:
            data = torch.empty(block, dtype=torch_dtype)
            self.init._fill(data.numpy(), self._shape, offsets, self._init_key)
        self._set_data(data)
        self.init = None
        self._init_key = None

    # ---- numpy and Python conversions -------------------------------------------

    def asnumpy(self) -> np.ndarray:
        """The values as a numpy array sharing memory with this Tensor (a copy in
        host memory for a Tensor on a GPU, as MindSpore's does).

        Raises:
            TypeError: For bfloat16, which numpy cannot hold.
        """
        data = self._materialized()
        if data.dtype == torch.bfloat16:
            raise TypeError(
                "For 'asnumpy', numpy has no bfloat16; convert first with "
                "t.astype(spore.float32).asnumpy()."
            )
        return data.detach().cpu().numpy()  # cpu(): no copy for host tensors

    @classmethod
    def from_numpy(cls, array: np.ndarray) -> Tensor:
        """A Tensor sharing memory with ``array`` (no copy).

        Raises:
            TypeError: If ``array`` is not a numpy array of a supported dtype.
        """
        if not isinstance(array, np.ndarray):
            raise TypeError(
                "For 'Tensor.from_numpy', the input should be a numpy.ndarray, but got "
                f"{type(array).__name__}."
            )
        mstype.from_numpy(array.dtype)  # refuses object/str arrays
        contiguous = np.ascontiguousarray(array)
        # A view as the canonical type (no copy): torch refuses numpy's alias types
        # such as ulonglong, which np.array(2**63) produces.
        canonical = contiguous.view(np.dtype(contiguous.dtype.str))
        return cls._wrap(torch.from_numpy(canonical))

    def _values_for_display(self) -> np.ndarray:
        data = self._materialized().detach().cpu()
        if data.dtype == torch.bfloat16:
            data = data.float()
        return data.numpy()

    def item(self, index: Any = None) -> Any:
        """The Python scalar of a one-element tensor (or of ``self[index]``)."""
        values = self._values_for_display()
        if index is not None:
            if isinstance(index, tuple):
                return values[index].item()
            return values.item(index)
        if values.size != 1:
            raise ValueError(
                f"For 'item', the Tensor should have one element, but its shape is "
                f"{self._shape}."
            )
        return values.item()

    def tolist(self) -> Any:
        return self._values_for_display().tolist()

    def astype(self, dtype: Any, copy: bool = True) -> Tensor:
        """A new Tensor with values cast to ``dtype`` (spore type, numpy type or name).

        Raises:
            TypeError: If ``dtype`` names no supported type.
        """
        target = _resolve_dtype(dtype)
        return Tensor._wrap(self._materialized().to(mstype.to_torch(target), copy=True))

    def _one_element(self, what: str) -> Any:
        if self.size != 1:
            raise ValueError(
                f"For '{what}', only a Tensor with one element can be converted, but "
                f"its shape is {self._shape}."
            )
        return self._values_for_display().item()

    def __float__(self) -> float:
        return float(self._one_element("float"))

    def __int__(self) -> int:
        return int(self._one_element("int"))

    def __bool__(self) -> bool:
        return bool(self._one_element("bool"))

    def __index__(self) -> int:
        if mstype.kind(self._dtype) not in ("int", "uint"):
            raise TypeError(
                f"For '__index__', the Tensor should be an int, got {self._dtype}."
            )
        return int(self._one_element("__index__"))

    def __len__(self) -> int:
        if not self._shape:
            raise TypeError("len() of a 0-d Tensor is undefined.")
        return self._shape[0]

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        # numpy 2 trusts __array__ to honour `copy`: np.array(t) (copy=True) must not
        # hand out the Tensor's own memory; np.asarray(t) (copy=None) may share it.
        values = self._values_for_display()
        if dtype is not None and values.dtype != np.dtype(dtype):
            return values.astype(dtype)
        return values.copy() if copy else values

    # ---- printing and pickling -------------------------------------------------

    def __str__(self) -> str:
        if self.init is not None:  # MindSpore 2.x prints lazy tensors without values
            return _uninitialized_text(self)
        return str(self._values_for_display())

    def __repr__(self) -> str:
        if self.init is not None:
            return _uninitialized_text(self)
        return format_tensor_repr(self._values_for_display(), str(self._dtype))

    def __reduce__(self) -> tuple[Any, ...]:
        if self.init is not None:
            args = (self._shape, self._dtype, self.init, self._init_key)
            return (_rebuild_lazy, args)
        return (Tensor, (self._values_for_display().copy(), self._dtype))


def _uninitialized_text(tensor: Tensor) -> str:
    shape = list(tensor.shape)
    return f"Tensor(shape={shape}, dtype={tensor.dtype}, value=\n<uninitialized>)"


def _rebuild_lazy(shape, dtype, init, key) -> Tensor:
    out = Tensor.__new__(Tensor)
    out._set_lazy(shape, dtype, init, key)
    return out


def _resolve_dtype(dtype: Any) -> mstype.Type:
    """A spore type from a spore type, numpy type/dtype, or a name like ``'int8'``."""
    if isinstance(dtype, mstype.Type):
        _check_dtype(dtype, "astype")
        return dtype
    if isinstance(dtype, str) and dtype.lower() == "bfloat16":
        return mstype.bfloat16
    try:
        return mstype.from_numpy(np.dtype(dtype))
    except TypeError as err:
        raise TypeError(
            f"For 'astype', the 'dtype' should be a spore type, numpy type or type "
            f"name, but got {dtype!r}."
        ) from err

