"""queue_engine.Engine end to end on a real store: every command, its event, every error path."""

from __future__ import annotations

import dataclasses
from datetime import time
from typing import Any

import pytest

from queue_engine import Engine, FakeClock, Store
from queue_engine.engine import NEXT_GUARD_S as ENGINE_NEXT_GUARD_S
from queue_engine.errors import (
    AlreadySignedInError,
    DailyLimitReachedError,
    HallClosedError,
    HeldTicketsError,
    IllegalTransitionError,
    InvalidRequestError,
    JustCalledError,
    NoTicketError,
    NotSignedInError,
    NotYourTicketError,
    SkillMissingError,
    TicketChangedError,
    TicketNotFoundError,
    UnknownPriorityError,
    UnknownServiceError,
    UnknownWindowError,
    UnknownWorkstationError,
    WindowTakenError,
    WorkstationStateError,
    WrongSeatKindError,
)
from queue_engine.model import (
    Channel,
    Event,
    HallConfig,
    Policy,
    SeatKind,
    Session,
    Ticket,
    TicketState,
    TransferPosition,
    WaitEstimate,
    Workstation,
    WorkstationState,
)
from tests.conftest import make_hall

T = TicketState
W = WorkstationState
T0 = 1_780_020_000.0  # the clock fixture: Friday 2026-05-29 10:00 in Shanghai
TO_MIDNIGHT = 14 * 3600


async def log(store: Store) -> list[Event]:
    return await store.run(lambda tx: tx.events_after(0, 1000))


async def last(store: Store, n: int = 1) -> list[Event]:
    return (await log(store))[-n:]


def expect(
    ev: Event,
    kind: str,
    *,
    ticket: Ticket | None = None,
    ws: Workstation | None = None,
    vn: str | None = None,
    window: str | None = None,
    **extra: Any,
) -> None:
    """The event has this type, header and exactly this payload."""
    assert ev.type == kind
    assert ev.hall == "test"
    assert ev.ticket_id == (ticket.id if ticket else None)
    assert (ev.virtual_number, ev.window) == (vn, window)
    payload = dict(extra)
    if ticket is not None:
        payload["ticket"] = ticket.to_dict()
    if ws is not None:
        payload["workstation"] = ws.to_dict()
    assert dict(ev.payload) == payload


async def with_hall(store: Store, clock: FakeClock, hall: HallConfig) -> Engine:
    e = Engine(store, hall, clock)
    await e.load_hall()
    return e


async def serving(engine: Engine, vn: str = "W0001", window: str = "1") -> Ticket:
    """Sign ``vn`` in, issue a biz ticket, call and start it."""
    await engine.sign_in(vn, window)
    await engine.take_ticket("biz")
    await engine.call_next(vn)
    return await engine.start_service(vn)


# --- take_ticket ------------------------------------------------------------------------


async def test_take_ticket_issues_a_waiting_ticket_and_its_event(
    engine: Engine, store: Store
) -> None:
    issued = await engine.take_ticket("biz", phone="13800000000", note="n")
    t = issued.ticket
    assert (t.number, t.service, t.day, t.channel, t.priority) == (
        "A001", "biz", "2026-05-29", Channel.HALL, "normal"
    )  # fmt: skip
    assert (t.state, t.arrived_at, t.queued_at, t.updated_at) == (T.WAITING, T0, T0, T0)
    assert (t.phone, t.note, t.workstation, t.hall) == ("13800000000", "n", None, "test")
    assert len(t.token) >= 16
    assert await engine.ticket(t.id) == t
    assert await engine.ticket_by_token(t.token) == t
    [ev] = await log(store)
    expect(ev, "ticket.issued", ticket=t, ahead=0, wait_min=0.0)
    assert ev.at == T0


async def test_numbers_count_up_per_prefix(engine: Engine) -> None:
    numbers = [
        (await engine.take_ticket(s)).ticket.number for s in ("biz", "biz", "pension", "biz")
    ]
    assert numbers == ["A001", "A002", "B001", "A003"]


async def test_priority_classes_carry_their_own_prefix(engine: Engine) -> None:
    green = await engine.take_ticket("biz", priority="green")
    appt = await engine.take_ticket("pension", priority="appointment", appointment_at=T0)
    normal = await engine.take_ticket("biz")
    assert [green.ticket.number, appt.ticket.number, normal.ticket.number] == [
        "G001",
        "Y001",
        "A001",
    ]
    assert (appt.ticket.priority, appt.ticket.appointment_at) == ("appointment", T0)


async def test_phone_service_defaults_to_the_phone_channel(engine: Engine) -> None:
    call = (await engine.take_ticket("consult")).ticket
    cb = (await engine.take_ticket("consult", channel="callback")).ticket
    assert (call.number, call.channel, cb.number, cb.channel) == (
        "H001", Channel.PHONE, "H002", Channel.CALLBACK
    )  # fmt: skip


async def test_numbers_reset_at_local_midnight_in_shanghai(
    engine: Engine, clock: FakeClock
) -> None:
    assert (await engine.take_ticket("biz")).ticket.number == "A001"
    clock.advance(TO_MIDNIGHT - 1)  # 23:59:59 local, long after UTC midnight would have been
    late = (await engine.take_ticket("biz")).ticket
    assert (late.number, late.day) == ("A002", "2026-05-29")
    clock.advance(1)
    first = (await engine.take_ticket("biz")).ticket
    assert (first.number, first.day) == ("A001", "2026-05-30")


def limited_hall(limit: int) -> HallConfig:
    hall = make_hall()
    services = tuple(
        dataclasses.replace(s, daily_limit=limit) if s.code == "biz" else s for s in hall.services
    )
    return dataclasses.replace(hall, services=services)


async def test_daily_limit_refuses_the_next_ticket(store: Store, clock: FakeClock) -> None:
    engine = await with_hall(store, clock, limited_hall(2))
    await engine.take_ticket("biz")
    await engine.take_ticket("biz")
    with pytest.raises(DailyLimitReachedError) as exc:
        await engine.take_ticket("biz")
    assert exc.value.code == "daily_limit_reached"
    assert exc.value.message_en == "Service 'biz' has issued its 2 tickets for today."
    assert [e.type for e in await log(store)] == ["ticket.issued", "ticket.issued"]
    assert (await engine.take_ticket("pension")).ticket.number == "B001"
    clock.advance(TO_MIDNIGHT)
    assert (await engine.take_ticket("biz")).ticket.number == "A001"


async def test_daily_limit_counts_every_ticket_of_the_service(
    store: Store, clock: FakeClock
) -> None:
    engine = await with_hall(store, clock, limited_hall(2))
    await engine.take_ticket("biz")
    await engine.take_ticket("biz")
    with pytest.raises(DailyLimitReachedError):
        await engine.take_ticket("biz", priority="green")


