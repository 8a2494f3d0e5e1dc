"""Bit-reproducible maths for the random initializers (see Note [counter-based init]).

Everything here is built from operations that IEEE 754 defines exactly (``+ - * /``,
``sqrt``, comparisons, ``rint``, ``ldexp``, integer and bit operations), applied in a
fixed order. Library ``log``/``exp`` differ between numpy builds, libm versions and
SIMD code paths in their last bits; these polynomial versions give the same bits on
every machine. They are float64-accurate to about one ulp and are used for the rare
paths of the samplers (ziggurat wedges and tails, truncated-normal proposals), whose
inputs are small arrays.

The ziggurat tables are computed with :mod:`decimal` (software arithmetic, correctly
rounded ``exp``/``ln``/``sqrt``), so they too are identical everywhere; the package
ships them precomputed (``TABLES_FILE``).
"""

from __future__ import annotations

import decimal
import functools
import math
from fractions import Fraction
from pathlib import Path

import numpy as np

# fdlibm's split of ln 2: the high part has trailing zero bits, so k * _LN2_HI is exact.
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_INV_LN2 = 1.44269504088896338700e00
_SQRT_HALF_BITS = 0x3FE6A09E667F3BCD  # bits of sqrt(0.5): centres the log reduction
# Taylor coefficients, each a correctly rounded exact fraction.
_EXP_COEFFS = tuple(float(Fraction(1, math.factorial(n))) for n in range(14))
_ATANH_COEFFS = tuple(float(Fraction(1, 2 * k + 1)) for k in range(12))

# SplitMix64 constants (Steele, Lea and Flood 2014; Stafford's mix variant 13).
_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31 = np.uint64(30), np.uint64(27), np.uint64(31)
_S11 = np.uint64(11)
_TWO_M53 = 2.0**-53


def exp64(x: np.ndarray) -> np.ndarray:
    """``exp(x)`` for a float64 array, identical on every machine.

    Reduction ``x = k ln2 + r`` with ``|r| <= ln2/2``, a degree-13 Taylor polynomial
    (truncation error below 5e-18), then an exact ``ldexp``.
    """
    x = np.clip(np.asarray(x, dtype=np.float64), -1100.0, 710.0)
    k = np.rint(x * _INV_LN2)
    r = (x - k * _LN2_HI) - k * _LN2_LO
    p = np.full_like(r, _EXP_COEFFS[-1])
    for c in _EXP_COEFFS[-2::-1]:
        p *= r
        p += c
    return np.ldexp(p, k.astype(np.int64))


def log64(x: np.ndarray) -> np.ndarray:
    """``log(x)`` for a float64 array of positive normal numbers, identical everywhere.

    ``x = 2**k * f`` with ``f`` in ``[sqrt(1/2), sqrt(2))`` (integer ops on the bits),
    then ``log f = 2 atanh(s)`` with ``s = (f - 1) / (f + 1)``, ``|s| <= 0.172``, summed
    to ``s**23`` (truncation error below 1e-19).
    """
    bits = np.ascontiguousarray(x, dtype=np.float64).view(np.int64)
    shifted = bits - _SQRT_HALF_BITS
    k = (shifted >> 52).astype(np.float64)
    f = ((shifted & 0x000FFFFFFFFFFFFF) + _SQRT_HALF_BITS).view(np.float64)
    t = f - 1.0
    s = t / (t + 2.0)
    z = s * s
    p = np.full_like(z, _ATANH_COEFFS[-1])
    for c in _ATANH_COEFFS[-2::-1]:
        p *= z
        p += c
    return k * _LN2_HI + (2.0 * s * p + k * _LN2_LO)


def _mix(z: np.ndarray) -> None:
    """SplitMix64's output function, in place on a uint64 array (a bijection)."""
    z ^= z >> _S30
    z *= _MIX1
    z ^= z >> _S27
    z *= _MIX2
    z ^= z >> _S31


# numpy's SeedSequence constants (numpy/random/bit_generator.pyx).
_SS_INIT_A, _SS_MULT_A = 0x43B0D7E5, 0x931E8875
_SS_INIT_B, _SS_MULT_B = 0x8B51F9DD, 0x58F38DED
_SS_MIX_L, _SS_MIX_R = 0xCA01F9DD, 0x4973F715
_MASK32 = 0xFFFFFFFF


def _uint32_words(value: int) -> list[int]:
    """A non-negative int as 32-bit words, lowest first (0 is one word)."""
    if value < 0:
        raise ValueError(f"expected a non-negative integer, but got {value}.")
    words = [value & _MASK32]
    value >>= 32
    while value:
        words.append(value & _MASK32)
        value >>= 32
    return words


