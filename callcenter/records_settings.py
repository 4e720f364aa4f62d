"""Reads the hall's calendar, booking, case-flow and rating tables (part of ``[hall]``)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

from queue_engine.calendar import WorkCalendar
from queue_engine.model import (
    DEFAULT_FLOW,
    BookingPolicy,
    CaseFlow,
    RatingPolicy,
    Service,
    WorkOrderPolicy,
)

from .config_checks import ConfigError, Table, check, only_keys, optional_table, positive, typed

BOOKING_INTS = ("slot_min", "capacity", "horizon_days", "no_shows_to_suspend", "no_show_window_days",
                "suspend_days", "reminder_hour")  # fmt: skip
BOOKING_FLOATS = ("cancel_before_h", "early_min", "grace_min")


def records(t: Table, services: Iterable[Service]) -> dict[str, Any]:
    """The HallConfig fields for calendar, booking, case_flows and rating."""
    flows = _flows(optional_table(t, "case_flows", "hall"))
    for i, svc in enumerate(services):
        check(
            svc.case_flow in flows,
            f"hall.services[{i}].case_flow",
            f"unknown case flow {svc.case_flow!r}",
        )
        check(svc.promise_days >= 0, f"hall.services[{i}].promise_days", "must be >= 0")
    return {
        "calendar": _calendar(optional_table(t, "calendar", "hall")),
        "booking": _booking(optional_table(t, "booking", "hall")),
        "case_flows": flows,
        "rating": _rating(optional_table(t, "rating", "hall")),
        "work_orders": _work_orders(optional_table(t, "work_orders", "hall")),
    }


def _dates(t: Table, key: str, path: str) -> list[date]:
    out = []
    for i, value in enumerate(typed(t, key, path, list, [])):
        if isinstance(value, date):
            out.append(value)
            continue
        try:
            out.append(date.fromisoformat(str(value)))
        except ValueError:
            raise ConfigError(
                f"{path}.{key}[{i}]", f"{value!r} is not a date (YYYY-MM-DD)"
            ) from None
    return out


def _calendar(t: Table) -> WorkCalendar:
    path = "hall.calendar"
    only_keys(t, {"holidays", "worked_weekends"}, path)
    holidays, worked = _dates(t, "holidays", path), _dates(t, "worked_weekends", path)
    for d in worked:
        check(d.weekday() >= 5, f"{path}.worked_weekends", f"{d} is not a Saturday or Sunday")
    return WorkCalendar.of(holidays, worked)


def _booking(t: Table) -> BookingPolicy:
    path = "hall.booking"
    only_keys(t, {*BOOKING_INTS, *BOOKING_FLOATS}, path)
    d = BookingPolicy()
    values: dict[str, Any] = {}
    for key in BOOKING_INTS:
        values[key] = typed(t, key, path, int, getattr(d, key))
        check(values[key] >= 0, f"{path}.{key}", "must be >= 0")
    for key in BOOKING_FLOATS:
        values[key] = float(typed(t, key, path, float, getattr(d, key)))
        check(values[key] >= 0, f"{path}.{key}", "must be >= 0")
    check(
        values["slot_min"] > 0 and values["capacity"] > 0, path, "slot_min and capacity must be > 0"
    )
    check(0 <= values["reminder_hour"] <= 23, f"{path}.reminder_hour", "must be 0–23")
    return BookingPolicy(**values)


def _flows(t: Table) -> dict[str, CaseFlow]:
    if not t:
        return {DEFAULT_FLOW.code: DEFAULT_FLOW}
    flows = {}
    for name, body in t.items():
        path = f"hall.case_flows.{name}"
        check(isinstance(body, dict), path, "must be a table of status = [next statuses]")
        pickup = body.get("pickup_status")
        steps = {k: v for k, v in body.items() if k != "pickup_status"}
        check(bool(steps), path, "needs at least one status")
        for status, nexts in steps.items():
            check(isinstance(nexts, list) and all(isinstance(n, str) for n in nexts),
                  f"{path}.{status}", "must be a list of statuses")  # fmt: skip
            for n in nexts:
                check(n in steps, f"{path}.{status}", f"unknown next status {n!r}")
        check(
            pickup is None or pickup in steps, f"{path}.pickup_status", f"unknown status {pickup!r}"
        )
        flows[name] = CaseFlow(name, {k: tuple(v) for k, v in steps.items()}, pickup)
    return flows


def _rating(t: Table) -> RatingPolicy:
    path = "hall.rating"
    only_keys(t, {"bad_at_or_below", "verify_days", "follow_up_days"}, path)
    d = RatingPolicy()
    bad = typed(t, "bad_at_or_below", path, int, d.bad_at_or_below)
    check(1 <= bad <= 4, f"{path}.bad_at_or_below", "must be 1–4")
    return RatingPolicy(
        bad,
        int(positive(t, "verify_days", path, d.verify_days)),
        int(positive(t, "follow_up_days", path, d.follow_up_days)),
    )


def _work_orders(t: Table) -> WorkOrderPolicy:
    path = "hall.work_orders"
    only_keys(t, {"days", "urgent_hours", "yellow_share"}, path)
    d = WorkOrderPolicy()
    days = dict(d.days) | dict(optional_table(t, "days", path))
    for kind, n in days.items():
        check(
            kind in d.days,
            f"{path}.days.{kind}",
            f"unknown work order type; expected one of {', '.join(d.days)}",
        )
        check(
            isinstance(n, int) and n >= 0,
            f"{path}.days.{kind}",
            "must be a whole number of working days",
        )
    share = float(typed(t, "yellow_share", path, float, d.yellow_share))
    check(0 < share < 1, f"{path}.yellow_share", "must be between 0 and 1")
    return WorkOrderPolicy(days, positive(t, "urgent_hours", path, d.urgent_hours), share)
