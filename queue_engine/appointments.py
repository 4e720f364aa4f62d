"""Appointments (预约): slots, bookings, check-in into an appointment ticket, no-shows.

A booking takes a place in a slot of one service on a working day between
tomorrow and the configured horizon; capacity is counted inside the
booking's own transaction, so the last places can never be sold twice. At
the kiosk the booking code (or the ID number, kept only as a keyed hash)
checks the citizen in: before the grace period ends they get an appointment
ticket served first once the slot has begun; later, a normal ticket.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from .engine import Engine, Issued
from .errors import (
    AlreadyBookedError,
    AppointmentNotFoundError,
    BookingError,
    BookingSuspendedError,
    CheckInError,
    InvalidRequestError,
    SlotFullError,
    UnknownServiceError,
)
from .idcard import id_key
from .model import Channel, Service
from .store.base import Tx

LIVE = ("booked", "checked_in", "late")
COLUMNS = (
    "id, hall, service, day, slot_start, slot_end, code, person_key, phone, channel, status,"
    " booked_at, ticket_id, reminded_at"
)
STATUS_ZH = {"booked": "已预约", "checked_in": "已签到", "late": "迟到签到", "cancelled": "已取消",
             "no_show": "预约未到"}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Slot:
    """A bookable period of one service on one day."""

    start: float
    end: float
    label: str
    capacity: int


@dataclass(frozen=True, slots=True)
class Appointment:
    """One booking."""

    id: int
    hall: str
    service: str
    day: str
    slot_start: float
    slot_end: float
    code: str
    person_key: str
    phone: str | None
    channel: str
    status: str
    booked_at: float
    ticket_id: int | None
    reminded_at: float | None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict without the person key."""
        d = {name: getattr(self, name) for name in self.__slots__ if name != "person_key"}
        return d | {"status_zh": STATUS_ZH.get(self.status, self.status)}


