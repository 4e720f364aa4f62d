"""Ratings (好差评): once per service, pad / link / SMS reply, follow-ups and statistics."""

from __future__ import annotations

import asyncio
from datetime import date

import pytest

from queue_engine import Bus, Engine, FakeClock, Store
from queue_engine.errors import (
    AlreadyRatedError,
    FollowUpNotFoundError,
    FollowUpStateError,
    InvalidRequestError,
    NotRateableError,
    TicketNotFoundError,
)
from queue_engine.model import HallConfig, Ticket
from queue_engine.ratings import Ratings, create_link, overdue
from sms.config import SmsConfig
from sms.views import Wiring, _answer
from tests.records.conftest import (
    HALL,
    KIOSK,
    P1,
    P2,
    P3,
    RATINGPAD5,
    Api,
    at,
    bearer,
    events,
    outbox,
    serve,
)

# --- rating a service ----------------------------------------------------------------------


async def test_a_service_is_rated_once(ratings: Ratings, engine: Engine, store: Store) -> None:
    ticket = await serve(engine, "biz", vn="W0001", window="1")
    rating = await ratings.rate(ticket.id, 5, "  办事很快  ")
    assert (rating.ticket_id, rating.virtual_number, rating.service) == (ticket.id, "W0001", "biz")
    assert (rating.level, rating.comment, rating.source) == (5, "办事很快", "pad")
    assert rating.to_dict()["level_zh"] == "非常满意" and not rating.is_bad
    with pytest.raises(AlreadyRatedError):
        await ratings.rate(ticket.id, 1)
    [event] = await events(store, "rating.given")
    assert event.ticket_id == ticket.id and event.payload["rating"]["level"] == 5
    assert await events(store, "followup.opened") == []


async def test_only_a_finished_service_can_be_rated(ratings: Ratings, engine: Engine) -> None:
    waiting = (await engine.take_ticket("biz", phone=P1)).ticket
    with pytest.raises(NotRateableError):
        await ratings.rate(waiting.id, 5)
    serving = await serve(engine, "pension", phone=P2, complete=False)
    with pytest.raises(NotRateableError):
        await ratings.rate(serving.id, 5)
    with pytest.raises(TicketNotFoundError):
        await ratings.rate(987_654, 5)


@pytest.mark.parametrize("level", [0, 6, -1, 10])
async def test_levels_are_one_to_five(ratings: Ratings, engine: Engine, level: int) -> None:
    ticket = await serve(engine)
    with pytest.raises(InvalidRequestError):
        await ratings.rate(ticket.id, level)
    assert (await ratings.rate(ticket.id, 3)).level == 3  # nothing was stored


async def test_the_rating_pad_rates_the_windows_latest_unrated_service(
    ratings: Ratings, engine: Engine, clock: FakeClock
) -> None:
    first = await serve(engine, "biz", vn="W0001", window="1", phone=P1)
    clock.advance(300)
    second = await serve(engine, "biz", vn="W0001", window="1", phone=P2)
    clock.advance(60)
    elsewhere = await serve(engine, "pension", vn="W0002", window="2", phone=P3)
    assert (await ratings.rate_at_window("1", 4)).ticket_id == second.id
    assert (await ratings.rate_at_window("1", 5)).ticket_id == first.id
    with pytest.raises(InvalidRequestError):
        await ratings.rate_at_window("1", 5)
    assert (await ratings.rate_at_window("2", 5)).ticket_id == elsewhere.id
    with pytest.raises(InvalidRequestError):
        await ratings.rate_at_window("3", 5)


async def test_the_rating_pad_only_reaches_back_half_an_hour(
    ratings: Ratings, engine: Engine, clock: FakeClock
) -> None:
    old = await serve(engine, "biz", vn="W0001", window="1")
    clock.advance(30 * 60)
    assert (await ratings.rate_at_window("1", 4)).ticket_id == old.id
    older = await serve(engine, "biz", vn="W0001", window="1", phone=P2)
    clock.advance(30 * 60 + 1)
    with pytest.raises(InvalidRequestError):
        await ratings.rate_at_window("1", 4)
    assert (await ratings.rate(older.id, 4)).source == "pad"


