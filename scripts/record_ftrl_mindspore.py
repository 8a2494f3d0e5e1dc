"""Record MindSpore 2.10's ``nn.FTRL`` on fixed arrays for tests/nn/test_ftrl.py.

Needs a Python with ``mindspore==2.10.0`` (CPU), not spore's venv; from the
repository root:

    python3 -m venv /tmp/ms210 && /tmp/ms210/bin/pip install mindspore==2.10.0
    /tmp/ms210/bin/python scripts/record_ftrl_mindspore.py \
        tests/nn/ftrl_mindspore210.json

Each config's ``source`` is evaluated with ``nn`` bound to ``mindspore.nn`` and
``w``, ``b``, ``gamma``, ``params`` bound to fresh Parameters of its param set;
the recorded gradients are applied one step at a time with ``opt(grads)`` and
the parameters, ``moments.*`` and ``linear.*`` are recorded after every step.
Config ``errors`` holds the exception class and message of refused arguments;
``train`` is a Dense layer trained with ``TrainOneStepCell`` and FTRL.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

import mindspore
import numpy as np
from mindspore import Parameter, Tensor, nn

COMMAND = (
    "/tmp/ms210/bin/python scripts/record_ftrl_mindspore.py "
    "tests/nn/ftrl_mindspore210.json"
)
N_STEPS = 4
SHAPES = {"w": (2, 16), "b": (3,), "gamma": (4,)}


def _param_sets() -> dict[str, Any]:
    rng = np.random.RandomState(20261125)
    mixed_init = {
        k: rng.uniform(-1, 1, s).astype(np.float32) for k, s in SHAPES.items()
    }
    mixed_grads = [
        {
            k: (rng.standard_normal(s) * 0.5).astype(np.float32)
            for k, s in SHAPES.items()
        }
        for _ in range(N_STEPS)
    ]
    mixed_grads[0]["b"][0] = 0.0  # accum stays 0 there with initial_accum=0.0
    # "online": weights start at 0 and gradients are positive, so linear stays
    # >= 0 and MindSpore's dense CPU kernel (which uses +l1 for sign(linear)*l1)
    # agrees with the documented formula even with l1 > 0.
    online_init = {k: np.zeros(s, np.float32) for k, s in SHAPES.items()}
    online_grads = [
        {
            k: np.abs(rng.standard_normal(s) * 0.5).astype(np.float32)
            for k, s in SHAPES.items()
        }
        for _ in range(N_STEPS)
    ]
    return {
        "mixed": {"initial_params": mixed_init, "grads": mixed_grads},
        "online": {"initial_params": online_init, "grads": online_grads},
    }


CONFIGS = [
    ("default", "mixed", "nn.FTRL(params)"),
    ("lr", "mixed", "nn.FTRL(params, learning_rate=0.1)"),
    ("initial_accum", "mixed", "nn.FTRL(params, initial_accum=0.5, learning_rate=0.1)"),
    (
        "initial_accum_zero",
        "mixed",
        "nn.FTRL(params, initial_accum=0.0, learning_rate=0.1)",
    ),
    ("lr_power_-0.3", "mixed", "nn.FTRL(params, learning_rate=0.1, lr_power=-0.3)"),
    ("lr_power_-1", "mixed", "nn.FTRL(params, learning_rate=0.1, lr_power=-1.0)"),
    ("lr_power_0", "mixed", "nn.FTRL(params, learning_rate=0.1, lr_power=0.0)"),
    ("l2", "mixed", "nn.FTRL(params, learning_rate=0.1, l2=0.2)"),
    ("l1_online", "online", "nn.FTRL(params, learning_rate=0.1, l1=0.05)"),
    (
        "l1_l2_lr_power_online",
        "online",
        "nn.FTRL(params, learning_rate=0.1, l1=0.05, l2=0.1, lr_power=-0.3)",
    ),
    ("l1_mixed_signs", "mixed", "nn.FTRL(params, learning_rate=0.1, l1=0.05)"),
    ("weight_decay", "mixed", "nn.FTRL(params, learning_rate=0.1, weight_decay=0.05)"),
    (
        "loss_scale",
        "mixed",
        "nn.FTRL(params, learning_rate=0.1, loss_scale=4.0, weight_decay=0.05)",
    ),
    (
        "groups",
        "mixed",
        # No grad_centralization: MindSpore 2.10 has no Centralization CPU kernel.
        "nn.FTRL([{'params': [w], 'weight_decay': 0.05}, {'params': [b, gamma]}], "
        "learning_rate=0.1)",
    ),
    (
        "groups_ordered",
        "mixed",
        "nn.FTRL([{'params': [b], 'weight_decay': 0.05}, {'params': [w, gamma]}, "
        "{'order_params': [w, b, gamma]}], learning_rate=0.1, l2=0.1)",
    ),
]

ERRORS = [
    "nn.FTRL(params, learning_rate=1)",
    "nn.FTRL(params, learning_rate=0.0)",
    "nn.FTRL(params, learning_rate=-0.1)",
    "nn.FTRL(params, learning_rate=[0.1, 0.2])",
    "nn.FTRL(params, learning_rate=nn.ExponentialDecayLR(0.1, 0.9, 1))",
    "nn.FTRL([{'params': [w], 'lr': 0.1}, {'params': [b, gamma]}])",
    "nn.FTRL(params, initial_accum=1)",
    "nn.FTRL(params, initial_accum=-0.1)",
    "nn.FTRL(params, lr_power=0.5)",
    "nn.FTRL(params, lr_power=-1)",
    "nn.FTRL(params, l1=-1.0)",
    "nn.FTRL(params, l1=1)",
    "nn.FTRL(params, l2=-1.0)",
    "nn.FTRL(params, l2=0)",
    "nn.FTRL(params, use_locking=1)",
    "nn.FTRL(params, loss_scale=0.0)",
    "nn.FTRL(params, weight_decay=-0.1)",
]


def _record(array: np.ndarray) -> dict[str, Any]:
    return {"shape": list(array.shape), "values": array.reshape(-1).tolist()}


def _fresh(param_set: dict[str, Any]) -> dict[str, Parameter]:
    return {
        k: Parameter(Tensor(v.copy()), name=k)
        for k, v in param_set["initial_params"].items()
    }


def _namespace(params: dict[str, Parameter]) -> dict[str, Any]:
    return {"nn": nn, "params": list(params.values()), **params}


def _run(config_id: str, set_name: str, source: str, sets: dict) -> dict[str, Any]:
    params = _fresh(sets[set_name])
    opt = eval(source, _namespace(params))
    steps = []
    for grads in sets[set_name]["grads"]:
        opt(tuple(Tensor(grads[p.name]) for p in opt.parameters))
        state = {}
        for tup in (opt.moments, opt.linear):
            state.update({p.name: _record(p.asnumpy()) for p in tup})
        steps.append(
            {
                "params": {k: _record(p.asnumpy()) for k, p in params.items()},
                "state": state,
            }
        )
    return {
        "id": config_id,
        "param_set": set_name,
        "source": source,
        "parameters_and_names": [name for name, _ in opt.parameters_and_names()],
        "optimizer_parameters": [p.name for p in opt.parameters],
        "decay_flags": [bool(f) for f in opt.decay_flags],
        "global_step": int(opt.global_step.asnumpy()[0]),
        "steps": steps,
    }


def _error(source: str, sets: dict) -> dict[str, Any]:
    params = _fresh(sets["mixed"])
    before = {k: p.asnumpy().copy() for k, p in params.items()}
    try:
        eval(source, _namespace(params))
    except Exception as err:
        unchanged = all(
            np.array_equal(before[k], p.asnumpy()) for k, p in params.items()
        )
        return {
            "source": source,
            "error": type(err).__name__,
            "message": str(err).splitlines()[0],
            "params_unchanged": unchanged,
        }
    return {"source": source, "error": None, "message": None}


def _train() -> dict[str, Any]:
    rng = np.random.RandomState(7)
    weight = rng.uniform(-0.5, 0.5, (3, 4)).astype(np.float32)
    bias = rng.uniform(-0.1, 0.1, (3,)).astype(np.float32)
    data = rng.standard_normal((5, 4)).astype(np.float32)
    label = np.array([0, 2, 1, 2, 0], np.int32)
    net = nn.Dense(4, 3)
    net.weight.set_data(Tensor(weight))
    net.bias.set_data(Tensor(bias))
    loss_fn = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    opt = nn.FTRL(net.trainable_params(), learning_rate=0.1, l2=0.01)
    train = nn.TrainOneStepCell(nn.WithLossCell(net, loss_fn), opt)
    losses = [float(train(Tensor(data), Tensor(label)).asnumpy()) for _ in range(3)]
    path = "/tmp/record_ftrl_train.ckpt"
    mindspore.save_checkpoint(train, path)
    names = list(mindspore.load_checkpoint(path))
    return {
        "source": (
            "Dense(4, 3) with the weight and bias below; "
            "SoftmaxCrossEntropyWithLogits(sparse=True, reduction='mean'); "
            "FTRL(net.trainable_params(), learning_rate=0.1, l2=0.01); "
            "TrainOneStepCell(WithLossCell(net, loss), opt), 3 calls on (data, label)"
        ),
        "weight": _record(weight),
        "bias": _record(bias),
        "data": _record(data),
        "label": label.tolist(),
        "losses": losses,
        "weight_after": _record(net.weight.asnumpy()),
        "bias_after": _record(net.bias.asnumpy()),
        "checkpoint_names": names,
    }


def main(out: str) -> None:
    sets = _param_sets()
    document = {
        "header": {
            "command": COMMAND,
            "mindspore_version": mindspore.__version__,
            "device": "CPU",
            "mode": "PYNATIVE_MODE (FTRL.construct is @jit)",
            "n_steps": N_STEPS,
            "note": (
                "Values are float32 stored as JSON numbers. MindSpore 2.10's dense "
                "CPU ApplyFtrl uses +l1 where its docs say sign(linear)*l1; "
                "config 'l1_mixed_signs' shows it."
            ),
        },
        "param_sets": {
            name: {
                "initial_params": {
                    k: _record(v) for k, v in s["initial_params"].items()
                },
                "grads": [{k: _record(v) for k, v in g.items()} for g in s["grads"]],
            }
            for name, s in sets.items()
        },
        "configs": [_run(i, s, src, sets) for i, s, src in CONFIGS],
        "errors": [_error(src, sets) for src in ERRORS],
        "train": _train(),
    }
    text = json.dumps(document, indent=1)
    # One line per list of numbers, so the file stays small and diffable.
    text = re.sub(
        r"\[\s*(-?[0-9][^\[\]{}\"]*?)\s*\]",
        lambda m: "[" + ", ".join(x.strip() for x in m.group(1).split(",")) + "]",
        text,
    )
    with open(out, "w") as handle:
        handle.write(text + "\n")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tests/nn/ftrl_mindspore210.json")
