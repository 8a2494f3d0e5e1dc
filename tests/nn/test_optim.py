"""Optimizers against a per-parameter float64 reference, and their rules and errors."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from optim_reference import Reference, f32

import spore
from spore import Parameter, Tensor
from spore.nn.cell import Cell
from spore.nn.optim import (
    SGD,
    Adam,
    AdamWeightDecay,
    CosineDecayLR,
    ExponentialDecayLR,
    InverseDecayLR,
    Momentum,
    NaturalExpDecayLR,
    PolynomialDecayLR,
    WarmUpLR,
    _kernels,
    exponential_decay_lr,
    piecewise_constant_lr,
)

ATOL, RTOL = 1e-6, 1e-5
SHAPES = {
    "conv.weight": (4, 16, 3),
    "dense.weight": (5, 7),
    "dense.bias": (7,),
    "bn.gamma": (7,),
    "bn.beta": (7,),
    "scale": (),
}
STEPS = 3
_ANY_FLOAT: Any = 2.0  # a float where an int is due, past the type checker


def _on(array: np.ndarray, device: str) -> Tensor:
    return Tensor.from_torch(torch.from_numpy(np.asarray(array)).to(device))


def _params(
    seed: int = 0, dtype: Any = np.float32, device: str = "cpu"
) -> list[Parameter]:
    rng = np.random.default_rng(seed)
    return [
        Parameter(_on(rng.standard_normal(shape).astype(dtype), device), name=name)
        for name, shape in SHAPES.items()
    ]


def _grads(seed: int, dtype: Any = np.float32) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed + 100)
    return [
        {
            name: (rng.standard_normal(shape) * 0.5).astype(dtype)
            for name, shape in SHAPES.items()
        }
        for _ in range(STEPS)
    ]


def _check_against_reference(
    make: Any,
    formula: dict[str, Any],
    seed: int = 0,
    dtype: Any = np.float32,
    device: str = "cpu",
) -> bool:
    params = _params(seed, dtype, device)
    opt = make(params)
    flags = zip(opt.parameters, opt.decay_flags, strict=True)
    decay = {p.name: flag for p, flag in flags}
    reference = Reference(formula, {p.name: p.asnumpy() for p in params}, decay)
    ok = True
    for grads in _grads(seed, dtype):
        opt(tuple(_on(grads[p.name], device) for p in opt.parameters))
        expected = reference.step(grads)
        ok &= all(
            np.allclose(p.asnumpy(), expected[p.name], atol=ATOL, rtol=RTOL)
            for p in params
        )
    return ok


# Each case: (id, constructor, reference formula).
CASES = [
    (
        "momentum",
        lambda p: Momentum(p, 0.1, 0.9),
        {"kind": "momentum", "lr": 0.1, "momentum": 0.9},
    ),
    (
        "momentum_wd_loss_scale",
        lambda p: Momentum(p, 0.05, 0.8, weight_decay=0.01, loss_scale=8.0),
        {
            "kind": "momentum",
            "lr": 0.05,
            "momentum": 0.8,
            "wd": 0.01,
            "loss_scale": 8.0,
        },
    ),
    (
        "momentum_nesterov",
        lambda p: Momentum(p, 0.1, 0.9, use_nesterov=True),
        {"kind": "momentum", "lr": 0.1, "momentum": 0.9, "nesterov": True},
    ),
    (
        "momentum_zero",
        lambda p: Momentum(p, 0.1, 0.0),
        {"kind": "momentum", "lr": 0.1, "momentum": 0.0},
    ),
    (
        "momentum_dynamic_lr",
        lambda p: Momentum(p, [0.1, 0.03, 0.01], 0.9),
        {"kind": "momentum", "lr": [0.1, 0.03, 0.01], "momentum": 0.9},
    ),
    ("sgd_plain", lambda p: SGD(p, 0.1), {"kind": "sgd", "lr": 0.1}),
    (
        "sgd_momentum_dampening_wd",
        lambda p: SGD(p, 0.1, 0.9, 0.3, weight_decay=0.02),
        {"kind": "sgd", "lr": 0.1, "momentum": 0.9, "dampening": 0.3, "wd": 0.02},
    ),
    (
        "sgd_nesterov_loss_scale",
        lambda p: SGD(p, 0.1, 0.9, nesterov=True, loss_scale=4.0),
        {
            "kind": "sgd",
            "lr": 0.1,
            "momentum": 0.9,
            "nesterov": True,
            "loss_scale": 4.0,
        },
    ),
    (
        "sgd_dampening_only",
        lambda p: SGD(p, 0.1, 0.0, 0.5),
        {"kind": "sgd", "lr": 0.1, "dampening": 0.5},
    ),
    (
        "adam",
        lambda p: Adam(p, 0.01),
        {"kind": "adam", "lr": 0.01, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8},
    ),
    (
        "adam_eps_wd_loss_scale",
        lambda p: Adam(p, 0.05, 0.8, 0.99, 0.1, weight_decay=0.1, loss_scale=2.0),
        {
            "kind": "adam",
            "lr": 0.05,
            "beta1": 0.8,
            "beta2": 0.99,
            "eps": 0.1,
            "wd": 0.1,
            "loss_scale": 2.0,
        },
    ),
    (
        "adam_nesterov",
        lambda p: Adam(p, 0.05, use_nesterov=True),
        {
            "kind": "adam",
            "lr": 0.05,
            "beta1": 0.9,
            "beta2": 0.999,
            "eps": 1e-8,
            "nesterov": True,
        },
    ),
    (
        "adam_amsgrad",
        lambda p: Adam(p, 0.05, use_amsgrad=True),
        {
            "kind": "adam",
            "lr": 0.05,
            "beta1": 0.9,
            "beta2": 0.999,
            "eps": 1e-8,
            "amsgrad": True,
        },
    ),
    (
        "adam_nesterov_amsgrad",
        lambda p: Adam(p, 0.05, use_nesterov=True, use_amsgrad=True),
        {
            "kind": "adam",
            "lr": 0.05,
            "beta1": 0.9,
            "beta2": 0.999,
            "eps": 1e-8,
            "nesterov": True,
            "amsgrad": True,
        },
    ),
    (
        "adam_dynamic_lr",
        lambda p: Adam(p, np.array([0.1, 0.05, 0.02], np.float32)),
        {
            "kind": "adam",
            "lr": [0.1, 0.05, 0.02],
            "beta1": 0.9,
            "beta2": 0.999,
            "eps": 1e-8,
        },
    ),
    (
        "adamw",
        lambda p: AdamWeightDecay(p, 0.05, weight_decay=0.1),
        {
            "kind": "adamw",
            "lr": 0.05,
            "beta1": 0.9,
            "beta2": 0.999,
            "eps": 1e-6,
            "wd": 0.1,
        },
    ),
    (
        "adamw_dynamic_lr",
        lambda p: AdamWeightDecay(p, [0.1, 0.05, 0.01], 0.85, 0.95, 1e-4, 0.2),
        {
            "kind": "adamw",
            "lr": [0.1, 0.05, 0.01],
            "beta1": 0.85,
            "beta2": 0.95,
            "eps": 1e-4,
            "wd": 0.2,
        },
    ),
]


def _grouped(cls: Any, **kwargs: Any) -> Any:
    def make(p: list[Parameter]) -> Any:
        groups = [
            {"params": p[:3], "lr": 0.05, "weight_decay": 0.1},
            {"params": p[3:5], "weight_decay": 0.0},
            {"params": p[5:], "lr": 0.2, "weight_decay": 0.02},
            {"order_params": p[::-1]},
        ]
        return cls(groups, learning_rate=0.1, **kwargs)

    return make


_NAMES = list(SHAPES)
_GROUP_LR = (
    {n: 0.05 for n in _NAMES[:3]} | {n: 0.1 for n in _NAMES[3:5]} | {"scale": 0.2}
)
_GROUP_WD = (
    {n: 0.1 for n in _NAMES[:3]} | {n: 0.0 for n in _NAMES[3:5]} | {"scale": 0.02}
)
CASES += [
    (
        "momentum_groups",
        _grouped(Momentum, momentum=0.9),
        {"kind": "momentum", "lr": _GROUP_LR, "wd": _GROUP_WD, "momentum": 0.9},
    ),
    (
        "sgd_groups",
        _grouped(SGD, momentum=0.5),
        {"kind": "sgd", "lr": _GROUP_LR, "wd": _GROUP_WD, "momentum": 0.5},
    ),
    (
        "adam_groups",
        _grouped(Adam),
        {
            "kind": "adam",
            "lr": _GROUP_LR,
            "wd": _GROUP_WD,
            "beta1": 0.9,
            "beta2": 0.999,
            "eps": 1e-8,
        },
    ),
    (
        "adamw_groups",
        _grouped(AdamWeightDecay),
        {
            "kind": "adamw",
            "lr": _GROUP_LR,
            "wd": _GROUP_WD,
            "beta1": 0.9,
            "beta2": 0.999,
            "eps": 1e-6,
        },
    ),
]
CASE_IDS = [c[0] for c in CASES]


@pytest.mark.parametrize(("case_id", "make", "formula"), CASES, ids=CASE_IDS)
def test_fused_path_matches_float64_reference(
    case_id: str, make: Any, formula: Any
) -> None:
    assert _check_against_reference(make, formula)


@pytest.mark.parametrize(("case_id", "make", "formula"), CASES, ids=CASE_IDS)
def test_foreach_path_matches_float64_reference(
    case_id: str, make: Any, formula: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_kernels, "can_fuse", lambda tensors: False)
    assert _check_against_reference(make, formula, seed=1)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("fused", [True, False], ids=["fused", "foreach"])
@pytest.mark.parametrize(("case_id", "make", "formula"), CASES, ids=CASE_IDS)
def test_cuda_parameters_match_float64_reference_and_stay_on_the_gpu(
    case_id: str, make: Any, formula: Any, fused: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not fused:
        monkeypatch.setattr(_kernels, "can_fuse", lambda tensors: False)
    assert _check_against_reference(make, formula, seed=2, device="cuda")
    params = _params(device="cuda")
    opt = make(params)
    ones = [torch.ones_like(p.to_torch()) for p in opt.parameters]  # its order
    opt(tuple(Tensor.from_torch(g) for g in ones))
    assert {p.to_torch().device.type for p in params} == {"cuda"}


@pytest.mark.parametrize(
    ("case_id", "make", "formula"),
    CASES[:1] + CASES[9:10] + CASES[15:16],
    ids=["momentum", "adam", "adamw"],
)
def test_float64_parameters_match_reference(
    case_id: str, make: Any, formula: Any
) -> None:
    assert _check_against_reference(make, formula, seed=2, dtype=np.float64)


# ---- the step ------------------------------------------------------------------------


def _one_param(value: Any = (1.0, 2.0), name: str = "w") -> Parameter:
    return Parameter(Tensor(np.array(value, np.float32)), name=name)


def test_global_step_advances_every_call() -> None:
    opt = Momentum([_one_param()], 0.1, 0.9)
    for _ in range(3):
        opt((Tensor(np.ones(2, np.float32)),))
    assert (
        opt.global_step.asnumpy().tolist() == [3]
        and opt.global_step.dtype == spore.int32
    )


def test_dynamic_lr_past_the_end_fails_before_changing_anything() -> None:
    w = _one_param()
    opt = SGD([w], [0.1])
    opt((Tensor(np.ones(2, np.float32)),))
    with pytest.raises(RuntimeError, match=r"has 1 values, but step 1"):
        opt((Tensor(np.ones(2, np.float32)),))
    assert np.allclose(
        w.asnumpy(), [0.9, 1.9]
    ) and opt.global_step.asnumpy().tolist() == [1]


def test_schedule_is_called_with_global_step() -> None:
    w = _one_param((0.0,))
    opt = SGD([w], ExponentialDecayLR(0.1, 0.5, 1))
    for _ in range(3):
        opt((Tensor(np.ones(1, np.float32)),))
    assert np.isclose(w.asnumpy()[0], -(0.1 + 0.05 + 0.025))


def test_none_gradient_skips_the_parameter() -> None:
    w, b = _one_param(name="w"), _one_param(name="b")
    opt = Momentum([w, b], 0.1, 0.9)
    opt((None, Tensor(np.ones(2, np.float32))))
    assert w.asnumpy().tolist() == [1.0, 2.0] and not opt.moments[0].asnumpy().any()


def test_torch_gradients_are_accepted_and_cast() -> None:
    w = _one_param()
    Momentum([w], 0.5, 0.9)((torch.ones(2, dtype=torch.float64),))
    assert w.asnumpy().tolist() == [0.5, 1.5] and w.dtype == spore.float32


def test_gradients_are_not_modified() -> None:
    grad = Tensor(np.ones(2, np.float32))
    Adam([_one_param()], 0.1, weight_decay=0.1, loss_scale=4.0)((grad,))
    assert grad.asnumpy().tolist() == [1.0, 1.0]


def test_parameters_stay_autograd_leaves() -> None:
    w = _one_param()
    Adam([w])((Tensor(np.ones(2, np.float32)),))
    raw = w.to_torch()
    assert raw.is_leaf and raw.requires_grad and raw.grad_fn is None


def test_state_loaded_with_set_data_is_used() -> None:
    w = _one_param((0.0, 0.0))
    opt = Momentum([w], 1.0, 0.5)
    opt.moments[0].set_data(Tensor(np.array([2.0, 4.0], np.float32)))
    opt((Tensor(np.zeros(2, np.float32)),))
    assert w.asnumpy().tolist() == [-1.0, -2.0]


def test_learning_rate_parameter_set_data_is_used() -> None:
    w = _one_param((0.0,))
    opt = SGD([w], 0.1)
    opt.learning_rate.set_data(Tensor(np.float32(2.0)))
    opt((Tensor(np.ones(1, np.float32)),))
    assert w.asnumpy().tolist() == [-2.0]


def test_dynamic_weight_decay_cell() -> None:
    class _ConstantWd(Cell):
        def construct(self, global_step: Any) -> Tensor:
            return Tensor(np.float32(0.5))

    w = _one_param((2.0,))
    Momentum([w], 0.1, 0.9, weight_decay=_ConstantWd())(
        (Tensor(np.zeros(1, np.float32)),)
    )
    assert np.isclose(w.asnumpy()[0], 2.0 - 0.1 * 0.5 * 2.0)


def test_grad_centralization_in_groups() -> None:
    rng = np.random.default_rng(3)
    value = rng.standard_normal((2, 16)).astype(np.float32)
    grad = rng.standard_normal((2, 16)).astype(np.float32)
    w = Parameter(Tensor(value), name="w")
    SGD([{"params": [w], "grad_centralization": True}], 0.1)((Tensor(grad),))
    expected = value - 0.1 * (grad - grad.mean(axis=1, keepdims=True))
    assert np.allclose(w.asnumpy(), expected, atol=ATOL)


def test_grad_centralization_flags_need_2d_and_width_16() -> None:
    params = [
        Parameter(Tensor(np.zeros(s, np.float32)), name=f"p{i}")
        for i, s in enumerate([(2, 16), (2, 8), (16,)])
    ]
    opt = SGD([{"params": params, "grad_centralization": True}])
    assert opt.grad_centralization_flags == (True, False, False)


def test_get_lr_returns_rate_and_advances_step() -> None:
    opt = Momentum([_one_param()], [0.1, 0.2], 0.9)
    first, second = opt.get_lr(), opt.get_lr()
    assert np.isclose(
        [float(first.asnumpy()), float(second.asnumpy())], [0.1, 0.2]
    ).all()


def test_get_lr_parameter_ungrouped_and_grouped() -> None:
    w, b = _one_param(name="w"), _one_param(name="b")
    opt = Momentum([{"params": [w], "lr": 0.5}, {"params": [b]}], 0.1, 0.9)
    assert [p.name for p in opt.get_lr_parameter([w, b])] == [
        "learning_rate_group_0",
        "learning_rate",
    ] and opt.get_lr_parameter(w).name == "learning_rate_group_0"


def test_get_lr_parameter_refuses_foreign_parameter() -> None:
    opt = Momentum([_one_param()], 0.1, 0.9)
    with pytest.raises(ValueError, match=r"'other' is not updated by this optimizer"):
        opt.get_lr_parameter(_one_param(name="other"))


def test_get_lr_parameter_refuses_bad_type() -> None:
    opt = Momentum([_one_param()], 0.1, 0.9)
    with pytest.raises(TypeError, match=r"should be a Parameter or a list"):
        opt.get_lr_parameter("w")


# ---- structure -----------------------------------------------------------------------


def test_default_decay_filter_skips_beta_and_gamma() -> None:
    opt = Adam(_params())
    assert opt.decay_flags == (True, True, True, False, False, True)


def test_grouped_decay_flags_follow_weight_decay_not_names() -> None:
    p = _params()
    opt = Momentum(
        [{"params": p[:4], "weight_decay": 0.1}, {"params": p[4:]}], 0.1, 0.9
    )
    assert opt.decay_flags == (True, True, True, True, False, False)


def test_group_without_lr_shares_default_learning_rate() -> None:
    p = _params()
    opt = SGD([{"params": p[:2], "lr": 0.3}, {"params": p[2:]}], 0.1)
    names = [key for key, _ in opt.parameters_and_names()][:3]
    assert names == ["global_step", "learning_rate_group_0", "learning_rate"]


def test_grouped_dynamic_lr_uses_cells_and_pads_static_rates() -> None:
    p = _params()
    opt = SGD([{"params": p[:2], "lr": [0.3, 0.2]}, {"params": p[2:], "lr": 0.5}], 0.1)
    keys = [(key, q.name) for key, q in opt.parameters_and_names() if "learning" in key]
    assert keys == [
        ("learning_rate.0.learning_rate", "learning_rate_group_0"),
        ("learning_rate.1.learning_rate", "learning_rate_group_1"),
    ]


def test_weight_decay_is_stored_times_loss_scale() -> None:
    opt = Momentum(_params(), 0.1, 0.9, weight_decay=0.01, loss_scale=4.0)
    assert np.isclose(opt.weight_decay, 0.04) and opt.reciprocal_scale == 0.25


def test_optimizer_state_is_trainable_like_mindspore() -> None:
    opt = Momentum([_one_param()], 0.1, 0.9)
    assert [p.name for p in opt.trainable_params()] == [
        "global_step",
        "learning_rate",
        "w",
        "momentum",
        "moments.w",
    ]


def test_learning_rate_is_float32() -> None:
    opt = SGD([_one_param()], 0.1)
    assert (
        opt.learning_rate.dtype == spore.float32
        and opt.learning_rate.asnumpy() == f32(0.1)
    )


# ---- errors --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("parameters", "error", "match"),
    [
        (None, ValueError, r"should be a non-empty list"),
        ([], ValueError, r"should not be empty"),
        ("w", TypeError, r"should be a list or tuple"),
        ([1.0], TypeError, r"should be a Parameter"),
    ],
)
def test_bad_parameters(parameters: Any, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        SGD(parameters)


def test_mixed_parameters_and_groups() -> None:
    w = _one_param()
    with pytest.raises(TypeError, match=r"every element a group dict"):
        SGD([w, {"params": [w]}])


def test_parameter_given_twice() -> None:
    w = _one_param()
    with pytest.raises(RuntimeError, match=r"'w' already exists"):
        SGD([{"params": [w]}, {"params": [w]}])


def test_unknown_group_key() -> None:
    with pytest.raises(KeyError, match=r"unknown key\(s\) \['momentum'\]"):
        SGD([{"params": [_one_param()], "momentum": 0.9}])


def test_group_non_parameter() -> None:
    with pytest.raises(TypeError, match=r"'params' of group 0 should be a Parameter"):
        SGD([{"params": [_one_param(), 3]}])


def test_order_params_not_alone() -> None:
    w = _one_param()
    with pytest.raises(ValueError, match=r"'order_params' should have no other key"):
        SGD([{"params": [w]}, {"order_params": [w], "lr": 0.1}])


def test_order_params_not_iterable() -> None:
    w = _one_param()
    with pytest.raises(TypeError, match=r"'order_params' should be an iterable"):
        SGD([{"params": [w]}, {"order_params": 3}])


def test_order_params_missing_a_grouped_parameter() -> None:
    w, b = _one_param(name="w"), _one_param(name="b")
    with pytest.raises(ValueError, match=r"misses \['b'\]"):
        SGD([{"params": [w, b]}, {"order_params": [w]}])


def test_group_dynamic_lr_length_mismatch() -> None:
    w, b = _one_param(name="w"), _one_param(name="b")
    with pytest.raises(ValueError, match=r"same length, but got lengths \[2, 3\]"):
        SGD([{"params": [w], "lr": [0.1, 0.2]}, {"params": [b]}], [0.1, 0.2, 0.3])


@pytest.mark.parametrize(
    ("lr", "error", "match"),
    [
        (-0.1, ValueError, r"'learning_rate' should be >= 0.0"),
        ("0.1", TypeError, r"should be a float, int, Tensor"),
        (True, TypeError, r"should be a float, int, Tensor"),
        (Tensor(np.ones((2, 2), np.float32)), ValueError, r"should be 0-d or 1-D"),
        ([0.1, -1.0], ValueError, r"item 1 is -1.0"),
        ([], ValueError, r"should not be empty"),
    ],
)
def test_bad_learning_rate(lr: Any, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        SGD([_one_param()], lr)


def test_negative_weight_decay() -> None:
    with pytest.raises(ValueError, match=r"'weight_decay' should be >= 0.0"):
        Momentum([_one_param()], 0.1, 0.9, weight_decay=-1.0)


@pytest.mark.parametrize(("scale", "error"), [(0.0, ValueError), ("2", TypeError)])
def test_bad_loss_scale(scale: Any, error: type) -> None:
    with pytest.raises(error, match=r"'loss_scale' should be"):
        Momentum([_one_param()], 0.1, 0.9, loss_scale=scale)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"momentum": 1}, TypeError, r"'momentum' should be float, but got int"),
        ({"momentum": -0.5}, ValueError, r"'momentum' should be >= 0.0"),
        (
            {"momentum": 0.9, "use_nesterov": 1},
            TypeError,
            r"'use_nesterov' should be bool",
        ),
    ],
)
def test_bad_momentum_arguments(kwargs: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        Momentum([_one_param()], 0.1, **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"nesterov": True}, ValueError, r"'nesterov' needs 'momentum' > 0"),
        (
            {"momentum": 0.9, "dampening": 0.1, "nesterov": True},
            ValueError,
            r"'dampening' == 0",
        ),
        ({"dampening": 1}, TypeError, r"'dampening' should be float"),
        (
            {"weight_decay": Cell()},
            TypeError,
            r"a dynamic weight decay is not supported",
        ),
    ],
)
def test_bad_sgd_arguments(kwargs: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        SGD([_one_param()], 0.1, **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"beta1": 1.0}, ValueError, r"'beta1' should be < 1.0"),
        ({"beta2": 1}, TypeError, r"'beta2' should be float"),
        ({"eps": 0.0}, ValueError, r"'eps' should be > 0.0"),
        ({"use_amsgrad": "yes"}, TypeError, r"'use_amsgrad' should be bool"),
        ({"use_lazy": 1}, TypeError, r"'use_lazy' should be bool"),
        ({"lazy": True}, TypeError, r"unexpected keyword argument 'lazy'"),
    ],
)
def test_bad_adam_arguments(kwargs: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        Adam([_one_param()], **kwargs)


def test_bad_adam_weight_decay_beta() -> None:
    with pytest.raises(ValueError, match=r"'beta1' should be > 0.0"):
        AdamWeightDecay([_one_param()], beta1=0.0)


def test_wrong_number_of_gradients() -> None:
    opt = SGD([_one_param()])
    with pytest.raises(ValueError, match=r"expected 1 gradients"):
        opt(())


def test_gradient_of_wrong_shape() -> None:
    opt = SGD([_one_param()])
    with pytest.raises(
        ValueError, match=r"'w' should have shape \(2,\), but got \(3,\)"
    ):
        opt((Tensor(np.ones(3, np.float32)),))


def test_gradient_of_wrong_type() -> None:
    opt = SGD([_one_param()])
    with pytest.raises(TypeError, match=r"gradient of 'w' should be a Tensor"):
        opt(([1.0, 2.0],))


def test_gradients_not_a_sequence() -> None:
    opt = SGD([_one_param()])
    with pytest.raises(TypeError, match=r"should be a tuple or list"):
        opt(Tensor(np.ones(2, np.float32)))


# ---- schedules and lr lists ----------------------------------------------------------


def _at(schedule: Any, step: int) -> float:
    return float(schedule(Tensor(np.array([step], np.int32))).asnumpy().reshape(-1)[0])


@pytest.mark.parametrize(
    ("schedule", "step", "expected"),
    [
        (ExponentialDecayLR(0.1, 0.5, 2), 3, 0.1 * 0.5**1.5),
        (ExponentialDecayLR(0.1, 0.5, 2, is_stair=True), 3, 0.05),
        (NaturalExpDecayLR(0.1, 0.5, 2), 3, 0.1 * np.exp(-0.5 * 1.5)),
        (InverseDecayLR(0.1, 0.5, 2), 3, 0.1 / (1 + 0.5 * 1.5)),
        (CosineDecayLR(0.01, 0.1, 4), 2, 0.01 + 0.09 * 0.5),
        (CosineDecayLR(0.01, 0.1, 4), 9, 0.01),
        (PolynomialDecayLR(0.1, 0.01, 4, 0.5), 2, 0.09 * 0.5**0.5 + 0.01),
        (
            PolynomialDecayLR(0.1, 0.01, 4, 1.0, update_decay_steps=True),
            6,
            0.09 * 0.25 + 0.01,
        ),
        (WarmUpLR(0.1, 4), 1, 0.025),
        (WarmUpLR(0.1, 4), 10, 0.1),
    ],
)
def test_schedule_values(schedule: Any, step: int, expected: float) -> None:
    assert np.isclose(_at(schedule, step), expected, rtol=1e-6)


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (
            lambda: ExponentialDecayLR(1, 0.5, 2),
            TypeError,
            r"'learning_rate' should be float",
        ),
        (
            lambda: ExponentialDecayLR(0.1, 0.5, 0),
            ValueError,
            r"'decay_steps' should be >= 1",
        ),
        (
            lambda: CosineDecayLR(0.1, 0.05, 2),
            ValueError,
            r"'max_lr' should be > 'min_lr'",
        ),
        (
            lambda: PolynomialDecayLR(0.1, -0.1, 2, 1.0),
            ValueError,
            r"'end_learning_rate'",
        ),
        (lambda: WarmUpLR(0.1, _ANY_FLOAT), TypeError, r"'warmup_steps' should be int"),
    ],
)
def test_bad_schedule_arguments(make: Any, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        make()


def test_exponential_decay_lr_list() -> None:
    assert exponential_decay_lr(
        0.1, 0.5, total_step=6, step_per_epoch=2, decay_epoch=1
    ) == [0.1, 0.1, 0.05, 0.05, 0.025, 0.025]


def test_piecewise_constant_lr_list() -> None:
    assert piecewise_constant_lr([2, 5], [0.1, 0.05]) == [0.1, 0.1, 0.05, 0.05, 0.05]


def test_piecewise_constant_lr_needs_increasing_milestones() -> None:
    with pytest.raises(ValueError, match=r"strictly increasing"):
        piecewise_constant_lr([3, 2], [0.1, 0.05])


def test_piecewise_constant_lr_length_mismatch() -> None:
    with pytest.raises(ValueError, match=r"the same length, but got 2 and 1"):
        piecewise_constant_lr([2, 3], [0.1])
