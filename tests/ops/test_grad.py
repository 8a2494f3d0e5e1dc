"""GradOperation, grad and value_and_grad: results, errors, autograd hygiene."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

import spore
from spore import Parameter, ParameterTuple, Tensor, lazy_init
from spore.common.initializer import initializer
from spore.ops import GradOperation, grad, value_and_grad

ONES = Tensor(np.ones(2, np.float32))
NOT_BOOL: Any = 1  # an int where a bool is due, past the type checker


def _values(t: Any) -> list[float]:
    return t.asnumpy().tolist()


def _net() -> tuple[Any, Parameter, Parameter, Tensor]:
    """The spec's net: ``sum(x*w + b) * 2`` with x=[1,4], w=[2,3]."""
    w = Parameter(Tensor(np.array([2.0, 3.0], np.float32)), name="w")
    b = Parameter(Tensor(np.float32(1.0)), name="b")
    x = Tensor(np.array([1.0, 4.0], np.float32))

    def net(x: Tensor) -> Tensor:
        return ((x * w + b) @ ONES) * 2

    return net, w, b, x


# ---- GradOperation -------------------------------------------------------------------


def test_grad_operation_default_is_first_input() -> None:
    net, _, _, x = _net()
    assert _values(GradOperation()(net)(x)) == [4.0, 6.0]


def test_grad_operation_get_by_list() -> None:
    net, w, _, x = _net()
    result = GradOperation(get_by_list=True)(net, ParameterTuple([w]))(x)
    assert isinstance(result, tuple) and [_values(g) for g in result] == [[2.0, 8.0]]


def test_grad_operation_get_all_and_get_by_list() -> None:
    net, w, _, x = _net()
    inputs, weights = GradOperation(get_all=True, get_by_list=True)(net, [w])(x)
    assert ([_values(g) for g in inputs], [_values(g) for g in weights]) == (
        [[4.0, 6.0]],
        [[2.0, 8.0]],
    )


def test_grad_operation_sens_param_scales_the_gradient() -> None:
    net, w, _, x = _net()
    result = GradOperation(get_by_list=True, sens_param=True)(net, [w])(x, Tensor(3.0))
    assert _values(result[0]) == [6.0, 24.0]


def test_grad_operation_get_all_covers_every_input() -> None:
    def fn(a: Tensor, b: Tensor) -> Tensor:
        return (a * b) @ ONES

    a, b = (
        Tensor(np.array([1.0, 2.0], np.float32)),
        Tensor(np.array([3.0, 5.0], np.float32)),
    )
    ga, gb = GradOperation(get_all=True)(fn)(a, b)
    assert (_values(ga), _values(gb)) == ([3.0, 5.0], [1.0, 2.0])


def test_grad_operation_get_by_list_needs_weights() -> None:
    net, _, _, _ = _net()
    with pytest.raises(TypeError, match=r"'get_by_list' is True, so 'weights'"):
        GradOperation(get_by_list=True)(net)


def test_grad_operation_flags_must_be_bool() -> None:
    with pytest.raises(TypeError, match=r"the 'get_all' should be bool"):
        GradOperation(get_all=NOT_BOOL)


def test_grad_operation_refuses_non_callable() -> None:
    with pytest.raises(TypeError, match=r"should be a Cell or a callable"):
        GradOperation()(3)


# ---- grad ----------------------------------------------------------------------------


def test_grad_weights_only() -> None:
    net, w, b, x = _net()
    gw, gb = grad(net, grad_position=None, weights=[w, b])(x)
    assert (_values(gw), _values(gb)) == ([2.0, 8.0], 4.0)


def test_grad_position_and_weights_gives_pair() -> None:
    net, w, _, x = _net()
    gx, (gw,) = grad(net, grad_position=0, weights=[w])(x)
    assert (_values(gx), _values(gw)) == ([4.0, 6.0], [2.0, 8.0])


def test_grad_tuple_position_gives_tuple() -> None:
    net, _, _, x = _net()
    result = grad(net, grad_position=(0,))(x)
    assert isinstance(result, tuple) and _values(result[0]) == [4.0, 6.0]


def test_grad_single_parameter_is_unwrapped() -> None:
    net, w, _, x = _net()
    assert _values(grad(net, None, w)(x)) == [2.0, 8.0]


