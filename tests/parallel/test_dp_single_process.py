"""Data-parallel APIs in one process: errors before init or outside a launcher,
argument checks, and the parts that need no process group."""

from __future__ import annotations

import numpy as np
import pytest

import spore
from spore import Parameter, Tensor, nn
from spore.common.initializer import initializer
from spore.communication import (
    GlobalComm,
    get_group_size,
    get_local_rank,
    get_rank,
    init,
    release,
)
from spore.nn.wrap.grad_reducer import DistributedGradReducer
from spore.parallel import check_replicas, set_layout
from spore.parallel._replicas import _reference_rows, _slice_partition

LAUNCH_VARIABLES = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "LOCAL_RANK")


@pytest.mark.parametrize("api", [get_rank, get_group_size, get_local_rank])
def test_queries_before_init_say_to_call_init(api: object) -> None:
    name = api.__name__  # type: ignore[attr-defined]
    match = (
        rf"For '{name}', the communication service is not initialized. "
        r"Call spore.communication.init\(\) first"
    )
    with pytest.raises(RuntimeError, match=match):
        api()  # type: ignore[operator]


def test_init_outside_a_launcher_names_the_missing_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in LAUNCH_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    match = r"not started by a distributed launcher. Start the script with a launcher"
    with pytest.raises(RuntimeError, match=match):
        init()


@pytest.mark.parametrize(
    ("backend", "error", "match"),
    [
        ("hccl", RuntimeError, r"the backend 'hccl' needs Ascend devices"),
        ("mpi", RuntimeError, r"the 'backend_name' should be one of"),
        (3, TypeError, r"the 'backend_name' should be str or None"),
    ],
)
def test_init_refuses_backends_it_cannot_run(
    backend: object, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        init(backend)  # type: ignore[arg-type]


def test_init_refuses_a_bad_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPORE_COMM_TIMEOUT", "soon")
    with pytest.raises(ValueError, match=r"SPORE_COMM_TIMEOUT should be a number"):
        init()


def test_release_before_init_is_harmless() -> None:
    release()
    assert GlobalComm.INITED is False


def test_world_group_names_are_mindspores() -> None:
    assert GlobalComm.WORLD_COMM_GROUP == "hccl_world_group"
    assert spore.communication.NCCL_WORLD_COMM_GROUP == "nccl_world_group"


def test_reducer_before_init_says_to_call_init() -> None:
    params = [Parameter(Tensor(np.ones(2, np.float32)), name="w")]
    with pytest.raises(RuntimeError, match=r"For 'DistributedGradReducer', the "
                       r"communication service is not initialized"):  # fmt: skip
        DistributedGradReducer(params)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"parameters": "w"}, TypeError, r"the 'parameters' should be a list or tuple"),
        ({"parameters": [1.0]}, TypeError, r"every item .* but item 0 is float"),
        ({"mean": 1}, TypeError, r"the 'mean' should be bool or None"),
        ({"degree": 0}, ValueError, r"the 'degree' should be a positive int"),
        ({"degree": 2.0}, ValueError, r"the 'degree' should be a positive int"),
        ({"fusion_type": "1"}, TypeError, r"the 'fusion_type' should be int"),
        ({"fusion_type": -1}, ValueError, r"the 'fusion_type' should be >= 0"),
    ],
)
def test_reducer_argument_checks(
    kwargs: dict, error: type[Exception], match: str
) -> None:
    args = {"parameters": [Parameter(Tensor(np.ones(2, np.float32)), name="w")]}
    args.update(kwargs)
    with pytest.raises(error, match=rf"For 'DistributedGradReducer', {match}"):
        DistributedGradReducer(**args)


def test_check_replicas_before_init_says_to_call_init() -> None:
    with pytest.raises(RuntimeError, match=r"For 'check_replicas', the communication"):
        check_replicas(nn.Dense(2, 2))


def test_check_replicas_refuses_an_unknown_action() -> None:
    with pytest.raises(ValueError, match=r"the 'on_mismatch' should be one of"):
        check_replicas(nn.Dense(2, 2), on_mismatch="log")