async def test_unknown_service_is_refused(engine: Engine, store: Store) -> None:
    with pytest.raises(UnknownServiceError) as exc:
        await engine.take_ticket("nope")
    assert (exc.value.code, exc.value.message_zh) == ("unknown_service", "本大厅没有事项“nope”")
    assert await log(store) == []


async def test_unknown_priority_is_refused(engine: Engine) -> None:
    with pytest.raises(UnknownPriorityError) as exc:
        await engine.take_ticket("biz", priority="vip")
    assert exc.value.message_en == "There is no priority class 'vip' in this hall."


@pytest.mark.parametrize(("service", "channel"), [("biz", "phone"), ("consult", "hall")])
async def test_service_on_the_wrong_channel_is_invalid(
    engine: Engine, store: Store, service: str, channel: str
) -> None:
    with pytest.raises(InvalidRequestError) as exc:
        await engine.take_ticket(service, channel=channel)
    assert exc.value.code == "invalid_request"
    assert "{" not in exc.value.message_en and "{" not in exc.value.message_zh
    assert await log(store) == []


# --- wait estimate on issue -----------------------------------------------------------------


async def test_estimate_counts_ahead_and_skilled_staff_at_windows(
    engine: Engine, store: Store
) -> None:
    await engine.sign_in("W0001", "1")  # biz, window: counts
    await engine.sign_in("W0004", "H01")  # biz, but at a hotline seat: does not count
    await engine.sign_in("W0003", "3")  # window, but no biz skill: does not count
    await engine.take_ticket("biz")
    await engine.take_ticket("pension")
    await engine.take_ticket("biz")
    issued = await engine.take_ticket("biz")
    assert issued.estimate == WaitEstimate(ahead=2, minutes=30.0, staffed=1)  # 2 × 15 min default
    expect((await last(store))[0], "ticket.issued", ticket=issued.ticket, ahead=2, wait_min=30.0)


async def test_estimate_divides_by_every_staffed_window(engine: Engine) -> None:
    await engine.sign_in("W0001", "1")
    await engine.sign_in("W0004", "2")
    for _ in range(4):
        await engine.take_ticket("biz")
    issued = await engine.take_ticket("biz")
    assert issued.estimate == WaitEstimate(ahead=4, minutes=30.0, staffed=2)


async def test_estimate_with_nobody_signed_in(engine: Engine) -> None:
    await engine.take_ticket("medical")
    issued = await engine.take_ticket("medical")
    assert issued.estimate == WaitEstimate(ahead=1, minutes=8.0, staffed=0)


async def test_estimate_uses_recent_handle_times(engine: Engine, clock: FakeClock) -> None:
    await engine.sign_in("W0001", "1")
    for minutes in (6, 10):
        await engine.take_ticket("biz")
        await engine.call_next("W0001")
        await engine.start_service("W0001")
        clock.advance(minutes * 60)
        await engine.complete("W0001")
    await engine.take_ticket("biz")
    issued = await engine.take_ticket("biz")
    assert issued.estimate == WaitEstimate(ahead=1, minutes=8.0, staffed=1)


async def test_wait_estimate_of_a_waiting_ticket_and_none_once_called(engine: Engine) -> None:
    await engine.sign_in("W0001", "1")
    await engine.take_ticket("biz")
    second = (await engine.take_ticket("biz")).ticket
    assert await engine.wait_estimate(second.id) == WaitEstimate(1, 15.0, 1)
    await engine.call_next("W0001")
    assert await engine.wait_estimate(second.id) == WaitEstimate(0, 0.0, 1)
    await engine.mark_no_show("W0001")
    await engine.call_next("W0001")
    assert await engine.wait_estimate(second.id) is None


# --- sign in / out, pause ---------------------------------------------------------------------


async def test_sign_in_makes_the_workstation_available(engine: Engine, store: Store) -> None:
    w = await engine.sign_in("W0001", "3")
    assert w == Workstation("W0001", "test", W.AVAILABLE, T0, "3", SeatKind.WINDOW)
    assert await engine.workstation("W0001") == w
    [ev] = await log(store)
    expect(ev, "workstation.signed_in", ws=w, vn="W0001", window="3")


async def test_sign_in_at_an_unknown_window(engine: Engine) -> None:
    with pytest.raises(UnknownWindowError) as exc:
        await engine.sign_in("W0001", "99")
    assert exc.value.message_zh == "本大厅没有99号窗口或坐席"


async def test_sign_in_with_an_unknown_work_number(engine: Engine) -> None:
    with pytest.raises(UnknownWorkstationError) as exc:
        await engine.sign_in("W9999", "1")
    assert exc.value.code == "unknown_workstation"


async def test_sign_in_at_a_taken_window(engine: Engine, store: Store) -> None:
    await engine.sign_in("W0001", "1")
    with pytest.raises(WindowTakenError) as exc:
        await engine.sign_in("W0002", "1")
    assert exc.value.message_en == "Window 1 is already taken by work number W0001."
    assert (await engine.workstation("W0002")).state == W.OFFLINE
    assert len(await log(store)) == 1


async def test_sign_in_twice(engine: Engine) -> None:
    await engine.sign_in("W0001", "1")
    with pytest.raises(AlreadySignedInError) as exc:
        await engine.sign_in("W0001", "2")
    assert exc.value.message_en == "Work number W0001 is already signed in at window 1."


async def test_sign_out_frees_the_window(engine: Engine, store: Store) -> None:
    await engine.sign_in("W0001", "1")
    w = await engine.sign_out("W0001")
    assert w == Workstation("W0001", "test", W.OFFLINE, T0)
    expect((await last(store))[0], "workstation.signed_out", ws=w, vn="W0001")
    assert (await engine.sign_in("W0002", "1")).window == "1"


async def test_sign_out_with_a_ticket_in_hand_fails(engine: Engine) -> None:
    await engine.sign_in("W0001", "1")
    await engine.take_ticket("biz")
    await engine.call_next("W0001")
    with pytest.raises(WorkstationStateError) as exc:
        await engine.sign_out("W0001")
    assert exc.value.message_en == "Work number W0001 is calling; it cannot sign out."
    assert (await engine.workstation("W0001")).state == W.CALLING


async def test_sign_out_when_not_signed_in(engine: Engine) -> None:
    with pytest.raises(NotSignedInError):
        await engine.sign_out("W0001")


@pytest.mark.parametrize("reason", ["", "   "])
async def test_pause_needs_a_reason(engine: Engine, store: Store, reason: str) -> None:
    await engine.sign_in("W0001", "1")
    with pytest.raises(InvalidRequestError) as exc:
        await engine.pause("W0001", reason)
    assert exc.value.message_zh == "请求无效：暂停需要填写原因"
    assert len(await log(store)) == 1


