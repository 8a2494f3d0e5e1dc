"""The .ckpt writer's padding: every tensor's bytes land on the alignment asked for.

See Note [aligned payloads] (spore/train/_ckpt_encode.py).
"""

from __future__ import annotations

import random

import pytest

from spore.train import _ckpt_encode, _ckpt_format


@pytest.mark.parametrize("alignment", [64, 4096, 64 * 1024])
def test_aligned_header_lands_on_the_alignment_wherever_the_entry_starts(
    alignment: int,
) -> None:
    generator = random.Random(alignment)
    # sizes around the varint boundaries of the length prefixes (2**7k)
    sizes = [1, 4, 127, 128, 16_383, 16_384, 2**21 - 70_000, 2**21, 2**28 + 3]
    misses = []
    for _ in range(300):
        position = generator.randrange(0, 1 << 34)
        size = generator.choice([*sizes, generator.randrange(1, 1 << 31)])
        tag = b"p" * generator.choice([1, 5, 126, 127, 128, 300])
        header = _ckpt_encode._aligned_header(
            position, tag, (3, 4), b"Float32", size, alignment
        )
        if (position + len(header)) % alignment:
            misses.append((position, size, len(tag)))
    assert misses == []


def test_padding_fields_have_exactly_the_size_asked_for() -> None:
    sizes = {}
    for size in range(70_000):
        field = _ckpt_encode._padding_field(size)
        sizes[size] = None if field is None else len(field)
    assert all(got in (None, size) for size, got in sizes.items())
    # Below the key and a length byte, and where the length's varint grows a byte:
    # `_aligned_header` then aims one alignment further.
    assert [s for s, got in sizes.items() if got is None] == [0, 1, 2, 131, 16388]


def test_the_padding_key_is_field_2047_of_wire_type_2() -> None:
    assert _ckpt_encode._varint(2047 << 3 | 2) == _ckpt_format._PAD_KEY
