"""How much where the page cache puts a file decides a mapped load's speed.

Writes one 2.5 GiB float32 tensor with spore (``.ckpt``) and with safetensors,
then, for each order (spore's file first, safetensors' first, and again), drops
both files from the page cache (``POSIX_FADV_DONTNEED``), reads them through in
that order, and in a fresh process per file maps it (spore ``load_checkpoint``,
safetensors ``load_file``) and sums every value twice. The second sum is the
steady state: every page is already mapped, so it measures only how fast the
memory behind the file's pages is. One thread per process.

    python bench/bench_ckpt_placement.py [--gib 2.5] [--dir /tmp]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _write(directory: Path, gib: float) -> tuple[Path, Path]:
    import torch
    from safetensors.torch import save_file

    sys.path.insert(0, str(ROOT))
    from spore import Tensor, save_checkpoint

    tensor = torch.full((int(gib * 2**30) // 4,), 1 / 7)
    ckpt, st = directory / "big.ckpt", directory / "big.safetensors"
    save_checkpoint({"w": Tensor.from_torch(tensor)}, str(ckpt))
    save_file({"w": tensor}, str(st))
    return ckpt, st


def _evict_then_read(paths: list[Path]) -> None:
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)  # clean pages only can be dropped
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
    for path in paths:
        with open(path, "rb") as file:
            while file.read(16 << 20):
                pass


def _sums(path: str) -> None:
    import torch

    torch.set_num_threads(1)
    sys.path.insert(0, str(ROOT))
    if path.endswith(".ckpt"):
        from spore import load_checkpoint

        tensor = load_checkpoint(path)["w"].to_torch().detach()
    else:
        from safetensors.torch import load_file

        tensor = load_file(path)["w"]
    times = []
    for _ in range(2):
        start = time.perf_counter()
        float(tensor.sum())
        times.append(time.perf_counter() - start)
    print(json.dumps(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gib", type=float, default=2.5)
    parser.add_argument("--dir", default="/tmp")
    parser.add_argument("--sums", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sums is not None:
        _sums(args.sums)
        return
    directory = Path(args.dir) / f"spore_bench_placement_{os.getpid()}"
    directory.mkdir()
    try:
        ckpt, st = _write(directory, args.gib)
        print("| read first | spore first sum s | spore second sum s "
              "| safetensors first sum s | safetensors second sum s |")  # fmt: skip
        print("|---|---:|---:|---:|---:|")
        for first in ("spore", "safetensors", "spore", "safetensors"):
            order = [ckpt, st] if first == "spore" else [st, ckpt]
            _evict_then_read(order)
            row = {}
            for path in (ckpt, st):
                done = subprocess.run(
                    [sys.executable, __file__, "--sums", str(path)],
                    capture_output=True, text=True, check=True,
                )  # fmt: skip
                row[path] = json.loads(done.stdout.strip().splitlines()[-1])
            print(f"| {first} | {row[ckpt][0]:.3f} | {row[ckpt][1]:.3f} "
                  f"| {row[st][0]:.3f} | {row[st][1]:.3f} |")  # fmt: skip
    finally:
        for path in directory.iterdir():
            path.unlink()
        directory.rmdir()


if __name__ == "__main__":
    main()
