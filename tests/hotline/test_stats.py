"""hotline_stats over scripted event sequences: SL, SL2, ASA, AHT, short abandons, reservations."""

from __future__ import annotations

from typing import Any

import pytest

from callcenter.hotline.stats import hotline_stats, occupancy
from queue_engine import Event

T0 = 1_780_020_000.0
DAY = "2026-05-29"


class Script:
    """Events as the engine writes them: one ticket dict per change, in time order."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.tickets: dict[str, dict[str, Any]] = {}

    def _emit(self, kind: str, at: float, number: str, **extra: Any) -> None:
        t = dict(self.tickets[number])
        self.events.append(Event(len(self.events) + 1, "wuhou", kind, T0 + at, None,
                                 t.get("workstation"), None, {"ticket": t, **extra}))  # fmt: skip

    def issued(self, number: str, at: float, channel: str = "phone") -> Script:
        self.tickets[number] = {"number": number, "day": DAY, "channel": channel, "state": "waiting",
                                "arrived_at": T0 + at, "queued_at": T0 + at, "started_at": None,
                                "workstation": None}  # fmt: skip
        self._emit("ticket.issued", at, number)
        return self

    def offered(self, number: str, at: float, vn: str) -> Script:
        self.tickets[number].update(state="called", workstation=vn)
        self._emit("ticket.offered", at, number, expires_at=T0 + at + 20)
        return self

    def declined(self, number: str, at: float, reason: str) -> Script:
        self.tickets[number].update(state="waiting", workstation=None)
        self._emit("ticket.offer_declined", at, number, reason=reason)
        return self

    def started(self, number: str, at: float) -> Script:
        self.tickets[number].update(state="serving", started_at=T0 + at)
        self._emit("ticket.started", at, number, accepted=True)
        return self

    def completed(self, number: str, at: float) -> Script:
        self.tickets[number].update(state="done")
        self._emit("ticket.completed", at, number)
        return self

    def abandoned(self, number: str, at: float) -> Script:
        self.tickets[number].update(state="abandoned", workstation=None)
        self._emit("ticket.abandoned", at, number)
        return self

    def to_callback(self, number: str, at: float) -> Script:
        """The caller pressed star: the call becomes a call-back keeping number and arrival."""
        self.tickets[number].update(state="transferred")
        self._emit("ticket.transferred", at, number, callback=True)
        self.tickets[number] = {**self.tickets[number], "channel": "callback", "state": "waiting",
                                "workstation": None, "started_at": None}  # fmt: skip
        self._emit("ticket.requeued", at, number, position="front")
        return self

    def retried(self, number: str, at: float) -> Script:
        """An unanswered call-back goes back to the queue (engine.transfer to the same service)."""
        self.tickets[number].update(state="transferred")
        self._emit("ticket.transferred", at, number)
        self.tickets[number] = {**self.tickets[number], "state": "waiting", "workstation": None,
                                "started_at": None}  # fmt: skip
        self._emit("ticket.requeued", at, number, position="front")
        return self


def day_script() -> Script:
    s = Script()
    # T001 answered after 10 s, talks 120 s.
    s.issued("T001", 0).offered("T001", 2, "W0101").started("T001", 10).completed("T001", 130)
    # T002 rejected once, timed out once, answered after 30 s, talks 60 s.
    s.issued("T002", 0).offered("T002", 1, "W0102").declined("T002", 3, "rejected")
    s.offered("T002", 4, "W0103").declined("T002", 24, "timeout")
    s.offered("T002", 25, "W0104").started("T002", 30).completed("T002", 90)
    # Three hang up: after 4 s, 12 s and 40 s.
    s.issued("T003", 0).abandoned("T003", 4)
    s.issued("T004", 0).abandoned("T004", 12)
    s.issued("T005", 0).abandoned("T005", 40)
    # T006 asks for a call-back at 20 s; reached at 100 s (its wait counts from the first arrival).
    s.issued("T006", 0).to_callback("T006", 20).offered("T006", 95, "W0101").started("T006", 100)
    s.completed("T006", 160)
    # A hall ticket and a work-order event count for nothing here.
    s.issued("A001", 0, channel="hall").offered("A001", 1, "W0001").started("A001", 2).completed(
        "A001", 900
    )
    s.events.append(
        Event(
            len(s.events) + 1,
            "wuhou",
            "workorder.open",
            T0 + 50,
            payload={"order": {"number": "GD1"}},
        )
    )
    return s


def test_the_figures_of_a_scripted_day() -> None:
    out = hotline_stats(day_script().events, T0 + 200, [T0 + 100, T0 + 150])
    assert out["offered"] == 6
    assert out["answered"] == 3 and out["abandoned"] == 3
    assert out["abandoned_within_5s"] == 1
    # SL: answered within 15 s ÷ answered = 1/3.
    assert out["service_level"] == pytest.approx(0.333)
    # SL2: (answered within 15 s + abandoned within 15 s) ÷ (answered + abandoned) = (1 + 2)/6.
    assert out["service_level_2"] == 0.5
    assert out["average_speed_of_answer_s"] == pytest.approx((10 + 30 + 100) / 3, abs=0.05)
    assert out["average_handle_time_s"] == (120 + 60 + 60) / 3
    assert out["longest_waiting_now_s"] == 100.0
    assert out["reservations"] == {"offered": 5, "accepted": 3, "rejected": 1, "timeout": 1}
    assert out["talk_s"] == 240.0


def test_thresholds_are_inclusive() -> None:
    s = Script()
    s.issued("T001", 0).offered("T001", 1, "W0101").started("T001", 15).completed("T001", 20)
    s.issued("T002", 0).offered("T002", 1, "W0102").started("T002", 15.5).completed("T002", 20)
    s.issued("T003", 0).abandoned("T003", 5)
    s.issued("T004", 0).abandoned("T004", 5.5)
    s.issued("T005", 0).abandoned("T005", 15)
    out = hotline_stats(s.events, T0 + 60)
    assert out["service_level"] == 0.5
    assert out["abandoned_within_5s"] == 1
    assert out["service_level_2"] == pytest.approx(4 / 5)


def test_an_empty_day() -> None:
    out = hotline_stats([], T0)
    assert (out["offered"], out["answered"], out["abandoned"], out["abandoned_within_5s"]) == (
        0,
        0,
        0,
        0,
    )
    assert out["service_level"] is None and out["service_level_2"] is None
    assert out["average_speed_of_answer_s"] is None and out["average_handle_time_s"] is None
    assert out["longest_waiting_now_s"] == 0.0
    assert out["reservations"] == {"offered": 0, "accepted": 0, "rejected": 0, "timeout": 0}


def test_only_abandons() -> None:
    s = Script()
    s.issued("T001", 0).abandoned("T001", 3)
    s.issued("T002", 0).abandoned("T002", 30)
    out = hotline_stats(s.events, T0 + 60)
    assert out["service_level"] is None  # nothing answered
    assert out["service_level_2"] == 0.5


def test_a_call_back_answered_on_the_first_try_counts_once_from_the_first_arrival() -> None:
    s = Script()
    s.issued("T001", 0).to_callback("T001", 10).offered("T001", 50, "W0101").started("T001", 60)
    s.completed("T001", 120)
    out = hotline_stats(s.events, T0 + 200)
    assert (out["offered"], out["answered"], out["abandoned"]) == (1, 1, 0)
    assert out["average_speed_of_answer_s"] == 60.0


def test_an_unanswered_call_back_is_not_counted_as_answered() -> None:
    s = Script()
    s.issued("T001", 0).to_callback("T001", 10)
    for attempt in range(3):
        base = 100 + attempt * 100
        s.offered("T001", base, "W0101").started("T001", base + 2)
        if attempt < 2:
            s.retried("T001", base + 40)
    s.abandoned("T001", 350)
    out = hotline_stats(s.events, T0 + 400)
    assert out["offered"] == 1
    assert out["answered"] + out["abandoned"] <= out["offered"]
    assert (out["answered"], out["abandoned"]) == (0, 1)


def test_occupancy() -> None:
    assert occupancy(900.0, 3600.0) == 0.25
    assert occupancy(10.0, 0.0) is None
