"""The provider's webhooks: delivery status callbacks and inbound replies, both signed.

Twilio signs each request with HMAC-SHA1 over the URL it called and the
POST parameters; we rebuild that public URL (honouring X-Forwarded-Proto and
X-Forwarded-Host behind a proxy) and answer 403 to anything unsigned.
"""

# No `from __future__ import annotations` here: the routes' Annotated dependency aliases
# are local to the router factory and FastAPI must see them as objects, not strings.

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

from queue_engine import Clock, Engine, QueueError, Store, TicketState, Tx
from queue_engine.appointments import Appointments
from queue_engine.cases import Cases
from queue_engine.masking import mask_phone
from queue_engine.ratings import LEVELS, Ratings
from queue_engine.transitions import TICKET_STATE_ZH
from queue_engine.workorders import SATISFACTION, WorkOrders

from .config import SmsConfig
from .inbound import parse
from .phone import InvalidPhoneError, normalise
from .templates import render

log = logging.getLogger(__name__)

# Provider statuses in the order a message moves through them; a late callback never
# moves a message backwards (delivered, then a delayed 'sent', stays delivered).
STATUS_RANK = {"queued": 0, "accepted": 0, "scheduled": 0, "sending": 1, "sent": 2,
               "delivered": 3, "undelivered": 3, "failed": 3, "read": 4}  # fmt: skip
OURS = {"queued": "sent", "accepted": "sent", "scheduled": "sent", "sending": "sent",
        "sent": "sent", "delivered": "delivered", "undelivered": "undelivered",
        "failed": "failed", "read": "delivered"}  # fmt: skip


SIGNED_RESPONSES: dict[int | str, dict[str, Any]] = {
    403: {"description": "missing or wrong X-Twilio-Signature (JSON error body)"}
}


def public_url(request: Request, configured: str | None) -> list[str]:
    """The URLs the provider may have signed: as forwarded by a proxy, and as configured."""
    scheme = request.headers.get("x-forwarded-proto", request.url.scheme).split(",")[0].strip()
    host = request.headers.get("x-forwarded-host") or request.headers.get("host") or ""
    tail = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    urls = [f"{scheme}://{host.split(',')[0].strip()}{tail}"]
    if configured:
        urls.append(configured.rstrip("/") + tail)
    return urls


@dataclass
class Wiring:
    """What the webhooks reach once the app's lifespan has opened them."""

    clock: Clock
    store: Store | None = None
    engines: dict[str, Engine] = field(default_factory=dict)
    ratings: dict[str, Ratings] = field(default_factory=dict)
    appointments: dict[str, Appointments] = field(default_factory=dict)
    cases: dict[str, Cases] = field(default_factory=dict)
    work_orders: dict[str, WorkOrders] = field(default_factory=dict)


def webhook_router(config: SmsConfig, wiring: Wiring) -> APIRouter:
    """The /sms/status and /sms/inbound routes for one process."""
    clock = wiring.clock
    token = config.twilio.auth_token if config.twilio else None
    validator = RequestValidator(token) if token else None

    async def signed(request: Request) -> dict[str, str]:
        form = {k: str(v) for k, v in (await request.form()).items()}
        signature = request.headers.get("x-twilio-signature", "")
        if validator is None or not signature:
            raise _Forbidden()
        if not any(
            validator.validate(u, form, signature) for u in public_url(request, config.public_url)
        ):
            raise _Forbidden()
        return form

    Signed = Annotated[dict[str, str], Depends(signed)]
    router = APIRouter(prefix="/sms", tags=["sms webhooks"], responses=SIGNED_RESPONSES)

    @router.post("/status", status_code=204)
    async def status(form: Signed) -> Response:
        """Delivery status callback: sent, delivered, undelivered or failed, with the error code."""
        sid, state = form.get("MessageSid", ""), form.get("MessageStatus", "")
        if sid and state in OURS and wiring.store is not None:
            await wiring.store.run(
                lambda tx: _record_status(tx, sid, state, form.get("ErrorCode"), clock.now())
            )
        return Response(status_code=204)

    @router.post("/inbound")
    async def inbound(form: Signed) -> Response:
        """A citizen's reply: a ticket number, 退订/TD/STOP, START/订阅, or anything else."""
        assert wiring.store is not None
        reply = await _answer(config, wiring, form)
        twiml = MessagingResponse()
        twiml.message(reply)
        return Response(str(twiml), media_type="application/xml")

    return router


class _Forbidden(Exception):
    """Raised by the signature check; the app turns it into a 403."""


def forbidden_exception() -> Exception:
    """The error a webhook raises for a missing or wrong signature (answered with 403)."""
    return _Forbidden()


def forbidden_handler() -> tuple[type[Exception], Any]:
    """The exception handler the app installs for unsigned webhooks."""

    async def handle(request: Request, exc: Exception) -> Response:
        # The scope's path, not request.url: that decodes the query, which may not be UTF-8.
        log.warning("rejected an unsigned or wrongly signed webhook to %s", request.scope["path"])
        body = json.dumps({"error": {
            "code": "bad_signature", "message_zh": "请求签名无效",
            "message_en": "invalid or missing request signature", "details": None,
        }}, ensure_ascii=False)  # fmt: skip
        return Response(body, status_code=403, media_type="application/json")

    return _Forbidden, handle


