"""A stateful property test of the queue engine on a real SQLite store.

Hypothesis drives the real ``Engine`` (one SQLite file per example, a
``FakeClock``) through random sequences of every command: tickets, sign-in and
pauses, calling, serving, holding, transfers, cancels, the hotline's push
(dispatch / accept / reject) and time passing (offer and call time-outs,
wrap-up, local midnight). A command that is illegal must raise a
``QueueError`` and leave every table exactly as it was; a legal one must
write exactly the events this model expects. After every step the
invariants of DESIGN §4–§6 are checked against the tables: one ticket per
workstation and one workstation per ticket, valid states, unique numbers,
routing order, a complete and gap-free event log, and that folding the log
(``projection.rebuild``) gives back the tables.

Hypothesis state machines are synchronous: the machine runs a private event
loop and hands each engine coroutine to it.

At the end, a minimal regression test pins the engine bug this machine found
(a no-show kept a hotline offer's deadline).
"""

from __future__ import annotations

import asyncio
import tempfile
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
)

from queue_engine import Engine, FakeClock, QueueError, open_store
from queue_engine.engine import NEXT_GUARD_S
from queue_engine.errors import DailyLimitReachedError, InvalidRequestError
from queue_engine.model import (
    Channel,
    Event,
    HallConfig,
    PauseReason,
    Policy,
    SeatKind,
    Ticket,
    TicketState,
    TransferPosition,
    Workstation,
    WorkstationState,
)
from queue_engine.projection import rebuild
from queue_engine.store.base import Tx
from tests.conftest import make_hall
from tests.engine.cache_check import same_as_tables

T = TicketState
W = WorkstationState

START = 1_780_020_000.0  # Friday 2026-05-29, 10:00 in Shanghai
TZ = ZoneInfo("Asia/Shanghai")
SERVICES = ("biz", "pension", "medical", "consult")
PRIORITIES = ("normal", "green", "appointment")
VNS = ("W0001", "W0002", "W0003", "W0004", "W0101", "W0102", "W0103")
WINDOWS = ("1", "2", "3", "4", "5", "6", "H01", "H02", "H03")
REASONS = (*(r.value for r in PauseReason if r != PauseReason.MISSED_OFFERS), "  ")
MISSING_TICKET = 10**6

# A staffer signed in at the seat of the right kind for their skills (used to start
# examples with people at work, so the few steps reach deep states).
PRESET_SEATS = (
    ("W0001", "1"), ("W0002", "2"), ("W0003", "3"), ("W0004", "4"),
    ("W0101", "H01"), ("W0102", "H02"), ("W0103", "H03"),
)  # fmt: skip


def _hall(policy: Policy, medical_limit: int | None = None) -> HallConfig:
    hall = make_hall(policy)
    if medical_limit is None:
        return hall
    services = tuple(
        replace(s, daily_limit=medical_limit) if s.code == "medical" else s for s in hall.services
    )
    return replace(hall, services=services)


HALLS = {
    # The defaults: transfers to the front, no wrap-up at windows, no call time-out.
    "default": _hall(Policy()),
    # Everything time-driven switched on, transfers to the back, a daily limit.
    "busy": _hall(
        Policy(
            recalls_before_no_show=1,
            call_timeout_s=600.0,
            offer_timeout_s=15.0,
            missed_offers_before_pause=1,
            wrap_up_s=45.0,
            hotline_wrap_up_s=30.0,
            transfer_position=TransferPosition.BACK,
        ),
        medical_limit=3,
    ),
    # 下一位 on the caller pad: "call next" also finishes the ticket in hand.
    "pad": _hall(Policy(next_completes=True, wrap_up_s=45.0)),
}

ACTIVE = (T.CALLED, T.SERVING)
LIVE = (T.WAITING, T.CALLED, T.HELD)  # what day-end expiry closes


def day_of(when: float) -> str:
    return datetime.fromtimestamp(when, TZ).date().isoformat()


# --- reading the tables --------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    """Every row the engine writes, read in one transaction."""

    tickets: dict[int, Ticket]
    workstations: dict[str, Workstation]
    counters: tuple[tuple[Any, ...], ...]
    event_ids: tuple[int, ...]
    last_event_id: int
    events: tuple[Event, ...] | None = None

    def tables(self) -> tuple[Any, ...]:
        """What must not change when a command fails."""
        return (self.tickets, self.workstations, self.counters, self.event_ids)

    def waiting(self) -> list[Ticket]:
        return [t for t in self.tickets.values() if t.state == T.WAITING]


def all_tickets(tx: Tx) -> dict[int, Ticket]:
    """Every ticket of every day, by id."""
    out: dict[int, Ticket] = {}
    for (tid,) in tx.execute("SELECT id FROM tickets ORDER BY id"):
        ticket = tx.get_ticket(tid)
        assert ticket is not None
        out[tid] = ticket
    return out


def read_snapshot(tx: Tx, hall: str, with_events: bool) -> Snapshot:
    return Snapshot(
        tickets=all_tickets(tx),
        workstations={w.virtual_number: w for w in tx.workstations(hall)},
        counters=tuple(
            tuple(r)
            for r in tx.execute("SELECT hall, prefix, day, last FROM counters ORDER BY 1, 2, 3")
        ),
        event_ids=tuple(r[0] for r in tx.execute("SELECT id FROM events ORDER BY id")),
        last_event_id=tx.last_event_id(),
        events=tuple(tx.events_after(0, 10**9)) if with_events else None,
    )


# --- an independent statement of the routing policy (DESIGN §5) ------------------


def score(hall: HallConfig, ticket: Ticket, level: int, now: float) -> float:
    """weight × skill level × (1 + waited / target wait), written as routing.py documents it."""
    service = hall.service(ticket.service)
    pclass = hall.priority_class(ticket.priority)
    assert service is not None and pclass is not None
    target_s = service.target_wait_min * 60.0
    waited = max(0.0, now - ticket.queued_at)
    return pclass.weight * max(1, level) * (1.0 + waited / target_s)


