"""Counter-based random fills: any block of a tensor, bit-identical to the whole.

Note [counter-based init]
~~~~~~~~~~~~~~~~~~~~~~~~~
A lazy tensor stores a key ``(seed, counter)`` (see ``seed.next_init_key``). Every
random value is a pure function of (key, element's flat index in the full tensor),
so a rank can materialise only its slice, and the slice equals the same slice of
the full tensor bit for bit, on every machine:

* Bits. Element ``i`` of a float32 fill uses 32-bit value ``i`` of the key's main
  stream (the low half of 64-bit word ``i // 2`` first); a float64 fill uses word
  ``i``. The stream is numpy's PCG64DXSM seeded through ``SeedSequence(key)``. PCG
  jumps ahead in O(log n) (``advance``), so any run of flat indices is generated
  directly, and numpy guarantees the stream's stability across versions. It produces
  words about 1.8x faster than numpy's Philox, which the normal fill needs to keep up
  with torch. A block is read as runs of consecutive flat indices (one run for a row
  slice, one per row for a column slice), in cache-sized chunks.
* Scattered redraws (rejection sampling) need bits for a few scattered indices; they
  come from ``_random_math.hash64``, a SplitMix64 counter generator evaluated at the
  flat index, one independent lane per purpose and round.
* Maths. Values come only from operations IEEE 754 defines exactly (integer and bit
  ops, ``+ - * /``, comparisons, gathers) in a fixed order; the rare paths use the
  polynomial ``exp64``/``log64`` of ``_random_math``, never a library ``log``/``exp``.
  Table gathers run through ``torch.index_select`` (a copy, so exact) because it is
  faster than ``np.take``.

Samplers. Uniform: a signed odd integer from 25 bits, times ``bound / 2**24``
(``2**53`` and 54 bits for float64), so values are symmetric and inside
``(-bound, bound)``. Normal: a 1024-layer ziggurat (Marsaglia and Tsang 2000) with
a 21-bit (52-bit for float64) odd mantissa; the fast path (99.57% of elements) is
one table gather and one multiply per element. The other elements (wedges, tail)
are finished in batches from the hash lanes, each round a fresh attempt, as in the
textbook algorithm, so the distribution is exactly the ziggurat's. Truncated
normal: candidate ``j`` of an element is its ``j``-th normal; for intervals that
would keep few normals, uniform or exponential proposals (Robert 1995) instead.

Speed (see ``bench/bench_init.py``): chunks of ``CHUNK`` elements keep the working
set in L2, per-thread scratch buffers are reused across calls (no page faults), and
every pass writes in place (``out=``). Only the output is written to memory, once.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable

import numpy as np
import torch

from spore.common import _random_math as rm
from spore.common._random_bits import Block as _Block
from spore.common._random_bits import Stream as _Stream

Key = tuple[int, int]

CHUNK = 65536  # elements per step: the working set (~0.9 MB) stays in L2
_MAX_ROUNDS = 256  # rejection rounds; each accepts >= ~30%, so never reached
_TAIL_TRIES = 4  # tail candidates per pass
_FLUSH = 1 << 16  # batch size of rare-path elements
# Hash-lane purposes (see _lane).
_RETRY, _WEDGE, _TAIL_X, _TAIL_Y, _PROPOSE, _ACCEPT, _SPARSE = range(7)
_SQRT_2PI = math.sqrt(2.0 * math.pi)


_local = threading.local()


def _scratch(slot: str, size: int, dtype: type) -> np.ndarray:
    """A per-thread reusable buffer of ``size`` elements (contents undefined).

    Reusing the working set across calls keeps its pages mapped: fresh buffers
    cost page faults on every fill of a mid-sized tensor.
    """
    cache: dict[tuple[str, np.dtype], np.ndarray] = _local.__dict__.setdefault("b", {})
    buf = cache.get((slot, np.dtype(dtype)))
    if buf is None or buf.size < size:
        buf = cache[slot, np.dtype(dtype)] = np.empty(max(size, CHUNK), dtype)
    return buf[:size]


def _lane(
    key: Key, namespace: int, purpose: int, round_: int = 0, sub: int = 0
) -> np.uint64:
    """The seed of one hash lane: (namespace, purpose, round, sub-round) of a key."""
    lane = ((namespace * 16 + purpose) * 1024 + round_) * 1024 + sub
    return rm.lane_seed(key[0], key[1], lane)


def _drive(
    out: np.ndarray,
    full_shape: tuple[int, ...],
    offsets: tuple[int, ...],
    key: Key,
    kernel: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray] | None],
    finish: Callable[[np.ndarray, np.ndarray, _Block], np.ndarray] | None,
    wide: bool,
) -> None:
    """Run ``kernel(bits, dst)`` over the chunks of ``out``, then ``finish`` rejects.

    ``kernel`` writes values into ``dst`` (``out``'s chunk, or a scratch buffer of
    the compute type that is then cast into it) and returns None or the chunk
    positions it could not decide with their words. ``finish(words, positions,
    block)`` returns float64 values for those.
    """
    block = _Block(full_shape, offsets, out.shape)
    if block.size == 0:
        return
    out_flat = out.reshape(-1)
    ftype = np.float64 if wide else np.float32
    direct = out.dtype == ftype
    scratch = None if direct else _scratch("cast", min(CHUNK, block.size), ftype)
    stream = _Stream(key)
    pending: list[tuple[np.ndarray, np.ndarray]] = []
    waiting = 0
    for c0, c1 in block.chunks(CHUNK):
        bits = block.read(stream, c0, c1, wide)
        dst = out_flat[c0:c1] if scratch is None else scratch[: c1 - c0]
        rejected = kernel(bits, dst)
        if scratch is not None:
            np.copyto(out_flat[c0:c1], dst, casting="unsafe")
        if rejected is not None and rejected[0].size:
            pending.append((rejected[0] + c0, rejected[1]))
            waiting += rejected[0].size
            if waiting >= _FLUSH:
                _finish(out_flat, pending, finish, block)
                pending, waiting = [], 0
    if pending:
        _finish(out_flat, pending, finish, block)


def _finish(
    out_flat: np.ndarray,
    pending: list[tuple[np.ndarray, np.ndarray]],
    finish: Callable[..., np.ndarray] | None,
    block: _Block,
) -> None:
    assert finish is not None
    pos = np.concatenate([p for p, _ in pending])
    words = np.concatenate([w for _, w in pending])
    out_flat[pos] = finish(words, pos, block)


# ---- uniform ---------------------------------------------------------------------


def fill_uniform(
    out: np.ndarray,
    full_shape: tuple[int, ...],
    offsets: tuple[int, ...],
    key: Key,
    bound: float,
) -> None:
    """Fill ``out`` with its block of a U(-bound, bound) tensor of ``full_shape``."""
    wide = out.dtype == np.float64 or out.dtype == np.complex128
    itype, shift, bits = (np.int64, 10, 53) if wide else (np.int32, 7, 24)
    ftype = np.float64 if wide else np.float32
    scale = ftype(ftype(bound) * ftype(2.0**-bits))
    ibuf = _scratch("uniform", min(CHUNK, max(out.size, 1)), itype)

    def kernel(u: np.ndarray, dst: np.ndarray) -> None:
        v = ibuf[: u.size]
        np.right_shift(u.view(itype), shift, out=v)  # signed: sign + 24 (53) bits
        np.bitwise_or(v, 1, out=v)  # odd: symmetric around 0, never +-bound
        np.multiply(v, scale, out=dst, dtype=ftype)

    _drive(out, full_shape, offsets, key, kernel, None, wide)


# ---- normal (ziggurat) -----------------------------------------------------------


class _Ziggurat:
    """The fast path of the ziggurat over one chunk of bits, with its buffers.

    Per element: index = low 11 bits (layer and sign), odd mantissa from the rest,
    gathers of the threshold and the signed width from 2048-entry tables, then
    ``reject = odd >= threshold`` and ``value = odd * width`` (one rounding). The
    two gathers write contiguous buffers, so the compare and the multiply run on
    contiguous data (faster than one gather of pairs and two strided passes).
    """

    def __init__(self, std: float, wide: bool, size: int) -> None:
        t = rm.ziggurat_tables()
        self.wide = wide
        if wide:
            self.itype, self.ftype, self.shift = np.int64, np.float64, rm.ZIG_SHIFT64
            k, xs = t.k64, t.x64
        else:
            self.itype, self.ftype, self.shift = np.int32, np.float32, rm.ZIG_SHIFT32
            k, xs = t.k32, t.x32
        self.k_table = torch.from_numpy(k.astype(self.itype))
        self.w_table = torch.from_numpy((xs * std).astype(self.ftype))
        self.mag = _scratch("zig.mag", size, self.itype)
        self.idx = _scratch("zig.idx", size, self.itype)
        self.k = _scratch("zig.k", size, self.itype)
        self.w = _scratch("zig.w", size, self.ftype)
        self.t_k, self.t_w = torch.from_numpy(self.k), torch.from_numpy(self.w)
        self.t_idx = torch.from_numpy(self.idx)  # made once: from_numpy costs us
        self.reject = _scratch("zig.reject", size, np.bool_)

    def __call__(self, u: np.ndarray, dst: np.ndarray) -> np.ndarray:
        n = u.size
        mag, reject = self.mag[:n], self.reject[:n]
        utype = np.uint64 if self.wide else np.uint32
        np.right_shift(u, self.shift, out=mag.view(utype))
        np.bitwise_or(mag, 1, out=mag)  # odd mantissa: the midpoint of its cell
        np.bitwise_and(u, rm.ZIG_INDEX_MASK, out=self.idx[:n].view(utype))
        index = self.t_idx[:n]
        torch.index_select(self.k_table, 0, index, out=self.t_k[:n])
        torch.index_select(self.w_table, 0, index, out=self.t_w[:n])
        np.greater_equal(mag, self.k[:n], out=reject)
        np.multiply(mag, self.w[:n], out=dst, dtype=self.ftype)
        return reject.nonzero()[0]

    def words(self, u: np.ndarray, pos: np.ndarray) -> np.ndarray:
        """The words at chunk positions ``pos`` (``u`` is left as it was given)."""
        return u[pos]


def zig_resolve(
    key: Key,
    namespace: int,
    flat: np.ndarray,
    words: np.ndarray | None = None,
    narrow: bool = False,
) -> np.ndarray:
    """Standard normal values (float64) for ``flat``, by full ziggurat attempts.

    Round 0 finishes the attempts of ``words``, main-stream words (32-bit ones if
    ``narrow``) that failed the fast test, or, when None, makes one from a hash lane.
    Every later round is a fresh attempt from its own lane, so the result follows the
    ziggurat's distribution (the normal) exactly.
    """
    z, ok = _zig_attempt(key, namespace, 0, flat, words, narrow)
    todo = np.flatnonzero(~ok)  # about half of the finished words, few fresh ones
    for j in range(1, _MAX_ROUNDS):
        if not todo.size:
            return z
        zj, okj = _zig_attempt(key, namespace, j, flat[todo], None, False)
        z[todo[okj]] = zj[okj]
        todo = todo[~okj]
    if todo.size:
        raise RuntimeError(
            "Normal sampling did not finish; please report this as a bug."
        )
    return z


def _zig_attempt(
    key: Key,
    namespace: int,
    round_: int,
    flat: np.ndarray,
    words: np.ndarray | None,
    narrow: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """One ziggurat attempt per element: (values, accepted).

    With ``words`` (main-stream words that failed the fast test) only the slow part
    runs; otherwise the word comes from the round's hash lane (52-bit mantissa).
    """
    t = rm.ziggurat_tables()
    w = (
        rm.hash64(_lane(key, namespace, _RETRY, round_), flat)
        if words is None
        else words
    )
    if narrow:
        shift, k, xs = rm.ZIG_SHIFT32, t.k32, t.x32
    else:
        shift, k, xs = rm.ZIG_SHIFT64, t.k64, t.x64
    index = (w & rm.ZIG_INDEX_MASK).astype(np.intp)  # layer, + ZIG_LAYERS if negative
    odd = ((w >> shift) | 1).astype(np.int64)
    x = odd * xs.take(index)
    layer = index & (rm.ZIG_LAYERS - 1)
    if words is not None:
        return x, _zig_slow(key, namespace, round_, flat, layer, x)
    ok = odd < k.take(index)
    slow = np.flatnonzero(~ok)
    if slow.size:
        x_slow = x[slow]
        ok[slow] = _zig_slow(key, namespace, round_, flat[slow], layer[slow], x_slow)
        x[slow] = x_slow
    return x, ok


def _zig_slow(
    key: Key,
    namespace: int,
    round_: int,
    flat: np.ndarray,
    layer: np.ndarray,
    x: np.ndarray,
) -> np.ndarray:
    """Decide attempts outside the fast region; writes tail draws into ``x``."""
    t = rm.ziggurat_tables()
    # Wedge test, for all (layer 0 is overridden below): accept iff y < f(x) / f(x[i+1])
    # = exp(-h), y uniform on [f[i] / f[i+1], 1].
    h = 0.5 * (x * x) - t.half_x2_next.take(layer)
    lo = t.f_ratio.take(layer)
    y = rm.unit(rm.hash64(_lane(key, namespace, _WEDGE, round_), flat))
    y *= 1.0 - lo
    y += lo
    ok = y <= 1.0 - h  # exp(-h) >= 1 - h
    unsure = np.flatnonzero(~ok & (y <= 1.0 - h + 0.5 * h * h))
    if unsure.size:  # between the two bounds: only here is exp needed
        ok[unsure] = y[unsure] < rm.exp64(-h[unsure])
    base = np.flatnonzero(layer == 0)
    if base.size:  # layer 0 beyond r: a draw from the tail, always accepted
        tail = _tail(key, namespace, round_, flat[base])
        x[base] = np.copysign(tail, x[base])
        ok[base] = True
    return ok


def _tail(key: Key, namespace: int, round_: int, flat: np.ndarray) -> np.ndarray:
    """Exact draws from the normal tail beyond ``r`` (Marsaglia 1964).

    Each element tries ``_TAIL_TRIES`` candidates at once (a pair of lanes each; ~90%
    are accepted) and keeps the first accepted one.
    """
    r = rm.ziggurat_tables().r
    out = np.empty(flat.size)
    todo = np.arange(flat.size)
    for first in range(0, _MAX_ROUNDS, _TAIL_TRIES):
        subs = range(first, first + _TAIL_TRIES)
        lanes = [_lane(key, namespace, _TAIL_X, round_, sub) for sub in subs]
        lanes += [_lane(key, namespace, _TAIL_Y, round_, sub) for sub in subs]
        seeds = np.array(lanes, dtype=np.uint64)
        logs = rm.log64(rm.unit_open(rm.hash64(seeds, flat[todo, None])))
        x = logs[:, :_TAIL_TRIES] / -r
        y = -logs[:, _TAIL_TRIES:]
        ok = y + y > x * x
        pick = ok.argmax(axis=1)  # the first accepted candidate
        done = np.flatnonzero(ok[np.arange(todo.size), pick])
        out[todo[done]] = r + x[done, pick[done]]
        todo = np.delete(todo, done)
        if not todo.size:
            return out
    raise RuntimeError(
        "Normal tail sampling did not finish; please report this as a bug."
    )


def fill_normal(
    out: np.ndarray,
    full_shape: tuple[int, ...],
    offsets: tuple[int, ...],
    key: Key,
    mean: float,
    std: float,
) -> None:
    """Fill ``out`` with its block of an N(mean, std**2) tensor of ``full_shape``."""
    wide = out.dtype == np.float64 or out.dtype == np.complex128
    zig = _Ziggurat(std, wide, min(CHUNK, max(out.size, 1)))
    shift = zig.ftype(mean)

    def kernel(u: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pos = zig(u, dst)
        if mean:
            np.add(dst, shift, out=dst)
        return pos, zig.words(u, pos)

    def finish(words: np.ndarray, pos: np.ndarray, block: _Block) -> np.ndarray:
        z = zig_resolve(key, 0, block.flat(pos), words, narrow=not wide)
        return z * std + mean

    _drive(out, full_shape, offsets, key, kernel, finish, wide)


# ---- truncated normal ------------------------------------------------------------


def _within(a: float, b: float, ftype: type) -> tuple[np.floating, np.floating]:
    """The smallest and largest values of ``ftype`` inside ``[a, b]``."""
    lo, hi = ftype(a), ftype(b)
    if lo < a:
        lo = np.nextafter(lo, ftype(np.inf))
    if hi > b:
        hi = np.nextafter(hi, ftype(-np.inf))
    return lo, hi


def truncated_normal_method(alpha: float, beta: float) -> tuple[str, bool]:
    """Pick the sampler for N(0, 1) restricted to ``[alpha, beta]``: (name, mirrored).

    ``"normal"`` (redraw normals) when the interval straddles 0 and is wider than
    sqrt(2 pi): then it keeps at least 49% of the normals. Narrower intervals use
    ``"uniform"`` proposals; one-sided ones (mirrored to the right of 0) use the
    better of ``"uniform"`` and Robert's ``"exponential"`` proposal. Each accepts at
    least ~30% of its proposals. Decided without any library function.
    """
    if alpha <= 0.0 <= beta:
        return ("normal" if beta - alpha >= _SQRT_2PI else "uniform"), False
    mirrored = beta < 0.0
    if mirrored:
        alpha, beta = -beta, -alpha
    lam = (alpha + math.sqrt(alpha * alpha + 4.0)) / 2.0
    # Uniform is better iff beta - alpha < exp((lam - alpha)**2 / 2) / lam.
    limit = float(rm.exp64(np.array([(lam - alpha) ** 2 / 2.0]))[0]) / lam
    return ("uniform" if beta - alpha < limit else "exponential"), mirrored


def _propose(
    key: Key, flat: np.ndarray, method: str, alpha: float, beta: float
) -> np.ndarray:
    """N(0, 1) restricted to ``[alpha, beta]`` by uniform or exponential proposals."""
    z = np.empty(flat.size)
    todo, f = np.arange(flat.size), flat
    lam = (alpha + math.sqrt(alpha * alpha + 4.0)) / 2.0
    peak = 0.0 if alpha <= 0.0 else alpha  # where the density is largest
    for j in range(_MAX_ROUNDS):
        u = rm.hash64(_lane(key, 0, _PROPOSE, j), f)
        v = rm.unit(rm.hash64(_lane(key, 0, _ACCEPT, j), f))
        if method == "uniform":
            x = alpha + (beta - alpha) * rm.unit(u)
            ok = v < rm.exp64(0.5 * (peak * peak - x * x))
        else:
            x = alpha - rm.log64(rm.unit_open(u)) / lam
            ok = (x <= beta) & (v < rm.exp64(-0.5 * (x - lam) ** 2))
        z[todo[ok]] = x[ok]
        todo, f = todo[~ok], f[~ok]
        if not todo.size:
            return z
    raise RuntimeError(
        "Truncated normal sampling did not finish; please report this as a bug."
    )


def _redraw_inside(
    key: Key, flat: np.ndarray, z: np.ndarray, alpha: float, beta: float
) -> np.ndarray:
    """Replace values of ``z`` outside ``[alpha, beta]`` (or NaN) by later normals."""
    todo = np.flatnonzero(~((z >= alpha) & (z <= beta)))
    for j in range(1, _MAX_ROUNDS):
        if not todo.size:
            return z
        zj = zig_resolve(key, j, flat[todo])
        ok = (zj >= alpha) & (zj <= beta)
        z[todo[ok]] = zj[ok]
        todo = todo[~ok]
    raise RuntimeError(
        "Truncated normal sampling did not finish; please report this as a bug."
    )


def fill_truncated_normal(
    out: np.ndarray,
    full_shape: tuple[int, ...],
    offsets: tuple[int, ...],
    key: Key,
    mean: float,
    std: float,
    a: float,
    b: float,
) -> None:
    """Fill ``out`` with its block of N(mean, std**2) restricted to ``[a, b]``.

    Requires ``std > 0`` and ``a <= b``. Candidate ``j`` of an element is its
    ``j``-th normal draw (the main stream, then hash lanes), so redraws stay a pure
    function of the element's flat index.
    """
    wide = out.dtype == np.float64 or out.dtype == np.complex128
    ftype = np.float64 if wide else np.float32
    alpha, beta = (a - mean) / std, (b - mean) / std
    lo, hi = _within(a, b, ftype)
    method, mirrored = truncated_normal_method(alpha, beta)
    if method != "normal":
        if mirrored:
            alpha, beta = -beta, -alpha
        block = _Block(full_shape, offsets, out.shape)
        out_flat = out.reshape(-1)
        for c0, c1 in block.chunks(CHUNK):
            for s0 in range(c0, c1, 32768):
                s1 = min(s0 + 32768, c1)
                z = _propose(key, block.flat(np.arange(s0, s1)), method, alpha, beta)
                values = mean + std * (-z if mirrored else z)
                out_flat[s0:s1] = np.clip(values.astype(ftype), lo, hi)
        return
    size = min(CHUNK, max(out.size, 1))
    zig = _Ziggurat(1.0, wide, size)
    zbuf = _scratch("tn.z", size, ftype)
    inside = _scratch("tn.inside", size, np.bool_)
    bounds = (np.float64(alpha), np.float64(beta))  # compare in float64: exact

    def kernel(u: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = u.size
        z, ok = zbuf[:n], inside[:n]
        rejected = zig(u, z)
        np.greater_equal(z, bounds[0], out=ok)
        ok &= z <= bounds[1]
        ok[rejected] = True  # decided by the rare path
        pos = np.union1d(rejected, np.flatnonzero(~ok))
        np.multiply(z, ftype(std), out=dst)
        np.add(dst, ftype(mean), out=dst)
        np.clip(dst, lo, hi, out=dst)
        return pos, zig.words(u, pos)

    def finish(words: np.ndarray, pos: np.ndarray, block: _Block) -> np.ndarray:
        t = rm.ziggurat_tables()
        flat = block.flat(pos)
        shift, k = (rm.ZIG_SHIFT64, t.k64) if wide else (rm.ZIG_SHIFT32, t.k32)
        index = (words & rm.ZIG_INDEX_MASK).astype(np.intp)
        slow = np.flatnonzero(((words >> shift) | 1).astype(np.int64) >= k.take(index))
        z = np.full(pos.size, np.nan)  # fast-path draws were outside: redraw them
        z[slow] = zig_resolve(key, 0, flat[slow], words[slow], narrow=not wide)
        z = _redraw_inside(key, flat, z, alpha, beta)
        return np.clip(mean + std * z, lo, hi)

    _drive(out, full_shape, offsets, key, kernel, finish, wide)


# ---- sparse ----------------------------------------------------------------------


def sparse_zero_mask(
    key: Key,
    rows: int,
    cols: int,
    zeros: int,
    row_range: tuple[int, int],
    col_range: tuple[int, int],
) -> np.ndarray:
    """Which elements of the block are zeroed: ``zeros`` random rows in every column.

    Row ``r`` of column ``c`` gets the key ``hash(r * cols + c)``; a column's zero rows
    are the ``zeros`` rows with the smallest keys (keys are distinct, the hash being a
    bijection), a uniformly random subset. The block needs the keys of all rows of
    its columns.
    """
    (r0, r1), (c0, c1) = row_range, col_range
    mask = np.zeros((r1 - r0, c1 - c0), np.bool_)
    if zeros <= 0:
        return mask
    if zeros >= rows:
        mask[:] = True
        return mask
    lane = _lane(key, 0, _SPARSE)
    step = max(1, (1 << 22) // rows)  # columns per batch: bounded memory
    for b0 in range(c0, c1, step):
        b1 = min(b0 + step, c1)
        flat = np.arange(rows, dtype=np.int64)[:, None] * cols + np.arange(b0, b1)
        keys = rm.hash64(lane, flat)
        threshold = np.partition(keys, zeros - 1, axis=0)[zeros - 1]
        mask[:, b0 - c0 : b1 - c0] = keys[r0:r1] <= threshold
    return mask
