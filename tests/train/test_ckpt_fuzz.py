"""Fuzzing the readers: mutated checkpoint files give values or clean errors, fast.

Every mutated file must either load or raise ValueError/RuntimeError (never
another exception, a crash or a hang), and must never make the reader allocate
more than the file could hold.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spore import Tensor, load_checkpoint, save_checkpoint
from spore.train import _ckpt_format, _ckpt_mmap

FIXTURES = Path(__file__).resolve().parents[2].parent / "shared/fixtures/mindspore-ckpt"
SMALL = [
    "mixed_dtypes.ckpt",
    "append_dict.ckpt",
    "chunked.ckpt",
    "crc_check.ckpt",
    "legacy_r1x_scalar.ckpt",
]
SEEDS = [
    (FIXTURES / name).read_bytes() for name in SMALL if (FIXTURES / name).is_file()
]
# Bytes that mean something in the framing: keys, big and negative varints.
SPECIAL = [
    b"\x0a",
    b"\x12",
    b"\x1a",
    b"\x08",
    b"\xff\xff\xff\xff\x0f",
    b"\xff" * 9 + b"\x01",
    b"\x80" * 11,
    b"\x0a\xff\xff\xff\xff\xff\xff\xff\xff\x7f",
    b"crc_num",
]


@st.composite
def mutated(draw: Any, seeds: list[bytes]) -> bytes:
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 4))):
        if not data:
            break
        where = draw(st.integers(0, len(data) - 1))
        kind = draw(st.sampled_from(["flip", "set", "cut", "insert", "delete", "dup"]))
        if kind == "flip":
            data[where] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set":
            data[where] = draw(st.integers(0, 255))
        elif kind == "cut":
            del data[where:]
        elif kind == "insert":
            data[where:where] = draw(st.sampled_from(SPECIAL) | st.binary(max_size=12))
        elif kind == "delete":
            del data[where : where + draw(st.integers(1, 16))]
        else:
            data[where:where] = data[where : where + draw(st.integers(1, 64))]
    return bytes(data)


def _load_quietly(path: Path, **kwargs: Any) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            loaded = load_checkpoint(str(path), **kwargs)
        except (ValueError, RuntimeError) as err:
            assert path.name in str(err) or "no parameter" in str(err), err
            return "error"
    assert all(
        isinstance(v, str) or v.nbytes <= path.stat().st_size for v in loaded.values()
    )
    return "loaded"


def _spore_seed(tmp_path: Path) -> bytes:
    """A small file spore wrote: aligned payloads (padding fields), a CRC."""
    source = tmp_path / "seed.ckpt"
    save_checkpoint(
        {
            "w": Tensor.from_torch(torch.arange(12, dtype=torch.float32)),
            "flags": Tensor.from_torch(torch.tensor([True, False])),
        },
        str(source),
        crc_check=True,
    )
    return source.read_bytes()


@pytest.mark.skipif(not SEEDS, reason="the MindSpore checkpoint fixtures are not here")
def test_mutated_ckpt_files_load_or_fail_cleanly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every tensor big enough to map: mutated files go through the mapped reads
    # where their bytes are aligned and through the copies where they are not.
    monkeypatch.setattr(_ckpt_mmap, "MAP_MIN_BYTES", 0)
    seeds = [*SEEDS, _spore_seed(tmp_path)]
    path = tmp_path / "fuzz.ckpt"
    outcomes: dict[str, int] = {}
    started = time.monotonic()

    @settings(
        max_examples=2000,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(raw=mutated(seeds), crc=st.booleans())
    def run(raw: bytes, crc: bool) -> None:
        path.write_bytes(raw)
        outcome = _load_quietly(path, crc_check=crc)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1

    run()
    assert set(outcomes) == {"error", "loaded"}
    assert time.monotonic() - started < 20


def test_mutated_safetensors_files_load_or_fail_cleanly(tmp_path: Path) -> None:
    source = tmp_path / "seed.safetensors"
    save_checkpoint(
        {
            "w": Tensor.from_torch(torch.arange(6, dtype=torch.float32).reshape(2, 3)),
            "b": Tensor.from_torch(torch.ones(2, dtype=torch.bfloat16)),
            "c": Tensor.from_torch(torch.ones(1, dtype=torch.complex128)),
        },
        str(source),
        append_dict={"note": "x"},
        crc_check=True,
        format="safetensors",
    )
    seeds = [source.read_bytes()]
    path = tmp_path / "fuzz.safetensors"
    outcomes: dict[str, int] = {}

    @settings(max_examples=400, deadline=None, derandomize=True, database=None)
    @given(raw=mutated(seeds), crc=st.booleans())
    def run(raw: bytes, crc: bool) -> None:
        path.write_bytes(raw)
        outcome = _load_quietly(path, crc_check=crc, format="safetensors")
        outcomes[outcome] = outcomes.get(outcome, 0) + 1

    run()
    assert set(outcomes) == {"error", "loaded"}


def _index_or_error(path: Path) -> Any:
    with open(path, "rb") as file:
        try:
            index = _ckpt_format.read_index(file.fileno(), str(path))
        except ValueError as err:
            return str(err)
    return [(r.name, r.dims, r.type_name, r.chunks) for r in index.records]


@pytest.mark.skipif(not SEEDS, reason="the MindSpore checkpoint fixtures are not here")
def test_fast_header_path_reads_what_the_general_parser_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `_canonical_entry` must only ever agree with the general parser (or leave
    # the entry to it): same records, same errors, on mutated files.
    seeds = [*SEEDS, _spore_seed(tmp_path)]
    path = tmp_path / "fuzz.ckpt"
    fast_entries = 0
    original = _ckpt_format._canonical_entry

    def counted(cursor: Any) -> Any:
        nonlocal fast_entries
        entry = original(cursor)
        fast_entries += entry is not None
        return entry

    monkeypatch.setattr(_ckpt_format, "_canonical_entry", counted)

    @settings(max_examples=1000, deadline=None, derandomize=True, database=None)
    @given(raw=mutated(seeds))
    def run(raw: bytes) -> None:
        path.write_bytes(raw)
        monkeypatch.setattr(_ckpt_format, "_FAST_HEADERS", True)
        fast = _index_or_error(path)
        monkeypatch.setattr(_ckpt_format, "_FAST_HEADERS", False)
        assert _index_or_error(path) == fast

    run()
    assert fast_entries > 1000
