"""Reading and re-writing the .ckpt files written by real MindSpore 2.10.

``../shared/fixtures/mindspore-ckpt/manifest.json`` records, for every file, each
parameter's name, shape, MindSpore dtype and the sha256 of its raw bytes. spore
must read every tensor bit for bit. Re-saving what it read with alignment off
(``_ckpt_format.ALIGNMENT = 1``) must give the fixture's bytes back (MindSpore's
layout is deterministic); with spore's default alignment the file differs only by
the padding fields that protobuf parsers skip (Note [aligned payloads]). The
synthesised r1.x file is left out: its 0-d encoding 2.x no longer writes.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import torch
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from spore import (
    Parameter,
    Tensor,
    load_checkpoint,
    load_param_into_net,
    nn,
    save_checkpoint,
)
from spore.train import _ckpt_format

FIXTURES = Path(__file__).resolve().parents[2].parent / "shared/fixtures/mindspore-ckpt"
MANIFEST: dict[str, Any] = (
    json.loads((FIXTURES / "manifest.json").read_text())
    if (FIXTURES / "manifest.json").is_file()
    else {"files": {}}
)
FILES = sorted(MANIFEST["files"])

pytestmark = pytest.mark.skipif(
    not FILES, reason="the MindSpore checkpoint fixtures are not beside this checkout"
)


def _index(path: str) -> _ckpt_format.Index:
    with open(path, "rb") as file:
        return _ckpt_format.read_index(file.fileno(), path)


def _raw(value: Parameter) -> bytes:
    return value.to_torch().detach().reshape(-1).view(torch.uint8).numpy().tobytes()


def _load_fixture(name: str) -> dict[str, Any]:
    return load_checkpoint(str(FIXTURES / name), crc_check=name == "crc_check.ckpt")


@pytest.mark.parametrize("file_name", FILES)
def test_every_fixture_tensor_matches_the_manifest(file_name: str) -> None:
    loaded = _load_fixture(file_name)
    expected = MANIFEST["files"][file_name]["parameters"]
    seen = []
    for entry in expected:
        value = loaded[entry["name"]]
        if entry["dtype"] == "str":
            seen.append((entry["name"], value == entry["value"]))
            continue
        seen.append(
            (
                entry["name"],
                hashlib.sha256(_raw(value)).hexdigest() == entry["sha256"]
                and list(value.shape) == entry["shape"]
                and str(value.dtype) == entry["mindspore_dtype"],
            )
        )
    assert list(loaded) == [e["name"] for e in expected]
    assert all(ok for _, ok in seen), [name for name, ok in seen if not ok]


def test_bfloat16_fixture_values_are_exact() -> None:
    loaded = _load_fixture("mixed_dtypes.ckpt")
    values = loaded["p_bfloat16"].to_torch().float().tolist()
    assert values == [1.0, -2.5, 3.140625, 0.00099945068359375, 65536.0, -0.0]


def test_legacy_r1x_dims_zero_reads_as_a_0d_tensor() -> None:
    loaded = _load_fixture("legacy_r1x_scalar.ckpt")
    scalar = loaded["legacy_scalar"]
    assert (scalar.shape, scalar.item()) == ((), 1.5)


def test_chunked_fixture_is_one_tensor_from_four_entries() -> None:
    index = _index(str(FIXTURES / "chunked.ckpt"))
    big = index.records[0]
    loaded = _load_fixture("chunked.ckpt")
    assert len(big.chunks) == 4
    assert loaded["big"].shape == (40, 25)


def test_append_dict_string_reads_as_str() -> None:
    loaded = _load_fixture("append_dict.ckpt")
    assert loaded["note"] == "spore"


def test_loaded_parameters_are_trainable_and_named() -> None:
    loaded = _load_fixture("mixed_dtypes.ckpt")
    frozen = loaded["frozen"]
    assert isinstance(frozen, Parameter)
    assert (frozen.name, frozen.requires_grad) == ("frozen", True)


RESAVED = [f for f in FILES if f != "legacy_r1x_scalar.ckpt"]


def _resave(file_name: str, out: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    loaded = _load_fixture(file_name)
    if file_name == "chunked.ckpt":  # written with SLICE_SIZE patched to 1 KiB
        monkeypatch.setattr(_ckpt_format, "SLICE_SIZE_BYTES", 1024)
    save_checkpoint(loaded, str(out), crc_check=file_name == "crc_check.ckpt")


@pytest.mark.parametrize("file_name", RESAVED)
def test_unaligned_resave_of_a_fixture_reproduces_its_bytes(
    file_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_ckpt_format, "ALIGNMENT", 1)
    out = tmp_path / file_name
    _resave(file_name, out, monkeypatch)
    assert out.read_bytes() == (FIXTURES / file_name).read_bytes()


@pytest.mark.parametrize("file_name", RESAVED)
def test_aligned_resave_of_a_fixture_differs_only_by_padding_fields(
    file_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / file_name
    _resave(file_name, out, monkeypatch)
    fixture = (FIXTURES / file_name).read_bytes()
    raw = out.read_bytes()
    if file_name == "crc_check.ckpt":  # the CRC covers the padding: drop both
        assert load_checkpoint(str(out), crc_check=True)
        fixture = fixture[: -_ckpt_format.CRC_TRAILER_LEN]
        raw = raw[: -_ckpt_format.CRC_TRAILER_LEN]
    starts = [
        offset
        for record in _index(str(out)).records
        if record.dtype is not None and record.nbytes
        for offset, _ in record.chunks
    ]
    assert _without_unknown_fields(raw) == fixture
    assert starts and all(offset % _ckpt_format.ALIGNMENT == 0 for offset in starts)


class LeNet5(nn.Cell):
    """The LeNet5 of MindSpore's docs (the fixture's network)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5, pad_mode="valid")
        self.conv2 = nn.Conv2d(6, 16, 5, pad_mode="valid")
        self.fc1 = nn.Dense(16 * 5 * 5, 120)
        self.fc2 = nn.Dense(120, 84)
        self.fc3 = nn.Dense(84, 10)


