"""The voice webhooks: the provider calls these and we answer with TwiML.

Every request is checked against its signature first (403 otherwise). Each
handler does only quick work (a ticket, a row) and answers at once; the
REST calls that put a caller through to an agent or dial a call-back run in
the connector's background task, well inside the provider's 15-second budget.

Each webhook is one plain function over the parsed query and form, answering
``(status, TwiML)``. Two doors lead to it: the FastAPI routes (documented in
the OpenAPI schema, and taken by any request the lean path leaves alone) and
the lean ASGI path in :mod:`.fastpath`, which the hold loop's many requests
take past FastAPI's middleware, routing and dependencies.
"""

# No `from __future__ import annotations` here: the routes' Annotated dependency aliases
# are local to the router factory and FastAPI must see them as objects, not strings.

import hmac
import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from starlette.types import Scope
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

Query = Mapping[str, str]
Form = Mapping[str, str]
Answer = tuple[int, str]  # the HTTP status and the TwiML ("" with 204)
Webhook = Callable[["Hotline", Query, Form], Awaitable[Answer]]


@dataclass
class Hotline:
    """What the webhooks reach once the lifespan has started the hall."""

    config: HotlineConfig
    runtime: HallRuntime | None = None
    wake_connector: Callable[[], None] | None = None
    # Calls heard from in the hold loop since the reconciler last looked, and when: kept
    # here rather than written on every hold request (one every few seconds per caller),
    # and written in one transaction before the reconciler picks the quiet calls.
    alive: dict[str, float] = field(default_factory=dict)

    @property
    def rt(self) -> HallRuntime:
        """The hall runtime (the lifespan sets it before the first request)."""
        assert self.runtime is not None
        return self.runtime

    def take_alive(self) -> dict[str, float]:
        """The calls heard from since the last call, and when (for the reconciler)."""
        marks, self.alive = self.alive, {}
        return marks

    @cached_property
    def signature(self) -> "Signature":
        """The check of the provider's X-Twilio-Signature, shared by both doors."""
        token = self.config.twilio.auth_token if self.config.twilio else None
        return Signature(token, self.config.public_url)


class SignedForm(dict[str, str]):
    """The form as the twilio library reads it: ``getall`` spares it two AttributeErrors
    per parameter (it tries a MultiDict's ``getall``, then a QueryDict's ``getlist``)."""

    def getall(self, name: str) -> list[str]:
        return [self[name]]


class Signature:
    """X-Twilio-Signature: HMAC-SHA1 with the auth token over the URL the provider called
    (with its query) and the sorted POST parameters, computed by the twilio library.

    The configured public URL is tried first, as one signature compared in constant time;
    only when that fails are the other URLs the provider may have signed tried (as a proxy
    forwarded it, from X-Forwarded-Proto/X-Forwarded-Host/Host, each with and without
    the port), exactly as ``sms.views.public_url`` and ``RequestValidator.validate`` do."""

    def __init__(self, token: str | None, configured: str | None) -> None:
        self.validator = RequestValidator(token) if token else None
        self.configured = configured
        self.base = configured.rstrip("/") if configured else None

    def valid(self, scope: Scope, form: Form, signature: str) -> bool:
        """Whether ``signature`` signs this request (its scope) and its parsed ``form``."""
        if self.validator is None or not signature:
            return False
        params = form if isinstance(form, SignedForm) else SignedForm(form)
        if self.base is not None:
            try:
                query = scope["query_string"].decode()
            except UnicodeDecodeError:
                return False  # no URL the provider signs carries raw non-UTF-8 bytes
            url = self.base + scope["path"] + (f"?{query}" if query else "")
            expected = self.validator.compute_signature(url, params)
            if hmac.compare_digest(expected.encode(), signature.encode()):
                return True
        urls = public_url(Request(scope), self.configured)
        return any(self.validator.validate(u, params, signature) for u in urls)


# --- the webhooks ----------------------------------------------------------------------------


def _voice(hotline: Hotline, query: Query) -> ivr.Voice:
    return ivr.Voice("en" if query.get("lang") == "en" else "zh", hotline.config)


def _ok(text: str) -> Answer:
    return 200, text


