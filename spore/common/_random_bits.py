"""Where a block's random bits come from: the key's stream, read run by run.

See Note [counter-based init] in ``_random.py``. ``Stream`` is the main bit stream
of a key, readable at any word; ``Block`` maps the elements of a C-ordered block to
runs of consecutive flat indices of the full tensor and reads their bits.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterator

import numpy as np

Key = tuple[int, int]
_LITTLE = sys.byteorder == "little"
# Gap (64-bit words per run) above which a column slice is read run by run.
_SKIP_WORDS = 512


class Stream:
    """The main bit stream of one key, readable at any offset."""

    def __init__(self, key: Key) -> None:
        self._gen = np.random.PCG64DXSM(np.random.SeedSequence([key[0], key[1], 0, 0]))
        self._state = self._gen.state
        self._next = 0  # the word the generator will produce next

    def words(self, start: int, count: int) -> np.ndarray:
        """64-bit words ``start .. start + count`` (uint64)."""
        if start > self._next:  # skip forward from where the generator is
            self._gen.advance(start - self._next)
        elif start < self._next:  # jump back: restart from the key's first word
            self._gen.state = self._state
            self._gen.advance(start)
        self._next = start + count
        return self._gen.random_raw(count)

    def halves(self, start: int, count: int) -> np.ndarray:
        """32-bit values ``start .. start + count``: word ``i // 2``, low half first."""
        first = start >> 1
        raw = self.words(first, ((start + count + 1) >> 1) - first)
        if _LITTLE:
            u = raw.view(np.uint32)
        else:  # read the halves in little-endian order, as on every other machine
            u = raw.astype("<u8").view("<u4").astype(np.uint32)
        return u[start & 1 : (start & 1) + count]

    def runs(self, starts: np.ndarray, count: int, wide: bool) -> np.ndarray:
        """Values of the runs ``s .. s + count`` for ascending, non-overlapping
        ``starts``, concatenated: 64-bit words if ``wide``, else 32-bit values.

        One ``advance`` and one ``random_raw`` per run, with no other Python work
        per run: a column slice's many short runs cost little more than their bits.
        """
        if wide:
            first, end = starts, starts + count
        else:
            first, end = starts >> 1, (starts + count + 1) >> 1
        if int(first[0]) < self._next:  # jump back: restart from the key's first word
            self._gen.state = self._state
            self._next = 0
        skips = first - np.concatenate(([self._next], end[:-1]))
        advance, raw = self._gen.advance, self._gen.random_raw
        parts = []
        for skip, size in zip(skips.tolist(), (end - first).tolist(), strict=True):
            if skip:
                advance(skip)
            parts.append(raw(size))
        self._next = int(end[-1])
        if wide:
            return np.concatenate(parts)
        if _LITTLE and count % 2 == 0 and not (starts & 1).any():
            return np.concatenate(parts).view(np.uint32)  # whole words: no trimming
        out = np.empty(len(parts) * count, np.uint32)
        for r, (part, start) in enumerate(zip(parts, starts.tolist(), strict=True)):
            u = part.view(np.uint32) if _LITTLE else part.astype("<u8").view("<u4")
            out[r * count : (r + 1) * count] = u[start & 1 : (start & 1) + count]
        return out


class Block:
    """Where the elements of a C-ordered block sit in the full tensor.

    The block's elements form ``len(starts)`` runs of ``run`` consecutive flat
    indices: trailing dimensions that the block covers completely merge into the run.
    """

    def __init__(
        self,
        full_shape: tuple[int, ...],
        offsets: tuple[int, ...],
        shape: tuple[int, ...],
    ) -> None:
        full = tuple(int(d) for d in full_shape)
        if len(full) != len(shape) or len(offsets) != len(shape):
            raise ValueError(
                f"The block shape {shape} and offsets {offsets} do not match the full "
                f"shape {full}."
            )
        for d, (o, s, f) in enumerate(zip(offsets, shape, full, strict=True)):
            if o < 0 or o + s > f:
                raise ValueError(
                    f"The block [{o}, {o + s}) of dimension {d} lies outside the full "
                    f"shape {full}."
                )
        self.size = math.prod(shape)
        k = len(full)
        while k > 0 and shape[k - 1] == full[k - 1]:
            k -= 1
        inner = math.prod(full[k:])
        if k == 0:
            self.run, self.starts = inner, np.zeros(1, np.int64)
            return
        self.run = shape[k - 1] * inner
        starts = np.full((1,) * (k - 1), offsets[k - 1] * inner, dtype=np.int64)
        stride = inner * full[k - 1]
        for d in range(k - 2, -1, -1):
            index = (
                np.arange(offsets[d], offsets[d] + shape[d], dtype=np.int64) * stride
            )
            starts = starts + index.reshape((1,) * d + (-1,) + (1,) * (k - 2 - d))
            stride *= full[d]
        self.starts = starts.reshape(-1)

    def flat(self, pos: np.ndarray) -> np.ndarray:
        """Flat indices in the full tensor of block positions ``pos``."""
        return self.starts[pos // self.run] + pos % self.run

    def chunks(self, size: int) -> Iterator[tuple[int, int]]:
        """Position ranges of about ``size``: parts of a long run, or whole runs."""
        run, count = self.run, len(self.starts)
        if run >= size // 2:
            for r in range(count):
                for o in range(0, run, size):
                    yield r * run + o, r * run + min(o + size, run)
        else:
            per = size // run
            for r in range(0, count, per):
                yield r * run, min(r + per, count) * run

    def read(self, stream: Stream, c0: int, c1: int, wide: bool) -> np.ndarray:
        """Main-stream bits of positions ``c0 .. c1`` (uint64 if wide, else uint32),
        as a new contiguous array (callers overwrite it)."""
        read = stream.words if wide else stream.halves
        run = self.run
        r0, r1 = c0 // run, (c1 - 1) // run
        if r0 == r1:
            return read(int(self.starts[r0]) + c0 - r0 * run, c1 - c0)
        starts = self.starts[r0 : r1 + 1]
        whole_runs = c0 == r0 * run and c1 == (r1 + 1) * run  # always, from chunks
        # Several runs (a column slice): read the span once and keep the runs, or
        # read run by run, skipping the gaps. A skip costs ~1 us (the generator's
        # `advance` and a call) and a word ~2 ns, so the span is read unless the
        # gaps average more than _SKIP_WORDS words.
        gaps = int(starts[-1] - starts[0]) + run - len(starts) * run
        if whole_runs and gaps > _SKIP_WORDS * (1 if wide else 2) * (len(starts) - 1):
            return stream.runs(starts, run, wide)
        first = int(starts[0])
        span = read(first, int(starts[-1]) - first + run)
        steps = np.diff(starts)
        if whole_runs and (steps == steps[0]).all():  # evenly spaced: strided copy
            rows = np.lib.stride_tricks.as_strided(
                span,
                (len(starts), run),
                (int(steps[0]) * span.itemsize, span.itemsize),
                writeable=False,
            )
            return np.ascontiguousarray(rows).reshape(-1)
        index = ((starts - first)[:, None] + np.arange(run)).reshape(-1)
        return span[index[c0 - r0 * run : c1 - r0 * run]]
