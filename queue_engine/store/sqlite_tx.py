"""The SQLite transaction: the engine's reads and writes as SQL on one connection.

Runs inside the store's group-commit batch, on the event loop's thread (sqlite.py).
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import replace

from ..jsontext import dumps
from ..model import (
    Channel,
    Event,
    SeatKind,
    Ticket,
    TicketState,
    Workstation,
    WorkstationState,
)
from .sqlite_cache import FRONT_READ_AHEAD, Entry, ReadCache

TICKET_COLUMNS = (
    "id, hall, service, number, day, channel, priority, state, token, arrived_at, queued_at,"
    " updated_at, phone, appointment_ref, appointment_at, workstation, window_no,"
    " target_workstation, called_at, started_at, ended_at, recalls, offer_expires_at,"
    " declined_by, parent_id, note"
)
_TICKET_INSERT = (
    f"INSERT INTO tickets ({TICKET_COLUMNS.replace('id, ', '', 1)})"
    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
)
_TICKET_FIELDS = [c.strip() for c in TICKET_COLUMNS.split(",")][2:]  # in _ticket_values' order
_TICKET_UPDATE = f"UPDATE tickets SET {', '.join(f'{c}=?' for c in _TICKET_FIELDS)} WHERE id=?"
WS_COLUMNS = (
    "virtual_number, hall, state, since, window_no, kind, ticket_id, pause_reason,"
    " missed_offers, wrap_up_until"
)
_WS_UPSERT = (
    f"INSERT INTO workstations ({WS_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)"
    " ON CONFLICT (hall, virtual_number) DO UPDATE SET "
    + ", ".join(f"{c}=excluded.{c}" for c in [c.strip() for c in WS_COLUMNS.split(",")][2:])
)


def ticket_from_row(r: Sequence) -> Ticket:
    """A Ticket from a row selected with TICKET_COLUMNS."""
    return Ticket(
        id=r[0], hall=r[1], service=r[2], number=r[3], day=r[4], channel=Channel(r[5]),
        priority=r[6], state=TicketState(r[7]), token=r[8], arrived_at=r[9], queued_at=r[10],
        updated_at=r[11], phone=r[12], appointment_ref=r[13], appointment_at=r[14],
        workstation=r[15], window=r[16], target_workstation=r[17], called_at=r[18],
        started_at=r[19], ended_at=r[20], recalls=r[21], offer_expires_at=r[22],
        declined_by=tuple(r[23].split(",")) if r[23] else (), parent_id=r[24], note=r[25],
    )  # fmt: skip


def _ticket_values(t: Ticket) -> tuple:
    return (
        t.service, t.number, t.day, t.channel.value, t.priority, t.state.value, t.token,
        t.arrived_at, t.queued_at, t.updated_at, t.phone, t.appointment_ref, t.appointment_at,
        t.workstation, t.window, t.target_workstation, t.called_at, t.started_at, t.ended_at,
        t.recalls, t.offer_expires_at, ",".join(t.declined_by), t.parent_id, t.note,
    )  # fmt: skip


def ws_from_row(r: Sequence) -> Workstation:
    """A Workstation from a row selected with WS_COLUMNS."""
    return Workstation(
        virtual_number=r[0], hall=r[1], state=WorkstationState(r[2]), since=r[3], window=r[4],
        kind=SeatKind(r[5]) if r[5] else None, ticket_id=r[6], pause_reason=r[7],
        missed_offers=r[8], wrap_up_until=r[9],
    )  # fmt: skip


def _ws_values(w: Workstation) -> tuple:
    return (
        w.virtual_number, w.hall, w.state.value, w.since, w.window,
        w.kind.value if w.kind else None, w.ticket_id, w.pause_reason, w.missed_offers,
        w.wrap_up_until,
    )  # fmt: skip


def event_from_row(r: Sequence) -> Event:
    """An Event from (id, hall, type, at, ticket_id, virtual_number, window_no, payload)."""
    return Event(
        id=r[0], hall=r[1], type=r[2], at=r[3], ticket_id=r[4], virtual_number=r[5],
        window=r[6], payload=json.loads(r[7]),
    )  # fmt: skip


class SQLiteTx:
    """The Tx protocol on a sqlite3 connection that already has a transaction open."""

    def __init__(self, conn: sqlite3.Connection, cache: ReadCache | None = None) -> None:
        self.conn = conn
        self.cache = cache
        self.events: list[Event] = []
        # Each ticket row as this transaction last read or wrote it: an update then writes
        # only the columns that changed, so SQLite leaves the indexes of the others alone
        # (a ticket has six). Forgotten on any raw write and on a rolled-back savepoint.
        self._rows: dict[int, tuple] = {}

    def forget(self) -> None:
        """Drop what was read, here and in the store's cache: a rollback or a hand-written
        statement changed rows behind it."""
        self._rows.clear()
        if self.cache is not None:
            self.cache.clear()

    def _ticket(self, r: Sequence) -> Ticket:
        self._rows[r[0]] = tuple(r[2:])
        return ticket_from_row(r)

    def _one(self, sql: str, params: Sequence = ()) -> tuple | None:
        return self.conn.execute(sql, params).fetchone()

    def _all(self, sql: str, params: Sequence = ()) -> list:
        return self.conn.execute(sql, params).fetchall()

    # tickets ---------------------------------------------------------------

    def next_number(self, hall: str, prefix: str, day: str) -> int:
        row = self._one(
            "INSERT INTO counters (hall, prefix, day, last) VALUES (?,?,?,1)"
            " ON CONFLICT (hall, prefix, day) DO UPDATE SET last = last + 1 RETURNING last",
            (hall, prefix, day),
        )
        assert row is not None
        return row[0]

    def insert_ticket(self, ticket: Ticket) -> Ticket:
        values = _ticket_values(ticket)
        cur = self.conn.execute(_TICKET_INSERT, (ticket.hall, *values))
        stored = _with_id(ticket, cur.lastrowid)
        self._rows[stored.id] = values
        if self.cache is not None:
            self.cache.written(stored, None, values)
        return stored

    def update_ticket(self, ticket: Ticket) -> None:
        values = _ticket_values(ticket)
        before = self._rows.get(ticket.id)
        self._rows[ticket.id] = values
        if before is None:
            self.conn.execute(_TICKET_UPDATE, (*values, ticket.id))
            if self.cache is not None:
                self.cache.clear()  # which queue it was in is not known here
            return
        changed = [i for i, (was, now) in enumerate(zip(before, values, strict=True)) if was != now]
        if changed:
            sets = ", ".join(f"{_TICKET_FIELDS[i]}=?" for i in changed)
            params = (*(values[i] for i in changed), ticket.id)
            self.conn.execute(f"UPDATE tickets SET {sets} WHERE id=?", params)
            if self.cache is not None:
                self.cache.written(ticket, before, values)

    def get_ticket(self, ticket_id: int) -> Ticket | None:
        if self.cache is not None and (hit := self.cache.ticket(ticket_id)) is not None:
            self._rows[ticket_id] = hit[0]
            return hit[1]
        r = self._one(f"SELECT {TICKET_COLUMNS} FROM tickets WHERE id=?", (ticket_id,))
        return self._ticket(r) if r else None

    def ticket_by_token(self, token: str) -> Ticket | None:
        r = self._one(f"SELECT {TICKET_COLUMNS} FROM tickets WHERE token=?", (token,))
        return self._ticket(r) if r else None

    def ticket_by_number(self, hall: str, day: str, number: str) -> Ticket | None:
        r = self._one(
            f"SELECT {TICKET_COLUMNS} FROM tickets WHERE hall=? AND day=? AND number=?"
            " ORDER BY id DESC LIMIT 1",
            (hall, day, number),
        )
        return self._ticket(r) if r else None

    def waiting_heads(
        self,
        hall: str,
        services: Sequence[str],
        vn: str | None,
        now: float,
        classes: Sequence[str] = (),
    ) -> list[Ticket]:
        seen: dict[int, Ticket] = {}
        # The head of each (service, class) queue: the cache's copy, else one index seek.
        for service in services:
            for pclass in classes:
                for t in self._front(hall, service, pclass, 1):
                    seen[t.id] = t
        for service in services:
            for t in self._special(hall, service):
                if (vn is not None and t.target_workstation == vn) or (
                    t.target_workstation is None
                    and t.appointment_at is not None
                    and t.appointment_at <= now
                ):
                    seen[t.id] = t
        return list(seen.values())

    def waiting_front(
        self, hall: str, service: str, classes: Sequence[str], per_class: int
    ) -> list[Ticket]:
        seen: dict[int, Ticket] = {}
        for pclass in classes:
            for t in self._front(hall, service, pclass, per_class):
                seen[t.id] = t
        for t in self._special(hall, service):
            seen[t.id] = t
        return list(seen.values())

    def _front(self, hall: str, service: str, pclass: str, limit: int) -> list[Ticket]:
        """The first ``limit`` untargeted waiting tickets of one (service, class) queue."""
        cache = self.cache
        entries = cache.front(hall, service, pclass, limit) if cache is not None else None
        if entries is None:
            # With a cache, read a few more than asked: each call takes one off the front
            # (ReadCache._left), and the next calls find the rest already read.
            want = max(limit, FRONT_READ_AHEAD) if cache is not None else limit
            rows = self._all(
                f"SELECT {TICKET_COLUMNS} FROM tickets WHERE hall=? AND state='waiting'"
                " AND service=? AND priority=? AND target_workstation IS NULL"
                " ORDER BY queued_at, id LIMIT ?",
                (hall, service, pclass, want),
            )
            entries = [_entry(r) for r in rows]
            if cache is not None:
                cache.keep_front(hall, service, pclass, want, entries)
            entries = entries[:limit]
        return self._entries(entries)

    def _special(self, hall: str, service: str) -> list[Ticket]:
        """A service's waiting tickets that are targeted at a workstation or booked."""
        cache = self.cache
        entries = cache.special(hall, service) if cache is not None else None
        if entries is None:
            # The partial indexes hold only the few targeted and booked waiting tickets;
            # without INDEXED BY the planner walks every waiting ticket of the service.
            rows = self._all(
                f"SELECT {TICKET_COLUMNS} FROM tickets INDEXED BY tickets_targeted WHERE hall=?"
                " AND state='waiting' AND target_workstation IS NOT NULL AND service=?"
                f" UNION ALL SELECT {TICKET_COLUMNS} FROM tickets INDEXED BY tickets_appointed"
                " WHERE hall=? AND state='waiting' AND appointment_at IS NOT NULL AND service=?",
                (hall, service, hall, service),
            )
            entries = [_entry(r) for r in rows]
            if cache is not None:
                cache.keep_special(hall, service, entries)
        return self._entries(entries)

    def _entries(self, entries: list[Entry]) -> list[Ticket]:
        rows = self._rows
        for values, t in entries:
            rows[t.id] = values
        return [t for _, t in entries]

    def count_staffed(self, hall: str, kind: str, vns: Sequence[str]) -> int:
        if not vns:
            return 0
        marks = ",".join("?" * len(vns))
        row = self._one(
            "SELECT COUNT(*) FROM workstations WHERE hall=? AND state!='offline' AND kind=?"
            f" AND virtual_number IN ({marks})",
            (hall, kind, *vns),
        )
        return row[0] if row else 0

    def waiting(self, hall: str, service: str | None = None) -> list[Ticket]:
        if service is None:
            rows = self._all(
                f"SELECT {TICKET_COLUMNS} FROM tickets WHERE hall=? AND state='waiting'", (hall,)
            )
        else:
            rows = self._all(
                f"SELECT {TICKET_COLUMNS} FROM tickets WHERE hall=? AND state='waiting'"
                " AND service=?",
                (hall, service),
            )
        return [self._ticket(r) for r in rows]

    def count_waiting(self, hall: str, service: str) -> int:
        row = self._one(
            "SELECT COUNT(*) FROM tickets WHERE hall=? AND state='waiting' AND service=?",
            (hall, service),
        )
        return row[0] if row else 0

    def tickets_in(
        self, hall: str, states: Sequence[str], before_day: str | None = None
    ) -> list[Ticket]:
        marks = ",".join("?" * len(states))
        sql = f"SELECT {TICKET_COLUMNS} FROM tickets WHERE hall=? AND state IN ({marks})"
        params: tuple = (hall, *states)
        if before_day is not None:
            sql += " AND day<?"
            params = (*params, before_day)
        rows = self._all(sql, params)
        return [self._ticket(r) for r in rows]

    def tickets_of_day(self, hall: str, day: str) -> list[Ticket]:
        rows = self._all(
            f"SELECT {TICKET_COLUMNS} FROM tickets WHERE hall=? AND day=? ORDER BY id", (hall, day)
        )
        return [self._ticket(r) for r in rows]

    def handle_times(self, hall: str, service: str, limit: int) -> list[float]:
        rows = self._all(
            "SELECT ended_at - started_at FROM tickets WHERE hall=? AND service=? AND state='done'"
            " ORDER BY ended_at DESC LIMIT ?",
            (hall, service, limit),
        )
        return [r[0] for r in rows]

    # workstations ----------------------------------------------------------

    def get_workstation(self, hall: str, vn: str) -> Workstation | None:
        cache = self.cache
        if cache is not None and (hit := cache.workstation(hall, vn)) is not None:
            return hit
        r = self._one(
            f"SELECT {WS_COLUMNS} FROM workstations WHERE hall=? AND virtual_number=?", (hall, vn)
        )
        if r is None:
            return None
        ws = ws_from_row(r)
        if cache is not None:
            cache.keep_workstation(ws)
        return ws

    def put_workstation(self, ws: Workstation) -> None:
        # An upsert, not INSERT OR REPLACE: that deletes and re-inserts the row, and would
        # delete another workstation's row rather than fail on the one-staffer-per-window index.
        self.conn.execute(_WS_UPSERT, _ws_values(ws))
        if self.cache is not None:
            self.cache.keep_workstation(ws)

    def ensure_workstation(self, ws: Workstation) -> None:
        self.conn.execute(
            f"INSERT OR IGNORE INTO workstations ({WS_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)",
            _ws_values(ws),
        )
        if self.cache is not None:
            self.cache.forget_workstation(ws.hall, ws.virtual_number)

    def workstations(self, hall: str) -> list[Workstation]:
        rows = self._all(
            f"SELECT {WS_COLUMNS} FROM workstations WHERE hall=? ORDER BY virtual_number", (hall,)
        )
        return [ws_from_row(r) for r in rows]

    def workstation_at(self, hall: str, window: str) -> Workstation | None:
        r = self._one(
            f"SELECT {WS_COLUMNS} FROM workstations WHERE hall=? AND window_no=?", (hall, window)
        )
        return ws_from_row(r) if r else None

    # events and readers ----------------------------------------------------

    def append_event(self, event: Event) -> Event:
        cur = self.conn.execute(
            "INSERT INTO events (hall, type, at, ticket_id, virtual_number, window_no, payload)"
            " VALUES (?,?,?,?,?,?,?)",
            (
                event.hall, event.type, event.at, event.ticket_id, event.virtual_number,
                event.window, dumps(event.payload).decode(),
            ),
        )  # fmt: skip
        stored = Event(
            id=cur.lastrowid or 0, hall=event.hall, type=event.type, at=event.at,
            ticket_id=event.ticket_id, virtual_number=event.virtual_number, window=event.window,
            payload=event.payload, made_from=event.made_from,
        )  # fmt: skip
        self.events.append(stored)
        return stored

    def events_after(self, after: int, limit: int, hall: str | None = None) -> list[Event]:
        cols = "id, hall, type, at, ticket_id, virtual_number, window_no, payload"
        if hall is None:
            rows = self._all(
                f"SELECT {cols} FROM events WHERE id>? ORDER BY id LIMIT ?", (after, limit)
            )
        else:
            rows = self._all(
                f"SELECT {cols} FROM events WHERE id>? AND hall=? ORDER BY id LIMIT ?",
                (after, hall, limit),
            )
        return [event_from_row(r) for r in rows]

    def events_between(self, start: float, end: float, hall: str) -> list[Event]:
        # The log is appended in commit order with the clock's time, so ``at`` grows with
        # ``id``: bisect the primary key for both ends instead of indexing ``at`` (an index
        # every event insert would pay for) or scanning the table.
        first, last = self._first_event_at(start), self._first_event_at(end)
        rows = self._all(
            "SELECT id, hall, type, at, ticket_id, virtual_number, window_no, payload FROM events"
            " WHERE id>=? AND id<? AND hall=? AND at>=? AND at<? ORDER BY id",
            (first, last, hall, start, end),
        )
        return [event_from_row(r) for r in rows]

    def _first_event_at(self, at: float) -> int:
        """The lowest id whose event is at or after ``at`` (one past the last id if none)."""
        lo, hi = self._one("SELECT COALESCE(MIN(id), 1), COALESCE(MAX(id), 0) + 1 FROM events")
        while lo < hi:  # ids may have gaps: probe the first event at or above the midpoint
            mid = (lo + hi) // 2
            row = self._one("SELECT id, at FROM events WHERE id>=? ORDER BY id LIMIT 1", (mid,))
            if row is None or row[1] >= at:
                hi = mid
            else:
                lo = row[0] + 1
        return lo

    def last_event_id(self) -> int:
        row = self._one("SELECT COALESCE(MAX(id), 0) FROM events")
        return row[0] if row else 0

    def get_cursor(self, name: str) -> int:
        row = self._one("SELECT position FROM reader_cursors WHERE name=?", (name,))
        return row[0] if row else 0

    def set_cursor(self, name: str, position: int) -> None:
        self.conn.execute(
            "INSERT INTO reader_cursors (name, position) VALUES (?,?)"
            " ON CONFLICT (name) DO UPDATE SET position=excluded.position",
            (name, position),
        )

    def execute(self, sql: str, params: Sequence[object] | Mapping[str, object] = ()) -> list:
        if sql.lstrip()[:6].upper() != "SELECT" and _ENGINE_TABLES.search(sql):
            # It may have written a ticket or workstation behind what was read. Adapters
            # write their own tables (the SMS outbox after every call): those leave both.
            self.forget()
        return self.conn.execute(sql, params).fetchall()


# A statement that may write the engine's own rows (adapters write only their own tables).
_ENGINE_TABLES = re.compile(r"\b(tickets|workstations)\b", re.IGNORECASE)


def _entry(r: Sequence) -> Entry:
    """A selected ticket as the cache keeps it: its row after id and hall, and the Ticket."""
    return tuple(r[2:]), ticket_from_row(r)


def _with_id(ticket: Ticket, new_id: int | None) -> Ticket:
    return replace(ticket, id=new_id or 0)
