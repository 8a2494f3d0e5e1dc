"""Parameter-server failures end in clear errors within a bounded time (real
processes on 127.0.0.1): a dead server, a dead worker, a job that cannot form,
an optimizer that cannot run on a server."""

from __future__ import annotations

import re
import signal
import time
from pathlib import Path

from ps_jobs import start

FAST = {"SPORE_TEST_TIMEOUT": "4"}


def test_dead_server_makes_workers_fail_fast(tmp_path: Path) -> None:
    job = start(tmp_path, "adam", 200, env=dict(FAST, SPORE_TEST_STEP_SLEEP="0.05"))
    job.wait_for_line("worker0", "step 2 ", timeout=60)
    killed_at = time.monotonic()
    job.procs["server0"].send_signal(signal.SIGKILL)
    job.wait(60)
    elapsed = time.monotonic() - killed_at
    assert job.codes["worker0"] != 0 and job.codes["worker1"] != 0, job.describe()
    for worker in ("worker0", "worker1"):
        log = job.log(worker)
        assert (
            "For 'parameter server', ps_server_0 failed or could not be reached" in log
        ), job.describe()
    assert elapsed < 30, elapsed


def test_dead_worker_is_reported_by_the_server(tmp_path: Path) -> None:
    env = dict(FAST, SPORE_TEST_DIE_AT="2", SPORE_TEST_DIE_WORKER="1")
    started = time.monotonic()
    job = start(tmp_path, "adam", 6, env=env).wait(90)
    elapsed = time.monotonic() - started
    assert job.codes["worker1"] == 3, job.describe()
    # The server says who is missing, then ends with status 1; the surviving
    # worker fails with the server's message instead of waiting forever.
    assert job.codes["server0"] == 1, job.describe()
    server_log = job.log("server0")
    assert "spore parameter server: ps_server_0: ps_worker_1" in server_log, (
        job.describe()
    )
    assert "a worker died or hung" in server_log
    assert job.codes["worker0"] != 0, job.describe()
    assert "ps_worker_1" in job.log("worker0"), job.describe()
    assert elapsed < 60, elapsed


def test_job_missing_a_worker_fails_to_form_within_the_timeout(tmp_path: Path) -> None:
    # MS_WORKER_NUM=2, but only worker 0 and the server start. The server hosts
    # the rendezvous and counts arrivals; under load worker 0 may arrive after the
    # server gave up (then it cannot reach the rendezvous at all).
    job = start(tmp_path, "adam", 2, env={"SPORE_TEST_TIMEOUT": "6"},
                roles=[("MS_PSERVER", 0), ("MS_WORKER", 0)])  # fmt: skip
    job.wait(90)
    assert job.codes["worker0"] != 0 and job.codes["server0"] != 0, job.describe()
    server = job.log("server0")
    assert "for the parameter-server job of 1 server(s) and 2 worker(s)" in server
    assert re.search(r"only [12] of 3 processes arrived", server), job.describe()
    worker = job.log("worker0")
    assert (
        "only 2 of 3 processes arrived" in worker
        or "lost the rendezvous of the parameter-server job" in worker
        or "could not reach the parameter-server rendezvous" in worker
    ), job.describe()


def test_optimizer_that_cannot_run_on_a_server_is_refused(tmp_path: Path) -> None:
    job = start(tmp_path, "sgd", 2, env=FAST).wait(90)
    assert job.codes["worker0"] != 0, job.describe()
    assert (
        "For 'set_param_ps', the optimizer SGD cannot update parameters on a "
        "parameter server; use Momentum, Adam or FTRL" in job.log("worker0")
    ), job.describe()
    assert "embedding.embedding_table" in job.log("worker0")
