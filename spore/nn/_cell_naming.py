"""Name rules a Cell applies to the Parameters it owns, kept apart from Cell itself.

See Note [unique parameter names]: spore refuses two different Parameters with one
name when the second is registered, instead of MindSpore 2.10's silent renaming at
the first call (or r1.3's failure at compile time).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from spore.common import _naming
from spore.common.parameter import Parameter

if TYPE_CHECKING:
    from spore.nn.cell import Cell

# MindSpore's prefix rule for update_parameters_name (ASCII; empty allowed).
_PREFIX_PATTERN = re.compile(r"^\w*[0-9a-zA-Z_.\-]*$", re.ASCII)


def is_default_name(param: Parameter) -> bool:
    """True while ``param`` still carries the name a Parameter gets when unnamed."""
    return param.name == _naming.PARAMETER_NAME_DEFAULT


def check_prefix(prefix: Any) -> str:
    """Validate an ``update_parameters_name`` prefix.

    Raises:
        TypeError: If ``prefix`` is not a str.
        ValueError: If it does not match ``^\\w*[0-9a-zA-Z_.\\-]*$`` (ASCII).
    """
    if not isinstance(prefix, str):
        raise TypeError(
            "For 'update_parameters_name', the 'prefix' should be str, but got "
            f"{type(prefix).__name__}."
        )
    if _PREFIX_PATTERN.match(prefix) is None:
        raise ValueError(
            "For 'update_parameters_name', the 'prefix' should contain only ASCII "
            f"letters, digits, '_', '.' and '-', but got {prefix!r}."
        )
    return prefix


def is_parameter_sequence(value: Any) -> bool:
    """A non-empty plain list or tuple whose items are all Parameters."""
    return (
        isinstance(value, (list, tuple))
        and len(value) > 0
        and all(isinstance(item, Parameter) for item in value)
    )


# Note [unique parameter names]
# Two different Parameters reachable from one Cell must not share a name: the name
# is the checkpoint key and the optimizer's state key. MindSpore 2.10 renames every
# Parameter by path on the first call when it finds a clash (even unrelated user
# names), r1.3 failed at graph compile; spore raises ValueError at the registration
# that creates the clash, naming both paths, and leaves the Cell unchanged.
def find_name_clash(cell: Cell) -> tuple[str, str, str] | None:
    """The first (name, first_path, second_path) shared by two different Parameters."""
    seen: dict[str, tuple[str, Parameter]] = {}
    for path, param in cell.parameters_and_names():
        earlier = seen.get(param.name)
        if earlier is None:
            seen[param.name] = (path, param)
        elif earlier[1] is not param:
            return param.name, earlier[0], path
    return None


def raise_on_name_clash(cell: Cell) -> None:
    """Raise ValueError if two different Parameters of ``cell`` share a name."""
    clash = find_name_clash(cell)
    if clash is None:
        return
    name, first, second = clash
    raise ValueError(
        f"For '{type(cell).__name__}', the Parameters at '{first}' and '{second}' are "
        f"both named '{name}'; give each a unique name (or leave them unnamed so the "
        "Cell names them by path)."
    )


def check_list_names(
    attr: str,
    value: Iterable[Parameter],
    exist_names: dict[str, tuple[str, Parameter]],
) -> dict[str, tuple[str, Parameter]]:
    """The per-cell name table after adding the Parameters of list attribute ``attr``.

    Default-named Parameters are not checked: spore's default name is shared by
    every unnamed Parameter (MindSpore 2.10's are numbered, so never clash).

    Raises:
        ValueError: If a different Parameter of another list attribute (or of this
            one) already uses the same name.
    """
    table = {k: v for k, v in exist_names.items() if v[0] != attr}
    for item in value:
        if is_default_name(item):
            continue
        earlier = table.get(item.name)
        if earlier is not None and earlier[1] is not item:
            raise ValueError(
                f"For 'Cell', the Parameter named '{item.name}' in list attribute "
                f"'{attr}': the name '{item.name}' already exists in list attribute "
                f"'{earlier[0]}' for a different Parameter; give each a unique name."
            )
        table[item.name] = (attr, item)
    return table
