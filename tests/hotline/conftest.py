"""The hotline under test: the real config.toml plus ``[hotline]`` and Twilio pointed at a fake.

``hot`` runs the whole app (store in tmp_path, fake clock, lifespan with the connector
and the reconciler) and talks to it through ``httpx.ASGITransport``. The ticker runs
once at start and then sleeps an hour of real time, so nothing moves unless a test
moves the clock or calls the engine. Webhooks are signed exactly as Twilio signs them:
HMAC-SHA1 over the public URL (with its query) and the sorted POST parameters.
"""

from __future__ import annotations

import asyncio
import dataclasses
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi import FastAPI
from twilio.request_validator import RequestValidator

from callcenter.app import create_app
from callcenter.runtime import HallRuntime
from callcenter.settings import Settings, load_settings
from queue_engine import Engine, FakeClock, Ticket

from .fake_twilio import FakeTwilio

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "config.toml"
START = 1_780_020_000.0  # Friday 2026-05-29, 10:00 in Shanghai
SECRET = "test-secret"
HALL = "wuhou"
PASSWORD = "96166demo"
PUBLIC = "https://hotline.example.gov.cn"
NUMBER = "+862896166000"
SMS_FROM = "+15005550006"
CALLER = "+8613812345678"
ENDPOINTS = {
    "W0101": "client:agent-w0101",
    "W0102": "sip:w0102@pbx.example.gov.cn",
    "W0103": "+8613900000103",
}
SUPERVISOR, OFFICER = "W0900", "W0201"  # W0201: the market regulation bureau's officer

