"""Failures are errors within a bounded time, never hangs (real processes)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from dp_launch import launch


def test_killed_rank_makes_the_survivor_fail_fast(tmp_path: Path) -> None:
    run = launch("kill", tmp_path, timeout=40, env={"SPORE_COMM_TIMEOUT": "10"})
    assert run.codes == [0, 17], run.describe()
    report = run.results[0]
    assert report["error"].startswith(
        "For 'DistributedGradReducer', the all-reduce of gradient bucket 0"
    )
    assert "Another rank has probably exited or stopped responding" in report["error"]
    assert report["after_s"] < 10


def test_hung_rank_makes_the_survivor_time_out(tmp_path: Path) -> None:
    run = launch("hang", tmp_path, timeout=40, env={"SPORE_COMM_TIMEOUT": "2"})
    assert run.codes == [0, 0], run.describe()
    report = run.results[0]
    assert "failed on rank 0 of 2" in report["error"]
    assert "bounded by 2 s" in report["error"]
    assert 1.5 < report["after_s"] < 10


def test_launch_with_too_large_world_size_fails_with_advice(tmp_path: Path) -> None:
    # WORLD_SIZE=2 but only rank 0 starts: the group cannot form.
    run = launch("init", tmp_path, ranks=[0], timeout=30,
                 env={"SPORE_COMM_TIMEOUT": "2"})  # fmt: skip
    assert run.codes == [0], run.describe()
    error = run.results[0]["error"]
    backend = "nccl" if torch.cuda.is_available() else "gloo"  # init()'s pick
    assert error.startswith(f"For 'init', rank 0 could not join the {backend} process")
    assert "WORLD_SIZE=2" in error and "within 2 s" in error
    assert run.results[0]["seconds"] < 10


def test_unreachable_master_fails_with_advice(tmp_path: Path) -> None:
    # Rank 1 alone: nobody serves MASTER_PORT.
    run = launch("init", tmp_path, ranks=[1], timeout=30,
                 env={"SPORE_COMM_TIMEOUT": "2"})  # fmt: skip
    assert run.codes == [0], run.describe()
    error = run.results[1]["error"]
    assert error.startswith("For 'init', rank 1 could not join")
    assert "reachable from this one" in error
    assert run.results[1]["seconds"] < 12


@pytest.mark.parametrize(
    ("env", "match"),
    [
        ({"RANK": "2", "WORLD_SIZE": "2"}, r"RANK=2 and WORLD_SIZE=2 do not fit"),
        ({"RANK": "x"}, r"the environment variable RANK should be an integer"),
    ],
)
def test_inconsistent_launch_variables_fail_at_once(
    tmp_path: Path, env: dict[str, str], match: str
) -> None:
    run = launch("init", tmp_path, ranks=[0], timeout=30, env=env)
    assert run.codes == [0], run.describe()
    assert run.results[0]["seconds"] < 1
    assert __import__("re").search(match, run.results[0]["error"])
