"""Work orders (工单) through the API with each role, the caller's SMS, and time passing."""

from __future__ import annotations

import tomllib
import xml.etree.ElementTree as ET
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from callcenter.settings import parse_settings

from .conftest import CALLER, CONFIG, HALL, OFFICER, PUBLIC, SUPERVISOR, Hot

TZ = ZoneInfo("Asia/Shanghai")
AGENT = "W0101"
OTHER_OFFICER = "W0202"  # exit and entry: not the market bureau
BASE = f"/api/halls/{HALL}/work-orders"


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=TZ).timestamp()


class Desk:
    """Auth headers for each role and short helpers over the work-order API."""

    NAMES = {"agent": AGENT, "officer": OFFICER, "other": OTHER_OFFICER, "sup": SUPERVISOR}

    def __init__(self, hot: Hot) -> None:
        self.hot = hot
        self.h: dict[str, dict[str, str]] = {}

    async def login(self) -> Desk:
        """Sign everyone in (again: a session lasts 12 hours of the fake clock)."""
        self.h = {k: await self.hot.login(vn) for k, vn in self.NAMES.items()}
        return self

    async def later(self, when: str) -> None:
        """Move the clock to ``when`` (local time) and sign in afresh."""
        self.hot.clock.set(at(when))
        await self.login()

    async def post(
        self, who: str, path: str, json: Any = None, status: int = 200
    ) -> dict[str, Any]:
        r = await self.hot.client.post(BASE + path, json=json, headers=self.h[who])
        assert r.status_code == status, r.text
        return r.json()

    async def get(self, who: str, path: str = "", status: int = 200, **params: Any) -> Any:
        r = await self.hot.client.get(BASE + path, params=params, headers=self.h[who])
        assert r.status_code == status, r.text
        return r.json()

    async def open(self, **body: Any) -> dict[str, Any]:
        body = {"type": "complaint", "description": "小区路灯损坏两周未修", "phone": "13812345678",
                "location": "武侯区玉林北路12号", **body}  # fmt: skip
        return await self.post("agent", "", body, 201)


@pytest.fixture
async def desk(hot: Hot) -> Desk:
    return await Desk(hot).login()


async def sms_reply(hot: Hot, phone: str, body: str) -> str:
    params = {"AccountSid": hot.fake.account_sid, "ApiVersion": "2010-04-01", "MessageSid": f"SM{hash(body) & 0xFFFF:032x}",
              "From": phone, "To": "+15005550006", "Body": body, "NumMedia": "0", "SmsStatus": "received"}  # fmt: skip
    r = await hot.post_signed("/sms/inbound", params, url=PUBLIC + "/sms/inbound")
    assert r.status_code == 200, r.text
    return "".join(ET.fromstring(r.text).itertext())


