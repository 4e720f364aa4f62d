"""The nouns of the queue: hall configuration, tickets, workstations, events.

Everything here is a frozen dataclass or a StrEnum; state changes make new
values with ``dataclasses.replace`` so a transition can never half-happen.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import time
from enum import StrEnum
from typing import Any, TypeVar

from .calendar import WorkCalendar


class Channel(StrEnum):
    """Where a ticket came from and where it is served."""

    HALL = "hall"
    PHONE = "phone"
    CALLBACK = "callback"


class SeatKind(StrEnum):
    """A hall window (pull: the staffer calls) or a hotline seat (push: calls are offered)."""

    WINDOW = "window"
    HOTLINE = "hotline"


class TicketState(StrEnum):
    """The states of DESIGN §4."""

    WAITING = "waiting"
    CALLED = "called"
    SERVING = "serving"
    HELD = "held"
    DONE = "done"
    NO_SHOW = "no_show"
    TRANSFERRED = "transferred"
    CANCELLED = "cancelled"
    ABANDONED = "abandoned"
    EXPIRED = "expired"

    @property
    def is_final(self) -> bool:
        """True for states no ticket leaves."""
        return self in _FINAL_TICKET_STATES

    @property
    def is_active(self) -> bool:
        """True while a workstation is busy with the ticket (called or serving)."""
        return self in (TicketState.CALLED, TicketState.SERVING)


_FINAL_TICKET_STATES = frozenset(
    {
        TicketState.DONE,
        TicketState.NO_SHOW,
        TicketState.TRANSFERRED,
        TicketState.CANCELLED,
        TicketState.ABANDONED,
        TicketState.EXPIRED,
    }
)


class WorkstationState(StrEnum):
    """The states of a virtual work number (DESIGN §4)."""

    OFFLINE = "offline"
    AVAILABLE = "available"
    CALLING = "calling"
    SERVING = "serving"
    WRAP_UP = "wrap_up"
    PAUSED = "paused"


class PauseReason(StrEnum):
    """Why a workstation is paused; 'away' is the 暂离 supervisors know."""

    BREAK = "break"
    MEETING = "meeting"
    BACK_OFFICE = "back_office"
    AWAY = "away"
    MISSED_OFFERS = "missed_offers"


class TransferPosition(StrEnum):
    """Where a transferred ticket lands in its new queue."""

    FRONT = "front"
    BACK = "back"


# ---------------------------------------------------------------------------
# Configuration: what a hall is made of. Built by callcenter.settings from
# config.toml (or directly by tests); the engine only reads it.


@dataclass(frozen=True, slots=True)
class Department:
    """A department (部门) whose services the hall hosts."""

    code: str
    name_zh: str
    name_en: str


@dataclass(frozen=True, slots=True)
class Service:
    """A kind of business (事项) with its ticket prefix and target wait."""

    code: str
    name_zh: str
    name_en: str
    department: str
    prefix: str
    target_wait_min: float = 15.0
    default_handle_min: float = 10.0
    channel: Channel = Channel.HALL
    daily_limit: int | None = None
    promise_days: int = 5
    case_flow: str = "licence"
    bookable: bool = True
    pickup_window: str | None = None
    pickup_note_zh: str = "请携带本人身份证原件及受理回执"
    pickup_note_en: str = "Please bring your ID card and the acceptance receipt"

    @property
    def served_at(self) -> SeatKind:
        """Hall services are served at windows; phone and call-back ones at hotline seats."""
        return SeatKind.WINDOW if self.channel == Channel.HALL else SeatKind.HOTLINE


@dataclass(frozen=True, slots=True)
class PriorityClass:
    """A priority class (优先) with its routing weight and optional own prefix."""

    code: str
    name_zh: str
    name_en: str
    weight: float = 1.0
    prefix: str | None = None


@dataclass(frozen=True, slots=True)
class Window:
    """A physical counter or hotline seat; displays show its number."""

    number: str
    kind: SeatKind = SeatKind.WINDOW
    zone: str = ""


@dataclass(frozen=True, slots=True)
class Staff:
    """A staffer's virtual work number (虚拟工号) and skills: service code to level 1–5."""

    virtual_number: str
    name: str
    skills: Mapping[str, int]
    role: str = "staff"
    department: str | None = None


@dataclass(frozen=True, slots=True)
class Session:
    """One opening period of a day, e.g. 09:00–12:00; ``extended`` marks 延时 evenings."""

    opens: time
    closes: time
    extended: bool = False


