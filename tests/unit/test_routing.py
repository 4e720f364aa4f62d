"""queue_engine.routing: score, choose, rank, best_agent and estimate (DESIGN §5)."""

from __future__ import annotations

import pytest

from queue_engine import routing
from queue_engine.model import (
    Channel,
    SeatKind,
    Ticket,
    TicketState,
    WaitEstimate,
    Workstation,
    WorkstationState,
)
from tests.conftest import make_hall

HALL = make_hall()  # biz: target 20 min; pension: 15; medical: 10; green weight 2.5
NOW = 100_000.0


def tk(id: int, *, waited: float = 0.0, service: str = "biz", priority: str = "normal",
       **kw: object) -> Ticket:  # fmt: skip
    fields: dict = dict(
        id=id, hall="test", service=service, number=f"A{id:03d}", day="2026-05-29",
        channel=Channel.HALL, priority=priority, state=TicketState.WAITING, token=f"t{id}",
        arrived_at=NOW - waited, queued_at=NOW - waited, updated_at=NOW - waited,
    )  # fmt: skip
    fields.update(kw)
    return Ticket(**fields)


def agent(vn: str, since: float = 0.0) -> Workstation:
    return Workstation(vn, "test", WorkstationState.AVAILABLE, since, "H01", SeatKind.HOTLINE)


def ids(tickets: list[Ticket]) -> list[int]:
    return [t.id for t in tickets]


# --- score ------------------------------------------------------------------------


def test_score_of_a_fresh_normal_ticket_is_its_level() -> None:
    assert routing.score(tk(1), HALL, 1, NOW) == 1.0


def test_score_grows_with_waiting_relative_to_the_target_wait() -> None:
    assert routing.score(tk(1, waited=600), HALL, 1, NOW) == 1.5  # biz target 1200 s
    assert routing.score(tk(1, waited=600, service="medical"), HALL, 1, NOW) == 2.0


def test_score_multiplies_class_weight_and_skill_level() -> None:
    assert routing.score(tk(1, waited=600, priority="green"), HALL, 2, NOW) == 2.5 * 2 * 1.5


def test_score_treats_level_zero_as_one_and_future_queue_time_as_no_wait() -> None:
    assert routing.score(tk(1, queued_at=NOW + 50), HALL, 0, NOW) == 1.0


def test_score_of_unknown_service_and_class_uses_defaults() -> None:
    assert routing.score(tk(1, waited=900, service="x", priority="y"), HALL, 1, NOW) == 2.0


# --- choose -----------------------------------------------------------------------


def test_ticket_transferred_to_me_comes_first() -> None:
    mine = tk(1, target_workstation="W0001")
    old_green = tk(2, waited=5000, priority="green")
    begun = tk(3, waited=10, priority="appointment", appointment_at=NOW - 5)
    assert routing.choose([old_green, begun, mine], HALL, {"biz": 1}, NOW, "W0001") == mine


def test_ticket_transferred_to_another_workstation_is_never_chosen() -> None:
    theirs = tk(1, waited=9000, target_workstation="W0002")
    assert routing.choose([theirs], HALL, {"biz": 1}, NOW, "W0001") is None
    assert routing.choose([theirs, tk(2)], HALL, {"biz": 1}, NOW, "W0001").id == 2


def test_targeted_ticket_is_not_chosen_without_a_workstation() -> None:
    assert routing.choose([tk(1, target_workstation="W0001")], HALL, {"biz": 1}, NOW) is None


def test_begun_appointment_goes_before_a_higher_score() -> None:
    begun = tk(1, priority="appointment", appointment_at=NOW)
    old_green = tk(2, waited=5000, priority="green")
    assert routing.score(old_green, HALL, 1, NOW) > routing.score(begun, HALL, 1, NOW)
    assert routing.choose([old_green, begun], HALL, {"biz": 1}, NOW) == begun


def test_begun_appointments_go_earliest_slot_first() -> None:
    later_slot = tk(1, waited=900, priority="appointment", appointment_at=NOW - 60)
    earlier_slot = tk(2, waited=10, priority="appointment", appointment_at=NOW - 600)
    assert routing.choose([later_slot, earlier_slot], HALL, {"biz": 1}, NOW) == earlier_slot


def test_appointment_whose_slot_has_not_begun_is_scored_normally() -> None:
    early = tk(1, waited=60, priority="appointment", appointment_at=NOW + 1)
    green = tk(2, priority="green")
    # 1.5 × (1 + 60/1200) = 1.575 < 2.5
    assert routing.choose([early, green], HALL, {"biz": 1}, NOW) == green
    normal = tk(3, waited=600)  # 1.5 < 1.575
    assert routing.choose([normal, early], HALL, {"biz": 1}, NOW) == early


def test_green_channel_beats_a_fresh_normal_ticket() -> None:
    assert (
        routing.choose([tk(1, waited=60), tk(2, priority="green")], HALL, {"biz": 1}, NOW).id == 2
    )


@pytest.mark.parametrize(("waited", "winner"), [(1799, 2), (1800, 1), (1801, 1)])
def test_normal_ticket_that_waited_long_enough_overtakes_green(waited: float, winner: int) -> None:
    # green fresh: 2.5 × 1 = 2.5; normal: 1 + waited/1200 reaches 2.5 at 1800 s; ties → earlier
    normal, green = tk(1, waited=waited), tk(2, priority="green")
    assert routing.choose([green, normal], HALL, {"biz": 1}, NOW).id == winner


