"""The voice webhooks: the provider calls these and we answer with TwiML.

Every request is checked against its signature first (403 otherwise). Each
handler does only quick work (a ticket, a row) and answers at once; the
REST calls that put a caller through to an agent or dial a call-back run in
the connector's background task, well inside the provider's 15-second budget.
"""

# No `from __future__ import annotations` here: the routes' Annotated dependency aliases
# are local to the router factory and FastAPI must see them as objects, not strings.

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from twilio.request_validator import RequestValidator

from queue_engine import Channel, QueueError, Ticket, TicketState, Tx
from queue_engine.masking import mask_phone
from sms.phone import InvalidPhoneError, normalise
from sms.views import SIGNED_RESPONSES, forbidden_exception, public_url

from ..runtime import HallRuntime
from . import ivr
from .config import HotlineConfig

log = logging.getLogger(__name__)
FINAL_CALL = {"completed", "busy", "failed", "no-answer", "canceled"}
TWIML = "application/xml"


@dataclass
class Hotline:
    """What the webhooks reach once the lifespan has started the hall."""

    config: HotlineConfig
    runtime: HallRuntime | None = None
    wake_connector: Callable[[], None] | None = None

    @property
    def rt(self) -> HallRuntime:
        """The hall runtime (the lifespan sets it before the first request)."""
        assert self.runtime is not None
        return self.runtime


def hotline_router(hotline: Hotline) -> APIRouter:  # noqa: C901 (each route closure counts)
    """The /voice/* webhooks of one process."""
    config = hotline.config
    token = config.twilio.auth_token if config.twilio else None
    validator = RequestValidator(token) if token else None

    async def signed(request: Request) -> dict[str, str]:
        form = {k: str(v) for k, v in (await request.form()).items()}
        signature = request.headers.get("x-twilio-signature", "")
        urls = public_url(request, config.public_url)
        if (
            validator is None
            or not signature
            or not any(validator.validate(u, form, signature) for u in urls)
        ):
            raise forbidden_exception()
        return form

    Signed = Annotated[dict[str, str], Depends(signed)]
    router = APIRouter(prefix="/voice", tags=["hotline webhooks"], responses=SIGNED_RESPONSES)

    def voice(request: Request) -> ivr.Voice:
        return ivr.Voice("en" if request.query_params.get("lang") == "en" else "zh", config)

    def twiml(text: str) -> Response:
        return Response(text, media_type=TWIML)

    @router.post("/incoming")
    async def incoming(request: Request, form: Signed) -> Response:
        """A call arrives (or returns to the menu): greet and offer the menu."""
        attempt = int(request.query_params.get("attempt", "0") or 0)
        await _remember_call(hotline, form, "inbound")
        return twiml(ivr.greeting(voice(request), attempt))

    @router.post("/menu")
    async def menu(request: Request, form: Signed) -> Response:
        """A key in the main menu; invalid or no input repeats once, then goes to an agent."""
        v = voice(request)
        attempt = int(request.query_params.get("attempt", "0") or 0)
        digits = form.get("Digits", request.query_params.get("Digits", ""))
        choice = ivr.menu_choice(digits)
        if choice == "english":
            return twiml(ivr.greeting(ivr.Voice("en", config), 0))
        if choice == "case":
            return twiml(ivr.case_prompt(v))
        if choice == "invalid" and attempt < 1:
            return twiml(ivr.invalid_then_menu(v, attempt + 1))
        service = config.services.get("appointment" if choice == "appointment" else "agent", "")
        return twiml(await _enqueue(hotline, form, service, v))

    @router.post("/case")
    async def case(request: Request, form: Signed) -> Response:
        """Speak a case's status back, if it belongs to the caller."""
        v = voice(request)
        found = await _case_for_caller(
            hotline, form.get("Digits", ""), _phone(form.get("From", ""))
        )
        if found is None:
            return twiml(ivr.spoken_then_menu(v, "case_not_found"))
        number, status, promised = found
        return twiml(ivr.spoken_then_menu(v, "case_status", number=number, status=status,
                                          status_en=status, promised=promised))  # fmt: skip

    @router.post("/hold")
    async def hold(request: Request, form: Signed) -> Response:
        """The hold loop: put through once an agent has the call, else wait and listen for star."""
        v = voice(request)
        ticket = await _ticket(hotline, request, touch=form.get("CallSid", ""))
        if ticket is None or ticket.state.is_final:
            return twiml(ivr.goodbye(v))
        if ticket.state == TicketState.SERVING and ticket.workstation:
            return twiml(ivr.connect(v, config.endpoint(ticket.workstation), ticket.id))
        n = int(request.query_params.get("n", "0") or 0)
        # The position is worked out only when it is announced: ranking the queue on every
        # hold request would cost the whole hotline for a sentence said once a minute.
        announce = n % ivr.ANNOUNCE_EVERY == ivr.ANNOUNCE_EVERY - 1
        est = None
        if announce and ticket.state == TicketState.WAITING:
            est = await hotline.rt.engine.wait_estimate(ticket.id)
        return twiml(ivr.hold(v, ticket.id, est, n))

    @router.post("/hold-key")
    async def hold_key(request: Request, form: Signed) -> Response:
        """Star (or 1 at night) leaves a call-back that keeps the caller's place."""
        v = voice(request)
        ticket = await _ticket(hotline, request)
        key = form.get("Digits", "")
        wants = key == "*" or (request.query_params.get("night") and key == "1")
        if ticket is None or not wants:
            if request.query_params.get("night"):
                return twiml(ivr.goodbye(v))
            return twiml(ivr.hold(v, ticket.id if ticket else 0, None))
        try:
            moved = await hotline.rt.engine.request_callback(ticket.id)
        except QueueError:
            return twiml(ivr.goodbye(v))
        await _link_ticket(hotline, form.get("CallSid", ""), moved.id, "callback_requested")
        return twiml(ivr.callback_registered(v, mask_phone(moved.phone)))

    @router.post("/connect")
    async def connect(request: Request, form: Signed) -> Response:
        """Where the connector redirects a caller once an agent accepted."""
        v = voice(request)
        ticket = await _ticket(hotline, request)
        if ticket is None or ticket.workstation is None or ticket.state != TicketState.SERVING:
            return twiml(ivr.hold(v, ticket.id if ticket else 0, None))
        return twiml(ivr.connect(v, config.endpoint(ticket.workstation), ticket.id))

    @router.post("/callback-connect")
    async def callback_connect(request: Request, form: Signed) -> Response:
        """The citizen answered our call-back: put them through to the agent."""
        v = voice(request)
        ticket = await _ticket(hotline, request)
        if ticket is None or ticket.workstation is None:
            return twiml(ivr.goodbye(v))
        return twiml(
            ivr.connect(v, config.endpoint(ticket.workstation), ticket.id, "callback_greeting")
        )

    @router.post("/dial-done")
    async def dial_done(request: Request, form: Signed) -> Response:
        """The agent leg ended; the conversation is over."""
        return twiml(ivr.goodbye(voice(request)))

    @router.post("/status", status_code=204)
    async def status(form: Signed) -> Response:
        """Call progress: a caller who hangs up while waiting is abandoned; a finished call is
        completed (the agent goes to wrap-up); an unanswered call-back is retried."""
        await settle_call(hotline, form.get("CallSid", ""), form.get("CallStatus", ""))
        return Response(status_code=204)

    return router


