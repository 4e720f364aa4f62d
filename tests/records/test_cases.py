"""Application cases (办件): opening, flows, SMS per step and pickup, citizen queries, overdue."""

from __future__ import annotations

import re

import pytest

from queue_engine import Bus, Engine, FakeClock, Store
from queue_engine.cases import Cases
from queue_engine.errors import CaseNotFoundError, CaseTransitionError, InvalidRequestError
from queue_engine.model import HallConfig
from sms.config import SmsConfig
from sms.views import Wiring, _answer
from tests.records.conftest import (
    DEPT_EXIT,
    DEPT_MARKET,
    HALL,
    KIOSK,
    P1,
    P2,
    PICKUP_NOTE,
    Api,
    at,
    bearer,
    events,
    outbox,
    serve,
)

LICENCE_PATH = ["审查", "核准", "制证", "待取件", "已取件"]


async def opened(engine: Engine, cases: Cases, service: str = "biz", phone: str | None = P1):  # type: ignore[no-untyped-def]
    ticket = await serve(engine, service, phone=phone)
    return ticket, await cases.open(ticket.id, "W0004")


# --- opening ----------------------------------------------------------------------------


async def test_a_case_opens_after_a_completed_ticket(
    engine: Engine, cases: Cases, store: Store, clock: FakeClock
) -> None:
    ticket, case = await opened(engine, cases)
    assert re.fullmatch(r"TEST\d{12}", case.number) and case.number == "TEST202605290001"
    assert (case.service, case.department, case.flow) == ("biz", "amr", "licence")
    assert (case.status, case.phone, case.ticket_id, case.opened_by) == (
        "受理",
        P1,
        ticket.id,
        "W0004",
    )
    assert case.promised_day == "2026-06-05"  # five working days after Friday 29 May
    assert case.closed_at is None and case.opened_at == clock.now()
    _, steps = await cases.get(case.number)
    assert [(s.status, s.by, s.at) for s in steps] == [("受理", "W0004", clock.now())]
    [event] = await events(store, "case.opened")
    assert event.payload["case"]["number"] == case.number and event.ticket_id == ticket.id
    _, second = await opened(engine, cases, "pension", phone=P2)
    assert second.number == "TEST202605290002" and second.department == "hrss"


async def test_the_promised_day_counts_working_days_across_the_holiday(
    engine: Engine, cases: Cases, clock: FakeClock
) -> None:
    clock.set(at(2026, 9, 30, 10))
    _, case = await opened(engine, cases)
    # Oct 8, 9, 10 (调休 Saturday), 12, 13
    assert case.promised_day == "2026-10-13"
    assert case.number == "TEST202609300001"


async def test_no_case_before_service_and_one_per_ticket(engine: Engine, cases: Cases) -> None:
    waiting = (await engine.take_ticket("biz", phone=P1)).ticket
    with pytest.raises(InvalidRequestError):
        await cases.open(waiting.id, "W0001")
    await engine.sign_in("W0001", "1")
    await engine.call_ticket("W0001", waiting.id)
    with pytest.raises(InvalidRequestError):  # called, not yet served
        await cases.open(waiting.id, "W0001")
    await engine.start_service("W0001")
    case = await cases.open(waiting.id, "W0001", phone=P2)  # while serving is fine
    assert case.phone == P2
    with pytest.raises(InvalidRequestError):
        await cases.open(waiting.id, "W0001")


# --- flows ------------------------------------------------------------------------------------


async def test_the_licence_flow_records_a_step_per_change(
    engine: Engine, cases: Cases, clock: FakeClock, store: Store
) -> None:
    _, case = await opened(engine, cases)
    with pytest.raises(CaseTransitionError):
        await cases.advance(case.number, "核准", "W0201")  # skips 审查
    with pytest.raises(CaseTransitionError):
        await cases.advance(case.number, "不存在", "W0201")
    expected = [("受理", "W0004", clock.now())]
    for i, status in enumerate(LICENCE_PATH):
        clock.advance(3600)
        by = "dept-market" if i % 2 else "W0201"
        moved = await cases.advance(case.number, status, by, note=f"第{i}步")
        expected.append((status, by, clock.now()))
        assert moved.status == status
        assert (moved.closed_at is not None) == (status == "已取件")
    got, steps = await cases.get(case.number)
    assert [(s.status, s.by, s.at) for s in steps] == expected
    assert steps[1].note == "第0步"
    assert got.closed_at == clock.now()
    with pytest.raises(CaseTransitionError):
        await cases.advance(case.number, "受理", "W0201")
    updates = await events(store, "case.updated")
    assert [e.payload["previous"] for e in updates] == ["受理", *LICENCE_PATH[:-1]]
    assert [e.payload["pickup"] for e in updates] == [False, False, False, True, False]
    with pytest.raises(CaseNotFoundError):
        await cases.advance("TEST209901010001", "审查", "W0201")


