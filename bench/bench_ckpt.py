"""Checkpoint save and load: spore ``.ckpt`` against ``safetensors``.

Two cases: ~1 GiB of float32 in 200 tensors ("many"), and one 2.5 GiB float32
tensor in one file ("one-big", which exercises tensors and files over 2 GiB and
the 512 MiB chunking). Every measurement runs in a fresh process (so the peak RSS
is its own: VmHWM after a reset, minus the RSS before the operation), the median
of ``--repeat`` runs is reported; within a repeat the implementations take turns,
in an order that rotates from one repeat to the next.

- save: spore ``save_checkpoint`` (temporary file, fsync, rename) against
  ``safetensors.torch.save_file`` (no fsync) and ``save_file`` + fsync.
- load: spore ``load_checkpoint`` (maps the file: its tensors are views, see
  Note [mapped loads]) against ``safetensors.torch.load_file`` and
  ``safe_open(...).get_tensor`` (both map the file too), each followed by touching
  the values so that lazily mapped pages are really read: "page" touches one byte
  per 4 KiB page, "sum" reads every value (a float sum per tensor).
- cache: "warm" (the file was just written by its own writer), and, if this
  process may write ``/proc/sys/vm/drop_caches`` (root), "reread" (cache dropped,
  then every file read once: cached as any file read back is, in the large folios
  readahead makes, whichever program wrote it) and "cold" (page cache dropped
  before each run). For "warm" and "reread" the files are prepared anew before
  every repeat, spore's first in even repeats and safetensors' first in odd ones,
  and the loaders run in turn in the same alternation. "warm" and "reread" differ
  in how the page cache holds the file: how a writer writes decides its folio
  sizes, and mapped loads map large folios with far fewer page-table entries (see
  Note [overlapped save]).
- idle pages: on the VM these figures come from, a page-cache page left alone
  for a few seconds is slow at its next touch (one read per MiB of a cached file:
  0.4 us after no idle time, 6.4 us after 1 s, 20 us after 4 s, 45 us after 32 s;
  `probe_ckpt_io.py idle-pages`), so a loader whose file waited longer (the other
  format being written or loaded meanwhile) paid ~6-20 ms per GiB more. Each
  "warm" and "reread" load therefore reads its file through once, untimed, right
  before the clock starts; that changes no folio, only which pages the host has
  at hand.

``ratio`` is safetensors' time / spore's time for the same case, operation, touch
and cache (> 1: spore is faster). MindSpore's own save/load run only where
``mindspore`` imports.

    python bench/bench_ckpt.py [--scale 1.0] [--repeat 3] [--dir /tmp] [--no-cold]
                               [--cases many,one-big] [--spore-write-kib 512]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # spore from this tree

GIB = 1024**3
CASES = {
    # name: (number of tensors, bytes per tensor at scale 1)
    "many": (200, GIB // 200),
    "one-big": (1, int(2.5 * GIB)),
}


def _elements(case: str, scale: float) -> list[int]:
    count, nbytes = CASES[case]
    return [max(1, int(nbytes * scale) // 4)] * count


# ---- worker (runs in a fresh process) ------------------------------------------------


def _status(field: str) -> int:
    with open("/proc/self/status") as status:
        line = next(x for x in status if x.startswith(field + ":"))
    return int(line.split()[1]) * 1024


def _reset_peak() -> int:
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:
        pass
    return _status("VmRSS")


def _touch(tensors: list[torch.Tensor], mode: str) -> float:
    total = 0.0
    for tensor in tensors:
        flat = tensor.reshape(-1)
        if mode == "page":
            total += float(flat.view(torch.uint8)[::4096].sum())
        else:
            total += float(flat.sum())
    return total


def _save(impl: str, path: str, tensors: dict[str, torch.Tensor]) -> None:
    if impl == "spore.ckpt":
        from spore import Tensor, save_checkpoint
        from spore.train import _ckpt_writer

        if os.environ.get("SPORE_BENCH_WRITE_KIB"):  # --spore-write-kib
            _ckpt_writer._WRITE_STEP = int(os.environ["SPORE_BENCH_WRITE_KIB"]) << 10
        save_checkpoint({k: Tensor.from_torch(v) for k, v in tensors.items()}, path)
    elif impl in ("safetensors", "safetensors+fsync"):
        from safetensors.torch import save_file

        save_file(tensors, path)
        if impl == "safetensors+fsync":
            fd = os.open(path, os.O_RDONLY)
            os.fsync(fd)
            os.close(fd)
    elif impl == "mindspore.ckpt":
        import mindspore as ms  # type: ignore[import-not-found]

        ms.save_checkpoint(
            [{"name": k, "data": ms.Tensor(v.numpy())} for k, v in tensors.items()],
            path,
        )
    else:
        raise ValueError(impl)


def _load(impl: str, path: str) -> tuple[dict[str, torch.Tensor], Any]:
    if impl == "spore.ckpt":
        from spore import load_checkpoint

        loaded = load_checkpoint(path)
        # detached: the touch must not build autograd nodes safetensors' do not
        return {k: p.to_torch().detach() for k, p in loaded.items()}, loaded
    if impl == "safetensors.load_file":
        from safetensors.torch import load_file

        loaded = load_file(path)
        return loaded, None
    if impl == "safetensors.safe_open":
        from safetensors import safe_open

        with safe_open(path, framework="pt") as file:
            tensors = {k: file.get_tensor(k) for k in file.keys()}
        return tensors, None
    if impl == "mindspore.ckpt":
        import mindspore as ms  # type: ignore[import-not-found]

        loaded = ms.load_checkpoint(path)
        return {k: torch.from_numpy(p.asnumpy()) for k, p in loaded.items()}, loaded
    raise ValueError(impl)


def _check_values(tensors: dict[str, torch.Tensor], impl: str) -> None:
    """``layer<i>.weight`` was saved as ``full(i / 7)``: check 3 of its values."""
    for name, tensor in tensors.items():
        i = int(name[len("layer") :].split(".")[0])
        flat = tensor.reshape(-1)
        want = torch.tensor(i / 7.0, dtype=torch.float32)
        picks = flat[torch.tensor([0, flat.numel() // 2, flat.numel() - 1])]
        if not bool((picks == want).all()):
            raise SystemExit(f"{impl}: {name} loaded wrong values {picks}")


def worker(args: argparse.Namespace) -> None:
    # One thread: the sums of the "sum" touch must not wait on a busy second core.
    torch.set_num_threads(1)
    # Imported before the clock starts, for every implementation alike.
    import safetensors.torch  # noqa: F401

    import spore  # noqa: F401

    if args.op == "save":
        sizes = _elements(args.case, args.scale)
        tensors = {
            f"layer{i}.weight": torch.full((n,), i / 7.0) for i, n in enumerate(sizes)
        }
        base = _reset_peak()
        start = time.perf_counter()
        _save(args.impl, args.path, tensors)
        seconds = time.perf_counter() - start
        nbytes = sum(t.nbytes for t in tensors.values())
    else:
        if args.cache in ("warm", "reread"):
            # Every loader meets its file just read, whatever waited how long
            # before: see the module's docstring on idle pages.
            _read_through(Path(args.path))
        base = _reset_peak()
        start = time.perf_counter()
        tensors, keep = _load(args.impl, args.path)
        _touch(list(tensors.values()), args.touch)
        seconds = time.perf_counter() - start
        nbytes = sum(t.nbytes for t in tensors.values())
        _check_values(tensors, args.impl)  # after the clock: loads are right
        del keep
    peak = _status("VmHWM") - base
    print(json.dumps({"seconds": seconds, "bytes": nbytes, "peak": peak}))


# ---- driver --------------------------------------------------------------------------


def _drop_caches() -> bool:
    try:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as control:
            control.write("3\n")
        return True
    except OSError:
        return False


def _read_through(path: Path) -> None:
    with open(path, "rb") as file:
        while file.read(16 << 20):
            pass


_TINY = 1e-4  # scale of the warm-up files: 200 tensors of ~5 KiB


def _cache_files(
    cache: str, first: list[str], files: dict[str, str], case: str, scale: float
) -> None:
    """Put the two load files in the page cache state ``cache`` calls for, the
    format ``first[0]`` first: "warm" writes both anew (each writer leaves its
    file cached its own way), "reread" drops the cache and reads both through,
    "cold" writes them if they are missing (each load then drops the cache)."""
    savers = {"ckpt": "spore.ckpt", "st": "safetensors"}
    if cache == "warm" or not all(os.path.exists(files[f]) for f in first):
        for fmt in first:
            if os.path.exists(files[fmt]):
                os.chmod(files[fmt], 0o600)
                os.unlink(files[fmt])
            os.sync()  # earlier writeback must not slow this one
            _run("save", savers[fmt], case, files[fmt], scale, "-")
        os.sync()
    if cache == "reread":
        _drop_caches()
        # The drop also evicted the libraries (libtorch is hundreds of MB): load a
        # tiny file of each format first, so that no loader pays their page-in.
        _run("load", "spore.ckpt", "many", files["tiny_ckpt"], _TINY, "sum")
        _run("load", "safetensors.load_file", "many", files["tiny_st"], _TINY, "sum")
        for fmt in first:
            _read_through(Path(files[fmt]))


def _run(
    op: str, impl: str, case: str, path: str, scale: float, touch: str, cache: str = "-"
) -> dict:
    command = [sys.executable, __file__, "--worker", "--op", op, "--impl", impl]
    command += ["--case", case, "--path", path, "--scale", str(scale), "--touch", touch]
    command += ["--cache", cache]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"{op} {impl} {case} failed:\n{done.stderr[-2000:]}")
    return json.loads(str(done.stdout).strip().splitlines()[-1])


def _median(runs: list[dict]) -> dict:
    return {
        "seconds": statistics.median(r["seconds"] for r in runs),
        "bytes": runs[0]["bytes"],
        "peak": max(r["peak"] for r in runs),
        "runs": [r["seconds"] for r in runs],
    }


def _mindspore_available() -> bool:
    probe = subprocess.run(
        [sys.executable, "-c", "import mindspore"], capture_output=True, check=False
    )
    return probe.returncode == 0


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", default="/tmp")
    parser.add_argument("--no-cold", action="store_true")
    parser.add_argument("--cases", default="many,one-big")
    parser.add_argument(
        "--spore-write-kib",
        type=int,
        help="size of spore's writes in KiB (default: the library's, 512)",
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--op", help=argparse.SUPPRESS)
    parser.add_argument("--impl", help=argparse.SUPPRESS)
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    parser.add_argument("--touch", default="page", help=argparse.SUPPRESS)
    parser.add_argument("--cache", default="-", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.spore_write_kib:  # read by the save workers
        os.environ["SPORE_BENCH_WRITE_KIB"] = str(args.spore_write_kib)
    if args.worker:
        worker(args)
        return

    cases = args.cases.split(",")
    need = 2.2 * max(sum(_elements(c, args.scale)) * 4 for c in cases)
    free = shutil.disk_usage(args.dir).free
    if free < need:
        sys.exit(f"need {need / GIB:.1f} GiB free in {args.dir}, have {free / GIB:.1f}")
    have_ms = _mindspore_available()
    cold_ok = not args.no_cold and _drop_caches()
    workdir = Path(args.dir) / f"spore_bench_ckpt_{os.getpid()}"
    workdir.mkdir()
    savers = ["spore.ckpt", "safetensors", "safetensors+fsync"]
    loaders = ["spore.ckpt", "safetensors.load_file", "safetensors.safe_open"]
    if have_ms:
        savers.append("mindspore.ckpt")
        loaders.append("mindspore.ckpt")
    rows: list[tuple[str, str, str, str, str, dict]] = []
    try:
        for case in cases:
            files = {
                "ckpt": str(workdir / "m.ckpt"),
                "st": str(workdir / "m.safetensors"),
                "tiny_ckpt": str(workdir / "tiny.ckpt"),
                "tiny_st": str(workdir / "tiny.safetensors"),
            }
            # Implementations take turns within each repeat, so that a slow
            # spell of the shared disk or CPUs hits them alike.
            # The order rotates: on a VM a save's speed depends on its place in
            # line (the last of several gets memory the host has taken back).
            save_runs: dict[str, list[dict]] = {impl: [] for impl in savers}
            for rep in range(args.repeat):
                turn = rep % len(savers)
                for impl in savers[turn:] + savers[:turn]:
                    target = (
                        files["st"] if impl.startswith("safetensors") else files["ckpt"]
                    )
                    if impl == "mindspore.ckpt":
                        target = str(workdir / "ms.ckpt")
                    for leftover in workdir.iterdir():
                        leftover.chmod(0o600)
                        leftover.unlink()
                    os.sync()  # earlier writeback must not slow this run
                    save_runs[impl].append(
                        _run("save", impl, case, target, args.scale, "-")
                    )
            for impl in savers:
                rows.append((case, "save", impl, "-", "-", _median(save_runs[impl])))
            _run("save", "spore.ckpt", "many", files["tiny_ckpt"], _TINY, "-")
            _run("save", "safetensors", "many", files["tiny_st"], _TINY, "-")
            for cache in ["warm", "reread", "cold"] if cold_ok else ["warm"]:
                for touch in ["page", "sum"]:
                    load_runs: dict[str, list[dict]] = {impl: [] for impl in loaders}
                    for rep in range(args.repeat):
                        # Which format's file enters the page cache first, and
                        # which loader runs first, alternate between repeats: on
                        # a VM the memory behind the page cache is not all alike
                        # (bench_ckpt_placement.py).
                        first = ["ckpt", "st"] if rep % 2 == 0 else ["st", "ckpt"]
                        _cache_files(cache, first, files, case, args.scale)
                        order = loaders if rep % 2 == 0 else loaders[::-1]
                        for impl in order:
                            path = files["st"]
                            if impl == "spore.ckpt":
                                path = files["ckpt"]
                            elif impl == "mindspore.ckpt":
                                path = str(workdir / "ms.ckpt")
                            if cache == "cold":
                                _drop_caches()
                            load_runs[impl].append(
                                _run("load", impl, case, path, args.scale, touch, cache)
                            )
                    for impl in loaders:
                        result = _median(load_runs[impl])
                        rows.append((case, "load", impl, touch, cache, result))
            for leftover in workdir.iterdir():
                leftover.chmod(0o600)
                leftover.unlink()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    _print_table(rows, args, have_ms, cold_ok)


def _print_table(
    rows: list, args: argparse.Namespace, have_ms: bool, cold: bool
) -> None:
    spore_time = {
        (c, op, t, k): r["seconds"]
        for c, op, impl, t, k, r in rows
        if impl == "spore.ckpt"
    }
    print(f"scale {args.scale}, median of {args.repeat}, torch {torch.__version__}")
    if not have_ms:
        print("MindSpore is not importable here: its rows are skipped.")
    if not cold:
        print("Cold-cache rows skipped (cannot write /proc/sys/vm/drop_caches).")
    print()
    print(
        "| case | op | implementation | touch | cache | s | GB/s | peak RSS MiB ",
        end="",
    )
    print("| ratio | runs s |")
    print("|---|---|---|---|---|---:|---:|---:|---:|---|")
    for case, op, impl, touch, cache, r in rows:
        ref = spore_time[(case, op, touch, cache)]
        ratio = "-" if impl == "spore.ckpt" else f"{r['seconds'] / ref:.2f}x"
        print(
            f"| {case} | {op} | {impl} | {touch} | {cache} | {r['seconds']:.3f} | "
            f"{r['bytes'] / r['seconds'] / 1e9:.2f} | {r['peak'] / 2**20:.0f} | "
            f"{ratio} | {' '.join(f'{x:.3f}' for x in r['runs'])} |"
        )


if __name__ == "__main__":
    main()
