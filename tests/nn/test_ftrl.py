"""``nn.FTRL`` (spore/nn/optim/ftrl.py) against MindSpore 2.10's recorded numbers.

tests/nn/ftrl_mindspore210.json comes from scripts/record_ftrl_mindspore.py (the
command is in its header). Each config's ``source`` runs with ``nn`` bound to
spore's ``nn`` on fresh Parameters; the recorded gradients are applied step by
step and the parameters, ``moments.*`` and ``linear.*`` must match every step.

One deliberate difference: MindSpore 2.10's dense CPU kernel uses ``+l1`` where
its documentation (and its sparse kernel) use ``sign(linear)*l1``; spore follows
the documentation. Config ``l1_mixed_signs`` pins both sides of that with a
float64 reference of the formula written below, independent of spore's kernel.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import spore
from spore import Parameter, Tensor, nn
from spore.nn.optim import _kernels

FIXTURE = Path(__file__).with_name("ftrl_mindspore210.json")
DATA: dict[str, Any] = json.loads(FIXTURE.read_text())
CONFIGS = {config["id"]: config for config in DATA["configs"]}
DIFFERENT = "l1_mixed_signs"  # MindSpore 2.10's +l1 bug; see the module docstring
ATOL, RTOL = 1e-6, 1e-5


def _array(record: dict[str, Any]) -> np.ndarray:
    return np.asarray(record["values"], np.float32).reshape(record["shape"])


def _fresh(set_name: str) -> dict[str, Parameter]:
    initial = DATA["param_sets"][set_name]["initial_params"]
    return {k: Parameter(Tensor(_array(r)), name=k) for k, r in initial.items()}


def _namespace(params: dict[str, Parameter]) -> dict[str, Any]:
    return {"nn": nn, "params": list(params.values()), **params}


def _build(config: dict[str, Any]) -> tuple[nn.FTRL, dict[str, Parameter]]:
    params = _fresh(config["param_set"])
    return eval(config["source"], _namespace(params)), params


def _grads(set_name: str, step: int, opt: nn.FTRL) -> tuple[Tensor, ...]:
    records = DATA["param_sets"][set_name]["grads"][step]
    return tuple(Tensor(_array(records[p.name])) for p in opt.parameters)


def _state(opt: nn.FTRL) -> dict[str, np.ndarray]:
    return {p.name: p.asnumpy().copy() for p in (*opt.moments, *opt.linear)}


def _run(config: dict[str, Any]) -> tuple[nn.FTRL, list[dict[str, np.ndarray]]]:
    """The optimizer and, per step, every parameter and state value by name."""
    opt, params = _build(config)
    after = []
    for step in range(DATA["header"]["n_steps"]):
        opt(_grads(config["param_set"], step, opt))
        values = {k: p.asnumpy().copy() for k, p in params.items()}
        after.append({**values, **_state(opt)})
    return opt, after


def _recorded(config: dict[str, Any]) -> list[dict[str, np.ndarray]]:
    out = []
    for step in config["steps"]:
        values = {k: _array(r) for k, r in step["params"].items()}
        out.append({**values, **{k: _array(r) for k, r in step["state"].items()}})
    return out


# ---- a float64 reference of the documented formula ---------------------------------


def _f32(value: float) -> float:
    return float(np.float32(value))


class _Capture:
    """Stands in for ``nn``: ``nn.FTRL(params, **kwargs)`` returns the kwargs."""

    @staticmethod
    def FTRL(params: Any, **kwargs: Any) -> dict[str, Any]:
        return kwargs


def _reference(
    config: dict[str, Any], l1_sign: bool, accum_dtype: Any = np.float32
) -> list[dict[str, np.ndarray]]:
    """Ungrouped FTRL in float64; ``l1_sign=False`` models MindSpore's +l1.

    ``initial_accum`` is rounded to ``accum_dtype`` (the Parameters' dtype).
    """
    params = _fresh(config["param_set"])
    kwargs = eval(config["source"], {**_namespace(params), "nn": _Capture})
    lr = _f32(kwargs.get("learning_rate", 0.001))
    power = -_f32(kwargs.get("lr_power", -0.5))
    l1, l2 = _f32(kwargs.get("l1", 0.0)), _f32(kwargs.get("l2", 0.0))
    scale = float(kwargs.get("loss_scale", 1.0))
    decay = _f32(kwargs.get("weight_decay", 0.0) * scale)
    w = {k: p.asnumpy().astype(np.float64) for k, p in params.items()}
    start = float(accum_dtype(kwargs.get("initial_accum", 0.1)))
    accum = {k: np.full(v.shape, start) for k, v in w.items()}
    linear = {k: np.zeros(v.shape) for k, v in w.items()}
    out = []
    for records in DATA["param_sets"][config["param_set"]]["grads"]:
        for k in w:
            g = (_array(records[k]).astype(np.float64) + decay * w[k]) * _f32(1 / scale)
            new = accum[k] + g * g
            linear[k] += g - (new**power - accum[k] ** power) / lr * w[k]
            sign = np.sign(linear[k]) if l1_sign else 1.0
            quadratic = new**power / lr + 2 * l2
            shrunk = np.where(np.abs(linear[k]) > l1, sign * l1 - linear[k], 0.0)
            w[k] = np.divide(
                shrunk, quadratic, out=np.zeros_like(shrunk), where=shrunk != 0
            )
            accum[k] = new
        out.append(
            {
                **{k: v.copy() for k, v in w.items()},
                **{f"moments.{k}": v.copy() for k, v in accum.items()},
                **{f"linear.{k}": v.copy() for k, v in linear.items()},
            }
        )
    return out


def _assert_close(got: dict, want: dict, atol: float, rtol: float, where: str) -> None:
    assert sorted(got) == sorted(want), where
    for name in want:
        np.testing.assert_allclose(
            got[name], want[name], atol=atol, rtol=rtol, err_msg=f"{where}: {name}"
        )


# ---- replay of the recorded MindSpore runs -----------------------------------------

MATCHING = sorted(set(CONFIGS) - {DIFFERENT})
UNGROUPED = sorted(
    i for i in CONFIGS if not CONFIGS[i]["source"].startswith("nn.FTRL([")
)


@pytest.mark.parametrize("config_id", MATCHING)
def test_steps_match_mindspore(config_id: str) -> None:
    config = CONFIGS[config_id]
    _, after = _run(config)
    for step, (got, want) in enumerate(zip(after, _recorded(config), strict=True)):
        _assert_close(got, want, ATOL, RTOL, f"{config_id} step {step + 1}")


@pytest.mark.parametrize("config_id", sorted(CONFIGS))
def test_names_order_flags_and_step_match_mindspore(config_id: str) -> None:
    config = CONFIGS[config_id]
    opt, _ = _run(config)
    assert [name for name, _ in opt.parameters_and_names()] == config[
        "parameters_and_names"
    ]
    assert [p.name for p in opt.parameters] == config["optimizer_parameters"]
    assert list(opt.decay_flags) == config["decay_flags"]
    assert int(opt.global_step.asnumpy()[0]) == config["global_step"]


@pytest.mark.parametrize("config_id", UNGROUPED)
def test_reference_formula_reproduces_the_recordings(config_id: str) -> None:
    """The float64 reference is right: it gives MindSpore's numbers (with +l1
    for the config where MindSpore's kernel differs from its docs)."""
    config = CONFIGS[config_id]
    reference = _reference(config, l1_sign=config_id != DIFFERENT)
    for step, (want, got) in enumerate(zip(reference, _recorded(config), strict=True)):
        _assert_close(got, want, 1e-5, 1e-4, f"{config_id} step {step + 1}")


def test_l1_with_negative_linear_follows_the_documented_formula() -> None:
    config = CONFIGS[DIFFERENT]
    _, after = _run(config)
    for step, (got, want) in enumerate(
        zip(after, _reference(config, l1_sign=True), strict=True)
    ):
        _assert_close(got, want, 1e-5, 1e-4, f"step {step + 1}")
    # ... which is not what MindSpore 2.10's CPU kernel gives there.
    first = _recorded(config)[0]
    negative = first["linear.w"] < -0.05
    assert negative.any()
    assert not np.allclose(after[0]["w"][negative], first["w"][negative], atol=1e-3)
    assert np.allclose(after[0]["w"][~negative], first["w"][~negative], ATOL, RTOL)


def test_ungrouped_weight_decay_includes_beta_and_gamma_names() -> None:
    config = CONFIGS["weight_decay"]
    opt, params = _build(config)
    assert "gamma" in params and opt.decay_flags == (True, True, True)
    assert opt.exec_weight_decay


def test_zero_accumulator_and_zero_gradient_give_zero_not_nan() -> None:
    config = CONFIGS["initial_accum_zero"]
    _, after = _run(config)
    assert DATA["param_sets"]["mixed"]["grads"][0]["b"]["values"][0] == 0.0
    assert after[0]["b"][0] == 0.0 == _recorded(config)[0]["b"][0]
    assert all(np.isfinite(v).all() for step in after for v in step.values())


# ---- argument checks ----------------------------------------------------------------

SPORE_MESSAGES = {
    "nn.FTRL(params, learning_rate=1)": (
        r"For 'FTRL', the 'learning_rate' should be float, but got int"
    ),
    "nn.FTRL(params, learning_rate=0.0)": (
        r"For 'FTRL', the 'learning_rate' should be > 0.0, but got 0.0"
    ),
    "nn.FTRL(params, learning_rate=-0.1)": (
        # The base class's check (it names 'Optimizer'; MindSpore names 'FTRL').
        r"the 'learning_rate' should be >= 0.0, but got -0.1"
    ),
    "nn.FTRL(params, learning_rate=[0.1, 0.2])": (
        r"For 'FTRL', the learning rate should be one fixed float, but got "
        r"dynamic_lr=True and group lr=False"
    ),
    "nn.FTRL(params, learning_rate=nn.ExponentialDecayLR(0.1, 0.9, 1))": (
        r"For 'FTRL', the learning rate should be one fixed float, but got "
        r"dynamic_lr=True"
    ),
    "nn.FTRL([{'params': [w], 'lr': 0.1}, {'params': [b, gamma]}])": (
        r"For 'FTRL', the learning rate should be one fixed float, but got "
        r"dynamic_lr=False and group lr=True"
    ),
    "nn.FTRL(params, initial_accum=1)": (
        r"For 'FTRL', the 'initial_accum' should be float, but got int"
    ),
    "nn.FTRL(params, initial_accum=-0.1)": (
        r"For 'FTRL', the 'initial_accum' should be >= 0.0, but got -0.1"
    ),
    "nn.FTRL(params, lr_power=0.5)": (
        r"For 'FTRL', the 'lr_power' should be <= 0.0, but got 0.5"
    ),
    "nn.FTRL(params, lr_power=-1)": (
        r"For 'FTRL', the 'lr_power' should be float, but got int"
    ),
    "nn.FTRL(params, l1=-1.0)": r"For 'FTRL', the 'l1' should be >= 0.0, but got -1.0",
    "nn.FTRL(params, l1=1)": r"For 'FTRL', the 'l1' should be float, but got int",
    "nn.FTRL(params, l2=-1.0)": r"For 'FTRL', the 'l2' should be >= 0.0, but got -1.0",
    "nn.FTRL(params, l2=0)": r"For 'FTRL', the 'l2' should be float, but got int",
    "nn.FTRL(params, use_locking=1)": (
        r"For 'FTRL', the 'use_locking' should be bool, but got int"
    ),
    "nn.FTRL(params, loss_scale=0.0)": (
        r"For 'FTRL', the 'loss_scale' should be > 0.0, but got 0.0"
    ),
    "nn.FTRL(params, weight_decay=-0.1)": (
        r"For 'FTRL', the 'weight_decay' should be >= 0.0, but got -0.1"
    ),
}


def test_every_recorded_refusal_has_a_spore_message() -> None:
    assert sorted(SPORE_MESSAGES) == sorted(e["source"] for e in DATA["errors"])


@pytest.mark.parametrize("record", DATA["errors"], ids=lambda e: e["source"])
def test_refusals_match_mindspore_class(record: dict[str, Any]) -> None:
    params = _fresh("mixed")
    before = {k: p.asnumpy().copy() for k, p in params.items()}
    error = {"TypeError": TypeError, "ValueError": ValueError}[record["error"]]
    with pytest.raises(error, match=SPORE_MESSAGES[record["source"]]):
        eval(record["source"], _namespace(params))
    assert record["params_unchanged"]
    assert all(np.array_equal(before[k], p.asnumpy()) for k, p in params.items())


def test_refused_gradients_leave_parameters_and_state_unchanged() -> None:
    opt, params = _build(CONFIGS["lr"])
    opt(_grads("mixed", 0, opt))
    before = {**{k: p.asnumpy().copy() for k, p in params.items()}, **_state(opt)}
    bad = list(_grads("mixed", 1, opt))
    bad[1] = Tensor(np.zeros((2, 2), np.float32))
    with pytest.raises(
        ValueError, match=r"For 'FTRL', the gradient of 'b' should have"
    ):
        opt(tuple(bad))
    after = {**{k: p.asnumpy() for k, p in params.items()}, **_state(opt)}
    assert all(np.array_equal(before[k], after[k]) for k in before)
    assert int(opt.global_step.asnumpy()[0]) == 1


# ---- attributes, groups, the plain-tensor kernel ------------------------------------


def test_hyperparameters_are_float32_attributes() -> None:
    opt = nn.FTRL(list(_fresh("mixed").values()), learning_rate=0.1, l1=0.3, l2=0.7)
    assert (opt.lr, opt.l1, opt.l2, opt.lr_power) == (
        _f32(0.1),
        _f32(0.3),
        _f32(0.7),
        -0.5,
    )
    assert opt.use_locking is False
    assert np.all(opt.moments[0].asnumpy() == np.float32(0.1))
    assert np.all(opt.linear[0].asnumpy() == 0.0)


def test_grad_centralization_group_centralizes_before_the_update() -> None:
    # MindSpore 2.10 has no CPU Centralization kernel, so this is not recorded.
    params = _fresh("mixed")
    w = params["w"]
    start = w.to_torch().detach().clone()
    opt = nn.FTRL(
        [{"params": [w], "grad_centralization": True}, {"params": [params["b"]]}],
        learning_rate=0.1,
    )
    grad = torch.from_numpy(_array(DATA["param_sets"]["mixed"]["grads"][0]["w"]))
    opt((grad, torch.zeros(3)))
    want = [start.clone()]
    centred = grad - grad.mean(dim=1, keepdim=True)
    _kernels.ftrl(
        want,
        [centred],
        [torch.full_like(start, _f32(0.1))],
        [torch.zeros_like(start)],
        lr=_f32(0.1),
        l1=0.0,
        l2=0.0,
        lr_power=-0.5,
    )
    assert torch.allclose(w.to_torch(), want[0], atol=1e-7)
    assert not torch.allclose(w.to_torch(), start)


def test_kernel_runs_on_plain_tensors_like_the_optimizer() -> None:
    config = CONFIGS["l1_l2_lr_power_online"]
    _, after = _run(config)
    records = DATA["param_sets"]["online"]
    var = torch.from_numpy(_array(records["initial_params"]["w"]).copy())
    accum, linear = torch.full_like(var, _f32(0.1)), torch.zeros_like(var)
    for step in range(DATA["header"]["n_steps"]):
        grad = torch.from_numpy(_array(records["grads"][step]["w"]))
        kept = grad.clone()
        _kernels.ftrl(
            [var],
            [grad],
            [accum],
            [linear],
            lr=_f32(0.1),
            l1=_f32(0.05),
            l2=_f32(0.1),
            lr_power=_f32(-0.3),
        )
        assert torch.equal(grad, kept)
    assert np.array_equal(var.numpy(), after[-1]["w"])
    assert np.array_equal(accum.numpy(), after[-1]["moments.w"])
    assert np.array_equal(linear.numpy(), after[-1]["linear.w"])


def test_kernel_with_an_empty_list_does_nothing() -> None:
    _kernels.ftrl([], [], [], [], lr=0.1, l1=0.0, l2=0.0, lr_power=-0.5)
    assert True  # reaching here is the behaviour: no indexing into empty lists


def test_scalar_parameter_is_updated() -> None:
    # MindSpore 2.10's CPU ApplyFtrl refuses 0-d 'var' (RuntimeError); spore runs
    # the same formula (see the README).
    s = Parameter(Tensor(np.float32(0.5)), name="s")
    opt = nn.FTRL([s], learning_rate=0.1)
    opt((Tensor(np.float32(0.5)),))
    accum = _f32(0.1) + 0.25
    linear = 0.5 - (math.sqrt(accum) - math.sqrt(_f32(0.1))) / _f32(0.1) * 0.5
    assert float(s.asnumpy()) == pytest.approx(-linear / (math.sqrt(accum) / 0.1), 1e-6)


def test_float64_parameters_follow_the_reference() -> None:
    config = CONFIGS["l2"]
    params = {
        k: Parameter(Tensor(p.asnumpy().astype(np.float64)), name=k)
        for k, p in _fresh("mixed").items()
    }
    opt = eval(config["source"], _namespace(params))
    for step in range(DATA["header"]["n_steps"]):
        opt(_grads("mixed", step, opt))
    want = _reference(config, l1_sign=True, accum_dtype=np.float64)[-1]
    for k, p in params.items():
        assert p.asnumpy().dtype == np.float64
        np.testing.assert_allclose(p.asnumpy(), want[k], atol=1e-10, rtol=1e-9)


# ---- inside TrainOneStepCell, and checkpoints ---------------------------------------


def _train() -> tuple[nn.Dense, nn.TrainOneStepCell, list[float]]:
    record = DATA["train"]
    net = nn.Dense(
        4,
        3,
        weight_init=Tensor(_array(record["weight"])),
        bias_init=Tensor(_array(record["bias"])),
    )
    loss_fn = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    opt = nn.FTRL(net.trainable_params(), learning_rate=0.1, l2=0.01)
    train = nn.TrainOneStepCell(nn.WithLossCell(net, loss_fn), opt)
    data = Tensor(_array(record["data"]))
    label = Tensor(np.asarray(record["label"], np.int32))
    losses = [float(train(data, label).asnumpy()) for _ in range(3)]
    return net, train, losses


def test_train_one_step_cell_matches_mindspore() -> None:
    record = DATA["train"]
    net, _, losses = _train()
    np.testing.assert_allclose(losses, record["losses"], atol=1e-6, rtol=1e-5)
    weight, bias = net.trainable_params()
    want_weight, want_bias = (
        _array(record["weight_after"]),
        _array(record["bias_after"]),
    )
    np.testing.assert_allclose(weight.asnumpy(), want_weight, atol=1e-6, rtol=1e-5)
    np.testing.assert_allclose(bias.asnumpy(), want_bias, atol=1e-6, rtol=1e-5)
    assert not np.allclose(weight.asnumpy(), _array(record["weight"]))


def test_checkpoint_names_match_mindspore_and_state_round_trips(
    tmp_path: Path,
) -> None:
    _, train, _ = _train()
    path = str(tmp_path / "ftrl.ckpt")
    spore.save_checkpoint(train, path)
    loaded = spore.load_checkpoint(path)
    assert list(loaded) == DATA["train"]["checkpoint_names"]
    opt = train.optimizer
    for state in (*opt.moments, *opt.linear):
        assert np.array_equal(loaded[state.name].asnumpy(), state.asnumpy())


def test_float16_parameters_are_updated_in_float16() -> None:
    # MindSpore 2.10 refuses float16 Parameters here (TypeError at the first call).
    config = CONFIGS["lr"]
    params = {
        k: Parameter(Tensor(p.asnumpy().astype(np.float16)), name=k)
        for k, p in _fresh("mixed").items()
    }
    opt = eval(config["source"], _namespace(params))
    opt(tuple(Tensor(g.asnumpy().astype(np.float16)) for g in _grads("mixed", 0, opt)))
    want = _recorded(config)[0]
    for k, p in params.items():
        assert p.asnumpy().dtype == np.float16
        assert opt.moments[0].asnumpy().dtype == np.float16
        np.testing.assert_allclose(p.asnumpy(), want[k], atol=2e-3, rtol=2e-2)


def test_ps_config_rebuilds_the_same_update_for_one_parameter() -> None:
    # A parameter server builds FTRL([param], learning_rate=, weight_decay=,
    # loss_scale=, **_ps_config()) per parameter; it must step like the worker's.
    config = CONFIGS["l1_l2_lr_power_online"]
    local, params = _build(config)
    settings = local._ps_config()
    assert settings == {
        "initial_accum": _f32(0.1),
        "lr_power": _f32(-0.3),
        "l1": _f32(0.05),
        "l2": _f32(0.1),
        "use_locking": False,
    }
    server_w = Parameter(Tensor(params["w"].asnumpy().copy()), name="w")
    server = nn.FTRL([server_w], learning_rate=0.1, loss_scale=1.0, **settings)
    for step in range(DATA["header"]["n_steps"]):
        grads = _grads("online", step, local)
        local(grads)
        server((grads[0],))
    assert np.array_equal(server_w.asnumpy(), params["w"].asnumpy())
    assert np.array_equal(server.linear[0].asnumpy(), local.linear[0].asnumpy())