def skills_at(hall: HallConfig, vn: str, kind: SeatKind) -> dict[str, int]:
    """A staffer's skills for the services served at this kind of seat."""
    staff = hall.staffer(vn)
    assert staff is not None
    return {
        code: level
        for code, level in staff.skills.items()
        if (svc := hall.service(code)) is not None and svc.served_at == kind
    }


def slot_begun(ticket: Ticket, now: float) -> bool:
    return (
        ticket.priority == "appointment"
        and ticket.appointment_at is not None
        and ticket.appointment_at <= now
    )


def rank_key(hall: HallConfig, t: Ticket, now: float) -> tuple[int, float, float, int]:
    """A hotline queue's order: begun appointments by slot, then score at level 1."""
    if slot_begun(t, now):
        return (1, t.appointment_at or 0.0, t.queued_at, t.id)
    return (2, -score(hall, t, 1, now), t.queued_at, t.id)


def check_call_order(
    hall: HallConfig, waiting: list[Ticket], vn: str, now: float, got: Ticket | None
) -> None:
    """The ticket ``call_next`` picked is the one the policy serves first."""
    skills = skills_at(hall, vn, SeatKind.WINDOW)
    eligible = [
        t for t in waiting
        if t.service in skills and t.target_workstation in (None, vn)
    ]  # fmt: skip
    if not eligible:
        assert got is None, f"{vn} called {got} though nothing it may serve was waiting"
        return
    assert got is not None, f"{vn} called nobody though {len(eligible)} tickets were eligible"
    assert got.id in {t.id for t in eligible}, f"{vn} called ineligible ticket {got.number}"
    targeted = [t for t in eligible if t.target_workstation == vn]
    begun = [t for t in eligible if t.target_workstation is None and slot_begun(t, now)]
    if targeted:
        best = min(targeted, key=lambda t: (t.queued_at, t.id))
        assert got.id == best.id, f"transfer to {vn}: called {got.number}, expected {best.number}"
        return
    if begun:
        best = min(begun, key=lambda t: (t.appointment_at or 0.0, t.queued_at, t.id))
        assert got.id == best.id, f"begun appointment: called {got.number}, expected {best.number}"
        return
    # Invariant 5 as stated: nobody of the same service and class queued earlier.
    rivals = [
        t for t in eligible
        if t.id != got.id and t.service == got.service and t.priority == got.priority
        and t.target_workstation is None and not slot_begun(t, now)
    ]  # fmt: skip
    earlier = [t.number for t in rivals if t.queued_at < got.queued_at]
    assert not earlier, f"{vn} called {got.number} before earlier-queued {earlier}"
    # And across queues: the highest score, ties to the earliest queued, then the lowest id.
    best = min(eligible, key=lambda t: (-score(hall, t, skills[t.service], now), t.queued_at, t.id))
    assert got.id == best.id, (
        f"{vn} called {got.number} (score {score(hall, got, skills[got.service], now)}),"
        f" policy serves {best.number} (score {score(hall, best, skills[best.service], now)})"
    )


# --- the machine -----------------------------------------------------------------