async def test_pause_and_resume_work(engine: Engine, store: Store, clock: FakeClock) -> None:
    await engine.sign_in("W0001", "1")
    clock.advance(5)
    paused = await engine.pause("W0001", " break ")
    assert (paused.state, paused.pause_reason, paused.since) == (W.PAUSED, "break", T0 + 5)
    expect((await last(store))[0], "workstation.paused", ws=paused, vn="W0001", window="1",
           reason="break")  # fmt: skip
    back = await engine.resume_work("W0001")
    assert (back.state, back.pause_reason) == (W.AVAILABLE, None)
    expect((await last(store))[0], "workstation.resumed", ws=back, vn="W0001", window="1")


async def test_call_next_while_paused_fails(engine: Engine) -> None:
    await engine.sign_in("W0001", "1")
    await engine.take_ticket("biz")
    await engine.pause("W0001", "meeting")
    with pytest.raises(WorkstationStateError) as exc:
        await engine.call_next("W0001")
    assert exc.value.message_en == "Work number W0001 is paused; it cannot call next."
    assert [t.state for t in await engine.waiting()] == [T.WAITING]


async def test_resume_work_when_not_paused_fails(engine: Engine) -> None:
    await engine.sign_in("W0001", "1")
    with pytest.raises(WorkstationStateError):
        await engine.resume_work("W0001")


# --- call next, recall, start, complete, no-show --------------------------------------------------


async def test_call_next_calls_the_waiting_ticket(
    engine: Engine, store: Store, clock: FakeClock
) -> None:
    await engine.sign_in("W0001", "2")
    issued = (await engine.take_ticket("biz")).ticket
    clock.advance(30)
    t = await engine.call_next("W0001")
    assert t == dataclasses.replace(
        issued,
        state=T.CALLED,
        workstation="W0001",
        window="2",
        called_at=T0 + 30,
        updated_at=T0 + 30,
    )
    w = await engine.workstation("W0001")
    assert (w.state, w.ticket_id, w.since) == (W.CALLING, t.id, T0 + 30)
    expect(
        (await last(store))[0], "ticket.called", ticket=t, ws=w, vn="W0001", window="2", recall=0
    )


async def test_call_next_with_a_ticket_in_hand_needs_complete_first(engine: Engine) -> None:
    await serving(engine)
    await engine.take_ticket("biz")
    with pytest.raises(WorkstationStateError):
        await engine.call_next("W0001")


@pytest.mark.parametrize("started", [True, False])
async def test_next_completes_finishes_the_ticket_in_hand_then_calls(
    store: Store, clock: FakeClock, started: bool
) -> None:
    engine = await with_hall(store, clock, make_hall(Policy(next_completes=True, wrap_up_s=60)))
    await engine.sign_in("W0001", "1")
    first = (await engine.take_ticket("biz")).ticket
    second = (await engine.take_ticket("biz")).ticket
    await engine.call_next("W0001")
    clock.advance(30)
    if started:
        await engine.start_service("W0001")
    clock.advance(240)
    called = await engine.call_next("W0001")
    assert called is not None and called.id == second.id and called.state == T.CALLED
    done_ev, call_ev = await last(store, 2)
    done = await engine.ticket(first.id)
    assert done.state == T.DONE and done.ended_at == clock.now()
    assert done.started_at == T0 + (30 if started else 0)  # from its start, else its call
    freed = dataclasses.replace(
        await engine.workstation("W0001"), state=W.AVAILABLE, ticket_id=None, since=clock.now(),
        wrap_up_until=None,
    )  # fmt: skip
    expect(done_ev, "ticket.completed", ticket=done, ws=freed, vn="W0001", window="1", by_next=True)
    assert call_ev.type == "ticket.called" and call_ev.ticket_id == second.id


async def pad_hall(store: Store, clock: FakeClock) -> tuple[Engine, list[Ticket]]:
    """A 下一位 hall with W0001 at window 1 holding the first of three waiting biz tickets."""
    engine = await with_hall(store, clock, make_hall(Policy(next_completes=True)))
    await engine.sign_in("W0001", "1")
    tickets = [(await engine.take_ticket("biz")).ticket for _ in range(3)]
    await engine.call_next("W0001")
    return engine, tickets


async def test_next_does_not_finish_a_ticket_just_called_by_a_double_press(
    store: Store, clock: FakeClock
) -> None:
    engine, (first, *_) = await pad_hall(store, clock)
    before = await log(store)
    clock.advance(ENGINE_NEXT_GUARD_S - 0.5)
    with pytest.raises(JustCalledError) as exc:
        await engine.call_next("W0001")
    assert exc.value.message_zh.startswith(f"{first.number}号")
    assert await log(store) == before and (await engine.ticket(first.id)).state == T.CALLED
    clock.advance(0.5)  # long enough: the citizen has had time to sit down
    assert (await engine.call_next("W0001")) is not None
    assert (await engine.ticket(first.id)).state == T.DONE


async def test_next_finishes_a_serving_ticket_at_once(store: Store, clock: FakeClock) -> None:
    engine, (first, second, _) = await pad_hall(store, clock)
    await engine.start_service("W0001")
    called = await engine.call_next("W0001")
    assert called is not None and called.id == second.id
    assert (await engine.ticket(first.id)).state == T.DONE


async def test_next_naming_the_ticket_in_hand_finishes_it_at_once(
    store: Store, clock: FakeClock
) -> None:
    engine, (first, second, third) = await pad_hall(store, clock)
    called = await engine.call_next("W0001", finish=first.id)
    assert called is not None and called.id == second.id
    assert (await engine.ticket(first.id)).state == T.DONE
    before = await log(store)
    with pytest.raises(TicketChangedError):  # the same press again: it named the old ticket
        await engine.call_next("W0001", finish=first.id)
    assert await log(store) == before
    assert (await engine.ticket(second.id)).state == T.CALLED
    assert (await engine.ticket(third.id)).state == T.WAITING


async def test_next_naming_a_ticket_with_none_in_hand_does_nothing(
    store: Store, clock: FakeClock
) -> None:
    engine, (first, *_) = await pad_hall(store, clock)
    await engine.mark_no_show("W0001")
    before = await log(store)
    with pytest.raises(TicketChangedError):
        await engine.call_next("W0001", finish=first.id)
    assert await log(store) == before


async def test_naming_a_ticket_to_finish_needs_the_policy(engine: Engine) -> None:
    t = await serving(engine)
    with pytest.raises(InvalidRequestError):
        await engine.call_next("W0001", finish=t.id)
    assert (await engine.ticket(t.id)).state == T.SERVING


async def test_next_completes_with_nobody_waiting_frees_the_window(
    store: Store, clock: FakeClock
) -> None:
    engine = await with_hall(store, clock, make_hall(Policy(next_completes=True)))
    t = await serving(engine)
    assert await engine.call_next("W0001") is None
    assert (await engine.ticket(t.id)).state == T.DONE
    w = await engine.workstation("W0001")
    assert (w.state, w.ticket_id) == (W.AVAILABLE, None)
    assert [e.type for e in await last(store, 1)] == ["ticket.completed"]


