"""The JSON API for what outlives the queue: ratings and their follow-ups."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import Field

from queue_engine.errors import AppointmentNotFoundError, CaseNotFoundError
from queue_engine.masking import mask_phone
from sms.phone import normalise

from .api import ERRORS, ticket_response
from .auth import ForbiddenError, Principal, Role
from .deps import (
    CaseReader,
    CaseWorker,
    Ctx,
    Hall,
    Issuer,
    RatingPad,
    Staffer,
    Supervisor,
    principal,
)
from .errors import ConsentRequiredError
from .runtime import HallRuntime
from .schemas import Body, RowId, TicketOut

router = APIRouter(prefix="/api", responses=ERRORS)


class RatingIn(Body):
    level: int = Field(ge=1, le=5, description="5 非常满意 … 1 非常不满意", examples=[5])
    comment: str | None = Field(default=None, max_length=500, examples=["办事很快，态度很好"])


class VerifyIn(Body):
    finding: str = Field(min_length=1, max_length=1000, examples=["已电话回访，窗口解释不清"])


class CloseIn(Body):
    outcome: str = Field(pattern=r"^(fixed|explained)$", examples=["fixed"])
    resolution: str = Field(min_length=1, max_length=1000, examples=["已对窗口人员进行业务培训"])
    reply: str = Field(min_length=1, max_length=300, examples=["感谢您的反馈，我们已整改。"])


@router.post("/halls/{hall}/windows/{window}/rating", status_code=201, tags=["ratings"])
async def rate_at_window(
    window: str, body: RatingIn, runtime: Hall, _: RatingPad
) -> dict[str, Any]:
    """The rating pad at a window rates the service just finished there."""
    rating = await runtime.ratings.rate_at_window(window, body.level, body.comment)
    return rating.to_dict()


@router.get("/ratings/{token}", tags=["ratings"])
async def rating_link(token: str, ctx: Ctx) -> dict[str, Any]:
    """What a one-time rating link is for: the ticket number, service and window."""
    for runtime in ctx.halls.values():
        ticket = await runtime.ratings.link_ticket(token)
        svc = runtime.engine.hall.service(ticket.service)
        return {
            "number": ticket.number, "window": ticket.window, "service": ticket.service,
            "service_zh": svc.name_zh if svc else ticket.service,
            "service_en": svc.name_en if svc else ticket.service, "hall": runtime.engine.hall.code,
            "used": await runtime.ratings.link_used(token),
        }  # fmt: skip
    return {}


@router.post("/ratings/{token}", status_code=201, tags=["ratings"])
async def rate_by_link(token: str, body: RatingIn, ctx: Ctx) -> dict[str, Any]:
    """Rate through the one-time link sent by SMS after the service."""
    runtime = next(iter(ctx.halls.values()))
    rating = await runtime.ratings.rate_by_link(token, body.level, body.comment)
    return rating.to_dict()


@router.get("/halls/{hall}/follow-ups", tags=["ratings"])
async def follow_ups(
    runtime: Hall, _: Supervisor, state: Annotated[str, Query(max_length=60)] = "open,verified"
) -> list[dict[str, Any]]:
    """Bad-rating follow-ups (差评整改), by state."""
    states = tuple(s for s in state.split(",") if s in ("open", "verified", "fixed", "explained"))
    found = await runtime.ratings.follow_ups(states or ("open", "verified"))
    return [f.to_dict() | await runtime.ratings.follow_up_context(f) for f in found]


@router.post("/halls/{hall}/follow-ups/{follow_up_id}/verify", tags=["ratings"])
async def verify(
    follow_up_id: RowId, body: VerifyIn, runtime: Hall, who: Supervisor
) -> dict[str, Any]:
    """The supervisor called the citizen back and verified what happened."""
    done = await runtime.ratings.verify(follow_up_id, who.subject, body.finding)
    return done.to_dict()


@router.post("/halls/{hall}/follow-ups/{follow_up_id}/close", tags=["ratings"])
async def close(
    follow_up_id: RowId, body: CloseIn, runtime: Hall, who: Supervisor
) -> dict[str, Any]:
    """Fixed or explained; the reply reaches the citizen by SMS."""
    done = await runtime.ratings.close(
        follow_up_id, who.subject, body.outcome, body.resolution, body.reply
    )
    return done.to_dict()


@router.get("/halls/{hall}/ratings/stats", tags=["ratings"])
async def rating_stats(
    runtime: Hall,
    _: Supervisor,
    since: Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}-\d{2}$")] = None,
    until: Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}-\d{2}$")] = None,
) -> dict[str, Any]:
    """Per staffer and per service: served, average wait and handle time, ratings, 好评率."""
    today = runtime.engine.today()
    return await runtime.ratings.stats(since or today, until or today)


# --- appointments (预约) ------------------------------------------------------------------


class BookingIn(Body):
    service: str = Field(min_length=1, max_length=40, examples=["business_licence"])
    day: date = Field(examples=["2026-12-01"])
    slot_start: float = Field(description="the slot's start, POSIX seconds, from /booking/slots")
    phone: str = Field(min_length=5, max_length=32, examples=["13812345678"])
    id_number: str | None = Field(default=None, max_length=18, examples=["11010519491231002X"])
    sms_consent: bool = Field(description="the citizen agreed to SMS confirmation and reminders")


class CancelIn(Body):
    phone: str | None = Field(
        default=None, max_length=32, description="the booking's phone (citizens)"
    )


class CheckInIn(Body):
    code: str | None = Field(default=None, pattern=r"^\d{6}$", examples=["482913"])
    id_number: str | None = Field(default=None, max_length=18)


@router.get("/halls/{hall}/booking/days", tags=["appointments"])
async def booking_days(runtime: Hall) -> list[str]:
    """The working days that can be booked now (from the next working day)."""
    return [d.isoformat() for d in runtime.appointments.bookable_days()]


@router.get("/halls/{hall}/booking/slots", tags=["appointments"])
async def booking_slots(
    runtime: Hall, service: Annotated[str, Query(max_length=40)], day: Annotated[date, Query()]
) -> list[dict[str, Any]]:
    """A service's slots on a day with their free places."""
    return await runtime.appointments.availability(service, day)


