"""queue_engine.transitions: every legal move's result and every illegal move's typed error."""

from __future__ import annotations

from dataclasses import replace

import pytest

from queue_engine import transitions as tr
from queue_engine.errors import (
    AlreadySignedInError,
    IllegalTransitionError,
    NotSignedInError,
    NotYourTicketError,
    QueueError,
    WorkstationStateError,
)
from queue_engine.model import (
    Channel,
    SeatKind,
    Ticket,
    TicketState,
    Workstation,
    WorkstationState,
    evolve,
)

T = TicketState
W = WorkstationState
NOW = 1000.0


def ticket(state: TicketState = T.WAITING, **kw: object) -> Ticket:
    fields: dict = dict(
        id=7, hall="test", service="biz", number="A007", day="2026-05-29", channel=Channel.HALL,
        priority="normal", state=state, token="tok", arrived_at=100.0, queued_at=100.0,
        updated_at=100.0,
    )  # fmt: skip
    if state in (T.CALLED, T.SERVING, T.HELD):
        fields.update(workstation="W0001", window="3", called_at=200.0)
    fields.update(kw)
    return Ticket(**fields)


def ws(state: WorkstationState = W.AVAILABLE, **kw: object) -> Workstation:
    fields: dict = dict(virtual_number="W0001", hall="test", state=state, since=50.0)
    if state != W.OFFLINE:
        fields.update(window="3", kind=SeatKind.WINDOW)
    if state in (W.CALLING, W.SERVING):
        fields.update(ticket_id=7)
    if state == W.WRAP_UP:
        fields.update(wrap_up_until=1010.0)
    if state == W.PAUSED:
        fields.update(pause_reason="break")
    fields.update(kw)
    return Workstation(**fields)


def others(*allowed: TicketState) -> list[TicketState]:
    return [s for s in T if s not in allowed]


def busy_ws_states(*allowed: WorkstationState) -> list[WorkstationState]:
    return [s for s in W if s not in allowed and s != W.OFFLINE]


def assert_filled(err: QueueError, code: str) -> None:
    assert err.code == code
    assert err.message_en and "{" not in err.message_en and "}" not in err.message_en
    assert err.message_zh and "{" not in err.message_zh and "}" not in err.message_zh
    assert str(err) == err.message_en


# --- call -------------------------------------------------------------------


def test_call_sets_workstation_window_and_called_at() -> None:
    t, w = tr.call(ticket(recalls=3), ws(), NOW)
    assert t == replace(
        ticket(), state=T.CALLED, workstation="W0001", window="3", called_at=NOW, updated_at=NOW
    )
    assert w == replace(ws(), state=W.CALLING, ticket_id=7, since=NOW)


def test_call_from_wrap_up_clears_wrap_up_until() -> None:
    _, w = tr.call(ticket(), ws(W.WRAP_UP), NOW)
    assert (w.state, w.ticket_id, w.wrap_up_until, w.since) == (W.CALLING, 7, None, NOW)


@pytest.mark.parametrize("state", others(T.WAITING))
def test_call_refuses_a_ticket_that_is_not_waiting(state: TicketState) -> None:
    with pytest.raises(IllegalTransitionError) as exc:
        tr.call(ticket(state), ws(), NOW)
    assert_filled(exc.value, "illegal_transition")
    assert exc.value.message_en == f"Ticket A007 is {state.value}; it cannot be called."


@pytest.mark.parametrize("state", busy_ws_states(W.AVAILABLE, W.WRAP_UP))
def test_call_refuses_a_busy_or_paused_workstation(state: WorkstationState) -> None:
    with pytest.raises(WorkstationStateError) as exc:
        tr.call(ticket(), ws(state), NOW)
    assert type(exc.value) is WorkstationStateError
    assert_filled(exc.value, "workstation_state")
    assert exc.value.message_en == f"Work number W0001 is {state.value}; it cannot call next."


