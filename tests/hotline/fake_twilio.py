"""A Twilio-shaped HTTP server on 127.0.0.1 for the hotline's REST side (voice calls).

The same pattern as tests/sms/fake_twilio.py (aiohttp, HTTP basic auth, Twilio's JSON
shapes, every request recorded), extended with the Calls resource the connector uses:

* ``POST /2010-04-01/Accounts/{sid}/Calls.json`` creates an outbound call (To, From,
  Url, StatusCallback, StatusCallbackEvent …) and answers 201 with a Call resource
  whose sid is ``CA`` + 32 hex digits;
* ``POST /2010-04-01/Accounts/{sid}/Calls/{CallSid}.json`` updates a live call (Url and
  Method redirect it, Status=completed ends it) and answers 200 with the Call;
* ``GET /2010-04-01/Accounts/{sid}/Calls/{CallSid}.json`` fetches a call; its status is
  programmable with ``set_status`` (the reconciler asks this when webhooks went quiet).

``Messages.json`` (create) is kept so the app's SMS dispatcher can send through it.
Known calls can be registered with ``add_call`` (an inbound call the "network" took);
updating or fetching an unknown call answers 404 with Twilio's error 20404 (or, for a fetch,
a call in ``unknown_status`` when that is set).
"""

from __future__ import annotations

import asyncio
import base64
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from aiohttp import web
from twilio.request_validator import RequestValidator

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "fake-hotline-auth-token-0123456789"
API = "/2010-04-01"


@dataclass
class Recorded:
    """One request the server received."""

    method: str
    path: str
    form: dict[str, str]
    multi: dict[str, list[str]]  # repeated keys (StatusCallbackEvent) keep every value
    auth_ok: bool
    mono: float
    answered: int | None = None
    sid: str | None = None


@dataclass
class Fail:
    """A scripted error answer: HTTP ``status`` with Twilio error ``code``."""

    status: int
    code: int
    message: str = "error"