async def test_refusal_closes_the_case(engine: Engine, cases: Cases) -> None:
    _, case = await opened(engine, cases)
    await cases.advance(case.number, "审查", "W0201")
    refused = await cases.advance(case.number, "不予许可", "W0201")
    assert refused.closed_at is not None
    with pytest.raises(CaseTransitionError):
        await cases.advance(case.number, "核准", "W0201")
    assert await cases.list() == []
    assert [c.number for c in await cases.list(open_only=False)] == [case.number]


async def test_an_instant_case_is_done_in_one_step(engine: Engine, cases: Cases) -> None:
    _, case = await opened(engine, cases, "medical")
    assert (case.flow, case.status) == ("instant", "受理")
    with pytest.raises(CaseTransitionError):
        await cases.advance(case.number, "审查", "W0002")
    done = await cases.advance(case.number, "办结", "W0002")
    assert done.status == "办结" and done.closed_at is not None


async def test_cases_list_by_department(engine: Engine, cases: Cases) -> None:
    _, biz = await opened(engine, cases, "biz")
    _, pension = await opened(engine, cases, "pension", phone=P2)
    assert [c.number for c in await cases.list(department="amr")] == [biz.number]
    assert [c.number for c in await cases.list(department="hrss")] == [pension.number]
    assert [c.number for c in await cases.for_phone(P2)] == [pension.number]


# --- SMS ---------------------------------------------------------------------------------


async def test_each_change_sends_an_sms_and_pickup_sends_the_notice(
    engine: Engine, cases: Cases, store: Store, bus: Bus, hall: HallConfig
) -> None:
    _, case = await opened(engine, cases)
    for status in LICENCE_PATH:
        await cases.advance(
            case.number, status, "W0201", note="材料齐全" if status == "审查" else None
        )
    rows = [r for r in await outbox(store, bus, hall) if r["template"].startswith("case_")]
    assert [r["template"] for r in rows] == [
        "case_opened", "case_updated", "case_updated", "case_updated", "case_pickup", "case_updated",
    ]  # fmt: skip
    assert all(r["phone"] == P1 for r in rows)
    assert case.number in rows[0]["body"] and "2026-06-05" in rows[0]["body"]
    assert "审查" in rows[1]["body"] and "材料齐全" in rows[1]["body"]
    assert "核准" in rows[2]["body"] and "已取件" in rows[5]["body"]
    pickup = rows[4]["body"]
    assert case.number in pickup and "5号窗口" in pickup and PICKUP_NOTE in pickup
    # replaying the log writes nothing twice
    assert len(await outbox(store, bus, hall)) == len(await outbox(store, bus, hall))


async def test_a_case_without_a_phone_sends_nothing(
    engine: Engine, cases: Cases, store: Store, bus: Bus, hall: HallConfig
) -> None:
    _, case = await opened(engine, cases, phone=None)
    await cases.advance(case.number, "审查", "W0201")
    assert [r for r in await outbox(store, bus, hall) if r["template"].startswith("case_")] == []


async def test_the_pickup_notice_gives_the_hours(
    engine: Engine, cases: Cases, store: Store, bus: Bus, hall: HallConfig
) -> None:
    _, case = await opened(engine, cases)
    for status in LICENCE_PATH[:4]:
        await cases.advance(case.number, status, "W0201")
    [pickup] = await outbox(store, bus, hall, "case_pickup")
    assert "09:00" in pickup["body"] and "17:30" in pickup["body"]


# --- citizen queries ----------------------------------------------------------------------


async def test_query_by_number_and_the_last_four_digits(engine: Engine, cases: Cases) -> None:
    _, case = await opened(engine, cases)  # P1 ends in 0001
    await cases.advance(case.number, "审查", "W0201")
    found, steps = await cases.query(f" {case.number} ", "0001")
    assert found.status == "审查" and [s.status for s in steps] == ["受理", "审查"]
    errors = []
    for number, digits in ((case.number, "0002"), (case.number, "1000"), (case.number, ""),
                           ("TEST209901010001", "0001")):  # fmt: skip
        with pytest.raises(CaseNotFoundError) as err:
            await cases.query(number, digits)
        errors.append(
            (err.value.code, err.value.message_en, err.value.message_zh, err.value.details)
        )
    assert len(set(map(repr, errors))) == 1  # a wrong guess and an unknown number look the same


async def test_a_case_without_a_phone_cannot_be_queried(engine: Engine, cases: Cases) -> None:
    _, case = await opened(engine, cases, phone=None)
    with pytest.raises(CaseNotFoundError):
        await cases.query(case.number, "0001")


