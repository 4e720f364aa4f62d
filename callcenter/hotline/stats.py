"""Hotline statistics from the event log (GB/T 33358 figures and the usual call-centre ones)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from queue_engine import Event

ANSWER_TARGET_S = 15.0
SHORT_ABANDON_S = 5.0


def hotline_stats(
    events: Iterable[Event], now: float, waiting_since: Iterable[float] = ()
) -> dict[str, Any]:
    """Offered, answered, abandoned, service levels, speed of answer, handle time, offers, occupancy.

    SL = answered within 15 s ÷ answered; SL2 = (answered + abandoned) within 15 s ÷
    (answered + abandoned). Occupancy = talk time ÷ (talk + idle) of signed-in agents.
    """
    arrived: dict[str, float] = {}  # number@day → first arrival (a call-back keeps it)
    answer_waits: list[float] = []
    abandon_waits: list[float] = []
    handles: list[float] = []
    offers = {"offered": 0, "accepted": 0, "rejected": 0, "timeout": 0}
    offered_calls = 0
    talk_s = 0.0
    for e in events:
        t = e.payload.get("ticket")
        if not t or t.get("channel") == "hall":
            continue
        key = f"{t['number']}@{t['day']}"
        if e.type == "ticket.issued":
            offered_calls += 1
            arrived.setdefault(key, t["arrived_at"])
        elif e.type == "ticket.offered":
            offers["offered"] += 1
        elif e.type == "ticket.offer_declined":
            offers["rejected" if e.payload.get("reason") == "rejected" else "timeout"] += 1
        elif e.type == "ticket.started":
            offers["accepted"] += 1
            if t.get("channel") == "phone":  # a call-back's start is our dial-out, not an answer
                answer_waits.append(e.at - arrived.get(key, t["arrived_at"]))
        elif e.type == "ticket.abandoned":
            abandon_waits.append(e.at - arrived.get(key, t["arrived_at"]))
        elif e.type == "ticket.completed" and t.get("started_at"):
            handles.append(e.at - t["started_at"])
            talk_s += e.at - t["started_at"]
            if t.get("channel") == "callback":  # a call-back is answered when it was completed
                answer_waits.append(t["started_at"] - arrived.get(key, t["arrived_at"]))
    answered, abandoned = len(answer_waits), len(abandon_waits)
    quick = sum(1 for w in answer_waits if w <= ANSWER_TARGET_S)
    quick_abandons = sum(1 for w in abandon_waits if w <= ANSWER_TARGET_S)
    waiting = [now - s for s in waiting_since]
    return {
        "offered": offered_calls,
        "answered": answered,
        "abandoned": abandoned,
        "abandoned_within_5s": sum(1 for w in abandon_waits if w <= SHORT_ABANDON_S),
        "service_level": _ratio(quick, answered),
        "service_level_2": _ratio(quick + quick_abandons, answered + abandoned),
        "average_speed_of_answer_s": _mean(answer_waits),
        "average_handle_time_s": _mean(handles),
        "longest_waiting_now_s": round(max(waiting), 1) if waiting else 0.0,
        "reservations": offers,
        "talk_s": round(talk_s, 1),
    }


def occupancy(talk_s: float, signed_in_s: float) -> float | None:
    """Share of signed-in time spent on calls."""
    return round(talk_s / signed_in_s, 3) if signed_in_s > 0 else None


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 3) if whole else None


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 1) if values else None
