"""A Twilio-shaped HTTP server on 127.0.0.1 for the real twilio library to talk to.

It implements just what the SMS provider uses of the 2010-04-01 REST API:

* ``POST /2010-04-01/Accounts/{sid}/Messages.json`` creates a message (form-encoded
  To, From or MessagingServiceSid, Body, StatusCallback; HTTP basic auth) and answers
  201 with a Message resource shaped like Twilio's;
* ``GET /2010-04-01/Accounts/{sid}/Messages.json`` lists messages filtered by ``To``
  and ``DateSent>`` in Twilio's paging envelope.

Every request is recorded (with its arrival time on both the monotonic and the wall
clock). Answers follow a script of ``Reply`` objects, one popped per create request
(or per list request for ``list_script``); with the script empty a create succeeds.
A reply can fail (429, 5xx, 21211, 21610 …), wait before answering, or hold the
request until the test releases it (a dispatcher "crashes" mid-send meanwhile).

The server also signs status callbacks and inbound messages the way Twilio does
(``X-Twilio-Signature``: HMAC-SHA1 over the URL and the sorted POST parameters).

    async with FakeTwilio(clock=clock.now) as fake:
        config = TwilioConfig(fake.account_sid, fake.auth_token, "+15005550006",
                              base_url=fake.base_url)
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from aiohttp import web
from twilio.request_validator import RequestValidator

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "fake-twilio-auth-token-0123456789"
API = "/2010-04-01"


@dataclass
class Reply:
    """One scripted answer to a request.

    ``status`` 2xx creates the message (unless ``create`` is False); any other status
    answers Twilio's error JSON with ``code``. ``create`` forces whether the message
    exists at the provider whatever the answer (a timed-out request that Twilio did
    take). ``delay_s`` waits before answering; ``hold`` waits until ``release()``.
    """

    status: int = 201
    code: int | None = None
    message: str = ""
    delay_s: float = 0.0
    hold: bool = False
    create: bool | None = None

    @classmethod
    def error(cls, status: int, code: int, message: str, **kw: Any) -> Reply:
        return cls(status=status, code=code, message=message, **kw)


TOO_MANY = Reply.error(429, 20429, "Too Many Requests")
SERVER_ERROR = Reply.error(503, 20503, "Service Unavailable")
INVALID_TO = Reply.error(400, 21211, "The 'To' number is not a valid phone number.")
OPTED_OUT = Reply.error(400, 21610, "Attempt to send to unsubscribed recipient")


@dataclass
class Recorded:
    """One request the server received."""

    method: str
    path: str
    query: dict[str, str]
    form: dict[str, str]
    auth_ok: bool
    mono: float  # time.monotonic() on arrival
    wall: float  # time.time() on arrival
    answered: int | None = None
    sid: str | None = None


@dataclass
class FakeTwilio:
    """The server; use as an async context manager."""

    account_sid: str = ACCOUNT_SID
    auth_token: str = AUTH_TOKEN
    clock: Callable[[], float] = time.time  # the provider's clock (date_created, DateSent>)
    date_sent_on_create: bool = True  # False: messages stay 'queued' with no date_sent
    on_create: Callable[[dict[str, Any]], Awaitable[None]] | None = None
    requests: list[Recorded] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    script: deque[Reply] = field(default_factory=deque)
    list_script: deque[Reply] = field(default_factory=deque)
    by_phone: dict[str, deque[Reply]] = field(default_factory=dict)
    port: int = 0

    def __post_init__(self) -> None:
        self._runner: web.AppRunner | None = None
        self._release = asyncio.Event()
        self.received = asyncio.Event()  # set on every create request's arrival
        self.validator = RequestValidator(self.auth_token)

    # --- life -----------------------------------------------------------------

    async def __aenter__(self) -> FakeTwilio:
        app = web.Application()
        app.router.add_post(API + "/Accounts/{sid}/Messages.json", self._create)
        app.router.add_get(API + "/Accounts/{sid}/Messages.json", self._list)
        app.router.add_get("/_fake/requests", self._dump)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.release()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def base_url(self) -> str:
        """What ``[sms.twilio] base_url`` should say."""
        return f"http://127.0.0.1:{self.port}"

    # --- the script -----------------------------------------------------------

    def answer(self, *replies: Reply) -> None:
        """Queue answers for the next create requests, in order."""
        self.script.extend(replies)

    def answer_to(self, phone: str, *replies: Reply) -> None:
        """Queue answers for the next create requests to ``phone`` (before the general script)."""
        self.by_phone.setdefault(phone, deque()).extend(replies)

    def release(self) -> None:
        """Let every held request answer."""
        self._release.set()

    # --- what happened --------------------------------------------------------

    @property
    def creates(self) -> list[Recorded]:
        """Every create request, whatever its answer."""
        return [r for r in self.requests if r.method == "POST"]

    @property
    def lists(self) -> list[Recorded]:
        return [r for r in self.requests if r.method == "GET"]

    def sent_to(self, phone: str) -> list[str]:
        """Bodies of the messages created for ``phone``, in creation order."""
        return [m["body"] for m in self.messages if m["to"] == phone]

    async def wait_for_creates(self, n: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Wait until ``n`` messages exist at the provider."""
        async with asyncio.timeout(timeout):
            while len(self.messages) < n:
                await asyncio.sleep(0.005)
        return self.messages

    # --- handlers -------------------------------------------------------------

    def _auth_ok(self, request: web.Request, sid: str) -> bool:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return False
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        return user == self.account_sid == sid and password == self.auth_token

    async def _record(self, request: web.Request) -> Recorded:
        form = {k: str(v) for k, v in (await request.post()).items()}
        rec = Recorded(
            request.method, request.path, dict(request.query), form,
            self._auth_ok(request, request.match_info["sid"]), time.monotonic(), time.time(),
        )  # fmt: skip
        self.requests.append(rec)
        return rec

    async def _create(self, request: web.Request) -> web.Response:
        rec = await self._record(request)
        if not rec.auth_ok:
            return self._error(rec, Reply.error(401, 20003, "Authenticate"))
        mine = self.by_phone.get(rec.form.get("To", "")) or self.script
        reply = mine.popleft() if mine else Reply()
        missing = [k for k in ("To", "Body") if not rec.form.get(k)]
        if not (rec.form.get("From") or rec.form.get("MessagingServiceSid")):
            missing.append("From")
        if missing and reply.status < 300:
            reply = Reply.error(400, 21604, f"A '{missing[0]}' parameter is required.")
        create = reply.create if reply.create is not None else reply.status < 300
        message = self._message(rec.form) if create else None
        if message is not None:
            rec.sid = message["sid"]
            self.messages.append(message)
            if self.on_create is not None:
                await self.on_create(message)
        self.received.set()
        if reply.delay_s:
            await asyncio.sleep(reply.delay_s)
        if reply.hold:
            await self._release.wait()
        if reply.status >= 300:
            return self._error(rec, reply)
        assert message is not None
        rec.answered = 201
        return web.json_response(message, status=201)

    async def _list(self, request: web.Request) -> web.Response:
        rec = await self._record(request)
        if not rec.auth_ok:
            return self._error(rec, Reply.error(401, 20003, "Authenticate"))
        reply = self.list_script.popleft() if self.list_script else Reply(status=200)
        if reply.delay_s:
            await asyncio.sleep(reply.delay_s)
        if reply.status >= 300:
            return self._error(rec, reply)
        to = request.query.get("To")
        after = request.query.get("DateSent>")
        since = _parse_iso(after) if after else None
        found = [
            m for m in reversed(self.messages)  # Twilio lists newest first
            if (to is None or m["to"] == to)
            and (since is None or (m["_sent_ts"] is not None and m["_sent_ts"] >= since))
        ]  # fmt: skip
        size = int(request.query.get("PageSize", "50"))
        uri = f"{API}/Accounts/{self.account_sid}/Messages.json?PageSize={size}&Page=0"
        rec.answered = 200
        return web.json_response({
            "messages": [_public(m) for m in found[:size]],
            "end": max(0, min(size, len(found)) - 1), "first_page_uri": uri,
            "next_page_uri": None, "page": 0, "page_size": size,
            "previous_page_uri": None, "start": 0, "uri": uri,
        })  # fmt: skip

    async def _dump(self, request: web.Request) -> web.Response:
        """What was received, for a client in another process (bench/sms.py)."""
        return web.json_response([
            {"method": r.method, "to": r.form.get("To"), "sid": r.sid, "mono": r.mono,
             "wall": r.wall, "answered": r.answered}
            for r in self.requests
        ])  # fmt: skip

    def _error(self, rec: Recorded, reply: Reply) -> web.Response:
        rec.answered = reply.status
        body = {
            "code": reply.code or reply.status,
            "message": reply.message,
            "more_info": f"https://www.twilio.com/docs/errors/{reply.code}",
            "status": reply.status,
        }
        return web.json_response(body, status=reply.status)

    def _message(self, form: dict[str, str]) -> dict[str, Any]:
        now = self.clock()
        sid = "SM" + uuid.uuid4().hex
        stamp = _rfc2822(now)
        return {
            "account_sid": self.account_sid, "api_version": "2010-04-01",
            "body": form.get("Body", ""), "date_created": stamp, "date_updated": stamp,
            "date_sent": stamp if self.date_sent_on_create else None,
            "direction": "outbound-api", "error_code": None, "error_message": None,
            "from": form.get("From"), "messaging_service_sid": form.get("MessagingServiceSid"),
            "num_media": "0", "num_segments": "1", "price": None, "price_unit": "USD",
            "sid": sid, "status": "queued", "to": form.get("To"),
            "uri": f"{API}/Accounts/{self.account_sid}/Messages/{sid}.json",
            "subresource_uris": {
                "media": f"{API}/Accounts/{self.account_sid}/Messages/{sid}/Media.json"},
            "_sent_ts": now if self.date_sent_on_create else None,
            "_status_callback": form.get("StatusCallback"),
        }  # fmt: skip

    # --- webhooks back to the app ---------------------------------------------

    def sign(self, url: str, params: dict[str, str], token: str | None = None) -> str:
        """The X-Twilio-Signature Twilio would send for ``params`` posted to ``url``."""
        return RequestValidator(token or self.auth_token).compute_signature(url, params)

    def status_params(self, sid: str, status: str, error_code: str | None = None) -> dict[str, str]:
        """The form of a delivery status callback for message ``sid``."""
        m = next((m for m in self.messages if m["sid"] == sid), None)
        params = {
            "AccountSid": self.account_sid, "ApiVersion": "2010-04-01", "MessageSid": sid,
            "SmsSid": sid, "MessageStatus": status, "SmsStatus": status,
            "To": (m or {}).get("to") or "", "From": (m or {}).get("from") or "",
        }  # fmt: skip
        if error_code is not None:
            params["ErrorCode"] = error_code
        return params

    def inbound_params(self, phone: str, body: str, to: str = "+15005550006") -> dict[str, str]:
        """The form of an incoming SMS from ``phone``."""
        sid = "SM" + uuid.uuid4().hex
        return {
            "AccountSid": self.account_sid, "ApiVersion": "2010-04-01", "MessageSid": sid,
            "SmsMessageSid": sid, "SmsSid": sid, "From": phone, "To": to, "Body": body,
            "NumMedia": "0", "NumSegments": "1", "SmsStatus": "received",
        }  # fmt: skip


def _public(message: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in message.items() if not k.startswith("_")}


def _rfc2822(ts: float) -> str:
    return format_datetime(datetime.fromtimestamp(ts, UTC))  # Thu, 30 Jul 2015 20:12:31 +0000


def _parse_iso(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


def json_body(rec: Recorded) -> str:
    """A recorded request as JSON (for failure messages)."""
    return json.dumps({"method": rec.method, "path": rec.path, "form": rec.form})


async def _serve_until_stdin_closes() -> None:
    """Run as a script: print the port, serve until stdin closes (bench/sms.py does this)."""
    import sys

    async with FakeTwilio() as fake:
        print(f"PORT {fake.port}", flush=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.read)


if __name__ == "__main__":
    asyncio.run(_serve_until_stdin_closes())
