"""The live feed: every event of a hall, in order, as Server-Sent Events.

Each event is encoded once and handed to every connected client's bounded
queue; a client that falls that far behind is dropped and reconnects with
``Last-Event-ID``, and then reads what it missed from the event table, so a
slow screen never holds up the others and never loses an event.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, NamedTuple

from queue_engine import Event

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


class Item(NamedTuple):
    """One batch of encoded events for every client (or a ping, with no parts)."""

    parts: tuple[tuple[int, bytes], ...]
    data: bytes


PING = Item((), b": ping\n\n")


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
    data = json.dumps(public_event(event), ensure_ascii=False, separators=(",", ":"))
    return f"id: {event.id}\nevent: {event.type}\ndata: {data}\n\n".encode()


class FeedHub:
    """Fans one hall's events out to its connected clients."""

    def __init__(self, hall: str, backlog: Backlog, *, client_backlog: int = 1_000) -> None:
        self.hall = hall
        self._backlog = backlog
        self._limit = client_backlog
        self._clients: set[asyncio.Queue[Item | None]] = set()

    @property
    def clients(self) -> int:
        """How many clients are connected now."""
        return len(self._clients)

    def publish(self, events: Sequence[Event]) -> None:
        """Hand committed events of this hall to every client, one chunk per batch."""
        mine = [e for e in events if e.hall == self.hall]
        if not mine:
            return
        # One write per client per batch, however many events the batch holds; the parts stay
        # at hand for a client still catching up, which must skip what it already sent.
        parts = tuple((e.id, encode(e)) for e in mine)
        item = Item(parts, b"".join(data for _, data in parts))
        for queue in list(self._clients):
            if queue.qsize() >= self._limit:
                self._drop(queue)
                continue
            queue.put_nowait(item)

    def ping(self) -> None:
        """A comment line to every client, so proxies keep idle streams open."""
        for queue in list(self._clients):
            if queue.qsize() < self._limit:
                queue.put_nowait(PING)

    def _drop(self, queue: asyncio.Queue[Item | None]) -> None:
        self._clients.discard(queue)
        queue.put_nowait(None)

    async def stream(self, last_id: int) -> AsyncIterator[bytes]:
        """The SSE byte stream for one client that has seen events up to ``last_id``."""
        queue: asyncio.Queue[Item | None] = asyncio.Queue()
        self._clients.add(queue)
        try:
            yield b"retry: 1000\n\n"
            sent = last_id
            while True:
                missed = await self._backlog(sent)
                for event in missed:
                    yield encode(event)
                    sent = event.id
                if len(missed) < 500:
                    break
            while True:
                items = [await queue.get()]
                # Under load several batches wait here: send them as one write.
                while not queue.empty():
                    items.append(queue.get_nowait())
                chunks = []
                for item in items:
                    if item is None:
                        if chunks:
                            yield b"".join(chunks)
                        return
                    if not item.parts or item.parts[0][0] > sent:
                        chunks.append(item.data)
                    else:
                        chunks.extend(data for ident, data in item.parts if ident > sent)
                    if item.parts:
                        sent = max(sent, item.parts[-1][0])
                if chunks:
                    yield b"".join(chunks)
        finally:
            self._clients.discard(queue)
