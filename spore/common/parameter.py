"""``Parameter`` and ``ParameterTuple``: the tensors a network trains.

A Parameter is a Tensor with a name and training flags. Its torch data is a
leaf tensor whose ``requires_grad`` follows the Parameter's (floating dtypes
only: torch cannot track gradients of integers). Every mutating method checks
all of its input before it changes anything.
"""

from __future__ import annotations

import copy as _copy
from typing import Any

import numpy as np
import torch

from spore import context as _context
from spore.common import _naming, _slicing
from spore.common import dtype as mstype
from spore.common.lazy import in_lazy_scope
from spore.common.tensor import Tensor, _rebuild_lazy


class _Flag:
    """A validated attribute: ``kind`` is "bool" (TypeError otherwise) or "int"."""

    def __init__(self, default: Any, kind: str = "bool") -> None:
        self.default = default
        self.kind = kind

    def __set_name__(self, owner: type, name: str) -> None:
        self.public = name
        self.private = "_" + name

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        return getattr(obj, self.private, self.default)

    def __set__(self, obj: Any, value: Any) -> None:
        if self.kind == "bool" and not isinstance(value, bool):
            raise TypeError(
                f"For 'Parameter', the '{self.public}' should be bool, but got "
                f"{type(value).__name__}."
            )
        if self.kind == "int" and (
            not isinstance(value, int) or isinstance(value, bool)
        ):
            raise TypeError(
                f"For 'Parameter', the '{self.public}' should be int, but got "
                f"{type(value).__name__}."
            )
        setattr(obj, self.private, value)


def _raise_flag_type_error(*values: Any) -> None:
    names = ("requires_grad", "layerwise_parallel", "parallel_optimizer")
    for flag, value in zip(names, values, strict=True):
        if type(value) is not bool:
            raise TypeError(
                f"For 'Parameter', the '{flag}' should be bool, but got "
                f"{type(value).__name__}."
            )


def _tracks_grad(data: torch.Tensor) -> bool:
    return data.is_floating_point() or data.is_complex()