async def test_next_completes_leaves_held_tickets_and_pauses_alone(
    store: Store, clock: FakeClock
) -> None:
    engine = await with_hall(store, clock, make_hall(Policy(next_completes=True)))
    held = await serving(engine)
    await engine.hold("W0001")
    assert await engine.call_next("W0001") is None  # nothing in hand, nobody waiting
    assert (await engine.ticket(held.id)).state == T.HELD
    await engine.pause("W0001", "break")
    with pytest.raises(WorkstationStateError):
        await engine.call_next("W0001")


async def test_call_next_at_a_hotline_seat_is_the_wrong_seat_kind(engine: Engine) -> None:
    await engine.sign_in("W0101", "H01")
    await engine.take_ticket("consult")
    with pytest.raises(WrongSeatKindError) as exc:
        await engine.call_next("W0101")
    assert exc.value.code == "wrong_seat_kind"
    assert (
        exc.value.message_en == "Work number W0101 is signed in at a hotline; it cannot call next."
    )
    assert exc.value.message_zh == "工号W0101所在为热线坐席，不能叫号"


async def test_call_next_with_nothing_waiting_returns_none_and_writes_nothing(
    engine: Engine, store: Store
) -> None:
    await engine.sign_in("W0003", "3")
    await engine.take_ticket("biz")  # W0003 has no biz skill
    before = await log(store)
    assert await engine.call_next("W0003") is None
    assert await log(store) == before
    assert (await engine.workstation("W0003")).state == W.AVAILABLE


async def test_call_next_when_not_signed_in(engine: Engine) -> None:
    with pytest.raises(NotSignedInError):
        await engine.call_next("W0001")


async def test_call_next_by_an_unknown_work_number(engine: Engine) -> None:
    with pytest.raises(UnknownWorkstationError):
        await engine.call_next("W9999")


async def test_call_next_while_calling_fails(engine: Engine) -> None:
    await engine.sign_in("W0001", "1")
    await engine.take_ticket("biz")
    await engine.take_ticket("biz")
    await engine.call_next("W0001")
    with pytest.raises(WorkstationStateError):
        await engine.call_next("W0001")


async def test_call_next_at_a_window_never_calls_a_phone_ticket(engine: Engine) -> None:
    await engine.sign_in("W0101", "1")  # a hotline agent sitting at a hall window
    await engine.take_ticket("consult")
    assert await engine.call_next("W0101") is None


async def test_recall_counts_then_becomes_an_automatic_no_show(
    engine: Engine, store: Store, clock: FakeClock
) -> None:
    await engine.sign_in("W0001", "1")
    await engine.take_ticket("biz")
    await engine.call_next("W0001")
    for n in (1, 2):  # Policy().recalls_before_no_show == 2
        clock.advance(10)
        t = await engine.recall("W0001")
        assert (t.state, t.recalls, t.called_at) == (T.CALLED, n, T0 + 10 * n)
        w = await engine.workstation("W0001")
        expect((await last(store))[0], "ticket.recalled", ticket=t, ws=w, vn="W0001", window="1",
               recall=n)  # fmt: skip
    t = await engine.recall("W0001")
    assert (t.state, t.ended_at) == (T.NO_SHOW, T0 + 20)
    w = await engine.workstation("W0001")
    assert (w.state, w.ticket_id) == (W.AVAILABLE, None)
    expect((await last(store))[0], "ticket.no_show", ticket=t, ws=w, vn="W0001", window="1",
           automatic=True)  # fmt: skip


async def test_recall_follows_the_policy(store: Store, clock: FakeClock) -> None:
    engine = await with_hall(store, clock, make_hall(Policy(recalls_before_no_show=0)))
    await engine.sign_in("W0001", "1")
    await engine.take_ticket("biz")
    await engine.call_next("W0001")
    assert (await engine.recall("W0001")).state == T.NO_SHOW


async def test_recall_with_no_ticket(engine: Engine) -> None:
    await engine.sign_in("W0001", "1")
    with pytest.raises(NoTicketError) as exc:
        await engine.recall("W0001")
    assert exc.value.message_en == "Work number W0001 holds no ticket."


async def test_start_and_complete(engine: Engine, store: Store, clock: FakeClock) -> None:
    await engine.sign_in("W0001", "1")
    await engine.take_ticket("biz")
    await engine.call_next("W0001")
    clock.advance(20)
    started = await engine.start_service("W0001")
    assert (started.state, started.started_at) == (T.SERVING, T0 + 20)
    w = await engine.workstation("W0001")
    assert (w.state, w.ticket_id) == (W.SERVING, started.id)
    expect((await last(store))[0], "ticket.started", ticket=started, ws=w, vn="W0001", window="1")
    clock.advance(300)
    done = await engine.complete("W0001")
    assert (done.state, done.ended_at) == (T.DONE, T0 + 320)
    w = await engine.workstation("W0001")
    assert (w.state, w.ticket_id, w.wrap_up_until) == (W.AVAILABLE, None, None)
    expect((await last(store))[0], "ticket.completed", ticket=done, ws=w, vn="W0001", window="1")


async def test_start_twice_is_illegal(engine: Engine) -> None:
    await serving(engine)
    with pytest.raises(IllegalTransitionError) as exc:
        await engine.start_service("W0001")
    assert exc.value.message_en == "Ticket A001 is serving; it cannot be started."


async def test_complete_a_called_ticket_is_illegal(engine: Engine) -> None:
    await engine.sign_in("W0001", "1")
    await engine.take_ticket("biz")
    await engine.call_next("W0001")
    with pytest.raises(IllegalTransitionError):
        await engine.complete("W0001")


async def test_complete_with_no_ticket(engine: Engine) -> None:
    await engine.sign_in("W0001", "1")
    with pytest.raises(NoTicketError):
        await engine.complete("W0001")


async def test_mark_no_show(engine: Engine, store: Store) -> None:
    await engine.sign_in("W0001", "1")
    await engine.take_ticket("biz")
    await engine.call_next("W0001")
    t = await engine.mark_no_show("W0001")
    assert (t.state, t.ended_at) == (T.NO_SHOW, T0)
    w = await engine.workstation("W0001")
    assert w.state == W.AVAILABLE
    expect((await last(store))[0], "ticket.no_show", ticket=t, ws=w, vn="W0001", window="1")


async def test_mark_no_show_while_serving_is_illegal(engine: Engine) -> None:
    await serving(engine)
    with pytest.raises(IllegalTransitionError):
        await engine.mark_no_show("W0001")


