"""The signed webhooks (delivery status, inbound replies) through the whole app.

The app runs its lifespan with ``[sms] provider = "twilio"`` pointed at the Twilio-shaped
server, so tickets issued through the API reach it through the real twilio library, and
the server's signed callbacks come back through ``httpx.ASGITransport``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
import sys
import tomllib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from callcenter.app import create_app
from callcenter.settings import Settings, parse_settings
from queue_engine import FakeClock, Store
from sms.views import Wiring, _answer, _record_status
from tests.sms.conftest import SENDER, outbox
from tests.sms.fake_twilio import FakeTwilio, Recorded

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "config.toml"
START = 1_780_020_000.0  # Friday 2026-05-29, 10:00 in Shanghai: the hall is open
HALL = "wuhou"
KIOSK = "demo-kiosk-1-5f2c9a71"
PUBLIC_URL = "http://127.0.0.1:8000"  # config.toml's public_url: what StatusCallback says
STATUS_URL = f"{PUBLIC_URL}/sms/status"
INBOUND_URL = f"{PUBLIC_URL}/sms/inbound"
PHONE, OTHER = "+8613812345678", "+8613912345678"


def twilio_settings(tmp_path: Path, fake: FakeTwilio) -> Settings:
    """config.toml with its store in tmp_path and [sms] sending through ``fake``."""
    data: dict[str, Any] = tomllib.loads(CONFIG.read_text(encoding="utf-8"))
    data["store"] = {"url": f"sqlite:///{tmp_path}/app.db"}
    data["sms"] = {
        **data["sms"], "provider": "twilio", "rate_per_s": 500, "public_url": PUBLIC_URL,
        "twilio": {"account_sid": fake.account_sid, "auth_token": fake.auth_token,
                   "from_number": SENDER, "base_url": fake.base_url},
    }  # fmt: skip
    secrets = {"CALLCENTER_SECRET": "test-secret", "CALLCENTER_ID_KEY": "test-id-key"}
    return dataclasses.replace(parse_settings(data, CONFIG), env=MappingProxyType(secrets))


@dataclass
class App:
    app: FastAPI
    client: httpx.AsyncClient
    fake: FakeTwilio
    clock: FakeClock

    @property
    def store(self) -> Store:
        return self.app.state.ctx.halls[HALL].engine.store

    async def issue(self, phone: str, service: str = "social_insurance") -> dict[str, Any]:
        r = await self.client.post(
            f"/api/halls/{HALL}/tickets",
            json={"service": service, "phone": phone, "sms_consent": True},
            headers={"Authorization": f"Bearer {KIOSK}"},
        )
        assert r.status_code == 201, r.text
        return r.json()

    async def post_signed(
        self, path: str, params: dict[str, str], *, url: str | None = None,
        token: str | None = None, headers: dict[str, str] | None = None,
    ) -> httpx.Response:  # fmt: skip
        """POST ``params`` to ``path`` signed as Twilio signs a request to ``url``."""
        signature = self.fake.sign(url or f"{PUBLIC_URL}{path}", params, token)
        return await self.client.post(
            path, data=params, headers={"X-Twilio-Signature": signature, **(headers or {})}
        )

    async def inbound(self, phone: str, body: str) -> httpx.Response:
        r = await self.post_signed("/sms/inbound", self.fake.inbound_params(phone, body))
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("application/xml")
        return r

    async def row_for(self, sid: str) -> dict[str, Any]:
        [row] = await outbox(self.store, "provider_id=?", (sid,))
        return row


async def eventually(check: Callable[[], Any], timeout: float = 5.0) -> Any:
    async with asyncio.timeout(timeout):
        while True:
            value = check()
            if inspect.isawaitable(value):
                value = await value
            if value:
                return value
            await asyncio.sleep(0.01)


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[App]:
    clock = FakeClock(START)
    async with contextlib.AsyncExitStack() as stack:
        fake = await stack.enter_async_context(FakeTwilio(clock=clock.now))
        application = create_app(twilio_settings(tmp_path, fake), clock=clock, tick_s=3600)
        await stack.enter_async_context(application.router.lifespan_context(application))
        transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
        client = await stack.enter_async_context(
            httpx.AsyncClient(transport=transport, base_url="http://test")
        )
        yield App(application, client, fake, clock)
        await _close_or_explain(stack.pop_all())


async def _close_or_explain(stack: contextlib.AsyncExitStack, limit_s: float = 20.0) -> None:
    """Close the app; if its shutdown hangs (seen twice, not reproduced), say what waits."""
    try:
        async with asyncio.timeout(limit_s):
            await stack.aclose()
    except TimeoutError:
        for task in asyncio.all_tasks():
            print(task, file=sys.stderr)
            task.print_stack(file=sys.stderr)
        raise


async def sent_message(app: App, phone: str, n: int = 1) -> tuple[Recorded, dict[str, Any]]:
    """The n-th request to ``phone`` once the dispatcher has settled its row."""
    reqs = await eventually(lambda: [c for c in app.fake.creates if c.form["To"] == phone][n - 1 :])
    req = reqs[0]
    assert req.sid is not None
    row = await eventually(
        lambda: _settled(app, req.sid)  # type: ignore[arg-type]
    )
    return req, row


async def _settled(app: App, sid: str, status: str = "sent") -> dict[str, Any] | None:
    rows = await outbox(app.store, "provider_id=?", (sid,))
    return rows[0] if rows and rows[0]["status"] == status else None


# --- delivery status ---------------------------------------------------------------


async def test_issue_sends_through_twilio_and_callbacks_move_it_to_delivered(app: App) -> None:
    ticket = await app.issue("138 1234 5678")
    req, row = await sent_message(app, PHONE)
    assert req.form["To"] == PHONE and req.form["From"] == SENDER
    assert req.form["StatusCallback"] == STATUS_URL
    assert req.form["Body"].startswith(f"【武侯政务】您已取号{ticket['number']}（")
    assert row["template"] == "issued"
    sid = req.sid
    assert sid is not None
    for status, expected in (
        ("sent", "sent"),
        ("delivered", "delivered"),
        ("sent", "delivered"),
    ):  # a late 'sent' never moves it back
        r = await app.post_signed("/sms/status", app.fake.status_params(sid, status))
        assert r.status_code == 204, r.text
        assert (await app.row_for(sid))["status"] == expected


async def test_undelivered_and_failed_keep_the_error_code(app: App) -> None:
    await app.issue(PHONE)
    await app.issue(OTHER)
    (a, _), (b, _) = await sent_message(app, PHONE), await sent_message(app, OTHER)
    assert a.sid and b.sid
    r = await app.post_signed("/sms/status", app.fake.status_params(a.sid, "undelivered", "30003"))
    assert r.status_code == 204
    r = await app.post_signed("/sms/status", app.fake.status_params(b.sid, "failed", "30006"))
    assert r.status_code == 204
    ra, rb = await app.row_for(a.sid), await app.row_for(b.sid)
    assert (ra["status"], ra["error_code"]) == ("undelivered", "30003")
    assert (rb["status"], rb["error_code"]) == ("failed", "30006")


async def test_callback_for_an_unknown_message_is_accepted_and_ignored(app: App) -> None:
    r = await app.post_signed("/sms/status", app.fake.status_params("SM" + "0" * 32, "delivered"))
    assert r.status_code == 204


@pytest.mark.parametrize("path", ["/sms/status", "/sms/inbound"])
async def test_unsigned_or_wrongly_signed_webhooks_get_403(app: App, path: str) -> None:
    await app.issue(PHONE)
    req, _ = await sent_message(app, PHONE)
    assert req.sid is not None
    params = (app.fake.status_params(req.sid, "delivered") if path == "/sms/status"
              else app.fake.inbound_params(PHONE, "TD"))  # fmt: skip
    attempts = [
        await app.client.post(path, data=params),  # no signature
        await app.client.post(path, data=params, headers={"X-Twilio-Signature": ""}),
        await app.client.post(path, data=params, headers={"X-Twilio-Signature": "bm9wZQ=="}),
        await app.post_signed(path, params, token="someone-elses-token"),
        await app.post_signed(path, params, url=f"{PUBLIC_URL}/sms/elsewhere"),
        await app.post_signed(path, params, url=f"https://attacker.example{path}"),
        await app.post_signed(path, {**params, "Body": "changed", "MessageStatus": "failed"},
                              headers={"X-Twilio-Signature": app.fake.sign(
                                  f"{PUBLIC_URL}{path}", params)}),
    ]  # fmt: skip
    assert [r.status_code for r in attempts] == [403] * len(attempts)
    assert attempts[0].json()["error"]["code"] == "bad_signature"
    assert (await app.row_for(req.sid))["status"] == "sent"
    optouts = await app.store.run(lambda tx: tx.execute("SELECT phone FROM sms_optouts"))
    assert optouts == []


async def test_forwarded_proto_and_host_are_honoured(app: App) -> None:
    await app.issue(PHONE)
    req, _ = await sent_message(app, PHONE)
    assert req.sid is not None
    params = app.fake.status_params(req.sid, "delivered")
    public = "https://public.example/sms/status"
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "public.example"}
    r = await app.post_signed("/sms/status", params, url=public)  # no forwarded headers
    assert r.status_code == 403
    r = await app.post_signed("/sms/status", params, url=public, headers=forwarded)
    assert r.status_code == 204, r.text
    assert (await app.row_for(req.sid))["status"] == "delivered"


async def test_callback_that_beats_the_create_response_is_not_lost(app: App) -> None:
    async def deliver_at_once(message: dict[str, Any]) -> None:
        sid = message["sid"]
        assert await outbox(app.store, "provider_id=?", (sid,)) == []  # not recorded yet
        r = await app.post_signed("/sms/status", app.fake.status_params(sid, "delivered"))
        assert r.status_code == 204

    app.fake.on_create = deliver_at_once
    await app.issue(PHONE)
    [req] = await eventually(lambda: [c for c in app.fake.creates if c.form["To"] == PHONE])
    assert req.sid is not None
    # Never 'sent' first: the kept callback is applied in the same transaction as the send.
    row = await eventually(lambda: _settled(app, req.sid, "delivered"))  # type: ignore[arg-type]
    assert row["template"] == "issued"
    early = await app.store.run(lambda tx: tx.execute("SELECT * FROM sms_early_status"))
    assert early == []


# --- inbound replies ----------------------------------------------------------------


async def test_ticket_number_from_its_own_phone_gets_its_status(app: App) -> None:
    await app.issue("+8613700000001")
    await app.issue("+8613700000002")
    mine = await app.issue(PHONE)
    r = await app.inbound(PHONE, mine["number"].lower())
    assert "<Response><Message>" in r.text
    assert f"号票{mine['number']}" in r.text and "前面还有2人" in r.text, r.text
    assert "2 ahead" in r.text


async def test_ticket_number_from_another_phone_reveals_nothing(app: App) -> None:
    mine = await app.issue(PHONE)
    r = await app.inbound(OTHER, mine["number"])
    assert f"未找到您名下的号票{mine['number']}" in r.text
    assert "前面" not in r.text and "等候" not in r.text and "ahead" not in r.text
    r = await app.inbound(OTHER, "Z999")
    assert "未找到您名下的号票Z999" in r.text


async def test_anything_else_gets_help(app: App) -> None:
    r = await app.inbound(PHONE, "你好，请问几点下班？")
    assert "回复号票号码" in r.text and "TD" in r.text


@pytest.mark.parametrize(("stop", "start"), [("TD", "START"), ("退订", "订阅"), ("STOP", "start")])
async def test_opt_out_silences_the_phone_until_start(app: App, stop: str, start: str) -> None:
    r = await app.inbound(PHONE, stop)
    assert "您已退订" in r.text
    assert await app.store.run(lambda tx: tx.execute("SELECT phone FROM sms_optouts")) == [(PHONE,)]
    first = await app.issue(PHONE)
    rows = await eventually(lambda: _rows_for(app, PHONE, 1))
    assert rows[0]["status"] == "opted_out" and rows[0]["template"] == "issued"
    await app.issue(OTHER)  # a later message to someone else goes out …
    await sent_message(app, OTHER)
    assert app.fake.sent_to(PHONE) == []  # … and nothing went to the opted-out phone

    r = await app.inbound(PHONE, start)
    assert "您已恢复接收" in r.text
    second = await app.issue(PHONE)
    req, row = await sent_message(app, PHONE)
    assert second["number"] in req.form["Body"] and first["number"] not in req.form["Body"]
    assert row["template"] == "issued"


async def _rows_for(app: App, phone: str, n: int) -> list[dict[str, Any]] | None:
    rows = await outbox(app.store, "phone=? AND template='issued'", (phone,))
    return rows if len(rows) >= n else None


async def test_api_refuses_an_invalid_phone(app: App) -> None:
    r = await app.client.post(
        f"/api/halls/{HALL}/tickets",
        json={"service": "social_insurance", "phone": "12345", "sms_consent": True},
        headers={"Authorization": f"Bearer {KIOSK}"},
    )
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "invalid_phone"
    waiting = await app.store.run(lambda tx: tx.execute("SELECT COUNT(*) FROM tickets"))
    assert waiting == [(0,)]


# --- the same logic below the routes (runs today, whatever the routing bug) ----------


def test_fake_server_signs_like_twilio() -> None:
    """The known-answer vector from twilio-python's own validator tests."""
    fake = FakeTwilio(auth_token="12345")
    params = {"CallSid": "CA1234567890ABCDE", "Digits": "1234", "From": "+14158675309",
              "To": "+18005551212", "Caller": "+14158675309"}  # fmt: skip
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    assert fake.sign(url, params) == "RSOYDt4T1cUTdK1PDd93/VVr8B8="


