"""The engine's exceptions: one root, one class per illegal move.

Each class carries a stable ``code`` (for APIs) and bilingual messages fit to
show a user; the docstring is the English message template.
"""

from __future__ import annotations

from typing import Any, ClassVar


class QueueError(Exception):
    """Something went wrong in the queue engine."""

    code: ClassVar[str] = "queue_error"
    zh: ClassVar[str] = "排队系统错误"
    status: ClassVar[int] = 400

    def __init__(self, **details: Any) -> None:
        self.details = details
        super().__init__(self.message_en)

    @property
    def message_en(self) -> str:
        """The English message with details filled in."""
        return (self.__doc__ or self.code).strip().format(**self.details)

    @property
    def message_zh(self) -> str:
        """The Chinese message with details filled in."""
        return self.zh.format(**self.details)


class NotFoundError(QueueError):
    """Not found."""

    status = 404


class UnknownServiceError(NotFoundError):
    """There is no service '{service}' in this hall."""

    code = "unknown_service"
    zh = "本大厅没有事项“{service}”"


class UnknownPriorityError(NotFoundError):
    """There is no priority class '{priority}' in this hall."""

    code = "unknown_priority"
    zh = "本大厅没有优先类别“{priority}”"


class UnknownWindowError(NotFoundError):
    """There is no window or seat '{window}' in this hall."""

    code = "unknown_window"
    zh = "本大厅没有{window}号窗口或坐席"


class UnknownWorkstationError(NotFoundError):
    """There is no virtual work number '{virtual_number}' in this hall."""

    code = "unknown_workstation"
    zh = "本大厅没有虚拟工号{virtual_number}"


class TicketNotFoundError(NotFoundError):
    """Ticket {ticket} was not found."""

    code = "ticket_not_found"
    zh = "未找到号票{ticket}"


class ConflictError(QueueError):
    """The request conflicts with the current state."""

    status = 409


class IllegalTransitionError(ConflictError):
    """Ticket {number} is {state}; it cannot be {action}."""

    code = "illegal_transition"
    zh = "号票{number}当前状态为“{state_zh}”，不能{action_zh}"


class WorkstationStateError(ConflictError):
    """Work number {virtual_number} is {state}; it cannot {action}."""

    code = "workstation_state"
    zh = "工号{virtual_number}当前为“{state_zh}”，不能{action_zh}"


class NotSignedInError(WorkstationStateError):
    """Work number {virtual_number} is not signed in."""

    code = "not_signed_in"
    zh = "工号{virtual_number}未登录"


class AlreadySignedInError(WorkstationStateError):
    """Work number {virtual_number} is already signed in at window {window}."""

    code = "already_signed_in"
    zh = "工号{virtual_number}已在{window}号窗口登录"


class HeldTicketsError(WorkstationStateError):
    """Work number {virtual_number} still has tickets on hold ({numbers}); resume or transfer them first."""

    code = "tickets_on_hold"
    zh = "工号{virtual_number}仍有挂起的号票（{numbers}），请先恢复办理或转移"


class WindowTakenError(ConflictError):
    """Window {window} is already taken by work number {virtual_number}."""

    code = "window_taken"
    zh = "{window}号窗口已由工号{virtual_number}使用"


class WrongSeatKindError(ConflictError):
    """Work number {virtual_number} is signed in at a {kind}; it cannot {action}."""

    code = "wrong_seat_kind"
    zh = "工号{virtual_number}所在为{kind_zh}，不能{action_zh}"


class SkillMissingError(ConflictError):
    """Work number {virtual_number} has no skill for service '{service}'."""

    code = "skill_missing"
    zh = "工号{virtual_number}不具备办理“{service}”的技能"


class NotYourTicketError(ConflictError):
    """Ticket {number} is not held by work number {virtual_number}."""

    code = "not_your_ticket"
    zh = "号票{number}不属于工号{virtual_number}"