async def test_wrap_up_after_complete_then_tick_makes_available(
    store: Store, clock: FakeClock
) -> None:
    engine = await with_hall(store, clock, make_hall(Policy(wrap_up_s=60)))
    await serving(engine)
    clock.advance(100)
    await engine.complete("W0001")
    w = await engine.workstation("W0001")
    assert (w.state, w.wrap_up_until, w.ticket_id) == (W.WRAP_UP, T0 + 160, None)
    clock.advance(59)
    assert await engine.tick() == []
    clock.advance(1)
    [ev] = await engine.tick()
    w = await engine.workstation("W0001")
    assert (w.state, w.wrap_up_until, w.since) == (W.AVAILABLE, None, T0 + 160)
    expect(ev, "workstation.resumed", ws=w, vn="W0001", window="1", automatic=True)
    assert (await last(store))[0] == ev


async def test_call_next_is_allowed_during_wrap_up(store: Store, clock: FakeClock) -> None:
    engine = await with_hall(store, clock, make_hall(Policy(wrap_up_s=60)))
    await serving(engine)
    await engine.take_ticket("biz")
    await engine.complete("W0001")
    t = await engine.call_next("W0001")
    assert (t.number, t.state) == ("A002", T.CALLED)
    w = await engine.workstation("W0001")
    assert (w.state, w.wrap_up_until) == (W.CALLING, None)
    clock.advance(60)
    assert await engine.tick() == []


async def test_resume_work_ends_wrap_up_early(store: Store, clock: FakeClock) -> None:
    engine = await with_hall(store, clock, make_hall(Policy(wrap_up_s=60)))
    await serving(engine)
    await engine.complete("W0001")
    w = await engine.resume_work("W0001")
    assert (w.state, w.wrap_up_until) == (W.AVAILABLE, None)


async def test_call_timeout_makes_an_automatic_no_show(store: Store, clock: FakeClock) -> None:
    engine = await with_hall(store, clock, make_hall(Policy(call_timeout_s=120)))
    await engine.sign_in("W0001", "1")
    await engine.take_ticket("biz")
    await engine.call_next("W0001")
    clock.advance(119)
    assert await engine.tick() == []
    clock.advance(1)
    [ev] = await engine.tick()
    t = await engine.ticket(ev.ticket_id)
    w = await engine.workstation("W0001")
    assert (t.state, w.state) == (T.NO_SHOW, W.AVAILABLE)
    expect(ev, "ticket.no_show", ticket=t, ws=w, vn="W0001", window="1", automatic=True)


# --- call a chosen ticket -------------------------------------------------------------------------


async def test_call_ticket_calls_out_of_order(engine: Engine, store: Store) -> None:
    await engine.sign_in("W0001", "1")
    await engine.take_ticket("biz")
    later = (await engine.take_ticket("biz")).ticket
    t = await engine.call_ticket("W0001", later.id)
    assert (t.number, t.state, t.workstation, t.window) == ("A002", T.CALLED, "W0001", "1")
    w = await engine.workstation("W0001")
    expect((await last(store))[0], "ticket.called", ticket=t, ws=w, vn="W0001", window="1",
           recall=0, chosen=True)  # fmt: skip


async def test_call_ticket_needs_the_skill(engine: Engine, store: Store) -> None:
    await engine.sign_in("W0003", "3")
    t = (await engine.take_ticket("biz")).ticket
    with pytest.raises(SkillMissingError) as exc:
        await engine.call_ticket("W0003", t.id)
    assert exc.value.message_en == "Work number W0003 has no skill for service 'biz'."
    assert (await engine.ticket(t.id)).state == T.WAITING


async def test_call_ticket_of_an_unknown_ticket(engine: Engine) -> None:
    await engine.sign_in("W0001", "1")
    with pytest.raises(TicketNotFoundError) as exc:
        await engine.call_ticket("W0001", 4242)
    assert exc.value.message_en == "Ticket 4242 was not found."


async def test_call_ticket_that_is_not_waiting_is_illegal(engine: Engine) -> None:
    t = await serving(engine)
    await engine.complete("W0001")
    with pytest.raises(IllegalTransitionError):
        await engine.call_ticket("W0001", t.id)


# --- transfer ---------------------------------------------------------------------------------------


async def test_transfer_to_a_service_requeues_at_the_front(
    engine: Engine, store: Store, clock: FakeClock
) -> None:
    await engine.sign_in("W0001", "1")
    old = (await engine.take_ticket("biz")).ticket
    clock.advance(100)
    await engine.take_ticket("pension")
    clock.advance(100)
    await engine.call_next("W0001")
    clock.advance(100)
    new = await engine.transfer(old.id, to_service="pension", by="W0001")
    assert (new.service, new.number, new.state, new.parent_id) == (
        "pension",
        "A001",
        T.WAITING,
        old.id,
    )
    assert (new.arrived_at, new.queued_at, new.updated_at) == (T0, T0, T0 + 300)
    assert (new.workstation, new.window, new.called_at, new.target_workstation) == (None,) * 4
    assert new.token == old.token
    closed = await engine.ticket(old.id)
    assert (closed.state, closed.ended_at, closed.token) == (
        T.TRANSFERRED,
        T0 + 300,
        f"{old.token}~{old.id}",
    )
    assert await engine.ticket_by_token(old.token) == new
    freed = await engine.workstation("W0001")
    assert (freed.state, freed.ticket_id) == (W.AVAILABLE, None)
    moved, requeued = await last(store, 2)
    expect(moved, "ticket.transferred", ticket=closed, ws=freed, vn="W0001", window="1",
           to=new.to_dict())  # fmt: skip
    expect(requeued, "ticket.requeued", ticket=new, parent_id=old.id, position="front")
    assert [t.number for t in await engine.waiting("pension")] == ["A001", "B001"]


async def test_transfer_to_the_back_queues_now(
    engine: Engine, clock: FakeClock, store: Store
) -> None:
    old = (await engine.take_ticket("biz")).ticket
    await engine.take_ticket("pension")
    clock.advance(100)
    new = await engine.transfer(old.id, to_service="pension", position=TransferPosition.BACK)
    assert (new.arrived_at, new.queued_at) == (T0, T0 + 100)
    expect((await last(store))[0], "ticket.requeued", ticket=new, parent_id=old.id, position="back")
    assert [t.number for t in await engine.waiting("pension")] == ["B001", "A001"]


async def test_transfer_position_follows_the_policy(store: Store, clock: FakeClock) -> None:
    engine = await with_hall(
        store, clock, make_hall(Policy(transfer_position=TransferPosition.BACK))
    )
    old = (await engine.take_ticket("biz")).ticket
    clock.advance(50)
    assert (await engine.transfer(old.id, to_service="medical")).queued_at == T0 + 50