def test_grad_return_ids_names_weights() -> None:
    net, w, _, x = _net()
    ((name, gw),) = grad(net, None, [w], return_ids=True)(x)
    assert (name, _values(gw)) == ("w", [2.0, 8.0])


def test_grad_return_ids_numbers_positions() -> None:
    net, _, _, x = _net()
    position, gx = grad(net, 0, return_ids=True)(x)
    assert (position, _values(gx)) == (0, [4.0, 6.0])


def test_grad_has_aux_returns_aux_untouched() -> None:
    def fn(x: Tensor) -> tuple[Tensor, Tensor]:
        return (x * x) @ ONES, x * 10

    x = Tensor(np.array([1.0, 2.0], np.float32))
    gx, aux = grad(fn, has_aux=True)(x)
    assert (_values(gx), [_values(a) for a in aux]) == ([2.0, 4.0], [[10.0, 20.0]])


def test_grad_has_aux_needs_two_outputs() -> None:
    net, _, _, x = _net()
    with pytest.raises(ValueError, match=r"'has_aux' needs the function to return"):
        grad(net, has_aux=True)(x)


def test_grad_sens_param_by_keyword() -> None:
    net, _, _, x = _net()
    assert _values(grad(net, sens_param=True)(x, sens=Tensor(0.5))) == [2.0, 3.0]


def test_grad_sens_shape_mismatch() -> None:
    def fn(x: Tensor) -> Tensor:
        return x * 2

    with pytest.raises(ValueError, match=r"sensitivity of shape \(3,\)"):
        grad(fn, sens_param=True)(ONES, Tensor(np.ones(3, np.float32)))


def test_grad_sens_param_needs_an_input() -> None:
    net, _, _, _ = _net()
    with pytest.raises(TypeError, match=r"'sens_param' is True"):
        grad(net, sens_param=True)()


def test_grad_of_tuple_output_sums_the_outputs() -> None:
    def fn(x: Tensor) -> tuple[Tensor, Tensor]:
        return x @ ONES, (x * 3) @ ONES

    assert _values(grad(fn)(ONES)) == [4.0, 4.0]


def test_unused_weight_gets_zeros() -> None:
    net, w, _, x = _net()
    unused = Parameter(Tensor(np.ones((2, 2), np.float32)), name="unused")
    _, g_unused = grad(net, None, [w, unused])(x)
    assert g_unused.shape == (2, 2) and not g_unused.asnumpy().any()


def test_frozen_weight_gets_zeros() -> None:
    # MindSpore 2.10 PyNative: ([2, 8], [0.0]) once b.requires_grad is False.
    net, w, b, x = _net()
    b.requires_grad = False
    gw, gb = grad(net, None, [w, b])(x)
    assert (_values(gw), _values(gb)) == ([2.0, 8.0], 0.0)


def test_integer_input_gets_integer_zeros() -> None:
    def fn(x: Tensor, n: Tensor) -> Tensor:
        return (x * 2) @ ONES

    ids = Tensor(np.array([1, 2], np.int32))
    _, g_ids = grad(fn, (0, 1))(ONES, ids)
    assert g_ids.dtype == spore.int32 and _values(g_ids) == [0, 0]


def test_non_tensor_input_gets_0d_zero() -> None:
    def fn(x: Tensor, k: float) -> Tensor:
        return (x * k) @ ONES

    _, g_k = grad(fn, (0, 1))(ONES, 3.0)
    assert g_k.shape == () and float(g_k.asnumpy()) == 0.0


def test_nested_tuple_input_gets_nested_grads() -> None:
    def fn(pair: tuple[Tensor, Tensor]) -> Tensor:
        return (pair[0] * pair[1]) @ ONES

    a, b = (
        Tensor(np.array([1.0, 2.0], np.float32)),
        Tensor(np.array([3.0, 4.0], np.float32)),
    )
    ga, gb = grad(fn)((a, b))
    assert (_values(ga), _values(gb)) == ([3.0, 4.0], [1.0, 2.0])


def test_torch_tensor_input_is_differentiated() -> None:
    def fn(x: torch.Tensor) -> torch.Tensor:
        return (x * x).sum()

    result = grad(fn)(torch.tensor([1.0, 3.0]))
    assert isinstance(result, Tensor) and _values(result) == [2.0, 6.0]