class TicketChangedError(ConflictError):
    """Work number {virtual_number} no longer holds ticket {ticket}: nothing was done."""

    code = "ticket_changed"
    zh = "工号{virtual_number}手上已不是号票{ticket}，未做任何操作"


class JustCalledError(ConflictError):
    """{number} was called {seconds} s ago: call-next does not finish it so soon (pressed twice?)."""

    code = "just_called"
    zh = "{number}号{seconds}秒前刚刚呼叫，“下一位”暂不办结（是否连按？）"


class NoTicketError(ConflictError):
    """Work number {virtual_number} holds no ticket."""

    code = "no_ticket"
    zh = "工号{virtual_number}当前没有号票"


class DailyLimitReachedError(ConflictError):
    """Service '{service}' has issued its {limit} tickets for today."""

    code = "daily_limit_reached"
    zh = "“{service}”今日号票已发完（{limit}张）"


class HallClosedError(ConflictError):
    """The hall is closed now."""

    code = "hall_closed"
    zh = "大厅当前不在办公时间"


class InvalidRequestError(QueueError):
    """The request is not valid: {reason}."""

    code = "invalid_request"
    zh = "请求无效：{reason_zh}"
    status = 422


class StoreError(QueueError):
    """The store failed: {reason}."""

    code = "store_error"
    zh = "数据存储出错：{reason}"
    status = 503


class AlreadyRatedError(ConflictError):
    """Ticket {number} has already been rated."""

    code = "already_rated"
    zh = "号票{number}已经评价过"


class NotRateableError(ConflictError):
    """Ticket {number} cannot be rated: {reason}."""

    code = "not_rateable"
    zh = "号票{number}不能评价：{reason_zh}"


class FollowUpStateError(ConflictError):
    """Follow-up {follow_up} is {state}; it cannot be {action}."""

    code = "follow_up_state"
    zh = "差评整改{follow_up}当前为“{state_zh}”，不能{action_zh}"


class FollowUpNotFoundError(NotFoundError):
    """Follow-up {follow_up} was not found."""

    code = "follow_up_not_found"
    zh = "未找到差评整改{follow_up}"


class BookingError(ConflictError):
    """The booking cannot be made: {reason}."""

    code = "booking_refused"
    zh = "无法预约：{reason_zh}"


class SlotFullError(BookingError):
    """The {slot} slot of {service} on {day} is full."""

    code = "slot_full"
    zh = "{day} {slot} 时段的“{service_zh}”已约满"


class AlreadyBookedError(BookingError):
    """You already have a booking for {service} on {day}."""

    code = "already_booked"
    zh = "您已预约{day}的“{service_zh}”，同一事项每天限约一次"


class BookingSuspendedError(BookingError):
    """Booking is suspended until {until} after repeated missed appointments."""

    code = "booking_suspended"
    zh = "因多次预约未到，{until}前暂停预约"


class AppointmentNotFoundError(NotFoundError):
    """No booking was found for that code or ID number today."""

    code = "appointment_not_found"
    zh = "未找到该预约（请核对预约码或身份证号）"


class CheckInError(ConflictError):
    """Check-in is not possible: {reason}."""

    code = "check_in_refused"
    zh = "无法签到：{reason_zh}"


class CaseNotFoundError(NotFoundError):
    """No case matches that number and phone."""

    code = "case_not_found"
    zh = "未找到该办件（请核对办件号和手机尾号）"


class CaseTransitionError(ConflictError):
    """Case {number} is {status}; it cannot move to {to}."""

    code = "case_transition"
    zh = "办件{number}当前为“{status}”，不能转为“{to}”"


class WorkOrderNotFoundError(NotFoundError):
    """Work order {number} was not found."""

    code = "work_order_not_found"
    zh = "未找到工单{number}"


class WorkOrderStateError(ConflictError):
    """Work order {number} is {state}; it cannot be {action}."""

    code = "work_order_state"
    zh = "工单{number}当前为“{state}”，不能{action_zh}"
