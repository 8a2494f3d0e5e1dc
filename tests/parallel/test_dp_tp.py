"""Data and tensor parallel on one (dp=2, mp=2) device matrix: 4 real processes
(gloo on 127.0.0.1) train like one process on the whole batch."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tp_launch import launch

from spore.parallel import Layout

WORKER = Path(__file__).with_name("_dp_tp_worker.py")
DP_GROUP = {0: [0, 2], 1: [1, 3], 2: [0, 2], 3: [1, 3]}  # the ranks of each slice
SLICED = ("embed.embedding_table", "up.weight", "up.bias", "down.weight")
REPLICATED = ("down.bias", "head.weight", "head.bias")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("dp_tp")
    launch(WORKER, 4, out, timeout=120)
    ranks = {r: json.loads((out / f"rank{r}.json").read_text()) for r in range(4)}
    return {"ranks": ranks, "ref": json.loads((out / "reference.json").read_text())}


def test_parameters_stay_lazy_until_initialised(run: dict) -> None:
    assert all(r["lazy_before_init"] for r in run["ranks"].values())


def test_layers_split_over_blocks_of_mp_consecutive_ranks(run: dict) -> None:
    for rank, result in run["ranks"].items():
        block = [0, 1] if rank < 2 else [2, 3]
        assert result["tp_groups"] == {"embed": block, "up": block, "down": block}


def test_layouts_are_on_the_dp_by_mp_device_matrix(run: dict) -> None:
    layouts = run["ranks"][0]["layouts"]
    assert layouts == {
        "embed.embedding_table": [[2, 2], [0, -1]],
        "up.weight": [[2, 2], [0, -1]],
        "up.bias": [[2, 2], [0]],
        "down.weight": [[2, 2], [-1, 0]],
        "down.bias": [[2, 2], [-1]],
    }


def test_each_gradient_is_averaged_over_the_ranks_holding_its_slice(run: dict) -> None:
    for rank, result in run["ranks"].items():
        groups = result["reduce_groups"]
        assert {n: groups[n] for n in SLICED} == {n: DP_GROUP[rank] for n in SLICED}
        assert {n: groups[n] for n in REPLICATED} == {
            n: [0, 1, 2, 3] for n in REPLICATED
        }


def test_losses_match_one_process_on_the_whole_batch(run: dict) -> None:
    ref = np.array(run["ref"]["losses"])
    for dp in range(2):
        # The two ranks of a tensor-parallel block compute the same loss ...
        first, second = (np.array(run["ranks"][2 * dp + t]["losses"]) for t in range(2))
        np.testing.assert_allclose(first, second, rtol=1e-6)
    # ... and the mean over the dp blocks is the loss of the whole batch.
    mean = np.mean([run["ranks"][0]["losses"], run["ranks"][2]["losses"]], axis=0)
    np.testing.assert_allclose(mean, ref, rtol=1e-5)
    assert ref[-1] < ref[0]


def test_trained_slices_match_the_same_slices_of_one_process(run: dict) -> None:
    ref = run["ref"]["params"]
    layouts = run["ranks"][0]["layouts"]
    for rank, result in run["ranks"].items():
        for name, full in ref.items():
            full = np.array(full)
            local = np.array(result["params"][name])
            if name in layouts:
                dev_mat, tensor_map = layouts[name]
                lay = Layout.create(full.shape, dev_mat, tensor_map)
                block = tuple(
                    slice(o, o + s)
                    for o, s in zip(lay.offsets(rank), lay.slice_shape, strict=True)
                )
                full = full[block]
                assert result["sliced"][name] or lay.slice_count == 1
            np.testing.assert_allclose(local, full, rtol=1e-5, atol=1e-6, err_msg=name)


def test_train_one_step_cell_reduces_by_slice_groups_itself(run: dict) -> None:
    # No hand-written reducer: TrainOneStepCell in semi_auto_parallel on 4 ranks
    # builds it, and trains exactly like the hand-written step above.
    for result in run["ranks"].values():
        cell = result["cell"]
        assert cell["reducer"] is True
        np.testing.assert_allclose(cell["losses"], result["losses"], rtol=1e-6)
        for name, values in result["params"].items():
            np.testing.assert_allclose(
                cell["params"][name], values, rtol=1e-6, atol=1e-7, err_msg=name
            )


def test_reducer_picks_the_group_of_each_parameter(run: dict) -> None:
    for rank, result in run["ranks"].items():
        red = result["reducer"]
        assert red["groups"] == [[], DP_GROUP[rank], [0, 1, 2, 3]]
        assert red["sliced_shape"] == [2, 2]
        # layerwise_parallel: unreduced and unscaled; the slice: the mean of its
        # two holders' gradients (rank + 1); the replicated one: the mean of all.
        mean_of_slice = np.mean([r + 1.0 for r in DP_GROUP[rank]])
        assert red["values"] == [rank + 1.0, mean_of_slice, 2.5]
        assert red["lw_passed_through"]


def test_check_replicas_compares_slices_only_among_their_replicas(run: dict) -> None:
    # The slices of up, down and embed differ over mp, but each equals its dp
    # replica, so nothing is reported (raise would have failed the worker).
    for result in run["ranks"].values():
        assert result["replicas"]["clean"] == []
        assert result["replicas"]["restored"] == []


def test_check_replicas_names_a_spoiled_replica_of_a_slice(run: dict) -> None:
    for rank, result in run["ranks"].items():
        rep = result["replicas"]
        # The same list on every rank, in Parameter order; with a tolerance too.
        assert rep["spoiled"] == ["up.weight", "head.bias"]
        assert rep["spoiled_rtol"] == ["up.weight", "head.bias"]
        assert rep["spoiled_atol"] == []
        # In a dp group: ranks 1 and 3 hold up.weight's spoiled slice; ranks 0
        # and 2 see only head.bias (rank 2's copy is spoiled).
        mine = ["up.weight"] if rank in (1, 3) else ["head.bias"]
        assert rep["spoiled_in_dp_group"] == mine
    message = run["ranks"][0]["replicas"]["message"]
    assert message.startswith(
        "For 'check_replicas', 2 of 7 Parameters differ across the 4 ranks: "
        "['up.weight', 'head.bias'] (up.weight: rank 3 differs from rank 1 holding "
        "the same slice; head.bias: rank 2 differs from rank 0)."
    ), message
