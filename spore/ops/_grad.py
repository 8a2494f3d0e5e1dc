"""Gradients on torch autograd: ``GradOperation``, ``grad`` and ``value_and_grad``.

A gradient function runs the network once with autograd on, then asks
``torch.autograd.grad`` for the gradients of its output. Nothing is accumulated
into ``.grad``, and the caller's tensors are never touched: every input that is
differentiated is replaced by a fresh leaf (``detach().requires_grad_()``) for the
call, and Parameters are differentiated through their own torch leaves.

See Note [frozen weights]: a Parameter passed explicitly in ``weights`` while its
``requires_grad`` is False gets a zero gradient (MindSpore 2.10 PyNative; GRAPH
mode would return the true gradient). A weight the network does not use gets zeros
as well.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from spore.common.parameter import Parameter
from spore.common.tensor import Tensor

__all__ = ["GradOperation", "grad", "value_and_grad"]


# ---- argument checks ---------------------------------------------------------------


def _check_bool(value: Any, arg: str, what: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(
            f"For '{what}', the '{arg}' should be bool, but got {type(value).__name__}."
        )
    return value


def _normalize_positions(grad_position: Any) -> tuple[tuple[int, ...] | None, bool]:
    """``(positions, single)``: the positions as a tuple (None for none), and
    whether the caller gave one int (its gradient is returned unwrapped).

    Raises:
        TypeError: If ``grad_position`` is not None, an int or a tuple of ints.
        ValueError: If a position is negative, repeated, or the tuple is empty.
    """
    if grad_position is None:
        return None, False
    single = isinstance(grad_position, int) and not isinstance(grad_position, bool)
    positions = (grad_position,) if single else grad_position
    if not isinstance(positions, tuple):
        raise TypeError(
            "For 'grad', the 'grad_position' should be None, an int or a tuple of "
            f"ints, but got {type(grad_position).__name__}."
        )
    if not positions:
        raise ValueError(
            "For 'grad', the 'grad_position' should not be an empty tuple; pass None "
            "to take no input gradient."
        )
    for position in positions:
        if not isinstance(position, int) or isinstance(position, bool):
            raise TypeError(
                "For 'grad', every element of 'grad_position' should be an int, but "
                f"got {type(position).__name__}."
            )
        if position < 0:
            raise ValueError(
                "For 'grad', every element of 'grad_position' should be >= 0, but got "
                f"{position}."
            )
    if len(set(positions)) != len(positions):
        raise ValueError(
            "For 'grad', the 'grad_position' should not repeat a position, but got "
            f"{positions}."
        )
    return positions, single


def _normalize_weights(
    weights: Any, what: str
) -> tuple[tuple[Parameter, ...] | None, bool]:
    """``(weights, single)``: a tuple of Parameters (None for none), and whether the
    caller gave one Parameter (its gradient is returned unwrapped).

    Raises:
        TypeError: If ``weights`` is not a Parameter or a sequence of Parameters.
    """
    if weights is None:
        return None, False
    if isinstance(weights, Parameter):
        return (weights,), True
    if not isinstance(weights, (tuple, list)):
        raise TypeError(
            f"For '{what}', the 'weights' should be a Parameter, a ParameterTuple or a "
            f"list of Parameters, but got {type(weights).__name__}."
        )
    for index, weight in enumerate(weights):
        if not isinstance(weight, Parameter):
            raise TypeError(
                f"For '{what}', every element of 'weights' should be a Parameter, but "
                f"element {index} is a {type(weight).__name__}."
            )
    return tuple(weights), False


def _check_callable(fn: Any, what: str) -> None:
    if not callable(fn):
        raise TypeError(
            f"For '{what}', the function to differentiate should be a Cell or a "
            f"callable, but got {type(fn).__name__}."
        )


# ---- leaves and results ------------------------------------------------------------


class _Leaf:
    """A differentiated input: the fresh torch leaf and how to hand it to ``fn``."""

    __slots__ = ("leaf", "spore")

    def __init__(self, leaf: torch.Tensor, spore: bool) -> None:
        self.leaf = leaf
        self.spore = spore


def _make_leaves(value: Any) -> tuple[Any, Any]:
    """``(value for the call, leaf structure)`` for one differentiated input.

    Tensors (spore or torch) become fresh leaves; tuples and lists are walked; any
    other value is passed unchanged and its gradient is a 0-d zero.
    """
    if isinstance(value, Tensor):
        leaf = value._materialized().detach()
        if leaf.is_floating_point() or leaf.is_complex():
            leaf.requires_grad_(True)
        return Tensor._wrap(leaf), _Leaf(leaf, spore=True)
    if isinstance(value, torch.Tensor):
        leaf = value.detach()
        if leaf.is_floating_point() or leaf.is_complex():
            leaf.requires_grad_(True)
        return leaf, _Leaf(leaf, spore=False)
    if isinstance(value, (tuple, list)):
        pairs = [_make_leaves(item) for item in value]
        call_value = type(value)(pair[0] for pair in pairs)
        return call_value, tuple(pair[1] for pair in pairs)
    return value, None


def _collect(structure: Any, into: list[torch.Tensor]) -> None:
    if isinstance(structure, _Leaf):
        if structure.leaf.requires_grad:
            into.append(structure.leaf)
    elif isinstance(structure, tuple):
        for item in structure:
            _collect(item, into)


def _rebuild(structure: Any, grads: dict[int, torch.Tensor]) -> Any:
    if isinstance(structure, _Leaf):
        found = grads.get(id(structure.leaf))
        value = torch.zeros_like(structure.leaf) if found is None else found
        return Tensor._wrap(value.detach())
    if isinstance(structure, tuple):
        return tuple(_rebuild(item, grads) for item in structure)
    # MindSpore PyNative gives a 0-d zero for a non-Tensor input.
    return Tensor._wrap(torch.zeros((), dtype=torch.float32))


def _as_torch(value: Any) -> torch.Tensor | None:
    if isinstance(value, Tensor):
        return value._materialized()
    if isinstance(value, torch.Tensor):
        return value
    return None


def _detached(value: Any) -> Any:
    """The network output as returned to the caller: no autograd graph attached."""
    if isinstance(value, Tensor):
        return Tensor._wrap(value._materialized().detach())
    if isinstance(value, torch.Tensor):
        return value.detach()
    if isinstance(value, tuple):
        return tuple(_detached(item) for item in value)
    if isinstance(value, list):
        return [_detached(item) for item in value]
    return value


def _flatten_outputs(value: Any, into: list[torch.Tensor | None]) -> None:
    if isinstance(value, (tuple, list)):
        for item in value:
            _flatten_outputs(item, into)
    else:
        into.append(_as_torch(value))


def _sens_tensor(sens: Any, out: torch.Tensor, what: str) -> torch.Tensor:
    raw = _as_torch(sens)
    if raw is None:
        if isinstance(sens, (bool, int, float)):
            raw = torch.tensor(sens)
        else:
            raise TypeError(
                f"For '{what}', the sensitivity should be a Tensor or a number, but "
                "got "
                f"{type(sens).__name__}."
            )
    raw = raw.detach().to(out.dtype)
    try:
        return torch.broadcast_to(raw, out.shape)
    except RuntimeError as err:
        raise ValueError(
            f"For '{what}', the sensitivity of shape {tuple(raw.shape)} does not match "
            f"the output of shape {tuple(out.shape)}."
        ) from err


def _sens_list(sens: Any, outs: list[torch.Tensor | None], what: str) -> list[Any]:
    if sens is None:
        return [None] * len(outs)
    if len(outs) == 1:
        items = (
            [sens[0]] if isinstance(sens, (tuple, list)) and len(sens) == 1 else [sens]
        )
    else:
        flat: list[Any] = []
        _flatten_sens(sens, flat)
        items = flat
    if len(items) != len(outs):
        raise ValueError(
            f"For '{what}', the sensitivity should have one entry per output "
            f"({len(outs)}), but got {len(items)}."
        )
    return items


def _flatten_sens(sens: Any, into: list[Any]) -> None:
    if isinstance(sens, (tuple, list)):
        for item in sens:
            _flatten_sens(item, into)
    else:
        into.append(sens)


# ---- the one differentiation routine -----------------------------------------------


def _differentiate(
    fn: Callable[..., Any],
    args: Sequence[Any],
    kwargs: dict[str, Any],
    positions: tuple[int, ...],
    weights: tuple[Parameter, ...],
    sens: Any,
    has_aux: bool,
    what: str,
) -> tuple[Any, list[Any], list[Tensor]]:
    """Run ``fn`` once and return ``(outputs, input grads, weight grads)``.

    Input grads follow ``positions`` (nested like the inputs); weight grads follow
    ``weights``. Missing gradients (unused, frozen, integer) are zeros.

    Raises:
        RuntimeError: If a position is not smaller than the number of inputs.
    """
    for position in positions:
        if position >= len(args):
            # MindSpore parity: PyNative raises RuntimeError (GRAPH: IndexError).
            raise RuntimeError(
                f"For '{what}', the 'grad_position' {position} is out of range: the "
                f"function got {len(args)} positional input(s)."
            )
    call_args = list(args)
    structures = []
    for position in positions:
        call_args[position], structure = _make_leaves(args[position])
        structures.append(structure)
    with torch.enable_grad():
        out = fn(*call_args, **kwargs)
    if has_aux:
        if not isinstance(out, (tuple, list)) or len(out) < 2:
            raise ValueError(
                f"For '{what}', 'has_aux' needs the function to return at least two "
                f"outputs, but it returned {type(out).__name__}."
            )
        differentiated: Any = out[0]
    else:
        differentiated = out
    outs: list[torch.Tensor | None] = []
    _flatten_outputs(differentiated, outs)
    sens_items = _sens_list(sens, outs, what)

    targets: list[torch.Tensor] = []
    for structure in structures:
        _collect(structure, targets)
    # Read the weights' torch data after the call: a lazy weight is materialised
    # by the forward pass that uses it.
    for weight in weights:
        if weight.requires_grad:  # See Note [frozen weights]
            data = weight._materialized()
            if data.requires_grad:
                targets.append(data)

    roots, root_grads = [], []
    for value, sens_item in zip(outs, sens_items, strict=True):
        if value is None or not value.requires_grad:
            continue
        roots.append(value)
        root_grads.append(
            torch.ones_like(value)
            if sens_item is None
            else _sens_tensor(sens_item, value, what)
        )
    found: dict[int, torch.Tensor] = {}
    if roots and targets:
        results = torch.autograd.grad(
            roots, targets, grad_outputs=root_grads, allow_unused=True
        )
        for target, result in zip(targets, results, strict=True):
            if result is not None:
                found[id(target)] = result

    input_grads = [_rebuild(structure, found) for structure in structures]
    weight_grads = []
    for weight in weights:
        data = weight._materialized()
        result = found.get(id(data)) if weight.requires_grad else None
        value = torch.zeros_like(data) if result is None else result
        weight_grads.append(Tensor._wrap(value.detach()))
    return out, input_grads, weight_grads


def _split_sens(
    args: tuple[Any, ...], kwargs: dict[str, Any], what: str
) -> tuple[Any, Any, Any]:
    if "sens" in kwargs:
        kwargs = dict(kwargs)
        return args, kwargs, kwargs.pop("sens")
    if not args:
        raise TypeError(
            f"For '{what}', 'sens_param' is True, so the sensitivity should be "
            "passed as "
            "the last positional input (or as 'sens='), but no input was given."
        )
    return args[:-1], kwargs, args[-1]


# ---- GradOperation -----------------------------------------------------------------


class GradOperation:
    """Build gradient functions of a network (MindSpore's ``ops.GradOperation``).

    ``GradOperation(...)(net, weights)`` returns a function taking the network's
    inputs (plus the output sensitivity last when ``sens_param``) and returning:

    - the gradient of the first input (default);
    - a tuple of gradients of all inputs (``get_all``);
    - a tuple of gradients of ``weights`` (``get_by_list``);
    - ``((input grads...), (weight grads...))`` (``get_all`` and ``get_by_list``).

    Args:
        get_all: Differentiate every positional input.
        get_by_list: Differentiate the Parameters given as ``weights``.
        sens_param: The last positional input is the output sensitivity
            (the gradient of the output) instead of ones.

    Raises:
        TypeError: If a flag is not a bool, or ``weights`` is missing or not
            Parameters when ``get_by_list`` is True.

    Examples:
        >>> from spore import Tensor, Parameter, ParameterTuple
        >>> from spore.ops import GradOperation
        >>> w = Parameter(Tensor([2.0, 2.0]), name="w")
        >>> fn = lambda x: x @ w  # a dot product
        >>> grad_fn = GradOperation(get_by_list=True)(fn, ParameterTuple([w]))
        >>> grads = grad_fn(Tensor([1.0, 4.0]))
        >>> grads[0].asnumpy().tolist()
        [1.0, 4.0]
    """

    def __init__(
        self, get_all: bool = False, get_by_list: bool = False, sens_param: bool = False
    ) -> None:
        self.get_all = _check_bool(get_all, "get_all", "GradOperation")
        self.get_by_list = _check_bool(get_by_list, "get_by_list", "GradOperation")
        self.sens_param = _check_bool(sens_param, "sens_param", "GradOperation")

    def __call__(self, fn: Any, weights: Any = None) -> Callable[..., Any]:
        _check_callable(fn, "GradOperation")
        if self.get_by_list:
            if weights is None:
                raise TypeError(
                    "For 'GradOperation', 'get_by_list' is True, so 'weights' should "
                    "be "
                    "a ParameterTuple or a list of Parameters, but got None."
                )
            params, single = _normalize_weights(weights, "GradOperation")
        else:
            params, single = (), False
        operation = self

        def grad_fn(*args: Any, **kwargs: Any) -> Any:
            sens = None
            if operation.sens_param:
                args, kwargs, sens = _split_sens(args, kwargs, "GradOperation")
            if operation.get_all:
                positions: tuple[int, ...] = tuple(range(len(args)))
            elif operation.get_by_list:
                positions = ()
            else:
                if not args:
                    raise ValueError(
                        "For 'GradOperation', the gradient of the first input was "
                        "asked "
                        "for, but the function got no positional input."
                    )
                positions = (0,)
            assert params is not None
            _, input_grads, weight_grads = _differentiate(
                fn, args, kwargs, positions, params, sens, False, "GradOperation"
            )
            weight_result = weight_grads[0] if single else tuple(weight_grads)
            if operation.get_all and operation.get_by_list:
                return tuple(input_grads), weight_result
            if operation.get_all:
                return tuple(input_grads)
            if operation.get_by_list:
                return weight_result
            return input_grads[0]

        return grad_fn


# ---- grad / value_and_grad ---------------------------------------------------------


def _make_grad_fn(
    fn: Any,
    grad_position: Any,
    weights: Any,
    has_aux: bool,
    return_ids: bool,
    sens_param: bool,
    with_value: bool,
) -> Callable[..., Any]:
    what = "value_and_grad" if with_value else "grad"
    _check_callable(fn, what)
    _check_bool(has_aux, "has_aux", what)
    _check_bool(return_ids, "return_ids", what)
    _check_bool(sens_param, "sens_param", what)
    if grad_position is None and weights is None:
        raise ValueError(
            f"For '{what}', 'grad_position' and 'weights' should not both be None; "
            "give input positions, weights, or both."
        )
    positions, single_position = _normalize_positions(grad_position)
    params, single_weight = _normalize_weights(weights, what)

    def grad_fn(*args: Any, **kwargs: Any) -> Any:
        sens = None
        if sens_param:
            args, kwargs, sens = _split_sens(args, kwargs, what)
        out, input_grads, weight_grads = _differentiate(
            fn, args, kwargs, positions or (), params or (), sens, has_aux, what
        )
        input_result: Any = None
        if positions is not None:
            items: list[Any] = (
                list(zip(positions, input_grads, strict=True))
                if return_ids
                else input_grads
            )
            input_result = items[0] if single_position else tuple(items)
        weight_result: Any = None
        if params is not None:
            items = (
                [(w.name, g) for w, g in zip(params, weight_grads, strict=True)]
                if return_ids
                else weight_grads
            )
            weight_result = items[0] if single_weight else tuple(items)
        if positions is None:
            grads = weight_result
        elif params is None:
            grads = input_result
        else:
            grads = (input_result, weight_result)
        value = _detached(out)
        if with_value:
            return (tuple(value) if has_aux else value), grads
        if has_aux:
            return grads, tuple(value[1:])
        return grads

    return grad_fn


def grad(
    fn: Any,
    grad_position: Any = 0,
    weights: Any = None,
    has_aux: bool = False,
    return_ids: bool = False,
    sens_param: bool = False,
) -> Callable[..., Any]:
    """A function returning the gradients of ``fn`` (MindSpore 2.x ``ops.grad``).

    Args:
        fn: A Cell or a function of Tensors.
        grad_position: None, an input index, or a tuple of indices. One int gives
            one gradient; a tuple gives a tuple.
        weights: None, a Parameter (its gradient unwrapped), or a ParameterTuple /
            list of Parameters (a tuple of gradients).
        has_aux: Differentiate only the first output; the others are returned
            as ``aux``: the result is ``(grads, (aux...))``.
        return_ids: Pair each gradient with its id: ``(position, grad)`` for
            inputs, ``(parameter name, grad)`` for weights.
        sens_param: The sensitivity is the last positional input (or ``sens=``).

    Returns:
        Input gradients, weight gradients, or ``(input grads, weight grads)``
        when both are asked for.

    Raises:
        ValueError: If ``grad_position`` and ``weights`` are both None, or a
            position is negative or repeated.
        TypeError: If an argument has the wrong type.
        RuntimeError: (When called) if a position is past the last input.

    Examples:
        >>> from spore import Tensor
        >>> from spore.ops import grad
        >>> grad(lambda x: x @ x)(Tensor([1.0, 2.0])).asnumpy().tolist()
        [2.0, 4.0]
    """
    return _make_grad_fn(
        fn, grad_position, weights, has_aux, return_ids, sens_param, False
    )


def value_and_grad(
    fn: Any,
    grad_position: Any = 0,
    weights: Any = None,
    has_aux: bool = False,
    return_ids: bool = False,
    sens_param: bool = False,
) -> Callable[..., Any]:
    """Like `grad`, but the function returns ``(value, grads)``.

    ``value`` is what ``fn`` returned (all outputs, as a tuple when ``has_aux``),
    detached from the autograd graph.

    Raises:
        ValueError, TypeError, RuntimeError: As `grad`.

    Examples:
        >>> from spore import Tensor
        >>> from spore.ops import value_and_grad
        >>> value, g = value_and_grad(lambda x: x @ x)(Tensor([1.0, 2.0]))
        >>> float(value), g.asnumpy().tolist()
        (5.0, [2.0, 4.0])
    """
    return _make_grad_fn(
        fn, grad_position, weights, has_aux, return_ids, sens_param, True
    )
