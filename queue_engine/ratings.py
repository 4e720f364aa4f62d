"""Ratings (好差评): five levels per service, and the follow-up that closes a bad one.

One rating per ticket, tied to the ticket and the virtual number that served
it. A bad rating (不满意, 非常不满意) opens a follow-up (差评整改) with a
deadline in working days: it is verified, then fixed or explained, and the
reply goes to the citizen (the SMS notifier reads ``followup.closed``).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from .engine import Engine
from .errors import (
    AlreadyRatedError,
    FollowUpNotFoundError,
    FollowUpStateError,
    InvalidRequestError,
    NotRateableError,
    TicketNotFoundError,
)
from .model import Ticket, TicketState
from .store.base import Tx

LEVELS = {5: ("非常满意", "very satisfied"), 4: ("满意", "satisfied"), 3: ("基本满意", "fairly satisfied"),
          2: ("不满意", "dissatisfied"), 1: ("非常不满意", "very dissatisfied")}  # fmt: skip
FOLLOW_UP_ZH = {"open": "待核实", "verified": "已核实", "fixed": "已整改", "explained": "已解释"}
RATING_COLUMNS = "id, hall, ticket_id, virtual_number, service, level, comment, source, at"
FOLLOW_UP_COLUMNS = (
    "id, hall, rating_id, ticket_id, virtual_number, state, opened_at, verify_by, deadline,"
    " verified_at, verified_by, finding, resolution, reply, closed_at, closed_by"
)
PAD_WINDOW_S = 30 * 60  # a rating pad rates the window's last service of the past half hour


@dataclass(frozen=True, slots=True)
class Rating:
    """One citizen's verdict on one service."""

    id: int
    hall: str
    ticket_id: int
    virtual_number: str | None
    service: str
    level: int
    comment: str | None
    source: str
    at: float

    @property
    def is_bad(self) -> bool:
        """不满意 or 非常不满意 (with the default policy)."""
        return self.level <= 2

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict, with the level's names."""
        zh, en = LEVELS[self.level]
        return {name: getattr(self, name) for name in self.__slots__} | {
            "level_zh": zh,
            "level_en": en,
        }


@dataclass(frozen=True, slots=True)
class FollowUp:
    """A bad rating's follow-up: open → verified → fixed or explained (closed, replied)."""

    id: int
    hall: str
    rating_id: int
    ticket_id: int
    virtual_number: str | None
    state: str
    opened_at: float
    verify_by: str
    deadline: str
    verified_at: float | None = None
    verified_by: str | None = None
    finding: str | None = None
    resolution: str | None = None
    reply: str | None = None
    closed_at: float | None = None
    closed_by: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {name: getattr(self, name) for name in self.__slots__} | {
            "state_zh": FOLLOW_UP_ZH.get(self.state, self.state)
        }


