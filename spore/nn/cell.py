"""``Cell``: the base class of networks; it owns Parameters and names them by path.

Assigning a Parameter, a ParameterTuple or a Cell to an attribute registers it
(``_params`` / ``_cells``), so it is found by ``parameters_and_names`` and named
after its attribute path (``layer1.conv.weight``). Name rules live in
``_cell_naming.py``; see Note [unique parameter names] there.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

from spore import context as _context
from spore.common.parameter import Parameter, ParameterTuple
from spore.common.tensor import Tensor
from spore.nn import _cell_naming

_MISSING = object()


class _Snapshot:
    """What a registration may change, so a refused one leaves the Cell unchanged."""

    def __init__(self, cell: Cell, params: list[Parameter], cells: list[Cell]) -> None:
        self.cell = cell
        self.prefixes = [(c, c.__dict__.get("_param_prefix", "")) for c in cells]
        self.attrs = dict(cell.__dict__)
        self.params = dict(cell.__dict__["_params"])
        self.cells = dict(cell.__dict__["_cells"])
        self.names = [(p, p.name) for p in params]

    def restore(self) -> None:
        state = self.cell.__dict__
        state.clear()
        state.update(self.attrs)
        state["_params"].clear()
        state["_params"].update(self.params)
        state["_cells"].clear()
        state["_cells"].update(self.cells)
        for param, name in self.names:
            param._name = name
        for sub, prefix in self.prefixes:
            sub.__dict__["_param_prefix"] = prefix


class Cell:
    """The base class of every network layer and network.

    Parameters, ParameterTuples and Cells assigned as attributes are registered
    and named by attribute path. A plain list or tuple of Parameters is only
    name-checked (MindSpore 2.10), not registered.

    Args:
        auto_prefix: Whether sub-cells assigned to this Cell get their Parameters
            renamed with the attribute name as prefix. Default: ``True``.
        flags: Flags stored on the Cell (see `add_flags`). Default: ``None``.

    Raises:
        TypeError: If ``auto_prefix`` is not a bool or ``flags`` not a dict.

    Examples:
        >>> import numpy as np
        >>> from spore import Parameter, Tensor, nn
        >>> class Net(nn.Cell):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.w = Parameter(Tensor(np.ones(2, np.float32)))
        >>> [name for name, _ in Net().parameters_and_names()]
        ['w']
    """

    training: bool

    def __init__(self, auto_prefix: bool = True, flags: dict[str, Any] | None = None):
        if not isinstance(auto_prefix, bool):
            raise TypeError(
                "For 'Cell', the 'auto_prefix' should be bool, but got "
                f"{type(auto_prefix).__name__}."
            )
        if flags is not None and not isinstance(flags, dict):
            raise TypeError(
                "For 'Cell', the 'flags' should be dict or None, but got "
                f"{type(flags).__name__}."
            )
        state = self.__dict__
        state["_params"] = OrderedDict()
        state["_cells"] = OrderedDict()
        state["_auto_prefix"] = auto_prefix
        state["_list_names"] = {}  # name -> (list attribute, Parameter)
        state["_tuple_keys"] = {}  # ParameterTuple attribute -> its _params keys
        state["_ready"] = False  # checked and materialised for __call__
        state["_param_prefix"] = ""  # what the last renaming put before own paths
        state["_mindspore_flags"] = {}
        state["training"] = False
        state["requires_grad"] = False
        if flags:
            self.add_flags(**flags)

    # ---- attributes ------------------------------------------------------------

    def __getattr__(self, name: str) -> Any:
        # Only called when normal lookup fails: registered Parameters and Cells.
        state = self.__dict__
        params = state.get("_params")
        if params is not None and name in params:
            return params[name]
        cells = state.get("_cells")
        if cells is not None and name in cells:
            return cells[name]
        raise AttributeError(
            f"'{type(self).__name__}' object has no attribute '{name}'."
        )

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, Parameter):
            self._register(name, lambda: self._set_param_attr(name, value), [value])
        elif isinstance(value, ParameterTuple):
            self._register(name, lambda: self._set_tuple_attr(name, value), list(value))
        elif _cell_naming.is_parameter_sequence(value):
            self._set_list_attr(name, value)
        elif isinstance(value, Cell):
            renamed = [p for _, p in value.parameters_and_names()]
            subcells = [c for _, c in value.cells_and_names()]
            self._register(
                name, lambda: self._set_cell_attr(name, value), renamed, subcells
            )
        else:
            self._set_other_attr(name, value)

    def __delattr__(self, name: str) -> None:
        state = self.__dict__
        if name in state.get("_params", ()):
            del state["_params"][name]
        elif name in state.get("_cells", ()):
            del state["_cells"][name]
        else:
            object.__delattr__(self, name)
            for key in state.get("_tuple_keys", {}).pop(name, ()):
                state["_params"].pop(key, None)  # a ParameterTuple's items go too
            state["_list_names"] = {
                k: v for k, v in state.get("_list_names", {}).items() if v[0] != name
            }

    def _register(
        self,
        name: str,
        mutate: Any,
        touched: list[Parameter],
        touched_cells: list[Cell] | None = None,
    ) -> None:
        """Run ``mutate``; undo it if it fails or creates a Parameter name clash."""
        if "_params" not in self.__dict__:
            raise AttributeError(
                f"For '{type(self).__name__}', call Cell.__init__() before assigning "
                f"the Parameter or Cell attribute '{name}'."
            )
        snapshot = _Snapshot(self, touched, touched_cells or [])
        try:
            mutate()
            _cell_naming.raise_on_name_clash(self)
        except BaseException:
            snapshot.restore()
            raise
        self.__dict__["_ready"] = False

    def _set_param_attr(self, name: str, value: Parameter) -> None:
        self.__dict__.pop(name, None)
        self._insert_param(name, value, check_name_contain_dot=True)

    def _set_tuple_attr(self, name: str, value: ParameterTuple) -> None:
        params = self._params
        old_keys = self._tuple_keys.get(name, ())
        for key in old_keys:
            params.pop(key, None)
        keys = []
        for item in dict.fromkeys(value):  # the same Parameter twice counts once
            held = params.get(item.name)
            if held is not None and held is not item:
                # MindSpore would overwrite the key silently (§a.7: an optimizer's
                # own 'learning_rate' replaced by a network Parameter of that name).
                raise ValueError(
                    f"For '{type(self).__name__}', the ParameterTuple attribute "
                    f"'{name}' holds a Parameter named '{item.name}', but "
                    f"'{item.name}' is already a different Parameter of this Cell; "
                    "give each a unique name."
                )
            self._insert_param(item.name, item, check_name_contain_dot=False)
            keys.append(item.name)
        tuple_keys = dict(self._tuple_keys)
        tuple_keys[name] = tuple(keys)
        self.__dict__["_tuple_keys"] = tuple_keys
        self.__dict__[name] = value

    def _set_list_attr(self, name: str, value: list | tuple) -> None:
        state = self.__dict__
        if name in state.get("_params", ()) or name in state.get("_cells", ()):
            self._set_other_attr(name, value)  # raises TypeError
        table = state.get("_list_names")
        if table is not None:
            state["_list_names"] = _cell_naming.check_list_names(name, value, table)
        object.__setattr__(self, name, value)

    def _set_cell_attr(self, name: str, value: Cell) -> None:
        self._check_child(name, value, allow_attr=name in self.__dict__)
        self.__dict__.pop(name, None)
        if self._auto_prefix:
            value.update_parameters_name(name + ".")
        self._cells[name] = value

    def _set_other_attr(self, name: str, value: Any) -> None:
        state = self.__dict__
        params = state.get("_params")
        if params is not None and name in params:
            if value is None:
                params[name] = None
            elif isinstance(value, Tensor) and params[name] is not None:
                params[name].set_data(value)
            else:
                raise TypeError(
                    f"For '{type(self).__name__}', '{name}' is a Parameter attribute; "
                    "it accepts a Parameter, a Tensor (copied in with set_data) or "
                    f"None, but got {type(value).__name__}."
                )
            return
        cells = state.get("_cells")
        if cells is not None and name in cells:
            if value is not None:
                raise TypeError(
                    f"For '{type(self).__name__}', '{name}' is a sub-cell attribute; "
                    f"it accepts a Cell or None, but got {type(value).__name__}."
                )
            cells[name] = None
            return
        object.__setattr__(self, name, value)

    # ---- registration --------------------------------------------------------------

    def insert_param_to_cell(
        self,
        param_name: str,
        param: Parameter | None,
        check_name_contain_dot: bool = True,
    ) -> None:
        """Register ``param`` under ``param_name``; a default name becomes the key.

        Raises:
            KeyError: If the name is empty, contains '.' (when checked), or is
                another attribute of the Cell.
            TypeError: If the name is not a str or ``param`` is not a Parameter/None.
            AttributeError: If ``Cell.__init__`` has not run.
            ValueError: If another Parameter of this Cell has the same name.
        """
        touched = [param] if isinstance(param, Parameter) else []
        self._register(
            str(param_name),
            lambda: self._insert_param(param_name, param, check_name_contain_dot),
            touched,
        )

    def _insert_param(
        self, param_name: Any, param: Any, check_name_contain_dot: bool
    ) -> None:
        if not isinstance(param_name, str):
            raise TypeError(
                "For 'insert_param_to_cell', the 'param_name' should be str, but got "
                f"{type(param_name).__name__}."
            )
        if not param_name:
            raise KeyError(
                "For 'insert_param_to_cell', the 'param_name' should not be empty."
            )
        if check_name_contain_dot and "." in param_name:
            raise KeyError(
                "For 'insert_param_to_cell', the 'param_name' should not contain '.', "
                f"but got {param_name!r}."
            )
        if param_name not in self._params and (
            param_name in self.__dict__
            or param_name in self._cells
            or hasattr(type(self), param_name)
        ):
            raise KeyError(
                f"For 'insert_param_to_cell', the name {param_name!r} already exists "
                f"in the network as a non-Parameter attribute; choose another name."
            )
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(
                "For 'insert_param_to_cell', the 'param' should be a Parameter or "
                f"None, but got {type(param).__name__}."
            )
        if param is not None and _cell_naming.is_default_name(param):
            param.name = param_name
        self._params[param_name] = param

    def _check_child(self, child_name: Any, child_cell: Any, allow_attr: bool) -> None:
        if not isinstance(child_name, str):
            raise TypeError(
                "For 'insert_child_to_cell', the 'child_name' should be str, but got "
                f"{type(child_name).__name__}."
            )
        if not child_name or "." in child_name:
            raise KeyError(
                "For 'insert_child_to_cell', the 'child_name' should be non-empty and "
                f"contain no '.', but got {child_name!r}."
            )
        taken = child_name in self._params or (
            not allow_attr
            and (child_name in self.__dict__ or hasattr(type(self), child_name))
        )
        if child_name not in self._cells and taken:
            raise KeyError(
                f"For 'insert_child_to_cell', the name {child_name!r} already exists "
                "in the network as a non-Cell attribute; choose another name."
            )
        if child_cell is not None and not isinstance(child_cell, Cell):
            raise TypeError(
                "For 'insert_child_to_cell', the 'child_cell' should be a Cell or "
                f"None, but got {type(child_cell).__name__}."
            )

    def insert_child_to_cell(self, child_name: str, child_cell: Cell | None) -> None:
        """Register ``child_cell`` under ``child_name`` (names are not changed).

        Raises:
            TypeError: If the name is not a str or the child is not a Cell/None.
            KeyError: If the name is empty, contains '.', or is another attribute.
            ValueError: If the child brings a Parameter name clash.
        """

        def insert() -> None:
            self._check_child(child_name, child_cell, allow_attr=False)
            self._cells[child_name] = child_cell

        self._register(str(child_name), insert, [])

    def update_parameters_name(self, prefix: str = "", recurse: bool = True) -> None:
        """Name every Parameter ``prefix + path`` (paths, not current names, are used).

        Raises:
            TypeError: If ``prefix`` is not a str.
            ValueError: If ``prefix`` has characters other than ASCII letters,
                digits, '_', '.' and '-'.
        """
        _cell_naming.check_prefix(prefix)
        for path, param in self.parameters_and_names(expand=recurse):
            param.name = prefix + path
        # Containers read it to name cells appended after they were attached.
        cells = self.cells_and_names() if recurse else [("", self)]
        for path, cell in cells:
            cell.__dict__["_param_prefix"] = prefix + (f"{path}." if path else "")

    # ---- iteration -------------------------------------------------------------------

    def cells_and_names(
        self, cells: set[int] | None = None, name_prefix: str = ""
    ) -> Iterator[tuple[str, Cell]]:
        """Yield ``(path, cell)`` for this Cell and each sub-cell, depth first, once."""
        visited = cells if cells is not None else set()
        if id(self) in visited:
            return
        visited.add(id(self))
        yield name_prefix, self
        for name, cell in self._cells.items():
            if cell is not None:
                path = f"{name_prefix}.{name}" if name_prefix else name
                yield from cell.cells_and_names(visited, path)

    def parameters_and_names(
        self, name_prefix: str = "", expand: bool = True
    ) -> Iterator[tuple[str, Parameter]]:
        """Yield ``(path, parameter)``: own Parameters first, then sub-cells in order.

        A Parameter reachable by several paths is yielded once, under the first.
        """
        if expand:
            cells: Any = self.cells_and_names(name_prefix=name_prefix)
        else:
            cells = [(name_prefix, self)]
        seen: set[int] = set()
        for cell_path, cell in cells:
            for key, param in cell._params.items():
                if param is None:
                    continue
                if param.inited_param is not None:
                    param = param.inited_param
                if id(param) in seen:
                    continue
                seen.add(id(param))
                yield (f"{cell_path}.{key}" if cell_path else key), param

    def get_parameters(self, expand: bool = True) -> Iterator[Parameter]:
        """Yield every Parameter once (with sub-cells' when ``expand``)."""
        for _, param in self.parameters_and_names(expand=expand):
            yield param

    def trainable_params(self, recurse: bool = True) -> list[Parameter]:
        """The Parameters with ``requires_grad`` True."""
        return [p for p in self.get_parameters(expand=recurse) if p.requires_grad]

    def set_param_ps(self, recurse: bool = True, init_in_server: bool = False) -> None:
        """Train every trainable Parameter on the parameter server (MindSpore r1.3).

        See `Parameter.set_param_ps`. All Parameters are checked before any is
        changed, so a refusal leaves the network as it was.

        Raises:
            TypeError: If ``recurse`` or ``init_in_server`` is not a bool.
            RuntimeError: As `Parameter.set_param_ps` does for any of them.
        """
        if not isinstance(recurse, bool):
            raise TypeError(
                "For 'Cell.set_param_ps', the 'recurse' should be bool, but got "
                f"{type(recurse).__name__}."
            )
        params = self.trainable_params(recurse)
        if init_in_server:
            for param in params:
                if not param.name.endswith("embedding_table"):
                    raise RuntimeError(
                        "For 'Cell.set_param_ps', 'init_in_server' needs every "
                        "trainable Parameter's name to end with 'embedding_table', "
                        f"but got '{param.name}'; call set_param_ps on the table "
                        "Parameter itself instead."
                    )
        for param in params:
            param._mark_param_ps(init_in_server, "Cell.set_param_ps")
        client = _context._ps_client()
        if client is not None:  # a running PS worker: place them on the servers now
            client.register(params)

    def untrainable_params(self, recurse: bool = True) -> list[Parameter]:
        """The Parameters with ``requires_grad`` False."""
        return [p for p in self.get_parameters(expand=recurse) if not p.requires_grad]

    def parameters_dict(self, recurse: bool = True) -> OrderedDict[str, Parameter]:
        """Parameters keyed by ``Parameter.name`` (the checkpoint name)."""
        return OrderedDict((p.name, p) for p in self.get_parameters(expand=recurse))

    def parameters_broadcast_dict(
        self, recurse: bool = True
    ) -> OrderedDict[str, Parameter] | None:
        """Like `parameters_dict` without ``layerwise_parallel`` ones; None if empty."""
        out = OrderedDict(
            (p.name, p)
            for p in self.get_parameters(expand=recurse)
            if not p.layerwise_parallel
        )
        return out or None

    def name_cells(self) -> OrderedDict[str, Cell]:
        """The direct sub-cells by attribute name (each Cell once)."""
        out: OrderedDict[str, Cell] = OrderedDict()
        seen: set[int] = set()
        for name, cell in self._cells.items():
            if cell is not None and id(cell) not in seen:
                seen.add(id(cell))
                out[name] = cell
        return out

    def cells(self) -> Any:
        """The direct sub-cells."""
        return self.name_cells().values()

    # ---- modes and flags -------------------------------------------------------------

    def set_train(self, mode: bool = True) -> Cell:
        """Set ``training`` on this Cell and every sub-cell; return self.

        Raises:
            TypeError: If ``mode`` is not a bool.
        """
        if not isinstance(mode, bool):
            raise TypeError(
                f"For 'set_train', the 'mode' should be bool, but got "
                f"{type(mode).__name__}."
            )
        for _, cell in self.cells_and_names():
            cell.__dict__["training"] = mode
        return self

    def set_grad(self, requires_grad: bool = True) -> Cell:
        """Record whether this Cell is differentiated (kept for MindSpore parity)."""
        self.__dict__["requires_grad"] = requires_grad
        return self

    def add_flags(self, **flags: Any) -> Cell:
        """Store flags on the Cell (``get_flags`` returns them)."""
        self.__dict__["_mindspore_flags"] = {**self._mindspore_flags, **flags}
        return self

    def add_flags_recursive(self, **flags: Any) -> Cell:
        """`add_flags` on this Cell and every sub-cell."""
        for _, cell in self.cells_and_names():
            cell.add_flags(**flags)
        return self

    def set_comm_fusion(self, fusion_type: int, recurse: bool = True) -> Cell:
        """Give every trainable Parameter the gradient fusion id ``fusion_type``.

        Data parallel all-reduces the gradients of Parameters with one id together
        (0: each alone); see ``nn.DistributedGradReducer``.

        Raises:
            TypeError: If ``fusion_type`` is not an int.
            ValueError: If ``fusion_type`` is negative.
        """
        if isinstance(fusion_type, bool) or not isinstance(fusion_type, int):
            raise TypeError(
                "For 'set_comm_fusion', the 'fusion_type' should be int, but got "
                f"{type(fusion_type).__name__}."
            )
        if fusion_type < 0:
            raise ValueError(
                f"For 'set_comm_fusion', the 'fusion_type' should be >= 0, but got "
                f"{fusion_type}."
            )
        for param in self.trainable_params(recurse):
            param.comm_fusion = fusion_type
        return self

    def get_flags(self) -> dict[str, Any]:
        return dict(self._mindspore_flags)

    @property
    def cls_name(self) -> str:
        return type(self).__name__

    # ---- running ---------------------------------------------------------------------

    def construct(self, *args: Any, **kwargs: Any) -> Any:
        """The computation; subclasses override it.

        Raises:
            AttributeError: Always, on the base class (MindSpore parity).
        """
        raise AttributeError("For 'Cell', the method 'construct' is not defined.")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not self.__dict__.get("_ready", True):
            self._prepare()
        return self.construct(*args, **kwargs)

    def _prepare(self) -> None:
        """First call: refuse name clashes missed at registration, materialise."""
        # Parameters renamed by hand, or inserted into an attached child, can clash
        # only after registration; MindSpore 2.10 also checks here (then renames).
        _cell_naming.raise_on_name_clash(self)
        for param in self.get_parameters():
            if param.has_init:
                param.init_data()
        self.__dict__["_ready"] = True

    def init_parameters_data(self, auto_parallel_mode: bool = False) -> dict:
        """Materialise every lazy Parameter; return ``{param: param}``."""
        out = {}
        for param in self.get_parameters():
            out[param] = param.init_data()
        return out

    # ---- printing --------------------------------------------------------------------

    def extend_repr(self) -> str:
        """Extra text shown inside this Cell's repr; subclasses override it."""
        return ""

    def __repr__(self) -> str:
        extra = self.extend_repr()
        lines = extra.split("\n") if extra else []
        children = []
        for key, cell in self._cells.items():
            text = repr(cell).replace("\n", "\n  ")
            children.append(f"({key}): {text}")
        if not children and len(lines) <= 1:
            return (
                f"{type(self).__name__}<{extra}>"
                if extra
                else f"{type(self).__name__}<>"
            )
        body = "\n  ".join(lines + children)
        return f"{type(self).__name__}<\n  {body}\n  >"
