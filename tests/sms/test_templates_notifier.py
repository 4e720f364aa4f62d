"""Templates, reply parsing and the notifier (a TxReader filling the outbox) on the real engine."""

from __future__ import annotations

import string
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from queue_engine import Engine, FakeClock, ReaderRunner, Store
from queue_engine.model import Channel
from sms.inbound import Intent, parse
from sms.notifier import SmsNotifier
from sms.phone import InvalidPhoneError, normalise
from sms.templates import TEMPLATES, render
from tests.sms.conftest import PUBLIC, outbox, sms_config

SHANGHAI = ZoneInfo("Asia/Shanghai")
P1, P2, P3 = "+8613800000001", "+8613800000002", "+8613800000003"
VALUES = {
    "number": "A023", "window": "7", "service_zh": "营业执照", "service_en": "Business licence",
    "ahead": 4, "wait": 35, "link": "https://hall.example/t/abc", "state_zh": "等候中",
    "state_en": "waiting", "detail_zh": "，前面还有4人", "detail_en": ", 4 ahead",
}  # fmt: skip


# --- templates -------------------------------------------------------------------


def values_for(key: str) -> dict[str, object]:
    """VALUES plus a placeholder for any other field the template names."""
    t = TEMPLATES[key]
    names = {f for text in (t.zh, t.en) for _, f, _, _ in string.Formatter().parse(text) if f}
    filler = {name: "某事" if name.endswith("_zh") else f"x{name}" for name in names}
    return filler | VALUES


@pytest.mark.parametrize("key", sorted(TEMPLATES))
def test_every_template_renders_signature_chinese_first_then_english(key: str) -> None:
    text = render(key, "武侯政务", True, **values_for(key))
    zh, en = text.split("\n")
    assert zh.startswith("【武侯政务】")
    assert any("\u4e00" <= ch <= "\u9fff" for ch in zh[6:]), "the first line is Chinese"
    assert all(ch in string.printable or ch in "’" for ch in en), f"English line: {en!r}"
    assert "{" not in text and "}" not in text


@pytest.mark.parametrize("key", sorted(TEMPLATES))
def test_bilingual_off_sends_only_the_chinese_line(key: str) -> None:
    text = render(key, "政务服务", False, **values_for(key))
    assert text.startswith("【政务服务】") and "\n" not in text
    assert text == render(key, "政务服务", True, **values_for(key)).split("\n")[0]


def test_template_contents() -> None:
    issued = render("issued", "S", True, **VALUES)
    for part in ("A023", "前面还有4人", "约35分钟", "https://hall.example/t/abc", "TD"):
        assert part in issued
    assert "请A023号到7号窗口办理" in render("called", "S", True, **VALUES)
    assert "7号窗口" in render("recalled", "S", True, **VALUES)
    assert "还有4人" in render("near_turn", "S", True, **VALUES)
    assert "window 7" in render("called", "S", True, **VALUES)
    urgent = {k for k, t in TEMPLATES.items() if t.urgent}
    assert {"called", "recalled", "near_turn"} <= urgent
    assert {"no_show", "cancelled", "expired"}.isdisjoint(urgent)


# --- inbound replies and phone numbers ---------------------------------------------


@pytest.mark.parametrize(
    ("body", "intent"),
    [
        ("TD", Intent("opt_out")), ("td", Intent("opt_out")), (" 退订 ", Intent("opt_out")),
        ("退订。", Intent("opt_out")), ("STOP", Intent("opt_out")), ("stop!", Intent("opt_out")),
        ("Unsubscribe", Intent("opt_out")), ("T", Intent("opt_out")),
        ("START", Intent("opt_in")), ("start", Intent("opt_in")), ("订阅", Intent("opt_in")),
        ("订阅！", Intent("opt_in")),
        ("A023", Intent("ticket", "A023")), ("a023", Intent("ticket", "A023")),
        (" G0105 ", Intent("ticket", "G0105")), ("A023。", Intent("ticket", "A023")),
        ("A23", Intent("help")), ("A 023", Intent("help")), ("hello", Intent("help")),
        ("", Intent("help")), ("我的号是A023", Intent("help")), ("STOP ALL", Intent("help")),
    ],
)  # fmt: skip
def test_parse_reply(body: str, intent: Intent) -> None:
    assert parse(body) == intent


