"""The browser tests' shared fixture: one Chromium for the session."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pagekit import chromium


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b
