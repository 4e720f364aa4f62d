"""The SMS notifier: a reader of the event log that fills the outbox.

It runs inside the transaction that moves its cursor (a ``TxReader``), and
every row it writes is keyed by event and template (or by ticket for the
once-only "nearly your turn"), so a replayed event never makes a second
message and a crash never loses one. The engine never learns SMS exists.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from queue_engine import Channel, Event, HallConfig, Ticket, Tx
from queue_engine.ratings import create_link
from queue_engine.routing import rank
from queue_engine.transitions import TICKET_STATE_ZH

from .config import SmsConfig
from .templates import TEMPLATES, render

EVENT_TEMPLATES = {
    "ticket.issued": "issued",
    "ticket.called": "called",
    "ticket.recalled": "recalled",
    "ticket.no_show": "no_show",
    "ticket.transferred": "transferred",
    "ticket.cancelled": "cancelled",
    "ticket.expired": "expired",
    "ticket.completed": "rate_request",
}
# Events after which someone further back may now be near the front.
QUEUE_MOVES = {"ticket.called", "ticket.cancelled", "ticket.transferred", "ticket.requeued",
               "ticket.no_show", "ticket.expired"}  # fmt: skip


class SmsNotifier:
    """Turns ticket events into outbox rows (a TxReader)."""

    name = "sms-notifier"

    def __init__(
        self,
        config: SmsConfig,
        halls: Mapping[str, HallConfig],
        on_written: Callable[[], None] | None = None,
    ) -> None:
        self.config = config
        self.halls = halls
        self.on_written = on_written
        self._zones = {code: ZoneInfo(h.timezone) for code, h in halls.items()}

    def after_commit(self) -> None:
        """Wake the dispatcher: the outbox rows just landed."""
        if self.on_written is not None:
            self.on_written()

    def handle_in_tx(self, tx: Tx, events: Sequence[Event]) -> None:
        """Write the outbox rows for these events (after they committed)."""
        # The queues are read as they are now, after every event here, so one look at the
        # front of each queue that moved serves them all: a burst of calls reads it once.
        moved: dict[tuple[str, str], Event] = {}
        for event in events:
            hall = self.halls.get(event.hall)
            if hall is None:
                continue
            ticket = event.ticket
            if ticket is not None and ticket.phone and ticket.channel == Channel.HALL:
                self._for_ticket(tx, hall, event, ticket)
            if event.type in QUEUE_MOVES and ticket is not None:
                to = event.payload.get("to")
                moved[event.hall, to["service"] if to else ticket.service] = event
            records = RECORD_HANDLERS.get(event.type)
            if records is not None:
                records(self, tx, hall, event)
        # After the per-ticket rows: a ticket issued or transferred near the front has its
        # "skipped" near-turn row by now, so it gets no second notice.
        for (code, service), event in moved.items():
            self._near_turn(tx, self.halls[code], event, service)

    def _for_ticket(self, tx: Tx, hall: HallConfig, event: Event, ticket: Ticket) -> None:
        key = EVENT_TEMPLATES.get(event.type)
        if key is None:
            return
        values = self._values(hall, ticket)
        if key == "issued":
            values.update(ahead=event.payload.get("ahead", 0), wait=_minutes(event.payload))
            if values["ahead"] <= self.config.near_turn_n:
                # Already near the front: the issue message says so; no second notice.
                self._enqueue(tx, event, ticket, "near_turn", values, status="skipped")
        if key == "transferred":
            moved = Ticket.from_dict(event.payload["to"])
            values = self._values(hall, moved)
            values["ahead"] = self._ahead(tx, hall, moved, event.at)
            if values["ahead"] <= self.config.near_turn_n:
                # The transfer message already says how few are ahead: no second notice.
                self._enqueue(tx, event, moved, "near_turn", values, status="skipped")
        if key == "rate_request":
            token = create_link(tx, ticket.id, event.at)
            values["link"] = f"{self.config.public_url.rstrip('/')}/r/{token}"
        self._enqueue(tx, event, ticket, key, values)

    # --- appointments, cases, follow-ups ----------------------------------------------

    def _appointment(self, tx: Tx, hall: HallConfig, event: Event) -> None:
        appt = event.payload["appointment"]
        key = {"appointment.booked": "appointment_booked", "appointment.reminder": "appointment_reminder",
               "appointment.cancelled": "appointment_cancelled",
               "appointment.no_show": "appointment_no_show"}[event.type]  # fmt: skip
        svc = hall.service(appt["service"])
        slot = event.payload.get("slot") or self._clock(hall, appt["slot_start"])
        weekday = date.fromisoformat(appt["day"]).weekday()
        values = {"day": appt["day"], "slot": slot, "code": appt["code"],
                  "weekday_zh": WEEKDAYS_ZH[weekday], "weekday_en": WEEKDAYS_EN[weekday],
                  "service_zh": svc.name_zh if svc else appt["service"],
                  "service_en": svc.name_en if svc else appt["service"]}  # fmt: skip
        self._send(tx, event, event.payload.get("phone"), key, values, None)

    def _suspended(self, tx: Tx, hall: HallConfig, event: Event) -> None:
        self._send(tx, event, event.payload.get("phone"), "booking_suspended",
                   {"until": event.payload["until"]}, None)  # fmt: skip

    def _case(self, tx: Tx, hall: HallConfig, event: Event) -> None:
        case = event.payload["case"]
        svc = hall.service(case["service"])
        values = {"case": case["number"], "status": case["status"], "promised": case["promised_day"],
                  "note": event.payload.get("note") or "",
                  "service_zh": svc.name_zh if svc else case["service"],
                  "service_en": svc.name_en if svc else case["service"]}  # fmt: skip
        key = "case_opened" if event.type == "case.opened" else "case_updated"
        if event.payload.get("pickup"):
            key = "case_pickup"
            window = (svc.pickup_window if svc else None) or "综合"
            hours_zh, hours_en = office_hours(hall)
            values |= {"window": window, "hours_zh": hours_zh, "hours_en": hours_en,
                       "bring_zh": svc.pickup_note_zh if svc else "",
                       "bring_en": svc.pickup_note_en if svc else ""}  # fmt: skip
        self._send(tx, event, case.get("phone"), key, values, case.get("ticket_id"))

    def _follow_up_reply(self, tx: Tx, hall: HallConfig, event: Event) -> None:
        ticket = event.ticket
        if ticket is None or not ticket.phone:
            return
        reply = event.payload["follow_up"]["reply"]
        self._send(tx, event, ticket.phone, "followup_reply", {"number": ticket.number, "reply": reply},
                   ticket.id)  # fmt: skip

    def _work_order(self, tx: Tx, hall: HallConfig, event: Event) -> None:
        order = event.payload["order"]
        deadline = datetime.fromtimestamp(order["deadline_at"], self._zones[hall.code]).strftime(
            "%Y-%m-%d %H:%M"
        )
        values = {"number": order["number"], "type_zh": order["type_zh"], "type_en": order["type_en"],
                  "deadline": deadline, "reply": order.get("reply") or ""}  # fmt: skip
        key = "workorder_opened" if event.type == "workorder.open" else "workorder_reply"
        self._send(tx, event, order.get("phone"), key, values, order.get("ticket_id"))

    def _clock(self, hall: HallConfig, at: float) -> str:
        return datetime.fromtimestamp(at, self._zones[hall.code]).strftime("%H:%M")

    def _near_turn(self, tx: Tx, hall: HallConfig, event: Event, service: str) -> None:
        # Only the front of the queue can be near its turn: read that, not the whole queue.
        classes = [p.code for p in hall.priority_classes]
        front = tx.waiting_front(hall.code, service, classes, self.config.near_turn_n + 1)
        queue = rank(front, hall, event.at)
        for ahead, ticket in enumerate(queue[: self.config.near_turn_n + 1]):
            if ticket.phone and ticket.channel == Channel.HALL:
                values = self._values(hall, ticket) | {"ahead": ahead}
                self._enqueue(tx, event, ticket, "near_turn", values)

    def _ahead(self, tx: Tx, hall: HallConfig, ticket: Ticket, now: float) -> int:
        queue = rank(tx.waiting(hall.code, ticket.service), hall, now)
        return next((i for i, t in enumerate(queue) if t.id == ticket.id), len(queue))

    def _values(self, hall: HallConfig, ticket: Ticket) -> dict[str, object]:
        svc = hall.service(ticket.service)
        return {
            "number": ticket.number,
            "window": ticket.window or "",
            "service_zh": svc.name_zh if svc else ticket.service,
            "service_en": svc.name_en if svc else ticket.service,
            "link": f"{self.config.public_url.rstrip('/')}/t/{ticket.token}",
            "state_zh": TICKET_STATE_ZH[ticket.state],
            "state_en": ticket.state.value.replace("_", " "),
        }

    def _enqueue(
        self,
        tx: Tx,
        event: Event,
        ticket: Ticket,
        key: str,
        values: Mapping[str, object],
        status: str = "pending",
    ) -> None:
        self._send(tx, event, ticket.phone, key, values, ticket.id, status)

    def _send(
        self,
        tx: Tx,
        event: Event,
        phone: str | None,
        key: str,
        values: Mapping[str, object],
        ticket_id: int | None,
        status: str = "pending",
    ) -> None:
        if not phone:
            return
        template = TEMPLATES[key]
        dedupe = f"near_turn:{ticket_id}" if key == "near_turn" else f"{event.id}:{key}"
        if status == "pending" and _opted_out(tx, phone):
            status = "opted_out"
        body = render(key, self.config.signature, self.config.bilingual, **values)
        not_before = event.at if template.urgent else self.after_quiet(event.hall, event.at)
        tx.execute(
            "INSERT INTO sms_outbox (dedupe_key, event_id, template, hall, ticket_id, phone, body,"
            " urgent, status, created_at, not_before, next_attempt_at, updated_at)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT (dedupe_key) DO NOTHING",
            (dedupe, event.id, key, event.hall, ticket_id, phone, body, int(template.urgent),
             status, event.at, not_before, not_before, event.at),
        )  # fmt: skip

    def after_quiet(self, hall: str, at: float) -> float:
        """``at``, or the end of the quiet hours it falls in."""
        start, end = self.config.quiet_start, self.config.quiet_end
        if start is None or end is None:
            return at
        local = datetime.fromtimestamp(at, self._zones[hall])
        moment = local.time()
        # A window like 22:00–07:30 wraps past midnight.
        quiet = start <= moment < end if start <= end else (moment >= start or moment < end)
        if not quiet:
            return at
        wake = local.replace(hour=end.hour, minute=end.minute, second=0, microsecond=0)
        if wake <= local:
            wake += timedelta(days=1)
        return wake.timestamp()


WEEKDAYS_ZH = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")
WEEKDAYS_EN = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def office_hours(hall: HallConfig) -> tuple[str, str]:
    """The working-day hours in words: 工作日09:00-12:00、13:30-17:30."""
    sessions = [s for s in hall.hours.get(0, ()) if not s.extended]
    spans = [f"{s.opens:%H:%M}-{s.closes:%H:%M}" for s in sessions]
    if not spans:
        return "办公时间", "during office hours"
    return "工作日" + "、".join(spans), "working days " + ", ".join(spans)


RECORD_HANDLERS = {
    "appointment.booked": SmsNotifier._appointment,
    "appointment.reminder": SmsNotifier._appointment,
    "appointment.cancelled": SmsNotifier._appointment,
    "appointment.no_show": SmsNotifier._appointment,
    "booking.suspended": SmsNotifier._suspended,
    "case.opened": SmsNotifier._case,
    "case.updated": SmsNotifier._case,
    "followup.closed": SmsNotifier._follow_up_reply,
    "workorder.open": SmsNotifier._work_order,
    "workorder.follow_up": SmsNotifier._work_order,
}


def _opted_out(tx: Tx, phone: str) -> bool:
    return bool(tx.execute("SELECT 1 FROM sms_optouts WHERE phone=?", (phone,)))


def _minutes(payload: Mapping[str, object]) -> int:
    wait = payload.get("wait_min") or 0
    return round(float(wait))  # type: ignore[arg-type]