async def incoming(hotline: Hotline, query: Query, form: Form) -> Answer:
    """A call arrives (or returns to the menu): greet and offer the menu."""
    attempt = int(query.get("attempt", "0") or 0)
    await _remember_call(hotline, form, "inbound")
    return _ok(ivr.greeting(_voice(hotline, query), attempt))


async def menu(hotline: Hotline, query: Query, form: Form) -> Answer:
    """A key in the main menu; invalid or no input repeats once, then goes to an agent."""
    config = hotline.config
    v = _voice(hotline, query)
    attempt = int(query.get("attempt", "0") or 0)
    digits = form.get("Digits", query.get("Digits", ""))
    choice = ivr.menu_choice(digits)
    if choice == "english":
        return _ok(ivr.greeting(ivr.Voice("en", config), 0))
    if choice == "case":
        return _ok(ivr.case_prompt(v))
    if choice == "invalid" and attempt < 1:
        return _ok(ivr.invalid_then_menu(v, attempt + 1))
    service = config.services.get("appointment" if choice == "appointment" else "agent", "")
    return _ok(await _enqueue(hotline, form, service, v))


async def case(hotline: Hotline, query: Query, form: Form) -> Answer:
    """Speak a case's status back, if it belongs to the caller."""
    v = _voice(hotline, query)
    found = await _case_for_caller(hotline, form.get("Digits", ""), _phone(form.get("From", "")))
    if found is None:
        return _ok(ivr.spoken_then_menu(v, "case_not_found"))
    number, status, promised = found
    return _ok(ivr.spoken_then_menu(v, "case_status", number=number, status=status,
                                    status_en=status, promised=promised))  # fmt: skip


async def hold(hotline: Hotline, query: Query, form: Form) -> Answer:
    """The hold loop: put through once an agent has the call, else wait and listen for star."""
    v = _voice(hotline, query)
    ticket = await _holding(hotline, query, form.get("CallSid", ""))
    if ticket is None or ticket.state.is_final:
        return _ok(ivr.goodbye(v))
    if ticket.state == TicketState.SERVING and ticket.workstation:
        return _ok(ivr.connect(v, hotline.config.endpoint(ticket.workstation), ticket.id))
    n = int(query.get("n", "0") or 0)
    # The position is worked out only when it is announced: ranking the queue on every
    # hold request would cost the whole hotline for a sentence said once a minute.
    announce = n % ivr.ANNOUNCE_EVERY == ivr.ANNOUNCE_EVERY - 1
    est = None
    if announce and ticket.state == TicketState.WAITING:
        est = await hotline.rt.engine.wait_estimate(ticket.id)
    return _ok(ivr.hold(v, ticket.id, est, n))


async def hold_key(hotline: Hotline, query: Query, form: Form) -> Answer:
    """Star (or 1 at night) leaves a call-back that keeps the caller's place."""
    v = _voice(hotline, query)
    ticket = await _ticket(hotline, query)
    key = form.get("Digits", "")
    wants = key == "*" or (query.get("night") and key == "1")
    if ticket is None or not wants:
        if query.get("night"):
            return _ok(ivr.goodbye(v))
        return _ok(ivr.hold(v, ticket.id if ticket else 0, None))
    try:
        moved = await hotline.rt.engine.request_callback(ticket.id)
    except QueueError:
        return _ok(ivr.goodbye(v))
    await _link_ticket(hotline, form.get("CallSid", ""), moved.id, "callback_requested")
    return _ok(ivr.callback_registered(v, mask_phone(moved.phone)))


async def connect(hotline: Hotline, query: Query, form: Form) -> Answer:
    """Where the connector redirects a caller once an agent accepted."""
    v = _voice(hotline, query)
    ticket = await _ticket(hotline, query)
    if ticket is None or ticket.workstation is None or ticket.state != TicketState.SERVING:
        return _ok(ivr.hold(v, ticket.id if ticket else 0, None))
    return _ok(ivr.connect(v, hotline.config.endpoint(ticket.workstation), ticket.id))