def test_same_service_and_class_is_served_in_arrival_order() -> None:
    tickets = [tk(5, waited=10), tk(3, waited=30), tk(9, waited=20)]
    assert routing.choose(tickets, HALL, {"biz": 2}, NOW).id == 3
    assert ids(routing.rank(tickets, HALL, NOW)) == [3, 9, 5]


def test_equal_scores_go_to_the_earliest_queued() -> None:
    biz = tk(2, waited=1200)  # 1 + 1200/1200 = 2
    pension = tk(1, waited=900, service="pension")  # 1 + 900/900 = 2
    assert routing.choose([pension, biz], HALL, {"biz": 1, "pension": 1}, NOW) == biz


def test_equal_scores_and_queue_times_go_to_the_lowest_id() -> None:
    assert routing.choose([tk(8), tk(4), tk(6)], HALL, {"biz": 1}, NOW).id == 4


def test_services_without_skill_are_not_chosen() -> None:
    assert routing.choose([tk(1, waited=9000, service="medical")], HALL, {"biz": 1}, NOW) is None
    both = [tk(1, waited=9000, service="medical"), tk(2)]
    assert routing.choose(both, HALL, {"biz": 1}, NOW).id == 2


def test_skill_level_multiplies_the_score_across_services() -> None:
    biz, pension = tk(1), tk(2, waited=450, service="pension")  # biz 1.0, pension 1.5
    assert routing.choose([biz, pension], HALL, {"biz": 1, "pension": 1}, NOW) == pension
    assert routing.choose([biz, pension], HALL, {"biz": 2, "pension": 1}, NOW) == biz


def test_choose_of_nothing_is_none() -> None:
    assert routing.choose([], HALL, {"biz": 1}, NOW) is None


# --- rank ---------------------------------------------------------------------------


def test_rank_orders_appointments_then_score() -> None:
    tickets = [
        tk(1, waited=100),
        tk(2, priority="green"),
        tk(3, waited=5, priority="appointment", appointment_at=NOW - 1),
        tk(4, waited=2400),
    ]
    # 4: 3.0, 2: 2.5, 1: 1.083
    assert ids(routing.rank(tickets, HALL, NOW)) == [3, 4, 2, 1]


def test_rank_accepts_a_one_shot_iterable() -> None:
    tickets = [tk(1, waited=10), tk(2, waited=20)]
    assert ids(routing.rank(iter(tickets), HALL, NOW)) == [2, 1]


# --- best_agent ----------------------------------------------------------------------


SKILLS = {"W0101": {"consult": 1}, "W0102": {"consult": 2}, "W0103": {"consult": 1}}


def call(**kw: object) -> Ticket:
    return tk(1, service="consult", channel=Channel.PHONE, **kw)


def test_best_agent_is_the_highest_level() -> None:
    agents = [agent("W0101", 1.0), agent("W0102", 50.0), agent("W0103", 2.0)]
    assert routing.best_agent(call(), agents, SKILLS).virtual_number == "W0102"


def test_best_agent_among_equal_levels_is_the_longest_idle() -> None:
    agents = [agent("W0101", 30.0), agent("W0103", 20.0)]
    assert routing.best_agent(call(), agents, SKILLS).virtual_number == "W0103"


def test_best_agent_skips_agents_who_declined() -> None:
    agents = [agent("W0101", 30.0), agent("W0102", 50.0), agent("W0103", 20.0)]
    picked = routing.best_agent(call(declined_by=("W0102", "W0103")), agents, SKILLS)
    assert picked.virtual_number == "W0101"


def test_best_agent_offers_again_to_a_decliner_when_nobody_else_can_take_it() -> None:
    agents = [agent("W0101"), agent("W0001")]
    skills = {"W0101": {"consult": 1}, "W0001": {"biz": 2}}
    picked = routing.best_agent(call(declined_by=("W0101",)), agents, skills)
    assert picked is not None and picked.virtual_number == "W0101"


def test_best_agent_prefers_one_who_has_not_declined_over_a_higher_level() -> None:
    agents = [agent("W0102"), agent("W0103")]
    skills = {"W0102": {"consult": 2}, "W0103": {"consult": 1}}
    picked = routing.best_agent(call(declined_by=("W0102",)), agents, skills)
    assert picked is not None and picked.virtual_number == "W0103"


def test_best_agent_is_none_when_nobody_has_the_skill() -> None:
    agents = [agent("W0001")]
    assert routing.best_agent(call(), agents, {"W0001": {"biz": 2}}) is None


def test_best_agent_respects_a_target_workstation() -> None:
    agents = [agent("W0102"), agent("W0103")]
    picked = routing.best_agent(call(target_workstation="W0103"), agents, SKILLS)
    assert picked.virtual_number == "W0103"


# --- estimate ------------------------------------------------------------------------


def test_estimate_spreads_the_people_ahead_over_staffed_desks() -> None:
    assert routing.estimate(6, 3, 10.0) == WaitEstimate(ahead=6, minutes=20.0, staffed=3)


def test_estimate_rounds_to_one_decimal() -> None:
    assert routing.estimate(1, 3, 10.0) == WaitEstimate(ahead=1, minutes=3.3, staffed=3)


def test_estimate_with_nobody_staffed_counts_every_person_ahead() -> None:
    assert routing.estimate(4, 0, 7.5) == WaitEstimate(ahead=4, minutes=30.0, staffed=0)


def test_estimate_with_nobody_ahead_is_zero() -> None:
    assert routing.estimate(0, 2, 12.0) == WaitEstimate(ahead=0, minutes=0.0, staffed=2)