async def test_status_is_recorded_and_never_moves_back(app: App) -> None:
    await app.issue(PHONE)
    req, _ = await sent_message(app, PHONE)
    sid = req.sid
    assert sid is not None
    steps = [("sending", None, "sent"), ("sent", None, "sent"), ("delivered", None, "delivered"),
             ("sent", None, "delivered"), ("queued", None, "delivered")]  # fmt: skip
    for state, code, expected in steps:
        await app.store.run(lambda tx, s=state, c=code: _record_status(tx, sid, s, c, START))
        assert (await app.row_for(sid))["status"] == expected, state
    await app.issue(OTHER)
    other, _ = await sent_message(app, OTHER)
    assert other.sid is not None
    await app.store.run(lambda tx: _record_status(tx, other.sid, "undelivered", "30003", START))
    row = await app.row_for(other.sid)
    assert (row["status"], row["error_code"]) == ("undelivered", "30003")


async def test_replies_below_the_route(app: App) -> None:
    ctx = app.app.state.ctx
    wiring = Wiring(clock=app.clock, store=app.store, engines={HALL: ctx.halls[HALL].engine})

    async def answer(phone: str, body: str) -> str:
        return await _answer(ctx.sms, wiring, app.fake.inbound_params(phone, body))

    await app.issue("+8613700000001")
    mine = await app.issue(PHONE)
    await sent_message(app, PHONE)  # sent before the opt-out below, or it would silence it
    status = await answer(PHONE, mine["number"])
    assert f"号票{mine['number']}" in status and "前面还有1人" in status
    assert "未找到" in await answer(OTHER, mine["number"])
    assert "回复号票号码" in await answer(PHONE, "hi")
    assert "您已退订" in await answer(PHONE, "退订")
    await app.issue(PHONE)
    rows = await eventually(lambda: _rows_for(app, PHONE, 2))
    assert [r["status"] for r in rows][-1] == "opted_out"
    assert "您已恢复接收" in await answer(PHONE, "订阅")
    await app.issue(PHONE)
    await eventually(lambda: len(app.fake.sent_to(PHONE)) == 2)
    assert len(app.fake.sent_to(PHONE)) == 2  # the first issue and the last; not the silenced one
    inbound = await app.store.run(lambda tx: tx.execute("SELECT COUNT(*) FROM sms_inbound"))
    assert inbound == [(5,)]
