"""What the hall's screens show, as a pure projection of the event log.

``HallView`` starts from the tables (today's tickets, every workstation) and
then folds in each committed event, so the hall display, the window
displays, the supervisor dashboard and the MQTT retained topics all read one
in-memory picture instead of asking the database on every event.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from queue_engine import Event, HallConfig, Ticket, TicketState, Workstation, WorkstationState
from queue_engine.masking import mask_name
from queue_engine.routing import estimate

RECENT_CALLS = 8
T = TicketState
W = WorkstationState


@dataclass(frozen=True, slots=True)
class Call:
    """One call as the screens show it: 请A023号到12号窗口办理."""

    ticket_id: int
    number: str
    window: str
    service: str
    at: float
    recall: int = 0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "ticket_id": self.ticket_id, "number": self.number, "window": self.window,
            "service": self.service, "at": self.at, "recall": self.recall,
            "text_zh": f"请{self.number}号到{self.window}号窗口办理",
            "text_en": f"Ticket {self.number}, please go to window {self.window}",
        }  # fmt: skip


@dataclass
class Tally:
    """One service's live counts, kept as events arrive so screens never scan the day."""

    waiting: dict[int, Ticket] = field(default_factory=dict)
    called: set[int] = field(default_factory=set)
    within: set[int] = field(default_factory=set)
    done: set[int] = field(default_factory=set)