async def test_the_whole_flow_with_roles_sms_and_satisfaction(hot: Hot, desk: Desk) -> None:
    # 受理: an agent takes the matter; an officer cannot.
    await desk.post("officer", "", {"type": "complaint", "description": "x"}, 403)
    order = await desk.open()
    number = order["number"]
    assert number.startswith("GD20260529") and order["state"] == "受理"
    assert order["type_zh"] == "投诉" and order["phone"] == "138****5678"  # masked in the API
    assert order["deadline_at"] == at("2026-06-12T23:59:59")  # ten working days for a complaint
    opened = await hot.until(lambda: hot.outbox("workorder_opened"))
    assert (
        opened[0]["phone"] == CALLER
        and number in opened[0]["body"]
        and "2026-06-12" in opened[0]["body"]
    )

    # Not yet any department's: officers cannot touch it.
    await desk.post("officer", f"/{number}/sign", status=403)
    # 派单 to the market regulation bureau.
    order = await desk.post(
        "agent", f"/{number}/dispatch", {"department": "market", "note": "请核查"}
    )
    assert (order["state"], order["department"]) == ("派单", "market")
    assert [o["number"] for o in await desk.get("officer")] == [number]
    assert await desk.get("other") == []
    await desk.post("other", f"/{number}/sign", status=403)  # another department's
    await desk.post("agent", f"/{number}/sign", status=403)  # not a case worker
    await desk.post("officer", f"/{number}/handle", {"note": "x"}, 409)  # sign first

    # 签收, 办理, 延期 (the supervisor grants).
    assert (await desk.post("officer", f"/{number}/sign"))["state"] == "签收"
    assert (await desk.post("officer", f"/{number}/handle", {"note": "已派员现场查看"}))[
        "state"
    ] == "办理"
    await desk.post("officer", f"/{number}/extension", {"days": 0, "reason": "x"}, 422)
    order = await desk.post("officer", f"/{number}/extension", {"days": 3, "reason": "需采购灯具"})
    assert (order["state"], order["extension_days"]) == ("办理", 3)
    await desk.post("agent", f"/{number}/extension/decision", {"granted": True}, 403)
    await desk.post("officer", f"/{number}/extension/decision", {"granted": True}, 403)
    order = await desk.post("sup", f"/{number}/extension/decision", {"granted": True})
    assert order["deadline_at"] == at("2026-06-17T23:59:59") and order["extension_days"] is None
    await desk.post("sup", f"/{number}/extension/decision", {"granted": True}, 409)  # nothing asked

    # 反馈 → 回访: the reply goes out by SMS with the satisfaction request.
    await desk.post("officer", f"/{number}/reply", {"reply": "  "}, 422)
    order = await desk.post("officer", f"/{number}/reply", {"reply": "已更换路灯"})
    assert (order["state"], order["reply"]) == ("回访", "已更换路灯")
    replies = await hot.until(lambda: hot.outbox("workorder_reply"))
    assert (
        replies[0]["phone"] == CALLER
        and "已更换路灯" in replies[0]["body"]
        and "3不满意" in replies[0]["body"]
    )

    # Another phone's "1" answers nothing of this order.
    await sms_reply(hot, "+8613900000000", "1")
    assert (await desk.get("agent", f"/{number}"))["state"] == "回访"
    # 不满意 reopens it.
    text = await sms_reply(hot, CALLER, "3")
    assert "不满意" in text and "重新办理" in text
    order = await desk.get("agent", f"/{number}")
    assert (order["state"], order["reopens"], order["satisfaction"]) == ("办理", 1, 3)
    # Handled again, replied, and this time 满意 closes it.
    await desk.post("officer", f"/{number}/reply", {"reply": "已加装两盏路灯"})
    await hot.until(lambda: _count(hot, "workorder_reply", 2))
    text = await sms_reply(hot, CALLER, "1")
    assert "满意" in text and "已办结" in text
    order = await desk.get("agent", f"/{number}")
    assert (order["state"], order["satisfaction"]) == ("办结", 1)
    assert order["closed_at"] == hot.clock.now() and order["warning"] is None
    actions = [s["action"] for s in order["steps"]]
    assert actions == ["open", "dispatch", "sign", "handle", "extension_requested", "extension_granted",
                       "reply", "follow_up", "reopen", "reply", "follow_up", "close"]  # fmt: skip
    assert await desk.get("officer") == []  # closed: off the open list
    assert [o["number"] for o in await desk.get("officer", open_only=False)] == [number]

    counts = await desk.get("sup", "/counts")
    assert counts["by_state"]["办结"] == 1 and counts["overdue"] == 0
    assert counts["satisfaction"] == {"1": 1, "2": 0, "3": 0} and counts["satisfied_rate"] == 1.0
    await desk.get("agent", "/counts", status=403)
    # The SMS went out through Twilio.
    await hot.until(lambda: len(hot.fake.messages) >= 3)
    assert all(m["to"] == CALLER for m in hot.fake.messages)


async def _count(hot: Hot, template: str, n: int) -> bool:
    return len(await hot.outbox(template)) >= n


