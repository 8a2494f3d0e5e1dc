"""One optimizer step on ~50M float32 parameters in ~200 tensors, 1 thread.

spore ``Momentum`` (SGD with momentum), ``Adam`` and ``AdamWeightDecay`` against
``torch.optim.SGD(momentum=0.9)``, ``torch.optim.Adam`` and ``torch.optim.AdamW``,
each with ``fused=True`` and ``foreach=True``, on identical tensors and
gradients. Steps are interleaved (spore, torch fused, torch foreach, in a rotating
order) so drift in the machine's speed hits all alike; the median of ``--steps`` timed
steps after ``--warmup`` is reported. Effective bandwidth counts the bytes each
step must read and write (SGD-momentum: read w, g, v, write w, v = 5 x 4 bytes
per element; Adam/AdamW: read w, g, m, v, write w, m, v = 7 x 4 bytes) against
this machine's copy bandwidth (``dst.copy_(src)`` of 1 GiB: 2 GiB moved).
MindSpore's own ``nn.Momentum``/``nn.Adam`` run only where ``mindspore`` imports.

    python bench/bench_optim.py [--scale 1.0] [--steps 15] [--warmup 2] [--threads 1]

"speed vs torch fused" is median(torch fused) / median(this one); "paired" is the
median, over rounds, of torch fused's time / this one's time in the same round.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # spore from this tree

import spore
from spore.nn.optim import Adam, AdamWeightDecay, Momentum

GIB = 1024**3


def make_shapes(scale: float) -> list[tuple[int, ...]]:
    """~200 shapes, ~50M elements at scale 1: 48 big matrices, 96 mid, 56 vectors."""
    shapes: list[tuple[int, ...]] = []
    for i in range(48):
        rows = max(1, int((640 + 64 * (i % 5)) * scale**0.5))
        cols = max(1, int(1024 * scale**0.5))
        shapes.append((rows, cols))
    for i in range(96):
        rows = max(1, int((80 + 16 * (i % 7)) * scale**0.5))
        cols = max(1, int(1024 * scale**0.5))
        shapes.append((rows, cols))
    for i in range(56):
        shapes.append((max(1, int((1024 + 256 * (i % 4)) * scale)),))
    return shapes


def copy_bandwidth(repeats: int = 5) -> float:
    """GB/s (1e9 bytes) of ``dst.copy_(src)`` on 1 GiB, read + write counted."""
    src = torch.ones(GIB // 4, dtype=torch.float32)
    dst = torch.empty_like(src)
    dst.copy_(src)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        dst.copy_(src)
        times.append(time.perf_counter() - start)
    return 2 * GIB / statistics.median(times) / 1e9


def _time(step: Callable[[], object]) -> float:
    start = time.perf_counter()
    step()
    return time.perf_counter() - start


def _spore_step(kind: str, values: list[torch.Tensor], grads: list[torch.Tensor]):
    params = [
        spore.Parameter(spore.Tensor.from_torch(v), name=f"layer{i}.weight")
        for i, v in enumerate(values)
    ]
    spore_grads = tuple(spore.Tensor.from_torch(g) for g in grads)
    if kind == "sgd":
        opt = Momentum(params, learning_rate=0.01, momentum=0.9)
    elif kind == "adam":
        opt = Adam(params, learning_rate=1e-3)
    else:
        opt = AdamWeightDecay(params, learning_rate=1e-3, weight_decay=0.01)
    return lambda: opt(spore_grads)


def _torch_step(
    kind: str, impl: str, values: list[torch.Tensor], grads: list[torch.Tensor]
):
    params = [torch.nn.Parameter(v.clone()) for v in values]
    for p, g in zip(params, grads, strict=True):
        p.grad = g
    fused, foreach = impl == "fused", impl == "foreach"
    if kind == "sgd":
        opt = torch.optim.SGD(
            params, lr=0.01, momentum=0.9, fused=fused, foreach=foreach
        )
    elif kind == "adam":
        opt = torch.optim.Adam(params, lr=1e-3, fused=fused, foreach=foreach)
    else:
        opt = torch.optim.AdamW(
            params, lr=1e-3, weight_decay=0.01, fused=fused, foreach=foreach
        )
    return opt.step


def _mindspore_step(kind: str, values: list[torch.Tensor], grads: list[torch.Tensor]):
    from mindspore import (  # pyright: ignore[reportMissingImports]
        Parameter,
        Tensor,
        nn,
    )

    params = [Parameter(Tensor(v.numpy()), name=f"p{i}") for i, v in enumerate(values)]
    ms_grads = tuple(Tensor(g.numpy()) for g in grads)
    if kind == "sgd":
        opt = nn.Momentum(params, learning_rate=0.01, momentum=0.9)
    elif kind == "adam":
        opt = nn.Adam(params, learning_rate=1e-3)
    else:
        opt = nn.AdamWeightDecay(params, learning_rate=1e-3, weight_decay=0.01)
    return lambda: opt(ms_grads)


def bench(
    kind: str, shapes: list[tuple[int, ...]], steps: int, warmup: int
) -> dict[str, list[float]]:
    """Per implementation, its timed steps (seconds), round by round."""
    gen = torch.Generator().manual_seed(0)
    values = [torch.randn(s, generator=gen) for s in shapes]
    grads = [torch.randn(s, generator=gen) * 1e-2 for s in shapes]
    runners = {
        "spore": _spore_step(kind, values, grads),
        "torch fused": _torch_step(kind, "fused", values, grads),
        "torch foreach": _torch_step(kind, "foreach", values, grads),
    }
    try:
        runners["mindspore"] = _mindspore_step(kind, values, grads)
    except ImportError:
        pass
    times: dict[str, list[float]] = {name: [] for name in runners}
    order = list(runners)
    for i in range(warmup + steps):
        # Rotate who goes first, so cache warmth and drift favour no one.
        for name in order[i % len(order) :] + order[: i % len(order)]:
            elapsed = _time(runners[name])
            if i >= warmup:
                times[name].append(elapsed)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--scale", type=float, default=1.0, help="fraction of 50M params"
    )
    parser.add_argument("--steps", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    shapes = make_shapes(args.scale)
    numel = sum(int(np.prod(s)) for s in shapes)
    try:
        import mindspore  # noqa: F401  # pyright: ignore[reportMissingImports]

        ms_note = "MindSpore: measured."
    except ImportError:
        ms_note = "MindSpore: not importable here, skipped."
    bandwidth = copy_bandwidth()
    print(
        f"{len(shapes)} tensors, {numel / 1e6:.1f}M float32 parameters, "
        f"{args.threads} thread(s), torch {torch.__version__}; median of {args.steps} "
        f"steps after {args.warmup} warm-up. Copy bandwidth (1 GiB copy_, read+write): "
        f"{bandwidth:.1f} GB/s. {ms_note}\n"
    )
    rows = []
    for kind, label, words in (
        ("sgd", "SGD momentum (spore Momentum)", 5),
        ("adam", "Adam", 7),
        ("adamw", "AdamWeightDecay / AdamW", 7),
    ):
        times = bench(kind, shapes, args.steps, args.warmup)
        moved = words * 4 * numel
        fused = times["torch fused"]
        for name, runs in times.items():
            seconds = statistics.median(runs)
            # Paired: torch fused and this implementation timed in the same round.
            paired = statistics.median(f / t for f, t in zip(fused, runs, strict=True))
            rows.append(
                f"| {label} | {name} | {seconds * 1e3:.1f} | "
                f"{moved / seconds / 1e9:.1f} | "
                f"{moved / seconds / 1e9 / bandwidth:.2f} | "
                f"{statistics.median(fused) / seconds:.2f}x | {paired:.2f}x |"
            )
    print(
        "| optimizer | implementation | step ms (median) | GB/s | of copy bw "
        "| speed vs torch fused | paired |"
    )
    print("|---|---|---:|---:|---:|---:|---:|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
