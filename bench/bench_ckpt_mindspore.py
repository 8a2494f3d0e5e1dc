"""MindSpore's own save_checkpoint / load_checkpoint on bench_ckpt.py's "many" data.

Runs in a MindSpore virtualenv, which has no torch (so bench_ckpt.py cannot time
MindSpore itself): 200 float32 tensors of 1 GiB / 200 each, tensor ``i`` filled
with ``i / 7``. Each run is a fresh process: a save (``ms.save_checkpoint`` of a
list of ``{"name", "data"}``; also timed with an fsync after it, as spore's save
makes the file durable before it returns), then, with the file just written (warm
cache), a load (``ms.load_checkpoint``) followed by a float sum over every value.
Medians of ``--repeat``. Compare with spore's "many" rows of bench_ckpt.py (same
data, warm, "sum").

    python3 -m venv /tmp/ms210 && /tmp/ms210/bin/pip install mindspore==2.10.0
    /tmp/ms210/bin/python bench/bench_ckpt_mindspore.py [--repeat 3] [--dir /tmp]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

COUNT, TOTAL = 200, 1024**3


def _child(op: str, path: str) -> None:
    import mindspore as ms  # type: ignore[import-not-found]
    import numpy as np

    if op in ("save", "save+fsync"):
        size = TOTAL // COUNT // 4
        data = [
            {"name": f"layer{i}.weight", "data": ms.Tensor(np.full(size, i / 7, "f4"))}
            for i in range(COUNT)
        ]
        start = time.perf_counter()
        ms.save_checkpoint(data, path)
        if op == "save+fsync":  # what spore's save also does before it returns
            fd = os.open(path, os.O_RDONLY)
            os.fsync(fd)
            os.close(fd)
    else:
        start = time.perf_counter()
        loaded = ms.load_checkpoint(path)
        total = sum(float(p.asnumpy().sum()) for p in loaded.values())
        assert total > 0
    print(json.dumps(time.perf_counter() - start))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", default="/tmp")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(*args.child)
        return
    path = os.path.join(args.dir, f"ms_bench_{os.getpid()}.ckpt")
    runs: dict[str, list[float]] = {"save": [], "save+fsync": [], "load": []}
    try:
        for _ in range(args.repeat):
            for op in ("save+fsync", "save", "load"):
                done = subprocess.run(
                    [sys.executable, __file__, "--child", op, path],
                    capture_output=True, text=True, check=True,
                )  # fmt: skip
                runs[op].append(json.loads(done.stdout.strip().splitlines()[-1]))
    finally:
        if os.path.exists(path):
            os.unlink(path)
    for op, times in runs.items():
        what = {
            "save": "save_checkpoint",
            "save+fsync": "save_checkpoint + fsync",
            "load": "load_checkpoint + sum, warm",
        }[op]
        print(f"| mindspore {what} | {statistics.median(times):.3f} s | "
              f"{' / '.join(f'{t:.3f}' for t in times)} |")  # fmt: skip


if __name__ == "__main__":
    main()