async def test_return_and_redispatch(desk: Desk) -> None:
    number = (await desk.open(type="help", description="独居老人需要帮助"))["number"]
    await desk.post("agent", f"/{number}/dispatch", {"department": "market"})
    await desk.post("officer", f"/{number}/return", {"reason": ""}, 422)
    order = await desk.post("officer", f"/{number}/return", {"reason": "不属于本部门职责"})
    assert (order["state"], order["department"], order["returns"]) == ("受理", None, 1)
    await desk.post("officer", f"/{number}/sign", status=403)  # no longer theirs
    await desk.post("agent", f"/{number}/dispatch", {"department": "nowhere"}, 422)
    order = await desk.post("agent", f"/{number}/dispatch", {"department": "civil_affairs"})
    assert (order["state"], order["department"]) == ("派单", "civil_affairs")
    steps = (await desk.get("agent", f"/{number}"))["steps"]
    assert [s["action"] for s in steps] == ["open", "dispatch", "return", "dispatch"]
    assert steps[2]["note"] == "不属于本部门职责" and steps[2]["by"] == OFFICER


async def test_refused_extension_keeps_the_deadline(desk: Desk) -> None:
    order = await desk.open(type="report")
    number = order["number"]
    await desk.post("agent", f"/{number}/dispatch", {"department": "market"})
    await desk.post(
        "officer", f"/{number}/extension", {"days": 2, "reason": "x"}, 409
    )  # sign first
    await desk.post("officer", f"/{number}/sign")
    await desk.post("officer", f"/{number}/extension", {"days": 2, "reason": "需要调查"})
    after = await desk.post("sup", f"/{number}/extension/decision", {"granted": False})
    assert after["deadline_at"] == order["deadline_at"] and after["extension_days"] is None


async def test_agent_records_satisfaction_after_a_follow_up_call(desk: Desk) -> None:
    number = (await desk.open(type="suggestion", description="建议增加公交班次"))["number"]
    await desk.post("agent", f"/{number}/satisfaction", {"level": 2}, 409)  # not replied yet
    for step, body in (("dispatch", {"department": "market"}), ("sign", None), ("handle", {}),
                       ("reply", {"reply": "已转交交通部门研究"})):  # fmt: skip
        await desk.post("agent" if step == "dispatch" else "officer", f"/{number}/{step}", body)
    await desk.post("agent", f"/{number}/satisfaction", {"level": 4}, 422)
    await desk.post("officer", f"/{number}/satisfaction", {"level": 2}, 403)  # an agent's call
    order = await desk.post("agent", f"/{number}/satisfaction", {"level": 2})
    assert (order["state"], order["satisfaction"]) == ("办结", 2)


async def test_an_order_opened_on_a_call_takes_the_callers_number(hot: Hot, desk: Desk) -> None:
    auth = await hot.sign_in(AGENT, "H01")
    tid = await hot.queue_call("CAWO1")
    assert (await hot.act(AGENT, "accept", auth)).status_code == 200
    order = await desk.post(
        "agent", "", {"type": "consult", "description": "咨询公积金提取", "ticket_id": tid}, 201
    )
    assert order["ticket_id"] == tid and order["phone"] == "138****5678"
    opened = await hot.until(lambda: hot.outbox("workorder_opened"))
    assert opened[0]["phone"] == CALLER and opened[0]["ticket_id"] == tid


@pytest.mark.parametrize(
    ("kind", "urgent", "deadline"),
    [("consult", False, "2026-06-01T23:59:59"), ("help", False, "2026-06-05T23:59:59"),
     ("suggestion", False, "2026-06-05T23:59:59"), ("complaint", False, "2026-06-12T23:59:59"),
     ("report", False, "2026-06-12T23:59:59"), ("complaint", True, "2026-05-29T14:00:00")],
)  # fmt: skip
async def test_deadline_by_type_and_urgency(
    desk: Desk, kind: str, urgent: bool, deadline: str
) -> None:
    order = await desk.open(type=kind, urgent=urgent)
    assert order["deadline_at"] == at(deadline)


