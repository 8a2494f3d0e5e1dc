"""``format="safetensors"`` checkpoints, over the ``safetensors`` library.

Files are plain safetensors that MindSpore (2.4+) and Hugging Face tools read. What
safetensors alone cannot carry goes into the string metadata, so a ``.ckpt`` and a
``.safetensors`` convert into each other without losing anything:

- ``"format": "ms"``: what MindSpore writes;
- ``"spore.dtypes"``: JSON ``{name: spore dtype name}`` for every tensor, so the
  spore dtype never depends on a reader's dtype table. Complex128, which
  safetensors has no code for, is stored as its float64 ``view_as_real``;
- ``"spore.order"``: JSON list of every name in the original order (safetensors
  sorts its header);
- ``"spore.strings"``: JSON ``{name: value}`` for append_dict strings;
- ``"crc_num"``: with ``crc_check``, MindSpore's CRC-32 over each tensor's name
  and bytes in sorted-name order.

Loading maps the file (``safe_open``): tensors share the file's pages, copy on
write, so a load costs no copy and no memory beyond the pages touched. The price:
a tool that rewrites the file in place (``cp new old``) changes or truncates what
those tensors read; spore's own saves rename a new file over the old one, which
leaves the mapped pages intact.
"""

from __future__ import annotations

import json
import zlib
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from spore.common import dtype as mstype

_DTYPES_KEY = "spore.dtypes"
_ORDER_KEY = "spore.order"
_STRINGS_KEY = "spore.strings"
_CRC_KEY = "crc_num"


def _stored_tensor(data: torch.Tensor) -> torch.Tensor:
    data = data.detach().cpu().contiguous()
    if data.dtype == torch.complex128:
        return torch.view_as_real(data)
    return data


def _crc(names: list[str], tensors: dict[str, torch.Tensor]) -> int:
    crc = 0
    for name in sorted(names):
        crc = zlib.crc32(name.encode("utf-8"), crc)
        raw = tensors[name].reshape(-1).view(torch.uint8).numpy().data
        crc = zlib.crc32(raw, crc)
    return crc


def write_safetensors(path: str, items: list[tuple[str, Any]], crc_check: bool) -> None:
    """Write ``items`` (name, torch.Tensor or str) to ``path`` as safetensors."""
    tensors: dict[str, torch.Tensor] = {}
    dtypes: dict[str, str] = {}
    strings: dict[str, str] = {}
    for name, value in items:
        if isinstance(value, str):
            strings[name] = value
            continue
        dtypes[name] = str(mstype.from_torch(value.dtype))
        tensors[name] = _stored_tensor(value)
    metadata = {
        "format": "ms",
        _DTYPES_KEY: json.dumps(dtypes),
        _ORDER_KEY: json.dumps([name for name, _ in items]),
    }
    if strings:
        metadata[_STRINGS_KEY] = json.dumps(strings)
    if crc_check:
        metadata[_CRC_KEY] = str(_crc(list(tensors), tensors))
    save_file(tensors, path, metadata=metadata)


def _error(path: str, what: str) -> ValueError:
    return ValueError(
        f"The checkpoint file '{path}' is corrupted or not a safetensors file: {what}."
    )


def _json_metadata(path: str, metadata: dict[str, str], key: str, kind: type) -> Any:
    if key not in metadata:
        return kind()
    try:
        value = json.loads(metadata[key])
    except ValueError as err:
        raise _error(path, f"its metadata {key!r} is not valid JSON") from err
    if not isinstance(value, kind):
        raise _error(path, f"its metadata {key!r} is not a JSON {kind.__name__}")
    return value


def _restore(path: str, name: str, data: torch.Tensor, dtype_name: Any) -> torch.Tensor:
    """The spore-typed tensor from the stored one, checked against the metadata."""
    if dtype_name is None:
        mstype.from_torch(data.dtype)  # TypeError for float8 and such: handled above
        return data
    try:
        want = mstype.from_name(dtype_name) if isinstance(dtype_name, str) else None
    except TypeError:
        want = None
    if want is None:
        raise _error(path, f"tensor '{name}' has the unknown dtype name {dtype_name!r}")
    if want is mstype.complex128 and data.dtype == torch.float64:
        if data.ndim == 0 or data.shape[-1] != 2:
            raise _error(path, f"complex tensor '{name}' is not stored as (..., 2)")
        return torch.view_as_complex(data)
    if mstype.to_torch(want) != data.dtype:
        raise _error(
            path,
            f"tensor '{name}' is stored as {data.dtype} but its metadata says "
            f"{dtype_name}",
        )
    return data


def read_safetensors(
    path: str, selected: Any, crc_check: bool
) -> tuple[dict[str, torch.Tensor | str], list[str]]:
    """Read ``path``; return ``(values in original order, warnings)``.

    ``selected(name) -> bool`` picks the entries to return; every tensor is a
    copy-on-write view of the mapped file.

    Raises:
        ValueError: If the file is not a readable safetensors checkpoint or its CRC
            does not match (with ``crc_check``).
    """
    notes: list[str] = []
    try:
        with safe_open(path, framework="pt") as file:
            metadata = file.metadata() or {}
            names = list(file.keys())
            dtypes = _json_metadata(path, metadata, _DTYPES_KEY, dict)
            order = _json_metadata(path, metadata, _ORDER_KEY, list)
            strings = _json_metadata(path, metadata, _STRINGS_KEY, dict)
            if crc_check:
                _check_crc(path, file, names, metadata, notes)
            tensors = {}
            for name in names:
                if selected(name):
                    data = file.get_tensor(name)
                    tensors[name] = _restore(path, name, data, dtypes.get(name))
    except SafetensorError as err:
        raise _error(path, str(err)) from err
    except TypeError as err:  # a safetensors dtype spore has no type for
        raise _error(path, str(err)) from err
    values: dict[str, torch.Tensor | str] = {}
    known = set(names) | set(strings)
    for name in [n for n in order if isinstance(n, str) and n in known] + names:
        if name in values or not selected(name):
            continue
        if name in tensors:
            values[name] = tensors[name]
        elif isinstance(strings.get(name), str):
            values[name] = strings[name]
    for name, value in strings.items():  # strings missing from the order list
        if name not in values and isinstance(value, str) and selected(name):
            values[name] = value
    return values, notes


def _check_crc(
    path: str, file: Any, names: list[str], metadata: dict[str, str], notes: list[str]
) -> None:
    if _CRC_KEY not in metadata:
        notes.append(f"The checkpoint file '{path}' has no CRC; it was not verified.")
        return
    tensors = {name: _stored_tensor(file.get_tensor(name)) for name in names}
    actual = _crc(names, tensors)
    if str(actual) != metadata[_CRC_KEY]:
        raise ValueError(
            f"The checkpoint file '{path}' failed its CRC check: stored "
            f"{metadata[_CRC_KEY]}, computed {actual}; the file is corrupted."
        )
