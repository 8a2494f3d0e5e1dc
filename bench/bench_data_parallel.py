"""Data parallel on gloo: spore's training step against DistributedDataParallel, and
the bus bandwidth of spore's gradient reducer against one raw all-reduce.

The network is an MLP of ~25M parameters: Dense(1024→2048), five Dense(2048→2048),
Dense(2048→1024), ReLU between, MSE loss. Two ranks (one process each, one torch
thread each, gloo over 127.0.0.1) train on the same per-rank batches:

* spore: ``TrainOneStepCell(WithLossCell(net, MSELoss()), Momentum(lr, 0.9))`` in
  ``data_parallel`` mode with ``gradients_mean=True`` (the DistributedGradReducer,
  buckets of ``comm_fusion`` "auto", all-reduced during backward);
* torch: the same network in ``torch.nn`` with the same initial weights, wrapped in
  ``DistributedDataParallel`` (defaults: 25 MB buckets), ``torch.optim.SGD(lr,
  momentum=0.9)``; ``zero_grad(); mse_loss(model(x), y).backward(); step()``.

Steps alternate (rotating which goes first, a barrier before each) so both see
the same machine; the median step time on rank 0 over ``--steps`` steps after
``--warmup`` is reported. Before timing, both train 3 steps on the same batches
and the largest weight difference is printed.

Bandwidth: gradients of the same 25M parameters, against
``torch.distributed.all_reduce`` of one flat float32 buffer of the same size; bus
bandwidth = 2(n-1)/n x bytes / time (n = 2). Two figures for the reducer: its
communication as training runs it (the backward hooks have already copied the
gradients, scaled by 1/n, into the buckets: launch every segment, wait), and the
whole ``grad_reducer(grads)`` call on gradients given from outside (the copy and
scale into the buckets, one pass over 96 MiB, is then on the clock, pipelined
with the all-reduce of earlier segments).

    python bench/bench_data_parallel.py [--steps 40] [--warmup 5] [--batch 64]

It starts the two ranks itself (``torchrun --nproc_per_node=2
bench/bench_data_parallel.py`` works too).
"""

from __future__ import annotations

import argparse
import gc
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # spore from this tree

import spore
from spore import Tensor, nn
from spore.communication import get_rank, init, release
from spore.nn.optim import Momentum
from spore.nn.wrap.grad_reducer import DistributedGradReducer

WIDTHS = (1024, 2048, 2048, 2048, 2048, 2048, 2048, 1024)


def spore_mlp() -> nn.SequentialCell:
    layers: list[nn.Cell] = []
    for index, (a, b) in enumerate(zip(WIDTHS[:-1], WIDTHS[1:], strict=True)):
        layers.append(nn.Dense(a, b))
        if index < len(WIDTHS) - 2:
            layers.append(nn.ReLU())
    return nn.SequentialCell(layers)


def torch_mlp(net: nn.SequentialCell) -> torch.nn.Sequential:
    """The same layers in torch.nn, with ``net``'s weights copied."""
    layers: list[torch.nn.Module] = []
    dense = [cell for cell in net.cells() if isinstance(cell, nn.Dense)]
    for index, cell in enumerate(dense):
        linear = torch.nn.Linear(cell.in_channels, cell.out_channels)
        with torch.no_grad():
            linear.weight.copy_(cell.weight.to_torch())
            linear.bias.copy_(cell.bias.to_torch())
        layers.append(linear)
        if index < len(dense) - 1:
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers)


def _median_ms(times: list[float]) -> float:
    return 1000 * statistics.median(times)


def bench_steps(args: argparse.Namespace, rank: int) -> dict[str, float]:
    spore.set_seed(0)
    net = spore_mlp()
    model = torch_mlp(net)
    params = sum(p.numel() for p in model.parameters())
    ddp = torch.nn.parallel.DistributedDataParallel(model)
    spore_train = nn.TrainOneStepCell(
        nn.WithLossCell(net, nn.MSELoss()),
        Momentum(net.trainable_params(), args.lr, momentum=0.9),
    )
    torch_opt = torch.optim.SGD(ddp.parameters(), lr=args.lr, momentum=0.9)
    rng = np.random.default_rng(100 + rank)
    batches = [
        (
            rng.normal(size=(args.batch, WIDTHS[0])).astype(np.float32),
            rng.normal(size=(args.batch, WIDTHS[-1])).astype(np.float32),
        )
        for _ in range(4)
    ]
    spore_batches = [(Tensor(x), Tensor(y)) for x, y in batches]
    torch_batches = [(torch.from_numpy(x), torch.from_numpy(y)) for x, y in batches]

    def spore_step(i: int) -> None:
        spore_train(*spore_batches[i % 4])

    def torch_step(i: int) -> None:
        x, y = torch_batches[i % 4]
        torch_opt.zero_grad()
        F.mse_loss(ddp(x), y).backward()
        torch_opt.step()

    for i in range(3):  # same batches, same start: the weights must agree
        spore_step(i)
        torch_step(i)
    diff = max(
        float((a.to_torch().detach() - b.detach()).abs().max())
        for a, b in zip(net.trainable_params(), model.parameters(), strict=True)
    )
    times: dict[str, list[float]] = {"spore": [], "ddp": []}
    steps = {"spore": spore_step, "ddp": torch_step}
    for i in range(args.warmup + args.steps):
        order = ["spore", "ddp"] if i % 2 == 0 else ["ddp", "spore"]
        for name in order:
            dist.barrier()
            start = time.perf_counter()
            steps[name](i)
            elapsed = time.perf_counter() - start
            if i >= args.warmup:
                times[name].append(elapsed)
    return {
        "params": params,
        "diff": diff,
        "spore_ms": _median_ms(times["spore"]),
        "ddp_ms": _median_ms(times["ddp"]),
        "buckets": len(spore_train.grad_reducer.buckets),
    }


