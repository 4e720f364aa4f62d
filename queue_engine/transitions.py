"""Pure state machines for tickets and workstations (DESIGN §4).

Each function takes the rows as they are and returns them as they become, or
raises the typed error for an illegal move. Nothing here touches a store.
"""

from __future__ import annotations

from collections.abc import Iterable

from .errors import (
    AlreadySignedInError,
    IllegalTransitionError,
    NotSignedInError,
    NotYourTicketError,
    WorkstationStateError,
)
from .model import SeatKind, Ticket, TicketState, Workstation, WorkstationState, evolve

T = TicketState
W = WorkstationState

TICKET_STATE_ZH = {
    T.WAITING: "等候中",
    T.CALLED: "已呼叫",
    T.SERVING: "办理中",
    T.HELD: "挂起",
    T.DONE: "已办结",
    T.NO_SHOW: "过号",
    T.TRANSFERRED: "已转移",
    T.CANCELLED: "已取消",
    T.ABANDONED: "已放弃",
    T.EXPIRED: "已过期",
}

WORKSTATION_STATE_ZH = {
    W.OFFLINE: "未登录",
    W.AVAILABLE: "空闲",
    W.CALLING: "呼叫中",
    W.SERVING: "正在处理",
    W.WRAP_UP: "整理中",
    W.PAUSED: "暂停",
}

ACTION_ZH = {
    "called": "呼叫",
    "recalled": "重呼",
    "started": "开始办理",
    "completed": "办结",
    "marked no-show": "标记过号",
    "transferred": "转移",
    "cancelled": "取消",
    "held": "挂起",
    "resumed": "恢复办理",
    "abandoned": "标记放弃",
    "expired": "过期",
    "offered": "分配",
    "accepted": "接听",
    "declined": "拒接",
    "call next": "叫号",
    "take an offer": "接受分配",
    "sign out": "退出",
    "pause": "暂停",
    "resume": "恢复",
    "hold another ticket": "挂起其他号票",
}


def require_ticket(ticket: Ticket, allowed: Iterable[TicketState], action: str) -> None:
    """Raise IllegalTransitionError unless the ticket is in one of ``allowed``."""
    if ticket.state not in allowed:
        raise IllegalTransitionError(
            number=ticket.number,
            state=ticket.state.value,
            state_zh=TICKET_STATE_ZH[ticket.state],
            action=action,
            action_zh=ACTION_ZH.get(action, action),
        )


def require_workstation(ws: Workstation, allowed: Iterable[WorkstationState], action: str) -> None:
    """Raise the right workstation error unless ``ws`` is in one of ``allowed``."""
    if ws.state in allowed:
        return
    if ws.state == W.OFFLINE:
        raise NotSignedInError(virtual_number=ws.virtual_number, state="offline", action_zh="")
    raise WorkstationStateError(
        virtual_number=ws.virtual_number,
        state=ws.state.value,
        state_zh=WORKSTATION_STATE_ZH[ws.state],
        action=action,
        action_zh=ACTION_ZH.get(action, action),
    )


def require_holder(ticket: Ticket, ws: Workstation) -> None:
    """Raise NotYourTicketError unless ``ws`` is the ticket's workstation."""
    if ticket.workstation != ws.virtual_number:
        raise NotYourTicketError(number=ticket.number, virtual_number=ws.virtual_number)


def release(ws: Workstation, now: float, wrap_up_s: float) -> Workstation:
    """The workstation after its ticket leaves: wrap-up if configured, else available."""
    if wrap_up_s > 0:
        return evolve(ws, state=W.WRAP_UP, ticket_id=None, since=now, wrap_up_until=now + wrap_up_s)
    return evolve(ws, state=W.AVAILABLE, ticket_id=None, since=now, wrap_up_until=None)


# --- tickets ---------------------------------------------------------------