@router.post("/halls/{hall}/appointments", status_code=201, tags=["appointments"])
async def book(body: BookingIn, runtime: Hall, request: Request, ctx: Ctx) -> dict[str, Any]:
    """Book a slot (self-service page, hotline agent with a staff token, or an app with an API key)."""
    if not body.sms_consent:
        raise ConsentRequiredError()
    now = ctx.clock.now()
    ctx.lookup_limit.hit(f"book:{_client(request)}", now)
    phone = normalise(body.phone, ctx.sms.region if ctx.sms else "CN")
    ctx.issue_limit_phone.hit(f"book:{phone}", now)
    channel = "hotline" if request.headers.get("authorization") else "web"
    appt = await runtime.appointments.book(
        body.service,
        body.day,
        body.slot_start,
        phone=phone,
        id_number=body.id_number,
        channel=channel,
    )
    return appt.to_dict() | {"phone": mask_phone(appt.phone)}


@router.get("/halls/{hall}/appointments/{code}", tags=["appointments"])
async def appointment(code: str, runtime: Hall, request: Request, ctx: Ctx,
                      phone_last4: Annotated[str, Query(pattern=r"^\d{4}$")]) -> dict[str, Any]:  # fmt: skip
    """A booking by its code and the phone's last four digits."""
    ctx.lookup_limit.hit(f"appt:{_client(request)}", ctx.clock.now())
    appt = await runtime.appointments.find(code)
    if appt is None or not (appt.phone or "").endswith(phone_last4):
        raise AppointmentNotFoundError()
    return appt.to_dict() | {"phone": mask_phone(appt.phone)}


@router.post("/halls/{hall}/appointments/{code}/cancel", tags=["appointments"])
async def cancel_booking(
    code: str, body: CancelIn, runtime: Hall, request: Request, ctx: Ctx
) -> dict[str, Any]:
    """Cancel a booking: a citizen with its phone, or staff with a token."""
    ctx.lookup_limit.hit(f"cancel:{_client(request)}", ctx.clock.now())
    by = None
    if request.headers.get("authorization"):
        who = await principal(request)
        if who.is_device:
            raise ForbiddenError(
                reason="devices cannot cancel bookings", reason_zh="设备不能取消预约"
            )
        by = who.subject
    phone = normalise(body.phone, ctx.sms.region if ctx.sms else "CN") if body.phone else None
    appt = await runtime.appointments.cancel(code, phone=phone, by=by)
    return appt.to_dict() | {"phone": mask_phone(appt.phone)}


@router.post("/halls/{hall}/check-in", status_code=201, tags=["appointments"])
async def check_in(body: CheckInIn, runtime: Hall, who: Issuer) -> TicketOut:
    """At the kiosk: the booking code or ID number turns the booking into a ticket."""
    issued = await runtime.appointments.check_in(code=body.code, id_number=body.id_number)
    return ticket_response(runtime, issued.ticket, est=issued.estimate, with_token=True)


