"""The silent call's messages: Chinese first, English second, the sender's signature in 【】.

Each template says whether it is urgent: an urgent message goes out at once
at any hour; one that can wait is held through quiet hours.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Template:
    """A message in two languages and whether it may wait out quiet hours."""

    key: str
    zh: str
    en: str
    urgent: bool


TEMPLATES = {
    t.key: t
    for t in (
        Template(
            "issued",
            "您已取号{number}（{service_zh}），前面还有{ahead}人，预计等候约{wait}分钟。"
            "轮到您时将短信通知，进度查询：{link} 回复TD退订",
            "Ticket {number} ({service_en}): {ahead} ahead, about {wait} min. We will text "
            "you when it is your turn. Status: {link}",
            urgent=True,
        ),
        Template(
            "near_turn",
            "温馨提示：您的号票{number}前面还有{ahead}人，即将轮到您，请回到大厅留意叫号。",
            "Ticket {number}: {ahead} ahead of you. Your turn is near; please return to the hall.",
            urgent=True,
        ),
        Template(
            "called",
            "请{number}号到{window}号窗口办理（{service_zh}）。",
            "Ticket {number}, please go to window {window} ({service_en}).",
            urgent=True,
        ),
        Template(
            "recalled",
            "再次呼叫：请{number}号尽快到{window}号窗口办理，过号无效。",
            "Second call: ticket {number}, please go to window {window} now.",
            urgent=True,
        ),
        Template(
            "no_show",
            "您的号票{number}因多次呼叫未到已过号作废，如需办理请重新取号。",
            "Ticket {number} was called and missed, and is now void. Please take a new ticket.",
            urgent=False,
        ),
        Template(
            "transferred",
            "您的号票{number}已转至{service_zh}，前面还有{ahead}人，请留意叫号。",
            "Ticket {number} was moved to {service_en}; {ahead} ahead of you.",
            urgent=True,
        ),
        Template(
            "cancelled",
            "您的号票{number}（{service_zh}）已取消。",
            "Ticket {number} ({service_en}) has been cancelled.",
            urgent=False,
        ),
        Template(
            "expired",
            "今日办公时间已结束，您的号票{number}已失效，欢迎工作日再来办理。",
            "Office hours are over and ticket {number} has expired. "
            "Please come back on a working day.",
            urgent=False,
        ),
        Template(
            "rate_request",
            "感谢您办理{service_zh}。请为本次服务评价：{link} 或直接回复1-5（5非常满意，1非常不满意）。",
            "Thank you for visiting us ({service_en}). Rate the service: {link} or reply 1-5 "
            "(5 very satisfied, 1 very dissatisfied).",
            urgent=False,
        ),
        Template(
            "rated",
            "感谢您的评价（{level_zh}）。",
            "Thank you for your rating ({level_en}).",
            urgent=True,
        ),
        Template(
            "followup_reply",
            "关于您对{number}号服务的评价，处理结果：{reply}",
            "About your rating of ticket {number}: {reply}",
            urgent=False,
        ),
        Template(
            "appointment_booked",
            "预约成功：{day} {slot} {service_zh}，预约码{code}。请按时携带身份证到大厅取号机签到；"
            "如需取消请回复“取消{code}”。",
            "Booked: {service_en} on {day} at {slot}, code {code}. Check in at the kiosk with your ID; "
            "reply QX{code} to cancel.",
            urgent=True,
        ),
        Template(
            "appointment_reminder",
            "温馨提醒：您预约了{day}（{weekday_zh}）{slot}的{service_zh}，预约码{code}，请携带身份证准时签到。",
            "Reminder: {service_en} on {weekday_en} {day} at {slot}, code {code}. Bring your ID card.",
            urgent=False,
        ),
        Template(
            "appointment_cancelled",
            "您{day} {slot}的{service_zh}预约（{code}）已取消。",
            "Your booking {code} for {service_en} on {day} at {slot} is cancelled.",
            urgent=True,
        ),
        Template(
            "appointment_no_show",
            "您{day} {slot}的{service_zh}预约（{code}）未按时签到，已记为爽约。多次爽约将暂停预约资格。",
            "You missed booking {code} ({service_en}, {day} {slot}). Repeated no-shows suspend booking.",
            urgent=False,
        ),
        Template(
            "booking_suspended",
            "因多次预约未到，您的预约资格暂停至{until}，期间可现场取号办理。",
            "After repeated no-shows, booking is suspended until {until}; you can still take a ticket at the hall.",
            urgent=False,
        ),
        Template(
            "case_opened",
            "您的{service_zh}申请已受理，办件号{case}，承诺{promised}前办结。回复办件号可查询进度。",
            "Your {service_en} application is accepted, case {case}, due by {promised}. "
            "Reply with the case number for its status.",
            urgent=False,
        ),
        Template(
            "case_updated",
            "您的办件{case}（{service_zh}）进度：{status}。{note}",
            "Case {case} ({service_en}): now {status}. {note}",
            urgent=False,
        ),
        Template(
            "case_pickup",
            "您的办件{case}（{service_zh}）已办结待取件，请于{hours_zh}到{window}号窗口领取。{bring_zh}",
            "Case {case} ({service_en}) is ready. Collect it at window {window}, {hours_en}. {bring_en}",
            urgent=False,
        ),
        Template(
            "case_status",
            "办件{case}（{service_zh}）当前状态：{status}，承诺办结日期{promised}。",
            "Case {case} ({service_en}): {status}, due by {promised}.",
            urgent=True,
        ),
        Template(
            "appointment_cancelled_reply",
            "您{day}的预约（{code}）已取消。",
            "Your booking {code} on {day} is cancelled.",
            urgent=True,
        ),
        Template("notice", "{text_zh}", "{text_en}", urgent=True),
        Template(
            "workorder_opened",
            "您反映的{type_zh}诉求已受理，工单号{number}，我们将于{deadline}前答复您。",
            "Your {type_en} is registered as work order {number}; we will answer by {deadline}.",
            urgent=False,
        ),
        Template(
            "workorder_reply",
            "工单{number}办理结果：{reply}。请回复1满意、2基本满意、3不满意。",
            "Work order {number}: {reply}. Reply 1 satisfied, 2 fairly satisfied, 3 dissatisfied.",
            urgent=False,
        ),
        Template(
            "workorder_thanks",
            "感谢您的评价（{level_zh}）。{more_zh}",
            "Thank you ({level_en}). {more_en}",
            urgent=True,
        ),
        Template(
            "opted_out",
            "您已退订本中心短信通知，回复START或“订阅”可恢复。",
            "You will get no more texts from us. Reply START to subscribe again.",
            urgent=True,
        ),
        Template(
            "opted_in",
            "您已恢复接收本中心短信通知，回复TD退订。",
            "You will get our texts again. Reply TD or STOP to unsubscribe.",
            urgent=True,
        ),
        Template(
            "ticket_status",
            "号票{number}（{service_zh}）：{state_zh}{detail_zh}",
            "Ticket {number} ({service_en}): {state_en}{detail_en}",
            urgent=True,
        ),
        Template(
            "not_found",
            "未找到您名下的号票{number}，请核对号码（今日有效）。",
            "No ticket {number} under your number today; please check it.",
            urgent=True,
        ),
        Template(
            "help",
            "回复号票号码（如A023）或办件号查询进度，回复1-5评价服务，回复“取消+预约码”取消预约，"
            "回复TD退订，START恢复。",
            "Reply with a ticket or case number for its status, 1-5 to rate a service, "
            "QX and the booking code to cancel it, TD to unsubscribe, START to resubscribe.",
            urgent=True,
        ),
    )
}


def render(key: str, signature: str, bilingual: bool = True, **values: Any) -> str:
    """The message text: 【signature】 Chinese, then English when bilingual."""
    template = TEMPLATES[key]
    zh = template.zh.format(**values)
    if not bilingual:
        return f"【{signature}】{zh}"
    return f"【{signature}】{zh}\n{template.en.format(**values)}"