@dataclass(frozen=True, slots=True)
class Policy:
    """The knobs of calling and routing."""

    recalls_before_no_show: int = 2
    call_timeout_s: float = 0.0
    offer_timeout_s: float = 20.0
    missed_offers_before_pause: int = 2
    wrap_up_s: float = 0.0
    hotline_wrap_up_s: float = 30.0
    transfer_position: TransferPosition = TransferPosition.FRONT
    handle_time_window: int = 20
    silent: bool = False
    issue_outside_hours: bool = False
    # 下一位 ends the current visit, as the key on a counter's caller pad does: no separate
    # 办结 press between citizens. Off, "call next" needs the window free.
    next_completes: bool = False


@dataclass(frozen=True, slots=True)
class BookingPolicy:
    """Appointments (预约): slots, horizon, cancellation, check-in window, no-show rules."""

    slot_min: int = 30
    capacity: int = 4
    horizon_days: int = 5
    cancel_before_h: float = 2.0
    early_min: float = 30.0
    grace_min: float = 15.0
    no_shows_to_suspend: int = 3
    no_show_window_days: int = 90
    suspend_days: int = 30
    reminder_hour: int = 18


@dataclass(frozen=True, slots=True)
class CaseFlow:
    """The statuses an application case moves through: each status to the ones it may go to."""

    code: str
    transitions: Mapping[str, tuple[str, ...]]
    pickup_status: str | None = None

    @property
    def initial(self) -> str:
        """The status a new case starts in (the first one listed)."""
        return next(iter(self.transitions))

    def is_final(self, status: str) -> bool:
        """True for a status with nowhere to go."""
        return not self.transitions.get(status)


DEFAULT_FLOW = CaseFlow(
    "licence",
    {
        "受理": ("审查",),
        "审查": ("核准", "不予许可"),
        "核准": ("制证",),
        "不予许可": (),
        "制证": ("待取件",),
        "待取件": ("已取件",),
        "已取件": (),
    },
    pickup_status="待取件",
)


@dataclass(frozen=True, slots=True)
class RatingPolicy:
    """好差评: which levels are bad and how long a follow-up may take."""

    bad_at_or_below: int = 2
    verify_days: int = 1
    follow_up_days: int = 5


@dataclass(frozen=True, slots=True)
class WorkOrderPolicy:
    """Work-order deadlines: working days per type, hours when urgent; the yellow warning."""

    days: Mapping[str, int] = field(
        default_factory=lambda: {
            "consult": 1,
            "help": 5,
            "suggestion": 5,
            "complaint": 10,
            "report": 10,
        }
    )
    urgent_hours: float = 4.0
    yellow_share: float = 0.25


@dataclass(frozen=True)
class HallConfig:
    """Everything the engine needs to know about one hall."""

    code: str
    name_zh: str
    name_en: str
    timezone: str
    departments: tuple[Department, ...]
    services: tuple[Service, ...]
    priority_classes: tuple[PriorityClass, ...]
    windows: tuple[Window, ...]
    staff: tuple[Staff, ...]
    hours: Mapping[int, tuple[Session, ...]] = field(default_factory=dict)
    policy: Policy = field(default_factory=Policy)
    calendar: WorkCalendar = field(default_factory=WorkCalendar)
    booking: BookingPolicy = field(default_factory=BookingPolicy)
    case_flows: Mapping[str, CaseFlow] = field(default_factory=lambda: {"licence": DEFAULT_FLOW})
    rating: RatingPolicy = field(default_factory=RatingPolicy)
    work_orders: WorkOrderPolicy = field(default_factory=WorkOrderPolicy)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_services", {s.code: s for s in self.services})
        object.__setattr__(self, "_classes", {p.code: p for p in self.priority_classes})
        object.__setattr__(self, "_windows", {w.number: w for w in self.windows})
        object.__setattr__(self, "_staff", {s.virtual_number: s for s in self.staff})

    def service(self, code: str) -> Service | None:
        """The service with this code, or None."""
        return self._services.get(code)  # type: ignore[attr-defined]

    def priority_class(self, code: str) -> PriorityClass | None:
        """The priority class with this code, or None."""
        return self._classes.get(code)  # type: ignore[attr-defined]

    def window(self, number: str) -> Window | None:
        """The window or seat with this number, or None."""
        return self._windows.get(number)  # type: ignore[attr-defined]

    def staffer(self, virtual_number: str) -> Staff | None:
        """The staffer behind a virtual number, or None."""
        return self._staff.get(virtual_number)  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------
# Rows: what the store keeps.


