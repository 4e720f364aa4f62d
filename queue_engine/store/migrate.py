"""Numbered schema migrations, one folder of ``NNNN_name.sql`` files per dialect."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

_NAME = re.compile(r"^(\d{4})_(\w+)\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema step: applied once, in version order, in its own transaction."""

    version: int
    name: str
    sql: str


def load_migrations(dialect: str) -> list[Migration]:
    """Every migration shipped for ``dialect`` ('sqlite' or 'postgres'), oldest first."""
    folder = resources.files("queue_engine.store") / "migrations" / dialect
    found = []
    for entry in folder.iterdir():
        m = _NAME.match(entry.name)
        if m:
            found.append(Migration(int(m[1]), m[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda mig: mig.version)
    versions = [mig.version for mig in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"duplicate migration versions for {dialect}: {versions}")
    return found


def pending(applied: set[int], dialect: str) -> list[Migration]:
    """The migrations of ``dialect`` not yet in ``applied``."""
    return [m for m in load_migrations(dialect) if m.version not in applied]
