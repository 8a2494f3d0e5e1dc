"""Containers: ``SequentialCell`` (runs its cells in order) and ``CellList``.

Sub-cells are keyed by position (``"0"``, ``"1"``...) or, for a SequentialCell
built from an OrderedDict, by the dict keys; with ``auto_prefix`` their
Parameters are named ``<prefix><key>.<path>``, where ``<prefix>`` is the
container's own path once it is attached (a cell appended later still gets
``blocks.2.weight``).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Iterator
from typing import Any

from spore.nn.cell import Cell

__all__ = ["CellList", "SequentialCell"]


def _check_cell(cell: Any, owner: str, what: str) -> Cell:
    if not isinstance(cell, Cell):
        raise TypeError(
            f"For '{owner}', {what} should be a Cell, but got {type(cell).__name__}."
        )
    return cell


class _CellSequence(Cell):
    """Shared storage of SequentialCell and CellList: an ordered run of cells."""

    def _items(self) -> list[tuple[str, Cell]]:
        return [(k, c) for k, c in self._cells.items() if c is not None]

    def _cell_list(self) -> list[Cell]:
        return [c for _, c in self._items()]

    def _index(self, index: Any, size: int) -> int:
        if not isinstance(index, int) or isinstance(index, bool):
            raise TypeError(
                f"For '{type(self).__name__}', the index should be int or slice, but "
                f"got {type(index).__name__}."
            )
        if not -size <= index < size:
            raise IndexError(
                f"For '{type(self).__name__}', the index should be in range "
                f"[{-size}, {size}), but got {index}."
            )
        return index % size

    def _rebuild(self, items: list[tuple[str, Cell]]) -> None:
        """Make ``items`` the sub-cells, naming their Parameters; undone on error."""
        touched = [p for _, c in items for _, p in c.parameters_and_names()]
        subcells = [s for _, c in items for _, s in c.cells_and_names()]

        def mutate() -> None:
            self._cells.clear()
            for key, cell in items:
                if self._auto_prefix:
                    cell.update_parameters_name(f"{self._param_prefix}{key}.")
                self._cells[key] = cell

        self._register(type(self).__name__, mutate, touched, subcells)

    def _add(self, key: str, cell: Cell) -> None:
        self._rebuild([*self._items(), (key, cell)])

    def __len__(self) -> int:
        return len(self._items())

    def __iter__(self) -> Iterator[Cell]:
        return iter(self._cell_list())

    def __getitem__(self, index: int | slice) -> Any:
        cells = self._cell_list()
        if isinstance(index, slice):
            # spore: the slice holds the same cells without renaming their
            # Parameters (MindSpore 2.10 renames them by their new positions).
            out = type(self).__new__(type(self))
            Cell.__init__(out, auto_prefix=self._auto_prefix)
            for position, cell in enumerate(cells[index]):
                out._cells[str(position)] = cell
            return out
        return cells[self._index(index, len(cells))]

    def __setitem__(self, index: int, cell: Cell) -> None:
        _check_cell(cell, type(self).__name__, "the value")
        items = self._items()
        position = self._index(index, len(items))
        items[position] = (items[position][0], cell)
        self._rebuild(items)

    def __delitem__(self, index: int | slice) -> None:
        items = self._items()
        if isinstance(index, slice):
            del items[index]
        else:
            del items[self._index(index, len(items))]
        self._rebuild(self._renumbered(items))

    def _renumbered(self, items: list[tuple[str, Cell]]) -> list[tuple[str, Cell]]:
        return [(str(i), c) for i, (_, c) in enumerate(items)]

    def append(self, cell: Cell) -> None:
        """Add ``cell`` at the end, keyed by its position.

        Raises:
            TypeError: If ``cell`` is not a Cell.
            ValueError: If it brings a Parameter name clash.
        """
        _check_cell(cell, type(self).__name__, "the 'cell'")
        self._add(str(len(self)), cell)

    def insert(self, index: int, cell: Cell) -> None:
        """Insert ``cell`` before ``index``; later cells move one position on.

        Raises:
            TypeError: If ``cell`` is not a Cell or ``index`` not an int.
        """
        _check_cell(cell, type(self).__name__, "the 'cell'")
        if not isinstance(index, int) or isinstance(index, bool):
            raise TypeError(
                f"For '{type(self).__name__}.insert', the 'index' should be int, but "
                f"got {type(index).__name__}."
            )
        cells = self._cell_list()
        cells.insert(index, cell)
        self._rebuild([(str(i), c) for i, c in enumerate(cells)])

    def extend(self, cells: Iterable[Cell]) -> _CellSequence:
        """Append every cell of ``cells``; return self.

        Raises:
            TypeError: If ``cells`` is not a list/tuple or holds a non-Cell.
        """
        if not isinstance(cells, (list, tuple)):
            raise TypeError(
                f"For '{type(self).__name__}.extend', the 'cells' should be a list or "
                f"tuple of Cells, but got {type(cells).__name__}."
            )
        items = self._items()
        for cell in cells:
            _check_cell(cell, type(self).__name__, "every item of 'cells'")
            items.append((str(len(items)), cell))
        self._rebuild(items)
        return self


class SequentialCell(_CellSequence):
    """Runs its cells in order, each on the output of the previous one.

    Args:
        *args: Cells, or one list of Cells (keys ``"0"``, ``"1"``...), or one
            OrderedDict of Cells (its keys become the names).

    Raises:
        TypeError: If an item is not a Cell, or the arguments mix forms.

    Examples:
        >>> from spore import nn
        >>> seq = nn.SequentialCell([nn.Dense(3, 4), nn.ReLU(), nn.Dense(4, 2)])
        >>> [name for name, _ in seq.parameters_and_names()]
        ['0.weight', '0.bias', '2.weight', '2.bias']
    """

    def __init__(self, *args: Any) -> None:
        super().__init__()
        if len(args) == 1 and isinstance(args[0], (OrderedDict, dict)):
            items = list(args[0].items())
            for key, cell in items:
                _check_cell(cell, "SequentialCell", f"the value of key {key!r}")
        else:
            cells = args[0] if len(args) == 1 and isinstance(args[0], list) else args
            items = []
            for position, cell in enumerate(cells):
                _check_cell(cell, "SequentialCell", f"item {position}")
                items.append((str(position), cell))
        if items:
            self._rebuild(items)

    def construct(self, input_data: Any) -> Any:
        for cell in self._cell_list():
            input_data = cell(input_data)
        return input_data


class CellList(_CellSequence):
    """A list of Cells, registered and named by position; it has no computation.

    Args:
        args: An optional list or tuple of Cells.
        auto_prefix: Whether the cells' Parameters get the position as prefix.
            Default: ``True``.

    Raises:
        TypeError: If ``args`` is not a list/tuple of Cells.

    Examples:
        >>> from spore import nn
        >>> blocks = nn.CellList([nn.Dense(2, 2)])
        >>> blocks.append(nn.Dense(2, 3))
        >>> [name for name, _ in blocks.parameters_and_names()]
        ['0.weight', '0.bias', '1.weight', '1.bias']
    """

    def __init__(self, *args: Any, auto_prefix: bool = True) -> None:
        super().__init__(auto_prefix=auto_prefix)
        if len(args) > 1:
            raise TypeError(
                f"For 'CellList', expected at most one list of Cells, but got "
                f"{len(args)} arguments."
            )
        if args and args[0] is not None:
            self.extend(args[0])

    def __iadd__(self, cells: Iterable[Cell]) -> CellList:
        self.extend(cells)
        return self
