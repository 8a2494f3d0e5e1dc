"""The launch paths a person uses: torchrun on the example, ``spore demo --nproc 2``."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest


def _run(args: list[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", SPORE_COMM_TIMEOUT="20")
    return subprocess.run(
        [sys.executable, *args], env=env, capture_output=True, text=True,
        timeout=timeout, check=False,
    )  # fmt: skip


def test_torchrun_runs_the_example_and_the_replicas_agree() -> None:
    launcher = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    done = _run(
        [*launcher, "-m", "spore.examples.train_data_parallel", "--epochs", "1"]
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "6 Parameters differ across ranks before the broadcast" in done.stdout
    for rank in (0, 1):
        assert re.search(rf"\[rank {rank}\] epoch 1: mean loss \d", done.stdout)
        assert re.search(
            rf"\[rank {rank}\] done: .* replica check: all 6 Parameters equal across "
            "2 ranks",
            done.stdout,
        )


def test_spore_demo_nproc_2_trains_digits_data_parallel() -> None:
    pytest.importorskip("sklearn")
    done = _run(["-m", "spore.cli", "demo", "--nproc", "2", "--epochs", "2",
                 "--limit", "300"])  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 ranks, digits data" in done.stdout
    assert (
        done.stdout.count("replica check: all 8 Parameters equal across 2 ranks") == 2
    )
