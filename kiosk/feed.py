"""The live feed: every event of a hall, in order, as Server-Sent Events.

Events go out in batches, each encoded and framed once for every client. A
client that falls too far behind is dropped and reconnects with
``Last-Event-ID``, and then reads what it missed from the event table, so a
slow screen never holds up the others and never loses an event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from starlette.responses import Response

from queue_engine import Event
from queue_engine.jsontext import dumps

log = logging.getLogger(__name__)
Backlog = Callable[[int], Awaitable[Sequence[Event]]]

PUBLIC_TICKET_FIELDS = (
    "id", "number", "service", "state", "channel", "priority", "window", "workstation",
    "recalls", "arrived_at", "called_at", "started_at", "ended_at", "target_workstation",
)  # fmt: skip
PUBLIC_WS_FIELDS = (
    "virtual_number",
    "state",
    "window",
    "kind",
    "pause_reason",
    "since",
    "ticket_id",
)
HEARTBEAT_S = 15.0


def public_event(event: Event) -> dict[str, Any]:
    """An event as screens may see it: no phone number, token or note."""
    out: dict[str, Any] = {
        "id": event.id, "type": event.type, "at": event.at, "hall": event.hall,
        "window": event.window, "virtual_number": event.virtual_number,
    }  # fmt: skip
    ticket = event.payload.get("ticket")
    if ticket:
        out["ticket"] = {k: ticket.get(k) for k in PUBLIC_TICKET_FIELDS}
    ws = event.payload.get("workstation")
    if ws:
        out["workstation"] = {k: ws.get(k) for k in PUBLIC_WS_FIELDS}
    for key in ("reason", "automatic", "recall", "ahead", "wait_min", "position"):
        if key in event.payload:
            out[key] = event.payload[key]
    return out


def encode(event: Event) -> bytes:
    """One SSE message: ``id``, ``event`` and a JSON ``data`` line."""
    head = f"id: {event.id}\nevent: {event.type}\ndata: ".encode()
    return head + dumps(public_event(event)) + b"\n\n"


Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]
RAW_SEND = "callcenter.raw_send"  # scope key: the server's own send, set in callcenter/app.py
HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]
PING = b": ping\n\n"


class _Client:
    """One connected screen.

    While it reads its backlog from the log, batches wait in ``held``. Then either
    ``transport`` is set, when the server lets us write chunks to the socket ourselves
    (uvicorn's httptools protocol, after it sent the headers with chunked encoding), and
    the hub writes each batch straight to it, framed once for everybody; or ``queue`` is,
    and the client's own response task sends what the hub puts there. ``sent`` is the last
    event id handed on: a batch, or the part of one, at or below it is never sent again.
    """

    __slots__ = ("sent", "transport", "queue", "held", "ended", "aborted")

    def __init__(self, sent: int) -> None:
        self.sent = sent
        self.transport: asyncio.WriteTransport | None = None
        self.queue: asyncio.Queue[bytes] | None = None
        self.held: list[tuple[tuple[tuple[int, bytes], ...], bytes]] | None = []
        self.ended: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.aborted = False

    def take(self, parts: tuple[tuple[int, bytes], ...], data: bytes, frame: bytes) -> bool:
        """Pass one batch on; False if the client is too far behind and must go."""
        if self.held is not None:
            self.held.append((parts, data))
            return len(self.held) < 10_000
        if parts:
            if parts[-1][0] <= self.sent:
                return True  # the backlog already carried it
            if parts[0][0] <= self.sent:
                data = b"".join(d for ident, d in parts if ident > self.sent)
                frame = _chunk(data)
        if self.transport is not None:
            if self.transport.is_closing():
                return False
            if self.transport.get_write_buffer_size() > 1 << 20:
                # A screen that has read nothing for a megabyte: cut it off rather than wait
                # for its buffer to drain; it reconnects with Last-Event-ID.
                self.aborted = True
                self.transport.abort()
                return False
            self.transport.write(frame)
        else:
            assert self.queue is not None  # set in the same step as held is cleared
            if self.queue.qsize() >= 1_000:
                return False
            self.queue.put_nowait(data)
        if parts:
            self.sent = parts[-1][0]
        return True

    def unsent(self, held: list[tuple[tuple[tuple[int, bytes], ...], bytes]]) -> bytes:
        """What of the ``held`` batches is above ``sent``, in order; moves ``sent`` on."""
        chunks = []
        for parts, data in held:
            if not parts:
                chunks.append(data)
                continue
            chunks.extend(d for ident, d in parts if ident > self.sent)
            self.sent = max(self.sent, parts[-1][0])
        return b"".join(chunks)

    def end(self) -> None:
        if not self.ended.done():
            self.ended.set_result(None)


class FeedHub:
    """Fans one hall's events out to its connected clients.

    Events committed close together go out as one batch: the hub sends at once when it
    last sent more than ``gap_s`` ago, else when ``gap_s`` has passed. Each batch is
    encoded and framed once and written to every client in one pass of one task, so
    200 screens cost 200 socket writes per batch, not 200 task wake-ups per event; under
    load the number of batches per second, not of events, bounds the work.
    """

    def __init__(self, hall: str, backlog: Backlog, *, gap_s: float = 0.02) -> None:
        self.hall = hall
        self._backlog = backlog
        self._gap_s = gap_s
        self._clients: set[_Client] = set()
        self._parts: list[tuple[int, bytes]] = []
        self._flush: asyncio.Handle | None = None
        self._last_flush = 0.0
        self._closed = False

    @property
    def clients(self) -> int:
        """How many clients are connected now."""
        return len(self._clients)

    def publish(self, events: Sequence[Event]) -> None:
        """Queue committed events of this hall for the next batch."""
        mine = [(e.id, encode(e)) for e in events if e.hall == self.hall]
        if not mine:
            return
        self._parts.extend(mine)
        if self._flush is None:
            loop = asyncio.get_running_loop()
            delay = self._last_flush + self._gap_s - loop.time()
            self._flush = loop.call_later(max(delay, 0.0), self._send_batch)

    def ping(self) -> None:
        """A comment line to every client, so proxies keep idle streams open."""
        self._fan_out((), PING)

    def close(self) -> None:
        """End every stream and take no new ones (the process is stopping)."""
        self._closed = True
        if self._flush is not None:
            self._flush.cancel()
            self._send_batch()
        for client in list(self._clients):
            self._drop(client)

    def _send_batch(self) -> None:
        self._flush = None
        self._last_flush = asyncio.get_running_loop().time()
        parts, self._parts = tuple(self._parts), []
        if parts:
            self._fan_out(parts, b"".join(data for _, data in parts))

    def _fan_out(self, parts: tuple[tuple[int, bytes], ...], data: bytes) -> None:
        frame = _chunk(data)
        for client in list(self._clients):
            try:
                kept = client.take(parts, data, frame)
            except Exception:  # one broken socket must not cost the others the batch
                log.exception("a feed client of hall %s failed a write; dropped", self.hall)
                kept = False
            if not kept:
                self._drop(client)

    def _drop(self, client: _Client) -> None:
        self._clients.discard(client)
        client.end()

    async def serve(
        self, last_id: int, scope: dict[str, Any], receive: Receive, send: Send
    ) -> None:
        """Answer one feed request as an ASGI app: the SSE stream after ``last_id``."""
        raw = scope.get(RAW_SEND)
        out = raw or send
        await out({"type": "http.response.start", "status": 200, "headers": HEADERS})
        await _body(out, b"retry: 1000\n\n", more=not self._closed)
        if self._closed:
            return  # stopping: the screen retries against the next run
        client = _Client(last_id)
        self._clients.add(client)  # before reading the backlog, so nothing falls between
        watcher = asyncio.ensure_future(_disconnected(receive))
        watcher.set_name("feed-disconnect-watch")
        try:
            await self._catch_up(client, out, watcher)
            transport = _chunked_transport(raw)
            # Send what came while the backlog was read until nothing more has; then, with
            # no await in between, let the hub write to this client directly.
            while client.held:
                held, client.held = client.held, []
                if data := client.unsent(held):
                    await _body(out, data)
            client.held = None
            if transport is not None:
                client.transport = transport
                await asyncio.wait({watcher, client.ended}, return_when=asyncio.FIRST_COMPLETED)
            else:
                client.queue = asyncio.Queue()
                await self._pump(client, out, watcher)
            if not watcher.done() and not client.aborted:
                await _body(out, b"", more=False)
        except OSError:
            pass  # the client went away mid-write
        except Exception:
            # The headers are out: no error response can follow. End the stream; the screen
            # reconnects with Last-Event-ID and misses nothing.
            log.exception("the feed of hall %s failed a client", self.hall)
            with contextlib.suppress(Exception):
                await _body(out, b"", more=False)
        finally:
            watcher.cancel()
            self._drop(client)

    async def _catch_up(self, client: _Client, send: Send, watcher: asyncio.Future[None]) -> None:
        while not (watcher.done() or client.ended.done()):
            missed = await self._backlog(client.sent)
            if missed:
                await _body(send, b"".join(encode(e) for e in missed))
                client.sent = missed[-1].id
            if len(missed) < 500:
                return

    async def _pump(self, client: _Client, send: Send, watcher: asyncio.Future[None]) -> None:
        queue = client.queue
        assert queue is not None
        while True:
            getter = asyncio.ensure_future(queue.get())
            done, _ = await asyncio.wait(
                {getter, watcher, client.ended}, return_when=asyncio.FIRST_COMPLETED
            )
            if getter not in done:
                getter.cancel()
                return
            chunks = [getter.result()]
            while not queue.empty():  # under load several batches wait: one write
                chunks.append(queue.get_nowait())
            await _body(send, b"".join(chunks))


class FeedResponse(Response):
    """The feed as a FastAPI response: the hub serves the stream itself."""

    media_type = "text/event-stream"

    def __init__(self, hub: FeedHub, last_id: int, status_code: int = 200) -> None:
        super().__init__(status_code=status_code)  # FastAPI reads the default for OpenAPI
        self.hub, self.last_id = hub, last_id

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.hub.serve(self.last_id, scope, receive, send)


def _chunk(data: bytes) -> bytes:
    """``data`` as one HTTP/1.1 chunk."""
    return b"%x\r\n%b\r\n" % (len(data), data)


async def _body(send: Send, data: bytes, *, more: bool = True) -> None:
    await send({"type": "http.response.body", "body": data, "more_body": more})


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def _chunked_transport(send: Send | None) -> asyncio.WriteTransport | None:
    """The socket under uvicorn's httptools protocol, once it answers with chunked encoding.

    Writing our own chunks there skips the server's per-message work for every client
    and batch; any other server (or h11) gets the batches through its ``send``.
    """
    cycle = getattr(send, "__self__", None)
    if type(cycle).__module__ != "uvicorn.protocols.http.httptools_impl":
        return None
    if getattr(cycle, "chunked_encoding", None) is not True:
        return None
    transport = getattr(cycle, "transport", None)
    # uvloop's transports do not derive from asyncio's classes: ask for what is used.
    needed = ("write", "is_closing", "get_write_buffer_size")
    return transport if all(hasattr(transport, m) for m in needed) else None