async def test_transfer_to_a_workstation_is_for_it_alone_and_first(
    engine: Engine, clock: FakeClock
) -> None:
    await engine.sign_in("W0001", "1")
    await engine.sign_in("W0004", "4")
    first = (await engine.take_ticket("biz")).ticket
    second = (await engine.take_ticket("biz")).ticket
    clock.advance(60)
    moved = await engine.transfer(second.id, to_workstation="W0004", position=TransferPosition.BACK)
    assert (moved.target_workstation, moved.service, moved.number) == ("W0004", "biz", "A002")
    assert (await engine.call_next("W0004")).id == moved.id  # first for W0004, though queued later
    await engine.mark_no_show("W0004")
    assert (await engine.call_next("W0001")).id == first.id


async def test_ticket_transferred_to_another_workstation_is_skipped(engine: Engine) -> None:
    await engine.sign_in("W0001", "1")
    early = (await engine.take_ticket("biz")).ticket
    later = (await engine.take_ticket("biz")).ticket
    moved = await engine.transfer(early.id, to_workstation="W0004")
    assert (await engine.call_next("W0001")).id == later.id
    await engine.mark_no_show("W0001")
    assert await engine.call_next("W0001") is None
    assert (await engine.ticket(moved.id)).state == T.WAITING


async def test_transfer_by_a_workstation_not_holding_the_ticket(engine: Engine) -> None:
    await engine.sign_in("W0001", "1")
    await engine.sign_in("W0004", "4")
    t = (await engine.take_ticket("biz")).ticket
    await engine.call_next("W0001")
    with pytest.raises(NotYourTicketError) as exc:
        await engine.transfer(t.id, to_service="pension", by="W0004")
    assert exc.value.message_en == "Ticket A001 is not held by work number W0004."
    assert (await engine.ticket(t.id)).state == T.CALLED


async def test_transfer_to_a_workstation_without_the_skill(engine: Engine) -> None:
    t = (await engine.take_ticket("biz")).ticket
    with pytest.raises(SkillMissingError):
        await engine.transfer(t.id, to_workstation="W0003")


async def test_transfer_to_an_unknown_workstation(engine: Engine) -> None:
    t = (await engine.take_ticket("biz")).ticket
    with pytest.raises(UnknownWorkstationError):
        await engine.transfer(t.id, to_workstation="W9999")


async def test_transfer_to_an_unknown_service(engine: Engine) -> None:
    t = (await engine.take_ticket("biz")).ticket
    with pytest.raises(UnknownServiceError):
        await engine.transfer(t.id, to_service="nope")


async def test_transfer_needs_a_destination(engine: Engine) -> None:
    t = (await engine.take_ticket("biz")).ticket
    with pytest.raises(InvalidRequestError):
        await engine.transfer(t.id)


async def test_transfer_of_a_hall_ticket_to_a_phone_service_is_invalid(engine: Engine) -> None:
    t = (await engine.take_ticket("biz")).ticket
    with pytest.raises(InvalidRequestError):
        await engine.transfer(t.id, to_service="consult")


async def test_transfer_of_a_finished_ticket_is_illegal(engine: Engine) -> None:
    t = await serving(engine)
    await engine.complete("W0001")
    with pytest.raises(IllegalTransitionError):
        await engine.transfer(t.id, to_service="pension")


# --- cancel, abandon ---------------------------------------------------------------------------------


async def test_cancel_a_waiting_ticket(engine: Engine, store: Store) -> None:
    t = (await engine.take_ticket("biz")).ticket
    c = await engine.cancel(t.id)
    assert (c.state, c.ended_at) == (T.CANCELLED, T0)
    expect((await last(store))[0], "ticket.cancelled", ticket=c)


async def test_cancel_a_called_ticket_frees_the_workstation(engine: Engine, store: Store) -> None:
    await engine.sign_in("W0001", "1")
    t = (await engine.take_ticket("biz")).ticket
    await engine.call_next("W0001")
    c = await engine.cancel(t.id, by="W0001")
    w = await engine.workstation("W0001")
    assert (c.state, w.state, w.ticket_id) == (T.CANCELLED, W.AVAILABLE, None)
    expect((await last(store))[0], "ticket.cancelled", ticket=c, ws=w, vn="W0001", window="1")


async def test_cancel_by_another_workstation(engine: Engine) -> None:
    await engine.sign_in("W0001", "1")
    await engine.sign_in("W0004", "4")
    t = (await engine.take_ticket("biz")).ticket
    await engine.call_next("W0001")
    with pytest.raises(NotYourTicketError):
        await engine.cancel(t.id, by="W0004")


async def test_cancel_while_serving_is_illegal(engine: Engine) -> None:
    t = await serving(engine)
    with pytest.raises(IllegalTransitionError):
        await engine.cancel(t.id)


async def test_cancel_an_unknown_ticket(engine: Engine) -> None:
    with pytest.raises(TicketNotFoundError):
        await engine.cancel(999)


async def test_abandon_a_waiting_phone_call(engine: Engine, store: Store) -> None:
    t = (await engine.take_ticket("consult")).ticket
    a = await engine.abandon(t.id)
    assert (a.state, a.ended_at) == (T.ABANDONED, T0)
    expect((await last(store))[0], "ticket.abandoned", ticket=a)


async def test_abandon_a_hall_ticket_is_illegal(engine: Engine) -> None:
    t = (await engine.take_ticket("biz")).ticket
    with pytest.raises(IllegalTransitionError) as exc:
        await engine.abandon(t.id)
    assert exc.value.message_en == "Ticket A001 is waiting; it cannot be abandoned."
    assert (await engine.ticket(t.id)).state == T.WAITING


# --- hold / resume ---------------------------------------------------------------------------------------


async def test_hold_frees_the_window_and_resume_serves_again(
    engine: Engine, store: Store, clock: FakeClock
) -> None:
    t = await serving(engine)
    held = await engine.hold("W0001")
    w = await engine.workstation("W0001")
    assert (held.state, held.workstation, w.state, w.ticket_id) == (
        T.HELD,
        "W0001",
        W.AVAILABLE,
        None,
    )
    expect((await last(store))[0], "ticket.held", ticket=held, ws=w, vn="W0001", window="1")
    clock.advance(90)
    back = await engine.resume("W0001", t.id)
    w = await engine.workstation("W0001")
    assert (back.state, back.updated_at, w.state, w.ticket_id) == (
        T.SERVING,
        T0 + 90,
        W.SERVING,
        t.id,
    )
    expect((await last(store))[0], "ticket.resumed", ticket=back, ws=w, vn="W0001", window="1")
    assert (await engine.complete("W0001")).state == T.DONE


async def test_resume_while_serving_another_fails(engine: Engine) -> None:
    first = await serving(engine)
    await engine.hold("W0001")
    await engine.take_ticket("biz")
    await engine.call_next("W0001")
    await engine.start_service("W0001")
    with pytest.raises(WorkstationStateError) as exc:
        await engine.resume("W0001", first.id)
    assert exc.value.message_en == "Work number W0001 is serving; it cannot hold another ticket."
    assert (await engine.ticket(first.id)).state == T.HELD