@dataclass(frozen=True, slots=True)
class Ticket:
    """One unit of waiting work: a hall visit, a phone call or a call-back request.

    ``arrived_at`` is when the citizen first arrived and survives transfers;
    ``queued_at`` is the time routing orders by (the arrival time, or the
    transfer time when transfers go to the back).
    """

    id: int
    hall: str
    service: str
    number: str
    day: str
    channel: Channel
    priority: str
    state: TicketState
    token: str
    arrived_at: float
    queued_at: float
    updated_at: float
    phone: str | None = None
    appointment_ref: str | None = None
    appointment_at: float | None = None
    workstation: str | None = None
    window: str | None = None
    target_workstation: str | None = None
    called_at: float | None = None
    started_at: float | None = None
    ended_at: float | None = None
    recalls: int = 0
    offer_expires_at: float | None = None
    declined_by: tuple[str, ...] = ()
    parent_id: int | None = None
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field."""
        d = {name: getattr(self, name) for name in _TICKET_FIELDS}
        d["declined_by"] = list(self.declined_by)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Ticket:
        """The inverse of to_dict."""
        d = dict(d)
        d["channel"] = Channel(d["channel"])
        d["state"] = TicketState(d["state"])
        d["declined_by"] = tuple(d.get("declined_by") or ())
        return cls(**d)


@dataclass(frozen=True, slots=True)
class Workstation:
    """A virtual work number's live state: where it is signed in and what it holds."""

    virtual_number: str
    hall: str
    state: WorkstationState
    since: float
    window: str | None = None
    kind: SeatKind | None = None
    ticket_id: int | None = None
    pause_reason: str | None = None
    missed_offers: int = 0
    wrap_up_until: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field."""
        return {name: getattr(self, name) for name in _WORKSTATION_FIELDS}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Workstation:
        """The inverse of to_dict."""
        d = dict(d)
        d["state"] = WorkstationState(d["state"])
        d["kind"] = SeatKind(d["kind"]) if d.get("kind") else None
        return cls(**d)


_TICKET_FIELDS = tuple(f.name for f in dataclasses.fields(Ticket))
_WORKSTATION_FIELDS = tuple(f.name for f in dataclasses.fields(Workstation))


@dataclass(frozen=True, slots=True)
class Event:
    """An immutable record of one state change: the audit log and the outbox feed.

    ``payload`` carries the full rows after the change (``ticket``,
    ``workstation``) plus what readers need (``ahead``, ``wait_min`` …), so a
    reader never has to ask the store what happened.
    """

    id: int
    hall: str
    type: str
    at: float
    ticket_id: int | None = None
    virtual_number: str | None = None
    window: str | None = None
    payload: Mapping[str, Any] = field(default_factory=dict)
    # The rows the payload was made from, when this process made the event: every reader
    # asks for them, and parsing the payload again for each was a good part of their time.
    # Not stored; an event read back from the log parses its payload.
    made_from: tuple[Ticket | None, Workstation | None] | None = field(
        default=None, compare=False, repr=False
    )

    @property
    def ticket(self) -> Ticket | None:
        """The ticket row after the change, if the event touched one."""
        if self.made_from is not None:
            return self.made_from[0]
        t = self.payload.get("ticket")
        return Ticket.from_dict(t) if t else None

    @property
    def workstation(self) -> Workstation | None:
        """The workstation row after the change, if the event touched one."""
        if self.made_from is not None:
            return self.made_from[1]
        w = self.payload.get("workstation")
        return Workstation.from_dict(w) if w else None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field."""
        return {
            "id": self.id,
            "hall": self.hall,
            "type": self.type,
            "at": self.at,
            "ticket_id": self.ticket_id,
            "virtual_number": self.virtual_number,
            "window": self.window,
            "payload": dict(self.payload),
        }


Row = TypeVar("Row", Ticket, Workstation)
_ROW_FIELDS = {cls: tuple(f.name for f in fields(cls)) for cls in (Ticket, Workstation)}
# evolve() sets the fields itself: it would skip a __post_init__ check, so there is none.
assert not any(hasattr(cls, "__post_init__") for cls in _ROW_FIELDS)


def evolve(row: Row, **changes: Any) -> Row:
    """``dataclasses.replace`` for a Ticket or Workstation, in half its time: every
    transition copies one or two, and call-next runs four transitions' worth."""
    new = object.__new__(type(row))
    for name in _ROW_FIELDS[type(row)]:
        object.__setattr__(new, name, changes.pop(name) if name in changes else getattr(row, name))
    if changes:
        raise TypeError(f"{type(row).__name__} has no field {', '.join(changes)}")
    return new


@dataclass(frozen=True, slots=True)
class WaitEstimate:
    """People ahead of a waiting ticket and the minutes it can expect to wait."""

    ahead: int
    minutes: float
    staffed: int