def test_user_tensors_are_not_touched() -> None:
    net, w, _, x = _net()
    grad(net, 0, [w])(x)
    raw = x.to_torch()
    assert not raw.requires_grad and raw.grad is None and w.to_torch().grad is None


def test_gradients_are_detached() -> None:
    net, w, _, x = _net()
    gx, (gw,) = grad(net, 0, [w])(x)
    assert not gx.to_torch().requires_grad and not gw.to_torch().requires_grad


def test_lazy_parameter_is_differentiated_after_materialising() -> None:
    with lazy_init():
        w = Parameter(initializer("ones", (2,), spore.float32), name="lazy_w")

    def fn(x: Tensor) -> Tensor:
        return (x * w) @ ONES

    x = Tensor(np.array([5.0, 7.0], np.float32))
    assert _values(grad(fn, None, w)(x)) == [5.0, 7.0]


# ---- value_and_grad ------------------------------------------------------------------


def test_value_and_grad_returns_value_and_grads() -> None:
    net, w, _, x = _net()
    value, grads = value_and_grad(net, None, [w])(x)
    assert (float(value.asnumpy()), [_values(g) for g in grads]) == (32.0, [[2.0, 8.0]])


def test_value_and_grad_value_is_detached() -> None:
    net, _, _, x = _net()
    value, _ = value_and_grad(net)(x)
    assert not value.to_torch().requires_grad


def test_value_and_grad_has_aux_returns_all_outputs() -> None:
    def fn(x: Tensor) -> tuple[Tensor, Tensor]:
        return x @ ONES, x * 5

    (out, aux), gx = value_and_grad(fn, has_aux=True)(ONES)
    assert (float(out.asnumpy()), _values(aux), _values(gx)) == (
        2.0,
        [5.0, 5.0],
        [1.0, 1.0],
    )


def test_top_level_exports() -> None:
    assert spore.grad is grad and spore.value_and_grad is value_and_grad


# ---- errors --------------------------------------------------------------------------


def test_position_and_weights_both_none() -> None:
    net, _, _, _ = _net()
    with pytest.raises(
        ValueError, match=r"'grad_position' and 'weights' should not both"
    ):
        grad(net, grad_position=None, weights=None)


def test_negative_position() -> None:
    net, _, _, _ = _net()
    with pytest.raises(ValueError, match=r"should be >= 0, but got -1"):
        value_and_grad(net, grad_position=-1)


def test_duplicate_positions() -> None:
    net, _, _, _ = _net()
    with pytest.raises(ValueError, match=r"should not repeat a position"):
        grad(net, grad_position=(0, 0))


def test_empty_position_tuple() -> None:
    net, _, _, _ = _net()
    with pytest.raises(ValueError, match=r"should not be an empty tuple"):
        grad(net, grad_position=())


@pytest.mark.parametrize("position", [1.0, [0], True])
def test_position_of_wrong_type(position: Any) -> None:
    net, _, _, _ = _net()
    with pytest.raises(TypeError, match=r"'grad_position' should be None, an int"):
        grad(net, grad_position=position)


def test_position_element_of_wrong_type() -> None:
    net, _, _, _ = _net()
    with pytest.raises(
        TypeError, match=r"every element of 'grad_position' should be an int"
    ):
        grad(net, grad_position=(0, "1"))


def test_position_past_the_inputs() -> None:
    # MindSpore parity: RuntimeError in PyNative (IndexError in GRAPH mode).
    net, _, _, x = _net()
    with pytest.raises(RuntimeError, match=r"'grad_position' 1 is out of range"):
        grad(net, grad_position=1)(x)


def test_weights_of_wrong_type() -> None:
    net, _, _, _ = _net()
    with pytest.raises(TypeError, match=r"the 'weights' should be a Parameter"):
        grad(net, weights={"w": 1})


def test_weights_with_a_non_parameter() -> None:
    net, w, _, _ = _net()
    with pytest.raises(TypeError, match=r"element 1 is a Tensor"):
        grad(net, weights=[w, Tensor(1.0)])


def test_has_aux_must_be_bool() -> None:
    net, _, _, _ = _net()
    with pytest.raises(TypeError, match=r"the 'has_aux' should be bool"):
        grad(net, has_aux=NOT_BOOL)