async def test_resume_at_another_workstation_is_not_yours(engine: Engine) -> None:
    first = await serving(engine)
    await engine.hold("W0001")
    await engine.sign_in("W0004", "4")
    with pytest.raises(NotYourTicketError):
        await engine.resume("W0004", first.id)


async def test_hold_with_nothing_served_is_illegal(engine: Engine) -> None:
    await engine.sign_in("W0001", "1")
    await engine.take_ticket("biz")
    await engine.call_next("W0001")
    with pytest.raises(IllegalTransitionError):
        await engine.hold("W0001")


# --- hotline ------------------------------------------------------------------------------------------------


async def hotline(engine: Engine) -> Ticket:
    await engine.sign_in("W0101", "H01")
    await engine.sign_in("W0102", "H02")  # consult level 2
    return (await engine.take_ticket("consult")).ticket


async def test_dispatch_offers_to_the_best_agent(engine: Engine, store: Store) -> None:
    call = await hotline(engine)
    [offered] = await engine.dispatch()
    assert (offered.id, offered.state, offered.workstation, offered.window) == (
        call.id, T.CALLED, "W0102", "H02"
    )  # fmt: skip
    assert offered.offer_expires_at == T0 + 20
    w = await engine.workstation("W0102")
    assert (w.state, w.ticket_id) == (W.CALLING, call.id)
    expect((await last(store))[0], "ticket.offered", ticket=offered, ws=w, vn="W0102", window="H02",
           expires_at=T0 + 20)  # fmt: skip


async def test_dispatch_without_free_agents_does_nothing(engine: Engine, store: Store) -> None:
    await engine.take_ticket("consult")
    assert await engine.dispatch() == []
    assert [e.type for e in await log(store)] == ["ticket.issued"]


async def test_dispatch_offers_one_call_per_agent(engine: Engine) -> None:
    await hotline(engine)
    await engine.take_ticket("consult")
    await engine.take_ticket("consult")
    offered = await engine.dispatch()
    assert [(t.number, t.workstation) for t in offered] == [("H001", "W0102"), ("H002", "W0101")]
    assert await engine.dispatch() == []


async def test_dispatch_never_offers_a_hall_ticket(engine: Engine) -> None:
    await engine.sign_in("W0004", "H01")  # a window staffer sitting at a hotline seat
    await engine.take_ticket("biz")
    assert await engine.dispatch() == []


async def test_accept_serves_the_call(engine: Engine, store: Store) -> None:
    await hotline(engine)
    await engine.dispatch()
    t = await engine.accept("W0102")
    w = await engine.workstation("W0102")
    assert (t.state, t.offer_expires_at, w.state) == (T.SERVING, None, W.SERVING)
    expect((await last(store))[0], "ticket.started", ticket=t, ws=w, vn="W0102", window="H02",
           accepted=True)  # fmt: skip


async def test_hotline_complete_enters_hotline_wrap_up(engine: Engine) -> None:
    await hotline(engine)
    await engine.dispatch()
    await engine.accept("W0102")
    await engine.complete("W0102")
    w = await engine.workstation("W0102")
    assert (w.state, w.wrap_up_until) == (W.WRAP_UP, T0 + 30)  # Policy().hotline_wrap_up_s


async def test_reject_puts_the_call_back_for_another_agent(engine: Engine, store: Store) -> None:
    call = await hotline(engine)
    await engine.dispatch()
    t = await engine.reject("W0102")
    w = await engine.workstation("W0102")
    assert (t.state, t.declined_by, t.workstation, t.queued_at) == (T.WAITING, ("W0102",), None, T0)
    assert (w.state, w.ticket_id, w.missed_offers) == (W.AVAILABLE, None, 1)
    expect((await last(store))[0], "ticket.offer_declined", ticket=t, ws=w, vn="W0102",
           window="H02", reason="rejected")  # fmt: skip
    [again] = await engine.dispatch()
    assert (again.id, again.workstation) == (call.id, "W0101")


async def test_offer_times_out_on_tick(engine: Engine, store: Store, clock: FakeClock) -> None:
    await hotline(engine)
    await engine.dispatch()
    clock.advance(19.5)
    assert await engine.tick() == []
    clock.advance(0.5)
    [ev] = await engine.tick()
    t = await engine.ticket(ev.ticket_id)
    w = await engine.workstation("W0102")
    assert (t.state, t.declined_by, w.state, w.missed_offers) == (
        T.WAITING,
        ("W0102",),
        W.AVAILABLE,
        1,
    )
    expect(ev, "ticket.offer_declined", ticket=t, ws=w, vn="W0102", window="H02", reason="timeout")


async def test_missed_offers_pause_the_agent(
    engine: Engine, store: Store, clock: FakeClock
) -> None:
    await engine.sign_in("W0102", "H02")
    for _ in range(2):  # Policy().missed_offers_before_pause == 2
        await engine.take_ticket("consult")
        [offered] = await engine.dispatch()
        assert offered.workstation == "W0102"
        clock.advance(20)
        events = await engine.tick()
    assert [e.type for e in events] == ["ticket.offer_declined", "workstation.paused"]
    w = await engine.workstation("W0102")
    assert (w.state, w.pause_reason, w.missed_offers) == (W.PAUSED, "missed_offers", 2)
    expect(events[1], "workstation.paused", ws=w, vn="W0102", window="H02", reason="missed_offers",
           automatic=True)  # fmt: skip
    assert (await last(store))[0] == events[1]
    back = await engine.resume_work("W0102")
    assert (back.state, back.missed_offers) == (W.AVAILABLE, 0)


async def test_abandon_an_offered_call_frees_the_agent(engine: Engine) -> None:
    call = await hotline(engine)
    await engine.dispatch()
    assert (await engine.abandon(call.id)).state == T.ABANDONED
    assert (await engine.workstation("W0102")).state == W.AVAILABLE


# --- time: day end and closing -------------------------------------------------------------------------------


async def test_day_end_expires_yesterdays_open_hall_tickets(
    engine: Engine, store: Store, clock: FakeClock
) -> None:
    held = await serving(engine)
    await engine.hold("W0001")
    await engine.take_ticket("biz")
    called = await engine.call_next("W0001")
    waiting = (await engine.take_ticket("pension")).ticket
    clock.advance(TO_MIDNIGHT - 1)
    assert await engine.tick() == []
    clock.advance(1)
    today = (await engine.take_ticket("biz")).ticket
    events = await engine.tick()
    assert [e.type for e in events] == ["ticket.expired"] * 3
    assert {e.ticket_id for e in events} == {held.id, called.id, waiting.id}
    for ev in events:
        t = await engine.ticket(ev.ticket_id)
        assert (t.state, t.ended_at) == (T.EXPIRED, T0 + TO_MIDNIGHT)
    w = await engine.workstation("W0001")
    assert (w.state, w.ticket_id) == (W.AVAILABLE, None)
    [freed] = [e for e in events if e.ticket_id == called.id]
    expect(
        freed, "ticket.expired", ticket=await engine.ticket(called.id), ws=w, vn="W0001", window="1"
    )
    assert (await engine.ticket(today.id)).state == T.WAITING


