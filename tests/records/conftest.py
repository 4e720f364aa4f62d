"""Fixtures for appointments, cases and ratings: a hall with hours and the 2026 calendar.

The hall is ``make_hall`` with Monday–Friday hours (09:00–12:00, 13:30–17:30), the
October 2026 national-day calendar of config.toml, a pickup window for ``biz`` and the
``instant`` case flow for ``medical``. The store carries the SMS migrations so the
notifier can be run as a TxReader and its outbox rows read back.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable
from datetime import date, datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from fastapi import FastAPI

from callcenter.app import create_app
from callcenter.deps import AppContext
from callcenter.runtime import HallRuntime
from callcenter.settings import Settings, load_settings
from queue_engine import Bus, Engine, FakeClock, ReaderRunner, Store
from queue_engine.appointments import Appointments
from queue_engine.calendar import WorkCalendar
from queue_engine.cases import Cases
from queue_engine.model import DEFAULT_FLOW, CaseFlow, HallConfig, Session, Ticket
from queue_engine.ratings import Ratings
from sms.config import SmsConfig
from sms.notifier import SmsNotifier
from tests.conftest import make_hall

SHANGHAI = ZoneInfo("Asia/Shanghai")
ID_SECRET = b"records-test-id-key"

# config.toml's demo calendar: 国庆 2026 (Oct 1–7 minus the weekend) and 调休 Sept 20 / Oct 10.
HOLIDAYS = [date(2026, 10, d) for d in (1, 2, 5, 6, 7)]
WORKED_WEEKENDS = [date(2026, 9, 20), date(2026, 10, 10)]
CALENDAR = WorkCalendar.of(HOLIDAYS, WORKED_WEEKENDS)
DAY_SESSIONS = (Session(time(9), time(12)), Session(time(13, 30), time(17, 30)))
INSTANT = CaseFlow("instant", {"受理": ("办结",), "办结": ()})
PICKUP_NOTE = "请携带本人身份证原件及受理通知书领取营业执照"

P1, P2, P3 = "+8613800000001", "+8613800000002", "+8613800000003"


def at(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> float:
    """POSIX seconds of a Shanghai wall-clock time."""
    return datetime(y, m, d, hh, mm, tzinfo=SHANGHAI).timestamp()


def records_hall(**changes: Any) -> HallConfig:
    """make_hall with hours, the calendar, a pickup window and an instant flow."""
    base = make_hall()
    services = tuple(
        dataclasses.replace(s, pickup_window="5", pickup_note_zh=PICKUP_NOTE) if s.code == "biz"
        else dataclasses.replace(s, case_flow="instant") if s.code == "medical"
        else s
        for s in base.services
    )  # fmt: skip
    fields: dict[str, Any] = {
        "services": services,
        "hours": {d: DAY_SESSIONS for d in range(5)},
        "calendar": CALENDAR,
        "case_flows": {"licence": DEFAULT_FLOW, "instant": INSTANT},
    }
    return dataclasses.replace(base, **(fields | changes))


@pytest.fixture
def hall() -> HallConfig:
    return records_hall()


@pytest.fixture
async def store(store_factory: Callable[[], Store]) -> AsyncIterator[Store]:
    s = store_factory()
    s.add_migrations("sms")
    async with s:
        yield s


@pytest.fixture
def appointments(engine: Engine) -> Appointments:
    return Appointments(engine, ID_SECRET)


@pytest.fixture
def cases(engine: Engine) -> Cases:
    return Cases(engine)


@pytest.fixture
def ratings(engine: Engine) -> Ratings:
    return Ratings(engine)


async def serve(
    engine: Engine,
    service: str = "biz",
    *,
    vn: str = "W0004",
    window: str = "4",
    phone: str | None = P1,
    complete: bool = True,
    handle_s: float = 0.0,
) -> Ticket:
    """Issue a ticket and serve it at ``window`` under ``vn`` (completed unless told)."""
    clock: FakeClock = engine.clock  # type: ignore[assignment]
    issued = await engine.take_ticket(service, phone=phone)
    ws = await engine.workstation(vn)
    if ws.window != window:
        await engine.sign_in(vn, window)
    called = await engine.call_ticket(vn, issued.ticket.id)
    assert called.id == issued.ticket.id
    started = await engine.start_service(vn)
    if not complete:
        return started
    if handle_s:
        clock.advance(handle_s)
    return await engine.complete(vn)


async def events(store: Store, kind: str | None = None) -> list[Any]:
    """Every event of the log (of one type)."""
    got = await store.run(lambda tx: tx.events_after(0, 100_000))
    return [e for e in got if kind is None or e.type == kind]


async def outbox(
    store: Store, bus: Bus, hall: HallConfig, template: str | None = None
) -> list[dict]:
    """Run the SMS notifier over the log and return the outbox rows (of one template)."""
    config = SmsConfig(signature="测试政务", public_url="https://hall.example", quiet_start=None,
                       quiet_end=None)  # fmt: skip
    runner = ReaderRunner(store, bus, SmsNotifier(config, {hall.code: hall}))
    await runner.catch_up()
    rows = await store.run(
        lambda tx: tx.execute(
            "SELECT template, phone, body, ticket_id, event_id FROM sms_outbox ORDER BY id"
        )
    )
    out = [dict(zip(("template", "phone", "body", "ticket_id", "event_id"), r, strict=True))
           for r in rows]  # fmt: skip
    return [r for r in out if template is None or r["template"] == template]


# --- the whole app: config.toml, a store in tmp_path, a fake clock ------------------------

CONFIG = Path(__file__).resolve().parents[2] / "config.toml"
START = 1_780_020_000.0  # Friday 2026-05-29, 10:00 in Shanghai
HALL = "wuhou"
PASSWORD = "96166demo"
DEPT_MARKET = "dept-market-system-key-1"
DEPT_EXIT = "dept-exit-entry-system-key-2"
RATINGPAD5 = "demo-ratingpad-05-5eb242ae"
KIOSK = "demo-kiosk-1-5f2c9a71"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclasses.dataclass
class Api:
    """A running app, its client and clock."""

    app: FastAPI
    client: httpx.AsyncClient
    clock: FakeClock

    @property
    def ctx(self) -> AppContext:
        return self.app.state.ctx

    @property
    def runtime(self) -> HallRuntime:
        return self.ctx.halls[HALL]

    async def login(self, vn: str) -> dict[str, str]:
        r = await self.client.post(
            "/api/auth/login", json={"virtual_number": vn, "password": PASSWORD}
        )
        assert r.status_code == 200, r.text
        return bearer(r.json()["token"])

    async def served(self, service: str, vn: str, window: str, phone: str | None = P1) -> Ticket:
        """A ticket of ``service`` served to completion at ``window`` (through the engine)."""
        return await serve(self.runtime.engine, service, vn=vn, window=window, phone=phone)


def api_settings(tmp_path: Path) -> Settings:
    """config.toml with the store in tmp_path and two department systems' keys."""
    settings = load_settings(
        CONFIG, env={"CALLCENTER_STORE_URL": f"sqlite:///{tmp_path}/app.db",
                     "CALLCENTER_SECRET": "records-secret"},
    )  # fmt: skip
    devices = [
        *settings.raw.get("devices", []),
        {"id": "dept-market", "kind": "department", "department": "market", "token": DEPT_MARKET},
        {"id": "dept-exit", "kind": "department", "department": "exit_entry", "token": DEPT_EXIT},
    ]
    return dataclasses.replace(settings, raw={**settings.raw, "devices": devices})


@pytest.fixture
async def api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Api]:
    monkeypatch.setenv("CALLCENTER_SECRET", "records-secret")
    clock = FakeClock(START)
    app = create_app(api_settings(tmp_path), clock=clock, tick_s=3600)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield Api(app, client, clock)