async def test_a_one_time_link_rates_once(
    ratings: Ratings, engine: Engine, store: Store, clock: FakeClock
) -> None:
    ticket = await serve(engine)
    token = await store.run(lambda tx: create_link(tx, ticket.id, clock.now()))
    assert await store.run(lambda tx: create_link(tx, ticket.id, clock.now())) == token
    assert (await ratings.link_ticket(token)).id == ticket.id
    rating = await ratings.rate_by_link(token, 4, "还行")
    assert (rating.ticket_id, rating.source, rating.level) == (ticket.id, "link", 4)
    used = await store.run(
        lambda tx: tx.execute("SELECT used_at FROM rating_links WHERE token=?", (token,))
    )
    assert used[0][0] == clock.now()
    with pytest.raises(AlreadyRatedError):
        await ratings.rate_by_link(token, 1)
    with pytest.raises(TicketNotFoundError):
        await ratings.rate_by_link("no-such-token", 5)
    with pytest.raises(TicketNotFoundError):
        await ratings.link_ticket("no-such-token")


async def test_the_rate_request_sms_carries_a_working_link(
    ratings: Ratings, engine: Engine, store: Store, bus: Bus, hall: HallConfig
) -> None:
    ticket = await serve(engine, phone=P1)
    [sms] = await outbox(store, bus, hall, "rate_request")
    assert sms["phone"] == P1 and sms["ticket_id"] == ticket.id
    token = sms["body"].split("https://hall.example/r/")[1].split()[0]
    assert (await ratings.rate_by_link(token, 5)).ticket_id == ticket.id


async def test_an_sms_reply_rates_the_phones_latest_unrated_service_today(
    ratings: Ratings, engine: Engine, store: Store, clock: FakeClock
) -> None:
    wiring = Wiring(clock=clock, store=store, engines={"test": engine}, ratings={"test": ratings})
    config = SmsConfig(signature="测试政务")
    sid = iter(range(100))

    async def reply(phone: str, body: str) -> str:
        return await _answer(
            config, wiring, {"From": phone, "Body": body, "MessageSid": f"SM{next(sid)}"}
        )

    biz = await serve(engine, "biz", phone=P1)
    clock.advance(600)
    pension = await serve(engine, "pension", phone=P1)
    other = await serve(engine, "medical", phone=P2)
    assert "满意" in await reply("13800000001", "4")
    assert "满意" in await reply("13800000001", " 2。")
    rated = await store.run(
        lambda tx: tx.execute("SELECT ticket_id, level, source FROM ratings ORDER BY id")
    )
    assert [tuple(r) for r in rated] == [(pension.id, 4, "sms"), (biz.id, 2, "sms")]
    assert "回复1-5" in await reply("13800000001", "5")  # nothing left: the help text
    assert len(await events(store, "followup.opened")) == 1  # the 2 was a bad rating
    assert (await ratings.rate(other.id, 5)).ticket_id == other.id


async def test_an_sms_reply_does_not_rate_an_earlier_days_service(
    ratings: Ratings, engine: Engine, clock: FakeClock
) -> None:
    ticket = await serve(engine, phone=P1)
    clock.set(at(2026, 6, 1, 10))
    assert await ratings.rate_by_reply(P1, 5) is None
    assert (await ratings.rate(ticket.id, 5)).source == "pad"