@pytest.mark.parametrize(("kind", "deadline"), [("consult", "2026-10-08"), ("help", "2026-10-13")])
async def test_deadline_skips_the_national_day_holiday(
    hot: Hot, desk: Desk, kind: str, deadline: str
) -> None:
    # Wed 2026-09-30: 1–2 and 5–7 October are holidays, Saturday 10 October is worked.
    await desk.later("2026-09-30T10:00:00")
    order = await desk.open(type=kind)
    assert order["deadline_at"] == at(f"{deadline}T23:59:59")


async def test_unknown_type_is_refused(desk: Desk) -> None:
    await desk.post("agent", "", {"type": "praise", "description": "x"}, 422)
    await desk.post(
        "agent", "", {"type": "consult", "description": "x", "department": "nowhere"}, 422
    )


async def test_yellow_red_and_escalation_as_time_passes(hot: Hot, desk: Desk) -> None:
    orders = hot.runtime.work_orders
    number = (await desk.open(type="consult"))["number"]  # due Mon 2026-06-01 23:59:59
    assert await orders.tick() == 0
    await desk.later("2026-05-31T23:00:00")  # more than a quarter of the time left
    assert await orders.tick() == 0
    await desk.later("2026-06-01T03:00:00")  # within the last quarter
    assert await orders.tick() == 1
    order = await desk.get("agent", f"/{number}")
    assert (order["warned"], order["warning"], order["escalated_at"]) == ("yellow", "yellow", None)
    assert await orders.tick() == 0  # once
    assert (await desk.get("sup", "/counts"))["overdue"] == 0
    await desk.later("2026-06-02T00:00:00")
    assert await orders.tick() == 1
    order = await desk.get("agent", f"/{number}")
    assert (order["warned"], order["warning"]) == ("red", "red")
    assert order["escalated_at"] == hot.clock.now()
    assert [s["action"] for s in order["steps"]][-2:] == ["warning_yellow", "escalated"]
    assert await orders.tick() == 0
    assert (await desk.get("sup", "/counts"))["overdue"] == 1
    # Closed orders carry no warning.
    for step, who, body in (("dispatch", "agent", {"department": "market"}), ("sign", "officer", None),
                            ("handle", "officer", {}), ("reply", "officer", {"reply": "已答复"})):  # fmt: skip
        await desk.post(who, f"/{number}/{step}", body)
    order = await desk.post("agent", f"/{number}/satisfaction", {"level": 1})
    assert order["warning"] is None
    assert (await desk.get("sup", "/counts"))["overdue"] == 0


async def test_granted_extension_clears_the_warning(hot: Hot, desk: Desk) -> None:
    orders = hot.runtime.work_orders
    number = (await desk.open(type="consult"))["number"]
    await desk.post("agent", f"/{number}/dispatch", {"department": "market"})
    await desk.post("officer", f"/{number}/sign")
    await desk.later("2026-06-01T12:00:00")
    assert await orders.tick() == 1
    await desk.post("officer", f"/{number}/extension", {"days": 2, "reason": "等待材料"})
    order = await desk.post("sup", f"/{number}/extension/decision", {"granted": True})
    assert order["deadline_at"] == at("2026-06-03T23:59:59")
    assert order["warned"] is None and order["warning"] is None


def test_work_order_deadlines_come_from_the_config() -> None:
    data = tomllib.loads(CONFIG.read_text(encoding="utf-8"))
    data["hall"]["work_orders"] = {"days": {"consult": 2, "help": 3, "complaint": 15, "report": 15,
                                            "suggestion": 10}, "urgent_hours": 2.0, "yellow_share": 0.2}  # fmt: skip
    hall = parse_settings(data, CONFIG).hall
    assert hall.work_orders.days["complaint"] == 15
    assert hall.work_orders.urgent_hours == 2.0 and hall.work_orders.yellow_share == 0.2