def seed_sequence_word(entropy: list[int]) -> int:
    """``SeedSequence(entropy).generate_state(1, np.uint64)[0]`` in Python ints.

    The same 64 bits as numpy (pinned by a test against numpy), without its
    per-call cost (an ``np.errstate`` context and small arrays, ~30 us), which
    showed at a few lanes per tensor.
    """
    words = [w for value in entropy for w in _uint32_words(value)]
    hash_a = _SS_INIT_A

    def hashmix(value: int) -> int:
        nonlocal hash_a
        value ^= hash_a
        hash_a = (hash_a * _SS_MULT_A) & _MASK32
        value = (value * hash_a) & _MASK32
        return value ^ (value >> 16)

    def mix(x: int, y: int) -> int:
        result = (_SS_MIX_L * x - _SS_MIX_R * y) & _MASK32
        return result ^ (result >> 16)

    pool = [hashmix(words[i] if i < len(words) else 0) for i in range(4)]
    for src in range(4):
        for dst in range(4):
            if src != dst:
                pool[dst] = mix(pool[dst], hashmix(pool[src]))
    for src in range(4, len(words)):
        for dst in range(4):
            pool[dst] = mix(pool[dst], hashmix(words[src]))
    hash_b, out = _SS_INIT_B, []
    for i in range(2):  # two 32-bit words, the low one first
        value = pool[i] ^ hash_b
        hash_b = (hash_b * _SS_MULT_B) & _MASK32
        value = (value * hash_b) & _MASK32
        out.append(value ^ (value >> 16))
    return out[0] | (out[1] << 32)


@functools.lru_cache(maxsize=4096)
def lane_seed(seed: int, counter: int, lane: int) -> np.uint64:
    """The 64-bit seed of one hash lane of a tensor key: numpy's SeedSequence of
    ``[seed, counter, 1, lane]`` (computed by `seed_sequence_word`)."""
    return np.uint64(seed_sequence_word([seed, counter, 1, lane]))


def hash64(seed: np.uint64 | np.ndarray, flat: np.ndarray) -> np.ndarray:
    """64 random bits per flat index: a counter-based generator for scattered indices.

    Output number ``flat`` of a SplitMix64 generator seeded with ``seed``:
    ``mix(seed + flat * gamma)``. For a fixed lane it is a bijection of ``flat``, so
    no two elements of a tensor share a word. ``seed`` broadcasts against ``flat``
    (a seed per element, or ``flat[:, None]`` against a row of lane seeds).
    """
    z = np.asarray(flat, dtype=np.int64).astype(np.uint64)
    z *= _GAMMA
    z = z + seed  # broadcasts: one seed, a seed per element, or one per column
    _mix(z)
    return z


def unit_open(words: np.ndarray) -> np.ndarray:
    """Uniform float64 in (0, 1] from the top 53 bits of uint64 words."""
    return ((words >> _S11).astype(np.float64) + 1.0) * _TWO_M53


def unit(words: np.ndarray) -> np.ndarray:
    """Uniform float64 in [0, 1) from the top 53 bits of uint64 words."""
    return (words >> _S11).astype(np.float64) * _TWO_M53


# ---- ziggurat tables -------------------------------------------------------------

ZIG_LAYERS = 1024
ZIG_BITS = 10  # log2(ZIG_LAYERS)
# Right edge of the base layer that makes 1024 layers of equal area close at the top
# (bisection at 45 digits; for 256 layers it gives Marsaglia and Tsang's 3.65415...).
_ZIG_R = "4.038849846109504522714423484"
_PI = "3.14159265358979323846264338327950288419716939937510582097494"


# Layout of a sampler word: bits 0-9 the layer, bit 10 the sign (together the table
# index), the bits above the mantissa. A 32-bit word keeps 21 mantissa bits and uses
# the odd number 2 * m + 1 < 2**22; a 64-bit word keeps 52 (odd < 2**53).
ZIG_INDEX_MASK = 2 * ZIG_LAYERS - 1
ZIG_SHIFT32, ZIG_ONE32 = ZIG_BITS, 2 ** (32 - ZIG_BITS)
ZIG_SHIFT64, ZIG_ONE64 = 11, 2**53


class ZigguratTables:
    """Layer geometry of a 1024-layer ziggurat for ``f(x) = exp(-x*x/2)``.

    Layer ``i`` is a rectangle of width ``x[i]`` (``x[0]`` is the base strip's
    equivalent width, base plus tail) over the band ``[f(x[i]), f(x[i+1])]``; all
    have the same area. A draw ``|x| = u * x[i]`` is under the curve for sure when
    ``u < x[i+1] / x[i]``. Tables indexed by word index (layer + 1024 * sign):
    ``x32``/``x64`` (signed width per unit of the odd mantissa) and ``k32``/``k64``
    (the fast-accept threshold on the odd mantissa). Indexed by layer: ``f_ratio``
    (``f(x[i]) / f(x[i+1])``) and ``half_x2_next`` (``x[i+1]**2 / 2``), for the wedges.
    """

    def __init__(self, layers: dict[str, np.ndarray] | None = None) -> None:
        """From per-layer arrays (``computed_layers()`` or the stored copy)."""
        if layers is None:
            layers = computed_layers()
        widths = layers["x"]
        self.r = float(widths[1])  # the base layer's right edge
        self.x = widths
        # Dividing by a power of two is exact: these match the decimal values.
        self.x32 = np.concatenate([widths, -widths]) / ZIG_ONE32
        self.x64 = np.concatenate([widths, -widths]) / ZIG_ONE64
        self.k32 = np.concatenate([layers["k32"]] * 2).astype(np.int32)
        self.k64 = np.concatenate([layers["k64"]] * 2).astype(np.int64)
        self.f_ratio = layers["f_ratio"]
        self.half_x2_next = layers["half_x2_next"]


