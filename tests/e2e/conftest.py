"""The browser tests' shared fixture: one Chromium per test module.

Not per session: Playwright's sync API keeps an asyncio loop marked as running on this
thread while it is open, and every async test collected after the browser tests would
then fail with "Runner.run() cannot be called from a running event loop".
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pagekit import chromium


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b
