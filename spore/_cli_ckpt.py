"""``spore ckpt``: look at, convert and compare checkpoint files.

    spore ckpt show FILE [--stats]     names, dtypes, shapes (and value statistics)
    spore ckpt convert IN OUT [--crc]  .ckpt <-> .safetensors, by file extension
    spore ckpt diff A B                exit 0 if equal, 1 if they differ

Files are read one tensor at a time (``.safetensors`` are memory-mapped), so a
checkpoint larger than memory can be shown, compared, or converted to ``.ckpt``.
Exit status: 0 success (or equal), 1 differences (diff), 2 unusable input.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Iterator
from typing import Any

import torch

from spore.common import dtype as mstype
from spore.train import _ckpt_writer
from spore.train._ckpt_file import CheckpointFile

_PROGRESS_MIN_BYTES = 64 << 20
_STATS_BLOCK = 1 << 24  # elements per block when computing statistics


def add_parser(commands: Any) -> None:
    """Add ``ckpt`` and its subcommands to the ``spore`` parser."""
    ckpt = commands.add_parser(
        "ckpt",
        help="show, convert (.ckpt <-> .safetensors) and diff checkpoint files",
        description="Show, convert and compare MindSpore .ckpt and safetensors files.",
    )
    actions = ckpt.add_subparsers(dest="ckpt_command", metavar="ACTION")
    show = actions.add_parser("show", help="list the tensors of a checkpoint")
    show.add_argument("file")
    show.add_argument("--stats", action="store_true", help="min/max/mean/std too")
    convert = actions.add_parser(
        "convert", help="convert between .ckpt and .safetensors"
    )
    convert.add_argument("input")
    convert.add_argument("output")
    convert.add_argument("--crc", action="store_true", help="store a CRC-32")
    diff = actions.add_parser("diff", help="compare two checkpoints (exit 1 if differ)")
    diff.add_argument("a")
    diff.add_argument("b")
    for action in (show, convert, diff):
        action.add_argument(
            "--no-progress", action="store_true", help="no progress bar on stderr"
        )
    ckpt.set_defaults(ckpt_parser=ckpt)


def run(args: argparse.Namespace) -> int:
    """Run ``spore ckpt ...``; returns the exit status."""
    handlers = {"show": _show, "convert": _convert, "diff": _diff}
    handler = handlers.get(getattr(args, "ckpt_command", None) or "")
    if handler is None:
        args.ckpt_parser.print_help()
        return 2
    try:
        return handler(args)
    except BrokenPipeError:  # `spore ckpt show big.ckpt | head`: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (ValueError, TypeError, OSError) as err:
        print(f"spore ckpt {args.ckpt_command}: error: {err}", file=sys.stderr)
        return 2


# ---- reading one tensor at a time ----------------------------------------------------


class _Source(CheckpointFile):
    """The entries of a .ckpt or .safetensors file, read on demand."""

    def __init__(self, path: str) -> None:
        super().__init__(path, _format_of(path))
        self.crc: str = "-"
        if self.index is not None:
            self.crc = "present" if self.index.crc is not None else "none"

    def names(self) -> list[str]:
        return list(self.records if self.format == "ckpt" else self.values)

    def describe(self, name: str) -> tuple[str, tuple[int, ...] | None, int]:
        """``(dtype name, shape or None for a string, bytes)`` without reading data."""
        if self.format == "ckpt":
            record = self.records[name]
            if record.dtype is None:
                return "str", None, record.nbytes
            return str(record.dtype), record.shape, record.nbytes
        value = self.values[name]
        if isinstance(value, str):
            return "str", None, len(value.encode("utf-32-le"))
        kind = str(mstype.from_torch(value.dtype))
        return kind, tuple(value.shape), value.nbytes


def _format_of(path: str) -> str:
    for fmt in ("ckpt", "safetensors"):
        if path.endswith("." + fmt):
            return fmt
    raise ValueError(f"'{path}' should end with '.ckpt' or '.safetensors'.")


def _progress(total: int, disabled: bool, what: str) -> Any:
    """A tqdm bar over bytes for large files on a terminal; else a no-op."""
    if disabled or total < _PROGRESS_MIN_BYTES or not sys.stderr.isatty():
        return _NoProgress()
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency
        return _NoProgress()
    return tqdm(total=total, unit="B", unit_scale=True, desc=what, file=sys.stderr)


class _NoProgress:
    def update(self, count: int) -> None:
        pass

    def close(self) -> None:
        pass


# ---- show ----------------------------------------------------------------------------


def _stats(value: torch.Tensor) -> list[str]:
    if value.numel() == 0 or value.is_complex():
        return ["-"] * 4
    low, high = math.inf, -math.inf
    total = squares = 0.0
    flat = value.reshape(-1)
    for start in range(0, flat.numel(), _STATS_BLOCK):
        block = flat[start : start + _STATS_BLOCK].to(torch.float64)
        low = min(low, float(block.min()))
        high = max(high, float(block.max()))
        total += float(block.sum())
        squares += float((block * block).sum())
    count = flat.numel()
    mean = total / count
    std = math.sqrt(max(squares / count - mean * mean, 0.0))
    return [f"{low:.6g}", f"{high:.6g}", f"{mean:.6g}", f"{std:.6g}"]


def _show(args: argparse.Namespace) -> int:
    source = _Source(args.file)
    try:
        names = source.names()
        rows = []
        total = sum(source.describe(n)[2] for n in names)
        bar = _progress(total if args.stats else 0, args.no_progress, "reading")
        for name in names:
            dtype, shape, nbytes = source.describe(name)
            row = [name, dtype, "-" if shape is None else str(list(shape)), str(nbytes)]
            if args.stats:
                value = source.read(name)
                row += (
                    [repr(value), "", "", ""]
                    if isinstance(value, str)
                    else _stats(value)
                )
                bar.update(nbytes)
            rows.append(row)
        bar.close()
    finally:
        source.close()
    size = os.path.getsize(args.file)
    print(
        f"{args.file}: {source.format}, {len(names)} entries, {total} bytes of "
        f"values, file {size} bytes, CRC {source.crc}"
    )
    header = ["name", "dtype", "shape", "bytes"]
    if args.stats:
        header += ["min", "max", "mean", "std"]
    _print_table(header, rows)
    return 0


def _print_table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print(
            "  ".join(
                cell.ljust(width) for cell, width in zip(row, widths, strict=True)
            ).rstrip()
        )


# ---- convert -------------------------------------------------------------------------


def _convert(args: argparse.Namespace) -> int:
    out_format = _format_of(args.output)
    source = _Source(args.input)
    try:
        names = source.names()
        total = sum(source.describe(n)[2] for n in names)
        bar = _progress(total, args.no_progress, "converting")

        def items() -> Iterator[tuple[str, Any]]:
            for name in names:  # one tensor in memory at a time (for .ckpt output)
                value = source.read(name)
                yield name, value
                bar.update(source.describe(name)[2])

        stream: Any = items() if out_format == "ckpt" else list(items())
        _ckpt_writer.write_atomically(args.output, stream, args.crc, out_format)
        bar.close()
    finally:
        source.close()
    print(f"{args.input} -> {args.output}: {len(names)} entries")
    return 0


# ---- diff ----------------------------------------------------------------------------


def _same(a: torch.Tensor | str, b: torch.Tensor | str) -> tuple[bool, str]:
    if isinstance(a, str) and isinstance(b, str):
        return a == b, f"{a!r} vs {b!r}"
    if isinstance(a, str) or isinstance(b, str):
        return False, f"{a!r} vs {b!r}"
    if a.dtype != b.dtype or a.shape != b.shape:
        return False, ""
    raw_a = a.reshape(-1).view(torch.uint8)
    raw_b = b.reshape(-1).view(torch.uint8)
    if torch.equal(raw_a, raw_b):
        return True, ""
    if a.is_floating_point() or a.is_complex():
        delta = (a.to(torch.complex128 if a.is_complex() else torch.float64) - b).abs()
        finite = delta[torch.isfinite(delta)]
        worst = float(finite.max()) if finite.numel() else math.nan
        return False, f"max |a-b| {worst:.6g}"
    changed = int((a != b).sum())
    return False, f"{changed} of {a.numel()} elements differ"


def _diff(args: argparse.Namespace) -> int:
    with _Source(args.a) as first, _Source(args.b) as second:
        names_a, names_b = first.names(), second.names()
        in_b = set(names_b)
        lines = [f"only in {args.a}: {n}" for n in names_a if n not in in_b]
        lines += [f"only in {args.b}: {n}" for n in names_b if n not in set(names_a)]
        common = [n for n in names_a if n in in_b]
        bar = _progress(
            sum(first.describe(n)[2] for n in common), args.no_progress, "comparing"
        )
        for name in common:
            kind_a, shape_a, nbytes = first.describe(name)
            kind_b, shape_b, _ = second.describe(name)
            if (kind_a, shape_a) != (kind_b, shape_b):
                lines.append(
                    f"{name}: {kind_a} {shape_a} vs {kind_b} {shape_b}".replace(
                        "None", "str"
                    )
                )
            else:
                same, detail = _same(first.read(name), second.read(name))
                if not same:
                    lines.append(f"{name}: values differ ({detail})")
            bar.update(nbytes)
        bar.close()
    for line in lines:
        print(line)
    print(f"{len(common)} common entries, {len(lines)} differences")
    return 1 if lines else 0