def test_call_by_an_offline_workstation_is_not_signed_in() -> None:
    with pytest.raises(NotSignedInError) as exc:
        tr.call(ticket(), ws(W.OFFLINE), NOW)
    assert_filled(exc.value, "not_signed_in")
    assert exc.value.message_en == "Work number W0001 is not signed in."
    assert exc.value.message_zh == "工号W0001未登录"


def test_illegal_transition_chinese_message_names_the_state_in_chinese() -> None:
    with pytest.raises(IllegalTransitionError) as exc:
        tr.call(ticket(T.DONE), ws(), NOW)
    assert exc.value.message_zh == "号票A007当前状态为“已办结”，不能呼叫"


def test_workstation_state_chinese_message_names_the_state_in_chinese() -> None:
    with pytest.raises(WorkstationStateError) as exc:
        tr.call(ticket(), ws(W.SERVING), NOW)
    assert exc.value.message_zh == "工号W0001当前为“正在处理”，不能叫号"


# --- offer / decline ----------------------------------------------------------


def test_offer_reserves_the_call_with_an_expiry() -> None:
    t, w = tr.offer(ticket(channel=Channel.PHONE), ws(kind=SeatKind.HOTLINE), NOW, 20.0)
    assert (t.state, t.workstation, t.window, t.called_at) == (T.CALLED, "W0001", "3", NOW)
    assert t.offer_expires_at == NOW + 20.0
    assert (w.state, w.ticket_id, w.since) == (W.CALLING, 7, NOW)


@pytest.mark.parametrize("state", others(T.WAITING))
def test_offer_refuses_a_ticket_that_is_not_waiting(state: TicketState) -> None:
    with pytest.raises(IllegalTransitionError):
        tr.offer(ticket(state), ws(), NOW, 20.0)


@pytest.mark.parametrize("state", busy_ws_states(W.AVAILABLE))
def test_offer_needs_an_available_agent(state: WorkstationState) -> None:
    with pytest.raises(WorkstationStateError) as exc:
        tr.offer(ticket(), ws(state), NOW, 20.0)
    assert type(exc.value) is WorkstationStateError
    assert exc.value.message_en == f"Work number W0001 is {state.value}; it cannot take an offer."


def test_offer_to_an_offline_agent_is_not_signed_in() -> None:
    with pytest.raises(NotSignedInError):
        tr.offer(ticket(), ws(W.OFFLINE), NOW, 20.0)


def test_decline_puts_the_call_back_and_counts_a_missed_offer() -> None:
    offered = ticket(T.CALLED, offer_expires_at=1020.0, declined_by=("W0009",))
    t, w = tr.decline(offered, ws(W.CALLING, missed_offers=1), NOW)
    assert t == replace(
        offered, state=T.WAITING, workstation=None, window=None, called_at=None,
        offer_expires_at=None, updated_at=NOW, declined_by=("W0009", "W0001"),
    )  # fmt: skip
    assert w == replace(ws(), state=W.AVAILABLE, ticket_id=None, since=NOW, missed_offers=2)


@pytest.mark.parametrize("state", others(T.CALLED))
def test_decline_refuses_a_ticket_that_is_not_called(state: TicketState) -> None:
    with pytest.raises(IllegalTransitionError):
        tr.decline(ticket(state), ws(W.CALLING), NOW)


def test_decline_by_another_workstation_is_not_your_ticket() -> None:
    with pytest.raises(NotYourTicketError) as exc:
        tr.decline(ticket(T.CALLED), ws(W.CALLING, virtual_number="W0002"), NOW)
    assert_filled(exc.value, "not_your_ticket")
    assert exc.value.message_en == "Ticket A007 is not held by work number W0002."
    assert exc.value.message_zh == "号票A007不属于工号W0002"


# --- recall / start / complete / no-show ----------------------------------------