# --- the work behind the webhooks ------------------------------------------------------------


def _phone(raw: str) -> str:
    try:
        return normalise(raw)
    except InvalidPhoneError:
        return raw


async def _remember_call(hotline: Hotline, form: dict[str, str], direction: str) -> None:
    sid, phone = form.get("CallSid", ""), _phone(form.get("From", ""))
    now = hotline.rt.engine.clock.now()
    await hotline.rt.engine.run(
        lambda tx: tx.execute(
            "INSERT INTO calls (call_sid, hall, direction, phone, status, created_at, updated_at)"
            " VALUES (?,?,?,?,?,?,?) ON CONFLICT (call_sid) DO NOTHING",
            (sid, hotline.rt.engine.hall.code, direction, phone, "in-progress", now, now),
        )
    )


async def _link_ticket(hotline: Hotline, sid: str, ticket_id: int, status: str) -> None:
    now = hotline.rt.engine.clock.now()
    await hotline.rt.engine.run(
        lambda tx: tx.execute(
            "UPDATE calls SET ticket_id=?, status=?, updated_at=? WHERE call_sid=?",
            (ticket_id, status, now, sid),
        )
    )


async def _ticket(hotline: Hotline, request: Request, touch: str | None = None) -> Ticket | None:
    """The ticket in the query string; with ``touch``, also note (in the same transaction)
    that the call is alive, so the reconciler leaves it alone."""
    raw = request.query_params.get("ticket", "")
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        return None
    engine = hotline.rt.engine
    now = engine.clock.now()

    def read(tx: Tx) -> Ticket | None:
        if touch:
            tx.execute("UPDATE calls SET updated_at=? WHERE call_sid=?", (now, touch))
        return tx.get_ticket(int(raw))

    ticket = await engine.run(read)
    if ticket is None or ticket.hall != engine.hall.code or ticket.channel == Channel.HALL:
        return None
    return ticket


