"""Counter-based random fills: blocks equal the whole, bit for bit; and statistics."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest
from scipy import stats

from spore.common import _random as R
from spore.common import _random_math as rm

KEY = (2024, 3)


def _fingerprint(a: np.ndarray) -> str:
    """sha256 prefix of the little-endian bytes (the same on every machine)."""
    le = np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<"))
    return hashlib.sha256(le.tobytes()).hexdigest()[:16]


def _bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a).view(f"u{a.dtype.itemsize}")


FILLS = {
    "uniform": lambda out, full, off, key: R.fill_uniform(out, full, off, key, 0.5),
    "normal": lambda out, full, off, key: R.fill_normal(out, full, off, key, 0.25, 2.0),
    "truncated_normal": lambda out, full, off, key: R.fill_truncated_normal(
        out, full, off, key, 0.0, 1.0, -2.0, 2.0
    ),
    "truncated_uniform_method": lambda out, full, off, key: R.fill_truncated_normal(
        out, full, off, key, 0.0, 1.0, -0.5, 0.7
    ),
    "truncated_exponential_method": lambda out, full, off, key: R.fill_truncated_normal(
        out, full, off, key, 1.0, 0.5, 2.5, 9.0
    ),
}
# (full shape, block offsets, block shape): rows, columns, 2-D blocks, conv kernels.
BLOCKS = [
    ((301, 257), (0, 0), (150, 257)),  # row slice: one run
    ((301, 257), (0, 128), (301, 129)),  # column slice: one run per row
    ((301, 257), (100, 31), (150, 97)),  # 2-D block starting at odd indices
    ((301, 257), (300, 256), (1, 1)),  # the last element
    ((64, 32, 3, 3), (16, 8, 0, 0), (16, 8, 3, 3)),  # 4-D conv block
    ((64, 32, 3, 3), (0, 0, 1, 0), (64, 32, 2, 3)),  # partial spatial dimension
    ((40, 30, 7), (5, 0, 2), (20, 30, 5)),  # 3-D
    ((100001,), (33333,), (33335,)),  # 1-D, odd start
]


def _full_and_block(fill, full, offsets, shape, dtype):
    whole = np.empty(full, dtype)
    fill(whole, full, (0,) * len(full), KEY)
    block = np.empty(shape, dtype)
    fill(block, full, offsets, KEY)
    index = tuple(slice(o, o + n) for o, n in zip(offsets, shape, strict=True))
    return whole[index], block


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("full,offsets,shape", BLOCKS)
@pytest.mark.parametrize("name", sorted(FILLS))
def test_block_is_bit_identical_to_the_same_block_of_the_whole(
    name, full, offsets, shape, dtype
):
    expected, block = _full_and_block(FILLS[name], full, offsets, shape, dtype)
    assert np.array_equal(_bits(block), _bits(expected))


@pytest.mark.parametrize("name", sorted(FILLS))
def test_tiles_reassemble_into_the_whole(name):
    full = (90, 70)
    whole = np.empty(full, np.float32)
    FILLS[name](whole, full, (0, 0), KEY)
    tiles = []
    for r0 in (0, 30, 60):
        row = []
        for c0 in (0, 35):
            tile = np.empty((30, 35), np.float32)
            FILLS[name](tile, full, (r0, c0), KEY)
            row.append(tile)
        tiles.append(row)
    assert np.array_equal(_bits(np.block(tiles)), _bits(whole))


@pytest.mark.parametrize("name", sorted(FILLS))
def test_small_chunks_give_the_same_bits(name, monkeypatch):
    # Many chunks, runs split across chunks, span reads and per-run reads.
    full, offsets, shape = (301, 257), (10, 3), (200, 250)
    expected, _ = _full_and_block(FILLS[name], full, offsets, shape, np.float32)
    monkeypatch.setattr(R, "CHUNK", 96)
    monkeypatch.setattr(R, "_FLUSH", 7)
    _, block = _full_and_block(FILLS[name], full, offsets, shape, np.float32)
    assert np.array_equal(_bits(block), _bits(expected))


def test_sparse_column_reads_use_one_read_per_row():
    # Far-apart runs (a 2-column slice of very wide rows) are read run by run.
    full, offsets, shape = (50, 400000), (0, 123456), (50, 2)
    expected, block = _full_and_block(FILLS["normal"], full, offsets, shape, np.float32)
    assert np.array_equal(_bits(block), _bits(expected))


@pytest.mark.parametrize(
    "name,expected",
    [
        ("normal32", "dfc67da3388babce"),
        ("uniform32", "9a09f9bc3560e6f3"),
        ("tn32", "6d17ea64e779e86f"),
        ("tn-uniform32", "891cb59da6dd064e"),
        ("tn-exp32", "a5bad061a60b66c1"),
        ("normal64", "de49a8a45fb15bf3"),
        ("uniform64", "c7eb90d1342ead05"),
        ("tn64", "e35174c237b1c6bd"),
        ("tn-uniform64", "90691c031abdae08"),
        ("tn-exp64", "9ea1b0ef99764837"),
    ],
)
def test_values_are_pinned_across_machines_and_versions(name, expected):
    # The bits are part of the contract: a checkpoint-free restart must rebuild them.
    dtype = np.float32 if name.endswith("32") else np.float64
    a = np.empty((96, 80), dtype)
    kind = name[:-2]
    if kind == "normal":
        R.fill_normal(a, a.shape, (0, 0), KEY, 0.0, 1.0)
    elif kind == "uniform":
        R.fill_uniform(a, a.shape, (0, 0), KEY, 1.0)
    else:
        a_b = {"tn": (-2.0, 2.0), "tn-uniform": (0.5, 1.0), "tn-exp": (2.0, 9.0)}[kind]
        R.fill_truncated_normal(a, a.shape, (0, 0), KEY, 0.0, 1.0, *a_b)
    assert _fingerprint(a) == expected


def test_math_and_tables_are_pinned():
    t = rm.ziggurat_tables()
    tables = np.concatenate(
        [t.x64, t.f_ratio, t.half_x2_next, t.k64.astype(float), t.k32.astype(float)]
    )
    got = (
        _fingerprint(rm.exp64(np.linspace(-50, 5, 1001))),
        _fingerprint(rm.log64(np.geomspace(1e-30, 1e30, 1001))),
        _fingerprint(tables),
        _fingerprint(rm.hash64(rm.lane_seed(1, 2, 3), np.arange(100))),
    )
    assert got == (
        "456683d56172bfae",
        "1c3213ed4e4521f8",
        "06613f7f0d67ba5d",
        "9951d4b258780daf",
    )


def test_ziggurat_tables_do_not_depend_on_the_decimal_context():
    import decimal

    rm.ziggurat_tables.cache_clear()
    with decimal.localcontext() as ctx:
        ctx.prec = 5
        x = rm.ziggurat_tables().x64.copy()
    rm.ziggurat_tables.cache_clear()
    assert np.array_equal(x, rm.ziggurat_tables().x64)


def test_exp64_is_within_two_ulps_of_numpy():
    x = np.linspace(-700.0, 700.0, 100001)
    assert np.all(np.abs(rm.exp64(x) - np.exp(x)) <= 2 * np.spacing(np.exp(x)))


def test_log64_is_within_four_ulps_of_numpy():
    x = np.concatenate(
        [np.geomspace(1e-300, 1e300, 50001), np.linspace(0.5, 2.0, 50001)]
    )
    ref = np.log(x)
    assert np.all(np.abs(rm.log64(x) - ref) <= 4 * np.spacing(np.abs(ref)) + 1e-300)


def test_hash64_gives_distinct_words_for_distinct_indices():
    words = rm.hash64(rm.lane_seed(7, 8, 9), np.arange(1 << 18))
    assert np.unique(words).size == 1 << 18


def test_stream_words_are_random_access():
    stream = R._Stream(KEY)
    whole = stream.words(0, 100)
    assert np.array_equal(stream.words(37, 20), whole[37:57]) and np.array_equal(
        stream.halves(75, 9), whole.view(np.uint32)[75:84]
    )


def test_same_key_repeats_and_other_keys_differ():
    a, b, c = (np.empty(1000, np.float32) for _ in range(3))
    R.fill_normal(a, a.shape, (0,), (5, 1), 0.0, 1.0)
    R.fill_normal(b, b.shape, (0,), (5, 1), 0.0, 1.0)
    R.fill_normal(c, c.shape, (0,), (5, 2), 0.0, 1.0)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_block_outside_the_full_shape_raises():
    with pytest.raises(ValueError, match=r"lies outside the full shape"):
        R.fill_uniform(np.empty((3, 3), np.float32), (4, 4), (2, 0), KEY, 1.0)


def test_block_runs_merge_fully_covered_trailing_dimensions():
    block = R._Block((4, 5, 6), (1, 0, 0), (2, 5, 6))
    assert block.run == 60 and block.starts.tolist() == [30]


def test_block_runs_of_a_column_slice_are_one_per_row():
    block = R._Block((3, 10), (0, 4), (3, 2))
    assert block.run == 2 and block.starts.tolist() == [4, 14, 24]


# ---- reference: the ziggurat one element at a time -------------------------------


def _reference_normal(key, flat: int) -> float:
    """The float32 normal of one element, written sequentially from the definition."""
    t = rm.ziggurat_tables()

    def attempt(word: int, narrow: bool, round_: int) -> float | None:
        shift, k, xs = (
            (rm.ZIG_SHIFT32, t.k32, t.x32) if narrow else (rm.ZIG_SHIFT64, t.k64, t.x64)
        )
        index, odd = word & rm.ZIG_INDEX_MASK, (word >> shift) | 1
        layer, x = index % rm.ZIG_LAYERS, odd * xs[index]
        if odd < k[index]:
            return x
        flat_a = np.array([flat])
        if layer == 0:
            tail = R._tail(key, 0, round_, flat_a)[0]
            return math.copysign(tail, x)
        h = 0.5 * x * x - t.half_x2_next[layer]
        lo = t.f_ratio[layer]
        y = lo + rm.unit(rm.hash64(R._lane(key, 0, R._WEDGE, round_), flat_a))[0] * (
            1.0 - lo
        )
        return x if y < rm.exp64(np.array([-h]))[0] else None

    word = int(R._Stream(key).halves(flat, 1)[0])
    value = attempt(word, True, 0)
    round_ = 1
    while value is None:
        word = int(rm.hash64(R._lane(key, 0, R._RETRY, round_), np.array([flat]))[0])
        value = attempt(word, False, round_)
        round_ += 1
    return value


def test_normal_fill_matches_the_sequential_definition_including_rare_paths():
    n = 60000
    out = np.empty(n, np.float64)  # compare unscaled float64 values of the float32 path
    values = np.empty(n, np.float32)
    R.fill_normal(values, (n,), (0,), KEY, 0.0, 1.0)
    u = R._Stream(KEY).halves(0, n)
    t = rm.ziggurat_tables()
    slow = np.flatnonzero(((u >> rm.ZIG_SHIFT32) | 1) >= t.k32[u & rm.ZIG_INDEX_MASK])
    out = np.array([_reference_normal(KEY, int(i)) for i in slow[:60]])
    assert slow.size > 150 and np.array_equal(values[slow[:60]], out.astype(np.float32))


# ---- distributions ---------------------------------------------------------------


def _sample(fill, dtype=np.float32, n=200000, **kwargs):
    out = np.empty(n, dtype)
    fill(out, (n,), (0,), (11, 13), **kwargs)
    return out.astype(np.float64)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_normal_passes_ks_and_moments(dtype):
    x = _sample(R.fill_normal, dtype, mean=1.5, std=3.0)
    assert stats.kstest(x, stats.norm(1.5, 3.0).cdf).pvalue > 1e-4
    assert abs(x.mean() - 1.5) < 0.03 and abs(x.std() - 3.0) < 0.03


def test_normal_tail_beyond_four_sigma_has_the_right_mass():
    x = _sample(R.fill_normal, n=2_000_000, mean=0.0, std=1.0)
    expected = 2 * stats.norm.sf(4.0) * x.size  # ~127
    assert abs((np.abs(x) > 4.0).sum() - expected) < 5 * math.sqrt(expected)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_uniform_passes_ks_and_stays_inside_the_bound(dtype):
    x = _sample(R.fill_uniform, dtype, bound=0.25)
    assert stats.kstest(x, stats.uniform(-0.25, 0.5).cdf).pvalue > 1e-4
    assert np.abs(x).max() < 0.25 and np.abs(x).max() > 0.2499


@pytest.mark.parametrize(
    "a,b",
    [(-2.0, 2.0), (-0.5, 0.7), (1.0, 1.3), (2.5, 9.0), (-9.0, -3.0), (-1.0, np.inf)],
)
def test_truncated_normal_passes_ks_and_stays_inside(a, b):
    x = _sample(R.fill_truncated_normal, mean=0.0, std=1.0, a=a, b=b)
    dist = stats.truncnorm(a, b)
    assert stats.kstest(x, dist.cdf).pvalue > 1e-4 and x.min() >= a and x.max() <= b


def test_truncated_normal_bounds_hold_in_float32_for_inexact_bounds():
    x = np.empty(100000, np.float32)
    R.fill_truncated_normal(x, x.shape, (0,), KEY, 0.0, 0.1, -0.1, 0.1)
    assert x.min() >= -0.1 and x.max() <= 0.1


@pytest.mark.parametrize("alpha", [-3.0, -1.0, 0.0, 0.3, 1.0, 2.0, 4.0, 8.0])
@pytest.mark.parametrize("width", [0.01, 0.3, 1.0, 2.5, 4.0, np.inf])
def test_truncated_normal_method_accepts_at_least_thirty_percent(alpha, width):
    beta = alpha + width
    method, mirrored = R.truncated_normal_method(alpha, beta)
    if mirrored:
        alpha, beta = -beta, -alpha
    mass = stats.norm.cdf(beta) - stats.norm.cdf(alpha)
    if method == "normal":
        rate = mass
    elif method == "uniform":
        peak = 0.0 if alpha <= 0 <= beta else min(abs(alpha), abs(beta))
        rate = (
            math.sqrt(2 * math.pi)
            * mass
            / ((beta - alpha) * math.exp(-peak * peak / 2))
        )
    else:
        lam = (alpha + math.sqrt(alpha * alpha + 4)) / 2
        rate = (
            math.sqrt(2 * math.pi) * mass * lam * math.exp(lam * alpha - lam * lam / 2)
        )
    assert rate > 0.3


def test_sparse_mask_zeroes_exactly_the_count_per_column_and_slices_agree():
    whole = R.sparse_zero_mask(KEY, 30, 20, 7, (0, 30), (0, 20))
    block = R.sparse_zero_mask(KEY, 30, 20, 7, (5, 25), (3, 11))
    assert whole.sum(axis=0).tolist() == [7] * 20 and np.array_equal(
        block, whole[5:25, 3:11]
    )