class Appointments:
    """Booking and check-in for one hall's engine."""

    def __init__(self, engine: Engine, id_secret: bytes) -> None:
        self.engine = engine
        self.hall = engine.hall
        self.policy = engine.hall.booking
        self.secret = id_secret

    # --- what can be booked ---------------------------------------------------------

    def bookable_days(self, now: float | None = None) -> list[date]:
        """Working days from tomorrow up to the horizon."""
        today = self._local(now if now is not None else self.engine.clock.now()).date()
        return self.hall.calendar.working_days_from(today, self.policy.horizon_days)

    def slots(self, service: str, day: date) -> list[Slot]:
        """The slots of a service on a day (none on a day the hall does not work)."""
        self._bookable(service)
        if not self.hall.calendar.is_working_day(day):
            return []
        step = timedelta(minutes=self.policy.slot_min)
        out = []
        for session in self.engine.sessions_on(day):
            start = datetime.combine(day, session.opens, self.engine.tz)
            closes = datetime.combine(day, session.closes, self.engine.tz)
            while start + step <= closes:
                label = f"{start:%H:%M}-{start + step:%H:%M}"
                out.append(
                    Slot(start.timestamp(), (start + step).timestamp(), label, self.policy.capacity)
                )
                start += step
        return out

    async def availability(self, service: str, day: date) -> list[dict[str, Any]]:
        """Each slot with its booked and free places."""
        slots = self.slots(service, day)

        def read(tx: Tx) -> dict[float, int]:
            rows = tx.execute(
                "SELECT slot_start, COUNT(*) FROM appointments WHERE hall=? AND service=? AND day=?"
                " AND status IN ('booked','checked_in','late') GROUP BY slot_start",
                (self.hall.code, service, day.isoformat()),
            )
            return {r[0]: r[1] for r in rows}

        taken = await self.engine.run(read)
        return [
            {"start": s.start, "end": s.end, "label": s.label, "capacity": s.capacity,
             "booked": taken.get(s.start, 0), "free": max(0, s.capacity - taken.get(s.start, 0))}
            for s in slots
        ]  # fmt: skip

    # --- booking -----------------------------------------------------------------------

    async def book(
        self,
        service: str,
        day: date,
        slot_start: float,
        *,
        phone: str,
        id_number: str | None = None,
        channel: str = "web",
    ) -> Appointment:
        """Book one place; the same person books a service at most once a day."""
        svc = self._bookable(service)
        now = self.engine.clock.now()
        if day not in self.bookable_days(now):
            raise BookingError(
                reason=f"{day} is not bookable (working days from tomorrow, {self.policy.horizon_days} ahead)",
                reason_zh=f"{day}不可预约（可约明日起{self.policy.horizon_days}个工作日）",
            )
        slot = next((s for s in self.slots(service, day) if s.start == slot_start), None)
        if slot is None:
            raise InvalidRequestError(reason="no such slot", reason_zh="该时段不存在")
        person = id_key(id_number, self.secret) if id_number else f"phone:{phone}"
        return await self.engine.run(
            lambda tx: self._book(tx, svc, day, slot, person, phone, channel, now)
        )

    def _book(
        self,
        tx: Tx,
        svc: Service,
        day: date,
        slot: Slot,
        person: str,
        phone: str,
        channel: str,
        now: float,
    ) -> Appointment:
        today = self._local(now).date().isoformat()
        suspended = tx.execute(
            "SELECT until_day FROM booking_suspensions WHERE person_key=? AND until_day>=?",
            (person, today),
        )
        if suspended:
            raise BookingSuspendedError(until=suspended[0][0])
        if tx.execute(
            "SELECT 1 FROM appointments WHERE hall=? AND service=? AND day=? AND person_key=?"
            " AND status IN ('booked','checked_in','late')",
            (self.hall.code, svc.code, day.isoformat(), person),
        ):
            raise AlreadyBookedError(service=svc.code, service_zh=svc.name_zh, day=day.isoformat())
        taken = tx.execute(
            "SELECT COUNT(*) FROM appointments WHERE hall=? AND service=? AND slot_start=?"
            " AND status IN ('booked','checked_in','late')",
            (self.hall.code, svc.code, slot.start),
        )[0][0]
        if taken >= slot.capacity:
            raise SlotFullError(
                service=svc.code, service_zh=svc.name_zh, day=day.isoformat(), slot=slot.label
            )
        code = self._new_code(tx)
        tx.execute(
            f"INSERT INTO appointments ({COLUMNS.replace('id, ', '', 1)}, updated_at)"
            " VALUES (?,?,?,?,?,?,?,?,?,'booked',?,NULL,NULL,?)",
            (self.hall.code, svc.code, day.isoformat(), slot.start, slot.end, code, person, phone,
             channel, now, now),
        )  # fmt: skip
        booked = self._by_code(tx, code)
        assert booked is not None
        self.engine.emit(tx, "appointment.booked", appointment=booked.to_dict(), phone=phone,
                         slot=slot.label)  # fmt: skip
        return booked

    def _new_code(self, tx: Tx) -> str:
        while True:
            code = f"{secrets.randbelow(900_000) + 100_000}"
            if not tx.execute(
                "SELECT 1 FROM appointments WHERE hall=? AND code=?", (self.hall.code, code)
            ):
                return code

    async def cancel(
        self, code: str, *, phone: str | None = None, by: str | None = None
    ) -> Appointment:
        """Cancel up to the configured time before the slot (citizen: with the booking's phone)."""
        now = self.engine.clock.now()

        def cancel(tx: Tx) -> Appointment:
            appt = self._by_code(tx, code)
            if appt is None or appt.status != "booked" or (by is None and appt.phone != phone):
                raise AppointmentNotFoundError()
            cutoff = appt.slot_start - self.policy.cancel_before_h * 3600
            if now > cutoff:
                raise BookingError(
                    reason=f"bookings can be cancelled until {self.policy.cancel_before_h:g} h before the slot",
                    reason_zh=f"预约须在时段开始前{self.policy.cancel_before_h:g}小时取消",
                )
            tx.execute(
                "UPDATE appointments SET status='cancelled', updated_at=? WHERE id=?",
                (now, appt.id),
            )
            done = self._by_code(tx, code)
            assert done is not None
            self.engine.emit(tx, "appointment.cancelled", appointment=done.to_dict(), phone=appt.phone,
                             by=by or "citizen")  # fmt: skip
            return done

        return await self.engine.run(cancel)

    async def find(self, code: str) -> Appointment | None:
        """A booking by its code."""
        return await self.engine.run(lambda tx: self._by_code(tx, code))

    # --- check-in at the kiosk ------------------------------------------------------------

    async def check_in(self, *, code: str | None = None, id_number: str | None = None) -> Issued:
        """Turn today's booking into a ticket: an appointment ticket, or a normal one when late."""
        if not code and not id_number:
            raise InvalidRequestError(
                reason="give the booking code or the ID number", reason_zh="请输入预约码或身份证号"
            )
        person = id_key(id_number, self.secret) if id_number else None
        now = self.engine.clock.now()
        today = self._local(now).date().isoformat()
        appt = await self.engine.run(lambda tx: self._todays(tx, today, code, person))
        early = appt.slot_start - self.policy.early_min * 60
        if now < early:
            opens = self._local(early).strftime("%H:%M")
            raise CheckInError(reason=f"check-in opens at {opens}", reason_zh=f"请于{opens}后签到")
        late = now > appt.slot_start + self.policy.grace_min * 60
        issue = self.engine.ticket_issuer(
            appt.service, channel=Channel.HALL, priority="normal" if late else "appointment",
            phone=appt.phone, appointment_ref=appt.code, appointment_at=None if late else appt.slot_start,
        )  # fmt: skip

        def check_in(tx: Tx) -> Issued:
            current = self._by_code(tx, appt.code)
            if current is None or current.status != "booked":
                raise AppointmentNotFoundError()
            issued = issue(tx)
            status = "late" if late else "checked_in"
            tx.execute(
                "UPDATE appointments SET status=?, ticket_id=?, updated_at=? WHERE id=?",
                (status, issued.ticket.id, now, appt.id),
            )
            done = self._by_code(tx, appt.code)
            assert done is not None
            self.engine.emit(
                tx, "appointment.checked_in", issued.ticket, appointment=done.to_dict(), late=late
            )
            return issued

        return await self.engine.run(check_in)

    def _todays(self, tx: Tx, today: str, code: str | None, person: str | None) -> Appointment:
        if code:
            rows = tx.execute(
                f"SELECT {COLUMNS} FROM appointments WHERE hall=? AND code=? AND day=? AND status='booked'",
                (self.hall.code, code.strip(), today),
            )
        else:
            rows = tx.execute(
                f"SELECT {COLUMNS} FROM appointments WHERE hall=? AND person_key=? AND day=?"
                " AND status='booked' ORDER BY slot_start LIMIT 1",
                (self.hall.code, person, today),
            )
        if not rows:
            raise AppointmentNotFoundError()
        return Appointment(*rows[0])

    # --- time passing -------------------------------------------------------------------

    async def tick(self) -> int:
        """Record no-shows (and suspend repeat offenders) and send tomorrow's reminders."""
        now = self.engine.clock.now()
        return await self.engine.run(lambda tx: self._no_shows(tx, now) + self._reminders(tx, now))

    def _no_shows(self, tx: Tx, now: float) -> int:
        grace = self.policy.grace_min * 60
        rows = tx.execute(
            f"SELECT {COLUMNS} FROM appointments WHERE hall=? AND status='booked' AND slot_end+?<?",
            (self.hall.code, grace, now),
        )
        for row in rows:
            appt = Appointment(*row)
            tx.execute(
                "UPDATE appointments SET status='no_show', updated_at=? WHERE id=?", (now, appt.id)
            )
            self.engine.emit(tx, "appointment.no_show", appointment=appt.to_dict() | {"status": "no_show"},
                             phone=appt.phone)  # fmt: skip
            self._maybe_suspend(tx, appt, now)
        return len(rows)

    def _maybe_suspend(self, tx: Tx, appt: Appointment, now: float) -> None:
        since = (
            self._local(now).date() - timedelta(days=self.policy.no_show_window_days)
        ).isoformat()
        count = tx.execute(
            "SELECT COUNT(*) FROM appointments WHERE person_key=? AND status='no_show' AND day>=?",
            (appt.person_key, since),
        )[0][0]
        if count < self.policy.no_shows_to_suspend:
            return
        until = (self._local(now).date() + timedelta(days=self.policy.suspend_days)).isoformat()
        tx.execute(
            "INSERT INTO booking_suspensions (person_key, until_day, reason) VALUES (?,?,?)"
            " ON CONFLICT (person_key) DO UPDATE SET until_day=excluded.until_day, reason=excluded.reason",
            (appt.person_key, until, f"{count} no-shows since {since}"),
        )
        self.engine.emit(tx, "booking.suspended", until=until, phone=appt.phone, no_shows=count)

    def _reminders(self, tx: Tx, now: float) -> int:
        local = self._local(now)
        if local.hour < self.policy.reminder_hour:
            return 0
        tomorrow = self.hall.calendar.working_days_from(local.date(), 1)[0].isoformat()
        rows = tx.execute(
            f"SELECT {COLUMNS} FROM appointments WHERE hall=? AND day=? AND status='booked'"
            " AND reminded_at IS NULL",
            (self.hall.code, tomorrow),
        )
        for row in rows:
            appt = Appointment(*row)
            tx.execute("UPDATE appointments SET reminded_at=? WHERE id=?", (now, appt.id))
            label = f"{self._local(appt.slot_start):%H:%M}"
            self.engine.emit(
                tx, "appointment.reminder", appointment=appt.to_dict(), phone=appt.phone, slot=label
            )
        return len(rows)

    # --- helpers ----------------------------------------------------------------------

    def _bookable(self, service: str) -> Service:
        svc = self.hall.service(service)
        if svc is None:
            raise UnknownServiceError(service=service)
        if not svc.bookable or svc.channel != Channel.HALL:
            raise BookingError(
                reason=f"{service} cannot be booked", reason_zh=f"“{svc.name_zh}”不接受预约"
            )
        return svc

    def _by_code(self, tx: Tx, code: str) -> Appointment | None:
        rows = tx.execute(
            f"SELECT {COLUMNS} FROM appointments WHERE hall=? AND code=?", (self.hall.code, code)
        )
        return Appointment(*rows[0]) if rows else None

    def _local(self, when: float) -> datetime:
        return datetime.fromtimestamp(when, self.engine.tz)
