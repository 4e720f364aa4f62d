"""The SMS notifier: a reader of the event log that fills the outbox.

It runs inside the transaction that moves its cursor (a ``TxReader``), and
every row it writes is keyed by event and template (or by ticket for the
once-only "nearly your turn"), so a replayed event never makes a second
message and a crash never loses one. The engine never learns SMS exists.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from queue_engine import Channel, Event, HallConfig, Ticket, Tx
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
        """Write the outbox rows for these events (on the database thread)."""
        for event in events:
            hall = self.halls.get(event.hall)
            if hall is None:
                continue
            ticket = event.ticket
            if ticket is not None and ticket.phone and ticket.channel == Channel.HALL:
                self._for_ticket(tx, hall, event, ticket)
            if event.type in QUEUE_MOVES and ticket is not None:
                moved = event.payload.get("to")
                service = moved["service"] if moved else ticket.service
                self._near_turn(tx, hall, event, service)

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
        self._enqueue(tx, event, ticket, key, values)

    def _near_turn(self, tx: Tx, hall: HallConfig, event: Event, service: str) -> None:
        queue = rank(tx.waiting(hall.code, service), hall, event.at)
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
        template = TEMPLATES[key]
        dedupe = f"near_turn:{ticket.id}" if key == "near_turn" else f"{event.id}:{key}"
        phone = ticket.phone or ""
        if status == "pending" and _opted_out(tx, phone):
            status = "opted_out"
        body = render(key, self.config.signature, self.config.bilingual, **values)
        not_before = event.at if template.urgent else self.after_quiet(event.hall, event.at)
        tx.execute(
            "INSERT INTO sms_outbox (dedupe_key, event_id, template, hall, ticket_id, phone, body,"
            " urgent, status, created_at, not_before, next_attempt_at, updated_at)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT (dedupe_key) DO NOTHING",
            (dedupe, event.id, key, event.hall, ticket.id, phone, body, int(template.urgent),
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


def _opted_out(tx: Tx, phone: str) -> bool:
    return bool(tx.execute("SELECT 1 FROM sms_optouts WHERE phone=?", (phone,)))


def _minutes(payload: Mapping[str, object]) -> int:
    wait = payload.get("wait_min") or 0
    return round(float(wait))  # type: ignore[arg-type]
