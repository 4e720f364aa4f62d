"""The SSE feed, read through a real uvicorn server on a loopback port.

httpx.ASGITransport collects the whole body before it returns, so an endless
``text/event-stream`` response is read from a uvicorn.Server running in a task of
the test's own event loop; every read has a deadline so a stalled stream fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn
from cc_support import DISPLAY, HALL, KIOSK, PASSWORD, START, SUPERVISOR, Api, bearer

from callcenter.app import create_app
from callcenter.auth import Principal
from callcenter.settings import Settings
from queue_engine import FakeClock

FEED = f"/api/halls/{HALL}/feed"
READ_S = 5.0


@dataclass
class Live:
    """A uvicorn server running the app, and a client pointed at it."""

    server: uvicorn.Server
    client: httpx.AsyncClient
    clock: FakeClock

    async def login(self, vn: str) -> dict[str, str]:
        r = await self.client.post(
            "/api/auth/login", json={"virtual_number": vn, "password": PASSWORD}
        )
        assert r.status_code == 200, r.text
        return bearer(r.json()["token"])

    async def issue(self, **body: Any) -> dict[str, Any]:
        body.setdefault("service", "social_insurance")
        r = await self.client.post(f"/api/halls/{HALL}/tickets", json=body, headers=bearer(KIOSK))
        assert r.status_code == 201, r.text
        return r.json()

    async def act(self, vn: str, action: str, headers: dict[str, str], **body: Any) -> Any:
        r = await self.client.post(
            f"/api/halls/{HALL}/workstations/{vn}/{action}", json=body or None, headers=headers
        )
        assert r.status_code == 200, r.text
        return r.json()


class Stream:
    """Parses one ``text/event-stream`` response into messages.

    A pump task reads the body into a queue, so a read that times out (``nothing_within``)
    cancels only the wait on the queue, never the response's own iterator.
    """

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._queue: asyncio.Queue[dict[str, str] | None] = asyncio.Queue()
        self._pump = asyncio.create_task(self._read())

    async def _read(self) -> None:
        fields: dict[str, str] = {}
        try:
            async for line in self.response.aiter_lines():
                if line == "":
                    if fields:
                        self._queue.put_nowait(fields)
                    fields = {}
                elif not line.startswith(":"):
                    name, _, value = line.partition(":")
                    fields[name] = value.removeprefix(" ")
        finally:
            self._queue.put_nowait(None)

    async def close(self) -> None:
        self._pump.cancel()
        with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
            await self._pump

    async def message(self, timeout: float = READ_S) -> dict[str, str]:
        """The next message (comments and heartbeats are skipped)."""
        async with asyncio.timeout(timeout):
            msg = await self._queue.get()
        if msg is None:
            raise AssertionError("the stream ended")
        return msg

    async def event(self, timeout: float = READ_S) -> dict[str, Any]:
        """The next event as {id, event, data (parsed JSON)}."""
        msg = await self.message(timeout)
        while "id" not in msg:
            msg = await self.message(timeout)
        return {"id": int(msg["id"]), "event": msg["event"], "data": json.loads(msg["data"])}

    async def events(self, n: int) -> list[dict[str, Any]]:
        return [await self.event() for _ in range(n)]

    async def nothing_within(self, seconds: float) -> None:
        """Assert no message arrives within ``seconds``."""
        try:
            msg = await self.message(seconds)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected message {msg}")


@contextlib.asynccontextmanager
async def feed(
    live: Live, headers: dict[str, str] | None = None, params: dict[str, str] | None = None
) -> AsyncIterator[Stream]:
    """Open the feed and yield its parsed stream (the response is on ``stream.response``)."""
    async with live.client.stream("GET", FEED, headers=headers, params=params) as r:
        stream = Stream(r)
        try:
            yield stream
        finally:
            await stream.close()


@pytest.fixture(params=["h11", "httptools"])
async def live(
    settings: Settings, fake_clock: FakeClock, request: pytest.FixtureRequest
) -> AsyncIterator[Live]:
    """The app under uvicorn; with httptools the hub writes chunks to the socket itself."""
    app = create_app(settings, clock=fake_clock, tick_s=3600)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, lifespan="on", log_level="warning", ws="none", http=request.param,
        timeout_graceful_shutdown=2,
    )  # fmt: skip
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(10):
            while not server.started:
                assert not task.done(), "uvicorn stopped while starting"
                await asyncio.sleep(0.01)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            yield Live(server, client, fake_clock)
    finally:
        server.should_exit = True
        async with asyncio.timeout(10):
            await task
        sock.close()


# --- the HTTP route ---------------------------------------------------------------------


async def test_feed_needs_a_token(api: Api) -> None:
    r = await api.client.get(FEED)
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "unauthorized"
    assert r.json()["error"]["message_en"] == "Sign in first: no token was given."


async def test_feed_with_a_bad_token_is_401(api: Api) -> None:
    r = await api.client.get(FEED, params={"token": "not-a-token"})
    assert r.status_code == 401
    assert r.json()["error"]["details"] == {"reason": "the token is not valid"}


async def test_feed_of_an_unknown_hall_is_404(api: Api) -> None:
    r = await api.client.get("/api/halls/nowhere/feed", headers=bearer(DISPLAY))
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "unknown_hall"


async def test_display_token_opens_the_feed_with_sse_headers(live: Live) -> None:
    async with feed(live, params={"token": DISPLAY}) as stream:
        r = stream.response
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        assert r.headers["cache-control"] == "no-cache"
        assert r.headers["x-accel-buffering"] == "no"
        assert await stream.message() == {"retry": "1000"}


async def test_feed_with_another_halls_session_is_403(live: Live) -> None:
    authority = live.server.config.app.state.ctx.authority
    other = authority.sign(Principal("W0900", "supervisor", "elsewhere", START + 3600))
    r = await live.client.get(FEED, headers=bearer(other))
    assert r.status_code == 403
    assert r.json()["error"]["details"] == {"reason": "this token belongs to another hall"}


async def test_events_arrive_in_order_with_consecutive_ids(live: Live) -> None:
    w1 = await live.login("W0001")
    async with feed(live, bearer(DISPLAY)) as stream:
        assert stream.response.status_code == 200
        assert await stream.message() == {"retry": "1000"}
        t1 = await live.issue(phone="13812345678", sms_consent=True)
        t2 = await live.issue()
        await live.act("W0001", "sign-in", w1, window="1")
        await live.act("W0001", "call-next", w1)
        events = await stream.events(4)
        await stream.nothing_within(0.2)
    assert [e["event"] for e in events] == [
        "ticket.issued", "ticket.issued", "workstation.signed_in", "ticket.called",
    ]  # fmt: skip
    assert [e["id"] for e in events] == [1, 2, 3, 4]
    assert [e["data"]["id"] for e in events] == [1, 2, 3, 4]
    assert events[0]["data"]["ticket"]["number"] == t1["number"] == "C001"
    assert events[1]["data"]["ticket"]["number"] == t2["number"] == "C002"
    assert events[2]["data"]["workstation"]["window"] == "1"
    called = events[3]["data"]
    assert called["ticket"]["number"] == "C001"
    assert called["ticket"]["state"] == "called"
    assert called["window"] == "1"
    assert called["virtual_number"] == "W0001"
    assert called["recall"] == 0
    assert called["hall"] == HALL


async def test_public_event_has_no_phone_or_token(live: Live) -> None:
    async with feed(live, bearer(DISPLAY)) as stream:
        await stream.message()
        ticket = await live.issue(phone="+86 138-1234-5678", sms_consent=True)
        raw = await stream.message()
    data = raw["data"]
    assert "13812345678" not in data
    assert "5678" not in data
    assert "+86" not in data
    assert ticket["token"] not in data
    parsed = json.loads(data)
    assert "phone" not in parsed["ticket"]
    assert "token" not in parsed["ticket"]
    assert parsed["ticket"]["number"] == "C001"


async def test_reconnect_with_last_event_id_gets_exactly_the_missed_events(live: Live) -> None:
    w1 = await live.login("W0001")
    async with feed(live, bearer(DISPLAY)) as stream:
        await stream.message()
        await live.issue()
        await live.act("W0001", "sign-in", w1, window="1")
        seen = await stream.events(2)
    assert [e["id"] for e in seen] == [1, 2]
    # While disconnected: call, recall, start.
    await live.act("W0001", "call-next", w1)
    await live.act("W0001", "recall", w1)
    await live.act("W0001", "start", w1)
    async with feed(live, {**bearer(DISPLAY), "Last-Event-ID": "2"}) as stream:
        assert stream.response.status_code == 200
        assert await stream.message() == {"retry": "1000"}
        missed = await stream.events(3)
        assert [(e["id"], e["event"]) for e in missed] == [
            (3, "ticket.called"), (4, "ticket.recalled"), (5, "ticket.started"),
        ]  # fmt: skip
        assert missed[1]["data"]["recall"] == 1
        await stream.nothing_within(0.3)  # nothing replayed twice
        await live.act("W0001", "complete", w1)
        after = await stream.event()
        assert (after["id"], after["event"]) == (6, "ticket.completed")
        await stream.nothing_within(0.3)


async def test_last_id_query_parameter_resumes_too(live: Live) -> None:
    for _ in range(3):
        await live.issue()
    async with feed(live, params={"token": DISPLAY, "last_id": "1"}) as stream:
        events = await stream.events(2)
        assert [e["id"] for e in events] == [2, 3]
        assert [e["data"]["ticket"]["number"] for e in events] == ["C002", "C003"]
        await stream.nothing_within(0.3)


async def test_without_last_event_id_only_new_events_are_sent(live: Live) -> None:
    await live.issue()
    await live.issue()
    async with feed(live, bearer(KIOSK)) as stream:
        assert await stream.message() == {"retry": "1000"}
        await stream.nothing_within(0.3)
        await live.issue()
        event = await stream.event()
        assert (event["id"], event["data"]["ticket"]["number"]) == (3, "C003")


async def test_two_clients_each_get_every_event_once(live: Live) -> None:
    async with feed(live, bearer(DISPLAY)) as a, feed(live, bearer(KIOSK)) as b:
        await a.message()
        await b.message()
        for _ in range(3):
            await live.issue()
        assert [e["id"] for e in await a.events(3)] == [1, 2, 3]
        assert [e["id"] for e in await b.events(3)] == [1, 2, 3]
        await a.nothing_within(0.2)
        await b.nothing_within(0.05)


async def test_supervisor_session_token_opens_the_feed(live: Live) -> None:
    sup = await live.login(SUPERVISOR)
    async with feed(live, sup) as stream:
        assert stream.response.status_code == 200
        await live.issue()
        event = await stream.event()
        assert event["event"] == "ticket.issued"


async def test_non_ascii_digit_last_event_id_is_not_a_server_error(live: Live) -> None:
    async with feed(live, params={"token": DISPLAY, "last_id": "²"}) as stream:
        assert stream.response.status_code == 200
        await live.issue()
        assert (await stream.event())["id"] == 1


async def test_huge_last_event_id_does_not_kill_the_stream(live: Live) -> None:
    async with feed(live, {**bearer(DISPLAY), "Last-Event-ID": str(2**64)}) as stream:
        assert stream.response.status_code == 200
        assert await stream.message() == {"retry": "1000"}
        await live.issue()
        assert (await stream.event())["id"] == 1


async def test_last_event_id_beyond_the_log_still_gets_new_events(live: Live) -> None:
    async with feed(live, {**bearer(DISPLAY), "Last-Event-ID": "1000"}) as stream:
        assert stream.response.status_code == 200
        await live.issue()
        assert (await stream.event(timeout=1.0))["id"] == 1