@dataclass
class FakeTwilio:
    """The server; use as an async context manager."""

    account_sid: str = ACCOUNT_SID
    auth_token: str = AUTH_TOKEN
    requests: list[Recorded] = field(default_factory=list)
    calls: dict[str, dict[str, Any]] = field(default_factory=dict)
    messages: list[dict[str, Any]] = field(default_factory=list)
    create_script: deque[Fail | None] = field(default_factory=deque)
    unknown_status: str | None = None  # set: a fetch of an unknown call reports this (benches)
    port: int = 0

    def __post_init__(self) -> None:
        self._runner: web.AppRunner | None = None
        self.validator = RequestValidator(self.auth_token)

    async def __aenter__(self) -> FakeTwilio:
        app = web.Application()
        base = API + "/Accounts/{sid}"
        app.router.add_post(base + "/Messages.json", self._message_create)
        app.router.add_post(base + "/Calls.json", self._call_create)
        app.router.add_post(base + "/Calls/{call}.json", self._call_update)
        app.router.add_get(base + "/Calls/{call}.json", self._call_fetch)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def base_url(self) -> str:
        """What ``[sms.twilio] base_url`` should say."""
        return f"http://127.0.0.1:{self.port}"

    # --- the script and the state of the "network" ---------------------------------------

    def add_call(self, sid: str, frm: str, to: str, status: str = "in-progress") -> None:
        """A call Twilio knows about (an inbound call that reached our webhooks)."""
        self.calls[sid] = self._call(sid, frm, to, status, "inbound")

    def set_status(self, sid: str, status: str) -> None:
        """What a later fetch of ``sid`` reports (completed, no-answer …)."""
        self.calls.setdefault(sid, self._call(sid, "", "", status, "inbound"))["status"] = status

    def fail_next_create(self, *fails: Fail | None) -> None:
        """Answer the next call creations with these errors (None: succeed)."""
        self.create_script.extend(fails)

    # --- what happened ------------------------------------------------------------------

    def of(self, method: str, suffix: str = "") -> list[Recorded]:
        """Recorded requests of one method whose path ends with ``suffix``."""
        return [r for r in self.requests if r.method == method and r.path.endswith(suffix)]

    @property
    def call_creates(self) -> list[Recorded]:
        return [r for r in self.of("POST") if r.path.endswith("/Calls.json")]

    @property
    def call_updates(self) -> list[Recorded]:
        return [r for r in self.of("POST") if "/Calls/" in r.path]

    @property
    def call_fetches(self) -> list[Recorded]:
        return [r for r in self.of("GET") if "/Calls/" in r.path]

    async def wait_for(self, what: str, n: int = 1, timeout: float = 5.0) -> list[Recorded]:
        """Wait until ``n`` requests of a kind (call_creates, call_updates …) have arrived."""
        async with asyncio.timeout(timeout):
            while len(found := getattr(self, what)) < n:
                await asyncio.sleep(0.005)
        return found

    # --- handlers -------------------------------------------------------------------------

    def _auth_ok(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return False
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        return user == self.account_sid == request.match_info["sid"] and password == self.auth_token

    async def _record(self, request: web.Request) -> Recorded:
        post = await request.post()
        multi: dict[str, list[str]] = {}
        for k, v in post.items():
            multi.setdefault(k, []).append(str(v))
        rec = Recorded(request.method, request.path, {k: v[-1] for k, v in multi.items()},
                       multi, self._auth_ok(request), time.monotonic())  # fmt: skip
        self.requests.append(rec)
        return rec

    def _error(self, rec: Recorded, status: int, code: int, message: str) -> web.Response:
        rec.answered = status
        body = {"code": code, "message": message, "status": status,
                "more_info": f"https://www.twilio.com/docs/errors/{code}"}  # fmt: skip
        return web.json_response(body, status=status)

    async def _message_create(self, request: web.Request) -> web.Response:
        rec = await self._record(request)
        if not rec.auth_ok:
            return self._error(rec, 401, 20003, "Authenticate")
        sid = "SM" + uuid.uuid4().hex
        stamp = _rfc2822(time.time())
        message = {
            "account_sid": self.account_sid, "api_version": "2010-04-01",
            "body": rec.form.get("Body", ""), "date_created": stamp, "date_updated": stamp,
            "date_sent": stamp, "direction": "outbound-api", "error_code": None,
            "error_message": None, "from": rec.form.get("From"),
            "messaging_service_sid": rec.form.get("MessagingServiceSid"), "num_media": "0",
            "num_segments": "1", "price": None, "price_unit": "USD", "sid": sid,
            "status": "queued", "to": rec.form.get("To"),
            "uri": f"{API}/Accounts/{self.account_sid}/Messages/{sid}.json",
        }  # fmt: skip
        self.messages.append(message)
        rec.sid, rec.answered = sid, 201
        return web.json_response(message, status=201)

    async def _call_create(self, request: web.Request) -> web.Response:
        rec = await self._record(request)
        if not rec.auth_ok:
            return self._error(rec, 401, 20003, "Authenticate")
        fail = self.create_script.popleft() if self.create_script else None
        if fail is not None:
            return self._error(rec, fail.status, fail.code, fail.message)
        missing = [k for k in ("To", "From") if not rec.form.get(k)]
        if not (rec.form.get("Url") or rec.form.get("Twiml") or rec.form.get("ApplicationSid")):
            missing.append("Url")
        if missing:
            return self._error(rec, 400, 21205, f"A '{missing[0]}' parameter is required.")
        sid = "CA" + uuid.uuid4().hex
        call = self._call(sid, rec.form["From"], rec.form["To"], "queued", "outbound-api")
        call["_url"] = rec.form.get("Url")
        call["_status_callback"] = rec.form.get("StatusCallback")
        self.calls[sid] = call
        rec.sid, rec.answered = sid, 201
        return web.json_response(_public(call), status=201)

    async def _call_update(self, request: web.Request) -> web.Response:
        rec = await self._record(request)
        if not rec.auth_ok:
            return self._error(rec, 401, 20003, "Authenticate")
        sid = request.match_info["call"]
        rec.sid = sid
        call = self.calls.get(sid)
        if call is None:
            return self._error(
                rec, 404, 20404, f"The requested resource {request.path} was not found"
            )
        if call["status"] in ("completed", "busy", "failed", "no-answer", "canceled"):
            return self._error(rec, 400, 21220, "Call is not in-progress. Cannot redirect.")
        if rec.form.get("Url"):
            call["_url"] = rec.form["Url"]
        if rec.form.get("Status") in ("completed", "canceled"):
            call["status"] = rec.form["Status"]
        call["date_updated"] = _rfc2822(time.time())
        rec.answered = 200
        return web.json_response(_public(call), status=200)

    async def _call_fetch(self, request: web.Request) -> web.Response:
        rec = await self._record(request)
        if not rec.auth_ok:
            return self._error(rec, 401, 20003, "Authenticate")
        sid = request.match_info["call"]
        rec.sid = sid
        call = self.calls.get(sid)
        if call is None and self.unknown_status is not None:
            call = self._call(sid, "", "", self.unknown_status, "inbound")
        if call is None:
            return self._error(
                rec, 404, 20404, f"The requested resource {request.path} was not found"
            )
        rec.answered = 200
        return web.json_response(_public(call), status=200)

    def _call(self, sid: str, frm: str, to: str, status: str, direction: str) -> dict[str, Any]:
        stamp = _rfc2822(time.time())
        return {
            "sid": sid, "account_sid": self.account_sid, "api_version": "2010-04-01",
            "annotation": None, "answered_by": None, "caller_name": None,
            "date_created": stamp, "date_updated": stamp, "direction": direction,
            "duration": None, "end_time": None, "forwarded_from": None, "from": frm,
            "from_formatted": frm, "group_sid": None, "parent_call_sid": None,
            "phone_number_sid": None, "price": None, "price_unit": "USD", "queue_time": "0",
            "start_time": None, "status": status, "to": to, "to_formatted": to,
            "trunk_sid": None, "uri": f"{API}/Accounts/{self.account_sid}/Calls/{sid}.json",
            "subresource_uris": {},
        }  # fmt: skip

    # --- signing webhooks the way Twilio does -----------------------------------------------

    def sign(self, url: str, params: dict[str, str], token: str | None = None) -> str:
        """The X-Twilio-Signature Twilio would send for ``params`` posted to ``url``."""
        return RequestValidator(token or self.auth_token).compute_signature(url, params)


def _public(call: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in call.items() if not k.startswith("_")}


def _rfc2822(ts: float) -> str:
    return format_datetime(datetime.fromtimestamp(ts, UTC))
