"""Rebuild the queue's state from the event log alone.

Every event carries the rows it changed, so folding the log in id order gives
back every ticket and workstation: the audit trail is complete by
construction, and a test can compare the fold with the tables.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from .model import Event, Ticket, Workstation


@dataclass
class Rebuilt:
    """Tickets by id and workstations by virtual number, as the log says they are."""

    tickets: dict[int, Ticket] = field(default_factory=dict)
    workstations: dict[str, Workstation] = field(default_factory=dict)

    def apply(self, event: Event) -> None:
        """Fold one event in."""
        ticket = event.ticket
        if ticket is not None:
            self.tickets[ticket.id] = ticket
        ws = event.workstation
        if ws is not None:
            self.workstations[ws.virtual_number] = ws


def rebuild(events: Iterable[Event]) -> Rebuilt:
    """The state the events describe, folded in order."""
    state = Rebuilt()
    for event in events:
        state.apply(event)
    return state
