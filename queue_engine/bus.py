"""After-commit wake-ups: the store hands each commit's events here, in order.

Notifications wake, tables tell: a subscriber that falls behind (its backlog
is bounded) is told it overflowed and reads the event table instead, so a
slow reader never stalls the engine and never misses an event.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Sequence

from .model import Event


class Subscription:
    """One reader's view of the bus: a bounded backlog and a wake-up flag."""

    def __init__(self, maxlen: int) -> None:
        self._maxlen = maxlen
        self._events: deque[Event] = deque()
        self._wake = asyncio.Event()
        self._overflowed = False

    def push(self, events: Sequence[Event]) -> None:
        """Queue committed events (called by the bus)."""
        if self._overflowed or len(self._events) + len(events) > self._maxlen:
            self._events.clear()
            self._overflowed = True
        else:
            self._events.extend(events)
        self._wake.set()

    def poke(self) -> None:
        """Wake the reader without events: something new is in the table."""
        self._overflowed = True
        self._wake.set()

    async def wait(self, timeout: float) -> None:
        """Wait until woken or ``timeout`` seconds pass."""
        if not self._wake.is_set():
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a
            # cancellation that lands as the wait ends, and the reader would never stop.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wake.wait()
        self._wake.clear()

    def drain(self) -> tuple[list[Event], bool]:
        """The queued events and whether some were dropped (read the table then)."""
        events = list(self._events)
        overflowed = self._overflowed
        self._events.clear()
        self._overflowed = False
        return events, overflowed


class Bus:
    """Fans committed events out to subscribers in this process."""

    def __init__(self) -> None:
        self._subs: set[Subscription] = set()

    def subscribe(self, maxlen: int = 10_000) -> Subscription:
        """A new subscription that sees every event published from now on."""
        sub = Subscription(maxlen)
        self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        """Stop feeding ``sub``."""
        self._subs.discard(sub)

    def publish(self, events: Sequence[Event]) -> None:
        """Hand committed events to every subscriber."""
        for sub in self._subs:
            sub.push(events)

    def poke(self) -> None:
        """Tell every subscriber to look at the table (a commit from another process)."""
        for sub in self._subs:
            sub.poke()