# twilio 9.13's async client hands aiohttp 3.14 a BasicAuth and ``auth=``; both warn, and the
# suite's filterwarnings=error would turn the connector's REST calls into failures.
TWILIO_DEPRECATIONS = (
    "ignore:BasicAuth is deprecated:DeprecationWarning",
    "ignore:The 'auth' parameter is deprecated:DeprecationWarning",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/hotline/" in str(item.path).replace("\\", "/"):
            for spec in TWILIO_DEPRECATIONS:
                item.add_marker(pytest.mark.filterwarnings(spec))


def hotline_settings(tmp_path: Path, fake: FakeTwilio, **hotline: Any) -> Settings:
    """config.toml with the store in ``tmp_path``, SMS through Twilio (the fake) and [hotline]."""
    base = load_settings(
        CONFIG,
        env={
            "CALLCENTER_STORE_URL": f"sqlite:///{tmp_path}/hotline.db",
            "CALLCENTER_SECRET": SECRET,
        },
    )
    sms = dict(base.raw.get("sms", {}))
    sms.update(
        provider="twilio", public_url=PUBLIC, quiet_hours="",
        console_log=str(tmp_path / "sms-console.jsonl"),
        twilio={"account_sid": fake.account_sid, "auth_token": fake.auth_token,
                "from_number": SMS_FROM, "base_url": fake.base_url},
    )  # fmt: skip
    table: dict[str, Any] = {
        "number": NUMBER,
        "public_url": PUBLIC,
        "endpoints": dict(ENDPOINTS),
        "callback_rate_per_s": 200.0,
        "callback_attempts": 3,
        "reconcile_after_s": 120.0,
    }
    table.update(hotline)
    raw = {**base.raw, "sms": sms, "hotline": table}
    return dataclasses.replace(base, raw=MappingProxyType(raw))


@dataclasses.dataclass
class Hot:
    """A running app with the hotline, its client, clock and fake Twilio."""

    app: FastAPI
    client: httpx.AsyncClient
    clock: FakeClock
    fake: FakeTwilio
    settings: Settings

    # --- the parts -----------------------------------------------------------------------

    @property
    def runtime(self) -> HallRuntime:
        return self.app.state.ctx.halls[HALL]

    @property
    def engine(self) -> Engine:
        return self.runtime.engine

    # --- signed webhooks ----------------------------------------------------------------

    def sign(self, url: str, params: dict[str, str], token: str | None = None) -> str:
        return RequestValidator(token or self.fake.auth_token).compute_signature(url, params)

    async def post_signed(
        self,
        path: str,
        params: dict[str, str],
        headers: dict[str, str] | None = None,
        *,
        url: str | None = None,
        token: str | None = None,
    ) -> httpx.Response:
        """POST ``params`` to ``path`` (with its query) signed for ``url`` (the public URL)."""
        signature = self.sign(url or PUBLIC + path, params, token)
        return await self.client.post(
            path, data=params, headers={"X-Twilio-Signature": signature, **(headers or {})}
        )

    @staticmethod
    def call_params(sid: str, frm: str = CALLER, **extra: str) -> dict[str, str]:
        """What Twilio posts about an inbound call."""
        return {
            "AccountSid": "AC" + "0123456789abcdef" * 2, "ApiVersion": "2010-04-01",
            "CallSid": sid, "CallStatus": "in-progress", "Direction": "inbound",
            "From": frm, "Caller": frm, "To": NUMBER, "Called": NUMBER, **extra,
        }  # fmt: skip

    async def voice(self, path: str, sid: str, frm: str = CALLER, **extra: str) -> ET.Element:
        """Post a signed voice webhook for call ``sid`` and parse the TwiML answer."""
        r = await self.post_signed(path, self.call_params(sid, frm, **extra))
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("application/xml"), r.headers
        return ET.fromstring(r.text)

    async def status(self, sid: str, status: str, frm: str = CALLER, **extra: str) -> None:
        """A status callback for call ``sid``."""
        params = self.call_params(sid, frm, CallStatus=status, CallbackSource="call-progress-events",
                                  SequenceNumber="3", **extra)  # fmt: skip
        r = await self.post_signed("/voice/status", params)
        assert r.status_code == 204, r.text

    async def queue_call(self, sid: str, frm: str = CALLER, digits: str = "3") -> int:
        """Incoming call, then a menu key: the ticket id the hold loop carries."""
        self.fake.add_call(sid, frm, NUMBER)
        root = await self.voice("/voice/incoming", sid, frm)
        action = root.find("Gather").get("action")  # type: ignore[union-attr]
        root = await self.voice(action, sid, frm, Digits=digits)
        return ticket_of(root)

    # --- staff ----------------------------------------------------------------------------

    async def login(self, vn: str) -> dict[str, str]:
        r = await self.client.post(
            "/api/auth/login", json={"virtual_number": vn, "password": PASSWORD}
        )
        assert r.status_code == 200, r.text
        return {"Authorization": f"Bearer {r.json()['token']}"}

    async def act(
        self, vn: str, action: str, headers: dict[str, str], json: Any = None
    ) -> httpx.Response:
        return await self.client.post(
            f"/api/halls/{HALL}/workstations/{vn}/{action}", headers=headers, json=json
        )

    async def sign_in(self, vn: str, seat: str) -> dict[str, str]:
        """Log ``vn`` in and sign in at hotline seat ``seat``; returns its auth header."""
        auth = await self.login(vn)
        r = await self.act(vn, "sign-in", auth, {"window": seat})
        assert r.status_code == 200, r.text
        return auth

    # --- rows -----------------------------------------------------------------------------

    async def call_row(self, sid: str) -> dict[str, Any] | None:
        def read(tx: Any) -> dict[str, Any] | None:
            cols = [r[1] for r in tx.execute("PRAGMA table_info(calls)")]
            rows = tx.execute("SELECT * FROM calls WHERE call_sid=?", (sid,))
            return dict(zip(cols, rows[0], strict=True)) if rows else None

        return await self.engine.run(read)

    async def ticket(self, ticket_id: int) -> Ticket:
        return await self.engine.ticket(ticket_id)

    async def live_ticket(self, number: str) -> Ticket:
        """Today's live ticket with this number (a transfer or call-back keeps the number)."""
        t = await self.engine.ticket_by_number(number)
        assert t is not None, number
        return t

    async def outbox(self, template: str | None = None) -> list[dict[str, Any]]:
        def read(tx: Any) -> list[dict[str, Any]]:
            cols = [r[1] for r in tx.execute("PRAGMA table_info(sms_outbox)")]
            where, args = ("WHERE template=?", (template,)) if template else ("", ())
            rows = tx.execute(f"SELECT * FROM sms_outbox {where} ORDER BY id", args)
            return [dict(zip(cols, r, strict=True)) for r in rows]

        return await self.engine.run(read)

    async def until(self, check: Callable[[], Any], timeout: float = 5.0) -> Any:
        """Poll an (async or plain) check until it is truthy."""
        async with asyncio.timeout(timeout):
            while True:
                value = check()
                if asyncio.iscoroutine(value):
                    value = await value
                if value:
                    return value
                await asyncio.sleep(0.01)


def ticket_of(root: ET.Element) -> int:
    """The ticket id carried by the hold loop's (or a Gather's) URL in a TwiML answer."""
    for el in root.iter():
        for attr in ("action",):
            if el.get(attr) and "ticket=" in el.get(attr, ""):
                return int(query_of(el.get(attr, ""))["ticket"])
        if el.tag == "Redirect" and el.text and "ticket=" in el.text:
            return int(query_of(el.text)["ticket"])
    raise AssertionError(f"no ticket in {ET.tostring(root, encoding='unicode')}")


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query, keep_blank_values=True).items()}


def redirect_of(root: ET.Element) -> str:
    el = root.find("Redirect")
    assert el is not None and el.text, ET.tostring(root, encoding="unicode")
    return el.text


def says(root: ET.Element) -> list[str]:
    return [el.text or "" for el in root.iter("Say")]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
async def fake() -> AsyncIterator[FakeTwilio]:
    async with FakeTwilio() as server:
        yield server


@pytest.fixture
def make_hot(
    tmp_path: Path, clock: FakeClock, fake: FakeTwilio, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Any]:
    """``async with make_hot(**hotline_overrides) as hot:`` runs the app with those settings."""
    monkeypatch.setenv("CALLCENTER_SECRET", SECRET)
    monkeypatch.delenv("TWILIO_AUTH_TOKEN", raising=False)

    @asynccontextmanager
    async def run(**overrides: Any) -> AsyncIterator[Hot]:
        settings = hotline_settings(tmp_path, fake, **overrides)
        app = create_app(settings, clock=clock, tick_s=3600)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                yield Hot(app, client, clock, fake, settings)

    return run


@pytest.fixture
async def hot(make_hot: Callable[..., Any]) -> AsyncIterator[Hot]:
    async with make_hot() as h:
        yield h
