"""The feed hub alone: batching, catch-up from the log, slow clients, the end of streams.

The hub is driven as an ASGI app with recording ``send``/``receive`` callables (the path
every server but uvicorn's httptools takes), and its direct-write path through a
transport double; tests/callcenter/test_feed.py runs both paths under real uvicorn.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from typing import Any

import pytest

from kiosk.feed import PING, FeedHub, _Client
from queue_engine import Event

HALL = "wuhou"


def ev(ident: int, hall: str = HALL) -> Event:
    return Event(id=ident, hall=hall, type="ticket.called", at=1.0, payload={})


class Log:
    """The event table as the hub's backlog reads it (500 at a time)."""

    def __init__(self, events: Sequence[Event] = ()) -> None:
        self.events = list(events)
        self.reads = 0

    async def __call__(self, after: int) -> list[Event]:
        self.reads += 1
        await asyncio.sleep(0)  # a real read yields to the loop: events may arrive meanwhile
        return [e for e in self.events if e.id > after][:500]


class Screen:
    """One ASGI feed client: records what the hub sends, disconnects on demand."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.gone = asyncio.Event()
        self.changed = asyncio.Event()

    async def receive(self) -> dict[str, Any]:
        await self.gone.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        self.messages.append(message)
        self.changed.set()

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.messages[1:])

    def ids(self) -> list[int]:
        return [int(i) for i in re.findall(rb"^id: (\d+)$", self.body, flags=re.M)]

    async def until(self, n: int) -> list[int]:
        async with asyncio.timeout(2):
            while len(self.ids()) < n:
                self.changed.clear()
                await self.changed.wait()
        return self.ids()


async def connect(hub: FeedHub, last_id: int) -> tuple[Screen, asyncio.Task[None]]:
    screen = Screen()
    task = asyncio.create_task(hub.serve(last_id, {"type": "http"}, screen.receive, screen.send))
    async with asyncio.timeout(2):
        while hub.clients == 0 or len(screen.messages) < 2:
            await asyncio.sleep(0)
    return screen, task


async def test_headers_say_event_stream_and_retry_comes_first() -> None:
    hub = FeedHub(HALL, Log(), gap_s=0)
    screen, task = await connect(hub, 0)
    start = screen.messages[0]
    assert start["status"] == 200
    assert (b"content-type", b"text/event-stream; charset=utf-8") in start["headers"]
    assert screen.body.startswith(b"retry: 1000\n\n")
    screen.gone.set()
    await task
    assert hub.clients == 0


async def test_a_reconnecting_client_reads_the_log_then_live_events_once_each() -> None:
    log = Log([ev(i) for i in range(1, 1201)])  # more than one backlog page
    hub = FeedHub(HALL, log, gap_s=0)
    screen, task = await connect(hub, 100)
    log.events += [ev(1201), ev(1202)]
    hub.publish([ev(1201), ev(1202)])  # committed while the backlog may still be read
    hub.publish([ev(1203)])
    assert await screen.until(1103) == list(range(101, 1204))
    assert log.reads >= 3
    screen.gone.set()
    await task


async def test_events_committed_in_one_turn_go_out_as_one_write() -> None:
    hub = FeedHub(HALL, Log(), gap_s=0)
    screen, task = await connect(hub, 0)
    before = len(screen.messages)
    hub.publish([ev(1)])
    hub.publish([ev(2), ev(3)])
    assert await screen.until(3) == [1, 2, 3]
    assert len(screen.messages) == before + 1
    screen.gone.set()
    await task


async def test_batches_wait_out_the_gap_after_a_send() -> None:
    hub = FeedHub(HALL, Log(), gap_s=0.05)
    screen, task = await connect(hub, 0)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    hub.publish([ev(1)])
    await screen.until(1)
    first = loop.time() - t0
    hub.publish([ev(2)])
    await screen.until(2)
    second = loop.time() - t0
    assert first < 0.04, "the first batch after a quiet spell goes at once"
    assert second >= 0.045, "the next waits out the gap"
    screen.gone.set()
    await task


async def test_other_halls_events_are_not_sent() -> None:
    hub = FeedHub(HALL, Log(), gap_s=0)
    screen, task = await connect(hub, 0)
    hub.publish([ev(1, hall="other")])
    hub.publish([ev(2)])
    assert await screen.until(1) == [2]
    screen.gone.set()
    await task


async def test_ping_is_a_comment_line() -> None:
    hub = FeedHub(HALL, Log(), gap_s=0)
    screen, task = await connect(hub, 0)
    hub.ping()
    async with asyncio.timeout(2):
        while PING not in screen.body:
            await asyncio.sleep(0)
    screen.gone.set()
    await task


async def test_close_ends_every_stream_with_the_final_chunk() -> None:
    hub = FeedHub(HALL, Log(), gap_s=10)
    screens = [await connect(hub, 0) for _ in range(3)]
    hub.publish([ev(1)])  # waiting out the gap when the process stops: sent, not lost
    hub.close()
    for screen, task in screens:
        async with asyncio.timeout(2):
            await task
        assert screen.ids() == [1]
        assert screen.messages[-1] == {
            "type": "http.response.body",
            "body": b"",
            "more_body": False,
        }
    assert hub.clients == 0


async def test_a_client_that_never_reads_is_dropped_not_waited_for() -> None:
    hub = FeedHub(HALL, Log(), gap_s=0)
    stuck, sent = asyncio.Event(), []

    async def blocked_send(message: dict[str, Any]) -> None:
        sent.append(message)
        if message.get("body", b"") not in (b"", b"retry: 1000\n\n"):
            await stuck.wait()  # the socket never drains

    never = asyncio.Event()

    async def receive() -> dict[str, Any]:
        await never.wait()
        return {"type": "http.disconnect"}

    slow = asyncio.create_task(hub.serve(0, {"type": "http"}, receive, blocked_send))
    fast, task = await connect(hub, 0)
    async with asyncio.timeout(2):
        while len(sent) < 2:  # headers and retry: now it reads the log, then waits
            await asyncio.sleep(0)
    for _ in range(5):
        await asyncio.sleep(0)
    for _ in range(1_005):  # pings go out at once, one write each; the healthy one reads
        hub.ping()
        await asyncio.sleep(0)
    assert hub.clients == 1, "the stuck client was dropped after 1,000 unsent writes"
    hub.publish([ev(1)])
    assert await fast.until(1) == [1]
    stuck.set()
    async with asyncio.timeout(2):
        await slow
    fast.gone.set()
    await task


class FakeTransport:
    def __init__(self, buffered: int = 0, closing: bool = False) -> None:
        self.writes: list[bytes] = []
        self.buffered, self.closing, self.aborted = buffered, closing, False

    def abort(self) -> None:
        self.aborted = True

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closing

    def get_write_buffer_size(self) -> int:
        return self.buffered


@pytest.mark.parametrize(
    ("transport", "kept"),
    [
        (FakeTransport(), True),
        (FakeTransport(buffered=2 << 20), False),
        (FakeTransport(closing=True), False),
    ],
    ids=["healthy", "megabytes-behind", "closing"],
)
async def test_direct_clients_get_the_frame_once_or_are_let_go(
    transport: FakeTransport, kept: bool
) -> None:
    client = _Client(0)
    client.held = None
    client.transport = transport  # type: ignore[assignment]
    assert client.take(((7, b"x"),), b"x", b"1\r\nx\r\n") is kept
    assert transport.writes == ([b"1\r\nx\r\n"] if kept else [])
    assert client.sent == (7 if kept else 0)
    assert transport.aborted == (transport.buffered > 0), "only a screen far behind is cut off"


async def test_the_fan_out_frames_each_batch_as_one_http_chunk() -> None:
    hub = FeedHub(HALL, Log(), gap_s=0)
    clients = []
    for _ in range(3):
        c = _Client(0)
        c.held, c.transport = None, FakeTransport()  # type: ignore[assignment]
        hub._clients.add(c)
        clients.append(c)
    hub.publish([ev(1), ev(2)])
    await asyncio.sleep(0.01)
    frames = {c.transport.writes[0] for c in clients}  # type: ignore[union-attr]
    assert len(frames) == 1
    frame = frames.pop()
    size, _, rest = frame.partition(b"\r\n")
    assert int(size, 16) == len(rest) - 2 and rest.endswith(b"\r\n")
    assert re.findall(rb"^id: (\d+)$", rest, flags=re.M) == [b"1", b"2"]


async def test_an_event_the_backlog_carried_is_not_sent_again_by_its_batch() -> None:
    """A screen connects while a committed event's batch waits out the gap."""
    hub = FeedHub(HALL, Log([ev(1), ev(2), ev(3)]), gap_s=0.05)
    hub.publish([ev(2)])  # goes at once (nobody listens), so the next batch waits
    await asyncio.sleep(0.001)
    hub.publish([ev(3)])
    screen, task = await connect(hub, 2)  # the log gives it 3 before the batch does
    await asyncio.sleep(0.1)
    hub.publish([ev(4)])
    assert await screen.until(2) == [3, 4]
    await asyncio.sleep(0.06)
    assert screen.ids() == [3, 4]
    screen.gone.set()
    await task


