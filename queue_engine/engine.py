"""The queue engine: one hall's commands, each one transaction with its event.

Every public coroutine builds a plain function over a ``Tx`` and hands it to
the store, which runs it in one hop and one commit; the function reads the
rows it needs, applies a pure transition (transitions.py), lets the routing
policy choose (routing.py), writes the rows and appends one event per change.
The store hands committed events to the bus; readers take it from there.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime
from functools import cached_property
from typing import Any, Literal, TypeVar
from zoneinfo import ZoneInfo

from . import routing
from . import transitions as tr
from .clock import Clock
from .errors import (
    DailyLimitReachedError,
    HallClosedError,
    HeldTicketsError,
    InvalidRequestError,
    JustCalledError,
    NoTicketError,
    SkillMissingError,
    TicketChangedError,
    TicketNotFoundError,
    UnknownPriorityError,
    UnknownServiceError,
    UnknownWindowError,
    UnknownWorkstationError,
    WindowTakenError,
    WrongSeatKindError,
)
from .model import (
    Channel,
    Event,
    HallConfig,
    SeatKind,
    Service,
    Session,
    Ticket,
    TicketState,
    TransferPosition,
    WaitEstimate,
    Workstation,
    WorkstationState,
)
from .store.base import Store, Tx

R = TypeVar("R")
# A staffer's verbs on the ticket in hand, by method name (:meth:`Engine.at_desk`).
DeskVerb = Literal[
    "call_next", "recall", "start_service", "complete", "mark_no_show", "hold", "accept", "reject"
]
T = TicketState
W = WorkstationState
# 下一位 that names no ticket does not finish one called this recently: a bounced key on a
# caller pad or a double click would otherwise end the service of the citizen just called.
NEXT_GUARD_S = 3.0
SEAT_ZH = {SeatKind.WINDOW: "窗口", SeatKind.HOTLINE: "热线坐席"}


@dataclass(frozen=True, slots=True)
class Issued:
    """A new ticket and the wait it can expect."""

    ticket: Ticket
    estimate: WaitEstimate


@dataclass(frozen=True, slots=True)
class HallState:
    """A consistent read of a hall for building screens: rows as of ``last_event_id``."""

    day: str
    tickets: list[Ticket]
    workstations: list[Workstation]
    last_event_id: int


class Engine:
    """One hall's queue: tickets, workstations, routing, and the event log."""

    def __init__(self, store: Store, hall: HallConfig, clock: Clock) -> None:
        self.store = store
        self.hall = hall
        self.clock = clock
        self.tz = ZoneInfo(hall.timezone)
        # Worked out once, as _skill_map is: staff and services are fixed for the engine's life.
        self._seat_skills: dict[tuple[str, SeatKind], dict[str, int]] = {}

    # --- set-up ---------------------------------------------------------------

    async def load_hall(self) -> None:
        """Make sure every configured virtual number has a workstation row."""
        now = self.clock.now()
        rows = [
            Workstation(s.virtual_number, self.hall.code, W.OFFLINE, now) for s in self.hall.staff
        ]

        def ensure(tx: Tx) -> None:
            for ws in rows:
                tx.ensure_workstation(ws)

        await self.store.run(ensure)

    def day_of(self, when: float) -> str:
        """The hall's local calendar day (YYYY-MM-DD) at ``when``."""
        return datetime.fromtimestamp(when, self.tz).date().isoformat()

    # --- tickets --------------------------------------------------------------

    async def take_ticket(
        self,
        service: str,
        *,
        channel: Channel | str | None = None,
        priority: str = "normal",
        phone: str | None = None,
        appointment_ref: str | None = None,
        appointment_at: float | None = None,
        note: str | None = None,
    ) -> Issued:
        """Issue a numbered ticket for ``service`` (kiosk, appointment check-in, phone call)."""
        issue = self.ticket_issuer(
            service, channel=channel, priority=priority, phone=phone,
            appointment_ref=appointment_ref, appointment_at=appointment_at, note=note,
        )  # fmt: skip
        return await self.store.run(issue)

    def ticket_issuer(
        self,
        service: str,
        *,
        channel: Channel | str | None = None,
        priority: str = "normal",
        phone: str | None = None,
        appointment_ref: str | None = None,
        appointment_at: float | None = None,
        note: str | None = None,
    ) -> Callable[[Tx], Issued]:
        """Check a ticket request now and return the function that issues it inside a
        transaction (so an appointment check-in can issue its ticket in its own)."""
        svc = self._service(service)
        if self.hall.priority_class(priority) is None:
            raise UnknownPriorityError(priority=priority)
        chan = Channel(channel) if channel else svc.channel
        if (chan == Channel.HALL) != (svc.channel == Channel.HALL):
            raise InvalidRequestError(
                reason=f"service {service} is not served on channel {chan.value}",
                reason_zh=f"事项{service}不受理{chan.value}渠道",
            )
        now = self.clock.now()
        if (
            chan == Channel.HALL
            and not self.is_open(now)
            and not self.hall.policy.issue_outside_hours
        ):
            raise HallClosedError()
        day = self.day_of(now)
        prefix = self._prefix(svc, priority)
        token = secrets.token_urlsafe(16)

        def issue(tx: Tx) -> Issued:
            # The limit counts the service's tickets whatever their prefix (G, Y …).
            if (
                svc.daily_limit is not None
                and tx.next_number(self.hall.code, f"#{svc.code}", day) > svc.daily_limit
            ):
                raise DailyLimitReachedError(service=svc.code, limit=svc.daily_limit)
            n = tx.next_number(self.hall.code, prefix, day)
            ahead = tx.count_waiting(self.hall.code, svc.code)
            ticket = tx.insert_ticket(
                Ticket(
                    id=0, hall=self.hall.code, service=svc.code, number=f"{prefix}{n:03d}",
                    day=day, channel=chan, priority=priority, state=T.WAITING, token=token,
                    arrived_at=now, queued_at=now, updated_at=now, phone=phone,
                    appointment_ref=appointment_ref, appointment_at=appointment_at, note=note,
                )
            )  # fmt: skip
            est = self._estimate(tx, svc, ahead)
            self._emit(tx, "ticket.issued", ticket, None, ahead=est.ahead, wait_min=est.minutes)
            return Issued(ticket, est)

        return issue

    async def call_next(self, vn: str, finish: int | None = None) -> Ticket | None:
        """A window calls the next ticket the policy picks for it; None if nobody waits.

        Under the hall's ``next_completes`` policy the ticket in hand (called or serving) is
        completed first, in the same transaction: 下一位 on the caller pad. A client that
        knows which ticket it is finishing names it in ``finish``; a repeated request then
        finds another ticket in hand and does nothing (:class:`TicketChangedError`). Unnamed,
        a ticket called under :data:`NEXT_GUARD_S` ago is not finished (a bounced key).
        """
        return await self.store.run(self._desk_step(vn, "call_next", finish))

    def _calling_next(self, vn: str, finish: int | None) -> Callable[[Tx], Ticket | None]:
        now = self.clock.now()

        def call(tx: Tx) -> Ticket | None:
            ws = self._signed_in(tx, vn)
            self._require_kind(ws, SeatKind.WINDOW, "call next")
            in_hand = self._to_finish(tx, ws, finish, now)
            if in_hand is not None:
                done, ws = tr.finish_for_next(in_hand, ws, now)
                tx.update_ticket(done)
                self._emit(tx, "ticket.completed", done, ws, by_next=True)
            tr.require_workstation(ws, (W.AVAILABLE, W.WRAP_UP), "call next")
            skills = self._skills_at(vn, SeatKind.WINDOW)
            heads = tx.waiting_heads(self.hall.code, list(skills), vn, now, self._class_codes)
            ticket = routing.choose(heads, self.hall, skills, now, vn)
            if ticket is None:
                if in_hand is not None:
                    tx.put_workstation(ws)  # else the call below writes the workstation once
                return None
            t, w = tr.call(ticket, ws, now)
            self._save(tx, "ticket.called", t, w, recall=0)
            return t

        return call

    def _to_finish(self, tx: Tx, ws: Workstation, finish: int | None, now: float) -> Ticket | None:
        """The ticket 下一位 finishes first, if any (see :meth:`call_next`)."""
        if not self.hall.policy.next_completes:
            if finish is not None:
                raise InvalidRequestError(
                    reason="this hall finishes a service with complete, not with call-next",
                    reason_zh="本大厅以“办结”结束服务，“下一位”不办结",
                )
            return None
        if finish is not None and ws.ticket_id != finish:
            raise TicketChangedError(ticket=finish, virtual_number=ws.virtual_number)
        if ws.ticket_id is None:
            return None
        ticket = self._ticket(tx, ws.ticket_id)
        since = now - (ticket.called_at or now)
        if finish is None and ticket.state == T.CALLED and since < NEXT_GUARD_S:
            raise JustCalledError(number=ticket.number, seconds=f"{since:.0f}")
        return ticket

    async def call_ticket(self, vn: str, ticket_id: int) -> Ticket:
        """Call one chosen waiting ticket out of order (the supervisor-approved 'call specific')."""
        now = self.clock.now()

        def call(tx: Tx) -> Ticket:
            ws = self._signed_in(tx, vn)
            self._require_kind(ws, SeatKind.WINDOW, "call next")
            ticket = self._ticket(tx, ticket_id)
            self._require_skill(vn, ticket.service, SeatKind.WINDOW)
            t, w = tr.call(ticket, ws, now)
            self._save(tx, "ticket.called", t, w, recall=0, chosen=True)
            return t

        return await self.store.run(call)

    async def recall(self, vn: str) -> Ticket:
        """Call the current ticket again; past the configured recalls it becomes a no-show."""
        return await self.store.run(self._desk_step(vn, "recall"))

    def _recalling(self, vn: str) -> Callable[[Tx], Ticket]:
        now = self.clock.now()
        limit = self.hall.policy.recalls_before_no_show

        def recall(tx: Tx) -> Ticket:
            ws, ticket = self._held(tx, vn)
            if ticket.state == T.CALLED and ticket.recalls >= limit:
                t, w = tr.no_show(ticket, ws, now)
                self._save(tx, "ticket.no_show", t, w, automatic=True)
                return t
            t = tr.recall(ticket, ws, now)
            self._save(tx, "ticket.recalled", t, ws, recall=t.recalls)
            return t

        return recall

    async def start_service(self, vn: str) -> Ticket:
        """The called citizen is at the window (or the agent accepted the call)."""
        return await self.store.run(self._desk_step(vn, "start_service"))

    async def complete(self, vn: str) -> Ticket:
        """The service is finished."""
        return await self.store.run(self._desk_step(vn, "complete"))

    def _done(self, t: Ticket, w: Workstation, now: float) -> tuple[Ticket, Workstation]:
        return tr.complete(t, w, now, self._wrap_up_s(w))

    async def mark_no_show(self, vn: str) -> Ticket:
        """The called citizen did not come (过号)."""
        return await self.store.run(self._desk_step(vn, "mark_no_show"))

    async def hold(self, vn: str) -> Ticket:
        """Suspend the current service (挂起); the workstation may call others meanwhile."""
        return await self.store.run(self._desk_step(vn, "hold"))

    async def resume(self, vn: str, ticket_id: int) -> Ticket:
        """Take a held ticket back into service."""
        now = self.clock.now()

        def resume(tx: Tx) -> Ticket:
            ws = self._signed_in(tx, vn)
            t, w = tr.resume_held(self._ticket(tx, ticket_id), ws, now)
            self._save(tx, "ticket.resumed", t, w)
            return t

        return await self.store.run(resume)

    async def transfer(
        self,
        ticket_id: int,
        *,
        to_service: str | None = None,
        to_workstation: str | None = None,
        by: str | None = None,
        position: TransferPosition | None = None,
    ) -> Ticket:
        """Send a ticket to another service or a named workstation; returns the new ticket.

        The new ticket keeps the number and the original arrival time; it goes
        to the front of its new queue (ordered by the original arrival) or to
        the back, as the hall's policy or ``position`` says.
        """
        svc = self._service(to_service) if to_service else None
        if to_workstation is not None and self.hall.staffer(to_workstation) is None:
            raise UnknownWorkstationError(virtual_number=to_workstation)
        if svc is None and to_workstation is None:
            raise InvalidRequestError(
                reason="a transfer needs a service or a work number",
                reason_zh="转移需要指定事项或工号",
            )
        where = position or self.hall.policy.transfer_position
        now = self.clock.now()

        def move(tx: Tx) -> Ticket:
            old = self._ticket(tx, ticket_id)
            service = svc.code if svc else old.service
            self._require_same_seat(old, service)
            if to_workstation is not None:
                self._require_skill(to_workstation, service)
            ws = self._holder(tx, old, by)
            closed, freed = tr.close(old, ws, now, T.TRANSFERRED, "transferred")
            # The citizen's status link follows the live ticket: the new one takes the token.
            closed = replace(closed, token=f"{old.token}~{old.id}")
            tx.update_ticket(closed)
            new = tx.insert_ticket(
                replace(
                    old, id=0, service=service, state=T.WAITING, workstation=None, window=None,
                    called_at=None, started_at=None, ended_at=None, recalls=0,
                    offer_expires_at=None, declined_by=(), target_workstation=to_workstation,
                    parent_id=old.id, updated_at=now,
                    queued_at=old.queued_at if where == TransferPosition.FRONT else now,
                )
            )  # fmt: skip
            if freed is not None:
                tx.put_workstation(freed)
            self._emit(tx, "ticket.transferred", closed, freed, to=new.to_dict())
            self._emit(tx, "ticket.requeued", new, None, parent_id=old.id, position=where.value)
            return new

        return await self.store.run(move)

    async def request_callback(self, ticket_id: int, phone: str | None = None) -> Ticket:
        """A caller on hold asks to be called back: the call becomes a call-back ticket that
        keeps its number and its place (the original queue time)."""
        now = self.clock.now()

        def convert(tx: Tx) -> Ticket:
            old = self._ticket(tx, ticket_id)
            if old.channel != Channel.PHONE:
                raise InvalidRequestError(
                    reason="only a phone call can become a call-back", reason_zh="仅电话可转为回电"
                )
            tr.require_ticket(old, (T.WAITING, T.CALLED), "transferred")
            ws = self._holder(tx, old, None)
            closed, freed = tr.close(old, ws, now, T.TRANSFERRED, "transferred")
            closed = replace(closed, token=f"{old.token}~{old.id}")
            tx.update_ticket(closed)
            new = tx.insert_ticket(
                replace(
                    old, id=0, channel=Channel.CALLBACK, state=T.WAITING, workstation=None,
                    window=None, called_at=None, offer_expires_at=None, declined_by=(),
                    parent_id=old.id, updated_at=now, phone=phone or old.phone,
                )
            )  # fmt: skip
            if freed is not None:
                tx.put_workstation(freed)
            self._emit(tx, "ticket.transferred", closed, freed, to=new.to_dict(), callback=True)
            self._emit(tx, "ticket.requeued", new, None, parent_id=old.id, position="front")
            return new

        return await self.store.run(convert)

    async def cancel(self, ticket_id: int, *, by: str | None = None) -> Ticket:
        """Cancel a waiting or called ticket (the citizen gave up, or staff removed it)."""
        return await self._close(ticket_id, T.CANCELLED, "ticket.cancelled", "cancelled", by)

    async def abandon(self, ticket_id: int) -> Ticket:
        """A phone caller hung up before or during the call."""
        return await self._close(ticket_id, T.ABANDONED, "ticket.abandoned", "abandoned", None)

    # --- hotline: push ----------------------------------------------------------

    async def dispatch(self) -> list[Ticket]:
        """Offer waiting calls to free hotline agents; returns the offered tickets."""
        now = self.clock.now()
        timeout = self.hall.policy.offer_timeout_s

        def offer_all(tx: Tx) -> list[Ticket]:
            agents = [
                w for w in tx.workstations(self.hall.code)
                if w.state == W.AVAILABLE and w.kind == SeatKind.HOTLINE
            ]  # fmt: skip
            if not agents:
                return []
            skills_of = {
                a.virtual_number: self._skills_at(a.virtual_number, SeatKind.HOTLINE)
                for a in agents
            }
            services = {s for skills in skills_of.values() for s in skills}
            queued = [t for s in sorted(services) for t in tx.waiting(self.hall.code, s)]
            waiting = routing.rank(queued, self.hall, now)
            offered = []
            for ticket in waiting:
                if ticket.service not in services:
                    continue
                agent = routing.best_agent(ticket, agents, skills_of)
                if agent is None:
                    continue
                t, w = tr.offer(ticket, agent, now, timeout)
                self._save(tx, "ticket.offered", t, w, expires_at=t.offer_expires_at)
                agents.remove(agent)
                offered.append(t)
                if not agents:
                    break
            return offered

        return await self.store.run(offer_all)

    async def accept(self, vn: str) -> Ticket:
        """The agent accepts the offered call."""
        return await self.store.run(self._desk_step(vn, "accept"))

    async def reject(self, vn: str) -> Ticket:
        """The agent rejects the offered call; it waits for the next agent, keeping its place."""
        return await self.store.run(self._desk_step(vn, "reject"))

    def _rejecting(self, vn: str) -> Callable[[Tx], Ticket]:
        now = self.clock.now()

        def reject(tx: Tx) -> Ticket:
            ws, ticket = self._held(tx, vn)
            return self._decline(tx, ticket, ws, now, "rejected")

        return reject

    # --- workstations -----------------------------------------------------------

    async def sign_in(self, vn: str, window: str) -> Workstation:
        """A staffer signs in under a virtual number at a window or hotline seat."""
        seat = self.hall.window(window)
        if seat is None:
            raise UnknownWindowError(window=window)
        now = self.clock.now()

        def sign_in(tx: Tx) -> Workstation:
            ws = self._workstation(tx, vn)
            other = tx.workstation_at(self.hall.code, window)
            if other is not None and other.virtual_number != vn:
                raise WindowTakenError(window=window, virtual_number=other.virtual_number)
            w = tr.sign_in(ws, window, seat.kind, now)
            self._save(tx, "workstation.signed_in", None, w)
            return w

        return await self.store.run(sign_in)

    async def sign_out(self, vn: str) -> Workstation:
        """A staffer signs out (no ticket in hand, none on hold: a held citizen would be
        stranded with nobody to resume them)."""
        now = self.clock.now()

        def sign_out(tx: Tx) -> Workstation:
            held = [t for t in tx.tickets_in(self.hall.code, [T.HELD.value]) if t.workstation == vn]
            if held:
                raise HeldTicketsError(virtual_number=vn, numbers="、".join(t.number for t in held))
            w = tr.sign_out(self._workstation(tx, vn), now)
            self._save(tx, "workstation.signed_out", None, w)
            return w

        return await self.store.run(sign_out)

    async def pause(self, vn: str, reason: str) -> Workstation:
        """Pause with a reason: break, meeting, back office, stepped away."""
        reason = reason.strip()
        if not reason:
            raise InvalidRequestError(reason="a pause needs a reason", reason_zh="暂停需要填写原因")
        return await self._ws_change(
            vn, "workstation.paused", lambda w, now: tr.pause(w, reason, now), reason=reason
        )

    async def resume_work(self, vn: str) -> Workstation:
        """Come back from a pause (or end wrap-up early)."""

        def back(w: Workstation, now: float) -> Workstation:
            return tr.end_wrap_up(w, now) if w.state == W.WRAP_UP else tr.resume_work(w, now)

        return await self._ws_change(vn, "workstation.resumed", back)

    # --- time passing -----------------------------------------------------------

    async def tick(self) -> list[Event]:
        """Apply what time decides: offer and call time-outs, wrap-up ends, day-end expiry."""
        now = self.clock.now()
        today = self.day_of(now)
        closing = self.closing_time(now)

        def sweep(tx: Tx) -> list[Event]:
            return [
                *self._sweep_offers(tx, now),
                *self._sweep_wrap_up(tx, now),
                *self._sweep_calls(tx, now),
                *self._sweep_expired(tx, now, today, closing),
            ]

        return await self.store.run(sweep)

    def closing_time(self, now: float) -> float | None:
        """When the hall closes today (its last session's end), or None if hours are not set.

        A day without sessions closes at its midnight, so nothing waits through it.
        """
        local = datetime.fromtimestamp(now, self.tz)
        sessions = self.sessions_on(local.date())
        if not sessions:
            midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
            return None if not self.hall.hours else midnight.timestamp()
        last = max(s.closes for s in sessions)
        closes = local.replace(hour=last.hour, minute=last.minute, second=0, microsecond=0)
        return closes.timestamp()

    def is_open(self, now: float) -> bool:
        """True inside one of today's sessions (always, when no hours are configured)."""
        if not self.hall.hours:
            return True
        local = datetime.fromtimestamp(now, self.tz)
        moment = local.time()
        return any(s.opens <= moment < s.closes for s in self.sessions_on(local.date()))

    def sessions_on(self, day: date) -> tuple[Session, ...]:
        """The hall's opening sessions on a date: none on a public holiday, and a weekend day
        worked in exchange (调休) keeps an ordinary Monday's hours."""
        calendar = self.hall.calendar
        if day in calendar.holidays:
            return ()
        if day in calendar.worked_weekends:
            return tuple(self.hall.hours.get(0, ()))
        return tuple(self.hall.hours.get(day.weekday(), ()))

    # --- queries ----------------------------------------------------------------

    async def ticket(self, ticket_id: int) -> Ticket:
        """A ticket by id."""
        return await self.store.run(lambda tx: self._ticket(tx, ticket_id))

    async def ticket_by_token(self, token: str) -> Ticket | None:
        """A ticket by its unguessable status token."""
        return await self.store.run(lambda tx: tx.ticket_by_token(token))

    async def ticket_by_number(self, number: str) -> Ticket | None:
        """Today's live ticket carrying ``number`` (a transfer keeps the number)."""
        day = self.day_of(self.clock.now())
        return await self.store.run(lambda tx: tx.ticket_by_number(self.hall.code, day, number))

    async def workstation(self, vn: str) -> Workstation:
        """A workstation by virtual number."""
        return await self.store.run(lambda tx: self._workstation(tx, vn))

    async def desk(self, vn: str) -> tuple[Workstation, Ticket | None]:
        """A workstation and the ticket it holds, read together."""
        return await self.store.run(lambda tx: self._desk(tx, vn))

    async def at_desk(
        self, vn: str, verb: DeskVerb, finish: int | None = None
    ) -> tuple[Workstation, Ticket | None]:
        """Do one of a staffer's desk verbs, then read the desk as :meth:`desk` does, in the
        same transaction: what the console shows next is what this verb left, and the verb
        and the read cost one job, not two."""
        step = self._desk_step(vn, verb, finish)

        def both(tx: Tx) -> tuple[Workstation, Ticket | None]:
            step(tx)
            return self._desk(tx, vn)

        return await self.store.run(both)

    def _desk(self, tx: Tx, vn: str) -> tuple[Workstation, Ticket | None]:
        ws = self._workstation(tx, vn)
        return ws, tx.get_ticket(ws.ticket_id) if ws.ticket_id else None

    def _desk_step(self, vn: str, verb: DeskVerb, finish: int | None = None) -> Callable[[Tx], Any]:
        """The transaction step of one desk verb (the public methods and :meth:`at_desk`)."""
        if finish is not None and verb != "call_next":
            raise InvalidRequestError(
                reason=f"only call_next finishes a named ticket, not {verb}",
                reason_zh="只有“下一位”可指定办结的号票",
            )
        match verb:
            case "call_next":
                return self._calling_next(vn, finish)
            case "recall":
                return self._recalling(vn)
            case "start_service":
                return self._held_step(vn, "ticket.started", tr.start)
            case "accept":
                return self._held_step(vn, "ticket.started", tr.start, accepted=True)
            case "complete":
                return self._held_step(vn, "ticket.completed", self._done)
            case "mark_no_show":
                return self._held_step(vn, "ticket.no_show", tr.no_show)
            case "hold":
                return self._held_step(vn, "ticket.held", tr.hold)
            case "reject":
                return self._rejecting(vn)
        raise InvalidRequestError(reason=f"no desk verb {verb!r}", reason_zh="没有这个操作")

    async def workstations(self) -> list[Workstation]:
        """Every workstation of the hall."""
        return await self.store.run(lambda tx: tx.workstations(self.hall.code))

    async def waiting(self, service: str | None = None) -> list[Ticket]:
        """The waiting tickets (of one service) in the order they would be served."""
        now = self.clock.now()
        rows = await self.store.run(lambda tx: tx.waiting(self.hall.code, service))
        return routing.rank(rows, self.hall, now)

    async def wait_estimate(self, ticket_id: int) -> WaitEstimate | None:
        """People ahead and expected minutes for a waiting ticket; None once it is not waiting."""
        now = self.clock.now()

        def est(tx: Tx) -> WaitEstimate | None:
            ticket = self._ticket(tx, ticket_id)
            if ticket.state != T.WAITING:
                return None
            queue = routing.rank(tx.waiting(self.hall.code, ticket.service), self.hall, now)
            ahead = next(i for i, t in enumerate(queue) if t.id == ticket.id)
            return self._estimate(tx, self._service(ticket.service), ahead)

        return await self.store.run(est)

    async def state(self) -> HallState:
        """Today's tickets, open tickets of earlier days, every workstation, and the log's end."""
        now = self.clock.now()
        day = self.day_of(now)
        live = [T.WAITING.value, T.CALLED.value, T.SERVING.value, T.HELD.value]

        def read(tx: Tx) -> HallState:
            tickets = {t.id: t for t in tx.tickets_in(self.hall.code, live)}
            tickets.update((t.id, t) for t in tx.tickets_of_day(self.hall.code, day))
            workstations = tx.workstations(self.hall.code)
            return HallState(day, list(tickets.values()), workstations, tx.last_event_id())

        return await self.store.run(read)

    async def run(self, fn: Callable[[Tx], R]) -> R:
        """Run a read or write of an adapter's own in one transaction of the engine's store."""
        return await self.store.run(fn)

    # --- inside transactions ----------------------------------------------------

    def _service(self, code: str) -> Service:
        svc = self.hall.service(code)
        if svc is None:
            raise UnknownServiceError(service=code)
        return svc

    def _prefix(self, svc: Service, priority: str) -> str:
        pclass = self.hall.priority_class(priority)
        return (pclass.prefix if pclass and pclass.prefix else None) or svc.prefix

    def _skills(self, vn: str) -> dict[str, int]:
        return self._skill_map.get(vn, {})

    @cached_property
    def _class_codes(self) -> list[str]:
        return [p.code for p in self.hall.priority_classes]

    @cached_property
    def _skilled_for(self) -> dict[str, list[str]]:
        """Service code to the virtual numbers skilled for it."""
        out: dict[str, list[str]] = {}
        for vn, skills in self._skill_map.items():
            for service in skills:
                out.setdefault(service, []).append(vn)
        return out

    @cached_property
    def _skill_map(self) -> dict[str, dict[str, int]]:
        return {s.virtual_number: dict(s.skills) for s in self.hall.staff}

    def _skills_at(self, vn: str, kind: SeatKind) -> dict[str, int]:
        """The skills of ``vn`` for services served at this kind of seat (not to be changed)."""
        skills = self._seat_skills.get((vn, kind))
        if skills is None:
            skills = self._seat_skills[vn, kind] = {
                code: level
                for code, level in self._skills(vn).items()
                if (svc := self.hall.service(code)) is not None and svc.served_at == kind
            }
        return skills

    def _require_skill(self, vn: str, service: str, kind: SeatKind | None = None) -> None:
        skills = self._skills(vn) if kind is None else self._skills_at(vn, kind)
        if service not in skills:
            raise SkillMissingError(virtual_number=vn, service=service)

    def _require_same_seat(self, ticket: Ticket, service: str) -> None:
        target = self._service(service)
        here = self._service(ticket.service)
        if target.served_at != here.served_at:
            raise InvalidRequestError(
                reason=f"a {here.channel.value} ticket cannot move to the"
                f" {target.channel.value} service {service}",
                reason_zh=f"{here.name_zh}的号票不能转到{target.name_zh}（渠道不同）",
            )

    def _require_kind(self, ws: Workstation, kind: SeatKind, action: str) -> None:
        if ws.kind != kind:
            seat = ws.kind or SeatKind.WINDOW
            raise WrongSeatKindError(
                virtual_number=ws.virtual_number, kind=seat.value, kind_zh=SEAT_ZH[seat],
                action=action, action_zh=tr.ACTION_ZH.get(action, action),
            )  # fmt: skip

    def _wrap_up_s(self, ws: Workstation) -> float:
        p = self.hall.policy
        return p.hotline_wrap_up_s if ws.kind == SeatKind.HOTLINE else p.wrap_up_s

    def _workstation(self, tx: Tx, vn: str) -> Workstation:
        ws = tx.get_workstation(self.hall.code, vn)
        if ws is None:
            raise UnknownWorkstationError(virtual_number=vn)
        return ws

    def _signed_in(self, tx: Tx, vn: str) -> Workstation:
        ws = self._workstation(tx, vn)
        tr.require_workstation(
            ws, (W.AVAILABLE, W.CALLING, W.SERVING, W.WRAP_UP, W.PAUSED), "call next"
        )
        return ws

    def _ticket(self, tx: Tx, ticket_id: int) -> Ticket:
        ticket = tx.get_ticket(ticket_id)
        if ticket is None or ticket.hall != self.hall.code:
            raise TicketNotFoundError(ticket=ticket_id)
        return ticket

    def _held(self, tx: Tx, vn: str) -> tuple[Workstation, Ticket]:
        ws = self._signed_in(tx, vn)
        if ws.ticket_id is None:
            raise NoTicketError(virtual_number=vn)
        return ws, self._ticket(tx, ws.ticket_id)

    def _holder(self, tx: Tx, ticket: Ticket, by: str | None) -> Workstation | None:
        """The workstation holding an active ticket, checked against who asks."""
        if ticket.workstation is None or not ticket.state.is_active:
            return None
        ws = self._workstation(tx, ticket.workstation)
        if by is not None:
            tr.require_holder(ticket, self._workstation(tx, by))
        return ws

    def _estimate(self, tx: Tx, svc: Service, ahead: int) -> WaitEstimate:
        skilled = self._skilled_for.get(svc.code, [])
        staffed = tx.count_staffed(self.hall.code, svc.served_at.value, skilled)
        times = tx.handle_times(self.hall.code, svc.code, self.hall.policy.handle_time_window)
        handle_min = sum(times) / len(times) / 60.0 if times else svc.default_handle_min
        return routing.estimate(ahead, staffed, handle_min)

    def emit(self, tx: Tx, kind: str, ticket: Ticket | None = None, **payload: Any) -> Event:
        """Append an event of another part of the engine (ratings, cases …) inside ``tx``."""
        return self._emit(tx, kind, ticket, None, **payload)

    def today(self) -> str:
        """The hall's local day now."""
        return self.day_of(self.clock.now())

    def _emit(
        self, tx: Tx, kind: str, ticket: Ticket | None, ws: Workstation | None, **extra: Any
    ) -> Event:
        payload: dict[str, Any] = dict(extra)
        if ticket is not None:
            payload["ticket"] = ticket.to_dict()
        if ws is not None:
            payload["workstation"] = ws.to_dict()
        vn = ws.virtual_number if ws else (ticket.workstation if ticket else None)
        window = ws.window if ws and ws.window else (ticket.window if ticket else None)
        return tx.append_event(
            Event(
                id=0, hall=self.hall.code, type=kind, at=self.clock.now(),
                ticket_id=ticket.id if ticket else None, virtual_number=vn, window=window,
                payload=payload, made_from=(ticket, ws),
            )
        )  # fmt: skip

    def _save(
        self, tx: Tx, kind: str, ticket: Ticket | None, ws: Workstation | None, **extra: Any
    ) -> Event:
        if ticket is not None:
            tx.update_ticket(ticket)
        if ws is not None:
            tx.put_workstation(ws)
        return self._emit(tx, kind, ticket, ws, **extra)

    def _held_step(
        self,
        vn: str,
        kind: str,
        step: Callable[[Ticket, Workstation, float], tuple[Ticket, Workstation]],
        **extra: Any,
    ) -> Callable[[Tx], Ticket]:
        now = self.clock.now()

        def apply(tx: Tx) -> Ticket:
            ws, ticket = self._held(tx, vn)
            t, w = step(ticket, ws, now)
            self._save(tx, kind, t, w, **extra)
            return t

        return apply

    async def _ws_change(
        self, vn: str, kind: str, step: Callable[[Workstation, float], Workstation], **extra: Any
    ) -> Workstation:
        now = self.clock.now()

        def apply(tx: Tx) -> Workstation:
            w = step(self._workstation(tx, vn), now)
            self._save(tx, kind, None, w, **extra)
            return w

        return await self.store.run(apply)

    async def _close(
        self, ticket_id: int, state: TicketState, kind: str, action: str, by: str | None
    ) -> Ticket:
        now = self.clock.now()

        def apply(tx: Tx) -> Ticket:
            ticket = self._ticket(tx, ticket_id)
            if state == T.ABANDONED and ticket.channel == Channel.HALL:
                tr.require_ticket(ticket, (), action)
            ws = self._holder(tx, ticket, by)
            t, w = tr.close(ticket, ws, now, state, action)
            self._save(tx, kind, t, w)
            return t

        return await self.store.run(apply)

    def _decline(self, tx: Tx, ticket: Ticket, ws: Workstation, now: float, why: str) -> Ticket:
        return self._decline_events(tx, ticket, ws, now, why)[0].ticket  # type: ignore[return-value]

    def _decline_events(
        self, tx: Tx, ticket: Ticket, ws: Workstation, now: float, why: str
    ) -> list[Event]:
        t, w = tr.decline(ticket, ws, now)
        events = [self._save(tx, "ticket.offer_declined", t, w, reason=why)]
        if w.missed_offers >= self.hall.policy.missed_offers_before_pause:
            paused = tr.pause(w, "missed_offers", now)
            events.append(
                self._save(
                    tx, "workstation.paused", None, paused, reason="missed_offers", automatic=True
                )
            )
        return events

    def _sweep_offers(self, tx: Tx, now: float) -> list[Event]:
        events: list[Event] = []
        for ticket in tx.tickets_in(self.hall.code, [T.CALLED.value]):
            if ticket.offer_expires_at is not None and ticket.offer_expires_at <= now:
                ws = self._workstation(tx, ticket.workstation or "")
                events += self._decline_events(tx, ticket, ws, now, "timeout")
        return events

    def _sweep_wrap_up(self, tx: Tx, now: float) -> list[Event]:
        return [
            self._save(tx, "workstation.resumed", None, tr.end_wrap_up(ws, now), automatic=True)
            for ws in tx.workstations(self.hall.code)
            if ws.state == W.WRAP_UP and ws.wrap_up_until is not None and ws.wrap_up_until <= now
        ]

    def _sweep_calls(self, tx: Tx, now: float) -> list[Event]:
        timeout = self.hall.policy.call_timeout_s
        events: list[Event] = []
        if timeout <= 0:
            return events
        for ticket in tx.tickets_in(self.hall.code, [T.CALLED.value]):
            if ticket.offer_expires_at is None and (ticket.called_at or now) + timeout <= now:
                ws = self._workstation(tx, ticket.workstation or "")
                t, w = tr.no_show(ticket, ws, now)
                events.append(self._save(tx, "ticket.no_show", t, w, automatic=True))
        return events

    def _sweep_expired(self, tx: Tx, now: float, today: str, closing: float | None) -> list[Event]:
        after_close = closing is not None and now >= closing
        states = [T.WAITING.value, T.CALLED.value, T.HELD.value]
        events: list[Event] = []
        # While the hall is open only earlier days' tickets can expire: ask for just those.
        for ticket in tx.tickets_in(self.hall.code, states, None if after_close else today):
            if ticket.channel != Channel.HALL and ticket.day == today:
                continue  # the hotline runs 24 hours: only a new day ends its calls
            # A ticket taken after closing (when the hall allows it) lives until midnight.
            taken_before_close = closing is not None and ticket.arrived_at < closing
            if ticket.day < today or (after_close and taken_before_close):
                ws = self._holder(tx, ticket, None)
                t, w = tr.close(ticket, ws, now, T.EXPIRED, "expired")
                events.append(self._save(tx, "ticket.expired", t, w))
        return events
