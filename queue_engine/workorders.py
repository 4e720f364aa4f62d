"""Hotline work orders (工单): 受理 → 派单 → 签收 → 办理 → 反馈 → 回访 → 办结.

A work order carries a citizen's matter from the agent who took the call
through the department that handles it back to the citizen, who says
whether they are satisfied; 不满意 sends it back for re-handling. A
department may return it (退单) with a reason, ask for more time (延期,
granted by a supervisor); deadlines count working days by type, or hours
when urgent, and turn yellow, then red, then escalate.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time
from typing import Any

from .engine import Engine
from .errors import InvalidRequestError, WorkOrderNotFoundError, WorkOrderStateError
from .store.base import Tx

TYPES = {"consult": ("咨询", "enquiry"), "help": ("求助", "request for help"),
         "complaint": ("投诉", "complaint"), "report": ("举报", "report"),
         "suggestion": ("建议", "suggestion")}  # fmt: skip
STATES = ("受理", "派单", "签收", "办理", "反馈", "回访", "办结")
STATE_EN = dict(zip(STATES, ("accepted", "dispatched", "signed for", "in hand", "replied",
                             "follow-up", "closed"), strict=True))  # fmt: skip
SATISFACTION = {
    1: ("满意", "satisfied"),
    2: ("基本满意", "fairly satisfied"),
    3: ("不满意", "dissatisfied"),
}
COLUMNS = (
    "id, hall, number, type, urgent, description, phone, location, department, state, opened_at,"
    " opened_by, ticket_id, deadline_at, extension_days, extension_note, returns, reopens, reply,"
    " satisfaction, warned, escalated_at, closed_at"
)


@dataclass(frozen=True, slots=True)
class WorkOrder:
    """One citizen matter on its way to a satisfied end."""

    id: int
    hall: str
    number: str
    type: str
    urgent: bool
    description: str
    phone: str | None
    location: str | None
    department: str | None
    state: str
    opened_at: float
    opened_by: str
    ticket_id: int | None
    deadline_at: float
    extension_days: int | None
    extension_note: str | None
    returns: int
    reopens: int
    reply: str | None
    satisfaction: int | None
    warned: str | None
    escalated_at: float | None
    closed_at: float | None

    def warning(self, now: float, yellow_share: float) -> str | None:
        """'red' past the deadline, 'yellow' in its last share of time, else None."""
        if self.closed_at is not None:
            return None
        if now >= self.deadline_at:
            return "red"
        if self.deadline_at - now <= (self.deadline_at - self.opened_at) * yellow_share:
            return "yellow"
        return None

    def to_dict(self, now: float | None = None, yellow_share: float = 0.25) -> dict[str, Any]:
        """A JSON-ready dict, with names in both languages and the warning colour."""
        zh, en = TYPES.get(self.type, (self.type, self.type))
        out = {name: getattr(self, name) for name in self.__slots__}
        out |= {"type_zh": zh, "type_en": en, "state_en": STATE_EN.get(self.state, self.state)}
        if now is not None:
            out["warning"] = self.warning(now, yellow_share)
        return out


@dataclass(frozen=True, slots=True)
class OrderStep:
    """One change of a work order: its state after, the action, who and when."""

    state: str
    action: str
    at: float
    by: str | None
    note: str | None


class WorkOrders:
    """Work-order commands and queries for one hall's engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.hall = engine.hall
        self.policy = engine.hall.work_orders

    # --- intake ---------------------------------------------------------------------

    async def open(
        self,
        *,
        type: str,
        description: str,
        by: str,
        phone: str | None = None,
        location: str | None = None,
        department: str | None = None,
        urgent: bool = False,
        ticket_id: int | None = None,
    ) -> WorkOrder:
        """An agent takes the matter (受理); the caller gets the number by SMS."""
        if type not in TYPES:
            raise InvalidRequestError(
                reason=f"unknown work order type {type!r}", reason_zh=f"未知工单类型“{type}”"
            )
        self._department(department)
        text = _text(description, "description", "诉求内容")
        now = self.engine.clock.now()
        deadline = self.deadline(type, urgent, now)

        def open_order(tx: Tx) -> WorkOrder:
            day = datetime.fromtimestamp(now, self.engine.tz).date()
            seq = tx.next_number(self.hall.code, "#workorder", day.isoformat())
            number = f"GD{day:%Y%m%d}{seq:04d}"
            tx.execute(
                "INSERT INTO work_orders (hall, number, type, urgent, description, phone, location,"
                " department, state, opened_at, opened_by, ticket_id, deadline_at, updated_at)"
                " VALUES (?,?,?,?,?,?,?,?,'受理',?,?,?,?,?)",
                (self.hall.code, number, type, int(urgent), text, phone, location, department, now,
                 by, ticket_id, deadline, now),
            )  # fmt: skip
            order = self._get(tx, number)
            return self._record(tx, order, "受理", "open", by, None, now)

        return await self.engine.run(open_order)

    def deadline(self, type: str, urgent: bool, now: float) -> float:
        """Urgent: now plus the urgent hours; otherwise the end of the n-th working day."""
        if urgent:
            return now + self.policy.urgent_hours * 3600
        today = datetime.fromtimestamp(now, self.engine.tz).date()
        last = self.hall.calendar.add_working_days(today, self.policy.days.get(type, 5))
        return datetime.combine(last, time(23, 59, 59), self.engine.tz).timestamp()

    # --- the flow ---------------------------------------------------------------------

    async def dispatch(
        self, number: str, department: str, by: str, note: str | None = None
    ) -> WorkOrder:
        """派单: send it to a department (again, after a return)."""
        self._department(department, required=True)
        return await self._move(
            number, ("受理",), "派单", "dispatch", by, note, department=department
        )

    async def sign(self, number: str, by: str) -> WorkOrder:
        """签收: the department acknowledges it."""
        return await self._move(number, ("派单",), "签收", "sign", by, None)

    async def handle(self, number: str, by: str, note: str | None = None) -> WorkOrder:
        """办理: the department is working on it."""
        return await self._move(number, ("签收",), "办理", "handle", by, note)

    async def reply(self, number: str, by: str, reply: str) -> WorkOrder:
        """反馈: the department's answer; the caller gets it by SMS with a satisfaction request."""
        text = _text(reply, "reply", "办理结果")
        await self._move(number, ("办理",), "反馈", "reply", by, text, reply=text)
        # The reply goes out with the satisfaction request: the order now waits for the verdict.
        return await self._move(number, ("反馈",), "回访", "follow_up", "system", None)

    async def give_back(self, number: str, by: str, reason: str) -> WorkOrder:
        """退单: the department returns it with a reason; it waits to be dispatched again."""
        text = _text(reason, "reason", "退单理由")
        return await self._move(number, ("派单", "签收", "办理"), "受理", "return", by, text,
                                bump="returns", department=None)  # fmt: skip

    async def request_extension(self, number: str, by: str, days: int, reason: str) -> WorkOrder:
        """延期: the department asks for ``days`` more working days."""
        if not 1 <= days <= 30:
            raise InvalidRequestError(
                reason="an extension is 1 to 30 working days", reason_zh="延期应为1至30个工作日"
            )
        text = _text(reason, "reason", "延期理由")
        return await self._move(number, ("签收", "办理"), None, "extension_requested", by, text,
                                extension_days=days, extension_note=text)  # fmt: skip

    async def grant_extension(self, number: str, by: str, granted: bool) -> WorkOrder:
        """A supervisor grants (the deadline moves) or refuses the extension."""
        now = self.engine.clock.now()

        def decide(tx: Tx) -> WorkOrder:
            order = self._get(tx, number)
            if not order.extension_days:
                raise WorkOrderStateError(number=number, state=order.state, action="granted an extension",
                                          action_zh="批准延期")  # fmt: skip
            deadline = order.deadline_at
            if granted:
                start = datetime.fromtimestamp(order.deadline_at, self.engine.tz).date()
                last = self.hall.calendar.add_working_days(start, order.extension_days)
                deadline = datetime.combine(last, time(23, 59, 59), self.engine.tz).timestamp()
            tx.execute(
                "UPDATE work_orders SET deadline_at=?, extension_days=NULL, warned=NULL, updated_at=?"
                " WHERE id=?",
                (deadline, now, order.id),
            )
            action = "extension_granted" if granted else "extension_refused"
            return self._record(tx, self._get(tx, number), None, action, by, None, now)

        return await self.engine.run(decide)

    async def satisfaction(self, number: str, level: int, by: str = "citizen") -> WorkOrder:
        """回访: 1 满意 or 2 基本满意 close it (办结); 3 不满意 sends it back to 办理."""
        if level not in SATISFACTION:
            raise InvalidRequestError(
                reason="satisfaction is 1, 2 or 3", reason_zh="满意度应为1、2或3"
            )
        if level == 3:
            return await self._move(number, ("回访",), "办理", "reopen", by, "不满意", bump="reopens",
                                    satisfaction=level)  # fmt: skip
        return await self._move(number, ("回访",), "办结", "close", by, SATISFACTION[level][0],
                                satisfaction=level, closed=True)  # fmt: skip

    async def awaiting_satisfaction(self, phone: str) -> WorkOrder | None:
        """The caller's latest order waiting for their verdict, if any (for SMS replies 1–3)."""

        def read(tx: Tx) -> WorkOrder | None:
            rows = tx.execute(
                f"SELECT {COLUMNS} FROM work_orders WHERE hall=? AND phone=? AND state='回访'"
                " ORDER BY id DESC LIMIT 1",
                (self.hall.code, phone),
            )
            return _order(rows[0]) if rows else None

        return await self.engine.run(read)

    # --- time passing -------------------------------------------------------------------

    async def tick(self) -> int:
        """Yellow and red warnings once each, and escalation when a red order stays open."""
        now = self.engine.clock.now()

        def sweep(tx: Tx) -> int:
            rows = tx.execute(f"SELECT {COLUMNS} FROM work_orders WHERE hall=? AND closed_at IS NULL",
                              (self.hall.code,))  # fmt: skip
            changed = 0
            for row in rows:
                order = _order(row)
                colour = order.warning(now, self.policy.yellow_share)
                if colour is None or colour == order.warned:
                    continue
                escalate = colour == "red" and order.escalated_at is None
                tx.execute(
                    "UPDATE work_orders SET warned=?, escalated_at=CASE WHEN ? THEN ? ELSE escalated_at END,"
                    " updated_at=? WHERE id=?",
                    (colour, escalate, now, now, order.id),
                )
                action = "escalated" if escalate else f"warning_{colour}"
                self._record(tx, self._get(tx, order.number), None, action, "system", None, now)
                changed += 1
            return changed

        return await self.engine.run(sweep)

    # --- queries ----------------------------------------------------------------------

    async def get(self, number: str) -> tuple[WorkOrder, list[OrderStep]]:
        """A work order and its history."""

        def read(tx: Tx) -> tuple[WorkOrder, list[OrderStep]]:
            order = self._get(tx, number)
            rows = tx.execute(
                "SELECT state, action, at, by, note FROM work_order_steps WHERE order_id=? ORDER BY id",
                (order.id,),
            )
            return order, [OrderStep(*r) for r in rows]

        return await self.engine.run(read)

    async def list(
        self,
        *,
        department: str | None = None,
        open_only: bool = True,
        phone: str | None = None,
        limit: int = 200,
    ) -> list[WorkOrder]:
        """Work orders, newest first: of a department, of a caller, or all."""
        sql, params = f"SELECT {COLUMNS} FROM work_orders WHERE hall=?", [self.hall.code]
        for column, value in (("department", department), ("phone", phone)):
            if value:
                sql += f" AND {column}=?"
                params.append(value)
        if open_only:
            sql += " AND closed_at IS NULL"
        sql += " ORDER BY id DESC LIMIT ?"
        params.append(limit)
        return await self.engine.run(lambda tx: [_order(r) for r in tx.execute(sql, params)])

    async def counts(self) -> dict[str, Any]:
        """By state, overdue, and satisfaction: for the supervisor's dashboard."""
        now = self.engine.clock.now()

        def read(tx: Tx) -> dict[str, Any]:
            by_state = dict(tx.execute("SELECT state, COUNT(*) FROM work_orders WHERE hall=? GROUP BY state",
                                       (self.hall.code,)))  # fmt: skip
            overdue = tx.execute(
                "SELECT COUNT(*) FROM work_orders WHERE hall=? AND closed_at IS NULL AND deadline_at<?",
                (self.hall.code, now),
            )[0][0]
            sat = dict(tx.execute(
                "SELECT satisfaction, COUNT(*) FROM work_orders WHERE hall=? AND satisfaction IS NOT NULL"
                " GROUP BY satisfaction", (self.hall.code,)))  # fmt: skip
            rated = sum(sat.values())
            happy = sat.get(1, 0) + sat.get(2, 0)
            return {"by_state": {s: by_state.get(s, 0) for s in STATES}, "overdue": overdue,
                    "satisfaction": {str(k): sat.get(k, 0) for k in SATISFACTION},
                    "satisfied_rate": round(happy / rated, 3) if rated else None}  # fmt: skip

        return await self.engine.run(read)

    # --- inside transactions --------------------------------------------------------------

    async def _move(
        self,
        number: str,
        allowed: tuple[str, ...],
        to: str | None,
        action: str,
        by: str,
        note: str | None,
        *,
        bump: str | None = None,
        closed: bool = False,
        **fields: Any,
    ) -> WorkOrder:
        now = self.engine.clock.now()

        def move(tx: Tx) -> WorkOrder:
            order = self._get(tx, number)
            if order.state not in allowed:
                raise WorkOrderStateError(number=number, state=order.state, action=action,
                                          action_zh=ACTION_ZH.get(action, action))  # fmt: skip
            sets = {"state": to or order.state, "updated_at": now, **fields}
            if closed:
                sets["closed_at"] = now
            assignments = ", ".join(f"{k}=?" for k in sets)
            extra = f", {bump}={bump}+1" if bump else ""
            tx.execute(
                f"UPDATE work_orders SET {assignments}{extra} WHERE id=?",
                (*sets.values(), order.id),
            )
            return self._record(tx, self._get(tx, number), to, action, by, note, now)

        return await self.engine.run(move)

    def _record(
        self,
        tx: Tx,
        order: WorkOrder,
        state: str | None,
        action: str,
        by: str | None,
        note: str | None,
        now: float,
    ) -> WorkOrder:
        tx.execute(
            "INSERT INTO work_order_steps (order_id, state, action, at, by, note) VALUES (?,?,?,?,?,?)",
            (order.id, state or order.state, action, now, by, note),
        )
        self.engine.emit(tx, f"workorder.{action}", order=order.to_dict(now, self.policy.yellow_share),
                         by=by, note=note)  # fmt: skip
        return order

    def _get(self, tx: Tx, number: str) -> WorkOrder:
        rows = tx.execute(
            f"SELECT {COLUMNS} FROM work_orders WHERE number=? AND hall=?", (number, self.hall.code)
        )
        if not rows:
            raise WorkOrderNotFoundError(number=number)
        return _order(rows[0])

    def _department(self, department: str | None, *, required: bool = False) -> None:
        known = {d.code for d in self.hall.departments}
        if (department is None and required) or (
            department is not None and department not in known
        ):
            raise InvalidRequestError(
                reason=f"unknown department {department!r}", reason_zh=f"未知部门“{department}”"
            )


ACTION_ZH = {"dispatch": "派单", "sign": "签收", "handle": "办理", "reply": "反馈", "return": "退单",
             "follow_up": "回访",
             "extension_requested": "申请延期", "reopen": "重办", "close": "办结"}  # fmt: skip


def _order(row: tuple) -> WorkOrder:
    values = list(row)
    values[4] = bool(values[4])
    return WorkOrder(*values)


def _text(value: str, name: str, name_zh: str) -> str:
    value = (value or "").strip()
    if not value:
        raise InvalidRequestError(
            reason=f"{name} must not be empty", reason_zh=f"{name_zh}不能为空"
        )
    return value[:2000]


def hours_left(order: WorkOrder, now: float) -> float:
    """Hours until the deadline (negative when overdue)."""
    return round((order.deadline_at - now) / 3600, 1)