def _filled_reduce(reducer: DistributedGradReducer) -> None:
    """The reducer's communication alone: every bucket already holds its
    gradients, as the backward hooks leave them in training; launch and wait."""
    engine = reducer._buckets
    engine._reset()
    for bucket in engine.buckets:
        bucket.prefix = len(bucket.slots)
    engine._launch_ready()
    engine._wait()


def bench_bandwidth(args: argparse.Namespace, rank: int) -> dict[str, float]:
    spore.set_seed(0)
    net = spore_mlp()
    params = net.trainable_params()
    reducer = DistributedGradReducer(params, mean=True)
    grads = tuple(torch.randn(p.shape) for p in params)
    reducer(grads)  # builds the buckets
    nbytes = sum(g.numel() * 4 for g in grads)
    flat = torch.randn(nbytes // 4)
    world = dist.get_world_size()
    variants = {
        "raw": lambda: dist.all_reduce(flat),
        "filled": lambda: _filled_reduce(reducer),
        "call": lambda: reducer(grads),
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    for i in range(args.warmup + args.bw_repeat):
        names = list(variants)
        names = names[i % 3 :] + names[: i % 3]  # rotate who goes first
        for name in names:
            dist.barrier()
            start = time.perf_counter()
            variants[name]()
            elapsed = time.perf_counter() - start
            if i >= args.warmup:
                times[name].append(elapsed)
    factor = 2 * (world - 1) / world
    out = {"bytes": nbytes, "buckets": len(reducer.buckets)}
    out["segments"] = sum(len(b.segments) for b in reducer._buckets.buckets)
    for name, values in times.items():
        seconds = statistics.median(values)
        out[f"{name}_ms"] = 1000 * seconds
        out[f"{name}_gbs"] = factor * nbytes / seconds / 1e9
    return out


def worker(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    init()
    rank = get_rank()
    spore.set_auto_parallel_context(
        parallel_mode="data_parallel", gradients_mean=True, device_num=2
    )
    if args.bucket_mb is not None:
        spore.set_auto_parallel_context(
            comm_fusion={"allreduce": {"mode": "size", "config": args.bucket_mb}}
        )
    if args.segment_mb is not None:
        from spore.parallel import _reducer

        _reducer.SEGMENT_MB = args.segment_mb
    report = []
    if args.what in ("all", "step"):
        s = bench_steps(args, rank)
        report += [
            f"network: MLP {WIDTHS}, {s['params'] / 1e6:.1f}M parameters, batch "
            f"{args.batch} per rank, 2 ranks x {args.threads} thread(s), gloo; "
            f"spore buckets: {s['buckets']}; weight difference after 3 steps: "
            f"{s['diff']:.1e}",
            "",
            "| variant | ms per step (median) | vs DDP |",
            "|---|---:|---:|",
            f"| torch DDP | {s['ddp_ms']:.1f} | 1.00x |",
            f"| spore TrainOneStepCell | {s['spore_ms']:.1f} | "
            f"{s['spore_ms'] / s['ddp_ms']:.3f}x |",
            "",
        ]
    if args.what in ("all", "bandwidth"):
        b = bench_bandwidth(args, rank)

        def row(label: str, key: str) -> str:
            share = 100 * b[f"{key}_gbs"] / b["raw_gbs"]
            return (
                f"| {label} | {b[f'{key}_ms']:.1f} | {b[f'{key}_gbs']:.2f} | "
                f"{share:.0f}% |"
            )

        report += [
            f"all-reduce of {b['bytes'] / 2**20:.1f} MiB of float32 gradients "
            f"(spore: {b['buckets']} buckets, {b['segments']} all-reduce calls), "
            "2 ranks:",
            "",
            "| variant | ms (median) | bus GB/s | vs raw |",
            "|---|---:|---:|---:|",
            row("dist.all_reduce(one flat buffer)", "raw"),
            row("spore reducer, buckets filled by backward (training path)", "filled"),
            row(
                "spore grad_reducer(grads) (+ copy and 1/n scale into buckets)", "call"
            ),
        ]
    if rank == 0:
        print("\n".join(report), flush=True)
    # DDP and the hooks form reference cycles; free them while the group exists
    # (a DDP reducer torn down at interpreter exit can abort the process).
    gc.collect()
    release()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch(argv: list[str]) -> int:
    env = dict(os.environ, MASTER_ADDR="127.0.0.1", MASTER_PORT=str(_free_port()))
    env.update(WORLD_SIZE="2", LOCAL_WORLD_SIZE="2", OMP_NUM_THREADS="1")
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, *argv],
            env=dict(env, RANK=str(rank), LOCAL_RANK=str(rank)),
        )
        for rank in range(2)
    ]
    codes = [proc.wait(timeout=1800) for proc in procs]
    return max(codes)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--bw-repeat", type=int, default=30)
    parser.add_argument("--bucket-mb", type=float, default=None)
    parser.add_argument("--segment-mb", type=float, default=None)
    parser.add_argument("--what", choices=("all", "step", "bandwidth"), default="all")
    args = parser.parse_args()
    if "RANK" not in os.environ:
        return launch(sys.argv[1:])
    worker(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