def _record_status(tx: Tx, sid: str, state: str, code: str | None, now: float) -> None:
    rows = tx.execute("SELECT status FROM sms_outbox WHERE provider_id=?", (sid,))
    if not rows:
        # The callback beat the dispatcher's own record of the send: keep it for then.
        tx.execute(
            "INSERT INTO sms_early_status (provider_id, status, error_code, at) VALUES (?,?,?,?)"
            " ON CONFLICT (provider_id) DO UPDATE SET status=excluded.status,"
            " error_code=excluded.error_code, at=excluded.at",
            (sid, OURS[state], code or None, now),
        )
        return
    current = rows[0][0]
    if STATUS_RANK.get(state, 0) < STATUS_RANK.get(current, 0):
        return
    tx.execute(
        "UPDATE sms_outbox SET status=?, error_code=COALESCE(?, error_code), updated_at=?"
        " WHERE provider_id=?",
        (OURS[state], code or None, now, sid),
    )


async def _answer(config: SmsConfig, wiring: Wiring, form: dict[str, str]) -> str:
    store = wiring.store
    assert store is not None
    try:
        phone = normalise(form.get("From", ""), config.region)
    except InvalidPhoneError:
        phone = form.get("From", "")
    intent = parse(form.get("Body", ""))
    now = wiring.clock.now()

    def say(key: str, **values: Any) -> str:
        return render(key, config.signature, config.bilingual, **values)

    if intent.kind in ("opt_out", "opt_in"):
        await store.run(lambda tx: _opt(tx, phone, intent.kind == "opt_out", now))
        reply = say("opted_out" if intent.kind == "opt_out" else "opted_in")
    else:
        handler = INTENT_REPLIES.get(intent.kind)
        reply = await handler(wiring, phone, intent.number or "", say) if handler else say("help")
    sid, body = form.get("MessageSid"), form.get("Body", "")
    await store.run(
        lambda tx: tx.execute(
            "INSERT INTO sms_inbound (provider_id, phone, body, received_at, reply)"
            " VALUES (?,?,?,?,?) ON CONFLICT (provider_id) DO NOTHING",
            (sid, phone, body, now, reply),
        )
    )
    log.info("SMS reply from %s: %s", mask_phone(phone), intent.kind)
    return reply


async def _case_reply(wiring: Wiring, phone: str, number: str, say: Any) -> str:
    for hall, cases in wiring.cases.items():
        try:
            case, _ = await cases.query(number, phone[-4:])
        except QueueError:
            continue
        if case.phone != phone:
            continue  # the last four digits match by chance: reveal nothing
        svc = wiring.engines[hall].hall.service(case.service)
        return say(
            "case_status", case=case.number, status=case.status, promised=case.promised_day,
            service_zh=svc.name_zh if svc else case.service, service_en=svc.name_en if svc else case.service,
        )  # fmt: skip
    return say("not_found", number=number)


async def _cancel_reply(wiring: Wiring, phone: str, code: str, say: Any) -> str:
    for appointments in wiring.appointments.values():
        try:
            appt = await appointments.cancel(code, phone=phone)
        except QueueError as exc:
            if exc.code == "appointment_not_found":
                continue
            return say("notice", text_zh=exc.message_zh, text_en=exc.message_en)
        return say("appointment_cancelled_reply", code=appt.code, day=appt.day)
    return say("not_found", number=code)


async def _rating_reply(wiring: Wiring, phone: str, level: str, say: Any) -> str:
    # 1–3 answers a work order's satisfaction request when one waits for this caller.
    for orders in wiring.work_orders.values():
        waiting = await orders.awaiting_satisfaction(phone) if level in "123" else None
        if waiting is not None:
            done = await orders.satisfaction(waiting.number, int(level))
            zh, en = SATISFACTION[int(level)]
            more_zh = "我们将重新办理并再次答复。" if done.state != "办结" else "工单已办结。"
            more_en = (
                "We will handle it again." if done.state != "办结" else "The work order is closed."
            )
            return say(
                "workorder_thanks", level_zh=zh, level_en=en, more_zh=more_zh, more_en=more_en
            )
    for ratings in wiring.ratings.values():
        rating = await ratings.rate_by_reply(phone, int(level))
        if rating is not None:
            zh, en = LEVELS[rating.level]
            return say("rated", level_zh=zh, level_en=en)
    return say("help")


INTENT_REPLIES = {
    "ticket": lambda w, phone, number, say: _ticket_reply(w.engines, phone, number, say),
    "case": _case_reply,
    "cancel": _cancel_reply,
    "rate": _rating_reply,
}


def _opt(tx: Tx, phone: str, out: bool, now: float) -> None:
    if out:
        tx.execute(
            "INSERT INTO sms_optouts (phone, opted_out_at, source) VALUES (?,?,'reply')"
            " ON CONFLICT (phone) DO NOTHING",
            (phone, now),
        )
    else:
        tx.execute("DELETE FROM sms_optouts WHERE phone=?", (phone,))


async def _ticket_reply(engines: Mapping[str, Engine], phone: str, number: str, say: Any) -> str:
    for engine in engines.values():
        ticket = await engine.ticket_by_number(number)
        if ticket is None or ticket.phone != phone:
            continue  # another citizen's ticket reveals nothing
        svc = engine.hall.service(ticket.service)
        detail_zh, detail_en = "", ""
        if ticket.state == TicketState.WAITING:
            est = await engine.wait_estimate(ticket.id)
            if est is not None:
                detail_zh = f"，前面还有{est.ahead}人，预计约{round(est.minutes)}分钟"
                detail_en = f", {est.ahead} ahead, about {round(est.minutes)} min"
        elif ticket.state == TicketState.CALLED:
            detail_zh = f"，请到{ticket.window}号窗口"
            detail_en = f", please go to window {ticket.window}"
        return say(
            "ticket_status", number=ticket.number,
            service_zh=svc.name_zh if svc else ticket.service,
            service_en=svc.name_en if svc else ticket.service,
            state_zh=TICKET_STATE_ZH[ticket.state], state_en=ticket.state.value.replace("_", " "),
            detail_zh=detail_zh, detail_en=detail_en,
        )  # fmt: skip
    return say("not_found", number=number)