class Ratings:
    """Rating and follow-up commands for one hall's engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.hall = engine.hall

    async def rate(
        self, ticket_id: int, level: int, comment: str | None = None, source: str = "pad"
    ) -> Rating:
        """Rate a completed service (once)."""
        return await self.engine.run(lambda tx: self._rate(tx, ticket_id, level, comment, source))

    async def rate_at_window(self, window: str, level: int, comment: str | None = None) -> Rating:
        """The rating pad at ``window``: rates the last service finished there in the last 30 min."""
        now = self.engine.clock.now()

        def rate(tx: Tx) -> Rating:
            rows = tx.execute(
                "SELECT t.id FROM tickets t LEFT JOIN ratings r ON r.ticket_id=t.id"
                " WHERE t.hall=? AND t.window_no=? AND t.state='done' AND t.ended_at>=?"
                " AND r.id IS NULL ORDER BY t.ended_at DESC LIMIT 1",
                (self.hall.code, window, now - PAD_WINDOW_S),
            )
            if not rows:
                raise InvalidRequestError(
                    reason=f"window {window} has no unrated service to rate",
                    reason_zh=f"{window}号窗口没有待评价的服务",
                )
            return self._rate(tx, rows[0][0], level, comment, "pad")

        return await self.engine.run(rate)

    async def rate_by_link(self, token: str, level: int, comment: str | None = None) -> Rating:
        """The one-time link sent by SMS after a service."""
        now = self.engine.clock.now()

        def rate(tx: Tx) -> Rating:
            rows = tx.execute("SELECT ticket_id, used_at FROM rating_links WHERE token=?", (token,))
            if not rows:
                raise TicketNotFoundError(ticket="")
            rating = self._rate(tx, rows[0][0], level, comment, "link")
            tx.execute("UPDATE rating_links SET used_at=? WHERE token=?", (now, token))
            return rating

        return await self.engine.run(rate)

    async def link_ticket(self, token: str) -> Ticket:
        """The ticket a rating link is for (the link page shows what is being rated)."""

        def read(tx: Tx) -> Ticket:
            rows = tx.execute("SELECT ticket_id FROM rating_links WHERE token=?", (token,))
            ticket = tx.get_ticket(rows[0][0]) if rows else None
            if ticket is None:
                raise TicketNotFoundError(ticket="")
            return ticket

        return await self.engine.run(read)

    async def rate_by_reply(self, phone: str, level: int) -> Rating | None:
        """An SMS reply 1–5: rates the phone's latest unrated service today, if any."""
        day = self.engine.today()

        def rate(tx: Tx) -> Rating | None:
            rows = tx.execute(
                "SELECT t.id FROM tickets t LEFT JOIN ratings r ON r.ticket_id=t.id"
                " WHERE t.hall=? AND t.phone=? AND t.day=? AND t.state='done' AND r.id IS NULL"
                " ORDER BY t.ended_at DESC LIMIT 1",
                (self.hall.code, phone, day),
            )
            return self._rate(tx, rows[0][0], level, None, "sms") if rows else None

        return await self.engine.run(rate)

    # --- follow-ups -----------------------------------------------------------------

    async def verify(self, follow_up_id: int, by: str, finding: str) -> FollowUp:
        """The supervisor has called the citizen back and checked what happened."""
        now = self.engine.clock.now()

        def verify(tx: Tx) -> FollowUp:
            f = self._follow_up(tx, follow_up_id)
            self._require_state(f, ("open",), "verified", "核实")
            tx.execute(
                "UPDATE follow_ups SET state='verified', verified_at=?, verified_by=?, finding=?,"
                " updated_at=? WHERE id=?",
                (now, by, _text(finding, "finding", "核实情况"), now, f.id),
            )
            done = self._follow_up(tx, f.id)
            self.engine.emit(tx, "followup.verified", follow_up=done.to_dict())
            return done

        return await self.engine.run(verify)

    async def close(
        self, follow_up_id: int, by: str, outcome: str, resolution: str, reply: str
    ) -> FollowUp:
        """Fixed (整改) or explained (解释说明): the reply goes to the citizen by SMS."""
        if outcome not in ("fixed", "explained"):
            raise InvalidRequestError(
                reason="outcome must be fixed or explained", reason_zh="处理结果应为整改或解释说明"
            )
        now = self.engine.clock.now()

        def close(tx: Tx) -> FollowUp:
            f = self._follow_up(tx, follow_up_id)
            self._require_state(f, ("verified",), "closed", "办结")
            tx.execute(
                "UPDATE follow_ups SET state=?, resolution=?, reply=?, closed_at=?, closed_by=?,"
                " updated_at=? WHERE id=?",
                (outcome, _text(resolution, "resolution", "整改措施"), _text(reply, "reply", "答复"),
                 now, by, now, f.id),
            )  # fmt: skip
            done = self._follow_up(tx, f.id)
            ticket = tx.get_ticket(done.ticket_id)
            self.engine.emit(tx, "followup.closed", ticket, follow_up=done.to_dict())
            return done

        return await self.engine.run(close)

    async def follow_up_context(self, f: FollowUp) -> dict[str, Any]:
        """What a supervisor needs beside a follow-up: the rating and the ticket it was about."""

        def read(tx: Tx) -> dict[str, Any]:
            rating = tx.execute(f"SELECT {RATING_COLUMNS} FROM ratings WHERE id=?", (f.rating_id,))
            ticket = tx.get_ticket(f.ticket_id)
            return {
                "rating": Rating(*rating[0]).to_dict() if rating else None,
                "number": ticket.number if ticket else None,
                "service": ticket.service if ticket else None,
                "window": ticket.window if ticket else None,
            }

        return await self.engine.run(read)

    async def link_used(self, token: str) -> bool:
        """Whether a rating link has been used."""
        rows = await self.engine.run(
            lambda tx: tx.execute("SELECT used_at FROM rating_links WHERE token=?", (token,))
        )
        return bool(rows and rows[0][0] is not None)

    async def follow_ups(self, states: tuple[str, ...] = ("open", "verified")) -> list[FollowUp]:
        """Follow-ups in ``states``, oldest first."""
        marks = ",".join("?" * len(states))

        def read(tx: Tx) -> list[FollowUp]:
            rows = tx.execute(
                f"SELECT {FOLLOW_UP_COLUMNS} FROM follow_ups WHERE hall=? AND state IN ({marks})"
                " ORDER BY id",
                (self.hall.code, *states),
            )
            return [FollowUp(*r) for r in rows]

        return await self.engine.run(read)

    # --- statistics ---------------------------------------------------------------

    async def stats(self, since_day: str, until_day: str) -> dict[str, list[dict[str, Any]]]:
        """Per staffer and per service: served, average wait and handle time, ratings, 好评率."""
        return await self.engine.run(lambda tx: self._stats(tx, since_day, until_day))

    def _stats(self, tx: Tx, since: str, until: str) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        for key, column in (("by_staff", "t.workstation"), ("by_service", "t.service")):
            rows = tx.execute(
                f"SELECT {column}, COUNT(*), AVG(t.called_at - t.arrived_at),"
                " AVG(t.ended_at - t.started_at),"
                " SUM(r.level=5), SUM(r.level=4), SUM(r.level=3), SUM(r.level=2), SUM(r.level=1)"
                " FROM tickets t LEFT JOIN ratings r ON r.ticket_id=t.id"
                " WHERE t.hall=? AND t.state='done' AND t.day BETWEEN ? AND ?"
                f" GROUP BY {column} ORDER BY {column}",
                (self.hall.code, since, until),
            )
            out[key] = [_stat_row(r, self.hall.rating.bad_at_or_below) for r in rows]
        return out

    # --- inside transactions ---------------------------------------------------------

    def _rate(self, tx: Tx, ticket_id: int, level: int, comment: str | None, source: str) -> Rating:
        if level not in LEVELS:
            raise InvalidRequestError(reason="level must be 1 to 5", reason_zh="评价等级应为1至5")
        ticket = tx.get_ticket(ticket_id)
        if ticket is None or ticket.hall != self.hall.code:
            raise TicketNotFoundError(ticket=ticket_id)
        if ticket.state != TicketState.DONE:
            raise NotRateableError(
                number=ticket.number, reason="the service is not finished", reason_zh="服务尚未办结"
            )
        if tx.execute("SELECT 1 FROM ratings WHERE ticket_id=?", (ticket.id,)):
            raise AlreadyRatedError(number=ticket.number)
        now = self.engine.clock.now()
        comment = (comment or "").strip()[:500] or None
        tx.execute(
            f"INSERT INTO ratings ({RATING_COLUMNS.replace('id, ', '', 1)}) VALUES (?,?,?,?,?,?,?,?)",
            (
                self.hall.code,
                ticket.id,
                ticket.workstation,
                ticket.service,
                level,
                comment,
                source,
                now,
            ),
        )
        rating = Rating(
            *tx.execute(f"SELECT {RATING_COLUMNS} FROM ratings WHERE ticket_id=?", (ticket.id,))[0]
        )
        self.engine.emit(tx, "rating.given", ticket, rating=rating.to_dict())
        if level <= self.hall.rating.bad_at_or_below:
            self._open_follow_up(tx, rating, ticket, now)
        return rating

    def _open_follow_up(self, tx: Tx, rating: Rating, ticket: Ticket, now: float) -> None:
        today = datetime.fromtimestamp(now, self.engine.tz).date()
        cal, policy = self.hall.calendar, self.hall.rating
        verify_by = cal.add_working_days(today, policy.verify_days).isoformat()
        deadline = cal.add_working_days(today, policy.follow_up_days).isoformat()
        tx.execute(
            "INSERT INTO follow_ups (hall, rating_id, ticket_id, virtual_number, state, opened_at,"
            " verify_by, deadline, updated_at) VALUES (?,?,?,?,'open',?,?,?,?)",
            (
                self.hall.code,
                rating.id,
                ticket.id,
                ticket.workstation,
                now,
                verify_by,
                deadline,
                now,
            ),
        )
        f = FollowUp(
            *tx.execute(
                f"SELECT {FOLLOW_UP_COLUMNS} FROM follow_ups WHERE rating_id=?", (rating.id,)
            )[0]
        )
        self.engine.emit(
            tx, "followup.opened", ticket, follow_up=f.to_dict(), rating=rating.to_dict()
        )

    def _follow_up(self, tx: Tx, follow_up_id: int) -> FollowUp:
        rows = tx.execute(
            f"SELECT {FOLLOW_UP_COLUMNS} FROM follow_ups WHERE id=? AND hall=?",
            (follow_up_id, self.hall.code),
        )
        if not rows:
            raise FollowUpNotFoundError(follow_up=follow_up_id)
        return FollowUp(*rows[0])

    @staticmethod
    def _require_state(f: FollowUp, allowed: tuple[str, ...], action: str, action_zh: str) -> None:
        if f.state not in allowed:
            raise FollowUpStateError(
                follow_up=f.id, state=f.state, state_zh=FOLLOW_UP_ZH.get(f.state, f.state),
                action=action, action_zh=action_zh,
            )  # fmt: skip