@pytest.mark.parametrize(
    ("raw", "region", "e164"),
    [
        ("13812345678", "CN", "+8613812345678"), ("138 1234 5678", "CN", "+8613812345678"),
        ("138-1234-5678", "CN", "+8613812345678"), ("+86 138 1234 5678", "CN", "+8613812345678"),
        ("008613812345678", "CN", "+8613812345678"), ("+14155552671", "CN", "+14155552671"),
        ("4155552671", "US", "+14155552671"), ("07700 900123", "GB", "+447700900123"),
    ],
)  # fmt: skip
def test_normalise(raw: str, region: str, e164: str) -> None:
    assert normalise(raw, region) == e164


@pytest.mark.parametrize("raw", ["12345", "12812345678", "+8612812345678", "1381234567",
                                 "abc", "", "+86138123456789"])  # fmt: skip
def test_invalid_phone_is_refused(raw: str) -> None:
    with pytest.raises(InvalidPhoneError) as err:
        normalise(raw)
    assert err.value.code == "invalid_phone" and err.value.status == 422


# --- the notifier on the real engine -----------------------------------------------


async def rows(store: Store, template: str | None = None) -> list[dict]:
    if template is None:
        return await outbox(store)
    return await outbox(store, "template=?", (template,))


async def test_issued_makes_one_row_with_number_ahead_wait_link(
    engine: Engine, runner: ReaderRunner, store: Store, clock: FakeClock
) -> None:
    await engine.take_ticket("biz")
    await engine.take_ticket("biz")
    issued = await engine.take_ticket("biz", phone=P1)
    await runner.catch_up()
    [row] = await rows(store, "issued")
    t = issued.ticket
    assert row["phone"] == P1 and row["ticket_id"] == t.id and row["status"] == "pending"
    assert row["body"].startswith(
        "【武侯政务】您已取号A003（营业执照），前面还有2人，预计等候约30分钟"
    )
    assert f"{PUBLIC}/t/{t.token}" in row["body"]
    assert "Ticket A003 (Business licence): 2 ahead, about 30 min" in row["body"]
    assert row["not_before"] == row["created_at"] == clock.now()
    [skipped] = await rows(store, "near_turn")  # two ahead: already near, no second notice
    assert skipped["status"] == "skipped"
    assert len(await rows(store)) == 2  # the ticket without a phone got nothing


async def test_each_ticket_event_makes_one_row_with_its_template(
    engine: Engine, runner: ReaderRunner, store: Store, clock: FakeClock
) -> None:
    await engine.sign_in("W0001", "5")
    a = (await engine.take_ticket("biz", phone=P1)).ticket
    b = (await engine.take_ticket("biz", phone=P2)).ticket
    c = (await engine.take_ticket("biz", phone=P3)).ticket
    called = await engine.call_next("W0001")
    assert called is not None and called.id == a.id
    await engine.recall("W0001")
    await engine.mark_no_show("W0001")
    await engine.take_ticket("pension")  # someone already waits for pension
    moved = await engine.transfer(b.id, to_service="pension")
    await engine.cancel(c.id)
    await runner.catch_up()
    got = {
        (r["template"], r["ticket_id"]): r
        for r in await rows(store)
        if r["status"] == "pending" and r["template"] != "near_turn"
    }
    assert sorted(got) == sorted([
        ("issued", a.id), ("issued", b.id), ("issued", c.id), ("called", a.id),
        ("recalled", a.id), ("no_show", a.id), ("transferred", b.id), ("cancelled", c.id),
    ])  # fmt: skip
    assert "请A001号到5号窗口办理（营业执照）" in got[("called", a.id)]["body"]
    assert "window 5" in got[("called", a.id)]["body"]
    assert "再次呼叫：请A001号尽快到5号窗口办理" in got[("recalled", a.id)]["body"]
    assert "A001因多次呼叫未到已过号作废" in got[("no_show", a.id)]["body"]
    transferred = got[("transferred", b.id)]["body"]
    assert "您的号票A002已转至养老保险，前面还有1人" in transferred, transferred
    assert f"{PUBLIC}/t/" not in transferred
    assert moved.phone == P2
    assert "您的号票A003（营业执照）已取消" in got[("cancelled", c.id)]["body"]
    for r in got.values():
        assert r["body"].startswith("【武侯政务】") and r["event_id"] is not None