def call(ticket: Ticket, ws: Workstation, now: float) -> tuple[Ticket, Workstation]:
    """A window calls a waiting ticket (pull)."""
    require_ticket(ticket, (T.WAITING,), "called")
    require_workstation(ws, (W.AVAILABLE, W.WRAP_UP), "call next")
    t = evolve(
        ticket,
        state=T.CALLED,
        workstation=ws.virtual_number,
        window=ws.window,
        called_at=now,
        updated_at=now,
        recalls=0,
    )
    w = evolve(ws, state=W.CALLING, ticket_id=ticket.id, since=now, wrap_up_until=None)
    return t, w


def offer(
    ticket: Ticket, ws: Workstation, now: float, timeout_s: float
) -> tuple[Ticket, Workstation]:
    """The engine reserves a waiting call for a free hotline agent (push)."""
    require_ticket(ticket, (T.WAITING,), "offered")
    require_workstation(ws, (W.AVAILABLE,), "take an offer")
    t = evolve(
        ticket,
        state=T.CALLED,
        workstation=ws.virtual_number,
        window=ws.window,
        called_at=now,
        updated_at=now,
        offer_expires_at=now + timeout_s,
    )
    return t, evolve(ws, state=W.CALLING, ticket_id=ticket.id, since=now)


def decline(ticket: Ticket, ws: Workstation, now: float) -> tuple[Ticket, Workstation]:
    """An offer is rejected or times out: the call waits again, keeping its place."""
    require_ticket(ticket, (T.CALLED,), "declined")
    require_holder(ticket, ws)
    t = evolve(
        ticket,
        state=T.WAITING,
        workstation=None,
        window=None,
        called_at=None,
        offer_expires_at=None,
        updated_at=now,
        declined_by=(*ticket.declined_by, ws.virtual_number),
    )
    w = evolve(ws, state=W.AVAILABLE, ticket_id=None, since=now, missed_offers=ws.missed_offers + 1)
    return t, w


def recall(ticket: Ticket, ws: Workstation, now: float) -> Ticket:
    """The window calls the same ticket again (重呼)."""
    require_ticket(ticket, (T.CALLED,), "recalled")
    require_holder(ticket, ws)
    return evolve(ticket, recalls=ticket.recalls + 1, called_at=now, updated_at=now)


def start(ticket: Ticket, ws: Workstation, now: float) -> tuple[Ticket, Workstation]:
    """The citizen has arrived at the window, or the agent accepted the call."""
    require_ticket(ticket, (T.CALLED,), "started")
    require_holder(ticket, ws)
    t = evolve(ticket, state=T.SERVING, started_at=now, updated_at=now, offer_expires_at=None)
    return t, evolve(ws, state=W.SERVING, since=now, missed_offers=0)


def complete(
    ticket: Ticket, ws: Workstation, now: float, wrap_up_s: float
) -> tuple[Ticket, Workstation]:
    """The service is finished."""
    require_ticket(ticket, (T.SERVING,), "completed")
    require_holder(ticket, ws)
    t = evolve(ticket, state=T.DONE, ended_at=now, updated_at=now)
    return t, release(ws, now, wrap_up_s)


def finish_for_next(ticket: Ticket, ws: Workstation, now: float) -> tuple[Ticket, Workstation]:
    """下一位 ends the current visit (the hall's ``next_completes`` policy).

    A serving ticket is completed. A called one is completed too, served from its call: at
    a hall whose staff never press 开始办理 the citizen simply sat down; one who did not come
    is marked 过号 before calling on. The window is free at once (the staffer is calling).
    """
    require_ticket(ticket, (T.CALLED, T.SERVING), "completed")
    require_holder(ticket, ws)
    started = ticket.started_at if ticket.started_at is not None else ticket.called_at
    t = evolve(
        ticket, state=T.DONE, started_at=started, ended_at=now, updated_at=now,
        offer_expires_at=None,
    )  # fmt: skip
    return t, release(ws, now, 0)