def test_lenet_fixture_loads_into_a_spore_lenet() -> None:
    net = LeNet5()
    params = _load_fixture("lenet5_net.ckpt")
    not_loaded = load_param_into_net(net, params)
    bias = net.fc3.bias
    assert not_loaded == ([], []) and bias is not None
    assert torch.equal(bias.to_torch(), params["fc3.bias"].to_torch())


# ---- an independent parse with protobuf, from a descriptor built here ----------------


def _checkpoint_class() -> Any:
    """The Checkpoint message class of MindSpore's checkpoint.proto (field numbers)."""
    field = descriptor_pb2.FieldDescriptorProto
    proto = descriptor_pb2.FileDescriptorProto(
        name="spore_test_checkpoint.proto", package="sporetest", syntax="proto2"
    )
    tensor = proto.message_type.add(name="TensorProto")
    tensor.field.add(
        name="dims", number=1, type=field.TYPE_INT64, label=field.LABEL_REPEATED
    )
    tensor.field.add(
        name="tensor_type", number=2, type=field.TYPE_STRING, label=field.LABEL_REQUIRED
    )
    tensor.field.add(
        name="tensor_content",
        number=3,
        type=field.TYPE_BYTES,
        label=field.LABEL_REQUIRED,
    )
    value = proto.message_type.add(name="Value")
    value.field.add(
        name="tag", number=1, type=field.TYPE_STRING, label=field.LABEL_REQUIRED
    )
    value.field.add(
        name="tensor",
        number=2,
        type=field.TYPE_MESSAGE,
        label=field.LABEL_OPTIONAL,
        type_name=".sporetest.TensorProto",
    )
    checkpoint = proto.message_type.add(name="Checkpoint")
    checkpoint.field.add(
        name="value",
        number=1,
        type=field.TYPE_MESSAGE,
        label=field.LABEL_REPEATED,
        type_name=".sporetest.Value",
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return message_factory.GetMessageClass(
        pool.FindMessageTypeByName("sporetest.Checkpoint")
    )


def _mixed_values() -> dict[str, Any]:
    return {
        "bf16": Tensor.from_torch(
            torch.tensor([1.0, -2.5, 3.14], dtype=torch.bfloat16)
        ),
        "flags": Tensor.from_torch(torch.tensor([[True, False], [False, True]])),
        "scalar": Tensor.from_torch(torch.tensor(7, dtype=torch.int64)),
        "empty": Tensor.from_torch(torch.empty(0, 3)),
        "big": Tensor.from_torch(torch.arange(700, dtype=torch.float64)),
        "u64": Tensor.from_torch(torch.tensor([2**63 + 5], dtype=torch.uint64)),
        "note": "spore \u2603",
    }


def test_protobuf_parses_spore_output_to_the_same_entries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_ckpt_format, "SLICE_SIZE_BYTES", 1000)  # "big" -> 6 chunks
    path = tmp_path / "mixed.ckpt"
    save_checkpoint(_mixed_values(), str(path), crc_check=True)
    raw = path.read_bytes()
    message = _checkpoint_class()()
    message.ParseFromString(raw[: -_ckpt_format.CRC_TRAILER_LEN])
    tags = [v.tag for v in message.value]
    big = b"".join(v.tensor.tensor_content for v in message.value if v.tag == "big")
    scalar = next(v.tensor for v in message.value if v.tag == "scalar")
    note = next(v.tensor for v in message.value if v.tag == "note")
    assert tags == ["bf16", "flags", "scalar", "empty"] + ["big"] * 6 + ["u64", "note"]
    assert big == torch.arange(700, dtype=torch.float64).numpy().tobytes()
    assert (list(scalar.dims), scalar.tensor_type) == ([], "Int64")
    assert (list(note.dims), note.tensor_content) == (
        [0],
        "spore \u2603".encode("utf-32-le"),
    )