async def callback_connect(hotline: Hotline, query: Query, form: Form) -> Answer:
    """The citizen answered our call-back: put them through to the agent."""
    v = _voice(hotline, query)
    ticket = await _ticket(hotline, query)
    if ticket is None or ticket.workstation is None:
        return _ok(ivr.goodbye(v))
    endpoint = hotline.config.endpoint(ticket.workstation)
    return _ok(ivr.connect(v, endpoint, ticket.id, "callback_greeting"))


async def dial_done(hotline: Hotline, query: Query, form: Form) -> Answer:
    """The agent leg ended; the conversation is over."""
    return _ok(ivr.goodbye(_voice(hotline, query)))


async def status(hotline: Hotline, query: Query, form: Form) -> Answer:
    """Call progress: a caller who hangs up while waiting is abandoned; a finished call is
    completed (the agent goes to wrap-up); an unanswered call-back is retried."""
    await settle_call(hotline, form.get("CallSid", ""), form.get("CallStatus", ""))
    return 204, ""


# Each webhook by its path under /voice/ (both doors serve exactly these).
WEBHOOKS: dict[str, Webhook] = {
    "incoming": incoming, "menu": menu, "case": case, "hold": hold, "hold-key": hold_key,
    "connect": connect, "callback-connect": callback_connect, "dial-done": dial_done,
    "status": status,
}  # fmt: skip


def hotline_router(hotline: Hotline) -> APIRouter:
    """The /voice/* webhooks of one process, as documented FastAPI routes over WEBHOOKS."""
    signature = hotline.signature

    async def signed(request: Request) -> dict[str, str]:
        form = SignedForm((k, str(v)) for k, v in (await request.form()).items())
        if not signature.valid(request.scope, form, request.headers.get("x-twilio-signature", "")):
            raise forbidden_exception()
        return form

    Signed = Annotated[dict[str, str], Depends(signed)]

    def route(webhook: Webhook) -> Callable[..., Awaitable[Response]]:
        async def endpoint(request: Request, form: Signed) -> Response:
            code, text = await webhook(hotline, request.query_params, form)
            return Response(text or None, status_code=code, media_type=TWIML if text else None)

        return endpoint

    router = APIRouter(prefix="/voice", tags=["hotline webhooks"], responses=SIGNED_RESPONSES)
    for path, webhook in WEBHOOKS.items():
        extra: dict[str, Any] = {"status_code": 204} if webhook is status else {}
        router.add_api_route(f"/{path}", route(webhook), methods=["POST"], name=webhook.__name__,
                             description=inspect.cleandoc(webhook.__doc__ or ""), **extra)  # fmt: skip
    return router


# --- the work behind the webhooks ------------------------------------------------------------


def _phone(raw: str) -> str:
    try:
        return normalise(raw)
    except InvalidPhoneError:
        return raw


async def _remember_call(hotline: Hotline, form: Form, direction: str) -> None:
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


async def _ticket(hotline: Hotline, query: Query, touch: str | None = None) -> Ticket | None:
    """The ticket in the query string, read from the store."""
    raw = query.get("ticket", "")
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        return None
    engine = hotline.rt.engine
    return _a_call(engine.hall.code, await engine.run(lambda tx: tx.get_ticket(int(raw))))


async def _holding(hotline: Hotline, query: Query, sid: str) -> Ticket | None:
    """The hold loop's ticket, and a note that the call is alive.

    Read from the hall's view, which every committed event updates a moment after the
    commit; a hold request that sees a change a moment late answers it on the next round
    of the loop (the connector redirects a call the moment an agent accepts it). A ticket
    the view does not hold (an earlier day's) is read from the store.
    """
    raw = query.get("ticket", "")
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        return None
    if sid:
        hotline.alive[sid] = hotline.rt.engine.clock.now()
    ticket = hotline.rt.view.tickets.get(int(raw))
    if ticket is None:
        return await _ticket(hotline, query)
    return _a_call(hotline.rt.engine.hall.code, ticket)


def _a_call(hall: str, ticket: Ticket | None) -> Ticket | None:
    if ticket is None or ticket.hall != hall or ticket.channel == Channel.HALL:
        return None
    return ticket


async def _enqueue(hotline: Hotline, form: Form, service: str, v: ivr.Voice) -> str:
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