def no_show(ticket: Ticket, ws: Workstation, now: float) -> tuple[Ticket, Workstation]:
    """The called citizen did not come (过号)."""
    require_ticket(ticket, (T.CALLED,), "marked no-show")
    require_holder(ticket, ws)
    t = evolve(ticket, state=T.NO_SHOW, ended_at=now, updated_at=now, offer_expires_at=None)
    return t, release(ws, now, 0)


def close(
    ticket: Ticket, ws: Workstation | None, now: float, state: TicketState, action: str
) -> tuple[Ticket, Workstation | None]:
    """End a waiting, called or held ticket in ``state`` (cancel, abandon, expire, transfer)."""
    allowed = {
        T.CANCELLED: (T.WAITING, T.CALLED),
        T.ABANDONED: (T.WAITING, T.CALLED, T.SERVING),
        T.EXPIRED: (T.WAITING, T.CALLED, T.HELD),
        T.TRANSFERRED: (T.WAITING, T.CALLED, T.SERVING),
    }[state]
    require_ticket(ticket, allowed, action)
    t = evolve(ticket, state=state, ended_at=now, updated_at=now, offer_expires_at=None)
    if ws is not None and ws.ticket_id == ticket.id:
        return t, release(ws, now, 0)
    return t, None


def hold(ticket: Ticket, ws: Workstation, now: float) -> tuple[Ticket, Workstation]:
    """Suspend a service (挂起) while the citizen fetches a document; the window is free."""
    require_ticket(ticket, (T.SERVING,), "held")
    require_holder(ticket, ws)
    return evolve(ticket, state=T.HELD, updated_at=now), release(ws, now, 0)


def resume_held(ticket: Ticket, ws: Workstation, now: float) -> tuple[Ticket, Workstation]:
    """Take a held ticket back into service at the workstation that held it."""
    require_ticket(ticket, (T.HELD,), "resumed")
    require_holder(ticket, ws)
    require_workstation(ws, (W.AVAILABLE, W.WRAP_UP), "hold another ticket")
    t = evolve(ticket, state=T.SERVING, updated_at=now, window=ws.window)
    w = evolve(ws, state=W.SERVING, ticket_id=ticket.id, since=now, wrap_up_until=None)
    return t, w


# --- workstations ------------------------------------------------------------


def sign_in(ws: Workstation, window: str, kind: SeatKind, now: float) -> Workstation:
    """A staffer signs in under a virtual number at a window or hotline seat."""
    if ws.state != W.OFFLINE:
        raise AlreadySignedInError(virtual_number=ws.virtual_number, window=ws.window)
    return evolve(
        ws,
        state=W.AVAILABLE,
        window=window,
        kind=kind,
        since=now,
        missed_offers=0,
        pause_reason=None,
    )


def sign_out(ws: Workstation, now: float) -> Workstation:
    """A staffer signs out; allowed only with no ticket in hand."""
    require_workstation(ws, (W.AVAILABLE, W.PAUSED, W.WRAP_UP), "sign out")
    return evolve(
        ws,
        state=W.OFFLINE,
        window=None,
        kind=None,
        since=now,
        pause_reason=None,
        wrap_up_until=None,
    )


def pause(ws: Workstation, reason: str, now: float) -> Workstation:
    """Pause with a reason (break, meeting, back office, stepped away)."""
    require_workstation(ws, (W.AVAILABLE, W.WRAP_UP), "pause")
    return evolve(ws, state=W.PAUSED, pause_reason=reason, since=now, wrap_up_until=None)


def resume_work(ws: Workstation, now: float) -> Workstation:
    """Come back from a pause."""
    require_workstation(ws, (W.PAUSED,), "resume")
    return evolve(ws, state=W.AVAILABLE, pause_reason=None, since=now, missed_offers=0)


def end_wrap_up(ws: Workstation, now: float) -> Workstation:
    """Wrap-up is over: the workstation is available again."""
    require_workstation(ws, (W.WRAP_UP,), "resume")
    return evolve(ws, state=W.AVAILABLE, since=now, wrap_up_until=None)
