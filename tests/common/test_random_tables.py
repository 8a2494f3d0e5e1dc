"""The ziggurat tables shipped with the package are the decimal computation's,
bit for bit (see TABLES_FILE in spore/common/_random_math.py)."""

from __future__ import annotations

import numpy as np

from spore.common import _random_math as rm


def test_stored_tables_are_the_computed_ones_bit_for_bit() -> None:
    computed = rm.computed_layers()
    with np.load(rm.TABLES_FILE, allow_pickle=False) as stored:
        assert sorted(stored.files) == sorted(computed)
        for name, values in computed.items():
            assert stored[name].dtype == values.dtype, name
            assert stored[name].tobytes() == values.tobytes(), name


def test_tables_from_the_file_equal_tables_computed_in_process() -> None:
    from_file, computed = rm.ziggurat_tables(), rm.ZigguratTables()
    for name, values in vars(computed).items():
        got = np.asarray(getattr(from_file, name))
        assert got.dtype == np.asarray(values).dtype, name
        assert got.tobytes() == np.asarray(values).tobytes(), name


def test_tables_are_computed_when_the_file_is_missing(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(rm, "TABLES_FILE", tmp_path / "absent.npz")
    assert rm._stored_layers() is None
    rm.write_tables(tmp_path / "written.npz")
    monkeypatch.setattr(rm, "TABLES_FILE", tmp_path / "written.npz")
    assert rm._stored_layers() is not None