def test_recall_counts_and_restamps_the_call() -> None:
    t = tr.recall(ticket(T.CALLED, recalls=1), ws(W.CALLING), NOW)
    assert t == replace(ticket(T.CALLED), recalls=2, called_at=NOW, updated_at=NOW)


@pytest.mark.parametrize("state", others(T.CALLED))
def test_recall_refuses_a_ticket_that_is_not_called(state: TicketState) -> None:
    with pytest.raises(IllegalTransitionError) as exc:
        tr.recall(ticket(state), ws(W.CALLING), NOW)
    assert exc.value.message_en == f"Ticket A007 is {state.value}; it cannot be recalled."


def test_recall_by_another_workstation_is_not_your_ticket() -> None:
    with pytest.raises(NotYourTicketError):
        tr.recall(ticket(T.CALLED), ws(W.CALLING, virtual_number="W0002"), NOW)


def test_start_serves_the_ticket_and_resets_missed_offers() -> None:
    t, w = tr.start(ticket(T.CALLED, offer_expires_at=1020.0), ws(W.CALLING, missed_offers=1), NOW)
    assert (t.state, t.started_at, t.updated_at, t.offer_expires_at) == (T.SERVING, NOW, NOW, None)
    assert (w.state, w.ticket_id, w.since, w.missed_offers) == (W.SERVING, 7, NOW, 0)


@pytest.mark.parametrize("state", others(T.CALLED))
def test_start_refuses_a_ticket_that_is_not_called(state: TicketState) -> None:
    with pytest.raises(IllegalTransitionError):
        tr.start(ticket(state), ws(W.CALLING), NOW)


def test_start_by_another_workstation_is_not_your_ticket() -> None:
    with pytest.raises(NotYourTicketError):
        tr.start(ticket(T.CALLED), ws(W.CALLING, virtual_number="W0002"), NOW)


def test_complete_without_wrap_up_makes_the_workstation_available() -> None:
    t, w = tr.complete(ticket(T.SERVING), ws(W.SERVING), NOW, 0)
    assert (t.state, t.ended_at, t.updated_at, t.workstation) == (T.DONE, NOW, NOW, "W0001")
    assert w == replace(ws(), state=W.AVAILABLE, ticket_id=None, since=NOW, wrap_up_until=None)


def test_complete_with_wrap_up_enters_wrap_up_until_its_end() -> None:
    _, w = tr.complete(ticket(T.SERVING), ws(W.SERVING), NOW, 60)
    assert w == replace(ws(), state=W.WRAP_UP, ticket_id=None, since=NOW, wrap_up_until=NOW + 60)


@pytest.mark.parametrize("state", others(T.SERVING))
def test_complete_refuses_a_ticket_that_is_not_serving(state: TicketState) -> None:
    with pytest.raises(IllegalTransitionError) as exc:
        tr.complete(ticket(state), ws(W.SERVING), NOW, 0)
    assert exc.value.message_zh.endswith("”，不能办结")


def test_complete_by_another_workstation_is_not_your_ticket() -> None:
    with pytest.raises(NotYourTicketError):
        tr.complete(ticket(T.SERVING), ws(W.SERVING, virtual_number="W0002"), NOW, 0)


def test_finish_for_next_completes_a_serving_ticket_from_its_start() -> None:
    t, w = tr.finish_for_next(ticket(T.SERVING, started_at=300.0), ws(W.SERVING), NOW)
    assert (t.state, t.started_at, t.ended_at, t.updated_at) == (T.DONE, 300.0, NOW, NOW)
    assert w == replace(ws(), state=W.AVAILABLE, ticket_id=None, since=NOW, wrap_up_until=None)


def test_finish_for_next_serves_a_called_ticket_from_its_call() -> None:
    t, w = tr.finish_for_next(ticket(T.CALLED, offer_expires_at=900.0), ws(W.CALLING), NOW)
    assert (t.state, t.started_at, t.ended_at, t.offer_expires_at) == (T.DONE, 200.0, NOW, None)
    assert (w.state, w.ticket_id) == (W.AVAILABLE, None)