class Parameter(Tensor):
    """A named Tensor that a network updates during training.

    Args:
        default_input: A Tensor (copied), a lazy Tensor from ``initializer``, an
            int (0-d Int32), a float (0-d Float32), a numpy array or a list.
        name: The name; ``None`` or blank gives the default name ``"Parameter"``.
        requires_grad: Whether gradients are computed for it.
        layerwise_parallel: Whether data parallelism leaves it out of broadcast
            and gradient aggregation.
        parallel_optimizer: Whether the parallel optimizer may shard it.
        storage_format: Accepted for MindSpore compatibility; no effect.
        device: Accepted for MindSpore compatibility; no effect.

    Raises:
        ValueError: If ``default_input`` is a bool or ``name`` is invalid.
        TypeError: If ``default_input`` or a flag has an unsupported type.

    Examples:
        >>> from spore import Parameter
        >>> print(Parameter(2.0, name="z"))
        Parameter (name=z, shape=(), dtype=Float32, requires_grad=True)
    """

    # Per-instance state at its default (see __init__).
    init_mode: Tensor | None = None
    sliced = False
    is_init = False
    unique = False
    is_param_ps = False
    init_in_server = False
    _inited_param: Parameter | None = None
    # A declared sharding (MindSpore's layout tuple, e.g. spore.parallel.Layout),
    # set by spore.parallel.set_layout or a layer's shard(); None: not sharded.
    _layout: tuple | None = None
    # On a parameter-server worker, the handle of a Parameter (or optimizer state)
    # whose values live on the servers; set by spore.parallel's PS client. None:
    # an ordinary Parameter. See Note [server-held parameters].
    _ps_remote: Any = None

    layerwise_parallel = _Flag(False)
    parallel_optimizer = _Flag(True)
    cache_enable = _Flag(False)
    key = _Flag(-1, "int")

    def __init__(
        self,
        default_input: Any,
        name: str | None = None,
        requires_grad: bool = True,
        layerwise_parallel: bool = False,
        parallel_optimizer: bool = True,
        storage_format: str = "",
        device: Any = None,
    ) -> None:
        if isinstance(default_input, (bool, np.bool_)):
            raise ValueError("For 'Parameter', the 'default_input' can not be a bool.")
        stored_name = _naming.check_parameter_name(name)
        if (
            type(requires_grad) is not bool
            or type(layerwise_parallel) is not bool
            or type(parallel_optimizer) is not bool
        ):
            _raise_flag_type_error(
                requires_grad, layerwise_parallel, parallel_optimizer
            )
        self.init = None
        self._init_key = None
        self._requires_grad = requires_grad
        self._take_default_input(default_input)
        self._name = stored_name
        # Flags at their class-level defaults are not stored per instance: creating
        # hundreds of lazy Parameters must stay as cheap as torch's meta tensors.
        if layerwise_parallel:
            self._layerwise_parallel = True
        if not parallel_optimizer:
            self._parallel_optimizer = False

    def _take_default_input(self, value: Any) -> None:
        if isinstance(value, Tensor):
            if value.init is not None:
                if in_lazy_scope() or _context._parallel_keeps_params_lazy():
                    self._set_lazy(
                        value.shape, value.dtype, value.init, value._init_key
                    )
                    self.init_mode = value
                    return
                # MindSpore parity: the source lazy tensor is materialised too, and
                # the Parameter takes its data (no second copy).
                self._set_data(value._materialized())
                return
            self._set_data(value._materialized().detach().clone())
        elif isinstance(value, int):
            self._set_data(torch.tensor(value, dtype=torch.int32))
        elif isinstance(value, float) and not isinstance(value, np.generic):
            # np.float64 subclasses float, but numpy scalars are a TypeError (2.10).
            self._set_data(torch.tensor(value, dtype=torch.float32))
        elif isinstance(value, (np.ndarray, list)):
            self._set_data(Tensor(value)._materialized())
        else:
            raise TypeError(
                "For 'Parameter', the 'default_input' should be a Tensor, int, float, "
                f"numpy array or list, but got {type(value).__name__}."
            )

    def _set_data(self, data: torch.Tensor) -> None:
        data.requires_grad_(self._requires_grad and _tracks_grad(data))
        super()._set_data(data)

    # ---- attributes --------------------------------------------------------------

    @property
    def name(self) -> str:
        return self._name

    @name.setter
    def name(self, value: Any) -> None:
        self._name = _naming.check_parameter_name(value)

    @property
    def requires_grad(self) -> bool:
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value: Any) -> None:
        if not isinstance(value, bool):
            raise TypeError(
                "For 'Parameter', the 'requires_grad' should be bool, but got "
                f"{type(value).__name__}."
            )
        self._requires_grad = value
        if self._data is not None:
            self._data.requires_grad_(value and _tracks_grad(self._data))

    @property
    def comm_fusion(self) -> int:
        return getattr(self, "_comm_fusion", 1)

    @comm_fusion.setter
    def comm_fusion(self, value: Any) -> None:
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(
                "For 'Parameter', the 'comm_fusion' should be int, but got "
                f"{type(value).__name__}."
            )
        if value < 0:
            raise ValueError(
                f"For 'Parameter', the 'comm_fusion' should be >= 0, but got {value}."
            )
        self._comm_fusion = value

    @property
    def cache_shape(self) -> tuple[int, ...] | list[int]:
        return getattr(self, "_cache_shape", [])

    @cache_shape.setter
    def cache_shape(self, value: Any) -> None:
        if not isinstance(value, (tuple, list)):
            raise TypeError(
                "For 'Parameter', the 'cache_shape' should be tuple or list, but got "
                f"{type(value).__name__}."
            )
        self._cache_shape = value

    @property
    def inited_param(self) -> Parameter | None:
        """The Parameter made by ``init_data`` when it is not this one (else None)."""
        return self._inited_param

    @property
    def is_default_input_init(self) -> bool:
        return self.init_mode is not None

    @property
    def data(self) -> Parameter:
        """The Parameter itself (r1.3; the seed's ``data: Parameter``)."""
        return self

    def value(self) -> Tensor:
        """A plain Tensor sharing this Parameter's data."""
        return Tensor._wrap(self._materialized())

    # ---- printing ------------------------------------------------------------------

    def __str__(self) -> str:
        return (
            f"Parameter (name={self._name}, shape={self._shape}, dtype={self._dtype}, "
            f"requires_grad={self._requires_grad})"
        )

    __repr__ = __str__

    # ---- data -----------------------------------------------------------------------

    def init_data(self, layout: Any = None, set_sliced: bool = False) -> Parameter:
        """Materialise a lazy Parameter (all of it, or this rank's slice) and return it.

        A Parameter that already holds data is returned unchanged.

        Args:
            layout: None for the whole tensor (or, when a layout was declared
                with ``spore.parallel.set_layout`` or a layer's ``shard``, this
                rank's slice under it), or MindSpore's layout tuple
                ``(dev_mat, tensor_map, slice_shape, ...)`` (at least 6 items;
                ``spore.parallel.Layout`` is one). The slice is computed alone
                and equals the same block of the unsharded tensor, bit for bit.
            set_sliced: The value of ``sliced`` after slicing.

        Raises:
            TypeError: If ``layout`` is not a tuple.
            ValueError: If ``layout`` is too short, does not fit the shape, or its
                device matrix does not match the torch.distributed world size.
        """
        remote = self._ps_remote
        if remote is not None and not remote.local:
            return self  # held by the servers: stays lazy on this worker
        return self._init_data_for_rank(layout, set_sliced, None)

    def _init_data_for_rank(
        self, layout: Any, set_sliced: bool, rank: int | None
    ) -> Parameter:
        """`init_data` for ``rank`` (None: this process's rank in torch.distributed).

        With ``layout`` None, a layout declared on the Parameter (``_layout``)
        is used, and the result is sliced. See Note [sharded init].
        """
        if self.init is None:
            return self
        if self._inited_param is not None:
            return self._inited_param
        if layout is None and self._layout is not None:
            layout, set_sliced = self._layout, True
        if layout is None:
            self._materialize_block((0,) * self.ndim, self._shape)
        else:
            offsets, block = self._check_layout(layout, rank)
            self._materialize_block(offsets, block)
            self.sliced = set_sliced
        self.init_mode = None
        return self

    def _check_layout(
        self, layout: Any, rank: int | None = None
    ) -> tuple[tuple[int, ...], tuple[int, ...]]:
        if not isinstance(layout, tuple):
            raise TypeError(
                "For 'Parameter.init_data', the 'layout' should be a tuple, but got "
                f"{type(layout).__name__}."
            )
        if len(layout) < 6:
            raise ValueError(
                "For 'Parameter.init_data', the 'layout' should have at least 6 items "
                f"(dev_mat, tensor_map, slice_shape, ...), but got {len(layout)}."
            )
        dev_mat, tensor_map, slice_shape = layout[0], layout[1], tuple(layout[2])
        if rank is None:
            rank = _global_rank()
            world = _world_size()
            devices = 1
            for d in dev_mat:
                devices *= d
            if world is not None and devices != world:
                raise ValueError(
                    f"For 'Parameter.init_data', the layout's device matrix "
                    f"{list(dev_mat)} has {devices} devices, but the world size is "
                    f"{world} (Parameter '{self._name}')."
                )
        offsets, block = _slicing.offsets_from_layout(
            self._shape, dev_mat, tensor_map, rank
        )
        if block != slice_shape:
            raise ValueError(
                f"For 'Parameter.init_data', the layout's slice shape {slice_shape} "
                f"does not match {block}, the slice its device matrix and tensor map "
                f"give for shape {self._shape}."
            )
        return offsets, block

    def set_data(self, data: Any, slice_shape: bool = False) -> Parameter:
        """Replace the values (copied in, cast to this Parameter's dtype); return self.

        Args:
            data: A Tensor (possibly lazy), int or float.
            slice_shape: Allow a different shape (the data is a slice); the value
                of ``sliced`` afterwards.

        Raises:
            TypeError: If ``data`` has an unsupported type, or is a float for an
                integer Parameter.
            ValueError: If the shape differs and ``slice_shape`` is False.
        """
        if isinstance(data, (int, float)) and not isinstance(data, Tensor):
            if isinstance(data, float) and mstype.kind(self._dtype) in ("int", "uint"):
                raise TypeError(
                    f"For 'Parameter.set_data', a float can not be set into Parameter "
                    f"'{self._name}' of dtype {self._dtype}; got {data!r}."
                )
            data = Tensor(data, self._dtype)
        elif not isinstance(data, Tensor):
            raise TypeError(
                "For 'Parameter.set_data', the 'data' should be a Tensor, int or "
                f"float, but got {type(data).__name__}."
            )
        if data.shape != self._shape and not slice_shape:
            raise ValueError(
                f"For 'Parameter.set_data', can not change the shape of Parameter "
                f"'{self._name}' from {self._shape} to {data.shape}; pass "
                "slice_shape=True to set a slice."
            )
        remote = self._ps_remote
        if remote is not None:  # See Note [server-held parameters]
            if slice_shape:
                raise ValueError(
                    f"For 'Parameter.set_data', Parameter '{self._name}' is trained on "
                    "the parameter servers; a slice (slice_shape=True) can not be set."
                )
            remote.assign(data)
            if not remote.local:
                return self
        if data.init is not None and self.init is not None:
            # Both lazy: adopt the new initializer, still without any storage.
            self._set_lazy(data.shape, self._dtype, data.init, data._init_key)
            self.init_mode = data
        else:
            values = data._materialized().detach()
            target = mstype.to_torch(self._dtype)
            if self._data is not None and values.shape == self._data.shape:
                with torch.no_grad():
                    self._data.copy_(values)  # in place: optimizers keep their tensor
            else:
                self._set_data(values.to(target, copy=True))
                self.init, self._init_key, self.init_mode = None, None, None
        self.sliced = slice_shape
        return self

    def set_param_ps(self, init_in_server: bool = False) -> None:
        """Train this Parameter on the parameter server (MindSpore r1.3).

        Its optimizer update then runs on the servers: the worker pushes the
        gradient and pulls the new value. With ``init_in_server`` (names ending
        in ``embedding_table`` only) the servers initialise and hold the table and
        the worker never materialises it.

        Raises:
            TypeError: If ``init_in_server`` is not a bool.
            RuntimeError: Unless this process is a parameter-server worker, server
                or scheduler (``set_ps_context(enable_ps=True)`` and ``MS_ROLE``,
                or a PS cluster started by ``communication.init()``), or for
                ``init_in_server`` on a name not ending with ``embedding_table``.
        """
        self._mark_param_ps(init_in_server, "Parameter.set_param_ps")
        client = _context._ps_client()
        if client is not None:  # a running PS worker: place it on the servers now
            client.register([self])

    def _mark_param_ps(self, init_in_server: bool, what: str) -> None:
        """`set_param_ps`'s checks and flags, without contacting the servers."""
        if not isinstance(init_in_server, bool):
            raise TypeError(
                f"For '{what}', the 'init_in_server' should be bool, "
                f"but got {type(init_in_server).__name__}."
            )
        if not _context._is_ps_mode():
            raise RuntimeError(
                f"For '{what}', parameter-server mode is off; call "
                "spore.set_ps_context(enable_ps=True) first (Parameter "
                f"'{self._name}')."
            )
        if _context._ps_role() is None:
            raise RuntimeError(
                f"For '{what}', this process has no parameter-server "
                "role: export MS_ROLE (MS_WORKER, MS_PSERVER or MS_SCHED), start it "
                "with 'python -m spore.ps_launch', or call spore.communication.init() "
                f"in a torchrun job first (Parameter '{self._name}')."
            )
        if init_in_server and not self._name.endswith("embedding_table"):
            raise RuntimeError(
                f"For '{what}', 'init_in_server' needs a name ending "
                f"with 'embedding_table', but got '{self._name}'."
            )
        if self._ps_remote is not None and init_in_server != self.init_in_server:
            raise RuntimeError(
                f"For '{what}', Parameter '{self._name}' is already "
                "registered with the servers; 'init_in_server' cannot change now."
            )
        self.is_param_ps = True
        self.init_in_server = init_in_server

    # ---- server-held values (parameter server, issue 7) ------------------------------
    # Note [server-held parameters]: on a PS worker, an init_in_server table and
    # the optimizer state of every PS parameter live on the servers only. Their
    # Parameters stay lazy here (has_init stays True: nothing is allocated); the
    # training internals see a 0-d "anchor" leaf instead of data (a lookup's
    # autograd function hangs the real, sparse gradient on it); reading the values
    # (asnumpy, a checkpoint) fetches a copy from the servers, and set_data sends
    # the new values to them.

    def _materialized(self) -> torch.Tensor:
        remote = self._ps_remote
        if remote is not None and not remote.local:
            return remote.anchor
        return super()._materialized()

    def to_torch(self) -> torch.Tensor:
        remote = self._ps_remote
        if remote is not None and not remote.local:
            raise RuntimeError(
                f"For 'to_torch', Parameter '{self._name}' is held by the parameter "
                "servers and has no data on this worker; asnumpy() fetches a copy."
            )
        return super()._materialized()

    def asnumpy(self) -> np.ndarray:
        remote = self._ps_remote
        if remote is not None and not remote.local:
            return remote.fetch().numpy()
        return super().asnumpy()

    # ---- copies ---------------------------------------------------------------------

    def clone(self, init: Any = "same") -> Parameter:
        """A new Parameter with copied data and flags (``init``: new values instead).

        Raises:
            ValueError, TypeError: As ``initializer`` does for a bad ``init``.
        """
        from spore.common.initializer import initializer

        fresh = None
        if not (isinstance(init, str) and init == "same"):
            fresh = initializer(init, self._shape, self._dtype)  # validate first
        if fresh is not None and self.is_param_ps and fresh.init is not None:
            # An optimizer's state for a PS parameter lives on the servers; the
            # worker's copy is never stepped, so it stays lazy (Note [PS step]).
            out = self._copy_state(self._requires_grad, lazy=fresh)
            fresh = None
        elif fresh is not None and self.init is None:
            # New values for a materialised Parameter (an optimizer's moments): make
            # them straight into the clone; copying this Parameter's data first, to
            # overwrite it at once, doubled the memory and time of building state.
            # They live where this Parameter lives: an optimizer updates both in
            # one kernel, which needs them on one device (a GPU, say).
            lazy = fresh.init is not None
            values = fresh._materialized().detach()
            device = self._data.device if self._data is not None else values.device
            values = values.to(device, mstype.to_torch(self._dtype), copy=not lazy)
            out = self._copy_state(self._requires_grad, values)
            fresh = None
        else:
            out = self._copy_state(self._requires_grad)
        out._layerwise_parallel = self.layerwise_parallel
        out._parallel_optimizer = self.parallel_optimizer
        out._comm_fusion = self.comm_fusion
        out._cache_enable = self.cache_enable
        out._cache_shape = _copy.copy(self.cache_shape)
        if fresh is not None:
            out.set_data(fresh)
        return out

    def copy(self) -> Parameter:
        """Same as ``clone()``."""
        return self.clone()

    def _copy_state(
        self,
        requires_grad: bool,
        data: torch.Tensor | None = None,
        lazy: Tensor | None = None,
    ) -> Parameter:
        """A new Parameter with this one's name and a copy of its data (or laziness),
        or ``data`` (adopted, not copied) or the lazy Tensor ``lazy``'s initializer
        instead."""
        out = Parameter.__new__(Parameter)
        out.init, out._init_key, out.init_mode = None, None, None
        out._requires_grad = requires_grad
        if data is not None:
            out._set_data(data)
        elif lazy is not None:
            out._set_lazy(lazy._shape, lazy._dtype, lazy.init, lazy._init_key)
            out.init_mode = lazy
        elif self.init is not None:
            out._set_lazy(self._shape, self._dtype, self.init, self._init_key)
            out.init_mode = self.init_mode
        else:
            out._set_data(self._materialized().detach().clone())
        out._name = self._name
        out.sliced, out.is_init, out.unique = False, False, False
        out._inited_param = None
        out.is_param_ps, out.init_in_server = False, False
        return out

    def _data_as_tensor(self) -> Tensor:
        if self.init is not None:
            return _rebuild_lazy(self._shape, self._dtype, self.init, self._init_key)
        return Tensor._wrap(self._materialized().detach().clone())

    def __reduce_ex__(self, protocol: Any) -> tuple[Any, ...]:
        # MindSpore parity: copy.copy and pickle keep data, name and two flags only.
        args = (
            self._data_as_tensor(),
            self._name,
            self._requires_grad,
            self.layerwise_parallel,
        )
        return (Parameter, args)

    def __deepcopy__(self, memo: dict[int, Any]) -> Parameter:
        # MindSpore 2.10 keeps requires_grad and resets layerwise_parallel.
        out = self._copy_state(self._requires_grad)
        out._inited_param = self._inited_param
        memo[id(self)] = out
        return out


