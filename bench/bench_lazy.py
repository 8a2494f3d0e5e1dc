"""Lazy construction of every parameter of a Llama-2-70B-shaped model.

spore: ``with spore.lazy_init(): Parameter(initializer("normal", shape), name=...)``
against PyTorch: ``torch.nn.Parameter(torch.empty(shape, device="meta"))``, the
same 723 shapes, each variant in its own fresh process so RSS growth is its own.

    python bench/bench_lazy.py [--repeat 20]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _rss_mib() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def build_spore(shapes):
    import spore
    from spore.common.initializer import initializer

    with spore.lazy_init():
        return [
            spore.Parameter(initializer("normal", shape, spore.float32), name=name)
            for name, shape in shapes
        ]


def build_torch_meta(shapes):
    import torch

    return [
        torch.nn.Parameter(torch.empty(shape, device="meta")) for _, shape in shapes
    ]


def child(variant: str, repeat: int) -> None:
    sys.path.insert(0, str(HERE))
    from llama_shapes import LLAMA_70B

    build = {"spore": build_spore, "torch_meta": build_torch_meta}[variant]
    # Both variants pay the same imports.
    import torch  # noqa: F401

    import spore  # noqa: F401

    rss_before = _rss_mib()
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    kept = build(LLAMA_70B)
    first = time.perf_counter() - start
    rss_after = _rss_mib()
    peak_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        build(LLAMA_70B)
        times.append(time.perf_counter() - start)
    print(json.dumps({
        "variant": variant, "tensors": len(kept), "first_ms": first * 1e3,
        "median_ms": statistics.median(times) * 1e3, "min_ms": min(times) * 1e3,
        "rss_growth_mib": rss_after - rss_before,
        "peak_rss_growth_mib": max(peak_after - peak_before, rss_after - rss_before),
    }))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--child", choices=["spore", "torch_meta"])
    args = parser.parse_args()
    if args.child:
        child(args.child, args.repeat)
        return
    rows = {}
    for variant in ("torch_meta", "spore"):
        out = subprocess.run(
            [sys.executable, __file__, "--child", variant,
             "--repeat", str(args.repeat)],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        rows[variant] = json.loads(out)
    base = rows["torch_meta"]["median_ms"]
    print(
        "| variant | tensors | first build ms | median ms | RSS growth MiB "
        "| time vs torch meta |"
    )
    print("|---|---|---|---|---|---|")
    for variant, r in rows.items():
        print(f"| {variant} | {r['tensors']} | {r['first_ms']:.2f} "
              f"| {r['median_ms']:.2f} | {r['peak_rss_growth_mib']:.1f} "
              f"| {r['median_ms'] / base:.2f}x |")


if __name__ == "__main__":
    main()
