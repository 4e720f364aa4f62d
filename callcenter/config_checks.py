"""Small typed readers for config tables: each returns a value or raises ConfigError.

Every reader takes the table, the key and the key path of the table, so an
error always names where it is, e.g. ``hall.services[3].prefix``.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Iterator, Mapping
from datetime import time
from pathlib import Path
from typing import Any

Table = Mapping[str, Any]
MISSING: Any = object()

_CODE = re.compile(r"[a-z][a-z0-9_]*")
_LETTER = re.compile(r"[A-Z]")
_TYPE_NAMES: dict[type, str] = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "true or false",
    Mapping: "a table",
    list: "an array",
    time: "a time",
}


class ConfigError(Exception):
    """The configuration is invalid; the message names the file, the key path and the problem."""

    def __init__(self, key: str, problem: str, source: str | Path | None = None) -> None:
        self.key = key
        self.problem = problem
        self.source = source
        parts = [str(p) for p in (source, key) if p]
        super().__init__(": ".join([*parts, problem]))

    def within(self, source: str | Path) -> ConfigError:
        """The same error, attributed to a config file."""
        return ConfigError(self.key, self.problem, source)


def check(ok: bool, key: str, problem: str) -> None:
    """Raise ConfigError(key, problem) unless ok."""
    if not ok:
        raise ConfigError(key, problem)


def joined(path: str, key: str) -> str:
    """The key path of key inside the table at path."""
    return f"{path}.{key}" if path else key


def typed(
    t: Table, key: str, path: str, types: type | tuple[type, ...], default: Any = MISSING
) -> Any:
    """t[key] if it has one of types (an int counts as a number, a bool as nothing else)."""
    if key not in t:
        check(default is not MISSING, joined(path, key), "required key is missing")
        return default
    types = types if isinstance(types, tuple) else (types,)
    names = " or ".join(_TYPE_NAMES[k] for k in types)
    check(_is(t[key], types), joined(path, key), f"{t[key]!r} must be {names}")
    return t[key]


def _is(value: Any, types: tuple[type, ...]) -> bool:
    if isinstance(value, bool):
        return bool in types
    return isinstance(value, types) or (float in types and isinstance(value, int))


def text(t: Table, key: str, path: str, default: Any = MISSING) -> str:
    """A non-blank string."""
    value = typed(t, key, path, str, default)
    check(bool(value.strip()), joined(path, key), "must not be empty")
    return value


def code(t: Table, key: str, path: str) -> str:
    """A snake_case identifier."""
    value = text(t, key, path)
    check(
        bool(_CODE.fullmatch(value)),
        joined(path, key),
        f"{value!r} must be snake_case: a–z, 0–9 and _, starting with a letter",
    )
    return value


def letter(t: Table, key: str, path: str, default: Any = MISSING) -> Any:
    """One uppercase letter A–Z (a ticket prefix)."""
    value = typed(t, key, path, str, default)
    check(
        value is None or bool(_LETTER.fullmatch(value)),
        joined(path, key),
        f"{value!r} must be one uppercase letter A–Z",
    )
    return value


def positive(t: Table, key: str, path: str, default: Any = MISSING) -> float:
    """A number > 0."""
    value = float(typed(t, key, path, float, default))
    check(value > 0, joined(path, key), f"{value:g} must be > 0")
    return value


def seconds(t: Table, key: str, path: str) -> float:
    """A number >= 0."""
    value = float(typed(t, key, path, float))
    check(value >= 0, joined(path, key), f"{value:g} must be >= 0")
    return value


def count(t: Table, key: str, path: str) -> int:
    """An integer >= 0."""
    value = typed(t, key, path, int)
    check(value >= 0, joined(path, key), f"{value} must be >= 0")
    return value


def positive_int(t: Table, key: str, path: str, default: Any = MISSING) -> Any:
    """An integer > 0."""
    value = typed(t, key, path, int, default)
    check(value is None or value > 0, joined(path, key), f"{value} must be > 0")
    return value


def one_of(
    t: Table, key: str, path: str, known: Collection[str], what: str, default: Any = MISSING
) -> str:
    """A string from known."""
    value = typed(t, key, path, str, default)
    expected = ", ".join(sorted(known))
    check(
        value in known, joined(path, key), f"unknown {what} {value!r}; expected one of {expected}"
    )
    return value


def choice(t: Table, key: str, path: str, enum: Any, default: Any = MISSING) -> Any:
    """A member of a StrEnum, by value."""
    return enum(one_of(t, key, path, {m.value for m in enum}, key, default))


def only_keys(t: Table, allowed: Collection[str], path: str) -> None:
    """Reject keys outside allowed, so a typo is an error rather than a silent default."""
    for key in t:
        check(key in allowed, joined(path, key), "unknown key")


def as_table(value: Any, path: str) -> Table:
    """value, if it is a table."""
    check(isinstance(value, Mapping), path, f"{value!r} must be a table")
    return value


def tables(entries: Iterable[Any], path: str) -> Iterator[tuple[Table, str]]:
    """Each entry of the array at path with its own key path, if all are tables."""
    for i, entry in enumerate(entries):
        yield as_table(entry, f"{path}[{i}]"), f"{path}[{i}]"


def table(t: Table, key: str, path: str) -> Table:
    """A required sub-table."""
    return typed(t, key, path, Mapping)


def optional_table(t: Table, key: str, path: str) -> Table:
    """A sub-table, or an empty one."""
    return typed(t, key, path, Mapping, {})


def unique(items: Iterable[Any], attr: str, path: str) -> None:
    """Reject two items of the array at path with the same attr."""
    seen: dict[Any, int] = {}
    for i, item in enumerate(items):
        value = getattr(item, attr)
        check(
            value not in seen,
            f"{path}[{i}].{attr}",
            f"{value!r} is already used by {path}[{seen.get(value)}]",
        )
        seen[value] = i
