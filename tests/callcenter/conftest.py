"""Fixtures of tests/callcenter: settings from config.toml, a fake clock, the running app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from cc_support import START, Api, make_settings, running

from callcenter.app import create_app
from callcenter.settings import Settings
from queue_engine import FakeClock


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    # The secret comes from load_settings' env only: the process environment must not leak in.
    monkeypatch.delenv("CALLCENTER_SECRET", raising=False)
    return make_settings(tmp_path)


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
async def api(settings: Settings, fake_clock: FakeClock) -> AsyncIterator[Api]:
    app = create_app(settings, clock=fake_clock, tick_s=3600)
    async with running(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield Api(app, client, fake_clock)