def test_check_replicas_compares_a_slice_only_with_its_replicas() -> None:
    # (dp=2, mp=2), rows split over mp: ranks 0 and 2 hold slice 0, 1 and 3 slice 1.
    with spore.lazy_init():
        sliced = Parameter(initializer("zeros", (4, 2)), name="sliced")
    set_layout(sliced, [2, 2], [0, -1])
    sliced._init_data_for_rank(None, False, 1)  # rank 1's slice: shape (2, 2)
    assert sliced.sliced and sliced.shape == (2, 2)
    whole = Parameter(Tensor(np.zeros((4, 2), np.float32)), name="whole")
    set_layout(whole, [2, 2], [0, -1])  # a layout, but it holds the whole tensor
    plain = Parameter(Tensor(np.zeros(2, np.float32)), name="plain")
    parts = [_slice_partition(p, 4) for p in (sliced, whole, plain)]
    assert parts == [((0, 2), (1, 3)), None, None]
    with pytest.raises(ValueError, match=r"For 'check_replicas', the device matrix "
                       r"\[2, 2\] of Parameter 'sliced' has 4 devices, but the world "
                       "size is 2"):  # fmt: skip
        _slice_partition(sliced, 2)
    # Each rank's row is compared with the lowest rank holding the same slice; in
    # a group of world ranks [1, 2, 3], the lowest such rank of the group (the
    # entries are positions in the group: rank 2 is alone with its slice there).
    assert _reference_rows(parts, [0, 1, 2, 3]).tolist() == [
        [0, 1, 0, 1], [0, 0, 0, 0], [0, 0, 0, 0]
    ]  # fmt: skip
    assert _reference_rows(parts, [1, 2, 3]).tolist() == [
        [0, 1, 0], [0, 0, 0], [0, 0, 0]
    ]  # fmt: skip


def test_train_one_step_outside_data_parallel_does_not_reduce() -> None:
    net = nn.Dense(3, 2)
    step = nn.TrainOneStepCell(
        nn.WithLossCell(net, nn.MSELoss()), nn.SGD(net.trainable_params(), 0.1)
    )
    assert step.reducer_flag is False
    assert step.grad_reducer((1, 2)) == (1, 2)


def test_train_one_step_in_data_parallel_needs_init() -> None:
    spore.set_auto_parallel_context(parallel_mode="data_parallel")
    net = nn.Dense(3, 2)
    with pytest.raises(RuntimeError, match=r"For 'DistributedGradReducer', the "
                       "communication service is not initialized"):  # fmt: skip
        nn.TrainOneStepCell(
            nn.WithLossCell(net, nn.MSELoss()), nn.SGD(net.trainable_params(), 0.1)
        )


@pytest.mark.parametrize("mode", ["stand_alone", "semi_auto_parallel", "auto_parallel"])
def test_model_refuses_parameter_broadcast_outside_data_parallel(mode: str) -> None:
    net = nn.Dense(3, 2)
    model = spore.Model(net, nn.MSELoss(), nn.SGD(net.trainable_params(), 0.1))
    spore.set_auto_parallel_context(parallel_mode=mode, parameter_broadcast=True)
    data = [(np.ones((2, 3), np.float32), np.zeros((2, 2), np.float32))]
    with pytest.raises(ValueError, match=r"For 'Model.train', 'parameter_broadcast' "
                       rf"should be False in the parallel mode '{mode}'"):  # fmt: skip
        model.train(1, data)


def test_set_comm_fusion_sets_every_trainable_parameter() -> None:
    net = nn.SequentialCell([nn.Dense(3, 4), nn.Dense(4, 2)])
    net.set_comm_fusion(3)
    assert [p.comm_fusion for p in net.trainable_params()] == [3, 3, 3, 3]


def test_set_comm_fusion_checks_its_argument() -> None:
    with pytest.raises(ValueError, match=r"For 'set_comm_fusion', the 'fusion_type' "
                       r"should be >= 0, but got -1"):  # fmt: skip
        nn.Dense(2, 2).set_comm_fusion(-1)