async def test_transfer_near_the_front_sends_no_second_near_turn(
    engine: Engine, runner: ReaderRunner, store: Store
) -> None:
    await engine.take_ticket("biz", phone=P1)
    b = (await engine.take_ticket("biz", phone=P2)).ticket
    await engine.take_ticket("pension")
    moved = await engine.transfer(b.id, to_service="pension")
    await runner.catch_up()
    [transferred] = await rows(store, "transferred")
    assert "前面还有1人" in transferred["body"]
    sent = [r for r in await rows(store, "near_turn") if r["status"] == "pending"]
    assert [r["ticket_id"] for r in sent if r["phone"] == P2] == [], (moved.id, sent)


async def test_expired_at_day_end_makes_one_row(
    engine: Engine, runner: ReaderRunner, store: Store, clock: FakeClock
) -> None:
    t = (await engine.take_ticket("biz", phone=P1)).ticket
    clock.advance(24 * 3600)
    events = await engine.tick()
    assert [e.type for e in events] == ["ticket.expired"]
    await runner.catch_up()
    [row] = await rows(store, "expired")
    assert row["ticket_id"] == t.id and "号票A001已失效" in row["body"]


async def test_near_turn_once_per_ticket_to_the_first_n_plus_one_with_phones(
    engine: Engine, runner: ReaderRunner, store: Store
) -> None:
    await engine.sign_in("W0001", "1")
    phones = [f"+86139000000{i:02d}" for i in range(10)]
    tickets = []
    for i, phone in enumerate(phones):
        tickets.append((await engine.take_ticket("biz", phone=None if i == 5 else phone)).ticket)
    await runner.catch_up()
    near = await rows(store, "near_turn")
    # Issued with 0..3 ahead (N=3): "near" is already in the issue message.
    assert [(r["ticket_id"], r["status"]) for r in near] == [(t.id, "skipped") for t in tickets[:4]]
    for _ in range(4):
        await engine.call_next("W0001")
        await engine.start_service("W0001")
        await engine.complete("W0001")
        await runner.catch_up()
    pending = [r for r in await rows(store, "near_turn") if r["status"] == "pending"]
    # After each call the 4th in line (3 ahead) hears it once; #6 has no phone.
    assert [r["ticket_id"] for r in pending] == [tickets[i].id for i in (4, 6, 7)]
    for r in pending:
        assert "前面还有3人" in r["body"] and "3 ahead of you" in r["body"]
    keys = [r["dedupe_key"] for r in await rows(store, "near_turn")]
    assert len(keys) == len(set(keys))


async def test_a_burst_reads_the_queue_once_and_sends_no_second_notice(
    engine: Engine, runner: ReaderRunner, store: Store
) -> None:
    """The notifier reads the queues after the events it handles committed: a ticket issued
    near the front after a call in the same batch is told so by its issue message only."""
    await engine.sign_in("W0001", "1")
    early = [(await engine.take_ticket("biz", phone=p)).ticket for p in (P1, P2, None, None)]
    await runner.catch_up()
    await engine.call_next("W0001")  # the call moves the queue ...
    late = (await engine.take_ticket("biz", phone=P3)).ticket  # ... and this one joins at 3 ahead
    await runner.catch_up()  # both events in one batch
    near = {r["ticket_id"]: r["status"] for r in await rows(store, "near_turn")}
    assert near == {early[0].id: "skipped", early[1].id: "skipped", late.id: "skipped"}
    [issued] = [r for r in await rows(store, "issued") if r["ticket_id"] == late.id]
    assert "前面还有3人" in issued["body"]