@pytest.mark.parametrize("state", others(T.CALLED, T.SERVING))
def test_finish_for_next_refuses_a_ticket_not_in_hand(state: TicketState) -> None:
    with pytest.raises(IllegalTransitionError):
        tr.finish_for_next(ticket(state), ws(W.SERVING), NOW)


def test_finish_for_next_by_another_workstation_is_not_your_ticket() -> None:
    with pytest.raises(NotYourTicketError):
        tr.finish_for_next(ticket(T.SERVING), ws(W.SERVING, virtual_number="W0002"), NOW)


def test_no_show_ends_the_ticket_and_frees_the_workstation_without_wrap_up() -> None:
    t, w = tr.no_show(ticket(T.CALLED), ws(W.CALLING), NOW)
    assert (t.state, t.ended_at, t.updated_at) == (T.NO_SHOW, NOW, NOW)
    assert (w.state, w.ticket_id, w.wrap_up_until) == (W.AVAILABLE, None, None)


@pytest.mark.parametrize("state", others(T.CALLED))
def test_no_show_refuses_a_ticket_that_is_not_called(state: TicketState) -> None:
    with pytest.raises(IllegalTransitionError):
        tr.no_show(ticket(state), ws(W.CALLING), NOW)


def test_no_show_by_another_workstation_is_not_your_ticket() -> None:
    with pytest.raises(NotYourTicketError):
        tr.no_show(ticket(T.CALLED), ws(W.CALLING, virtual_number="W0002"), NOW)


# --- close: cancel, abandon, expire, transfer -----------------------------------

CLOSE_SOURCES = {
    T.CANCELLED: (T.WAITING, T.CALLED),
    T.ABANDONED: (T.WAITING, T.CALLED, T.SERVING),
    T.EXPIRED: (T.WAITING, T.CALLED, T.HELD),
    T.TRANSFERRED: (T.WAITING, T.CALLED, T.SERVING),
}
LEGAL_CLOSES = [(end, src) for end, srcs in CLOSE_SOURCES.items() for src in srcs]
ILLEGAL_CLOSES = [(end, src) for end, srcs in CLOSE_SOURCES.items() for src in others(*srcs)]


@pytest.mark.parametrize(("end", "source"), LEGAL_CLOSES)
def test_close_ends_the_ticket_in_the_given_state(end: TicketState, source: TicketState) -> None:
    t, w = tr.close(ticket(source, offer_expires_at=5.0), None, NOW, end, "x")
    assert (t.state, t.ended_at, t.updated_at, t.offer_expires_at) == (end, NOW, NOW, None)
    assert w is None


@pytest.mark.parametrize(("end", "source"), ILLEGAL_CLOSES)
def test_close_refuses_an_illegal_source_state(end: TicketState, source: TicketState) -> None:
    with pytest.raises(IllegalTransitionError) as exc:
        tr.close(ticket(source), None, NOW, end, "cancelled")
    assert_filled(exc.value, "illegal_transition")


def test_close_frees_the_workstation_holding_the_ticket() -> None:
    _, w = tr.close(ticket(T.CALLED), ws(W.CALLING), NOW, T.CANCELLED, "cancelled")
    assert w == replace(ws(), state=W.AVAILABLE, ticket_id=None, since=NOW)


def test_close_leaves_a_workstation_holding_another_ticket_alone() -> None:
    _, w = tr.close(ticket(T.CALLED), ws(W.CALLING, ticket_id=99), NOW, T.CANCELLED, "cancelled")
    assert w is None


# --- hold / resume ----------------------------------------------------------------


def test_hold_frees_the_workstation_but_the_ticket_keeps_it() -> None:
    t, w = tr.hold(ticket(T.SERVING), ws(W.SERVING), NOW)
    assert (t.state, t.workstation, t.window, t.updated_at) == (T.HELD, "W0001", "3", NOW)
    assert w == replace(ws(), state=W.AVAILABLE, ticket_id=None, since=NOW)


