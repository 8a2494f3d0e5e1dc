"""set/get/reset_auto_parallel_context: the data-parallel options and their checks."""

from __future__ import annotations

import pytest

import spore
from spore import ParallelMode


def test_defaults() -> None:
    get = spore.get_auto_parallel_context
    assert get("parallel_mode") == ParallelMode.STAND_ALONE == "stand_alone"
    assert (get("gradients_mean"), get("parameter_broadcast")) == (False, False)
    assert get("device_num") == 1 and get("all_reduce_fusion_config") == []
    assert get("comm_fusion") == {"allreduce": {"mode": "auto", "config": 25}}


def test_set_then_reset() -> None:
    spore.set_auto_parallel_context(
        parallel_mode=ParallelMode.DATA_PARALLEL,
        gradients_mean=True,
        parameter_broadcast=True,
        device_num=8,
        comm_fusion={"allreduce": {"mode": "size", "config": 32}},
    )
    get = spore.get_auto_parallel_context
    assert get("parallel_mode") == "data_parallel" and get("device_num") == 8
    assert get("comm_fusion") == {"allreduce": {"mode": "size", "config": 32}}
    spore.reset_auto_parallel_context()
    assert get("parallel_mode") == "stand_alone" and get("gradients_mean") is False


def test_returned_containers_are_copies() -> None:
    spore.set_auto_parallel_context(all_reduce_fusion_config=[2, 4])
    spore.get_auto_parallel_context("all_reduce_fusion_config").append(9)
    assert spore.get_auto_parallel_context("all_reduce_fusion_config") == [2, 4]


def test_a_refused_call_changes_nothing() -> None:
    with pytest.raises(ValueError, match=r"the 'device_num' should be in \[1, 4096\]"):
        spore.set_auto_parallel_context(gradients_mean=True, device_num=0)
    assert spore.get_auto_parallel_context("gradients_mean") is False


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"nope": 1}, ValueError, r"the option 'nope' is not supported"),
        ({"parallel_mode": "ring"}, ValueError, r"'parallel_mode' should be one of"),
        ({"parallel_mode": 1}, TypeError, r"'parallel_mode' should be str"),
        ({"gradients_mean": 1}, TypeError, r"'gradients_mean' should be bool"),
        ({"parameter_broadcast": "y"}, TypeError, r"'parameter_broadcast' should be"),
        ({"device_num": 1.0}, TypeError, r"'device_num' should be int"),
        ({"device_num": 4097}, ValueError, r"'device_num' should be in \[1, 4096\]"),
        ({"global_rank": -1}, ValueError, r"'global_rank' should be in \[0, 4095\]"),
        ({"all_reduce_fusion_config": (1,)}, TypeError, r"should be list of int"),
        ({"all_reduce_fusion_config": []}, ValueError, r"should not be empty"),
        ({"all_reduce_fusion_config": [3, 2]}, ValueError, r"strictly ascending"),
        ({"all_reduce_fusion_config": [1, 1]}, ValueError, r"strictly ascending"),
        ({"all_reduce_fusion_config": [1.5]}, TypeError, r"every index"),
        ({"comm_fusion": []}, TypeError, r"'comm_fusion' should be dict"),
        ({"comm_fusion": {"bcast": {}}}, KeyError, r"keys of 'comm_fusion'"),
        ({"comm_fusion": {"allreduce": 3}}, TypeError, r"should be dict, but got int"),
        ({"comm_fusion": {"allreduce": {"mode": "size"}}}, KeyError, r"key 'config'"),
        (
            {"comm_fusion": {"allreduce": {"mode": "ring", "config": 1}}},
            KeyError,
            r"mode of 'allreduce' should be one of",
        ),
        (
            {"comm_fusion": {"allreduce": {"mode": "size", "config": -1}}},
            ValueError,
            r"size config should be >= 0 MB",
        ),
    ],
)
def test_invalid_values_raise_mindspores_exception_class(
    kwargs: dict, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        spore.set_auto_parallel_context(**kwargs)


def test_get_unknown_option() -> None:
    with pytest.raises(ValueError, match=r"the option 'x' is not supported"):
        spore.get_auto_parallel_context("x")