# --- follow-ups -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("when", "verify_by", "deadline"),
    [
        (at(2026, 5, 29, 10), "2026-06-01", "2026-06-05"),  # Friday: over the weekend
        (at(2026, 9, 30, 10), "2026-10-08", "2026-10-13"),  # over 国庆 and the 调休 Saturday
        (at(2026, 9, 18, 10), "2026-09-20", "2026-09-24"),  # Friday before the worked Sunday
    ],
)
async def test_a_bad_rating_opens_a_follow_up_with_working_day_deadlines(
    ratings: Ratings, engine: Engine, clock: FakeClock, store: Store,
    when: float, verify_by: str, deadline: str,
) -> None:  # fmt: skip
    clock.set(when)
    ticket = await serve(engine, "biz", vn="W0001", window="1")
    await ratings.rate(ticket.id, 2, "等太久")
    [f] = await ratings.follow_ups()
    assert (f.state, f.ticket_id, f.virtual_number) == ("open", ticket.id, "W0001")
    assert (f.verify_by, f.deadline) == (verify_by, deadline)
    [event] = await events(store, "followup.opened")
    assert event.payload["follow_up"]["deadline"] == deadline
    assert event.payload["rating"]["level_zh"] == "不满意"


@pytest.mark.parametrize(("level", "opens"), [(1, True), (2, True), (3, False), (4, False)])
async def test_only_the_two_lowest_levels_open_a_follow_up(
    ratings: Ratings, engine: Engine, level: int, opens: bool
) -> None:
    ticket = await serve(engine)
    rating = await ratings.rate(ticket.id, level)
    assert rating.is_bad is opens
    assert len(await ratings.follow_ups()) == (1 if opens else 0)


async def test_verify_then_close_sends_the_reply_to_the_citizen(
    ratings: Ratings, engine: Engine, clock: FakeClock, store: Store, bus: Bus, hall: HallConfig
) -> None:
    ticket = await serve(engine, "biz", vn="W0001", window="1", phone=P3)
    await ratings.rate(ticket.id, 1, "态度差")
    [f] = await ratings.follow_ups()
    clock.advance(3600)
    verified = await ratings.verify(f.id, "W0900", " 已电话回访 ")
    assert (verified.state, verified.verified_by, verified.finding) == (
        "verified",
        "W0900",
        "已电话回访",
    )
    assert verified.verified_at == clock.now()
    clock.advance(3600)
    closed = await ratings.close(f.id, "W0900", "fixed", "已培训窗口人员", "感谢反馈，我们已整改。")
    assert (closed.state, closed.closed_by, closed.closed_at) == ("fixed", "W0900", clock.now())
    assert await ratings.follow_ups() == []
    assert [x.id for x in await ratings.follow_ups(("fixed", "explained"))] == [f.id]
    [event] = await events(store, "followup.closed")
    assert (
        event.ticket_id == ticket.id
        and event.payload["follow_up"]["reply"] == "感谢反馈，我们已整改。"
    )
    [sms] = await outbox(store, bus, hall, "followup_reply")
    assert sms["phone"] == P3 and sms["ticket_id"] == ticket.id
    assert "感谢反馈，我们已整改。" in sms["body"] and ticket.number in sms["body"]


async def test_an_explained_follow_up_also_replies(
    ratings: Ratings, engine: Engine, store: Store, bus: Bus, hall: HallConfig
) -> None:
    ticket = await serve(engine, phone=P2)
    await ratings.rate(ticket.id, 2)
    [f] = await ratings.follow_ups()
    await ratings.verify(f.id, "W0900", "材料不全")
    assert (
        await ratings.close(f.id, "W0900", "explained", "依规办理", "依法需补充材料。")
    ).state == "explained"
    [sms] = await outbox(store, bus, hall, "followup_reply")
    assert sms["phone"] == P2 and "依法需补充材料。" in sms["body"]


