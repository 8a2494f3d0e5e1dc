"""MindSpore's fusion rules as gradient buckets (spore/parallel/_buckets.py)."""

from __future__ import annotations

import torch

from spore.parallel._buckets import plan_buckets, reduce_dtype

CPU = torch.device("cpu")
F32 = (torch.float32, CPU)
MB = 2**20


def _plan(n: int, **kwargs: object) -> tuple[str, list[list[int]]]:
    ids = kwargs.pop("ids", [1] * n)
    keys = kwargs.pop("keys", [F32] * n)
    nbytes = kwargs.pop("nbytes", [MB] * n)
    plan = plan_buckets(list(range(n)), ids, keys, nbytes, **kwargs)  # type: ignore[arg-type]
    return plan.rule, plan.buckets


def test_one_fusion_id_is_cut_by_size_from_the_last_parameter() -> None:
    assert _plan(5, threshold_mb=2) == ("size", [[3, 4], [1, 2], [0]])


def test_a_large_threshold_gives_one_bucket() -> None:
    assert _plan(4, threshold_mb=64) == ("size", [[0, 1, 2, 3]])


def test_threshold_zero_or_fusion_type_zero_reduces_each_alone() -> None:
    assert _plan(3, threshold_mb=0)[1] == [[2], [1], [0]]
    assert _plan(3, fusion_type=0)[1] == [[2], [1], [0]]


def test_different_comm_fusion_ids_make_one_bucket_per_id() -> None:
    rule, buckets = _plan(5, ids=[1, 2, 1, 2, 3], threshold_mb=0)
    assert (rule, buckets) == ("comm_fusion", [[4], [1, 3], [0, 2]])


def test_comm_fusion_id_zero_is_never_fused() -> None:
    assert _plan(4, ids=[0, 0, 5, 5])[1] == [[2, 3], [1], [0]]


def test_split_indices_cut_in_parameter_order() -> None:
    rule, buckets = _plan(6, split_indices=[2, 5], threshold_mb=0)
    assert (rule, buckets) == ("index", [[5], [2, 3, 4], [0, 1]])


def test_split_indices_need_fusion_type_one() -> None:
    assert _plan(4, split_indices=[2], fusion_type=2, threshold_mb=64)[1] == [
        [0, 1, 2, 3]
    ]


def test_a_bucket_holds_one_dtype() -> None:
    keys = [F32, (torch.float64, CPU), F32, (torch.float64, CPU)]
    assert _plan(4, keys=keys, threshold_mb=64)[1] == [[1, 3], [0, 2]]


def test_only_the_reduced_positions_are_bucketed() -> None:
    plan = plan_buckets([0, 2], [1, 1, 1], [F32] * 3, [MB] * 3, threshold_mb=64)
    assert plan.buckets == [[0, 2]]


def test_half_gradients_are_reduced_in_float32_with_fp32_sync() -> None:
    assert reduce_dtype(torch.bfloat16, True) is torch.float32
    assert reduce_dtype(torch.float16, False) is torch.float16
    assert reduce_dtype(torch.float64, True) is torch.float64
