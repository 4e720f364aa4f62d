"""Clocks the engine is given: it never reads wall time itself."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """A source of the current time as POSIX seconds."""

    def now(self) -> float:
        """Seconds since the epoch."""
        ...


class SystemClock:
    """The wall clock, for production."""

    def now(self) -> float:
        """Seconds since the epoch, from the operating system."""
        return time.time()


class FakeClock:
    """A clock that moves only when told to, for tests and simulations."""

    def __init__(self, start: float = 1_780_000_000.0) -> None:
        self._now = start

    def now(self) -> float:
        """The time the clock was last set to."""
        return self._now

    def advance(self, seconds: float) -> float:
        """Move time forward and return the new time."""
        if seconds < 0:
            raise ValueError("a clock does not go backwards")
        self._now += seconds
        return self._now

    def set(self, when: float) -> None:
        """Jump to an absolute time (forwards only)."""
        self.advance(when - self._now)
