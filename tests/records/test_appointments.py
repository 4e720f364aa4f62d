"""Appointments on the real engine: slots, booking, capacity, cancellation, check-in, no-shows."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import date, time

import pytest

from queue_engine import Bus, Engine, FakeClock, Store
from queue_engine.appointments import Appointments
from queue_engine.errors import (
    AlreadyBookedError,
    AppointmentNotFoundError,
    BookingError,
    BookingSuspendedError,
    CheckInError,
    InvalidRequestError,
    SlotFullError,
    UnknownServiceError,
)
from queue_engine.model import BookingPolicy, HallConfig, Session
from sms.config import SmsConfig
from sms.views import Wiring, _answer
from tests.records.conftest import ID_SECRET, P1, P2, P3, at, events, outbox, records_hall

ID_A = "11010519491231002X"
ID_B = "440524188001010014"
MON, TUE, WED = date(2026, 6, 1), date(2026, 6, 2), date(2026, 6, 3)


def start_of(day: date, hh: int, mm: int = 0) -> float:
    return at(day.year, day.month, day.day, hh, mm)


def phone(i: int) -> str:
    return f"+86139{i:08d}"


def other_engine(store: Store, clock: FakeClock, **changes: object) -> Appointments:
    return Appointments(Engine(store, records_hall(**changes), clock), ID_SECRET)


# --- slots ------------------------------------------------------------------------------


def test_slots_follow_the_opening_hours(appointments: Appointments) -> None:
    slots = appointments.slots("biz", MON)
    labels = [s.label for s in slots]
    assert len(slots) == 6 + 8  # 09:00–12:00 and 13:30–17:30 in half hours
    assert labels[0] == "09:00-09:30" and labels[5] == "11:30-12:00"
    assert labels[6] == "13:30-14:00" and labels[-1] == "17:00-17:30"
    assert "12:00-12:30" not in labels and "13:00-13:30" not in labels
    assert slots[0].start == start_of(MON, 9) and slots[0].end == start_of(MON, 9, 30)
    assert all(s.capacity == 4 for s in slots)
    assert all(b.start == a.end for a, b in zip(slots[:5], slots[1:6], strict=True))


def test_slot_length_and_capacity_come_from_config(store: Store, clock: FakeClock) -> None:
    appts = other_engine(store, clock, booking=BookingPolicy(slot_min=60, capacity=9))
    slots = appts.slots("biz", MON)
    assert [s.label for s in slots] == [
        "09:00-10:00", "10:00-11:00", "11:00-12:00",
        "13:30-14:30", "14:30-15:30", "15:30-16:30", "16:30-17:30",
    ]  # fmt: skip
    assert {s.capacity for s in slots} == {9}


def test_an_extended_evening_session_has_slots(store: Store, clock: FakeClock) -> None:
    day = (Session(time(9), time(12)), Session(time(13, 30), time(17, 30)))
    evening = (*day, Session(time(17, 30), time(20), extended=True))
    appts = other_engine(store, clock, hours={0: day, 1: day, 2: evening, 3: day, 4: day})
    wed = [s.label for s in appts.slots("biz", WED)]
    assert len(wed) == 14 + 5
    assert wed[-5:] == ["17:30-18:00", "18:00-18:30", "18:30-19:00", "19:00-19:30", "19:30-20:00"]
    assert len(appts.slots("biz", TUE)) == 14


def test_holidays_and_weekends_have_no_slots_but_a_worked_weekend_has_mondays(
    appointments: Appointments,
) -> None:
    assert appointments.slots("biz", date(2026, 10, 1)) == []  # 国庆
    assert appointments.slots("biz", date(2026, 10, 5)) == []  # a holiday Monday
    assert appointments.slots("biz", date(2026, 9, 19)) == []  # an ordinary Saturday
    monday = [s.label for s in appointments.slots("biz", date(2026, 10, 12))]
    assert len(monday) == 14
    for worked in (date(2026, 10, 10), date(2026, 9, 20)):  # 调休 Saturday and Sunday
        assert [s.label for s in appointments.slots("biz", worked)] == monday


def test_only_bookable_hall_services_have_slots(
    appointments: Appointments, store: Store, clock: FakeClock
) -> None:
    with pytest.raises(BookingError):
        appointments.slots("consult", MON)  # a hotline service
    with pytest.raises(UnknownServiceError):
        appointments.slots("nope", MON)
    base = records_hall()
    closed = tuple(dataclasses.replace(s, bookable=s.code != "pension") for s in base.services)
    appts = other_engine(store, clock, services=closed)
    with pytest.raises(BookingError):
        appts.slots("pension", MON)
    assert appts.slots("medical", MON)


# --- bookable days ------------------------------------------------------------------------


def test_bookable_days_start_tomorrow_and_skip_the_weekend(appointments: Appointments) -> None:
    # Friday 29 May 2026: Monday to Friday of the next week (5 working days).
    assert appointments.bookable_days() == [date(2026, 6, d) for d in range(1, 6)]


async def test_bookable_days_skip_the_holiday_and_include_the_worked_saturday(
    appointments: Appointments, clock: FakeClock
) -> None:
    clock.set(at(2026, 9, 29, 10))
    assert appointments.bookable_days() == [
        date(2026, 9, 30), date(2026, 10, 8), date(2026, 10, 9), date(2026, 10, 10),
        date(2026, 10, 12),
    ]  # fmt: skip
    sat = date(2026, 10, 10)
    booked = await appointments.book("biz", sat, start_of(sat, 14), phone=P1)
    assert booked.day == "2026-10-10"
    for day, hh in ((date(2026, 10, 1), 10), (date(2026, 10, 13), 10), (date(2026, 9, 29), 15)):
        with pytest.raises(BookingError):
            await appointments.book("biz", day, start_of(day, hh), phone=P2)


async def test_today_and_beyond_the_horizon_are_refused(appointments: Appointments) -> None:
    today, too_far = date(2026, 5, 29), date(2026, 6, 8)
    for day in (today, too_far):
        with pytest.raises(BookingError):
            await appointments.book("biz", day, start_of(day, 15), phone=P1)
    with pytest.raises(InvalidRequestError):  # not a slot start
        await appointments.book("biz", MON, start_of(MON, 9, 10), phone=P1)
    with pytest.raises(InvalidRequestError):  # lunch break
        await appointments.book("biz", MON, start_of(MON, 12), phone=P1)


# --- booking --------------------------------------------------------------------------


async def test_a_booking_has_a_six_digit_code_an_event_and_an_sms(
    appointments: Appointments, store: Store, bus: Bus, hall: HallConfig
) -> None:
    appt = await appointments.book("biz", MON, start_of(MON, 9), phone=P1, channel="hotline")
    assert len(appt.code) == 6 and appt.code.isdigit() and appt.code[0] != "0"
    assert (appt.status, appt.channel, appt.phone, appt.day) == (
        "booked",
        "hotline",
        P1,
        "2026-06-01",
    )
    assert appt.slot_end - appt.slot_start == 30 * 60
    assert await appointments.find(appt.code) == appt
    [event] = await events(store, "appointment.booked")
    assert event.payload["appointment"]["code"] == appt.code
    assert event.payload["phone"] == P1 and event.payload["slot"] == "09:00-09:30"
    assert "person_key" not in event.payload["appointment"]
    [sms] = await outbox(store, bus, hall, "appointment_booked")
    assert sms["phone"] == P1 and appt.code in sms["body"] and "2026-06-01" in sms["body"]
    assert "09:00-09:30" in sms["body"]


async def test_codes_are_unique_across_many_bookings(appointments: Appointments) -> None:
    days = appointments.bookable_days()
    jobs = []
    for i in range(240):
        day = days[i % len(days)]
        slot = appointments.slots("biz", day)[(i // len(days)) % 14]
        jobs.append(appointments.book("biz", day, slot.start, phone=phone(i)))
    booked = await asyncio.gather(*jobs)
    codes = [a.code for a in booked]
    assert len(set(codes)) == len(codes) == 240
    assert all(len(c) == 6 and c.isdigit() for c in codes)


async def test_a_code_collision_draws_again(
    appointments: Appointments, monkeypatch: pytest.MonkeyPatch
) -> None:
    draws = iter([23_456, 23_456, 23_456, 654_321])
    monkeypatch.setattr("queue_engine.appointments.secrets.randbelow", lambda n: next(draws))
    first = await appointments.book("biz", MON, start_of(MON, 9), phone=P1)
    second = await appointments.book("biz", MON, start_of(MON, 9), phone=P2)
    assert first.code == "123456" and second.code == "754321"


async def test_one_booking_per_person_per_service_per_day_by_phone(
    appointments: Appointments,
) -> None:
    await appointments.book("biz", MON, start_of(MON, 9), phone=P1)
    with pytest.raises(AlreadyBookedError):
        await appointments.book("biz", MON, start_of(MON, 15), phone=P1)
    # another service the same day, or the same service another day, is fine
    await appointments.book("pension", MON, start_of(MON, 15), phone=P1)
    await appointments.book("biz", TUE, start_of(TUE, 9), phone=P1)


async def test_one_booking_per_person_per_service_per_day_by_id_number(
    appointments: Appointments,
) -> None:
    await appointments.book("biz", MON, start_of(MON, 9), phone=P1, id_number=ID_A)
    with pytest.raises(AlreadyBookedError):  # the same person from another phone
        await appointments.book("biz", MON, start_of(MON, 10), phone=P2, id_number=ID_A.lower())
    await appointments.book("biz", MON, start_of(MON, 10), phone=P1, id_number=ID_B)
    with pytest.raises(InvalidRequestError):
        await appointments.book(
            "biz", MON, start_of(MON, 11), phone=P3, id_number="110105194912310021"
        )


async def test_the_same_person_booking_many_times_at_once_gets_one(
    appointments: Appointments,
) -> None:
    results = await asyncio.gather(
        *(appointments.book("biz", MON, start_of(MON, 9 + i % 3), phone=P1) for i in range(12)),
        return_exceptions=True,
    )
    ok = [r for r in results if not isinstance(r, Exception)]
    assert len(ok) == 1
    assert all(isinstance(r, AlreadyBookedError) for r in results if r not in ok)


async def test_a_cancelled_booking_frees_the_person_and_the_place(
    appointments: Appointments,
) -> None:
    slot = start_of(MON, 9)
    appt = await appointments.book("biz", MON, slot, phone=P1)
    await appointments.cancel(appt.code, phone=P1)
    again = await appointments.book("biz", MON, slot, phone=P1)
    assert again.code != appt.code
    [first] = [a for a in await appointments.availability("biz", MON) if a["start"] == slot]
    assert (first["booked"], first["free"]) == (1, 3)


# --- capacity -------------------------------------------------------------------------------


async def _count(store: Store, slot: float) -> int:
    rows = await store.run(
        lambda tx: tx.execute(
            "SELECT COUNT(*) FROM appointments WHERE slot_start=? AND status='booked'", (slot,)
        )
    )
    return rows[0][0]


async def test_many_citizens_booking_the_last_places_at_once_never_overbook(
    appointments: Appointments, store: Store
) -> None:
    slot = start_of(MON, 10)
    for i in range(2):
        await appointments.book("biz", MON, slot, phone=phone(i))
    results = await asyncio.gather(
        *(appointments.book("biz", MON, slot, phone=phone(100 + i)) for i in range(40)),
        return_exceptions=True,
    )
    ok = [r for r in results if not isinstance(r, Exception)]
    full = [r for r in results if isinstance(r, SlotFullError)]
    assert len(ok) == 2 and len(full) == 38
    assert await _count(store, slot) == 4
    [row] = [a for a in await appointments.availability("biz", MON) if a["start"] == slot]
    assert (row["booked"], row["free"]) == (4, 0)
    # the other slots and services are untouched
    other = await appointments.book("biz", MON, start_of(MON, 10, 30), phone=phone(999))
    assert other.status == "booked"


async def test_a_burst_on_an_empty_slot_books_exactly_its_capacity(
    store: Store, clock: FakeClock
) -> None:
    appts = other_engine(store, clock, booking=BookingPolicy(capacity=25))
    slot = start_of(TUE, 14)
    results = await asyncio.gather(
        *(appts.book("pension", TUE, slot, phone=phone(i)) for i in range(300)),
        return_exceptions=True,
    )
    ok = [r for r in results if not isinstance(r, Exception)]
    assert len(ok) == 25
    assert all(isinstance(r, SlotFullError) for r in results if r not in ok)
    assert await _count(store, slot) == 25


# --- cancellation ---------------------------------------------------------------------------


async def test_cancel_before_the_cutoff(
    appointments: Appointments, store: Store, bus: Bus, hall: HallConfig, clock: FakeClock
) -> None:
    appt = await appointments.book("biz", MON, start_of(MON, 10), phone=P1)
    clock.set(start_of(MON, 8))  # exactly two hours before: still allowed
    done = await appointments.cancel(appt.code, phone=P1)
    assert done.status == "cancelled"
    [event] = await events(store, "appointment.cancelled")
    assert event.payload["by"] == "citizen"
    [sms] = await outbox(store, bus, hall, "appointment_cancelled")
    assert sms["phone"] == P1 and appt.code in sms["body"]
    with pytest.raises(AppointmentNotFoundError):  # once
        await appointments.cancel(appt.code, phone=P1)


async def test_cancel_after_the_cutoff_is_refused(
    appointments: Appointments, clock: FakeClock
) -> None:
    appt = await appointments.book("biz", MON, start_of(MON, 10), phone=P1)
    clock.set(start_of(MON, 8, 1))
    with pytest.raises(BookingError) as err:
        await appointments.cancel(appt.code, phone=P1)
    assert not isinstance(err.value, AppointmentNotFoundError)
    assert (await appointments.find(appt.code)).status == "booked"  # type: ignore[union-attr]


async def test_cancel_with_the_wrong_phone_finds_nothing(appointments: Appointments) -> None:
    appt = await appointments.book("biz", MON, start_of(MON, 10), phone=P1)
    for wrong in (P2, None):
        with pytest.raises(AppointmentNotFoundError):
            await appointments.cancel(appt.code, phone=wrong)
    with pytest.raises(AppointmentNotFoundError):
        await appointments.cancel("000000", phone=P1)
    # an agent cancels without the phone
    done = await appointments.cancel(appt.code, by="W0101")
    assert done.status == "cancelled"


async def test_cancel_by_sms_reply(
    appointments: Appointments, engine: Engine, store: Store, clock: FakeClock
) -> None:
    mine = await appointments.book("biz", MON, start_of(MON, 10), phone=P1)
    wiring = Wiring(clock=clock, store=store, engines={"test": engine},
                    appointments={"test": appointments})  # fmt: skip
    config = SmsConfig(signature="测试政务")

    def form(sender: str, body: str, sid: str) -> dict[str, str]:
        return {"From": sender, "Body": body, "MessageSid": sid}

    reply = await _answer(config, wiring, form(P2, f"QX{mine.code}", "SM1"))
    assert "已取消" not in reply  # another phone cannot cancel it
    assert (await appointments.find(mine.code)).status == "booked"  # type: ignore[union-attr]
    reply = await _answer(config, wiring, form("13800000001", f"取消 {mine.code}", "SM2"))
    assert mine.code in reply and "已取消" in reply
    assert (await appointments.find(mine.code)).status == "cancelled"  # type: ignore[union-attr]


# --- check-in -------------------------------------------------------------------------------


async def _booked_for_monday_ten(appointments: Appointments, **kw: str) -> str:
    appt = await appointments.book("biz", MON, start_of(MON, 10), phone=kw.pop("phone", P1), **kw)
    return appt.code


async def test_check_in_too_early_is_refused(appointments: Appointments, clock: FakeClock) -> None:
    code = await _booked_for_monday_ten(appointments)
    clock.set(start_of(MON, 9, 29))
    with pytest.raises(CheckInError):
        await appointments.check_in(code=code)
    assert (await appointments.find(code)).status == "booked"  # type: ignore[union-attr]


async def test_check_in_on_time_gives_an_appointment_ticket_served_first_once_the_slot_begins(
    appointments: Appointments, engine: Engine, clock: FakeClock, store: Store
) -> None:
    code = await _booked_for_monday_ten(appointments)
    clock.set(start_of(MON, 9))
    walk_in = (await engine.take_ticket("biz", phone=P2)).ticket
    clock.set(start_of(MON, 9, 35))
    issued = await appointments.check_in(code=f" {code} ")
    t = issued.ticket
    assert t.number.startswith("Y") and t.priority == "appointment"
    assert t.appointment_at == start_of(MON, 10) and t.appointment_ref == code
    assert t.phone == P1 and t.service == "biz"
    appt = await appointments.find(code)
    assert appt is not None and appt.status == "checked_in" and appt.ticket_id == t.id
    [event] = await events(store, "appointment.checked_in")
    assert event.payload["late"] is False and event.ticket_id == t.id

    clock.set(start_of(MON, 9, 40))  # the slot has not begun: the walk-in is ahead
    assert [x.id for x in await engine.waiting("biz")] == [walk_in.id, t.id]
    clock.set(start_of(MON, 10))  # it has: the appointment goes first
    assert [x.id for x in await engine.waiting("biz")] == [t.id, walk_in.id]
    await engine.sign_in("W0001", "1")
    called = await engine.call_next("W0001")
    assert called is not None and called.id == t.id


async def test_check_in_after_the_grace_period_gives_a_normal_ticket(
    appointments: Appointments, clock: FakeClock, store: Store
) -> None:
    code = await _booked_for_monday_ten(appointments)
    clock.set(start_of(MON, 10, 15) + 1)
    t = (await appointments.check_in(code=code)).ticket
    assert t.number.startswith("A") and t.priority == "normal" and t.appointment_at is None
    appt = await appointments.find(code)
    assert appt is not None and appt.status == "late" and appt.ticket_id == t.id
    [event] = await events(store, "appointment.checked_in")
    assert event.payload["late"] is True


async def test_check_in_at_the_end_of_the_grace_period_is_still_on_time(
    appointments: Appointments, clock: FakeClock
) -> None:
    code = await _booked_for_monday_ten(appointments)
    clock.set(start_of(MON, 10, 15))
    assert (await appointments.check_in(code=code)).ticket.priority == "appointment"


async def test_a_second_check_in_finds_nothing(
    appointments: Appointments, clock: FakeClock
) -> None:
    code = await _booked_for_monday_ten(appointments)
    clock.set(start_of(MON, 9, 50))
    await appointments.check_in(code=code)
    with pytest.raises(AppointmentNotFoundError):
        await appointments.check_in(code=code)


async def test_check_in_only_on_the_booked_day(
    appointments: Appointments, clock: FakeClock
) -> None:
    appt = await appointments.book("biz", TUE, start_of(TUE, 10), phone=P1)
    clock.set(start_of(MON, 9, 50))
    with pytest.raises(AppointmentNotFoundError):
        await appointments.check_in(code=appt.code)
    with pytest.raises(InvalidRequestError):
        await appointments.check_in()


async def test_check_in_by_id_number_stores_only_its_keyed_hash(
    appointments: Appointments, clock: FakeClock, store: Store
) -> None:
    await _booked_for_monday_ten(appointments, phone=P2, id_number=ID_A)
    clock.set(start_of(MON, 9, 45))
    with pytest.raises(AppointmentNotFoundError):  # a valid number with no booking
        await appointments.check_in(id_number=ID_B)
    with pytest.raises(InvalidRequestError):  # a wrong check digit
        await appointments.check_in(id_number="110105194912310021")
    t = (await appointments.check_in(id_number=ID_A.lower())).ticket
    assert t.priority == "appointment" and t.phone == P2
    dump = await store.run(lambda tx: tx.execute("SELECT * FROM appointments"))
    log = await events(store)
    text = repr(dump) + repr([e.payload for e in log])
    assert ID_A not in text and ID_A.lower() not in text and "19491231" not in text


async def test_a_phone_booking_cannot_be_checked_in_by_id(
    appointments: Appointments, clock: FakeClock
) -> None:
    await _booked_for_monday_ten(appointments)
    clock.set(start_of(MON, 9, 45))
    with pytest.raises(AppointmentNotFoundError):
        await appointments.check_in(id_number=ID_A)


async def test_check_in_on_a_worked_saturday(appointments: Appointments, clock: FakeClock) -> None:
    sat = date(2026, 10, 10)
    clock.set(at(2026, 9, 29, 10))
    appt = await appointments.book("biz", sat, start_of(sat, 14), phone=P1)
    clock.set(start_of(sat, 13, 50))
    t = (await appointments.check_in(code=appt.code)).ticket
    assert t.priority == "appointment"


async def test_the_hall_is_closed_on_a_public_holiday(engine: Engine, clock: FakeClock) -> None:
    clock.set(at(2026, 10, 1, 10))
    assert not engine.is_open(clock.now())


# --- no-shows and suspension -------------------------------------------------------------


async def test_a_booking_not_checked_in_after_its_slot_and_grace_is_a_no_show(
    appointments: Appointments, clock: FakeClock, store: Store, bus: Bus, hall: HallConfig
) -> None:
    code = await _booked_for_monday_ten(appointments)
    kept = await appointments.book("pension", MON, start_of(MON, 10), phone=P2)
    clock.set(start_of(MON, 10))
    await appointments.check_in(code=kept.code)
    clock.set(start_of(MON, 10, 45))  # slot end + grace: not yet
    assert await appointments.tick() == 0
    clock.advance(60)
    assert await appointments.tick() == 1
    assert (await appointments.find(code)).status == "no_show"  # type: ignore[union-attr]
    assert (await appointments.find(kept.code)).status == "checked_in"  # type: ignore[union-attr]
    [event] = await events(store, "appointment.no_show")
    assert event.payload["appointment"]["code"] == code
    assert await appointments.tick() == 0  # recorded once
    [sms] = await outbox(store, bus, hall, "appointment_no_show")
    assert sms["phone"] == P1 and code in sms["body"]
    with pytest.raises(AppointmentNotFoundError):
        await appointments.check_in(code=code)


async def test_repeated_no_shows_suspend_booking_until_the_date(
    appointments: Appointments, clock: FakeClock, store: Store, bus: Bus, hall: HallConfig
) -> None:
    days = [MON, TUE, WED]
    for day in days:
        await appointments.book("biz", day, start_of(day, 10), phone=P1)
    for i, day in enumerate(days):
        clock.set(start_of(day, 11))
        assert await appointments.tick() == 1
        suspended = await events(store, "booking.suspended")
        assert len(suspended) == (1 if i == 2 else 0)
    [event] = await events(store, "booking.suspended")
    assert event.payload["until"] == "2026-07-03" and event.payload["no_shows"] == 3
    thu = date(2026, 6, 4)
    with pytest.raises(BookingSuspendedError) as err:
        await appointments.book("medical", thu, start_of(thu, 10), phone=P1)
    assert err.value.details["until"] == "2026-07-03"
    await appointments.book("medical", thu, start_of(thu, 10), phone=P2)  # others can
    [sms] = await outbox(store, bus, hall, "booking_suspended")
    assert sms["phone"] == P1 and "2026-07-03" in sms["body"]

    clock.set(at(2026, 7, 3, 10))  # the last day of the suspension
    with pytest.raises(BookingSuspendedError):
        await appointments.book("biz", date(2026, 7, 6), start_of(date(2026, 7, 6), 10), phone=P1)
    clock.set(at(2026, 7, 4, 10))
    back = await appointments.book(
        "biz", date(2026, 7, 6), start_of(date(2026, 7, 6), 10), phone=P1
    )
    assert back.status == "booked"


async def test_two_no_shows_do_not_suspend(
    appointments: Appointments, clock: FakeClock, store: Store
) -> None:
    for day in (MON, TUE):
        await appointments.book("biz", day, start_of(day, 10), phone=P1)
    clock.set(start_of(TUE, 12))
    assert await appointments.tick() == 2
    assert await events(store, "booking.suspended") == []
    thu = date(2026, 6, 4)
    await appointments.book("biz", thu, start_of(thu, 10), phone=P1)


# --- reminders --------------------------------------------------------------------------------


async def test_a_reminder_goes_out_once_at_the_reminder_hour_the_working_day_before(
    appointments: Appointments, clock: FakeClock, store: Store, bus: Bus, hall: HallConfig
) -> None:
    monday = await appointments.book("biz", MON, start_of(MON, 10), phone=P1)
    tuesday = await appointments.book("biz", TUE, start_of(TUE, 9, 30), phone=P2)
    clock.set(at(2026, 5, 29, 17, 59))  # Friday, before 18:00
    assert await appointments.tick() == 0
    clock.set(at(2026, 5, 29, 18))
    assert await appointments.tick() == 1
    [event] = await events(store, "appointment.reminder")
    assert event.payload["appointment"]["code"] == monday.code and event.payload["slot"] == "10:00"
    clock.set(at(2026, 5, 29, 20))
    assert await appointments.tick() == 0  # once
    clock.set(at(2026, 5, 30, 18))  # Saturday: tomorrow's working day is still Monday
    assert await appointments.tick() == 0
    clock.set(at(2026, 6, 1, 18))
    assert await appointments.tick() == 2  # Monday's no-show and Tuesday's reminder
    reminded = {
        e.payload["appointment"]["code"] for e in await events(store, "appointment.reminder")
    }
    assert reminded == {monday.code, tuesday.code}
    rows = await outbox(store, bus, hall, "appointment_reminder")
    assert sorted(r["phone"] for r in rows) == [P1, P2]
    assert any(monday.code in r["body"] and "10:00" in r["body"] for r in rows)


async def test_a_cancelled_booking_gets_no_reminder(
    appointments: Appointments, clock: FakeClock
) -> None:
    appt = await appointments.book("biz", MON, start_of(MON, 10), phone=P1)
    await appointments.cancel(appt.code, phone=P1)
    clock.set(at(2026, 5, 29, 18))
    assert await appointments.tick() == 0


async def test_a_friday_reminder_for_monday_does_not_say_tomorrow(
    appointments: Appointments, clock: FakeClock, store: Store, bus: Bus, hall: HallConfig
) -> None:
    await appointments.book("biz", MON, start_of(MON, 10), phone=P1)
    clock.set(at(2026, 5, 29, 18))
    assert await appointments.tick() == 1
    [sms] = await outbox(store, bus, hall, "appointment_reminder")
    assert "明天" not in sms["body"] and "tomorrow" not in sms["body"]
