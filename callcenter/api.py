"""The JSON API: everything the engine does, for kiosks, screens, consoles and supervisors."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from kiosk.feed import FeedResponse
from queue_engine import Channel, Ticket, TicketState, TransferPosition, Workstation
from queue_engine.engine import DeskVerb
from queue_engine.errors import NoTicketError, TicketNotFoundError, UnknownWindowError
from queue_engine.masking import mask_phone
from sms.phone import normalise

from .deps import Acting, Ctx, Hall, HallMember, Issuer, Supervisor
from .errors import ConsentRequiredError
from .runtime import HallRuntime
from .schemas import (
    ErrorOut,
    LoginIn,
    LoginOut,
    PauseIn,
    SignInIn,
    TicketIn,
    TicketOut,
    TicketRef,
    TransferIn,
    WorkstationOut,
    ticket_out,
    workstation_out,
)

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut} for code in (400, 401, 403, 404, 409, 422, 429)
}
router = APIRouter(prefix="/api", responses=ERRORS)


# The workstation's one-word actions: each calls one engine verb for the signed-in number
# and answers with the workstation as it is after it. They are most of the traffic a busy
# hall sends: desk_fastpath.py answers them ahead of FastAPI's routing, through the same
# checks and desk_action; the routes stay for the OpenAPI document (and are registered
# first, in case the lean door is not in front of them).
DESK_ACTIONS: tuple[tuple[str, DeskVerb, str, str], ...] = (
    ("call-next", "call_next", "workstations",
     "Call the next ticket the routing policy picks (ticket is null if nobody waits)."),
    ("recall", "recall", "workstations",
     "Call the current ticket again; past the configured recalls it becomes a no-show."),
    ("start", "start_service", "workstations", "The called citizen has arrived: start the service."),
    ("complete", "complete", "workstations", "Finish the service."),
    ("no-show", "mark_no_show", "workstations", "The called citizen did not come (过号)."),
    ("hold", "hold", "workstations",
     "Suspend the current service (挂起) while the citizen fetches a document."),
    ("accept", "accept", "hotline", "Accept the call offered to this hotline seat."),
    ("reject", "reject", "hotline",
     "Reject the offered call; it goes to the next agent, keeping its place."),
)  # fmt: skip


FINISH_DOC = (
    "Where 下一位 also finishes the ticket in hand (the hall's next_completes): the id of the"
    " ticket the client is finishing. If another ticket is in hand by then (a repeated"
    " press) nothing is done (409 ticket_changed). Without it, a ticket called under three"
    " seconds ago is not finished (409 just_called)."
)
Finish = Annotated[int | None, Query(ge=1, le=2**62, description=FINISH_DOC)]


async def desk_action(
    runtime: HallRuntime, vn: str, verb: DeskVerb, finish: int | None = None
) -> WorkstationOut:
    """Call the engine's ``verb`` for ``vn`` (call-next may name the ticket it finishes);
    the workstation as that verb left it, read in its transaction."""
    ws, ticket = await runtime.engine.at_desk(vn, verb, finish)
    return await _workstation(runtime, ws, ticket)


def _desk_route(path: str, verb: DeskVerb, tag: str, doc: str) -> None:
    if verb == "call_next":

        async def action(
            vn: str, runtime: Hall, _: Acting, finish: Finish = None
        ) -> WorkstationOut:
            return await desk_action(runtime, vn, verb, finish)

    else:

        async def action(vn: str, runtime: Hall, _: Acting) -> WorkstationOut:  # type: ignore[misc]
            return await desk_action(runtime, vn, verb)

    action.__name__ = action.__qualname__ = verb
    action.__doc__ = doc
    router.post(f"/halls/{{hall}}/workstations/{{vn}}/{path}", tags=[tag])(action)


for _spec in DESK_ACTIONS:
    _desk_route(*_spec)


def ticket_response(runtime: HallRuntime, t: Ticket, **kw: Any) -> TicketOut:
    """A ticket as the API returns it (service names, masked phone)."""
    svc = runtime.engine.hall.service(t.service)
    return ticket_out(
        t, svc.name_zh if svc else t.service, svc.name_en if svc else t.service,
        masked_phone=mask_phone(t.phone) or None, **kw,
    )  # fmt: skip


@router.post("/auth/login", tags=["auth"])
async def login(body: LoginIn, ctx: Ctx, request: Request) -> LoginOut:
    """Sign in under a virtual work number; returns a bearer token."""
    hall = body.hall or next(iter(ctx.halls))
    now = ctx.clock.now()
    ctx.login_ip_limit.hit(f"ip:{request.client.host if request.client else '?'}", now)
    ctx.login_limit.hit(f"vn:{body.virtual_number}", now)
    # scrypt takes tens of milliseconds: keep it off the event loop.
    token, who = await asyncio.to_thread(
        ctx.authority.login, hall, body.virtual_number, body.password, now
    )
    staff = ctx.halls[hall].engine.hall.staffer(who.subject) if hall in ctx.halls else None
    return LoginOut(
        token=token, expires_at=who.expires_at, virtual_number=who.subject,
        name=staff.name if staff else "", role=who.role, hall=who.hall,
        department=staff.department if staff else None,
    )  # fmt: skip


@router.get("/halls/{hall}", tags=["hall"])
async def hall_info(runtime: Hall) -> dict[str, Any]:
    """The hall's departments, services, priority classes and windows (no personal data)."""
    h = runtime.engine.hall
    return {
        "code": h.code, "name_zh": h.name_zh, "name_en": h.name_en, "silent": h.policy.silent,
        "next_completes": h.policy.next_completes,
        "departments": [vars_of(d) for d in h.departments],
        "services": [vars_of(s) | {"channel": s.channel.value} for s in h.services],
        "priority_classes": [vars_of(p) for p in h.priority_classes],
        "windows": [{"number": w.number, "kind": w.kind.value, "zone": w.zone} for w in h.windows],
    }  # fmt: skip


