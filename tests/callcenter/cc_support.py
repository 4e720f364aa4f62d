"""Shared by the tests of tests/callcenter: the real config.toml, a store in tmp_path, a fake clock.

Not a package (a tests/callcenter/__init__.py would shadow the real ``callcenter``
package), so the test modules import this by its unique name. The ``api`` fixture
(conftest.py) runs the app's lifespan (store, bus, readers, ticker) and talks to it
through ``httpx.ASGITransport``; the ticker runs once at start and then sleeps for an
hour of real time, so nothing moves unless a test moves the clock or calls the engine.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from callcenter.deps import AppContext
from callcenter.runtime import HallRuntime
from callcenter.settings import Settings, load_settings
from queue_engine import FakeClock

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "config.toml"
START = 1_780_020_000.0  # Friday 2026-05-29, 10:00 in Shanghai: the hall is open
SECRET = "test-secret"
HALL = "wuhou"
PASSWORD = "96166demo"
SUPERVISOR = "W0900"
ADMIN = "W0999"
KIOSK = "demo-kiosk-1-5f2c9a71"
KIOSK2 = "demo-kiosk-2-8e41d0b3"
DISPLAY = "demo-display-main-3c7b"
WINDOW1 = "demo-window-01-60c5590f"


def bearer(token: str) -> dict[str, str]:
    """An Authorization header for ``token``."""
    return {"Authorization": f"Bearer {token}"}


def make_settings(tmp_path: Path) -> Settings:
    """Settings from the real config.toml with the store in ``tmp_path``."""
    return load_settings(
        CONFIG,
        env={"CALLCENTER_STORE_URL": f"sqlite:///{tmp_path}/app.db", "CALLCENTER_SECRET": SECRET},
    )


@dataclass
class Api:
    """A running app, its HTTP client and its clock, with helpers for the common steps."""

    app: FastAPI
    client: httpx.AsyncClient
    clock: FakeClock

    @property
    def ctx(self) -> AppContext:
        return self.app.state.ctx

    @property
    def runtime(self) -> HallRuntime:
        return self.ctx.halls[HALL]

    async def login(self, vn: str, password: str = PASSWORD) -> dict[str, str]:
        """Sign ``vn`` in and return its Authorization header."""
        r = await self.client.post(
            "/api/auth/login", json={"virtual_number": vn, "password": password}
        )
        assert r.status_code == 200, r.text
        return bearer(r.json()["token"])

    async def issue(
        self, service: str = "social_insurance", token: str = KIOSK, **body: Any
    ) -> dict[str, Any]:
        """Take a ticket at a kiosk; returns the 201 body."""
        r = await self.client.post(
            f"/api/halls/{HALL}/tickets", json={"service": service, **body}, headers=bearer(token)
        )
        assert r.status_code == 201, r.text
        return r.json()

    async def act(
        self, vn: str, action: str, headers: dict[str, str], json: Any = None
    ) -> httpx.Response:
        """POST a workstation action for ``vn``."""
        return await self.client.post(
            f"/api/halls/{HALL}/workstations/{vn}/{action}", headers=headers, json=json
        )

    async def settle(self) -> None:
        """Wait until the screens reader has folded in every committed event."""
        store = self.runtime.engine.store
        last = await store.run(lambda tx: tx.last_event_id())
        async with asyncio.timeout(5):
            while self.runtime.view.last_event_id < last:
                await asyncio.sleep(0.005)


def _task_dump() -> str:
    lines = []
    for task in asyncio.all_tasks():
        if task is asyncio.current_task():
            continue
        frames = task.get_stack(limit=3)
        where = " <- ".join(f"{f.f_code.co_filename}:{f.f_lineno}" for f in frames)
        lines.append(f"{task.get_name()}: {where}")
    return "\n".join(lines)


@contextlib.asynccontextmanager
async def running(app: FastAPI, stop_s: float = 15.0) -> AsyncIterator[None]:
    """Run the app's lifespan; a shutdown that hangs fails with the tasks still running."""
    lifespan = app.router.lifespan_context(app)
    async with asyncio.timeout(stop_s):
        await lifespan.__aenter__()
    try:
        yield
    finally:
        stop = asyncio.ensure_future(lifespan.__aexit__(None, None, None))
        done, _ = await asyncio.wait({stop}, timeout=stop_s)
        if not done:
            dump = _task_dump()
            stop.cancel()
            raise AssertionError(f"the app's lifespan did not end in {stop_s} s:\n{dump}")
        stop.result()
