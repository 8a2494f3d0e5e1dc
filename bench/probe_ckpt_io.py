"""Measurements behind the checkpoint I/O choices (not targets; bench/README.md).

    python bench/probe_ckpt_io.py save-steps [--repeat 6] [--case many]
    python bench/probe_ckpt_io.py cold-read [--repeat 3]
    python bench/probe_ckpt_io.py idle-pages
    python bench/probe_ckpt_io.py disk-floor [--repeat 6] [--case many]
    python bench/probe_ckpt_io.py page-cache-writes [--repeat 6]

Files in /tmp: one 2.5 GiB float32 tensor ("one-big", the default), or ~1 GiB in
200 tensors ("many"); one torch thread; every save or load runs in a fresh
process, and the variants take turns in rotated order (position matters on a VM:
see the checkpoint section of bench/README.md).

- save-steps: spore's save with 512 KiB and with 2 MiB writes, and safetensors'
  ``save_file``, each after deleting the previous file (as bench_ckpt.py's saves
  do); each file is then loaded and summed (its pages still cached as its writer
  left them) and the huge-page mapped size of the load is printed
  (FilePmdMapped); with ``--no-loads`` the saves run back to back.
- cold-read (root: drops the page cache before each load): load + sum of a file
  not in the page cache, spore as shipped (read-ahead in 128 KiB pieces), with
  read-ahead asked once per range (the kernel caps it at its window), with no
  read-ahead (pages fault in), and safetensors' ``load_file``.
- idle-pages: a 1 GiB file in the page cache, read at one place per MiB; then
  left alone for 0 to 32 s and read at the same places again, timed: what a page
  that stayed cached but untouched costs at its next read (on a VM whose host
  takes back memory the guest leaves idle, far more than a cached page should).
- disk-floor: how fast the disk itself takes the bytes of a save, against the
  saves: the same number of bytes written with O_DIRECT (no page cache) in 4 MiB
  blocks from one thread and from eight, then fsynced; spore's save; safetensors'
  ``save_file`` alone and followed by an fsync. A save that fsyncs (spore's, as
  its atomicity rule asks) cannot finish before the disk has the bytes; a plain
  ``save_file`` returns once they are in the page cache. Each save's time in
  fsync and its kernel CPU time (copying into the page cache) are printed too.
- page-cache-writes: one process writes the same 1 GiB tensor to a file again and
  again (no fsync; the file deleted after each write), in 512 KiB, 2 MiB and
  5 MiB ``write`` calls and in 512 KiB ``writev`` calls of two pieces: how much
  the copy into the page cache alone varies, whoever writes.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CASES = {"one-big": (1, int(2.5 * 2**30) // 4), "many": (200, 2**30 // 200 // 4)}
WORKDIR = Path("/tmp/spore_probe_ckpt_io")


def _child(op: str, variant: str, path: str, case: str) -> None:
    import torch

    sys.path.insert(0, str(ROOT))
    torch.set_num_threads(1)
    import safetensors.torch

    import spore
    from spore.train import _ckpt_mmap, _ckpt_writer

    if op == "save":
        count, numel = CASES[case]
        tensors = {f"w{i}": torch.full((numel,), i / 7) for i in range(count)}
        waits = []  # seconds in fsync: waiting for the disk
        real_fsync = os.fsync

        def fsync(fd: int) -> None:
            begun = time.perf_counter()
            real_fsync(fd)
            waits.append(time.perf_counter() - begun)

        os.fsync = fsync
        kernel = resource.getrusage(resource.RUSAGE_SELF).ru_stime
        start = time.perf_counter()
        if variant.startswith("direct"):
            _write_direct(path, sum(t.nbytes for t in tensors.values()),
                          int(variant.split()[1]))  # fmt: skip
        elif variant.startswith("safetensors"):
            safetensors.torch.save_file(tensors, path)
            if variant.endswith("fsync"):
                fd = os.open(path, os.O_RDONLY)
                os.fsync(fd)
                os.close(fd)
        else:
            _ckpt_writer._WRITE_STEP = int(variant.split()[1]) << 10
            values = {k: spore.Tensor.from_torch(v) for k, v in tensors.items()}
            spore.save_checkpoint(values, path)
        seconds = time.perf_counter() - start
        kernel = resource.getrusage(resource.RUSAGE_SELF).ru_stime - kernel
        print(json.dumps({"s": seconds, "sys": kernel, "fsync": sum(waits)}))
        return
    libc = _ckpt_mmap._LIBC
    if variant == "spore, once per range" and libc is not None:
        def once(address: int, length: int, budget: int) -> int:
            libc.madvise(address, length, _ckpt_mmap._MADV_WILLNEED)
            return length

        libc.prefetch = once  # type: ignore[method-assign]
    elif variant == "spore, no read-ahead" and libc is not None:
        libc.prefetch = lambda address, length, budget: 0  # type: ignore[method-assign]
    start = time.perf_counter()
    if variant == "safetensors":
        loaded = list(safetensors.torch.load_file(path).values())
    else:
        loaded = [p.to_torch().detach() for p in spore.load_checkpoint(path).values()]
    for tensor in loaded:
        float(tensor.sum())
    seconds = time.perf_counter() - start
    with open("/proc/self/smaps_rollup") as rollup:
        pmd = next(int(x.split()[1]) for x in rollup if x.startswith("FilePmdMapped"))
    print(json.dumps({"s": seconds, "pmd_mib": pmd // 1024}))


def _write_direct(path: str, nbytes: int, threads: int) -> None:
    """``nbytes`` (rounded up to 4 MiB) written with O_DIRECT, then fsynced."""
    import mmap
    import threading

    block = 4 << 20
    source = mmap.mmap(-1, block)  # page-aligned, as O_DIRECT needs
    source.write(b"\x01" * block)
    offsets = list(range(0, nbytes, block))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_DIRECT, 0o644)
    try:

        def write(first: int) -> None:
            for offset in offsets[first::threads]:
                os.pwrite(fd, source, offset)

        workers = [threading.Thread(target=write, args=(k,)) for k in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        os.fsync(fd)
    finally:
        os.close(fd)


def _run(op: str, variant: str, path: Path, case: str = "one-big") -> dict:
    command = [sys.executable, __file__, "child", op, variant, str(path), case]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"{op} {variant} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _rotated(variants: list[str], rep: int) -> list[str]:
    k = rep % len(variants)
    return variants[k:] + variants[:k]


def _path(variant: str) -> Path:
    suffix = ".safetensors" if variant.startswith("safetensors") else ".ckpt"
    return WORKDIR / (variant.replace(" ", "_").replace(",", "") + suffix)


def _clear() -> None:
    for leftover in WORKDIR.iterdir():
        leftover.chmod(0o600)
        leftover.unlink()


def save_steps(repeat: int, case: str, loads: bool) -> None:
    variants = ["spore 512", "spore 2048", "safetensors"]
    saves: dict[str, list[float]] = {v: [] for v in variants}
    for rep in range(repeat):
        line = []
        for variant in _rotated(variants, rep):
            _clear()  # one file at a time, as in bench_ckpt.py's saves
            os.sync()
            saves[variant].append(_run("save", variant, _path(variant), case)["s"])
            line.append(f"{variant} {saves[variant][-1]:.2f} s")
            if loads:
                os.sync()
                load = _run("load", variant, _path(variant), case)
                line[-1] += (f" (load + sum {load['s']:.3f} s, "
                             f"{load['pmd_mib']} MiB huge-page mapped)")  # fmt: skip
        print(f"repeat {rep}: " + "; ".join(line), flush=True)
    for variant in variants:
        runs = saves[variant]
        print(f"{variant}: save median {statistics.median(runs):.2f} s "
              f"(min {min(runs):.2f}, max {max(runs):.2f})")  # fmt: skip


def disk_floor(repeat: int, case: str) -> None:
    variants = ["direct 1", "direct 8", "spore 512", "safetensors", "safetensors fsync"]
    saves: dict[str, list[dict]] = {v: [] for v in variants}
    for rep in range(repeat):
        for variant in _rotated(variants, rep):
            _clear()
            os.sync()
            saves[variant].append(_run("save", variant, _path(variant), case))
    for variant in variants:
        done = saves[variant]
        runs = ", ".join(f"{x['s']:.2f}" for x in done)
        median = {key: statistics.median(x[key] for x in done) for key in done[0]}
        print(f"{variant}: median {median['s']:.3f} s, of which "
              f"{median['fsync']:.3f} s in fsync; kernel CPU {median['sys']:.3f} s "
              f"({runs})")  # fmt: skip


def page_cache_writes(repeat: int) -> None:
    import torch

    source = torch.full((2**28,), 1.5)  # 1 GiB, touched before any write
    data = memoryview(source.view(torch.uint8).numpy().data)
    path = WORKDIR / "page_cache_writes.bin"
    variants = ["write 512", "writev 512", "write 2048", "write 5120"]

    def write(variant: str) -> tuple[float, float]:
        call, kib = variant.split()
        step = int(kib) << 10
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        kernel = resource.getrusage(resource.RUSAGE_SELF).ru_stime
        start = time.perf_counter()
        for offset in range(0, len(data), step):
            if call == "writev":
                half = offset + step // 2
                os.writev(fd, [data[offset:half], data[half : offset + step]])
            else:
                os.write(fd, data[offset : offset + step])
        seconds = time.perf_counter() - start
        kernel = resource.getrusage(resource.RUSAGE_SELF).ru_stime - kernel
        os.close(fd)
        path.unlink()
        return seconds, kernel

    runs: dict[str, list[tuple[float, float]]] = {v: [] for v in variants}
    for rep in range(repeat):
        for variant in _rotated(variants, rep):
            runs[variant].append(write(variant))
    for variant in variants:
        times = [s for s, _ in runs[variant]]
        kernel = statistics.median(k for _, k in runs[variant])
        listed = ", ".join(f"{s:.2f}" for s in times)
        print(f"{variant} KiB: median {statistics.median(times):.3f} s, kernel CPU "
              f"{kernel:.3f} s ({listed})")  # fmt: skip


def cold_read(repeat: int) -> None:
    variants = ["spore", "spore, once per range", "spore, no read-ahead",
                "safetensors"]  # fmt: skip
    _clear()
    _run("save", "spore 2048", _path("spore"))
    _run("save", "safetensors", _path("safetensors"))
    loads: dict[str, list[float]] = {v: [] for v in variants}
    for rep in range(repeat):
        for variant in _rotated(variants, rep):
            path = _path("safetensors" if variant == "safetensors" else "spore")
            os.sync()
            with open("/proc/sys/vm/drop_caches", "w") as control:
                control.write("3\n")
            loads[variant].append(_run("load", variant, path)["s"])
    for variant in variants:
        runs = ", ".join(f"{x:.2f}" for x in loads[variant])
        median = statistics.median(loads[variant])
        print(f"{variant}: cold load + sum median {median:.2f} s ({runs})")


def idle_pages() -> None:
    path, size, stride = WORKDIR / "idle.bin", 1 << 30, 1 << 20
    with open(path, "wb") as file:
        block = b"\x01" * (16 << 20)
        for _ in range(size // len(block)):
            file.write(block)
        file.flush()
        os.fsync(file.fileno())
    fd = os.open(path, os.O_RDONLY)
    try:

        def touch() -> float:
            start = time.perf_counter()
            for offset in range(0, size, stride):
                os.pread(fd, 64, offset)
            return (time.perf_counter() - start) / (size // stride) * 1e6

        touch()
        for idle in (0, 1, 2, 4, 8, 16, 32):
            touch()
            time.sleep(idle)
            print(f"idle {idle:2d} s: {touch():6.1f} us per MiB read", flush=True)
    finally:
        os.close(fd)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "child":
        _child(*sys.argv[2:6])
        return
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    whats = ["save-steps", "cold-read", "idle-pages", "disk-floor", "page-cache-writes"]
    parser.add_argument("what", choices=whats)
    parser.add_argument("--repeat", type=int, default=None)
    parser.add_argument("--case", choices=sorted(CASES), default="one-big")
    parser.add_argument(
        "--no-loads", action="store_true", help="save-steps: no load between saves"
    )
    args = parser.parse_args()
    WORKDIR.mkdir(exist_ok=True)
    try:
        if args.what == "save-steps":
            save_steps(args.repeat or 6, args.case, not args.no_loads)
        elif args.what == "page-cache-writes":
            page_cache_writes(args.repeat or 6)
        elif args.what == "disk-floor":
            disk_floor(args.repeat or 6, args.case)
        elif args.what == "idle-pages":
            idle_pages()
        else:
            cold_read(args.repeat or 3)
    finally:
        _clear()
        WORKDIR.rmdir()


if __name__ == "__main__":
    main()
