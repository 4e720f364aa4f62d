"""Readers of the event log, each with a durable cursor (DESIGN §6).

A reader is handed every event after its cursor, in id order. A ``Reader``
does its work and then the cursor moves (at least once; its handler must be
idempotent). A ``TxReader`` writes its rows in the same transaction that
moves its cursor (exactly once): the SMS notifier is one. After a restart a
runner catches up from the table before it takes fresh events from the bus.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol, cast, runtime_checkable

from .bus import Bus
from .model import Event
from .store.base import Store, Tx

log = logging.getLogger(__name__)


@runtime_checkable
class Reader(Protocol):
    """Handles events outside the store's transaction; may see an event again after a crash."""

    name: str
    durable: bool

    async def handle(self, events: Sequence[Event]) -> None:
        """Do the reader's work for these events."""
        ...


@runtime_checkable
class TxReader(Protocol):
    """Writes its results in the transaction that advances its cursor."""

    name: str

    def handle_in_tx(self, tx: Tx, events: Sequence[Event]) -> None:
        """Write the reader's rows for these events (runs on the database thread)."""
        ...


class ReaderRunner:
    """Feeds one reader from its cursor: the bus wakes it, the table tells it."""

    def __init__(
        self,
        store: Store,
        bus: Bus,
        reader: Reader | TxReader,
        *,
        batch: int = 500,
        poll_s: float = 1.0,
        exclusive: bool = True,
    ) -> None:
        self.store = store
        self.reader = reader
        self.batch = batch
        self.poll_s = poll_s
        # With one writing process every commit passes through our bus, so the
        # events it carries can be used as they are; otherwise read the table.
        self.exclusive = exclusive
        # Asked once: a runtime-checkable Protocol's isinstance walks its attributes each time.
        self._in_tx = isinstance(reader, TxReader)
        self.position = -1
        self._sub = bus.subscribe()
        self._bus = bus

    @property
    def durable(self) -> bool:
        """Whether the reader's position survives a restart."""
        return self._in_tx or getattr(self.reader, "durable", True)

    async def start(self) -> None:
        """Load the cursor (or, for a non-durable reader, start at the log's end)."""
        name = self.reader.name
        if self.durable:
            self.position = await self.store.run(lambda tx: tx.get_cursor(name))
        else:
            self.position = await self.store.run(lambda tx: tx.last_event_id())

    async def catch_up(self) -> int:
        """Deliver everything after the cursor; returns how many events were delivered."""
        if self.position < 0:
            await self.start()
        self._sub.drain()
        total = 0
        while True:
            events = await self.store.run(
                lambda tx, pos=self.position: tx.events_after(pos, self.batch)
            )
            if not events:
                return total
            await self._deliver(events)
            total += len(events)

    async def run(self) -> None:
        """Deliver forever: catch up, then wait for the bus or the poll interval."""
        try:
            await self.catch_up()
            while True:
                await self._sub.wait(self.poll_s)
                try:
                    await self._step()
                except Exception:
                    log.exception("reader %s failed; retrying from its cursor", self.reader.name)
        finally:
            self._bus.unsubscribe(self._sub)

    async def step(self) -> int:
        """Deliver what the bus brought since the last step (tests drive runners this way)."""
        return await self._step()

    async def _step(self) -> int:
        events, overflowed = self._sub.drain()
        fresh = [e for e in events if e.id > self.position]
        if overflowed or not self.exclusive:
            return await self.catch_up()
        if fresh:
            try:
                await self._deliver(fresh)
            except BaseException:
                # The events are gone from the bus: read them from the table next time.
                self._sub.poke()
                raise
        return len(fresh)

    async def _deliver(self, events: Sequence[Event]) -> None:
        last = events[-1].id
        name = self.reader.name
        reader = self.reader
        if self._in_tx:
            writer = cast(TxReader, reader)

            def both(tx: Tx) -> None:
                writer.handle_in_tx(tx, events)
                tx.set_cursor(name, last)

            await self.store.run(both)
            after = getattr(reader, "after_commit", None)
            if after is not None:
                after()
        else:
            await cast(Reader, reader).handle(events)
            if self.durable:
                await self.store.run(lambda tx: tx.set_cursor(name, last))
        self.position = last
