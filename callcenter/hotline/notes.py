"""Call notes (通话记录): what agents write during a call, kept with the call's ticket.

Each save appends a row, so a supervisor can read every version; the newest row of a
ticket and author is that author's note, and an empty one clears it. The functions run
inside one of the engine's transactions (``engine.run(lambda tx: ...)``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from queue_engine import Channel, Ticket, Tx
from queue_engine.errors import ConflictError

MAX_CHARS = 2000
_SELECT = "SELECT ticket_id, virtual_number, text, at FROM call_notes"


class NotACallError(ConflictError):
    """Ticket {number} is a hall visit, not a call: call notes belong to phone and call-back tickets."""

    code = "not_a_call"
    zh = "号票{number}为大厅现场号，不是来电：通话记录只能记在电话或回拨号票上"


@dataclass(frozen=True, slots=True)
class Note:
    """One saved version of an author's note on a call."""

    ticket_id: int
    author: str
    text: str
    at: float

    def to_dict(self, name: str | None = None) -> dict[str, Any]:
        """JSON-ready, with the author's name when it is known."""
        return {"ticket_id": self.ticket_id, "author": self.author, "author_name": name,
                "text": self.text, "at": self.at}  # fmt: skip


def require_call(ticket: Ticket) -> None:
    """Refuse a hall ticket: only calls (phone, call-back) carry notes."""
    if ticket.channel == Channel.HALL:
        raise NotACallError(number=ticket.number)


def save(tx: Tx, hall: str, ticket_id: int, author: str, text: str, now: float) -> Note:
    """Keep ``text`` as the author's note on the call (no new row when it is unchanged)."""
    current = _newest(tx, hall, [ticket_id], author)
    if current and current[0].text == text:
        return current[0]
    tx.execute(
        "INSERT INTO call_notes (hall, ticket_id, virtual_number, text, at) VALUES (?,?,?,?,?)",
        (hall, ticket_id, author, text, now),
    )
    return Note(ticket_id, author, text, now)


def versions(tx: Tx, hall: str, ticket_id: int) -> list[Note]:
    """Every saved version of every author's note on the call, newest first."""
    rows = tx.execute(f"{_SELECT} WHERE hall=? AND ticket_id=? ORDER BY id DESC", (hall, ticket_id))
    return [Note(*r) for r in rows]


def current(tx: Tx, hall: str, ticket_ids: Sequence[int]) -> dict[int, list[Note]]:
    """Each call's notes as they stand (the newest version per author, cleared ones left
    out), newest first; calls without notes are absent."""
    out: dict[int, list[Note]] = {}
    for note in _newest(tx, hall, ticket_ids):
        if note.text:
            out.setdefault(note.ticket_id, []).append(note)
    return out


def _newest(tx: Tx, hall: str, ticket_ids: Sequence[int], author: str | None = None) -> list[Note]:
    if not ticket_ids:
        return []
    marks = ",".join("?" * len(ticket_ids))  # only placeholders go into the text
    by_author = " AND virtual_number=?" if author else ""
    newest = (
        f"SELECT MAX(id) FROM call_notes WHERE hall=? AND ticket_id IN ({marks}){by_author}"
        " GROUP BY ticket_id, virtual_number"
    )
    args = (hall, *ticket_ids, *([author] if author else []))
    return [
        Note(*r) for r in tx.execute(f"{_SELECT} WHERE id IN ({newest}) ORDER BY id DESC", args)
    ]