def _global_rank() -> int:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank()
    return 0


def _world_size() -> int | None:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_world_size()
    return None


class ParameterTuple(tuple):
    """A tuple of Parameters with distinct names.

    Explicitly named duplicates are refused; Parameters that still carry the
    default name are renamed ``Parameter_0``, ``Parameter_1``... (r1.3).

    Raises:
        TypeError: If an element is not a Parameter.
        ValueError: If two distinct Parameters share an explicit name.
    """

    def __new__(cls, iterable: Any) -> ParameterTuple:
        data = tuple(iterable)
        distinct: dict[int, Parameter] = {}
        for index, item in enumerate(data):
            if not isinstance(item, Parameter):
                raise TypeError(
                    f"For 'ParameterTuple', every element should be a Parameter, but "
                    f"element {index} is a {type(item).__name__}."
                )
            distinct.setdefault(id(item), item)
        renames = _default_name_renames(list(distinct.values()))
        for param, new_name in renames:
            param._name = new_name
        return tuple.__new__(cls, data)

    def clone(self, prefix: str, init: Any = "same") -> ParameterTuple:
        """Clone every Parameter, naming each clone ``prefix + "." + name``.

        Raises:
            TypeError: If ``prefix`` is not a str.
            ValueError: If ``prefix`` is not a valid prefix.
        """
        prefix = _naming.check_clone_prefix(prefix)
        clones = []
        for param in self:
            clone = param.clone(init)
            clone.name = f"{prefix}.{clone.name}"
            clones.append(clone)
        return ParameterTuple(clones)


def _default_name_renames(params: list[Parameter]) -> list[tuple[Parameter, str]]:
    """Renames that make default-named Parameters distinct; raises on real clashes."""
    default = _naming.PARAMETER_NAME_DEFAULT
    explicit: dict[str, Parameter] = {}
    defaults = [p for p in params if p.name == default]
    for param in params:
        if param.name == default:
            continue
        if param.name in explicit:
            raise ValueError(
                f"For 'ParameterTuple', the name '{param.name}' is used by two "
                "different Parameters; give each a unique name."
            )
        explicit[param.name] = param
    if len(defaults) < 2:
        return []
    renames = [(p, f"{default}_{i}") for i, p in enumerate(defaults)]
    for _, new_name in renames:
        if new_name in explicit:
            raise ValueError(
                f"For 'ParameterTuple', renaming unnamed Parameters to '{new_name}' "
                "clashes with a Parameter already named so; name the Parameters."
            )
    return renames