@pytest.mark.parametrize("state", others(T.SERVING))
def test_hold_refuses_a_ticket_that_is_not_serving(state: TicketState) -> None:
    with pytest.raises(IllegalTransitionError):
        tr.hold(ticket(state), ws(W.SERVING), NOW)


def test_hold_by_another_workstation_is_not_your_ticket() -> None:
    with pytest.raises(NotYourTicketError):
        tr.hold(ticket(T.SERVING), ws(W.SERVING, virtual_number="W0002"), NOW)


@pytest.mark.parametrize("state", [W.AVAILABLE, W.WRAP_UP])
def test_resume_held_serves_again_at_the_same_free_workstation(state: WorkstationState) -> None:
    t, w = tr.resume_held(ticket(T.HELD, window="3"), ws(state, window="5"), NOW)
    assert (t.state, t.window, t.updated_at, t.workstation) == (T.SERVING, "5", NOW, "W0001")
    assert (w.state, w.ticket_id, w.since, w.wrap_up_until) == (W.SERVING, 7, NOW, None)


def test_resume_held_at_another_workstation_is_not_your_ticket() -> None:
    with pytest.raises(NotYourTicketError):
        tr.resume_held(ticket(T.HELD), ws(virtual_number="W0002"), NOW)


@pytest.mark.parametrize("state", busy_ws_states(W.AVAILABLE, W.WRAP_UP))
def test_resume_held_needs_a_free_workstation(state: WorkstationState) -> None:
    with pytest.raises(WorkstationStateError) as exc:
        tr.resume_held(ticket(T.HELD), ws(state, ticket_id=8), NOW)
    assert exc.value.message_en == (
        f"Work number W0001 is {state.value}; it cannot hold another ticket."
    )


@pytest.mark.parametrize("state", others(T.HELD))
def test_resume_held_refuses_a_ticket_that_is_not_held(state: TicketState) -> None:
    with pytest.raises(IllegalTransitionError):
        tr.resume_held(ticket(state, workstation="W0001"), ws(), NOW)


# --- workstations ---------------------------------------------------------------


def test_sign_in_makes_the_workstation_available_at_the_seat() -> None:
    w = tr.sign_in(ws(W.OFFLINE, missed_offers=2, pause_reason="x"), "H01", SeatKind.HOTLINE, NOW)
    assert w == Workstation(
        "W0001", "test", W.AVAILABLE, NOW, window="H01", kind=SeatKind.HOTLINE, missed_offers=0
    )


@pytest.mark.parametrize("state", [s for s in W if s != W.OFFLINE])
def test_sign_in_twice_is_already_signed_in(state: WorkstationState) -> None:
    with pytest.raises(AlreadySignedInError) as exc:
        tr.sign_in(ws(state), "4", SeatKind.WINDOW, NOW)
    assert_filled(exc.value, "already_signed_in")
    assert exc.value.message_en == "Work number W0001 is already signed in at window 3."


@pytest.mark.parametrize("state", [W.AVAILABLE, W.PAUSED, W.WRAP_UP])
def test_sign_out_goes_offline_and_clears_the_seat(state: WorkstationState) -> None:
    w = tr.sign_out(ws(state), NOW)
    assert w == Workstation("W0001", "test", W.OFFLINE, NOW)


@pytest.mark.parametrize("state", [W.CALLING, W.SERVING])
def test_sign_out_with_a_ticket_in_hand_is_refused(state: WorkstationState) -> None:
    with pytest.raises(WorkstationStateError) as exc:
        tr.sign_out(ws(state), NOW)
    assert exc.value.message_en == f"Work number W0001 is {state.value}; it cannot sign out."
    assert exc.value.message_zh.endswith("”，不能退出")


