"""The store interface: every backend runs the engine's transactions.

The engine writes each command as a plain function over a synchronous
``Tx``; ``Store.run`` executes it as one transaction (DESIGN §7; the SQLite
backend runs it inline on the event loop, see docs/design-notes.md). A
backend may put the commands of several callers into one commit (group
commit): each still succeeds or fails on its own, inside its own savepoint.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol, TypeVar

from ..model import Event, Ticket, Workstation

R = TypeVar("R")
CommitListener = Callable[[Sequence[Event]], None]


class Tx(Protocol):
    """What a transaction can read and write. Every method runs inside one transaction."""

    # tickets
    def next_number(self, hall: str, prefix: str, day: str) -> int:
        """Take the next ticket number for a prefix on a day (1, 2, 3 …)."""
        ...

    def insert_ticket(self, ticket: Ticket) -> Ticket:
        """Insert a ticket (its id is ignored) and return it with its new id."""
        ...

    def update_ticket(self, ticket: Ticket) -> None:
        """Write a ticket's every field."""
        ...

    def get_ticket(self, ticket_id: int) -> Ticket | None:
        """A ticket by id."""
        ...

    def ticket_by_token(self, token: str) -> Ticket | None:
        """A ticket by its unguessable status token."""
        ...

    def ticket_by_number(self, hall: str, day: str, number: str) -> Ticket | None:
        """The newest ticket carrying ``number`` on ``day`` (a transfer keeps the number)."""
        ...

    def waiting_heads(
        self,
        hall: str,
        services: Sequence[str],
        vn: str | None,
        now: float,
        classes: Sequence[str] = (),
    ) -> list[Ticket]:
        """Routing candidates among waiting tickets of ``services``.

        Tickets transferred to ``vn``, appointments whose slot has begun, and
        the earliest-queued untargeted ticket of every (service, class): the
        policy's choice is always among them.
        """
        ...

    def waiting(self, hall: str, service: str | None = None) -> list[Ticket]:
        """Every waiting ticket of the hall (or of one service)."""
        ...

    def waiting_front(
        self, hall: str, service: str, classes: Sequence[str], per_class: int
    ) -> list[Ticket]:
        """The first ``per_class`` waiting tickets of each class of a service (by queue time),
        plus any targeted or appointment tickets: the front of its queue in any routing order."""
        ...

    def count_staffed(self, hall: str, kind: str, vns: Sequence[str]) -> int:
        """How many of ``vns`` are signed in at a seat of ``kind``."""
        ...

    def count_waiting(self, hall: str, service: str) -> int:
        """How many tickets of ``service`` are waiting."""
        ...

    def tickets_in(
        self, hall: str, states: Sequence[str], before_day: str | None = None
    ) -> list[Ticket]:
        """Every ticket of the hall in one of ``states`` (issued before ``before_day``)."""
        ...

    def tickets_of_day(self, hall: str, day: str) -> list[Ticket]:
        """Every ticket issued on ``day``."""
        ...

    def handle_times(self, hall: str, service: str, limit: int) -> list[float]:
        """Seconds from start to end of the latest ``limit`` completed services."""
        ...

    # workstations
    def get_workstation(self, hall: str, vn: str) -> Workstation | None:
        """A workstation by virtual number."""
        ...

    def put_workstation(self, ws: Workstation) -> None:
        """Insert or replace a workstation row."""
        ...

    def ensure_workstation(self, ws: Workstation) -> None:
        """Insert a workstation row unless one exists."""
        ...

    def workstations(self, hall: str) -> list[Workstation]:
        """Every workstation row of the hall."""
        ...

    def workstation_at(self, hall: str, window: str) -> Workstation | None:
        """The workstation signed in at ``window``, if any."""
        ...

    # events and readers
    def append_event(self, event: Event) -> Event:
        """Append an event (its id is ignored) and return it with its new id."""
        ...

    def events_after(self, after: int, limit: int, hall: str | None = None) -> list[Event]:
        """Events with id > ``after`` in id order."""
        ...

    def events_between(self, start: float, end: float, hall: str) -> list[Event]:
        """A hall's events with ``start <= at < end`` in id order (a day's report)."""
        ...

    def last_event_id(self) -> int:
        """The highest event id, 0 if none."""
        ...

    def get_cursor(self, name: str) -> int:
        """A reader's durable position (0 if it never ran)."""
        ...

    def set_cursor(self, name: str, position: int) -> None:
        """Move a reader's durable position."""
        ...

    def execute(self, sql: str, params: Sequence[object] | Mapping[str, object] = ()) -> list:
        """Run backend SQL for adapters that own tables of their own (SMS outbox …).

        Adapters read the engine's tables but never write them: the engine's rows change
        only through the methods above, which keep the SQLite store's read cache right
        (a statement naming ``tickets`` or ``workstations`` that is not a SELECT empties it).
        """
        ...


class Store(abc.ABC):
    """A database the engine runs on: open, run transactions, close."""

    url: str

    def __init__(self) -> None:
        self._listeners: list[CommitListener] = []
        self.components: list[str] = ["queue_engine"]

    def add_migrations(self, component: str) -> None:
        """Apply the migrations the package ``component`` ships, too (call before open)."""
        if component not in self.components:
            self.components.append(component)

    def add_commit_listener(self, listener: CommitListener) -> None:
        """Call ``listener`` with the events of every commit, in id order, after it lands."""
        self._listeners.append(listener)

    def _committed(self, events: Sequence[Event]) -> None:
        for listener in self._listeners:
            listener(events)

    @abc.abstractmethod
    async def open(self) -> None:
        """Connect and apply migrations."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Finish pending work and disconnect."""

    @abc.abstractmethod
    async def run(self, fn: Callable[[Tx], R]) -> R:
        """Run ``fn`` as one transaction and return its result; its error rolls it back."""

    async def read(self, fn: Callable[[Tx], R]) -> R:
        """Run a long read-only ``fn`` (a report over the log) where it does not hold up
        the commands; a backend without such a place runs it as a transaction."""
        return await self.run(fn)

    async def __aenter__(self) -> Store:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