def _without_unknown_fields(raw: bytes) -> bytes:
    """``raw`` as MindSpore writes it: one protobuf-serialized Checkpoint per entry,
    appended, with every field the schema does not know dropped."""
    checkpoint = _checkpoint_class()
    parsed = checkpoint()
    parsed.ParseFromString(raw)
    parsed.DiscardUnknownFields()
    rebuilt = b""
    for value in parsed.value:
        one = checkpoint()
        one.value.add().CopyFrom(value)
        rebuilt += one.SerializeToString()
    return rebuilt


def test_unaligned_spore_bytes_equal_protobufs_own_serialization(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # MindSpore serializes one Checkpoint per entry with protobuf and appends them;
    # doing the same here must give spore's bytes exactly.
    monkeypatch.setattr(_ckpt_format, "SLICE_SIZE_BYTES", 1000)
    monkeypatch.setattr(_ckpt_format, "ALIGNMENT", 1)
    path = tmp_path / "mixed.ckpt"
    save_checkpoint(_mixed_values(), str(path))
    assert _without_unknown_fields(path.read_bytes()) == path.read_bytes()


def test_aligned_spore_bytes_are_the_unaligned_ones_plus_padding_fields(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_ckpt_format, "SLICE_SIZE_BYTES", 1000)
    aligned, plain = tmp_path / "aligned.ckpt", tmp_path / "plain.ckpt"
    save_checkpoint(_mixed_values(), str(aligned))
    monkeypatch.setattr(_ckpt_format, "ALIGNMENT", 1)
    save_checkpoint(_mixed_values(), str(plain))
    assert aligned.read_bytes() != plain.read_bytes()
    assert _without_unknown_fields(aligned.read_bytes()) == plain.read_bytes()