def vars_of(obj: Any) -> dict[str, Any]:
    """A slotted dataclass as a dict."""
    return {name: getattr(obj, name) for name in obj.__slots__}


@router.get("/halls/{hall}/services", tags=["hall"])
async def services(runtime: Hall) -> list[dict[str, Any]]:
    """Every service with its waiting count and expected wait now."""
    return runtime.snapshot()["queues"]


@router.post("/halls/{hall}/tickets", status_code=201, tags=["tickets"])
async def take_ticket(body: TicketIn, runtime: Hall, who: Issuer, ctx: Ctx) -> TicketOut:
    """Issue a ticket (kiosk or staff); an SMS number needs the citizen's consent."""
    now = ctx.clock.now()
    ctx.issue_limit_device.hit(f"{who.hall}:{who.subject}", now)
    phone = None
    if body.phone:
        if not body.sms_consent:
            raise ConsentRequiredError()
        phone = normalise(body.phone, ctx.sms.region if ctx.sms else "CN")
        ctx.issue_limit_phone.hit(phone, now)
    # Kiosks and staff issue hall tickets; phone tickets come only from the hotline.
    issued = await runtime.engine.take_ticket(
        body.service, channel=Channel.HALL, priority=body.priority, phone=phone
    )
    return ticket_response(runtime, issued.ticket, est=issued.estimate, with_token=True)


@router.get("/tickets/{token}", tags=["tickets"])
async def ticket_status(token: str, request: Request, ctx: Ctx) -> TicketOut:
    """A ticket's state, people ahead and expected wait, by its unguessable token."""
    client = request.client.host if request.client else "?"
    ctx.lookup_limit.hit(client, ctx.clock.now())
    for runtime in ctx.halls.values():
        ticket = await runtime.engine.ticket_by_token(token) if len(token) <= 64 else None
        if ticket is not None:
            est = await runtime.engine.wait_estimate(ticket.id)
            return ticket_response(runtime, ticket, est=est)
    raise TicketNotFoundError(ticket="")


# --- workstations ---------------------------------------------------------------


async def _workstation(
    runtime: HallRuntime, w: Workstation, ticket: Ticket | None = None
) -> WorkstationOut:
    engine = runtime.engine
    staff = engine.hall.staffer(w.virtual_number)
    if ticket is None and w.ticket_id:
        ticket = await engine.ticket(w.ticket_id)
    held = [
        ticket_response(runtime, t) for t in runtime.view.held.get(w.virtual_number, {}).values()
    ]
    skills = dict(staff.skills) if staff else {}
    waiting = {s: runtime.view.waiting_count(s) for s in skills}
    return workstation_out(
        w, staff.name if staff else "", ticket=ticket_response(runtime, ticket) if ticket else None,
        held=held, skills=skills, waiting=waiting,
    )  # fmt: skip


@router.get("/halls/{hall}/workstations", tags=["supervisor"])
async def workstations(runtime: Hall, _: Supervisor) -> list[dict[str, Any]]:
    """Every virtual number with its state, window and time in state."""
    return runtime.view.workstation_rows(runtime.engine.clock.now())


@router.get("/halls/{hall}/workstations/{vn}", tags=["workstations"])
async def workstation(vn: str, runtime: Hall, _: Acting) -> WorkstationOut:
    """My workstation: state, current ticket, held tickets, waiting counts for my skills."""
    return await _after(runtime, vn)


@router.post("/halls/{hall}/workstations/{vn}/sign-in", tags=["workstations"])
async def sign_in(vn: str, body: SignInIn, runtime: Hall, _: Acting) -> WorkstationOut:
    """Sign in at a window or hotline seat."""
    return await _workstation(runtime, await runtime.engine.sign_in(vn, body.window))


