"""Block.read gives the main-stream bits of a block's elements whichever way it reads
them (one run, the span then a strided copy or a gather, or run by run)."""

from __future__ import annotations

import numpy as np
import pytest

from spore.common._random_bits import Block, Stream

KEY = (3, 14)

# (full shape, offsets, block shape, the way Block.read takes)
CASES = [
    ((40, 64), (10, 0), (20, 64), "one run"),
    ((64, 96), (0, 40), (64, 20), "span, strided copy"),
    ((8, 5000), (0, 1000), (8, 100), "run by run"),
    ((8, 5000), (0, 1001), (8, 99), "run by run, odd starts and lengths"),
    ((3, 7, 4000), (0, 2, 1999), (3, 4, 2001), "run by run, uneven gaps"),
    ((6, 8, 10), (0, 2, 3), (6, 4, 5), "span, gather (uneven runs)"),
]


def _expected(block: Block, wide: bool) -> np.ndarray:
    flat = block.flat(np.arange(block.size))
    stream = Stream(KEY)
    if wide:
        return stream.words(0, int(flat.max()) + 1)[flat]
    return stream.halves(0, int(flat.max()) + 1)[flat]


@pytest.mark.parametrize("wide", [False, True])
@pytest.mark.parametrize(("full", "offsets", "shape", "way"), CASES)
def test_read_gives_the_bits_of_the_block_elements(full, offsets, shape, way, wide):
    block = Block(full, offsets, shape)
    stream = Stream(KEY)
    got = np.concatenate(
        [block.read(stream, c0, c1, wide) for c0, c1 in block.chunks(1 << 16)]
    )
    assert np.array_equal(got, _expected(block, wide)), way


def test_read_of_part_of_the_runs_gives_those_elements():
    block = Block((6, 8, 10), (0, 2, 3), (6, 4, 5))  # runs of 5
    got = block.read(Stream(KEY), 7, 38, False)  # starts and ends inside runs
    assert np.array_equal(got, _expected(block, False)[7:38])


def test_stream_skips_forward_and_back_to_the_same_words():
    stream, whole = Stream(KEY), Stream(KEY).words(0, 5000)
    parts = [stream.words(100, 10), stream.words(4000, 10), stream.words(50, 10)]
    expected = [whole[100:110], whole[4000:4010], whole[50:60]]
    assert all(np.array_equal(a, b) for a, b in zip(parts, expected, strict=True))


def test_read_returns_arrays_the_caller_may_overwrite():
    block = Block((64, 96), (0, 40), (64, 20))
    stream = Stream(KEY)
    first = block.read(stream, 0, block.size, False)
    first[:] = 0
    again = block.read(stream, 0, block.size, False)
    assert first.flags.writeable and np.array_equal(again, _expected(block, False))


def test_run_by_run_reads_again_after_the_stream_moved_on():
    block = Block((8, 5000), (0, 1001), (8, 99))
    stream = Stream(KEY)
    stream.words(20000, 4)  # the generator now stands past every run
    for _ in range(2):
        got = block.read(stream, 0, block.size, False)
        assert np.array_equal(got, _expected(block, False))