@settings(
    max_examples=60,
    stateful_step_count=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
class QueueMachine(RuleBasedStateMachine):
    """The real engine on a real SQLite file, checked against the tables after every step."""

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.tmp = tempfile.TemporaryDirectory(prefix="qe-stateful-")
        self.clock = FakeClock(START)
        self.store: Any = None
        self.engine: Engine | None = None
        self.hall: HallConfig = HALLS["default"]
        self.expected_events = 0
        self.delivered: list[Event] = []
        self.call_log: list[tuple[str, int, str]] = []
        self._cache: Snapshot | None = None

    # plumbing ------------------------------------------------------------------

    def run(self, aw: Awaitable[Any]) -> Any:
        self._cache = None
        return self.loop.run_until_complete(aw)

    @property
    def eng(self) -> Engine:
        assert self.engine is not None
        return self.engine

    def read(self, with_events: bool = False) -> Snapshot:
        code = self.hall.code
        return self.loop.run_until_complete(
            self.store.run(lambda tx: read_snapshot(tx, code, with_events))
        )

    def state(self) -> Snapshot:
        """The full snapshot for the invariants, read once per step."""
        if self._cache is None:
            self._cache = self.read(with_events=True)
        return self._cache

    def attempt(
        self, make: Callable[[], Awaitable[Any]], before: Snapshot, expect_ok: bool | None = None
    ) -> tuple[bool, Any]:
        """Run one command; a QueueError must leave every table as it was."""
        try:
            result = self.run(make())
        except QueueError as exc:
            after = self.read()
            assert after.tables() == before.tables(), f"failed {exc!r} changed the tables"
            assert expect_ok is not True, f"expected the command to succeed, got {exc!r}"
            return False, exc
        assert expect_ok is not False, f"expected a QueueError, got {result!r}"
        return True, result

    @staticmethod
    def choose(pick: int, preferred: list[Any], everything: tuple[Any, ...] | list[Any]) -> Any:
        """Mostly one of ``preferred`` (the moves likely to be legal), sometimes anything.

        Hypothesis favours small integers, so the common case is ``pick % 5 != 4``.
        """
        if preferred and pick % 5 != 4:
            return preferred[(pick // 5) % len(preferred)]
        return everything[pick % len(everything)]

    def vn_in(self, before: Snapshot, pick: int, states: tuple[W, ...]) -> str:
        good = [vn for vn, w in sorted(before.workstations.items()) if w.state in states]
        return self.choose(pick, good, VNS)

    def ticket_in(self, before: Snapshot, pick: int, states: tuple[T, ...]) -> int:
        good = [tid for tid, t in before.tickets.items() if t.state in states]
        return self.choose(pick, good, [*before.tickets, MISSING_TICKET])

    def held_ticket(self, before: Snapshot, vn: str) -> Ticket | None:
        ws = before.workstations[vn]
        return before.tickets.get(ws.ticket_id) if ws.ticket_id is not None else None

    def skills(self, vn: str) -> dict[str, int]:
        staff = self.hall.staffer(vn)
        return dict(staff.skills) if staff else {}

    # set-up and teardown --------------------------------------------------------

    @initialize(
        variant=st.sampled_from(sorted(HALLS)),
        seats=st.lists(st.sampled_from(PRESET_SEATS), unique=True, max_size=5),
        queue=st.lists(
            st.tuples(
                st.sampled_from(SERVICES),
                st.sampled_from(PRIORITIES),
                st.sampled_from([0, 0, 45, 300]),  # seconds since the previous arrival
            ),
            max_size=8,
        ),
    )
    def open_hall(
        self, variant: str, seats: list[tuple[str, str]], queue: list[tuple[str, str, int]]
    ) -> None:
        self.hall = HALLS[variant]
        self.store = open_store(f"sqlite:///{self.tmp.name}/queue.db")
        self.store.add_commit_listener(self.delivered.extend)
        self.run(self.store.open())
        self.engine = Engine(self.store, self.hall, self.clock)
        self.run(self.engine.load_hall())
        for vn, window in seats:
            self.run(self.eng.sign_in(vn, window))
            self.expected_events += 1
        for service, priority, gap in queue:  # a queue that built up over a few minutes
            self.clock.advance(gap)
            self.do_take_ticket(self.read(), service, priority, slot_min=gap % 7 - 3)

    def teardown(self) -> None:
        try:
            if self.store is not None:
                self.loop.run_until_complete(self.store.close())
        finally:
            self.loop.close()
            self.tmp.cleanup()

    # the commands, each checked: legal iff the model says so, events counted ---------

    def do_take_ticket(
        self, before: Snapshot, service: str, priority: str = "normal", slot_min: int = 0,
        channel_mode: int = 2, phone: bool = False,
    ) -> Ticket | None:  # fmt: skip
        now = self.clock.now()
        svc = self.hall.service(service)
        assert svc is not None
        channel: str | None = "phone" if svc.channel == Channel.PHONE else None
        wrong = channel_mode == 0
        if wrong:  # the wrong channel for this service: must be refused
            channel = "hall" if svc.channel == Channel.PHONE else "phone"
        elif channel_mode == 1 and svc.channel == Channel.PHONE:
            channel = "callback"
        appointment_at = now + slot_min * 60.0 if priority == "appointment" else None
        pclass = self.hall.priority_class(priority)
        assert pclass is not None
        prefix = pclass.prefix or svc.prefix
        day = day_of(now)
        n = 1 + sum(
            1 for t in before.tickets.values()
            if t.parent_id is None and t.day == day and t.number[:-3] == prefix
        )  # fmt: skip
        issued_today = sum(
            1 for t in before.tickets.values()
            if t.parent_id is None and t.day == day and t.service == service
        )  # fmt: skip
        full = svc.daily_limit is not None and issued_today >= svc.daily_limit
        expect = not wrong and not full
        ok, issued = self.attempt(
            lambda: self.eng.take_ticket(
                service, channel=channel, priority=priority, appointment_at=appointment_at,
                phone="13800138000" if phone else None,
            ),
            before, expect,
        )  # fmt: skip
        if not ok:
            want = InvalidRequestError if wrong else DailyLimitReachedError
            assert isinstance(issued, want), issued
            return None
        self.expected_events += 1
        t = issued.ticket
        assert t.state == T.WAITING and t.parent_id is None and t.day == day
        assert t.number == f"{prefix}{n:03d}", (t.number, prefix, n)
        assert t.arrived_at == t.queued_at == now
        assert t.id not in before.tickets
        return t

    def do_sign_in(self, before: Snapshot, vn: str, window: str) -> None:
        taken = any(w.window == window for w in before.workstations.values())
        expect = before.workstations[vn].state == W.OFFLINE and not taken
        ok, _ = self.attempt(lambda: self.eng.sign_in(vn, window), before, expect)
        self.expected_events += ok

    def do_sign_out(self, before: Snapshot, vn: str) -> None:
        holding = any(t.state == T.HELD and t.workstation == vn for t in before.tickets.values())
        expect = before.workstations[vn].state in (W.AVAILABLE, W.PAUSED, W.WRAP_UP) and not holding
        ok, _ = self.attempt(lambda: self.eng.sign_out(vn), before, expect)
        self.expected_events += ok

    def do_pause(self, before: Snapshot, vn: str, reason: str) -> None:
        expect = bool(reason.strip()) and before.workstations[vn].state in (W.AVAILABLE, W.WRAP_UP)
        ok, _ = self.attempt(lambda: self.eng.pause(vn, reason), before, expect)
        self.expected_events += ok

    def do_resume_work(self, before: Snapshot, vn: str) -> None:
        expect = before.workstations[vn].state in (W.PAUSED, W.WRAP_UP)
        ok, _ = self.attempt(lambda: self.eng.resume_work(vn), before, expect)
        self.expected_events += ok

    def do_call_next(self, before: Snapshot, vn: str, finish: int | None = None) -> Ticket | None:
        ws = before.workstations[vn]
        now = self.clock.now()
        in_hand = self.held_ticket(before, vn) if ws.state in (W.CALLING, W.SERVING) else None
        pad = self.hall.policy.next_completes
        if finish is not None:  # names the ticket it finishes: exactly that one, or nothing
            finishes = pad and in_hand is not None and in_hand.id == finish
            refused = not finishes
        else:  # unnamed: not a ticket called moments ago (a double press)
            settled = in_hand is not None and (
                in_hand.state == T.SERVING or now - (in_hand.called_at or now) >= NEXT_GUARD_S
            )
            finishes, refused = pad and settled, pad and in_hand is not None and not settled
        free = ws.state in (W.AVAILABLE, W.WRAP_UP)
        expect = ws.kind == SeatKind.WINDOW and (free or finishes) and not refused
        ok, got = self.attempt(lambda: self.eng.call_next(vn, finish), before, expect)
        if not ok:
            return None
        # Invariant 5, checked at the moment of the call against the tickets waiting just before.
        check_call_order(self.hall, before.waiting(), vn, now, got)
        if finishes:  # the ticket in hand was completed first, served from its start or call
            assert in_hand is not None
            self.expected_events += 1
            done = self.read().tickets[in_hand.id]
            assert done.state == T.DONE and done.ended_at == now, done
            assert done.started_at == (in_hand.started_at or in_hand.called_at), done
        if got is None:
            after = self.read()
            if finishes:  # only the completion: the window is free, with no wrap-up
                assert after.workstations[vn].state == W.AVAILABLE
                assert after.workstations[vn].ticket_id is None
            else:
                assert after.tables() == before.tables(), "an empty call_next changed the tables"
            return None
        self.expected_events += 1
        self.call_log.append((vn, got.id, got.number))
        assert got.state == T.CALLED and got.workstation == vn and got.called_at == now
        return got

    def do_call_ticket(self, before: Snapshot, vn: str, tid: int) -> None:
        ws, t = before.workstations[vn], before.tickets.get(tid)
        expect = (
            ws.kind == SeatKind.WINDOW and ws.state in (W.AVAILABLE, W.WRAP_UP)
            and t is not None and t.state == T.WAITING
            and t.service in skills_at(self.hall, vn, SeatKind.WINDOW)
        )  # fmt: skip
        ok, _ = self.attempt(lambda: self.eng.call_ticket(vn, tid), before, expect)
        self.expected_events += ok

    def do_on_held(
        self, before: Snapshot, vn: str, name: str, states: tuple[T, ...]
    ) -> tuple[bool, Any]:
        """A command on the workstation's own ticket: legal iff that ticket is in ``states``."""
        command: Callable[[str], Awaitable[Ticket]] = getattr(self.eng, name)
        held = self.held_ticket(before, vn)
        expect = held is not None and held.state in states
        ok, t = self.attempt(lambda: command(vn), before, expect)
        if not ok:
            return False, t
        assert held is not None
        self.expected_events += 1
        if name == "recall":
            if held.recalls >= self.hall.policy.recalls_before_no_show:
                assert t.state == T.NO_SHOW
            else:
                assert t.state == T.CALLED and t.recalls == held.recalls + 1
        want = {
            "start_service": T.SERVING, "accept": T.SERVING, "complete": T.DONE,
            "mark_no_show": T.NO_SHOW, "hold": T.HELD,
        }.get(name)  # fmt: skip
        assert want is None or t.state == want, (name, t.state)
        return True, t

    def do_resume(self, before: Snapshot, vn: str, tid: int) -> None:
        t = before.tickets.get(tid)
        expect = (
            t is not None and t.state == T.HELD and t.workstation == vn
            and before.workstations[vn].state in (W.AVAILABLE, W.WRAP_UP)
        )  # fmt: skip
        ok, _ = self.attempt(lambda: self.eng.resume(vn, tid), before, expect)
        self.expected_events += ok

    def do_transfer(
        self, before: Snapshot, tid: int, to_service: str | None, to_vn: str | None,
        by: str | None,
    ) -> None:  # fmt: skip
        old = before.tickets.get(tid)
        holder = old.workstation if old is not None else None
        service = to_service or (old.service if old else None)
        expect = (
            old is not None
            and (to_service is not None or to_vn is not None)
            and self.phone(service or "") == self.phone(old.service)  # hall stays hall
            and old.state in (T.WAITING, T.CALLED, T.SERVING)
            and (to_vn is None or service in self.skills(to_vn))
            and (by is None or old.state not in ACTIVE or by == holder)
        )
        ok, new = self.attempt(
            lambda: self.eng.transfer(tid, to_service=to_service, to_workstation=to_vn, by=by),
            before, expect,
        )  # fmt: skip
        if not ok:
            return
        assert old is not None
        self.expected_events += 2
        closed = self.read().tickets[tid]
        now = self.clock.now()
        assert closed.state == T.TRANSFERRED and closed.ended_at == now
        assert new.parent_id == tid and new.state == T.WAITING
        assert (new.number, new.day, new.arrived_at) == (old.number, old.day, old.arrived_at)
        assert new.service == service and new.target_workstation == to_vn
        assert new.token == old.token != closed.token
        front = self.hall.policy.transfer_position == TransferPosition.FRONT
        assert new.queued_at == (old.queued_at if front else now)

    def do_cancel(self, before: Snapshot, tid: int, by: str | None) -> None:
        t = before.tickets.get(tid)
        holder = t.workstation if t is not None else None
        expect = (
            t is not None and t.state in (T.WAITING, T.CALLED)
            and (by is None or t.state not in ACTIVE or by == holder)
        )  # fmt: skip
        ok, _ = self.attempt(lambda: self.eng.cancel(tid, by=by), before, expect)
        self.expected_events += ok

    def do_abandon(self, before: Snapshot, tid: int) -> None:
        t = before.tickets.get(tid)
        expect = (
            t is not None and t.channel != Channel.HALL
            and t.state in (T.WAITING, T.CALLED, T.SERVING)
        )  # fmt: skip
        ok, _ = self.attempt(lambda: self.eng.abandon(tid), before, expect)
        self.expected_events += ok

    def do_dispatch(self, before: Snapshot) -> None:
        now = self.clock.now()
        _, offered = self.attempt(self.eng.dispatch, before, True)
        self.expected_events += len(offered)
        free = {
            vn: w for vn, w in before.workstations.items()
            if w.state == W.AVAILABLE and w.kind == SeatKind.HOTLINE
        }  # fmt: skip
        hot = {vn: skills_at(self.hall, vn, SeatKind.HOTLINE) for vn in free}

        def fit(t: Ticket, vn: str) -> bool:
            return t.service in hot[vn] and t.target_workstation in (None, vn)

        # In queue order, each call goes to the best free agent: one that has not declined
        # it if any, then the highest skill level, then the longest idle.
        keys = [rank_key(self.hall, t, now) for t in offered]
        assert keys == sorted(keys), "calls offered out of queue order"
        for t in offered:
            was = before.tickets[t.id]
            assert was.state == T.WAITING and t.state == T.CALLED
            assert t.workstation in free, f"{t.number} offered to a busy or non-hotline seat"
            fits = [vn for vn in free if fit(was, vn)]
            assert t.workstation in fits, f"{t.number} offered to unskilled {t.workstation}"

            def agent_key(vn: str, was: Ticket = was) -> tuple[bool, int, float]:
                return (vn in was.declined_by, -hot[vn][was.service], free[vn].since)

            best = min(fits, key=agent_key)
            assert agent_key(t.workstation) == agent_key(best), (
                f"{t.number} offered to {t.workstation}, the best free agent was {best}"
            )
            assert t.offer_expires_at == now + self.hall.policy.offer_timeout_s
            free.pop(t.workstation)
        # Maximal and in order: no call left waiting that a free agent could take, and none
        # ranked before an offered call that the same agent could have taken.
        last = {t.workstation: rank_key(self.hall, t, now) for t in offered}
        for t in self.read().waiting():
            for vn in free:
                assert not fit(t, vn), f"dispatch left {t.number} waiting while {vn} was free"
            for vn, key in last.items():
                ahead = rank_key(self.hall, t, now) < key and fit(t, vn)
                assert not ahead, f"{t.number} waits though it ranks before {vn}'s offer"

    def do_request_callback(self, before: Snapshot, tid: int) -> None:
        old = before.tickets.get(tid)
        expect = (
            old is not None and old.channel == Channel.PHONE
            and old.state in (T.WAITING, T.CALLED)
        )  # fmt: skip
        ok, new = self.attempt(lambda: self.eng.request_callback(tid), before, expect)
        if not ok:
            return
        assert old is not None
        self.expected_events += 2
        assert new.channel == Channel.CALLBACK and new.state == T.WAITING and new.parent_id == tid
        assert (new.number, new.queued_at, new.token) == (old.number, old.queued_at, old.token)

    def do_reject(self, before: Snapshot, vn: str) -> None:
        held = self.held_ticket(before, vn)
        expect = held is not None and held.state == T.CALLED
        ok, t = self.attempt(lambda: self.eng.reject(vn), before, expect)
        if not ok:
            return
        missed = before.workstations[vn].missed_offers + 1
        pauses = missed >= self.hall.policy.missed_offers_before_pause
        self.expected_events += 1 + pauses
        assert t.state == T.WAITING and vn in t.declined_by
        ws = self.read().workstations[vn]
        assert ws.state == (W.PAUSED if pauses else W.AVAILABLE) and ws.ticket_id is None

    def phone(self, service: str) -> bool:
        svc = self.hall.service(service)
        assert svc is not None
        return svc.channel != Channel.HALL

    # the rules -------------------------------------------------------------------------

    @rule(
        service=st.sampled_from(SERVICES),
        priority=st.sampled_from(PRIORITIES),
        slot_min=st.integers(-30, 30),
        channel_mode=st.integers(0, 9),
        phone=st.booleans(),
    )
    def take_ticket(
        self, service: str, priority: str, slot_min: int, channel_mode: int, phone: bool
    ) -> None:
        self.do_take_ticket(self.read(), service, priority, slot_min, channel_mode, phone)

    @rule(vn=st.sampled_from(VNS), window=st.sampled_from(WINDOWS))
    def sign_in(self, vn: str, window: str) -> None:
        self.do_sign_in(self.read(), vn, window)

    @rule(pick=st.integers(0, 999))
    def sign_out(self, pick: int) -> None:
        before = self.read()
        self.do_sign_out(before, self.vn_in(before, pick, (W.AVAILABLE, W.PAUSED, W.WRAP_UP)))

    @rule(pick=st.integers(0, 999), reason=st.sampled_from(REASONS))
    def pause(self, pick: int, reason: str) -> None:
        before = self.read()
        self.do_pause(before, self.vn_in(before, pick, (W.AVAILABLE, W.WRAP_UP)), reason)

    @rule(pick=st.integers(0, 999))
    def resume_work(self, pick: int) -> None:
        before = self.read()
        self.do_resume_work(before, self.vn_in(before, pick, (W.PAUSED, W.WRAP_UP)))

    @rule(pick=st.integers(0, 999), name=st.sampled_from(["none", "none", "in hand", "other"]))
    def call_next(self, pick: int, name: str) -> None:
        before = self.read()
        free = (W.AVAILABLE, W.WRAP_UP)
        states = (*free, W.CALLING, W.SERVING) if self.hall.policy.next_completes else free
        vn = self.vn_in(before, pick, states)
        named = {
            "none": None,
            "in hand": before.workstations[vn].ticket_id,
            "other": MISSING_TICKET,
        }
        self.do_call_next(before, vn, named[name])

    @rule(pick=st.integers(0, 999), tpick=st.integers(0, 999))
    def call_ticket(self, pick: int, tpick: int) -> None:
        before = self.read()
        vn = self.vn_in(before, pick, (W.AVAILABLE, W.WRAP_UP))
        self.do_call_ticket(before, vn, self.ticket_in(before, tpick, (T.WAITING,)))

    def _on_held_rule(self, pick: int, name: str, states: tuple[T, ...]) -> None:
        before = self.read()
        self.do_on_held(before, self.vn_in(before, pick, (W.CALLING, W.SERVING)), name, states)

    @rule(pick=st.integers(0, 999))
    def recall(self, pick: int) -> None:
        self._on_held_rule(pick, "recall", (T.CALLED,))

    @rule(pick=st.integers(0, 999))
    def start_service(self, pick: int) -> None:
        self._on_held_rule(pick, "start_service", (T.CALLED,))

    @rule(pick=st.integers(0, 999))
    def complete(self, pick: int) -> None:
        self._on_held_rule(pick, "complete", (T.SERVING,))

    @rule(pick=st.integers(0, 999))
    def mark_no_show(self, pick: int) -> None:
        self._on_held_rule(pick, "mark_no_show", (T.CALLED,))

    @rule(pick=st.integers(0, 999))
    def hold(self, pick: int) -> None:
        self._on_held_rule(pick, "hold", (T.SERVING,))

    @rule(tpick=st.integers(0, 999), other=st.booleans())
    def resume(self, tpick: int, other: bool) -> None:
        before = self.read()
        tid = self.ticket_in(before, tpick, (T.HELD,))
        t = before.tickets.get(tid)
        vn = t.workstation if t is not None and t.workstation and not other else VNS[tpick % 7]
        self.do_resume(before, vn, tid)

    @rule(
        tpick=st.integers(0, 999),
        to_service=st.one_of(st.none(), st.sampled_from(SERVICES)),
        to_vn=st.one_of(st.none(), st.sampled_from(VNS)),
        by_mode=st.sampled_from(["none", "holder", "other"]),
    )
    def transfer(self, tpick: int, to_service: str | None, to_vn: str | None, by_mode: str) -> None:
        before = self.read()
        tid = self.ticket_in(before, tpick, (T.WAITING, T.CALLED, T.SERVING))
        old = before.tickets.get(tid)
        holder = old.workstation if old is not None else None
        by = {"none": None, "holder": holder, "other": VNS[tpick % 7]}[by_mode]
        self.do_transfer(before, tid, to_service, to_vn, by)

    @rule(tpick=st.integers(0, 999), by_mode=st.sampled_from(["none", "holder", "other"]))
    def cancel(self, tpick: int, by_mode: str) -> None:
        before = self.read()
        tid = self.ticket_in(before, tpick, (T.WAITING, T.CALLED))
        t = before.tickets.get(tid)
        holder = t.workstation if t is not None else None
        by = {"none": None, "holder": holder, "other": VNS[tpick % 7]}[by_mode]
        self.do_cancel(before, tid, by)

    @rule(tpick=st.integers(0, 999))
    def abandon(self, tpick: int) -> None:
        before = self.read()
        self.do_abandon(before, self.ticket_in(before, tpick, (T.WAITING, T.CALLED, T.SERVING)))

    @rule(tpick=st.integers(0, 999))
    def request_callback(self, tpick: int) -> None:
        before = self.read()
        phone = [
            tid for tid, t in before.tickets.items()
            if t.channel == Channel.PHONE and t.state in (T.WAITING, T.CALLED)
        ]  # fmt: skip
        self.do_request_callback(
            before, self.choose(tpick, phone, [*before.tickets, MISSING_TICKET])
        )

    @rule()
    def doomed_write(self) -> None:
        """An adapter's transaction (Engine.run) that writes an event, then fails: no trace."""
        self.attempt(lambda: self.eng.run(self._doomed), self.read(), False)

    def _doomed(self, tx: Tx) -> None:
        self.eng.emit(tx, "test.doomed", None, note="rolled back")
        tx.next_number(self.hall.code, "Z", "doomed")
        raise InvalidRequestError(reason="doomed", reason_zh="注定失败")

    @rule()
    def dispatch(self) -> None:
        self.do_dispatch(self.read())

    @rule(pick=st.integers(0, 999))
    def accept(self, pick: int) -> None:
        self._on_held_rule(pick, "accept", (T.CALLED,))

    @rule(pick=st.integers(0, 999))
    def reject(self, pick: int) -> None:
        before = self.read()
        self.do_reject(before, self.vn_in(before, pick, (W.CALLING,)))

    @rule(pick=st.integers(0, 999), moves=st.lists(st.integers(0, 99), min_size=1, max_size=6))
    def workday(self, pick: int, moves: list[int]) -> None:
        """One staffer makes the natural next moves of a working day.

        Every other rule is one command, and Hypothesis's swarm testing switches a random
        subset of rules off in each example, so call → start → hold → resume chains are rare.
        This rule walks one workstation along them with the same checked commands.
        """
        vn = VNS[pick % len(VNS)]
        for m in moves:
            before = self.read()
            state = before.workstations[vn].state
            if state == W.OFFLINE:
                self._sit_down(before, vn, m)
            elif state == W.PAUSED:
                self.do_resume_work(before, vn)
            elif state in (W.AVAILABLE, W.WRAP_UP):
                self._next_citizen(before, vn, m)
            elif state == W.CALLING:
                name = (
                    "accept"
                    if before.workstations[vn].kind == SeatKind.HOTLINE
                    else "start_service"
                )
                self.do_on_held(before, vn, "recall" if m % 3 == 0 else name, (T.CALLED,))
            else:
                self._finish(before, vn, m)

    def _sit_down(self, before: Snapshot, vn: str, m: int) -> None:
        kind = SeatKind.HOTLINE if self.phone(next(iter(self.skills(vn)))) else SeatKind.WINDOW
        used = {w.window for w in before.workstations.values()}
        free = [w.number for w in self.hall.windows if w.kind == kind and w.number not in used]
        if free:
            self.do_sign_in(before, vn, free[m % len(free)])

    def _next_citizen(self, before: Snapshot, vn: str, m: int) -> None:
        held = [t.id for t in before.tickets.values() if t.state == T.HELD and t.workstation == vn]
        if held and m % 2:
            self.do_resume(before, vn, held[m % len(held)])
        elif before.workstations[vn].kind == SeatKind.HOTLINE:
            if m % 3 == 0:
                self.do_take_ticket(before, "consult")
            else:
                self.do_dispatch(before)
        elif self.do_call_next(before, vn) is None:
            skills = sorted(self.skills(vn))
            self.do_take_ticket(self.read(), skills[m % len(skills)], PRIORITIES[m % 3], m % 7 - 3)

    def _finish(self, before: Snapshot, vn: str, m: int) -> None:
        ws = before.workstations[vn]
        assert ws.ticket_id is not None
        if m % 4 == 0:
            self.do_on_held(before, vn, "hold", (T.SERVING,))
        elif m % 4 == 1:
            targets = [s for s in SERVICES if self.phone(s) == (ws.kind == SeatKind.HOTLINE)]
            self.do_transfer(before, ws.ticket_id, targets[m % len(targets)], None, vn)
        else:
            self.do_on_held(before, vn, "complete", (T.SERVING,))

    # time ---------------------------------------------------------------------------------

    def predict_tick(self, before: Snapshot, now: float) -> int:
        """How many events ``tick`` must write, from the rows before it."""
        p = self.hall.policy
        today = day_of(now)
        n = 0
        for t in before.tickets.values():
            state = t.state
            if state == T.CALLED and t.offer_expires_at is not None and t.offer_expires_at <= now:
                assert t.workstation is not None
                missed = before.workstations[t.workstation].missed_offers + 1
                n += 1 + (missed >= p.missed_offers_before_pause)
                state = T.WAITING
            elif (
                state == T.CALLED and t.offer_expires_at is None and p.call_timeout_s > 0
                and (t.called_at or now) + p.call_timeout_s <= now
            ):  # fmt: skip
                n += 1
                state = T.NO_SHOW
            if state in LIVE and t.day < today:  # the hall sets no hours: only a new day expires
                n += 1
        n += sum(
            1 for w in before.workstations.values()
            if w.state == W.WRAP_UP and w.wrap_up_until is not None and w.wrap_up_until <= now
        )  # fmt: skip
        return n

    @rule(
        seconds=st.integers(0, 900),
        midnight=st.integers(0, 4),
        do_tick=st.integers(0, 5),
    )
    def advance(self, seconds: int, midnight: int, do_tick: int) -> None:
        if midnight == 0:  # now and then: to just past the next local midnight
            local = datetime.fromtimestamp(self.clock.now(), TZ)
            next_day = datetime.combine(local.date() + timedelta(days=1), datetime.min.time(), TZ)
            self.clock.set(next_day.timestamp() + seconds)
        else:
            self.clock.advance(seconds)
        if do_tick == 0:  # sometimes commands run before the sweep does
            return
        before = self.read()
        now = self.clock.now()
        expected = self.predict_tick(before, now)
        ok, events = self.attempt(self.eng.tick, before, True)
        assert len(events) == expected, [e.type for e in events]
        self.expected_events += expected
        after = self.read()
        today = day_of(now)
        for t in after.tickets.values():
            assert not (t.state in LIVE and t.day < today), f"{t.number} of {t.day} not expired"
            if t.state == T.CALLED and t.offer_expires_at is not None:
                assert t.offer_expires_at > now, f"offer of {t.number} outlived its time-out"
        for w in after.workstations.values():
            assert not (w.state == W.WRAP_UP and (w.wrap_up_until or 0) <= now)

    # group commit ------------------------------------------------------------------------

    @rule(
        picks=st.lists(st.integers(0, 999), min_size=2, max_size=3),
        service=st.sampled_from(SERVICES),
        tpick=st.integers(0, 999),
    )
    def burst(self, picks: list[int], service: str, tpick: int) -> None:
        """Several commands at once: the SQLite store commits them together (savepoints)."""
        before = self.read()
        free = (W.AVAILABLE, W.WRAP_UP)
        states = (*free, W.CALLING, W.SERVING) if self.hall.policy.next_completes else free
        vns = [self.vn_in(before, p, states) for p in picks]
        tid = self.ticket_in(before, tpick, (T.WAITING, T.CALLED))
        channel = "phone" if service == "consult" else None

        async def together() -> list[Any]:
            return await asyncio.gather(
                *(self.eng.call_next(vn) for vn in vns),
                self.eng.take_ticket(service, channel=channel),
                self.eng.run(self._doomed),
                self.eng.cancel(tid),
                self.eng.dispatch(),
                return_exceptions=True,
            )

        results = self.run(together())
        for r in results:
            if isinstance(r, BaseException) and not isinstance(r, QueueError):
                raise r
            if isinstance(r, list):
                self.expected_events += len(r)
            elif r is not None and not isinstance(r, QueueError):
                self.expected_events += 1
        self.expected_events += self.finished_by_next(before, vns, results[: len(vns)])
        assert isinstance(results[len(vns) + 1], InvalidRequestError), "the doomed write"
        called = [r.id for r in results[: len(vns)] if isinstance(r, Ticket)]
        assert len(called) == len(set(called)), f"one ticket called twice at once: {called}"

    def finished_by_next(self, before: Snapshot, vns: list[str], results: list[Any]) -> int:
        """How many tickets in hand the burst's call-next commands completed (a hall with
        ``next_completes``): they ran in order, so a number's second call-next finishes what
        its first one called."""
        if not self.hall.policy.next_completes:
            return 0
        in_hand = {
            vn: w.ticket_id for vn, w in before.workstations.items()
            if w.kind == SeatKind.WINDOW and w.state in (W.CALLING, W.SERVING)
        }  # fmt: skip
        finished = 0
        for vn, r in zip(vns, results, strict=True):
            if isinstance(r, QueueError):
                continue
            finished += in_hand.get(vn) is not None
            in_hand[vn] = r.id if isinstance(r, Ticket) else None
        return finished

    # invariants ----------------------------------------------------------------------------

    @invariant()
    def cached_reads_are_the_tables(self) -> None:
        """The store keeps queue fronts, workstations and the tickets it wrote last across
        transactions (sqlite_cache.py): what it answers must be what a fresh read of the
        tables finds, after every step."""
        hall, now = self.hall, self.clock.now()
        classes = [p.code for p in hall.priority_classes]
        services = [s.code for s in hall.services]

        def compare(tx: Any) -> None:
            same_as_tables(tx, hall.code, services, classes, VNS, now, longest=4)

        self.loop.run_until_complete(self.store.run(compare))

    @invariant()
    def one_workstation_per_ticket(self) -> None:
        s = self.state()
        held = [w.ticket_id for w in s.workstations.values() if w.ticket_id is not None]
        twice = [tid for tid, n in Counter(held).items() if n > 1]
        assert not twice, f"tickets held by two workstations: {twice}"

    @invariant()
    def one_ticket_per_workstation(self) -> None:
        s = self.state()
        active = Counter(t.workstation for t in s.tickets.values() if t.state in ACTIVE)
        for t in s.tickets.values():
            if t.state in ACTIVE:
                assert t.workstation is not None, f"{t.number} is {t.state} at no workstation"
                assert active[t.workstation] == 1, (
                    f"{t.workstation} has {active[t.workstation]} tickets"
                )
                assert s.workstations[t.workstation].ticket_id == t.id, (
                    f"{t.number} is {t.state} at {t.workstation}, which holds"
                    f" {s.workstations[t.workstation].ticket_id}"
                )
        for vn, w in s.workstations.items():
            if w.state in (W.CALLING, W.SERVING):
                t = s.tickets.get(w.ticket_id) if w.ticket_id is not None else None
                assert t is not None, f"{vn} is {w.state} with no ticket"
                want = T.CALLED if w.state == W.CALLING else T.SERVING
                assert t.state == want and t.workstation == vn, (vn, w.state, t.number, t.state)
            else:
                assert w.ticket_id is None, f"{vn} is {w.state} but holds {w.ticket_id}"
            assert (w.state == W.OFFLINE) == (w.window is None), (vn, w.state, w.window)
            if w.window is not None:
                seat = self.hall.window(w.window)
                assert seat is not None and w.kind == seat.kind
            assert (w.state == W.PAUSED) == (w.pause_reason is not None), (vn, w.state)
            assert (w.state == W.WRAP_UP) == (w.wrap_up_until is not None), (vn, w.state)
        windows = [w.window for w in s.workstations.values() if w.window is not None]
        assert len(windows) == len(set(windows)), f"two staffers at one window: {windows}"

    @invariant()
    def ticket_states_are_valid(self) -> None:
        s = self.state()
        children = Counter(t.parent_id for t in s.tickets.values() if t.parent_id is not None)
        for t in s.tickets.values():
            assert isinstance(t.state, TicketState)
            assert (t.ended_at is not None) == t.state.is_final, (t.number, t.state, t.ended_at)
            if t.state == T.WAITING:
                assert t.workstation is None and t.called_at is None and t.offer_expires_at is None
            if t.state in (T.CALLED, T.SERVING, T.HELD):
                assert t.workstation is not None and t.called_at is not None, (t.number, t.state)
            if t.state in (T.SERVING, T.HELD):
                assert t.started_at is not None and t.offer_expires_at is None
            if t.offer_expires_at is not None:
                assert t.state == T.CALLED, (t.number, t.state)
            assert t.day == day_of(t.arrived_at) and t.queued_at >= t.arrived_at
            if t.state == T.TRANSFERRED:
                assert children[t.id] == 1, f"transferred {t.number} has {children[t.id]} copies"
            else:
                assert children[t.id] == 0, f"{t.state} {t.number} has transfer copies"
            if t.channel == Channel.HALL:
                assert t.state != T.ABANDONED, f"hall ticket {t.number} abandoned"

    @invariant()
    def numbers_are_unique_per_day(self) -> None:
        s = self.state()
        roots = [t for t in s.tickets.values() if t.parent_id is None]
        keys = [(t.day, t.number) for t in roots]
        assert len(keys) == len(set(keys)), f"duplicate numbers: {Counter(keys).most_common(3)}"
        by_prefix: dict[tuple[str, str], list[int]] = {}
        for t in roots:
            by_prefix.setdefault((t.day, t.number[:-3]), []).append(int(t.number[-3:]))
        for (day, prefix), seq in by_prefix.items():
            assert sorted(seq) == list(range(1, len(seq) + 1)), f"{day} {prefix}: {sorted(seq)}"
        numbered = {(day, p): last for _, p, day, last in s.counters if not p.startswith("#")}
        assert numbered == {k: len(v) for k, v in by_prefix.items()}, "counters and numbers differ"
        # Daily limits count a service's tickets of every prefix ("#service" counters).
        for _, p, day, last in s.counters:
            if p.startswith("#"):
                issued = sum(1 for t in roots if t.day == day and t.service == p[1:])
                assert last == issued, f"{day} {p}: counter {last}, {issued} tickets"
                limit = self.hall.service(p[1:]).daily_limit  # type: ignore[union-attr]
                assert limit is not None and issued <= limit
        for t in s.tickets.values():
            if t.parent_id is not None:
                parent = s.tickets[t.parent_id]
                assert parent.state == T.TRANSFERRED
                assert (t.number, t.day, t.arrived_at) == (
                    parent.number,
                    parent.day,
                    parent.arrived_at,
                )
        tokens = [t.token for t in s.tickets.values()]
        assert len(tokens) == len(set(tokens))

    @invariant()
    def every_change_has_its_event(self) -> None:
        s = self.state()
        n = self.expected_events
        assert len(s.event_ids) == n, f"{len(s.event_ids)} events, the commands account for {n}"
        assert s.last_event_id == n
        assert s.event_ids == tuple(range(1, n + 1)), "event ids have gaps"
        assert [e.id for e in self.delivered] == list(s.event_ids), "the bus missed a commit"

    @invariant()
    def the_log_rebuilds_the_tables(self) -> None:
        s = self.state()
        assert s.events is not None
        for e in s.events:
            assert e.hall == self.hall.code
            if e.ticket is not None:
                assert e.ticket_id == e.ticket.id
        folded = rebuild(s.events)
        assert folded.tickets == s.tickets, "the event log and the tickets table disagree"
        for vn, w in s.workstations.items():
            # load_hall creates the offline rows without events; any later change is logged.
            want = folded.workstations.get(vn, Workstation(vn, self.hall.code, W.OFFLINE, START))
            assert w == want, f"the event log and the workstations table disagree on {vn}"
        assert set(folded.workstations) <= set(s.workstations)


TestQueueMachine = QueueMachine.TestCase


# --- regression tests for engine bugs the machine found -------------------------------


async def test_no_show_clears_the_offer_deadline(store: Any, clock: FakeClock) -> None:
    engine = Engine(store, make_hall(), clock)
    await engine.load_hall()
    await engine.sign_in("W0101", "H01")
    await engine.take_ticket("consult", channel="phone")
    [offered] = await engine.dispatch()
    gone = await engine.mark_no_show("W0101")
    assert gone.state == T.NO_SHOW and gone.offer_expires_at is None