async def test_follow_up_state_errors(ratings: Ratings, engine: Engine) -> None:
    ticket = await serve(engine)
    await ratings.rate(ticket.id, 1)
    [f] = await ratings.follow_ups()
    with pytest.raises(FollowUpStateError):  # close before verify
        await ratings.close(f.id, "W0900", "fixed", "整改", "答复")
    with pytest.raises(InvalidRequestError):
        await ratings.verify(f.id, "W0900", "   ")
    await ratings.verify(f.id, "W0900", "核实")
    with pytest.raises(FollowUpStateError):
        await ratings.verify(f.id, "W0900", "再核实")
    with pytest.raises(InvalidRequestError):
        await ratings.close(f.id, "W0900", "ignored", "整改", "答复")
    with pytest.raises(InvalidRequestError):
        await ratings.close(f.id, "W0900", "fixed", "整改", "")
    await ratings.close(f.id, "W0900", "fixed", "整改", "答复")
    with pytest.raises(FollowUpStateError):
        await ratings.close(f.id, "W0900", "explained", "整改", "答复")
    with pytest.raises(FollowUpNotFoundError):
        await ratings.verify(f.id + 100, "W0900", "核实")


async def test_a_follow_up_past_its_deadline_is_overdue(ratings: Ratings, engine: Engine) -> None:
    ticket = await serve(engine)
    await ratings.rate(ticket.id, 1)
    [f] = await ratings.follow_ups()
    assert not overdue(f, date(2026, 6, 5)) and overdue(f, date(2026, 6, 6))


# --- statistics -------------------------------------------------------------------------------


async def _served_at(
    engine: Engine, clock: FakeClock, ticket: Ticket, vn: str, call: str, end: str
) -> None:
    h, m = map(int, call.split(":"))
    clock.set(at(2026, 5, 29, h, m))
    await engine.call_ticket(vn, ticket.id)
    await engine.start_service(vn)
    h, m = map(int, end.split(":"))
    clock.set(at(2026, 5, 29, h, m))
    await engine.complete(vn)


async def test_stats_per_staffer_and_per_service(
    ratings: Ratings, engine: Engine, clock: FakeClock
) -> None:
    a, b, c, d = [
        (await engine.take_ticket(s, phone=p)).ticket
        for s, p in (("biz", P1), ("biz", P2), ("pension", P3), ("medical", None))
    ]
    no_show = (await engine.take_ticket("biz")).ticket
    await engine.sign_in("W0001", "1")
    await engine.sign_in("W0004", "4")
    await _served_at(engine, clock, a, "W0001", "10:10", "10:16")  # wait 10, handle 6
    await _served_at(engine, clock, b, "W0001", "10:20", "10:24")  # wait 20, handle 4
    await _served_at(engine, clock, c, "W0004", "10:30", "10:40")  # wait 30, handle 10
    await _served_at(engine, clock, d, "W0004", "10:41", "10:43")  # wait 41, handle 2
    await engine.call_ticket("W0001", no_show.id)
    await engine.mark_no_show("W0001")
    for ticket, level in ((a, 5), (b, 2), (c, 4)):
        await ratings.rate(ticket.id, level)
    stats = await ratings.stats("2026-05-29", "2026-05-29")
    staff = {r["key"]: r for r in stats["by_staff"]}
    assert staff["W0001"] == {
        "key": "W0001", "served": 2, "avg_wait_min": 15.0, "avg_handle_min": 5.0,
        "ratings": {"5": 1, "4": 0, "3": 0, "2": 1, "1": 0}, "rated": 2, "good_rate": 0.5,
    }  # fmt: skip
    assert staff["W0004"] == {
        "key": "W0004", "served": 2, "avg_wait_min": 35.5, "avg_handle_min": 6.0,
        "ratings": {"5": 0, "4": 1, "3": 0, "2": 0, "1": 0}, "rated": 1, "good_rate": 1.0,
    }  # fmt: skip
    service = {r["key"]: r for r in stats["by_service"]}
    assert set(service) == {"biz", "pension", "medical"}
    assert (service["biz"]["served"], service["biz"]["good_rate"]) == (2, 0.5)
    assert (service["medical"]["rated"], service["medical"]["good_rate"]) == (0, None)
    assert service["pension"]["avg_wait_min"] == 30.0
    assert await ratings.stats("2026-05-30", "2026-06-30") == {"by_staff": [], "by_service": []}