async def test_query_by_sms_reply_with_the_case_number(
    engine: Engine, cases: Cases, store: Store, clock: FakeClock
) -> None:
    _, case = await opened(engine, cases)
    wiring = Wiring(clock=clock, store=store, engines={"test": engine}, cases={"test": cases})
    config = SmsConfig(signature="测试政务")
    mine = await _answer(config, wiring, {"From": "13800000001", "Body": case.number.lower(),
                                          "MessageSid": "SM1"})  # fmt: skip
    assert case.number in mine and "受理" in mine and "2026-06-05" in mine
    # the same last four digits from another phone reveal nothing
    other = await _answer(config, wiring, {"From": "+8613900000001", "Body": case.number,
                                           "MessageSid": "SM2"})  # fmt: skip
    assert "受理" not in other and "2026-06-05" not in other


# --- overdue ---------------------------------------------------------------------------------


async def test_cases_past_their_promised_day_are_overdue(
    engine: Engine, cases: Cases, clock: FakeClock
) -> None:
    _, late = await opened(engine, cases)
    _, done = await opened(engine, cases, "medical", phone=P2)
    await cases.advance(done.number, "办结", "W0002")
    clock.set(at(2026, 6, 5, 17))  # the promised day itself
    assert await cases.overdue() == []
    clock.set(at(2026, 6, 6, 9))
    assert [c.number for c in await cases.overdue()] == [late.number]
    for status in LICENCE_PATH:
        await cases.advance(late.number, status, "W0201")
    assert await cases.overdue() == []


# --- the API ---------------------------------------------------------------------------------


async def _api_case(api: Api) -> str:
    ticket = await api.served("business_licence", "W0011", "10")
    staff = await api.login("W0011")
    r = await api.client.post(f"/api/halls/{HALL}/cases", json={"ticket_id": ticket.id},
                              headers=staff)  # fmt: skip
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["department"] == "market" and body["promised_day"] == "2026-06-03"
    assert body["phone"] != P1  # masked
    return body["number"]


async def test_only_the_cases_department_may_move_it(api: Api) -> None:
    number = await _api_case(api)
    url = f"/api/halls/{HALL}/cases/{number}"
    other_officer = await api.login("W0202")  # exit and entry
    for headers in (other_officer, bearer(DEPT_EXIT), bearer(KIOSK), await api.login("W0011")):
        r = await api.client.post(f"{url}/advance", json={"to": "审查"}, headers=headers)
        assert r.status_code == 403, r.text
    r = await api.client.get(url, headers=other_officer)
    assert r.status_code == 403
    officer = await api.login("W0201")  # market regulation
    r = await api.client.post(f"{url}/advance", json={"to": "审查"}, headers=officer)
    assert r.status_code == 200 and r.json()["status"] == "审查"
    r = await api.client.post(f"{url}/advance", json={"to": "核准", "note": "系统核准"},
                              headers=bearer(DEPT_MARKET))  # fmt: skip
    assert r.status_code == 200, r.text
    r = await api.client.post(f"{url}/advance", json={"to": "已取件"}, headers=bearer(DEPT_MARKET))
    assert r.status_code == 409 and r.json()["error"]["code"] == "case_transition"
    r = await api.client.get(url, headers=officer)
    assert [(s["status"], s["by"]) for s in r.json()["steps"]] == [
        ("受理", "W0011"), ("审查", "W0201"), ("核准", "dept-market"),
    ]  # fmt: skip
    listed = await api.client.get(f"/api/halls/{HALL}/cases", headers=bearer(DEPT_EXIT))
    assert listed.status_code == 200 and listed.json() == []


async def test_citizen_query_with_wrong_digits_is_rate_limited(api: Api) -> None:
    number = await _api_case(api)
    url = f"/api/cases/{number}"
    r = await api.client.get(url, params={"phone_last4": "0001"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "受理" and "by" not in body["steps"][0] and "opened_by" not in body
    assert body["pickup_window"] == "5"
    unknown = await api.client.get("/api/cases/WUHO209901010001", params={"phone_last4": "0001"})
    assert unknown.status_code == 404
    for digits in ("0002", "1234", "9999", "0000"):
        r = await api.client.get(url, params={"phone_last4": digits})
        assert r.status_code == 404 and r.json() == unknown.json()
    r = await api.client.get(url, params={"phone_last4": "0001"})  # even the right digits now
    assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limited"
    api.clock.advance(60)
    r = await api.client.get(url, params={"phone_last4": "0001"})
    assert r.status_code == 200
    r = await api.client.get(url, params={"phone_last4": "01"})
    assert r.status_code == 422
