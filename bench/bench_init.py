"""Materialisation throughput of spore's initializers against torch.nn.init.

The weights of a ~250M-parameter Llama-shaped model (``LLAMA_250M``: embedding,
q/k/v/o, MLP, lm_head; the 1-D norm weights are left out, fans need 2-D) are
filled in place, one thread, into the same preallocated float32 buffers
(``torch.empty(...).numpy()``, touched once beforehand):

* spore: ``init._fill(buffer, shape, offsets, key)``, what ``Tensor.init_data`` runs;
* torch: ``torch.nn.init.normal_`` / ``uniform_`` / ``trunc_normal_`` /
  ``xavier_uniform_`` / ``kaiming_uniform_`` / ``ones_``.

It also measures this machine's memory-fill bandwidth (``ndarray.fill`` and
``Tensor.fill_`` of a 1 GiB buffer, best of 3) and reports constant fills as a
percentage of it. Prints a markdown table.

    python bench/bench_init.py [--scale 0.1] [--repeat 3]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]  # the shapes, and spore from this tree
from llama_shapes import LLAMA_250M  # noqa: E402

from spore.common import initializer as init  # noqa: E402
from spore.common.seed import next_init_key  # noqa: E402

STD, BOUND = 0.02, 0.07
# name: (spore initializer, torch in-place init of one tensor)
CASES: dict[str, tuple[init.Initializer, Callable[[torch.Tensor], object]]] = {
    "normal": (init.Normal(STD), lambda t: torch.nn.init.normal_(t, std=STD)),
    "uniform": (
        init.Uniform(BOUND),
        lambda t: torch.nn.init.uniform_(t, -BOUND, BOUND),
    ),
    "truncated_normal": (
        init.TruncatedNormal(STD, 0.0, -2 * STD, 2 * STD),
        lambda t: torch.nn.init.trunc_normal_(t, std=STD, a=-2 * STD, b=2 * STD),
    ),
    "xavier_uniform": (init.XavierUniform(), torch.nn.init.xavier_uniform_),
    "he_uniform": (init.HeUniform(), torch.nn.init.kaiming_uniform_),
    "ones": (init.One(), torch.nn.init.ones_),
}


def shapes(scale: float) -> list[tuple[int, ...]]:
    """The 2-D weight shapes, rows scaled by ``scale``."""
    out = []
    for _, shape in LLAMA_250M:
        if len(shape) == 2:
            out.append((max(1, round(shape[0] * scale)), shape[1]))
    return out


def best_of(repeat: int, fn: Callable[[], object]) -> float:
    best = math.inf
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def fill_bandwidth(repeat: int = 3) -> tuple[float, float]:
    """Bytes/s of ``ndarray.fill`` and ``Tensor.fill_`` on a 1 GiB float32 buffer."""
    buf = np.empty(1 << 28, np.float32)
    buf.fill(0.0)  # fault the pages in first
    t = torch.from_numpy(buf)
    np_time = best_of(repeat, lambda: buf.fill(1.0))
    torch_time = best_of(repeat, lambda: t.fill_(1.0))
    return buf.nbytes / np_time, buf.nbytes / torch_time


def main() -> None:
    parser = argparse.ArgumentParser(description="spore vs torch init throughput")
    parser.add_argument("--scale", type=float, default=1.0, help="row scale")
    parser.add_argument("--repeat", type=int, default=3, help="best of N runs")
    args = parser.parse_args()
    torch.set_num_threads(1)

    weight_shapes = shapes(args.scale)
    tensors = [torch.zeros(shape) for shape in weight_shapes]  # pages touched
    arrays = [t.numpy() for t in tensors]
    keys = [next_init_key() for _ in weight_shapes]
    total = sum(a.size for a in arrays)
    print(
        f"{len(arrays)} weights, {total / 1e6:.1f}M parameters, 1 thread, "
        f"best of {args.repeat}; torch {torch.__version__}, numpy {np.__version__}\n"
    )

    def spore_fill(initializer: init.Initializer) -> None:
        for a, key in zip(arrays, keys, strict=True):
            initializer._fill(a, a.shape, (0, 0), key)

    def torch_fill(fn: Callable[[torch.Tensor], object]) -> None:
        with torch.no_grad():
            for t in tensors:
                fn(t)

    rows = []
    for name, (initializer, torch_fn) in CASES.items():
        spore_rate = total / best_of(args.repeat, lambda i=initializer: spore_fill(i))
        torch_rate = total / best_of(args.repeat, lambda f=torch_fn: torch_fill(f))
        rows.append((name, spore_rate, torch_rate))

    print("| initializer | spore Melem/s | torch Melem/s | spore / torch |")
    print("| --- | ---: | ---: | ---: |")
    for name, s, t in rows:
        print(f"| {name} | {s / 1e6:.0f} | {t / 1e6:.0f} | {s / t:.2f}x |")

    np_bw, torch_bw = fill_bandwidth()
    memory = max(np_bw, torch_bw)
    ones = dict((name, s) for name, s, _ in rows)["ones"] * 4  # bytes/s
    print(
        f"\nmemory fill (1 GiB): ndarray.fill {np_bw / 1e9:.2f} GB/s, Tensor.fill_ "
        f"{torch_bw / 1e9:.2f} GB/s; spore ones {ones / 1e9:.2f} GB/s = "
        f"{100 * ones / memory:.0f}% of the faster"
    )


if __name__ == "__main__":
    main()
