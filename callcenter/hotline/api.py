"""The hotline's JSON API: work orders, call notes, a caller's history, and the hotline's statistics."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import Field, StringConstraints

from queue_engine import Tx
from queue_engine.errors import InvalidRequestError
from queue_engine.masking import mask_phone
from queue_engine.workorders import TYPES
from sms.phone import normalise

from ..api import ERRORS
from ..auth import ForbiddenError, Principal, Role
from ..deps import CaseWorker, Ctx, Hall, HallMember, Staffer, Supervisor
from ..runtime import HallRuntime
from ..schemas import Body, RowId
from . import notes
from .stats import hotline_stats

router = APIRouter(prefix="/api", responses=ERRORS)


class OrderIn(Body):
    type: str = Field(pattern="^(" + "|".join(TYPES) + ")$", examples=["complaint"])
    description: str = Field(min_length=1, max_length=2000, examples=["小区路灯损坏两周未修"])
    phone: str | None = Field(default=None, max_length=32, examples=["13812345678"])
    location: str | None = Field(default=None, max_length=200, examples=["武侯区玉林北路12号"])
    department: str | None = Field(default=None, max_length=40, examples=["civil_affairs"])
    urgent: bool = False
    ticket_id: int | None = Field(default=None, ge=1, le=2**62)


class DispatchIn(Body):
    department: str = Field(min_length=1, max_length=40)
    note: str | None = Field(default=None, max_length=500)


class NoteIn(Body):
    note: str | None = Field(default=None, max_length=2000)


NoteText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=notes.MAX_CHARS)]


class CallNoteIn(Body):
    text: NoteText = Field(
        examples=["来电人称已向物业反映，未处理。"], description="empty clears it"
    )


class ReplyIn(Body):
    reply: str = Field(min_length=1, max_length=2000, examples=["已安排维修，路灯已恢复"])


class ReasonIn(Body):
    reason: str = Field(min_length=1, max_length=1000)


class ExtensionIn(Body):
    days: int = Field(ge=1, le=30)
    reason: str = Field(min_length=1, max_length=1000)


class GrantIn(Body):
    granted: bool


class SatisfactionIn(Body):
    level: int = Field(ge=1, le=3, description="1 满意, 2 基本满意, 3 不满意")


def _out(runtime: HallRuntime, order: Any, steps: list[Any] | None = None) -> dict[str, Any]:
    out = order.to_dict(runtime.engine.clock.now(), runtime.engine.hall.work_orders.yellow_share)
    out["phone"] = mask_phone(order.phone)
    if steps is not None:
        out["steps"] = [
            {"state": s.state, "action": s.action, "at": s.at, "by": s.by, "note": s.note}
            for s in steps
        ]
    return out


def _agent(who: Principal) -> None:
    if who.role not in (Role.AGENT, Role.STAFF) and not who.at_least(Role.SUPERVISOR):
        raise ForbiddenError(reason="hotline agents only", reason_zh="仅限热线座席")


@router.post("/halls/{hall}/work-orders", status_code=201, tags=["work orders"])
async def open_order(body: OrderIn, runtime: Hall, who: Staffer, ctx: Ctx) -> dict[str, Any]:
    """受理: an agent opens a work order; the caller gets its number by SMS."""
    _agent(who)
    phone = normalise(body.phone, ctx.sms.region if ctx.sms else "CN") if body.phone else None
    if phone is None and body.ticket_id is not None:
        phone = (await runtime.engine.ticket(body.ticket_id)).phone  # the caller on the line
    order = await runtime.work_orders.open(
        type=body.type, description=body.description, by=who.subject, phone=phone,
        location=body.location, department=body.department, urgent=body.urgent, ticket_id=body.ticket_id,
    )  # fmt: skip
    return _out(runtime, order)


@router.get("/halls/{hall}/work-orders", tags=["work orders"])
async def list_orders(
    runtime: Hall, who: HallMember, open_only: bool = True
) -> list[dict[str, Any]]:
    """Work orders: a department's for its officers and systems, all for agents and supervisors."""
    if who.is_device and who.device_kind != "department":
        raise ForbiddenError(reason="devices cannot read work orders", reason_zh="设备无权查看工单")
    department = _department(runtime, who)
    return [
        _out(runtime, o)
        for o in await runtime.work_orders.list(department=department, open_only=open_only)
    ]


@router.get("/halls/{hall}/work-orders/counts", tags=["work orders"])
async def order_counts(runtime: Hall, _: Supervisor) -> dict[str, Any]:
    """By state, overdue, and satisfaction."""
    return await runtime.work_orders.counts()


@router.get("/halls/{hall}/work-orders/{number}", tags=["work orders"])
async def get_order(number: str, runtime: Hall, who: Staffer) -> dict[str, Any]:
    """A work order and its history."""
    order, steps = await runtime.work_orders.get(number)
    return _out(runtime, order, steps)