# --- the API ------------------------------------------------------------------------------------


async def test_a_rating_pad_rates_only_its_own_window(api: Api) -> None:
    ticket = await api.served("social_insurance", "W0001", "5")
    await api.served("social_insurance", "W0002", "6", phone=P2)
    r = await api.client.post(f"/api/halls/{HALL}/windows/6/rating", json={"level": 5},
                              headers=bearer(RATINGPAD5))  # fmt: skip
    assert r.status_code == 403, r.text
    r = await api.client.post(f"/api/halls/{HALL}/windows/5/rating", json={"level": 5},
                              headers=bearer(KIOSK))  # fmt: skip
    assert r.status_code == 403
    r = await api.client.post(f"/api/halls/{HALL}/windows/5/rating", json={"level": 6},
                              headers=bearer(RATINGPAD5))  # fmt: skip
    assert r.status_code == 422
    r = await api.client.post(f"/api/halls/{HALL}/windows/5/rating", json={"level": 5},
                              headers=bearer(RATINGPAD5))  # fmt: skip
    assert r.status_code == 201, r.text
    assert r.json()["ticket_id"] == ticket.id and r.json()["virtual_number"] == "W0001"


async def test_follow_ups_are_for_supervisors_and_their_reply_reaches_the_citizen(api: Api) -> None:
    ticket = await api.served("social_insurance", "W0001", "5", phone=P1)
    r = await api.client.post(f"/api/halls/{HALL}/windows/5/rating", json={"level": 1, "comment": "态度差"},
                              headers=bearer(RATINGPAD5))  # fmt: skip
    assert r.status_code == 201
    url = f"/api/halls/{HALL}/follow-ups"
    for headers in (
        await api.login("W0001"),
        bearer(KIOSK),
        bearer(RATINGPAD5),
        await api.login("W0201"),
    ):
        assert (await api.client.get(url, headers=headers)).status_code == 403
    boss = await api.login("W0900")
    r = await api.client.get(url, headers=boss)
    assert r.status_code == 200
    [f] = r.json()
    assert (f["ticket_id"], f["state"], f["deadline"]) == (ticket.id, "open", "2026-06-05")
    staff = await api.login("W0001")
    r = await api.client.post(f"{url}/{f['id']}/verify", json={"finding": "核实"}, headers=staff)
    assert r.status_code == 403
    r = await api.client.post(f"{url}/{f['id']}/close", headers=boss,
                              json={"outcome": "fixed", "resolution": "培训", "reply": "已整改"})  # fmt: skip
    assert r.status_code == 409
    r = await api.client.post(f"{url}/{f['id']}/verify", json={"finding": "核实"}, headers=boss)
    assert r.status_code == 200 and r.json()["verified_by"] == "W0900"
    r = await api.client.post(f"{url}/{f['id']}/close", headers=boss,
                              json={"outcome": "fixed", "resolution": "培训", "reply": "已整改，谢谢"})  # fmt: skip
    assert r.status_code == 200 and r.json()["state"] == "fixed"
    store = api.runtime.engine.store

    async def reply_row() -> list:
        return await store.run(
            lambda tx: tx.execute(
                "SELECT phone, body FROM sms_outbox WHERE template='followup_reply'"
            )
        )

    async with asyncio.timeout(5):
        while not (rows := await reply_row()):
            await asyncio.sleep(0.01)
    assert rows[0][0] == P1 and "已整改，谢谢" in rows[0][1]
    r = await api.client.get(f"/api/halls/{HALL}/ratings/stats", headers=boss)
    assert r.status_code == 200
    [row] = [x for x in r.json()["by_staff"] if x["key"] == "W0001"]
    assert row["ratings"]["1"] == 1 and row["good_rate"] == 0.0
