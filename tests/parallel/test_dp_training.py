"""Data-parallel training across two real processes (gloo on 127.0.0.1).

One launch of ``dp_worker.py train`` (module fixture) runs every scenario; each
test judges one behaviour from the ranks' reports.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from dp_launch import launch


@pytest.fixture(scope="module")
def ranks(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Any]:
    run = launch("train", tmp_path_factory.mktemp("train"), timeout=80)
    assert run.codes == [0, 0], run.describe()
    for rank, result in run.results.items():
        assert "crash" not in result, f"rank {rank}:\n{result['crash']}"
    assert sorted(run.results) == [0, 1], run.describe()
    return run.results


def test_two_ranks_match_one_process_with_twice_the_batch(ranks: dict) -> None:
    dp, ref = ranks[0]["dp_params"], ranks[0]["ref_params"]
    assert sorted(dp) == sorted(ref)
    for name in ref:
        np.testing.assert_allclose(dp[name], ref[name], rtol=1e-5, atol=1e-6)
    # The mean of the ranks' losses is the single process's loss on the full batch.
    means = np.mean([ranks[0]["dp_losses"], ranks[1]["dp_losses"]], axis=0)
    np.testing.assert_allclose(means, ranks[0]["ref_losses"], rtol=1e-5)


def test_replicas_are_identical_after_training(ranks: dict) -> None:
    assert ranks[0]["dp_params"] == ranks[1]["dp_params"]
    assert ranks[0]["differ_after"] == ranks[1]["differ_after"] == []


def test_broadcast_equalises_differently_initialised_parameters(ranks: dict) -> None:
    expected = ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
    assert ranks[0]["differ_before"] == expected
    # After the first step's broadcast the ranks train in lockstep (previous test).
    assert ranks[0]["dp_params"] == ranks[1]["dp_params"]


@pytest.mark.parametrize(
    ("rank", "w", "lw", "loss"), [(0, -0.5, 9.0, 22.0), (1, -0.5, 18.0, 84.0)]
)
def test_layerwise_parameter_is_neither_broadcast_nor_averaged(
    ranks: dict, rank: int, w: float, lw: float, loss: float
) -> None:
    # MindSpore 2.10's recorded run (spec (e), GRAPH mode, broadcast on).
    golden = ranks[rank]["golden_True"]
    assert golden == {
        "filter": [True, False],
        "w": [w, w],
        "lw": [lw, lw],
        "loss": loss,
    }


@pytest.mark.parametrize(("rank", "w", "loss"), [(0, -0.5, 22.0), (1, 0.5, 88.0)])
def test_without_broadcast_gradients_are_still_averaged(
    ranks: dict, rank: int, w: float, loss: float
) -> None:
    golden = ranks[rank]["golden_False"]
    assert (golden["w"], golden["loss"]) == ([w, w], loss)


def test_check_replicas_names_the_diverged_parameter_on_every_rank(ranks: dict) -> None:
    assert ranks[0]["perturbed"] == ranks[1]["perturbed"] == ["fc2.bias"]


def test_check_replicas_raises_when_asked(ranks: dict) -> None:
    message = ranks[0]["raised"]
    assert message is not None
    assert message.startswith("For 'check_replicas', 1 of 4 Parameters differ")
    assert "['fc2.bias']" in message


def test_buckets_follow_comm_fusion_ids_in_backward_order(ranks: dict) -> None:
    assert ranks[0]["buckets"] == [
        ["fc2.bias"], ["fc2.weight"], ["fc1.bias"], ["fc1.weight"]
    ]  # fmt: skip


def test_every_bucket_is_launched_during_backward(ranks: dict) -> None:
    assert ranks[0]["launched_in_backward"] and ranks[1]["launched_in_backward"]


def test_reduced_gradients_are_the_views_autograd_returned(ranks: dict) -> None:
    assert ranks[0]["returned_views"] and ranks[1]["returned_views"]


def test_reduced_gradients_are_the_mean_of_the_ranks(ranks: dict) -> None:
    local = np.array([ranks[0]["local_grad_sums"], ranks[1]["local_grad_sums"]])
    np.testing.assert_allclose(ranks[0]["reduced_grad_sums"], local.mean(0), rtol=1e-5)
    assert ranks[0]["reduced_grad_sums"] == ranks[1]["reduced_grad_sums"]


def test_parameter_unused_on_one_rank_gets_the_others_gradient(ranks: dict) -> None:
    # b is used only on rank 1 (gradient 2); rank 0 contributes zeros: mean 1.
    for rank in (0, 1):
        assert ranks[rank]["unused_grads"] == {"a": [1.5] * 3, "b": [1.0] * 3}
        assert ranks[rank]["unused_differ"] == []


def test_bfloat16_gradients_come_back_bfloat16_spore_tensors(ranks: dict) -> None:
    assert ranks[0]["half"] == {
        "type": "Tensor", "dtype": "BFloat16", "values": [1.5] * 4
    }  # fmt: skip


def test_model_train_keeps_replicas_equal(ranks: dict) -> None:
    assert ranks[0]["model_differ"] == ranks[1]["model_differ"] == []


def test_gradients_replaced_after_arming_are_refused(ranks: dict) -> None:
    for rank in (0, 1):
        assert ranks[rank]["replaced"].startswith(
            "For 'DistributedGradReducer', the gradient of 'fc2.bias' is not the one "
            "the backward pass produced"
        )


def test_a_second_backward_before_reducing_is_refused(ranks: dict) -> None:
    for rank in (0, 1):
        assert "was computed twice in one step" in ranks[rank]["twice"]


def test_the_ranks_stay_in_step_after_misuse(ranks: dict) -> None:
    assert ranks[0]["after_misuse"] == ranks[1]["after_misuse"]
    np.testing.assert_allclose(
        ranks[0]["after_misuse"], ranks[0]["reduced_grad_sums"], rtol=1e-6
    )


def test_every_mindspore_world_group_name_is_the_world(ranks: dict) -> None:
    assert ranks[0]["world_sizes"] == [2] * 5
    backend = "nccl" if torch.cuda.is_available() else "gloo"  # init()'s pick
    assert ranks[0]["world_name"] == f"{backend}_world_group"
    assert (ranks[0]["local_rank"], ranks[1]["local_rank"]) == (0, 1)


def test_created_groups_work_with_the_reducer(ranks: dict) -> None:
    assert (ranks[0]["pair"], ranks[1]["pair"]) == ([0, 1], [1, 1])
    # mean=False: the sum over the two ranks of fc1.weight's local gradients.
    local = np.array([ranks[0]["local_grad_sums"], ranks[1]["local_grad_sums"]])
    np.testing.assert_allclose(ranks[0]["pair_sum"], local[:, 0].sum(), rtol=1e-5)