@router.post("/halls/{hall}/work-orders/{number}/dispatch", tags=["work orders"])
async def dispatch(number: str, body: DispatchIn, runtime: Hall, who: Staffer) -> dict[str, Any]:
    """派单 to a department."""
    _agent(who)
    return _out(
        runtime, await runtime.work_orders.dispatch(number, body.department, who.subject, body.note)
    )


@router.post("/halls/{hall}/work-orders/{number}/sign", tags=["work orders"])
async def sign(number: str, runtime: Hall, who: CaseWorker) -> dict[str, Any]:
    """签收 by the department."""
    await _own(runtime, who, number)
    return _out(runtime, await runtime.work_orders.sign(number, who.subject))


@router.post("/halls/{hall}/work-orders/{number}/handle", tags=["work orders"])
async def handle(number: str, body: NoteIn, runtime: Hall, who: CaseWorker) -> dict[str, Any]:
    """办理: the department is on it."""
    await _own(runtime, who, number)
    return _out(runtime, await runtime.work_orders.handle(number, who.subject, body.note))


@router.post("/halls/{hall}/work-orders/{number}/reply", tags=["work orders"])
async def reply(number: str, body: ReplyIn, runtime: Hall, who: CaseWorker) -> dict[str, Any]:
    """反馈: the answer goes to the caller with a satisfaction request."""
    await _own(runtime, who, number)
    return _out(runtime, await runtime.work_orders.reply(number, who.subject, body.reply))


@router.post("/halls/{hall}/work-orders/{number}/return", tags=["work orders"])
async def give_back(number: str, body: ReasonIn, runtime: Hall, who: CaseWorker) -> dict[str, Any]:
    """退单: the department returns it with a reason."""
    await _own(runtime, who, number)
    return _out(runtime, await runtime.work_orders.give_back(number, who.subject, body.reason))


@router.post("/halls/{hall}/work-orders/{number}/extension", tags=["work orders"])
async def extension(
    number: str, body: ExtensionIn, runtime: Hall, who: CaseWorker
) -> dict[str, Any]:
    """延期: the department asks for more working days."""
    await _own(runtime, who, number)
    return _out(
        runtime,
        await runtime.work_orders.request_extension(number, who.subject, body.days, body.reason),
    )


@router.post("/halls/{hall}/work-orders/{number}/extension/decision", tags=["work orders"])
async def decide_extension(
    number: str, body: GrantIn, runtime: Hall, who: Supervisor
) -> dict[str, Any]:
    """A supervisor grants or refuses the extension."""
    return _out(
        runtime, await runtime.work_orders.grant_extension(number, who.subject, body.granted)
    )


@router.post("/halls/{hall}/work-orders/{number}/satisfaction", tags=["work orders"])
async def satisfaction(
    number: str, body: SatisfactionIn, runtime: Hall, who: Staffer
) -> dict[str, Any]:
    """回访 recorded by an agent who called the citizen (SMS replies do it by themselves)."""
    _agent(who)
    return _out(runtime, await runtime.work_orders.satisfaction(number, body.level, who.subject))


@router.put("/halls/{hall}/tickets/{ticket_id}/notes", tags=["hotline"])
async def save_notes(
    ticket_id: RowId, body: CallNoteIn, runtime: Hall, who: Staffer
) -> dict[str, Any]:
    """通话记录: save the signed-in agent's note on a call (empty clears it). The agent who
    took the call may write, and supervisors; every save is kept for the audit."""
    _agent(who)
    engine = runtime.engine
    ticket = await engine.ticket(ticket_id)
    notes.require_call(ticket)
    if ticket.workstation != who.subject and not who.at_least(Role.SUPERVISOR):
        raise ForbiddenError(
            reason=f"call {ticket.number} was taken by another agent",
            reason_zh=f"来电{ticket.number}由其他座席接听",
        )
    now, code = engine.clock.now(), engine.hall.code
    note = await engine.run(lambda tx: notes.save(tx, code, ticket.id, who.subject, body.text, now))
    return _note(runtime, note)


@router.get("/halls/{hall}/tickets/{ticket_id}/notes", tags=["hotline"])
async def read_notes(
    ticket_id: RowId, runtime: Hall, who: Staffer, versions: bool = False
) -> dict[str, Any]:
    """A call's notes, newest first: each author's current one, or with ``versions``
    (supervisors only) every version ever saved, cleared ones included."""
    _agent(who)
    if versions and not who.at_least(Role.SUPERVISOR):
        raise ForbiddenError(reason="supervisors only", reason_zh="仅限值班长/管理员")
    engine = runtime.engine
    ticket = await engine.ticket(ticket_id)
    notes.require_call(ticket)
    code = engine.hall.code

    def read(tx: Tx) -> list[notes.Note]:
        if versions:
            return notes.versions(tx, code, ticket.id)
        return notes.current(tx, code, [ticket.id]).get(ticket.id, [])

    found = await engine.run(read)
    return {"ticket_id": ticket.id, "number": ticket.number,
            "notes": [_note(runtime, n) for n in found]}  # fmt: skip