async def test_closing_time_expires_todays_hall_tickets_not_phone_calls(
    store: Store, clock: FakeClock
) -> None:
    friday = {4: (Session(time(9), time(12)), Session(time(13), time(17)))}
    engine = await with_hall(store, clock, dataclasses.replace(make_hall(), hours=friday))
    await engine.sign_in("W0001", "1")
    await engine.take_ticket("biz")
    called = await engine.call_next("W0001")
    waiting = (await engine.take_ticket("biz")).ticket
    call = (await engine.take_ticket("consult")).ticket
    clock.advance(7 * 3600 - 1)  # 16:59:59
    assert await engine.tick() == []
    clock.advance(1)
    events = await engine.tick()
    assert sorted((e.type, e.ticket_id) for e in events) == [
        ("ticket.expired", called.id), ("ticket.expired", waiting.id)
    ]  # fmt: skip
    assert (await engine.ticket(call.id)).state == T.WAITING
    assert (await engine.workstation("W0001")).state == W.AVAILABLE


async def test_closing_time_of_a_day_without_sessions_is_its_start(
    store: Store, clock: FakeClock
) -> None:
    monday = {0: (Session(time(9), time(17)),)}
    engine = await with_hall(store, clock, dataclasses.replace(make_hall(), hours=monday))
    assert engine.closing_time(clock.now()) == T0 - 10 * 3600
    assert not engine.is_open(clock.now())
    with pytest.raises(HallClosedError):
        await engine.take_ticket("biz")


async def test_a_ticket_taken_after_closing_lives_until_midnight(
    store: Store, clock: FakeClock
) -> None:
    friday = {4: (Session(time(9), time(9, 30)),)}
    policy = Policy(issue_outside_hours=True)
    hall = dataclasses.replace(make_hall(policy), hours=friday)
    engine = await with_hall(store, clock, hall)
    early = (await engine.take_ticket("biz")).ticket  # 10:00, after the 09:30 close
    assert await engine.tick() == []
    clock.advance(14 * 3600 + 1)  # past midnight
    [ev] = await engine.tick()
    assert (ev.type, ev.ticket_id) == ("ticket.expired", early.id)


async def test_the_phone_channel_is_open_when_the_hall_is_closed(
    store: Store, clock: FakeClock
) -> None:
    monday = {0: (Session(time(9), time(17)),)}
    engine = await with_hall(store, clock, dataclasses.replace(make_hall(), hours=monday))
    issued = await engine.take_ticket("consult")
    assert issued.ticket.state == TicketState.WAITING


async def test_closing_time_of_a_day_without_sessions_is_exactly_midnight(
    store: Store, clock: FakeClock
) -> None:
    monday = {0: (Session(time(9), time(17)),)}
    engine = await with_hall(store, clock, dataclasses.replace(make_hall(), hours=monday))
    clock.advance(30.25)
    assert engine.closing_time(clock.now()) == T0 - 10 * 3600


async def test_without_hours_nothing_expires_during_the_day(
    engine: Engine, clock: FakeClock
) -> None:
    assert engine.closing_time(clock.now()) is None
    await engine.take_ticket("biz")
    clock.advance(TO_MIDNIGHT - 1)
    assert await engine.tick() == []


async def test_sign_out_with_a_ticket_on_hold_is_refused(engine: Engine) -> None:
    await engine.sign_in("W0001", "1")
    t = (await engine.take_ticket("biz")).ticket
    await engine.call_next("W0001")
    await engine.start_service("W0001")
    await engine.hold("W0001")
    with pytest.raises(HeldTicketsError) as err:
        await engine.sign_out("W0001")
    assert t.number in err.value.message_en and t.number in err.value.message_zh
    assert (await engine.workstation("W0001")).state == WorkstationState.AVAILABLE
    await engine.resume("W0001", t.id)
    await engine.complete("W0001")
    assert (await engine.sign_out("W0001")).state == WorkstationState.OFFLINE


# --- at_desk: a verb and the desk after it, in one transaction ---------------------


async def test_at_desk_answers_the_desk_as_each_verb_left_it(engine: Engine, store: Store) -> None:
    await engine.sign_in("W0001", "1")
    first, second = [(await engine.take_ticket("biz")).ticket for _ in range(2)]
    ws, t = await engine.at_desk("W0001", "call_next")
    assert (ws.state, ws.ticket_id) == (W.CALLING, first.id) and t == await engine.ticket(first.id)
    assert (await engine.desk("W0001")) == (ws, t)
    ws, t = await engine.at_desk("W0001", "recall")
    assert t is not None and t.recalls == 1
    ws, t = await engine.at_desk("W0001", "start_service")
    assert ws.state == W.SERVING and t is not None and t.state == T.SERVING
    ws, t = await engine.at_desk("W0001", "hold")
    assert (ws.state, ws.ticket_id, t) == (W.AVAILABLE, None, None)
    ws, t = await engine.at_desk("W0001", "call_next")
    assert t is not None and t.id == second.id
    ws, t = await engine.at_desk("W0001", "mark_no_show")
    assert ws.ticket_id is None and t is None
    assert (await engine.ticket(second.id)).state == T.NO_SHOW
    assert [e.type for e in await last(store, 6)] == [
        "ticket.called", "ticket.recalled", "ticket.started", "ticket.held", "ticket.called",
        "ticket.no_show",
    ]  # fmt: skip


async def test_at_desk_refused_verb_changes_nothing(engine: Engine, store: Store) -> None:
    await engine.sign_in("W0001", "1")
    before = await log(store)
    with pytest.raises(NoTicketError):
        await engine.at_desk("W0001", "complete")
    with pytest.raises(InvalidRequestError):
        await engine.at_desk("W0001", "recall", finish=1)  # only 下一位 names a ticket
    with pytest.raises(InvalidRequestError):
        await engine.at_desk("W0001", "sign_out")  # type: ignore[arg-type]
    assert await log(store) == before


async def test_at_desk_call_next_names_the_ticket_it_finishes(
    store: Store, clock: FakeClock
) -> None:
    engine, (first, second, _) = await pad_hall(store, clock)
    ws, t = await engine.at_desk("W0001", "call_next", finish=first.id)
    assert t is not None and t.id == second.id and ws.ticket_id == second.id
    assert (await engine.ticket(first.id)).state == T.DONE
    with pytest.raises(TicketChangedError):
        await engine.at_desk("W0001", "call_next", finish=first.id)
