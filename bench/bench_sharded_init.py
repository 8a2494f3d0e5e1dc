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
``torch.nn.init.normal_``/``ones_`` on the same local shapes, for elements/s. With
``--repeat R`` each rank then runs R more rounds of (torch, spore) on its local
shapes, the two in turn first (torch first in even rounds), both ranks in the same
phase at once (file barriers), and the elements/s
ratio is also given as the median and the best of the rounds: single runs move
by 10-30% when other work shares the cores. Before each measurement the freed heap
is returned to the OS (``malloc_trim``), so every init writes fresh pages, as a
first init does. Prints markdown tables.

    python bench/bench_sharded_init.py            # the ~1B model, 4 repeat rounds
    python bench/bench_sharded_init.py --layers 2 # a quick run
"""

from __future__ import annotations

import argparse
import ctypes
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


def _barrier(directory: str, rank: int, world: int, tag: str = "ready") -> None:
    """Wait (at most 10 min) until every rank has reached the point ``tag``."""
    Path(directory, f"{tag}_{rank}").touch()
    deadline = time.monotonic() + 600
    while not all(Path(directory, f"{tag}_{r}").exists() for r in range(world)):
        if time.monotonic() > deadline:
            raise SystemExit("the other ranks did not arrive within 10 minutes")
        time.sleep(0.01)


def _release_freed_memory() -> None:
    """Give freed heap memory back to the OS (glibc ``malloc_trim``), so the next
    measurement allocates fresh pages as a first init does, whichever ran before."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: the heap stays as it is
        pass


def _torch_init(local_shapes: list[tuple[int, ...]]) -> float:
    """Seconds to allocate and init the local shapes with torch.nn.init (all kept
    alive, as a model would keep them)."""
    import torch

    kept = []
    t0 = time.perf_counter()
    for shape in local_shapes:
        t = torch.empty(shape)
        if len(shape) == 1:
            torch.nn.init.ones_(t)
        else:
            torch.nn.init.normal_(t, std=STD)
        kept.append(t)
    return time.perf_counter() - t0


def child(
    role: str, rank: int, world: int, layers: int, sync: str, repeat: int = 0
) -> dict:
    import torch

    torch.set_num_threads(1)
    import spore
    from spore import Parameter
    from spore.common.initializer import Normal, One, initializer
    from spore.parallel import init_params, set_layout

    shapes = _model(layers)

    def build() -> list:
        spore.set_seed(1)
        spore.set_auto_parallel_context(parallel_mode="semi_auto_parallel")
        out = []
        for name, shape in shapes:
            init = One() if len(shape) == 1 else Normal(STD)
            out.append(Parameter(initializer(init, shape), name=name))
        return out

    base_rss = _rss_mb()
    start, cpu_start = time.perf_counter(), time.process_time()
    params = build()
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
    _release_freed_memory()
    if role != "unsharded":
        _barrier(sync, rank, world)  # torch runs while the other rank does too
    # torch.nn.init on the same local shapes (spore's tensors freed before, so the
    # peak above is spore's alone).
    torch_s = _torch_init(local_shapes)
    rounds: list[tuple[float, float]] = []  # (torch s, spore s) per repeat round
    for i in range(repeat if role != "unsharded" else 0):
        # Which of the two runs first alternates: on a VM the memory a process
        # gets back after another run freed some is not always as fast as that.
        t_torch = t_spore = 0.0
        for which in ("torch", "spore") if i % 2 == 0 else ("spore", "torch"):
            _release_freed_memory()
            if which == "torch":
                _barrier(sync, rank, world, f"torch{i}")
                t_torch = _torch_init(local_shapes)
                continue
            params = build()
            for p in params:
                set_layout(p, [world], _tensor_map(p.name, len(p.shape)))
            _barrier(sync, rank, world, f"spore{i}")
            t0 = time.perf_counter()
            init_params(params, rank=rank, world=world)
            t_spore = time.perf_counter() - t0
            del params
        rounds.append((t_torch, t_spore))
    return {
        "role": role, "rank": rank, "wall_s": end - start, "init_s": end - t_init,
        "cpu_s": cpu_end - cpu_start,
        "peak_rss_mb": peak, "base_rss_mb": base_rss, "elements": elements,
        "torch_s": torch_s, "rounds": rounds,
    }  # fmt: skip


def _spawn(
    role: str, rank: int, world: int, layers: int, sync: str, repeat: int = 0
) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    cmd = [sys.executable, __file__, "--child", role, "--rank", str(rank),
           "--world", str(world), "--layers", str(layers), "--sync", sync,
           "--repeat", str(repeat)]  # fmt: skip
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
    parser.add_argument("--repeat", type=int, default=4)
    args = parser.parse_args()
    if args.child:
        result = child(
            args.child, args.rank, args.world, args.layers, args.sync, args.repeat
        )
        print(json.dumps(result))
        return
    n = sum(_prod(s) for _, s in _model(args.layers))
    with tempfile.TemporaryDirectory() as sync:
        (full,) = _collect([_spawn("unsharded", 0, 1, args.layers, sync)])
        ranks = _collect(
            [
                _spawn("sharded", r, args.world, args.layers, sync, args.repeat)
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
    rss = peak / full["peak_rss_mb"]
    print(f"| peak RSS per rank (max rank) | {rss:.2f}x | <= 0.55x |")
    print(f"| wall time (slower rank) | {wall / full['wall_s']:.2f}x | <= 0.60x |")
    cpu = max(r["cpu_s"] for r in ranks)
    cpu_ratio = cpu / full["cpu_s"]
    print(f"| CPU time (slower rank) | {cpu_ratio:.2f}x | (wall on idle cores) |")
    print("\n| rank | local Melem | spore Melem/s | torch.nn.init Melem/s "
          "| spore / torch |")  # fmt: skip
    print("| --- | ---: | ---: | ---: | ---: |")
    for r in ranks:
        s, t = r["elements"] / r["init_s"], r["elements"] / r["torch_s"]
        print(f"| {r['rank']} (first init) | {r['elements'] / 1e6:.0f} | {s / 1e6:.0f} "
              f"| {t / 1e6:.0f} | {s / t:.2f}x |")  # fmt: skip
        if r["rounds"]:
            ratios = sorted(t_s / s_s for t_s, s_s in r["rounds"])
            best_s = r["elements"] / min(s_s for _, s_s in r["rounds"])
            best_t = r["elements"] / min(t_s for t_s, _ in r["rounds"])
            median = ratios[len(ratios) // 2]
            in_order = " ".join(f"{t_s / s_s:.2f}" for t_s, s_s in r["rounds"])
            print(f"| {r['rank']} ({len(ratios)} rounds: best; median ratio "
                  f"{median:.2f}x; by round {in_order}) | {r['elements'] / 1e6:.0f} "
                  f"| {best_s / 1e6:.0f} | {best_t / 1e6:.0f} "
                  f"| {best_s / best_t:.2f}x |")  # fmt: skip


def _prod(shape: tuple[int, ...]) -> int:
    out = 1
    for d in shape:
        out *= d
    return out


if __name__ == "__main__":
    main()
