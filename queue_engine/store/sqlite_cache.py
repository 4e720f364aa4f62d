"""What the SQLite store last read, kept across transactions until a write could change it.

Every call-next read the head of each (service, priority class) queue its window serves,
its workstation and the ticket in hand, and after every call the SMS notifier read the
first few of the queue that moved: about ten reads a call, most finding what the last call
found. This cache keeps the fronts of the waiting queues, each service's targeted and
booked waiting tickets, the workstation rows and the tickets written last:

- a write of a ticket takes it out of the front it was in (the rest is still the front,
  one shorter) and out of its service's targeted and booked tickets; and puts it in its
  place in the front it now enters (waiting, untargeted, ahead of the front's last ticket
  or into a front that holds its whole queue), or among those targeted and booked;
- a write of a ticket this transaction did not read first, a statement that writes the
  engine's tables by hand, and a rollback of anything written drop everything;
- a commit by another connection (``PRAGMA data_version`` moved, checked as each batch
  begins) drops everything: two processes may share the database file.

So a cached answer is always what a read of the tables would return now; the stateful
test and a differential test of random writes compare the two after every step.
"""

from __future__ import annotations

import bisect
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from ..model import Ticket, Workstation

# A ticket as (its row after id and hall, the Ticket): SQLiteTx keeps the row to write only
# the columns that change, so a hit hands it both.
Entry = tuple[tuple[Any, ...], Ticket]

# How many tickets a missed front reads: a queue's head moves once a call-next, so a
# read of eight serves the next several calls of that queue (and the notifier's four).
FRONT_READ_AHEAD = 8

# Positions in a ticket's row after id and hall (sqlite_tx._ticket_values' order).
SERVICE, PRIORITY, STATE, QUEUED_AT, APPOINTMENT_AT, TARGET = 0, 4, 5, 8, 12, 15


# How many of the tickets last written are kept: the ones staff hold now (a desk verb
# reads its ticket again) and then some.
RECENT_TICKETS = 512


class ReadCache:
    """Fronts of waiting queues keyed by (hall, service, priority), and each service's
    targeted or booked waiting tickets keyed by (hall, service); and, under the same rules,
    the workstation rows and the tickets last written, which every desk verb reads first."""

    def __init__(self) -> None:
        self.version: int | None = None
        self._fronts: dict[tuple[str, str, str], tuple[int, list[Entry]]] = {}
        self._special: dict[tuple[str, str], list[Entry]] = {}
        self._workstations: dict[tuple[str, str], Workstation] = {}
        self._tickets: OrderedDict[int, Entry] = OrderedDict()

    def begin(self, version: int) -> None:
        """A batch begins; ``version`` is the connection's ``PRAGMA data_version``."""
        if version != self.version:
            self.clear()
            self.version = version

    def clear(self) -> None:
        """Forget everything (a rollback, a raw write, another connection's commit)."""
        self._fronts.clear()
        self._special.clear()
        self._workstations.clear()
        self._tickets.clear()

    def workstation(self, hall: str, vn: str) -> Workstation | None:
        """A workstation row as last read or written, or None if not known."""
        return self._workstations.get((hall, vn))

    def keep_workstation(self, ws: Workstation) -> None:
        """Remember a workstation row read or written."""
        self._workstations[ws.hall, ws.virtual_number] = ws

    def forget_workstation(self, hall: str, vn: str) -> None:
        """A write whose outcome is not known here touched this row."""
        self._workstations.pop((hall, vn), None)

    def ticket(self, ticket_id: int) -> Entry | None:
        """A ticket written lately, with its row, or None."""
        return self._tickets.get(ticket_id)

    def front(self, hall: str, service: str, priority: str, limit: int) -> list[Entry] | None:
        """The first ``limit`` untargeted waiting tickets of a queue, or None if not known."""
        got = self._fronts.get((hall, service, priority))
        if got is None:
            return None
        known, entries = got
        if limit <= known:
            return entries[:limit]
        if len(entries) < known:
            return entries  # the whole queue: a longer read would find no more
        return None

    def keep_front(
        self, hall: str, service: str, priority: str, limit: int, entries: list[Entry]
    ) -> None:
        """Remember what a seek for the first ``limit`` tickets of a queue found."""
        self._fronts[hall, service, priority] = (limit, entries)

    def special(self, hall: str, service: str) -> list[Entry] | None:
        """A service's waiting tickets that are targeted or booked, or None if not known."""
        return self._special.get((hall, service))

    def keep_special(self, hall: str, service: str, entries: list[Entry]) -> None:
        """Remember a service's targeted and booked waiting tickets."""
        self._special[hall, service] = entries

    def written(self, ticket: Ticket, before: Sequence[Any] | None, after: Sequence[Any]) -> None:
        """``ticket`` was written as ``after`` (its row after id and hall); ``before`` is the
        row as this transaction read it, or None for a new ticket."""
        entry = (tuple(after), ticket)
        if before is not None:
            self._left(ticket.hall, ticket.id, before)
        self._entered(entry)
        self._tickets[ticket.id] = entry
        self._tickets.move_to_end(ticket.id)
        if len(self._tickets) > RECENT_TICKETS:
            self._tickets.popitem(last=False)

    def _left(self, hall: str, ticket_id: int, row: Sequence[Any]) -> None:
        # Without the ticket that left, a front is still the first ``limit - 1`` of its
        # queue (or still the whole queue): the next call-next and the notifier after it
        # read the rest of what one seek found instead of seeking again.
        key = (hall, row[SERVICE], row[PRIORITY])
        if (got := self._fronts.get(key)) is not None:
            limit, entries = got
            rest = _without(entries, ticket_id)
            if len(rest) < len(entries):
                if len(entries) == limit:
                    limit -= 1
                if limit:
                    self._fronts[key] = (limit, rest)
                else:
                    del self._fronts[key]
        if (special := self._special.get((hall, row[SERVICE]))) is not None:
            self._special[hall, row[SERVICE]] = _without(special, ticket_id)

    def _entered(self, entry: Entry) -> None:
        row, ticket = entry
        if row[STATE] != "waiting":
            return
        hall = ticket.hall
        if row[TARGET] is not None or row[APPOINTMENT_AT] is not None:
            special = self._special.get((hall, row[SERVICE]))
            if special is not None:
                self._special[hall, row[SERVICE]] = [*special, entry]
        if row[TARGET] is not None:
            return
        key = (hall, row[SERVICE], row[PRIORITY])
        got = self._fronts.get(key)
        if got is None:
            return
        limit, entries = got
        place = (row[QUEUED_AT], ticket.id)
        at = bisect.bisect(entries, place, key=lambda e: (e[1].queued_at, e[1].id))
        if at < limit:
            # Into the front: in its place, pushing the last one out of a full front.
            self._fronts[key] = (limit, [*entries[:at], entry, *entries[at:]][:limit])


def _without(entries: list[Entry], ticket_id: int) -> list[Entry]:
    return [e for e in entries if e[1].id != ticket_id]
