"""Sharded init of a ~1B-parameter Llama-shaped model on 2 ranks vs unsharded.

The model is ``llama_shapes(16 layers, hidden 2048, MLP 5504, vocab 32000)``
(0.94B parameters, 3.8 GB in float32): Normal(0.02) for every matrix, ones for the
norms. Each measurement runs in a fresh process, one torch/numpy thread each:

* unsharded: one process builds the lazy Parameters and ``init_data()`` them all;
* sharded: 2 processes at once (rank 0 and 1, each passed its rank), each builds
  the same lazy Parameters, declares Megatron-style layouts (embedding, q/k/v,
  gate/up, lm_head split by rows; o/down by columns; norms replicated) and
  ``spore.parallel.init_params(params, rank=r, world=2)``: only its slices are
  ever allocated.

Per process: peak RSS (``ru_maxrss``) and wall time of build + init; the sharded
wall time is the slower rank's. Then, in each rank, ``torch.empty`` +
``torch.nn.init.normal_``/``ones_`` on the same local shapes, for elements/s.
Prints markdown tables.

    python bench/bench_sharded_init.py            # the ~1B model
    python bench/bench_sharded_init.py --layers 2 # a quick run
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

STD = 0.02


def _model(layers: int) -> list[tuple[str, tuple[int, ...]]]:
    from llama_shapes import llama_shapes

    return llama_shapes(layers=layers, hidden=2048, intermediate=5504, kv_hidden=2048)


def _tensor_map(name: str, ndim: int) -> list[int]:
    if ndim == 1:
        return [-1]  # norms: replicated
    if name.endswith(("o_proj.weight", "down_proj.weight")):
        return [-1, 0]  # row-parallel Dense: split the input dimension
    return [0, -1]  # embedding (vocab), column-parallel Dense, lm_head


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _barrier(directory: str, rank: int, world: int) -> None:
    """Wait (at most 10 min) until every rank has reached this point."""
    Path(directory, f"ready_{rank}").touch()
    deadline = time.monotonic() + 600
    while not all(Path(directory, f"ready_{r}").exists() for r in range(world)):
        if time.monotonic() > deadline:
            raise SystemExit("the other ranks did not arrive within 10 minutes")
        time.sleep(0.01)


def child(role: str, rank: int, world: int, layers: int, sync: str) -> dict:
    import torch

    torch.set_num_threads(1)
    import spore
    from spore import Parameter
    from spore.common.initializer import Normal, One, initializer
    from spore.parallel import init_params, set_layout

    shapes = _model(layers)
    base_rss = _rss_mb()
    start, cpu_start = time.perf_counter(), time.process_time()
    spore.set_seed(1)
    spore.set_auto_parallel_context(parallel_mode="semi_auto_parallel")
    params = []
    for name, shape in shapes:
        init = One() if len(shape) == 1 else Normal(STD)
        params.append(Parameter(initializer(init, shape), name=name))
    if role == "unsharded":
        t_init = time.perf_counter()
        for p in params:
            p.init_data()
    else:
        for p in params:
            set_layout(p, [world], _tensor_map(p.name, len(p.shape)))
        t_init = time.perf_counter()
        init_params(params, rank=rank, world=world)
    end, cpu_end = time.perf_counter(), time.process_time()
    peak = _rss_mb()
    local_shapes = [tuple(p.shape) for p in params]
    elements = sum(p.size for p in params)
    del params
    if role != "unsharded":
        _barrier(sync, rank, world)  # torch runs while the other rank does too
    # torch.nn.init on the same local shapes (one tensor at a time kept alive, as a
    # model would keep them all; freed before, so the peak above is spore's alone).
    kept = []
    t0 = time.perf_counter()
    for shape in local_shapes:
        t = torch.empty(shape)
        if len(shape) == 1:
            torch.nn.init.ones_(t)
        else:
            torch.nn.init.normal_(t, std=STD)
        kept.append(t)
    torch_s = time.perf_counter() - t0
    return {
        "role": role, "rank": rank, "wall_s": end - start, "init_s": end - t_init,
        "cpu_s": cpu_end - cpu_start,
        "peak_rss_mb": peak, "base_rss_mb": base_rss, "elements": elements,
        "torch_s": torch_s,
    }  # fmt: skip


def _spawn(
    role: str, rank: int, world: int, layers: int, sync: str
) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    cmd = [sys.executable, __file__, "--child", role, "--rank", str(rank),
           "--world", str(world), "--layers", str(layers), "--sync", sync]  # fmt: skip
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, env=env, text=True)


def _collect(procs: list[subprocess.Popen]) -> list[dict]:
    out = []
    for p in procs:
        stdout, _ = p.communicate(timeout=1800)
        if p.returncode:
            raise SystemExit(
                f"a benchmark process failed with exit code {p.returncode}"
            )
        out.append(json.loads(stdout.strip().splitlines()[-1]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--layers", type=int, default=16)
    parser.add_argument("--world", type=int, default=2)
    parser.add_argument("--child", default=None)
    parser.add_argument("--rank", type=int, default=0)
    parser.add_argument("--sync", default="")
    args = parser.parse_args()
    if args.child:
        print(
            json.dumps(child(args.child, args.rank, args.world, args.layers, args.sync))
        )
        return
    n = sum(_prod(s) for _, s in _model(args.layers))
    with tempfile.TemporaryDirectory() as sync:
        (full,) = _collect([_spawn("unsharded", 0, 1, args.layers, sync)])
        ranks = _collect(
            [
                _spawn("sharded", r, args.world, args.layers, sync)
                for r in range(args.world)
            ]
        )
    print(f"Model: {n / 1e9:.2f}B parameters ({n * 4 / 1e9:.2f} GB float32), "
          f"{args.world} ranks, 1 thread per process.\n")  # fmt: skip
    print("| run | peak RSS (MB) | init RSS above imports (MB) | wall (s) | CPU (s) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for r in [full, *ranks]:
        run = "unsharded, 1 process" if r is full else f"sharded, rank {r['rank']}"
        print(f"| {run} | {r['peak_rss_mb']:.0f} | "
              f"{r['peak_rss_mb'] - r['base_rss_mb']:.0f} | {r['wall_s']:.2f} "
              f"| {r['cpu_s']:.2f} |")  # fmt: skip
    peak = max(r["peak_rss_mb"] for r in ranks)
    wall = max(r["wall_s"] for r in ranks)
    print("\n| ratio (sharded / unsharded) | value | target |\n| --- | ---: | ---: |")
    print(
        f"| peak RSS per rank (max rank) | {peak / full['peak_rss_mb']:.2f}x | <= 0.55x |"
    )
    print(f"| wall time (slower rank) | {wall / full['wall_s']:.2f}x | <= 0.60x |")
    cpu = max(r["cpu_s"] for r in ranks)
    print(
        f"| CPU time (slower rank) | {cpu / full['cpu_s']:.2f}x | (wall on idle cores) |"
    )
    print(
        "\n| rank | local Melem | spore Melem/s | torch.nn.init Melem/s | spore / torch |"
    )
    print("| --- | ---: | ---: | ---: | ---: |")
    for r in ranks:
        s, t = r["elements"] / r["init_s"], r["elements"] / r["torch_s"]
        print(f"| {r['rank']} | {r['elements'] / 1e6:.0f} | {s / 1e6:.0f} | {t / 1e6:.0f} "
              f"| {s / t:.2f}x |")  # fmt: skip


def _prod(shape: tuple[int, ...]) -> int:
    out = 1
    for d in shape:
        out *= d
    return out


if __name__ == "__main__":
    main()
