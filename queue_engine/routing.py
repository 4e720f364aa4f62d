"""One routing policy for pull (windows) and push (hotline seats), DESIGN §5.

Among the waiting tickets a workstation is skilled for: tickets transferred to
it come first, then appointments whose slot has begun (earliest slot first),
then the highest score. The score is

    class weight × skill level × (1 + waited / target wait)

so a priority class goes ahead of a fresh normal ticket, but a normal ticket
that has waited long enough overtakes it: no class starves. Within one
service and class the score only grows with waiting time, so call order is
arrival order. Ties go to the earliest arrival.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from .model import HallConfig, Ticket, WaitEstimate, Workstation

APPOINTMENT = "appointment"


def score(ticket: Ticket, hall: HallConfig, level: int, now: float) -> float:
    """How urgently ``ticket`` should be served now by a workstation of skill ``level``."""
    service = hall.service(ticket.service)
    pclass = hall.priority_class(ticket.priority)
    target_s = (service.target_wait_min if service else 15.0) * 60.0
    weight = pclass.weight if pclass else 1.0
    waited = max(0.0, now - ticket.queued_at)
    return weight * max(1, level) * (1.0 + waited / target_s)


def slot_begun(ticket: Ticket, now: float) -> bool:
    """True for an appointment ticket whose booked slot has started."""
    return ticket.appointment_at is not None and ticket.appointment_at <= now


def sort_key(
    ticket: Ticket, hall: HallConfig, skills: Mapping[str, int], now: float, vn: str | None
) -> tuple[int, float, float, int]:
    """The routing order as a sort key: smaller is served first."""
    if vn is not None and ticket.target_workstation == vn:
        return (0, ticket.queued_at, ticket.queued_at, ticket.id)
    if ticket.priority == APPOINTMENT and slot_begun(ticket, now):
        return (1, ticket.appointment_at or 0.0, ticket.queued_at, ticket.id)
    level = skills.get(ticket.service, 1)
    return (2, -score(ticket, hall, level, now), ticket.queued_at, ticket.id)


def choose(
    candidates: Iterable[Ticket],
    hall: HallConfig,
    skills: Mapping[str, int],
    now: float,
    vn: str | None = None,
) -> Ticket | None:
    """The ticket the policy serves next among ``candidates``, or None."""
    eligible = [
        t
        for t in candidates
        if t.service in skills and (t.target_workstation is None or t.target_workstation == vn)
    ]
    if not eligible:
        return None
    return min(eligible, key=lambda t: sort_key(t, hall, skills, now, vn))


def rank(tickets: Iterable[Ticket], hall: HallConfig, now: float) -> list[Ticket]:
    """Waiting tickets of one queue in the order the policy would serve them."""
    tickets = list(tickets)
    flat = {t.service: 1 for t in tickets}
    return sorted(tickets, key=lambda t: sort_key(t, hall, flat, now, None))


def best_agent(
    ticket: Ticket, agents: Sequence[Workstation], skills_of: Mapping[str, Mapping[str, int]]
) -> Workstation | None:
    """The free agent to offer a call to: skilled; first those who have not declined it
    (so a call every agent declined is offered again rather than stranded), then the
    highest skill level, then the longest idle."""
    fit = [
        a
        for a in agents
        if ticket.service in skills_of.get(a.virtual_number, {})
        and (ticket.target_workstation in (None, a.virtual_number))
    ]
    if not fit:
        return None
    return min(
        fit,
        key=lambda a: (
            a.virtual_number in ticket.declined_by,
            -skills_of[a.virtual_number][ticket.service],
            a.since,
        ),
    )


def estimate(ahead: int, staffed: int, handle_min: float) -> WaitEstimate:
    """Expected wait: people ahead spread over the staffed workstations, times handle time."""
    per_desk = ahead / staffed if staffed else float(ahead)
    return WaitEstimate(ahead=ahead, minutes=round(per_desk * handle_min, 1), staffed=staffed)