async def test_events_published_while_held_batches_go_out_are_not_lost() -> None:
    hub = FeedHub(HALL, Log([ev(1), ev(2), ev(3)]), gap_s=0)
    gates = [asyncio.Event(), asyncio.Event()]
    blocked = asyncio.Event()
    screen = Screen()
    original = screen.send

    async def slow_send(message: dict[str, Any]) -> None:
        await original(message)
        if b"id: " in message.get("body", b"") and gates:
            blocked.set()
            await gates[0].wait()  # the socket drains slowly
            gates.pop(0)

    task = asyncio.create_task(hub.serve(0, {"type": "http"}, screen.receive, slow_send))
    for event in (ev(4), ev(5)):
        await asyncio.wait_for(blocked.wait(), 2)  # catching up, then sending the held
        blocked.clear()
        hub.publish([event])
        await asyncio.sleep(0.01)  # the batch is handed on while the send is stuck
        gates[0].set()
    await asyncio.sleep(0.01)
    hub.publish([ev(6)])
    assert await screen.until(6) == [1, 2, 3, 4, 5, 6]
    screen.gone.set()
    await task


async def test_direct_writes_skip_what_was_sent_and_send_the_rest_framed() -> None:
    client = _Client(3)
    client.held = None
    transport = FakeTransport()
    client.transport = transport  # type: ignore[assignment]
    a, b = b"id: 3\n\n", b"id: 4\n\n"
    assert client.take(((3, a),), a, b"whole")
    assert client.take(((3, a), (4, b)), a + b, b"whole")
    assert transport.writes == [b"%x\r\n%b\r\n" % (len(b), b)]
    assert client.sent == 4
