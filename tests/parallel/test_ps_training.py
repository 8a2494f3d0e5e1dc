"""Parameter-server training equals local training (real processes over
torch.distributed.rpc on 127.0.0.1, every wait bounded). The reference is the
same network trained in this process on the whole batch (`_ps_script.train_local`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _ps_script import train_local
from ps_jobs import SCRIPT, child_env, free_port, start

import spore
from spore import nn

STEPS = 5


def _assert_same(local: dict, ps: dict, what: str) -> None:
    names = [k for k in ps if not k.startswith("__")]
    assert names == list(local), what
    for name in names:
        np.testing.assert_allclose(
            ps[name], local[name], rtol=1e-5, atol=1e-6, err_msg=f"{what}: {name}"
        )


def test_one_server_two_workers_equal_local_training_with_adam(tmp_path: Path) -> None:
    # The table is init_in_server (sparse pushes), hidden.weight a PS parameter
    # the workers keep a copy of, the rest trains data-parallel among the workers.
    job = start(tmp_path, "adam", STEPS, servers=1, workers=2)
    local = train_local("adam", STEPS)
    job.wait(120)
    assert set(job.codes.values()) == {0}, job.describe()
    first, second = job.values(0), job.values(1)
    # Every Parameter, optimizer state included (fetched from the server where it
    # lives there), equals local training.
    _assert_same(local, first, "worker 0 vs local")
    _assert_same(local, second, "worker 1 vs local")
    for values in (first, second):  # the table never existed on the workers
        assert bool(values["__table_has_init"]) is True
        assert int(values["__table_local_bytes"]) == 0
        # and the optimizer state of PS parameters lives on the server only
        assert int(values["__ps_state_local_bytes"]) == 0


def test_two_servers_by_ps_launch_equal_local_training_and_checkpoint(
    tmp_path: Path,
) -> None:
    # Momentum with weight decay; the table is split by rows over two servers;
    # worker 0 saves a checkpoint, which must hold the complete set.
    cmd = [
        sys.executable, "-m", "spore.ps_launch", "--server_num", "2", "--worker_num",
        "2", str(SCRIPT), str(tmp_path), "momentum", str(STEPS),
    ]  # fmt: skip
    proc = subprocess.Popen(
        cmd, env=child_env({"SPORE_TEST_CKPT": "1"}),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    local = train_local("momentum", STEPS)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out.decode()[-4000:]
    _assert_same(local, dict(np.load(tmp_path / "ps_1.npz")), "worker 1 vs local")
    saved = spore.load_checkpoint(str(tmp_path / "ps.ckpt"))
    assert sorted(saved) == sorted(local)
    for name, value in local.items():
        np.testing.assert_allclose(
            saved[name].asnumpy(), value, rtol=1e-5, atol=1e-6, err_msg=name
        )


@pytest.mark.skipif(not hasattr(nn, "FTRL"), reason="nn.FTRL not built yet")
def test_torchrun_ranks_and_ftrl_with_the_table_kept_on_workers(tmp_path: Path) -> None:
    # torchrun --nproc_per_node=3 with MS_SERVER_NUM=1: rank 0 serves, ranks 1-2
    # work. set_param_ps() without init_in_server: the workers keep a copy of the
    # table, refreshed from the server after each step.
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nnodes=1",
        "--nproc_per_node=3", "--master_addr=127.0.0.1",
        f"--master_port={free_port()}", str(SCRIPT), str(tmp_path), "ftrl",
        str(STEPS),
    ]  # fmt: skip
    env = child_env({"MS_SERVER_NUM": "1", "SPORE_TEST_SERVERS_TABLE": "0"})
    env.pop("MS_ROLE", None)
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    local = train_local("ftrl", STEPS)
    out, _ = proc.communicate(timeout=150)
    assert proc.returncode == 0, out.decode()[-4000:]
    values = dict(np.load(tmp_path / "ps_1.npz"))
    _assert_same(local, values, "torchrun worker 1 vs local")
    assert bool(values["__table_has_init"]) is False  # a real copy on the worker


def test_async_mode_with_a_large_table_never_materialised_on_workers(
    tmp_path: Path,
) -> None:
    # 2,000,000 x 6 float32 = 48 MB on the server; each push is applied at once.
    job = start(tmp_path, "adam", 2, env={"SPORE_TEST_VOCAB": "2000000",
                                           "SPORE_TEST_ASYNC": "1"})  # fmt: skip
    job.wait(120)
    assert set(job.codes.values()) == {0}, job.describe()
    for worker in (0, 1):
        values = job.values(worker)
        assert bool(values["__table_has_init"]) is True
        assert int(values["__table_local_bytes"]) == 0
        # Peak RSS grew by far less than the table (or its Adam state) while
        # training; the values were fetched only afterwards, for the result file.
        assert int(values["__rss_growth_kib"]) < 24 * 1024, values["__rss_growth_kib"]
        assert all(np.isfinite(v).all() for v in values.values())


def test_scheduler_process_is_accepted_and_leaves(tmp_path: Path) -> None:
    job = start(tmp_path, "adam", 1, roles=[("MS_SCHED", 0)]).wait(60)
    assert job.codes == {"sched0": 0}, job.describe()
    assert "need no scheduler" in job.log("sched0")


def test_async_mode_with_one_worker_equals_local_training(tmp_path: Path) -> None:
    # With one worker, applying each push at once is the same sequence of updates
    # as local training: async mode must not lose, repeat or reorder a push.
    job = start(tmp_path, "momentum", STEPS, servers=1, workers=1,
                env={"SPORE_TEST_ASYNC": "1"})  # fmt: skip
    local = train_local("momentum", STEPS)
    job.wait(120)
    assert set(job.codes.values()) == {0}, job.describe()
    _assert_same(local, job.values(0), "async worker 0 vs local")