def create_link(tx: Tx, ticket_id: int, now: float) -> str:
    """A one-time rating link token for a completed ticket (the same one if asked again)."""
    rows = tx.execute("SELECT token FROM rating_links WHERE ticket_id=?", (ticket_id,))
    if rows:
        return rows[0][0]
    token = secrets.token_urlsafe(12)
    tx.execute(
        "INSERT INTO rating_links (token, ticket_id, created_at) VALUES (?,?,?)",
        (token, ticket_id, now),
    )
    return token


def overdue(f: FollowUp, today: date) -> bool:
    """True for an open follow-up past its deadline."""
    return f.closed_at is None and today.isoformat() > f.deadline


def _text(value: str, name: str, name_zh: str) -> str:
    value = (value or "").strip()
    if not value:
        raise InvalidRequestError(
            reason=f"{name} must not be empty", reason_zh=f"{name_zh}不能为空"
        )
    return value[:1000]


def _stat_row(r: tuple, bad_at_or_below: int) -> dict[str, Any]:
    key, served, wait_s, handle_s, *levels = r
    counts = {5 - i: int(n or 0) for i, n in enumerate(levels)}
    rated = sum(counts.values())
    good = sum(n for level, n in counts.items() if level > bad_at_or_below)
    return {
        "key": key, "served": served,
        "avg_wait_min": round(wait_s / 60, 1) if wait_s is not None else None,
        "avg_handle_min": round(handle_s / 60, 1) if handle_s is not None else None,
        "ratings": {str(k): v for k, v in counts.items()}, "rated": rated,
        "good_rate": round(good / rated, 3) if rated else None,
    }  # fmt: skip