@router.post("/halls/{hall}/workstations/{vn}/sign-out", tags=["workstations"])
async def sign_out(vn: str, runtime: Hall, _: Acting) -> WorkstationOut:
    """Sign out (with no ticket in hand)."""
    return await _workstation(runtime, await runtime.engine.sign_out(vn))


@router.post("/halls/{hall}/workstations/{vn}/pause", tags=["workstations"])
async def pause(vn: str, body: PauseIn, runtime: Hall, _: Acting) -> WorkstationOut:
    """Pause with a reason (break, meeting, back office, stepped away)."""
    return await _workstation(runtime, await runtime.engine.pause(vn, body.reason))


@router.post("/halls/{hall}/workstations/{vn}/resume", tags=["workstations"])
async def resume_work(vn: str, runtime: Hall, _: Acting) -> WorkstationOut:
    """Come back from a pause or end wrap-up."""
    return await _workstation(runtime, await runtime.engine.resume_work(vn))


async def _after(runtime: HallRuntime, vn: str) -> WorkstationOut:
    return await _workstation(runtime, *await runtime.engine.desk(vn))


@router.post("/halls/{hall}/workstations/{vn}/resume-ticket", tags=["workstations"])
async def resume_ticket(vn: str, body: TicketRef, runtime: Hall, _: Acting) -> WorkstationOut:
    """Take a held ticket back into service."""
    await runtime.engine.resume(vn, body.ticket_id)
    return await _after(runtime, vn)


@router.post("/halls/{hall}/workstations/{vn}/transfer", tags=["workstations"])
async def transfer(vn: str, body: TransferIn, runtime: Hall, _: Acting) -> WorkstationOut:
    """Transfer my current ticket (or a named one) to another service or work number."""
    engine = runtime.engine
    ticket_id = body.ticket_id or (await engine.workstation(vn)).ticket_id
    if ticket_id is None:
        raise NoTicketError(virtual_number=vn)
    await engine.transfer(
        ticket_id, to_service=body.to_service, to_workstation=body.to_workstation, by=vn,
        position=TransferPosition(body.position) if body.position else None,
    )  # fmt: skip
    return await _after(runtime, vn)


# --- screens and supervisors ------------------------------------------------------


@router.get("/halls/{hall}/snapshot", tags=["screens"])
async def snapshot(runtime: Hall, _: HallMember) -> dict[str, Any]:
    """Calling now, the last 8 calls, every queue, every window (masked)."""
    return runtime.snapshot()


@router.get("/halls/{hall}/windows/{window}", tags=["screens"])
async def window_display(window: str, runtime: Hall, _: HallMember) -> dict[str, Any]:
    """What one window's screen shows."""
    if runtime.engine.hall.window(window) is None:
        raise UnknownWindowError(window=window)
    return runtime.view.window_line(window)


@router.get("/halls/{hall}/stats", tags=["supervisor"])
async def stats(runtime: Hall, _: Supervisor) -> dict[str, Any]:
    """Today's live statistics: per queue and for the hall."""
    return hall_stats(runtime)


def hall_stats(runtime: HallRuntime) -> dict[str, Any]:
    """Issued, served, no-shows, average wait and handle time today, and per-queue figures."""
    now = runtime.engine.clock.now()
    today = [t for t in runtime.view.tickets.values() if t.day == runtime.view.day]
    done = [t for t in today if t.state == TicketState.DONE]
    called = [t for t in today if t.called_at is not None]
    waits = [(t.called_at or 0) - t.arrived_at for t in called]
    handles = [(t.ended_at or 0) - (t.started_at or 0) for t in done if t.started_at]
    return {
        "day": runtime.view.day,
        "issued": len(today),
        "waiting": sum(1 for t in today if t.state == TicketState.WAITING),
        "served": len(done),
        "no_show": sum(1 for t in today if t.state == TicketState.NO_SHOW),
        "avg_wait_min": round(sum(waits) / len(waits) / 60, 1) if waits else None,
        "avg_handle_min": round(sum(handles) / len(handles) / 60, 1) if handles else None,
        "queues": runtime.view.queues(now),
    }


@router.get("/halls/{hall}/feed", tags=["screens"], response_class=FeedResponse)
async def feed(request: Request, runtime: Hall, _: HallMember) -> FeedResponse:
    """Every event of the hall as Server-Sent Events; reconnect with Last-Event-ID to resume."""
    last = request.headers.get("last-event-id") or request.query_params.get("last_id") or ""
    end = runtime.view.last_event_id
    # An id past the log's end (a screen that saw another database) starts at the end.
    last_id = min(int(last), end) if last.isascii() and last.isdigit() and len(last) < 19 else end
    return FeedResponse(runtime.hub, last_id)