def test_sign_out_when_offline_is_not_signed_in() -> None:
    with pytest.raises(NotSignedInError):
        tr.sign_out(ws(W.OFFLINE), NOW)


@pytest.mark.parametrize("state", [W.AVAILABLE, W.WRAP_UP])
def test_pause_records_the_reason(state: WorkstationState) -> None:
    w = tr.pause(ws(state), "meeting", NOW)
    assert (w.state, w.pause_reason, w.since, w.wrap_up_until) == (W.PAUSED, "meeting", NOW, None)


@pytest.mark.parametrize("state", busy_ws_states(W.AVAILABLE, W.WRAP_UP))
def test_pause_refuses_a_busy_or_paused_workstation(state: WorkstationState) -> None:
    with pytest.raises(WorkstationStateError) as exc:
        tr.pause(ws(state), "break", NOW)
    assert type(exc.value) is WorkstationStateError


def test_pause_when_offline_is_not_signed_in() -> None:
    with pytest.raises(NotSignedInError):
        tr.pause(ws(W.OFFLINE), "break", NOW)


def test_resume_work_clears_the_pause_and_missed_offers() -> None:
    w = tr.resume_work(ws(W.PAUSED, missed_offers=2), NOW)
    assert w == replace(ws(), since=NOW, missed_offers=0, pause_reason=None)


@pytest.mark.parametrize("state", busy_ws_states(W.PAUSED))
def test_resume_work_needs_a_pause(state: WorkstationState) -> None:
    with pytest.raises(WorkstationStateError) as exc:
        tr.resume_work(ws(state), NOW)
    assert type(exc.value) is WorkstationStateError


def test_resume_work_when_offline_is_not_signed_in() -> None:
    with pytest.raises(NotSignedInError):
        tr.resume_work(ws(W.OFFLINE), NOW)


def test_end_wrap_up_makes_the_workstation_available() -> None:
    w = tr.end_wrap_up(ws(W.WRAP_UP), NOW)
    assert w == replace(ws(), since=NOW, wrap_up_until=None)


@pytest.mark.parametrize("state", busy_ws_states(W.WRAP_UP))
def test_end_wrap_up_needs_wrap_up(state: WorkstationState) -> None:
    with pytest.raises(WorkstationStateError):
        tr.end_wrap_up(ws(state), NOW)


def test_end_wrap_up_when_offline_is_not_signed_in() -> None:
    with pytest.raises(NotSignedInError):
        tr.end_wrap_up(ws(W.OFFLINE), NOW)


@pytest.mark.parametrize("action", sorted(tr.ACTION_ZH))
def test_every_action_has_a_chinese_name_in_illegal_transition_messages(action: str) -> None:
    with pytest.raises(IllegalTransitionError) as exc:
        tr.require_ticket(ticket(T.DONE), (T.WAITING,), action)
    assert exc.value.message_zh.startswith("号票A007当前状态为“")
    assert exc.value.message_zh.endswith(f"”，不能{tr.ACTION_ZH[action]}")


# --- evolve: the transitions' copy of a row ------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [{}, {"state": T.CALLED, "workstation": "W0001", "called_at": 5.0},
     {"declined_by": ("W0101",), "note": "带齐材料", "recalls": 2}],
)  # fmt: skip
def test_evolve_makes_what_replace_makes(changes: dict) -> None:
    t = ticket(T.WAITING, phone="+8613800000001")
    got = evolve(t, **changes)
    assert got == replace(t, **changes) and got is not t
    assert ticket(T.WAITING, phone="+8613800000001") == t  # the original is untouched
    w = ws(W.SERVING, ticket_id=3)
    assert evolve(w, state=W.AVAILABLE, ticket_id=None) == replace(
        w, state=W.AVAILABLE, ticket_id=None
    )


def test_evolve_refuses_a_field_the_row_has_not() -> None:
    with pytest.raises(TypeError, match="no field colour"):
        evolve(ticket(), colour="red")
