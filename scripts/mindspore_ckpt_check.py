"""By hand: does real MindSpore load the checkpoints spore writes?

Not part of the tests (MindSpore is an ~800 MB install). Two steps, two
interpreters:

    .venv/bin/python scripts/mindspore_ckpt_check.py write /tmp/spore_ckpt_check
    python3 -m venv /tmp/ms210 && /tmp/ms210/bin/pip install mindspore==2.10.0
    /tmp/ms210/bin/python scripts/mindspore_ckpt_check.py check /tmp/spore_ckpt_check

``write`` saves every dtype, 0-d and chunked tensors, append_dict entries and a CRC
trailer as ``.ckpt`` (and the same tensors but bfloat16 as ``.safetensors``), a second
``.ckpt`` whose large tensors are cut into page-aligned chunks (the layout spore maps
in one piece), plus the expected values as JSON. Every tensor's bytes in spore's
``.ckpt`` files start at a 64-byte boundary, after a padding field MindSpore's schema
does not know (Note [aligned payloads]); ``write`` reports how many it wrote.
``check`` loads the files with ``mindspore.load_checkpoint`` (with ``crc_check=True``)
and compares names, dtypes, shapes and values; it prints one line per entry and
exits 1 on any mismatch.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def write(folder: Path) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import torch

    from spore import Tensor, save_checkpoint
    from spore.train import _ckpt_format

    torch.manual_seed(0)
    values = {
        "f32": torch.randn(3, 4),
        "f16": torch.randn(5).half(),
        "bf16": torch.tensor([1.0, -2.5, 3.140625, 65536.0]).bfloat16(),
        "f64": torch.randn(2, dtype=torch.float64),
        "i8": torch.arange(-3, 3, dtype=torch.int8),
        "i16": torch.arange(4, dtype=torch.int16),
        "i32": torch.arange(6, dtype=torch.int32).reshape(2, 3),
        "i64": torch.arange(3),
        "u8": torch.arange(4, dtype=torch.uint8),
        "u16": torch.arange(4).to(torch.uint16),
        "u32": torch.arange(4).to(torch.uint32),
        "u64": torch.tensor([2**63 + 5], dtype=torch.uint64),
        "flag": torch.tensor([True, False, True]),
        "scalar": torch.tensor(2.5),
        "chunked": torch.arange(1000, dtype=torch.float32).reshape(40, 25),
    }
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {k: Tensor.from_torch(v) for k, v in values.items()}
    _ckpt_format.SLICE_SIZE_BYTES = 1024  # "chunked" becomes 4 same-tag entries
    save_checkpoint(
        tensors,
        str(folder / "spore.ckpt"),
        append_dict={"epoch_num": 3, "lr": 0.5, "note": "spore"},
        crc_check=True,
    )
    # 64 KiB slices: the chunks of "paged" start at 64 KiB boundaries.
    _ckpt_format.SLICE_SIZE_BYTES = 64 * 1024
    paged = {
        "paged": torch.arange(50_000, dtype=torch.float64) / 3,
        "paged_bf16": torch.linspace(-4, 4, 70_000).bfloat16(),
        "after": torch.arange(5, dtype=torch.int32),
    }
    save_checkpoint(
        {k: Tensor.from_torch(v) for k, v in paged.items()},
        str(folder / "spore_chunked.ckpt"),
        crc_check=True,
    )
    for name in ("spore.ckpt", "spore_chunked.ckpt"):
        with open(folder / name, "rb") as file:
            index = _ckpt_format.read_index(file.fileno(), str(folder / name))
        starts = [o for r in index.records if r.dtype for o, n in r.chunks if n]
        aligned = sum(start % _ckpt_format.ALIGNMENT == 0 for start in starts)
        print(f"{name}: {aligned} of {len(starts)} tensor payloads 64-byte aligned")
    # MindSpore 2.10 with numpy 2 can neither save nor load BF16 safetensors (its
    # own files included: "The Numpy bfloat16 data type is not supported now").
    no_bf16 = {k: v for k, v in tensors.items() if k != "bf16"}
    save_checkpoint(no_bf16, str(folder / "spore.safetensors"), format="safetensors")
    expected = {name: _describe(v) for name, v in values.items()}
    expected["epoch_num"] = {"dtype": "Int64", "shape": [], "values": [3]}
    expected["lr"] = {"dtype": "Float32", "shape": [], "values": [0.5]}
    expected["note"] = {"dtype": "str", "value": "spore"}
    expected_paged = {name: _describe(v) for name, v in paged.items()}
    (folder / "expected.json").write_text(json.dumps(expected))
    (folder / "expected_chunked.json").write_text(json.dumps(expected_paged))
    print(f"wrote {folder}/spore.ckpt, spore_chunked.ckpt, spore.safetensors, JSON")


def _describe(value: Any) -> dict[str, Any]:
    import torch

    from spore import Tensor

    flat = value.float() if value.dtype == torch.bfloat16 else value
    return {
        "dtype": str(Tensor.from_torch(value).dtype),
        "shape": list(value.shape),
        "values": flat.reshape(-1).tolist(),
    }


def check(folder: Path) -> int:
    import mindspore as ms  # type: ignore[import-not-found]
    import numpy as np

    failures = 0
    for file_name, fmt, expected_file in (
        ("spore.ckpt", "ckpt", "expected.json"),
        ("spore_chunked.ckpt", "ckpt", "expected_chunked.json"),
        ("spore.safetensors", "safetensors", "expected.json"),
    ):
        expected = json.loads((folder / expected_file).read_text())
        kwargs = {"crc_check": True} if fmt == "ckpt" else {"format": fmt}
        loaded = ms.load_checkpoint(str(folder / file_name), **kwargs)
        for name, want in expected.items():
            if fmt == "safetensors" and name in ("epoch_num", "lr", "note", "bf16"):
                continue  # only in the .ckpt (see write())
            got = loaded.get(name)
            if got is None:
                ok = False
            elif want["dtype"] == "str":
                ok = got == want["value"]
            else:
                data = got.astype(ms.float32) if str(got.dtype) == "BFloat16" else got
                ok = (
                    str(got.dtype) == want["dtype"]
                    and list(got.shape) == want["shape"]
                    and np.array_equal(
                        data.asnumpy().reshape(-1).astype(np.float64),
                        np.array(want["values"], dtype=np.float64),
                    )
                )
            failures += not ok
            print(f"{'ok  ' if ok else 'FAIL'} {file_name} {name}")
    print(f"MindSpore {ms.__version__}: {failures} mismatches")
    return 1 if failures else 0


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("write", "check"):
        sys.exit(__doc__)
    if sys.argv[1] == "write":
        write(Path(sys.argv[2]))
    else:
        sys.exit(check(Path(sys.argv[2])))
