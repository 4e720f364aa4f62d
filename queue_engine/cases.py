"""Application cases (办件): opened after a service, moved through the service's flow to the end.

Each step records who moved it (a virtual number, or a department system's
key) and when; each change is an event, so the SMS notifier tells the
applicant, and 待取件 (ready for pickup) becomes a pickup notice. A citizen
finds a case by its number and the last four digits of the phone; a wrong
guess reveals nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .engine import Engine
from .errors import (
    CaseNotFoundError,
    CaseTransitionError,
    InvalidRequestError,
    TicketNotFoundError,
)
from .model import CaseFlow, TicketState
from .store.base import Tx

COLUMNS = (
    "id, hall, number, service, department, flow, ticket_id, phone, status, opened_at, opened_by,"
    " promised_day, closed_at"
)


@dataclass(frozen=True, slots=True)
class Case:
    """One application and where it stands."""

    id: int
    hall: str
    number: str
    service: str
    department: str
    flow: str
    ticket_id: int | None
    phone: str | None
    status: str
    opened_at: float
    opened_by: str | None
    promised_day: str
    closed_at: float | None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {name: getattr(self, name) for name in self.__slots__}


@dataclass(frozen=True, slots=True)
class Step:
    """One status change of a case."""

    status: str
    at: float
    by: str | None
    note: str | None


class Cases:
    """Case commands and queries for one hall's engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.hall = engine.hall

    def flow_of(self, service: str) -> CaseFlow:
        """The status flow a service's cases follow."""
        svc = self.hall.service(service)
        flows = self.hall.case_flows
        return flows.get(svc.case_flow if svc else "", next(iter(flows.values())))

    async def open(
        self, ticket_id: int, by: str, *, phone: str | None = None, note: str | None = None
    ) -> Case:
        """Open a case for a ticket the staffer has served (or is serving)."""
        now = self.engine.clock.now()

        def open_case(tx: Tx) -> Case:
            ticket = tx.get_ticket(ticket_id)
            if ticket is None or ticket.hall != self.hall.code:
                raise TicketNotFoundError(ticket=ticket_id)
            if ticket.state not in (TicketState.DONE, TicketState.SERVING):
                raise InvalidRequestError(
                    reason=f"ticket {ticket.number} has not been served",
                    reason_zh=f"号票{ticket.number}尚未办理",
                )
            if tx.execute("SELECT 1 FROM cases WHERE ticket_id=?", (ticket.id,)):
                raise InvalidRequestError(
                    reason="this ticket already has a case", reason_zh="该号票已开具办件"
                )
            svc = self.hall.service(ticket.service)
            assert svc is not None
            flow = self.flow_of(svc.code)
            day = datetime.fromtimestamp(now, self.engine.tz).date()
            promised = self.hall.calendar.add_working_days(day, svc.promise_days).isoformat()
            seq = tx.next_number(self.hall.code, "#case", day.isoformat())
            number = f"{self.hall.code.upper()[:4]}{day:%Y%m%d}{seq:04d}"
            tx.execute(
                f"INSERT INTO cases ({COLUMNS.replace('id, ', '', 1)}, updated_at)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,NULL,?)",
                (self.hall.code, number, svc.code, svc.department, flow.code, ticket.id,
                 phone or ticket.phone, flow.initial, now, by, promised, now),
            )  # fmt: skip
            case = self._get(tx, number)
            self._step(tx, case, flow.initial, now, by, note)
            self.engine.emit(tx, "case.opened", ticket, case=case.to_dict())
            return case

        return await self.engine.run(open_case)

    async def advance(self, number: str, to: str, by: str, note: str | None = None) -> Case:
        """Move a case to its next status (the flow says which are allowed)."""
        now = self.engine.clock.now()

        def advance(tx: Tx) -> Case:
            case = self._get(tx, number)
            flow = self.flow_of(case.service)
            if to not in flow.transitions.get(case.status, ()):
                raise CaseTransitionError(number=number, status=case.status, to=to)
            closed = now if flow.is_final(to) else None
            tx.execute(
                "UPDATE cases SET status=?, closed_at=?, updated_at=? WHERE id=?",
                (to, closed, now, case.id),
            )
            moved = self._get(tx, number)
            self._step(tx, moved, to, now, by, note)
            pickup = to == flow.pickup_status
            self.engine.emit(tx, "case.updated", case=moved.to_dict(), previous=case.status, by=by,
                             note=note, pickup=pickup)  # fmt: skip
            return moved

        return await self.engine.run(advance)

    async def query(self, number: str, phone_last4: str) -> tuple[Case, list[Step]]:
        """A citizen's look-up: the same answer for a wrong number and wrong digits."""

        def read(tx: Tx) -> tuple[Case, list[Step]]:
            rows = tx.execute(
                f"SELECT {COLUMNS} FROM cases WHERE number=? AND hall=?",
                (number.strip(), self.hall.code),
            )
            case = Case(*rows[0]) if rows else None
            if (
                case is None
                or not case.phone
                or not phone_last4
                or not case.phone.endswith(phone_last4)
            ):
                raise CaseNotFoundError()
            return case, self._steps(tx, case.id)

        return await self.engine.run(read)

    async def get(self, number: str) -> tuple[Case, list[Step]]:
        """A case and its steps (for staff and officers)."""
        return await self.engine.run(lambda tx: (c := self._get(tx, number), self._steps(tx, c.id)))

    async def list(
        self, *, department: str | None = None, open_only: bool = True, limit: int = 200
    ) -> list[Case]:
        """Cases, newest first, optionally of one department and still open."""
        sql = f"SELECT {COLUMNS} FROM cases WHERE hall=?"
        params: list[Any] = [self.hall.code]
        if department:
            sql += " AND department=?"
            params.append(department)
        if open_only:
            sql += " AND closed_at IS NULL"
        sql += " ORDER BY id DESC LIMIT ?"
        params.append(limit)
        return await self.engine.run(lambda tx: [Case(*r) for r in tx.execute(sql, params)])

    async def overdue(self) -> list[Case]:
        """Open cases past their promised date (承诺时限)."""
        today = self.engine.today()
        return await self.engine.run(
            lambda tx: [
                Case(*r)
                for r in tx.execute(
                    f"SELECT {COLUMNS} FROM cases WHERE hall=? AND closed_at IS NULL AND promised_day<?"
                    " ORDER BY promised_day",
                    (self.hall.code, today),
                )
            ]
        )

    async def for_phone(self, phone: str, limit: int = 20) -> list[Case]:
        """A caller's cases, newest first (for the hotline agent's history)."""
        return await self.engine.run(
            lambda tx: [
                Case(*r)
                for r in tx.execute(
                    f"SELECT {COLUMNS} FROM cases WHERE hall=? AND phone=? ORDER BY id DESC LIMIT ?",
                    (self.hall.code, phone, limit),
                )
            ]
        )

    def _get(self, tx: Tx, number: str) -> Case:
        rows = tx.execute(
            f"SELECT {COLUMNS} FROM cases WHERE number=? AND hall=?", (number, self.hall.code)
        )
        if not rows:
            raise CaseNotFoundError()
        return Case(*rows[0])

    def _steps(self, tx: Tx, case_id: int) -> list[Step]:
        rows = tx.execute(
            "SELECT status, at, by, note FROM case_steps WHERE case_id=? ORDER BY id", (case_id,)
        )
        return [Step(*r) for r in rows]

    @staticmethod
    def _step(tx: Tx, case: Case, status: str, at: float, by: str | None, note: str | None) -> None:
        tx.execute(
            "INSERT INTO case_steps (case_id, status, at, by, note) VALUES (?,?,?,?,?)",
            (case.id, status, at, by, note),
        )
