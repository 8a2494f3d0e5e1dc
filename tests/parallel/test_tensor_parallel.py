"""2-rank tensor-parallel training (real processes, gloo on 127.0.0.1) equals the
same network trained in one process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from spore.parallel import Layout

WORKER = Path(__file__).with_name("_tp_worker.py")
ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(world: int, out: Path) -> list[dict]:
    port = str(_free_port())
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    procs = [
        subprocess.Popen(
            [sys.executable, str(WORKER), str(r), str(world), port, str(out)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        for r in range(world)
    ]
    logs = []
    for p in procs:
        try:
            logs.append(p.communicate(timeout=60)[0])
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            pytest.fail("a tensor-parallel worker did not finish within 60 s")
    for p, log in zip(procs, logs):
        assert p.returncode == 0, log
    return [dict(np.load(out / f"rank{r}.npz")) for r in range(world)]


# name -> (dev_mat, tensor_map) the layers declare on 2 ranks.
LAYOUTS = {
    "embed.embedding_table": ([2], [0, -1]),
    "up.weight": ([2], [0, -1]), "up.bias": ([2], [0]),
    "down.weight": ([2], [-1, 0]), "down.bias": ([2], [-1]),
    "head.weight": ([2], [0, -1]), "head.bias": ([2], [0]),
}  # fmt: skip


def test_two_rank_tensor_parallel_training_matches_one_process(tmp_path):
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    (single,) = _run(1, tmp_path / "one")
    ranks = _run(2, tmp_path / "two")
    np.testing.assert_allclose(ranks[0]["losses"], single["losses"], rtol=1e-5)
    np.testing.assert_allclose(ranks[1]["losses"], single["losses"], rtol=1e-5)
    for name, (dev_mat, tensor_map) in LAYOUTS.items():
        layout = Layout.create(single[name].shape, dev_mat, tensor_map)
        for r in range(2):
            block = tuple(
                slice(o, o + s) for o, s in zip(layout.offsets(r), layout.slice_shape)
            )
            np.testing.assert_allclose(
                ranks[r][name], single[name][block], rtol=1e-5, atol=1e-6
            )
    assert single["losses"][-1] < single["losses"][0]
