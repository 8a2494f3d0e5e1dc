"""Parameter names: the default name and the checks, in one place."""

from __future__ import annotations

import re
from typing import Any

# r1.3: every unnamed Parameter is called "Parameter" (MindSpore 2.x numbers them;
# the seed wins). Cells later replace it with the attribute path.
PARAMETER_NAME_DEFAULT = "Parameter"
_MAX_NAME_LENGTH = 1024
# MindSpore's prefix rule for ParameterTuple.clone (ASCII word start, then [\w.]).
_PREFIX_PATTERN = re.compile(r"^\w+[0-9a-zA-Z_.]*$", re.ASCII)


def check_parameter_name(name: Any) -> str:
    """Return the stored form of a Parameter name (stripped; default when empty).

    Raises:
        ValueError: If ``name`` is not a str or None, or is longer than 1024.
    """
    # MindSpore parity: a non-str name is a ValueError, not a TypeError.
    if name is None:
        return PARAMETER_NAME_DEFAULT
    if not isinstance(name, str):
        raise ValueError(
            f"For 'Parameter', the 'name' should be str or None, but got "
            f"{type(name).__name__}."
        )
    name = name.strip()
    if not name:
        return PARAMETER_NAME_DEFAULT
    if len(name) > _MAX_NAME_LENGTH:
        raise ValueError(
            f"For 'Parameter', the 'name' should be at most {_MAX_NAME_LENGTH} "
            f"characters, but got {len(name)}."
        )
    return name


def check_clone_prefix(prefix: Any) -> str:
    """Validate a ParameterTuple.clone prefix.

    Raises:
        TypeError: If ``prefix`` is not a str.
        ValueError: If ``prefix`` does not match ``^\\w+[0-9a-zA-Z_.]*$`` (ASCII).
    """
    if not isinstance(prefix, str):
        raise TypeError(
            f"For 'ParameterTuple.clone', the 'prefix' should be str, but got "
            f"{type(prefix).__name__}."
        )
    if _PREFIX_PATTERN.match(prefix) is None:
        raise ValueError(
            "For 'ParameterTuple.clone', the 'prefix' should start with a letter, "
            "digit or '_' and contain only ASCII letters, digits, '_' and '.', "
            f"but got {prefix!r}."
        )
    return prefix