# --- cases (办件) -------------------------------------------------------------------------


class CaseIn(Body):
    ticket_id: int = Field(ge=1, le=2**62)
    phone: str | None = Field(
        default=None, max_length=32, description="default: the ticket's phone"
    )
    note: str | None = Field(default=None, max_length=500)


class AdvanceIn(Body):
    to: str = Field(min_length=1, max_length=20, examples=["审查"])
    note: str | None = Field(default=None, max_length=500)


def _case_out(case: Any, steps: list[Any] | None = None, *, public: bool = False) -> dict[str, Any]:
    out = case.to_dict() | {"phone": mask_phone(case.phone)}
    if public:
        out.pop("opened_by", None)
    if steps is not None:
        out["steps"] = [
            {"status": s.status, "at": s.at, "note": s.note} | ({} if public else {"by": s.by})
            for s in steps
        ]
    return out


@router.post("/halls/{hall}/cases", status_code=201, tags=["cases"])
async def open_case(body: CaseIn, runtime: Hall, who: Staffer, ctx: Ctx) -> dict[str, Any]:
    """Open an application case for a ticket just served."""
    phone = normalise(body.phone, ctx.sms.region if ctx.sms else "CN") if body.phone else None
    case = await runtime.cases.open(body.ticket_id, who.subject, phone=phone, note=body.note)
    return _case_out(case)


@router.get("/halls/{hall}/cases", tags=["cases"])
async def list_cases(
    runtime: Hall, who: CaseWorker, open_only: bool = True
) -> list[dict[str, Any]]:
    """Cases of the officer's department (all for supervisors), newest first."""
    department = None if who.at_least(Role.SUPERVISOR) else _department_of(runtime, who)
    return [
        _case_out(c) for c in await runtime.cases.list(department=department, open_only=open_only)
    ]


@router.get("/halls/{hall}/cases/overdue", tags=["cases"])
async def overdue_cases(runtime: Hall, _: Supervisor) -> list[dict[str, Any]]:
    """Open cases past their promised date."""
    return [_case_out(c) for c in await runtime.cases.overdue()]


@router.get("/halls/{hall}/cases/{number}", tags=["cases"])
async def case_detail(number: str, runtime: Hall, who: CaseReader) -> dict[str, Any]:
    """A case with every step (its department, supervisors, window staff and hotline agents)."""
    case, steps = await runtime.cases.get(number)
    if who.is_device or who.role == Role.OFFICER:
        _require_department(runtime, who, case.department)
    return _case_out(case, steps)


@router.post("/halls/{hall}/cases/{number}/advance", tags=["cases"])
async def advance_case(
    number: str, body: AdvanceIn, runtime: Hall, who: CaseWorker
) -> dict[str, Any]:
    """Move a case on (its officer's page, or a department system with its key)."""
    case, _ = await runtime.cases.get(number)
    _require_department(runtime, who, case.department)
    moved = await runtime.cases.advance(number, body.to, who.subject, body.note)
    return _case_out(moved)


@router.get("/cases/{number}", tags=["cases"])
async def query_case(number: str, request: Request, ctx: Ctx,
                     phone_last4: Annotated[str, Query(pattern=r"^\d{4}$")]) -> dict[str, Any]:  # fmt: skip
    """A citizen's look-up: case number and the phone's last four digits (rate limited)."""
    now = ctx.clock.now()
    ctx.lookup_limit.hit(f"case:{_client(request)}", now)
    ctx.case_guess_limit.hit(f"case:{number}", now)
    for runtime in ctx.halls.values():
        case, steps = await runtime.cases.query(number, phone_last4)
        flow = runtime.cases.flow_of(case.service)
        svc = runtime.engine.hall.service(case.service)
        return _case_out(case, steps, public=True) | {
            "service_zh": svc.name_zh if svc else case.service,
            "service_en": svc.name_en if svc else case.service,
            "flow": list(flow.transitions), "pickup_window": svc.pickup_window if svc else None,
        }  # fmt: skip
    raise CaseNotFoundError()


def _client(request: Request) -> str:
    return request.client.host if request.client else "?"


def _department_of(runtime: HallRuntime, who: Principal) -> str | None:
    if who.is_device:
        return who.department
    staff = runtime.engine.hall.staffer(who.subject)
    return staff.department if staff else None


def _require_department(runtime: HallRuntime, who: Principal, department: str) -> None:
    if who.at_least(Role.SUPERVISOR) or _department_of(runtime, who) == department:
        return
    raise ForbiddenError(
        reason="this case belongs to another department", reason_zh="该办件属于其他部门"
    )