async def _enqueue(hotline: Hotline, form: dict[str, str], service: str, v: ivr.Voice) -> str:
    engine = hotline.rt.engine
    sid, phone = form.get("CallSid", ""), _phone(form.get("From", ""))
    await _remember_call(hotline, form, "inbound")
    queued = await _queued_ticket(hotline, sid)
    if queued is not None:  # a replayed webhook: the call already waits in the queue
        est = await engine.wait_estimate(queued.id)
        return ivr.queued(v, queued.id, est.ahead if est else 0, est.minutes if est else 0)
    issued = await engine.take_ticket(service, channel=Channel.PHONE, phone=phone)
    await _link_ticket(hotline, sid, issued.ticket.id, "queued")
    if issued.estimate.staffed == 0:
        return ivr.night(v, issued.ticket.id)
    await engine.dispatch()
    return ivr.queued(v, issued.ticket.id, issued.estimate.ahead, issued.estimate.minutes)


async def _queued_ticket(hotline: Hotline, sid: str) -> Ticket | None:
    rows = await hotline.rt.engine.run(
        lambda tx: tx.execute("SELECT ticket_id FROM calls WHERE call_sid=?", (sid,))
    )
    if not rows or rows[0][0] is None:
        return None
    ticket = await hotline.rt.engine.ticket(rows[0][0])
    return None if ticket.state.is_final else ticket


async def _case_for_caller(
    hotline: Hotline, digits: str, phone: str
) -> tuple[str, str, str] | None:
    digits = "".join(ch for ch in digits if ch.isdigit())
    if len(digits) != 12:
        return None

    def read(tx: Tx) -> tuple[str, str, str] | None:
        rows = tx.execute(
            "SELECT number, status, promised_day, phone FROM cases WHERE hall=? AND number LIKE ?",
            (hotline.rt.engine.hall.code, f"%{digits}"),
        )
        for number, status, promised, owner in rows:
            if owner == phone:  # spoken only to the applicant's own phone
                return number, status, promised
        return None

    return await hotline.rt.engine.run(read)


async def settle_call(hotline: Hotline, sid: str, call_status: str) -> None:
    """Apply a call's final status to its ticket (also used by the reconciler)."""
    if call_status not in FINAL_CALL:
        return
    engine = hotline.rt.engine
    now = engine.clock.now()
    rows = await engine.run(lambda tx: tx.execute(
        "SELECT ticket_id, direction, attempt, status FROM calls WHERE call_sid=?", (sid,)))  # fmt: skip
    if not rows:
        return
    ticket_id, direction, attempt, previous = rows[0]
    await engine.run(lambda tx: tx.execute(
        "UPDATE calls SET status=?, updated_at=? WHERE call_sid=?", (call_status, now, sid)))  # fmt: skip
    if ticket_id is None or previous in FINAL_CALL or previous == "callback_requested":
        return
    ticket = await engine.ticket(ticket_id)
    try:
        await _settle_ticket(hotline, ticket, direction, attempt, call_status)
    except QueueError as exc:
        log.warning(
            "call %s ended (%s) but ticket %s could not follow: %s",
            sid,
            call_status,
            ticket.number,
            exc,
        )


async def _settle_ticket(
    hotline: Hotline, ticket: Ticket, direction: str, attempt: int, status: str
) -> None:
    engine = hotline.rt.engine
    answered = status == "completed"
    if (
        ticket.state == TicketState.SERVING
        and ticket.workstation
        and (answered or direction == "inbound")
    ):
        await engine.complete(ticket.workstation)
        return
    retry = attempt < hotline.config.callback_attempts and ticket.state == TicketState.SERVING
    if direction == "outbound" and not answered and retry:
        # The citizen did not pick up our call-back: try again later, keeping the place.
        await engine.transfer(ticket.id, to_service=ticket.service, by=ticket.workstation)
        return
    if ticket.state in (TicketState.WAITING, TicketState.CALLED, TicketState.SERVING):
        await engine.abandon(ticket.id)