def computed_layers() -> dict[str, np.ndarray]:
    """The per-layer arrays of ``ZigguratTables``, computed in 40-digit decimal
    arithmetic (about 45 ms)."""
    # A private context: the thread's decimal context may have been changed.
    with decimal.localcontext(_decimal_context(40)) as ctx:
        d = decimal.Decimal
        r = d(_ZIG_R)

        @functools.cache  # f(x[i]) is needed twice per layer
        def f(x: decimal.Decimal) -> decimal.Decimal:
            return ctx.exp(ctx.minus(x * x / 2))

        area = r * f(r) + ctx.sqrt(d(_PI) / 2) * _erfc(r / ctx.sqrt(d(2)))
        xs = [area / f(r), r]
        for _ in range(2, ZIG_LAYERS):
            xs.append(ctx.sqrt(-2 * ctx.ln(area / xs[-1] + f(xs[-1]))))
        xs.append(d(0))
        top = xs[ZIG_LAYERS - 1] * (1 - f(xs[ZIG_LAYERS - 1]))
        assert abs(top / area - 1) < d("1e-12"), "ziggurat tables do not close"
        # ceil keeps "odd < k" equivalent to "odd / one < ratio" for odd integers.
        ratios = [xs[i + 1] / xs[i] for i in range(ZIG_LAYERS)]

        def thresholds(one: int) -> list[int]:
            return [
                int((q * one).to_integral_value(decimal.ROUND_CEILING)) for q in ratios
            ]

        fs = [f(v) for v in xs]
        return {
            "x": np.array([float(v) for v in xs[:ZIG_LAYERS]]),
            "k32": np.array(thresholds(ZIG_ONE32), dtype=np.int64),
            "k64": np.array(thresholds(ZIG_ONE64), dtype=np.int64),
            "f_ratio": np.array([float(fs[i] / fs[i + 1]) for i in range(ZIG_LAYERS)]),
            "half_x2_next": np.array([float(v * v / 2) for v in xs[1:]]),
        }


# The per-layer arrays as computed_layers() gives them, stored with the package so
# that a process's first normal fill does not spend 45 ms on decimal arithmetic
# (tests/common/test_random_tables.py checks them bit for bit; regenerate with
# `python -c "from spore.common._random_math import write_tables; write_tables()"`).
TABLES_FILE = Path(__file__).with_name("_ziggurat_tables.npz")


def write_tables(path: Path = TABLES_FILE) -> None:
    """Store ``computed_layers()`` at ``path`` (numpy's .npz, no pickled objects)."""
    np.savez(path, **computed_layers())


def _stored_layers() -> dict[str, np.ndarray] | None:
    try:
        with np.load(TABLES_FILE, allow_pickle=False) as stored:
            return {name: stored[name] for name in stored.files}
    except OSError:  # not shipped (a bare source tree): compute instead
        return None


def _decimal_context(prec: int) -> decimal.Context:
    """A fully specified context, independent of the process-wide defaults."""
    return decimal.Context(
        prec=prec,
        rounding=decimal.ROUND_HALF_EVEN,
        Emin=-999999,
        Emax=999999,
        capitals=1,
        clamp=0,
        flags=[],
        traps=[decimal.InvalidOperation, decimal.DivisionByZero],
    )


def _erfc(x: decimal.Decimal) -> decimal.Decimal:
    """erfc by the Maclaurin series of erf, at 70 digits (the series cancels ~10)."""
    ctx = _decimal_context(70)
    term, total, n = x, x, 0
    x2 = x * x
    eps = decimal.Decimal("1e-60")
    while abs(term) > eps:
        term = ctx.divide(ctx.multiply(term, -x2), n + 1)
        n += 1
        total = ctx.add(total, ctx.divide(term, 2 * n + 1))
    return 1 - 2 * total / ctx.sqrt(decimal.Decimal(_PI))


@functools.lru_cache(maxsize=1)
def ziggurat_tables() -> ZigguratTables:
    """The shared ziggurat tables (read from ``TABLES_FILE`` on first use)."""
    return ZigguratTables(_stored_layers())