async def test_replayed_events_create_no_second_row(
    engine: Engine, runner: ReaderRunner, store: Store, bus, notifier: SmsNotifier
) -> None:
    await engine.sign_in("W0001", "1")
    for i in range(7):
        await engine.take_ticket("biz", phone=f"+8613700000{i:03d}")
    await engine.call_next("W0001")
    await engine.recall("W0001")
    await engine.mark_no_show("W0001")
    await engine.call_next("W0001")
    delivered = await runner.catch_up()
    before = await rows(store)
    assert delivered > 0 and len(before) >= 12

    await store.run(lambda tx: tx.set_cursor(notifier.name, 0))
    again = ReaderRunner(store, bus, SmsNotifier(notifier.config, notifier.halls))
    assert await again.catch_up() == delivered
    assert await rows(store) == before


async def test_quiet_hours_hold_only_what_can_wait(
    engine: Engine, runner: ReaderRunner, store: Store, clock: FakeClock
) -> None:
    clock.advance(13 * 3600)  # 23:00 in Shanghai
    at = clock.now()
    assert datetime.fromtimestamp(at, SHANGHAI).hour == 23
    await engine.sign_in("W0001", "2")
    a = (await engine.take_ticket("biz", phone=P1)).ticket
    b = (await engine.take_ticket("biz", phone=P2)).ticket
    await engine.call_next("W0001")
    await engine.cancel(b.id)
    await runner.catch_up()
    by = {r["template"]: r for r in await rows(store) if r["status"] == "pending"}
    morning = datetime(2026, 5, 30, 7, 30, tzinfo=SHANGHAI).timestamp()
    assert by["called"]["not_before"] == at and by["called"]["ticket_id"] == a.id
    assert by["issued"]["not_before"] == at
    assert by["cancelled"]["not_before"] == morning
    assert by["cancelled"]["next_attempt_at"] == morning


@pytest.mark.parametrize(
    ("local", "wake"),
    [
        ((2026, 5, 29, 21, 59), None), ((2026, 5, 29, 22, 0), (2026, 5, 30, 7, 30)),
        ((2026, 5, 30, 0, 15), (2026, 5, 30, 7, 30)), ((2026, 5, 30, 7, 29), (2026, 5, 30, 7, 30)),
        ((2026, 5, 30, 7, 30), None), ((2026, 5, 30, 12, 0), None),
    ],
)  # fmt: skip
def test_after_quiet_boundaries(hall, local: tuple, wake: tuple | None) -> None:
    notifier = SmsNotifier(sms_config(), {hall.code: hall})
    at = datetime(*local, tzinfo=SHANGHAI).timestamp()
    expected = at if wake is None else datetime(*wake, tzinfo=SHANGHAI).timestamp()
    assert notifier.after_quiet(hall.code, at) == expected


async def test_opted_out_phone_gets_rows_marked_opted_out(
    engine: Engine, runner: ReaderRunner, store: Store, clock: FakeClock
) -> None:
    await store.run(
        lambda tx: tx.execute(
            "INSERT INTO sms_optouts (phone, opted_out_at, source) VALUES (?,?,?)",
            (P1, clock.now(), "reply"),
        )
    )
    await engine.take_ticket("biz", phone=P2)
    await engine.take_ticket("biz", phone=P1)
    await runner.catch_up()
    issued = {r["phone"]: r["status"] for r in await rows(store, "issued")}
    assert issued == {P1: "opted_out", P2: "pending"}


async def test_phone_channel_tickets_get_no_sms(
    engine: Engine, runner: ReaderRunner, store: Store
) -> None:
    t = (await engine.take_ticket("consult", phone=P1)).ticket
    assert t.channel == Channel.PHONE
    await engine.cancel(t.id)
    await runner.catch_up()
    assert await rows(store) == []