@router.get("/halls/{hall}/callers/{phone}", tags=["hotline"])
async def caller_history(phone: str, runtime: Hall, who: Staffer, ctx: Ctx) -> dict[str, Any]:
    """A caller's tickets (each call with its notes), cases, work orders and SMS, newest first
    (for the agent on the call)."""
    _agent(who)
    return await _history(runtime, normalise(phone, ctx.sms.region if ctx.sms else "CN"))


@router.get("/halls/{hall}/tickets/{ticket_id}/caller", tags=["hotline"])
async def ticket_caller(ticket_id: RowId, runtime: Hall, who: Staffer) -> dict[str, Any]:
    """The history of the caller behind a ticket (the agent's page never sees the full number)."""
    _agent(who)
    ticket = await runtime.engine.ticket(ticket_id)
    if not ticket.phone:
        return {"phone": "", "tickets": [], "cases": [], "work_orders": [], "sms": []}
    return await _history(runtime, ticket.phone)


async def _history(runtime: HallRuntime, e164: str) -> dict[str, Any]:
    code = runtime.engine.hall.code

    def read(tx: Tx) -> dict[str, Any]:
        tickets = tx.execute(
            "SELECT id, number, service, channel, state, day, arrived_at FROM tickets WHERE hall=? AND phone=?"
            " ORDER BY id DESC LIMIT 20", (code, e164))  # fmt: skip
        sms = tx.execute(
            "SELECT template, status, created_at, body FROM sms_outbox WHERE phone=? ORDER BY id DESC LIMIT 20",
            (e164,))  # fmt: skip
        said = notes.current(tx, code, [r[0] for r in tickets])
        return {"tickets": tickets, "sms": sms, "notes": said}

    rows = await runtime.engine.run(read)
    cases = await runtime.cases.for_phone(e164)
    orders = await runtime.work_orders.list(phone=e164, open_only=False, limit=20)
    keys = ("id", "number", "service", "channel", "state", "day", "arrived_at")
    tickets = [dict(zip(keys, r, strict=True)) for r in rows["tickets"]]
    for t in tickets:
        t["notes"] = [_note(runtime, n) for n in rows["notes"].get(t["id"], [])]
    return {
        "phone": mask_phone(e164),
        "tickets": tickets,
        "cases": [c.to_dict() | {"phone": mask_phone(c.phone)} for c in cases],
        "work_orders": [_out(runtime, o) for o in orders],
        "sms": [
            dict(zip(("template", "status", "at", "body"), r, strict=True)) for r in rows["sms"]
        ],
    }


def _note(runtime: HallRuntime, note: notes.Note) -> dict[str, Any]:
    staff = runtime.engine.hall.staffer(note.author)
    return note.to_dict(staff.name if staff else None)


@router.get("/halls/{hall}/hotline/stats", tags=["hotline"])
async def stats(
    runtime: Hall,
    _: Supervisor,
    day: Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}-\d{2}$")] = None,
) -> dict[str, Any]:
    """Today's hotline figures from the event log, and work orders by state."""
    engine = runtime.engine
    day = day or engine.today()
    try:
        start = datetime.fromisoformat(day).replace(tzinfo=engine.tz).timestamp()
    except ValueError:
        raise InvalidRequestError(
            reason=f"{day} is not a date", reason_zh=f"{day}不是有效日期"
        ) from None

    def read(tx: Tx) -> list[Any]:
        return tx.events_between(start, start + 86400, engine.hall.code)

    # A day of the log is a long read: off the loop, on a connection of its own.
    events = await engine.store.read(read)
    waiting = [t.arrived_at for t in await engine.waiting() if t.channel.value != "hall"]
    out = hotline_stats(events, engine.clock.now(), waiting)
    out["work_orders"] = await runtime.work_orders.counts()
    return out


def _department(runtime: HallRuntime, who: Principal) -> str | None:
    if who.is_device:
        return who.department
    if who.role == Role.OFFICER:
        staff = runtime.engine.hall.staffer(who.subject)
        return staff.department if staff else "-"
    return None


async def _own(runtime: HallRuntime, who: Principal, number: str) -> None:
    department = _department(runtime, who)
    if department is None:
        return
    order, _ = await runtime.work_orders.get(number)
    if order.department != department:
        raise ForbiddenError(
            reason="this work order belongs to another department", reason_zh="该工单属于其他部门"
        )
