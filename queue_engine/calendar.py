"""The working-day calendar: weekends, public holidays, and the weekend days worked in exchange (调休).

Every deadline in the project (promised completion, follow-up, work orders,
booking windows) counts working days through this one calendar.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta


@dataclass(frozen=True, slots=True)
class WorkCalendar:
    """Which days are worked: Monday–Friday, minus holidays, plus 调休 weekend days."""

    holidays: frozenset[date] = field(default_factory=frozenset)
    worked_weekends: frozenset[date] = field(default_factory=frozenset)
    weekend: frozenset[int] = frozenset({5, 6})

    @classmethod
    def of(
        cls, holidays: Iterable[date] = (), worked_weekends: Iterable[date] = ()
    ) -> WorkCalendar:
        """A calendar from lists of dates."""
        return cls(frozenset(holidays), frozenset(worked_weekends))

    def is_working_day(self, day: date) -> bool:
        """True for a day the centre works."""
        if day in self.holidays:
            return False
        if day in self.worked_weekends:
            return True
        return day.weekday() not in self.weekend

    def add_working_days(self, day: date, n: int) -> date:
        """The ``n``-th working day after ``day`` (``n`` = 0: ``day`` itself if worked, else the next)."""
        current = day
        if n == 0:
            while not self.is_working_day(current):
                current += timedelta(days=1)
            return current
        step = 1 if n > 0 else -1
        left = abs(n)
        while left:
            current += timedelta(days=step)
            if self.is_working_day(current):
                left -= 1
        return current

    def working_days_between(self, start: date, end: date) -> int:
        """Working days after ``start`` up to and including ``end`` (negative if end < start)."""
        if end < start:
            return -self.working_days_between(end, start)
        return sum(
            1 for i in range(1, (end - start).days + 1)
            if self.is_working_day(start + timedelta(days=i))
        )  # fmt: skip

    def working_days_from(self, start: date, count: int) -> list[date]:
        """The next ``count`` working days after ``start``."""
        days, current = [], start
        while len(days) < count:
            current += timedelta(days=1)
            if self.is_working_day(current):
                days.append(current)
        return days
