"""Storage backends behind one interface; drivers are imported only for the URL in use."""

from __future__ import annotations

from .base import Store, Tx


def open_store(url: str) -> Store:
    """A store for ``url`` (not yet opened): ``sqlite:///path``, ``sqlite:///:memory:``."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"store url {url!r} has no scheme (sqlite:///path)")
    if scheme == "sqlite":
        from .sqlite import SQLiteStore

        return SQLiteStore(rest[1:] if rest.startswith("/") else rest)
    raise ValueError(f"unknown store scheme {scheme!r} in {url!r}; known: sqlite")


__all__ = ["Store", "Tx", "open_store"]