@dataclass
class HallView:
    """The live picture of one hall: queues, calls, windows, today's counts."""

    hall: HallConfig
    day: str = ""
    tickets: dict[int, Ticket] = field(default_factory=dict)
    workstations: dict[str, Workstation] = field(default_factory=dict)
    recent: deque[Call] = field(default_factory=lambda: deque(maxlen=RECENT_CALLS))
    handle_s: dict[str, deque[float]] = field(default_factory=dict)
    tallies: dict[str, Tally] = field(default_factory=dict)
    held: dict[str, dict[int, Ticket]] = field(default_factory=dict)
    at_window: dict[str, str] = field(default_factory=dict)
    last_event_id: int = 0

    @classmethod
    def load(
        cls,
        hall: HallConfig,
        day: str,
        tickets: Iterable[Ticket],
        workstations: Iterable[Workstation],
        last_event_id: int,
    ) -> HallView:
        """A view built from the tables as they are at ``last_event_id``."""
        view = cls(hall=hall, day=day, last_event_id=last_event_id)
        for ws in workstations:
            view._seat(ws)
        for t in sorted(tickets, key=lambda t: t.id):
            view._track(t)
            if t.called_at is not None and t.window and t.channel.value == "hall":
                view.recent.append(
                    Call(t.id, t.number, t.window, t.service, t.called_at, t.recalls)
                )
        view.recent = deque(sorted(view.recent, key=lambda c: c.at), maxlen=RECENT_CALLS)
        return view

    def apply(self, event: Event) -> None:
        """Fold one committed event in (events of other halls are ignored)."""
        if event.hall != self.hall.code or event.id <= self.last_event_id:
            return
        self.last_event_id = event.id
        ws = event.workstation
        if ws is not None:
            self._seat(ws)
        ticket = event.ticket
        if ticket is None:
            return
        if ticket.day > self.day:
            self._new_day(ticket.day)
        self._track(ticket)
        if event.type in ("ticket.called", "ticket.recalled") and ticket.window:
            self.recent.append(
                Call(
                    ticket.id,
                    ticket.number,
                    ticket.window,
                    ticket.service,
                    event.at,
                    ticket.recalls,
                )
            )

    def _seat(self, ws: Workstation) -> None:
        before = self.workstations.get(ws.virtual_number)
        if (
            before is not None
            and before.window
            and self.at_window.get(before.window) == ws.virtual_number
        ):
            del self.at_window[before.window]
        self.workstations[ws.virtual_number] = ws
        if ws.window:
            self.at_window[ws.window] = ws.virtual_number

    def _new_day(self, day: str) -> None:
        self.day = day
        self.tickets = {i: t for i, t in self.tickets.items() if not t.state.is_final}
        self.recent.clear()
        for tally in self.tallies.values():
            tally.called.clear()
            tally.within.clear()
            tally.done.clear()

    def tally(self, service: str) -> Tally:
        """The live counts of one service."""
        tally = self.tallies.get(service)
        if tally is None:
            tally = self.tallies[service] = Tally()
        return tally

    def _track(self, t: Ticket) -> None:
        before = self.tickets.get(t.id)
        self.tickets[t.id] = t
        tally = self.tally(t.service)
        if t.state == T.WAITING:
            tally.waiting[t.id] = t
        else:
            tally.waiting.pop(t.id, None)
        self._track_held(before, t)
        if t.day != self.day:
            return
        if t.called_at is not None:
            tally.called.add(t.id)
            svc = self.hall.service(t.service)
            if svc and t.called_at - t.arrived_at <= svc.target_wait_min * 60:
                tally.within.add(t.id)
        if t.state == T.DONE and t.id not in tally.done:
            tally.done.add(t.id)
            if t.started_at is not None and t.ended_at is not None:
                window = self.hall.policy.handle_time_window
                self.handle_s.setdefault(t.service, deque(maxlen=window)).append(
                    t.ended_at - t.started_at
                )

    def _track_held(self, before: Ticket | None, t: Ticket) -> None:
        if before is not None and before.state == T.HELD and before.workstation:
            self.held.get(before.workstation, {}).pop(t.id, None)
        if t.state == T.HELD and t.workstation:
            self.held.setdefault(t.workstation, {})[t.id] = t

    # --- what screens read ------------------------------------------------------

    def waiting(self, service: str) -> list[Ticket]:
        """Waiting tickets of a service, oldest first."""
        return sorted(self.tally(service).waiting.values(), key=lambda t: (t.queued_at, t.id))

    def waiting_count(self, service: str) -> int:
        """How many tickets of a service wait."""
        return len(self.tally(service).waiting)

    def staffed(self, service: str) -> int:
        """Signed-in workstations skilled for ``service`` (at the right kind of seat)."""
        svc = self.hall.service(service)
        if svc is None:
            return 0
        count = 0
        for vn in self.at_window.values():
            staff = self.hall.staffer(vn)
            ws = self.workstations[vn]
            if staff and service in staff.skills and ws.kind == svc.served_at:
                count += 1
        return count

    def handle_min(self, service: str) -> float:
        """Recent average handle time, or the service's configured default."""
        times = self.handle_s.get(service)
        if times:
            return sum(times) / len(times) / 60.0
        svc = self.hall.service(service)
        return svc.default_handle_min if svc else 10.0

    def queues(self, now: float) -> list[dict[str, Any]]:
        """Per service: waiting, expected wait, longest wait, served today, share within target."""
        rows = []
        for svc in self.hall.services:
            tally = self.tally(svc.code)
            first = min((t.arrived_at for t in tally.waiting.values()), default=None)
            longest = round((now - first) / 60, 1) if first is not None else 0.0
            est = estimate(len(tally.waiting), self.staffed(svc.code), self.handle_min(svc.code))
            called = len(tally.called)
            rows.append({
                "service": svc.code, "name_zh": svc.name_zh, "name_en": svc.name_en,
                "department": svc.department, "prefix": svc.prefix, "channel": svc.channel.value,
                "waiting": len(tally.waiting), "expected_wait_min": est.minutes,
                "staffed": est.staffed, "longest_wait_min": longest,
                "served_today": len(tally.done),
                "within_target_share": round(len(tally.within) / called, 3) if called else None,
                "target_wait_min": svc.target_wait_min,
            })  # fmt: skip
        return rows

    def window_line(self, window: str) -> dict[str, Any]:
        """What one window's screen shows: who is signed in, the ticket called or served."""
        vn = self.at_window.get(window)
        ws = self.workstations.get(vn) if vn else None
        ticket = self.tickets.get(ws.ticket_id) if ws and ws.ticket_id else None
        staff = self.hall.staffer(ws.virtual_number) if ws else None
        svc = self.hall.service(ticket.service) if ticket else None
        return {
            "window": window,
            "state": ws.state.value if ws else W.OFFLINE.value,
            "virtual_number": ws.virtual_number if ws else None,
            "staff_masked": mask_name(staff.name) if staff else None,
            "pause_reason": ws.pause_reason if ws else None,
            "number": ticket.number if ticket else None,
            "ticket_state": ticket.state.value if ticket else None,
            "service_zh": svc.name_zh if svc else None,
            "service_en": svc.name_en if svc else None,
        }

    def snapshot(self, now: float) -> dict[str, Any]:
        """The public display snapshot: calling now, recent calls, queues, windows."""
        # A recall appends the same ticket again: show each called ticket once, latest call.
        latest = {c.ticket_id: c for c in self.recent if self._still_called(c)}
        calling = sorted(latest.values(), key=lambda c: c.at)
        return {
            "hall": self.hall.code, "name_zh": self.hall.name_zh, "name_en": self.hall.name_en,
            "at": now, "event_id": self.last_event_id, "silent": self.hall.policy.silent,
            "calling": [c.to_dict() for c in reversed(calling)],
            "recent": [c.to_dict() for c in reversed(self.recent)],
            "queues": self.queues(now),
            "windows": [self.window_line(w.number) for w in self.hall.windows],
        }  # fmt: skip

    def _still_called(self, call: Call) -> bool:
        t = self.tickets.get(call.ticket_id)
        return t is not None and t.state == T.CALLED and t.window == call.window

    def workstation_rows(self, now: float) -> list[dict[str, Any]]:
        """Every workstation with its state and time in state, for supervisors."""
        rows = []
        for staff in self.hall.staff:
            ws = self.workstations.get(staff.virtual_number)
            ticket = self.tickets.get(ws.ticket_id) if ws and ws.ticket_id else None
            rows.append({
                "virtual_number": staff.virtual_number, "name": staff.name, "role": staff.role,
                "state": ws.state.value if ws else "offline", "window": ws.window if ws else None,
                "kind": ws.kind.value if ws and ws.kind else None,
                "since": ws.since if ws else None,
                "seconds_in_state": round(now - ws.since) if ws else None,
                "pause_reason": ws.pause_reason if ws else None,
                "ticket": ticket.number if ticket else None,
                "served_today": sum(1 for t in self.tickets.values()
                                    if t.workstation == staff.virtual_number and t.state == T.DONE),
                "skills": dict(staff.skills),
            })  # fmt: skip
        return rows
