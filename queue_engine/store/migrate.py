"""Numbered schema migrations: per component, one folder of ``NNNN_name.sql`` per dialect.

The engine's own tables are the ``queue_engine`` component; an adapter with
tables of its own (the SMS outbox …) registers its package as another
component, so the engine never learns those tables exist.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

_NAME = re.compile(r"^(\d{4})_(\w+)\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema step: applied once, in version order, in its own transaction."""

    component: str
    version: int
    name: str
    sql: str


def load_migrations(component: str, dialect: str) -> list[Migration]:
    """Every migration the package ``component`` ships for ``dialect``, oldest first.

    They live in ``<package>/migrations/<dialect>/`` (the engine's in
    ``queue_engine/store/migrations/``).
    """
    package = "queue_engine.store" if component == "queue_engine" else component
    folder = resources.files(package) / "migrations" / dialect
    found = []
    for entry in folder.iterdir():
        m = _NAME.match(entry.name)
        if m:
            found.append(Migration(component, int(m[1]), m[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda mig: mig.version)
    versions = [mig.version for mig in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"duplicate migration versions in {component} for {dialect}: {versions}")
    return found


def pending(applied: set[tuple[str, int]], components: list[str], dialect: str) -> list[Migration]:
    """The migrations of ``components`` not yet in ``applied`` ((component, version) pairs)."""
    return [
        m
        for component in components
        for m in load_migrations(component, dialect)
        if (m.component, m.version) not in applied
    ]
