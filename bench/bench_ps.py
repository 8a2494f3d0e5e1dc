"""Parameter server: push+pull of a ~100 MB parameter per step, against a raw gloo
all-reduce of the same bytes among the same workers (issue 7's target: >= 70%).

One PS parameter of ``--mb`` MB of float32 (rows of 256 values, named
``bench.embedding_table`` so that several servers split it by rows), trained by
``Momentum(lr=0, momentum=0.9)`` (values stay put; the server still runs the
update kernel). A worker's step is ``optimizer((grad,))``: push the gradient,
the server sums the workers' pushes, divides, updates, and every worker pulls
the new value into its copy. The baseline in the same job: the workers'
``torch.distributed.all_reduce`` of one flat float32 buffer of the same size
(gloo, the workers' group). Throughput ratio = all-reduce time / push+pull time.
Medians of ``--steps`` after ``--warmup``, on worker 0; every process has one
torch thread, all on 127.0.0.1.

    python bench/bench_ps.py [--mb 100] [--steps 10] [--warmup 2]

It starts each job itself with ``spore.ps_launch``: 2 workers with 1 server, and
2 workers with 2 servers.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROW = 256


def _worker(mb: float, steps: int, warmup: int, out: str) -> None:
    import torch
    import torch.distributed as dist

    import spore
    from spore import nn
    from spore.common.initializer import initializer
    from spore.communication import get_rank, init

    torch.set_num_threads(1)
    spore.set_ps_context(enable_ps=True, ps_timeout=300.0)
    spore.set_auto_parallel_context(parallel_mode="data_parallel", gradients_mean=True)
    init()  # servers stay in here until the workers finish
    rows = int(mb * 2**20 / 4 / ROW)
    param = spore.Parameter(
        initializer("zeros", (rows, ROW)), name="bench.embedding_table"
    )
    param.set_param_ps()
    opt = nn.Momentum([param], learning_rate=0.0, momentum=0.9)
    grad = torch.ones(rows, ROW)
    flat = torch.ones(rows * ROW)

    def timed(run) -> list[float]:
        times = []
        for i in range(warmup + steps):
            dist.barrier()
            start = time.perf_counter()
            run()
            if i >= warmup:
                times.append(time.perf_counter() - start)
        return times

    push_pull = timed(lambda: opt((grad,)))
    all_reduce = timed(lambda: dist.all_reduce(flat))
    if get_rank() == 0:
        Path(out).write_text(json.dumps({
            "bytes": rows * ROW * 4,
            "push_pull_s": statistics.median(push_pull),
            "all_reduce_s": statistics.median(all_reduce),
        }))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=100.0)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--child-out", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_out is not None:
        _worker(args.mb, args.steps, args.warmup, args.child_out)
        return
    from spore.ps_launch import launch

    env = dict(os.environ, OMP_NUM_THREADS="1")
    print("| servers | workers | MB | push+pull s | all-reduce s | push+pull GB/s "
          "| all-reduce GB/s | ratio |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for servers in (1, 2):
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "result.json")
            command = [
                sys.executable, __file__, "--mb", str(args.mb), "--steps",
                str(args.steps), "--warmup", str(args.warmup), "--child-out", out,
            ]  # fmt: skip
            status = launch(command, servers, 2, env=env)
            if status != 0:
                raise SystemExit(f"the job with {servers} server(s) failed ({status})")
            result = json.loads(Path(out).read_text())
        gb = result["bytes"] / 1e9
        pp, ar = result["push_pull_s"], result["all_reduce_s"]
        print(f"| {servers} | 2 | {result['bytes'] / 2**20:.0f} | {pp:.3f} | {ar:.3f} "
              f"| {gb / pp:.2f} | {gb / ar:.2f} | {ar / pp:.2f}x |")  # fmt: skip


if __name__ == "__main__":
    main()
