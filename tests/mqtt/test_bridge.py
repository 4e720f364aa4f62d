"""The bridge against the real broker: events in order, retained screens, device commands."""

from __future__ import annotations

import json

import pytest

from kiosk.devices import Topics
from queue_engine import TicketState

from .conftest import Hall, Listener, config, eventually, running_bridge, send

pytestmark = pytest.mark.mqtt


async def morning(rt: Hall) -> None:
    """Two windows open, six citizens, calls, a recall, a no-show, a pause."""
    e, clock = rt.engine, rt.clock
    await e.sign_in("W0001", "1")
    await e.sign_in("W0002", "2")
    for service in ("biz", "pension", "medical", "biz", "pension", "biz"):
        await e.take_ticket(service, phone="13812345678")
        clock.advance(30)
    await e.call_next("W0001")
    await e.call_next("W0002")
    clock.advance(20)
    await e.start_service("W0001")
    await e.recall("W0002")
    clock.advance(60)
    await e.mark_no_show("W0002")
    await e.complete("W0001")
    await e.call_next("W0001")
    await e.pause("W0002", "break")
    clock.advance(300)
    await e.resume_work("W0002")
    await e.call_next("W0002")


async def test_subscriber_sees_every_event_in_order_then_the_retained_screens(
    rt: Hall, broker: tuple[str, int], prefix: str
) -> None:
    host, port = broker
    topics = Topics(prefix, rt.engine.hall.code)
    async with (
        running_bridge(rt, config(host, port, prefix)) as bridge,
        Listener(host, port, [topics.events]) as listener,
    ):
        start = bridge.runner.position
        await morning(rt)
        expected = [(e.id, e.type) for e in await rt.log() if e.id > start]
        await listener.wait_for(lambda: len(listener.messages) >= len(expected))
        got = [(p["id"], p["type"]) for p in listener.payloads()]
        assert got == expected
        assert all("13812345678" not in json.dumps(p) for p in listener.payloads())
        await eventually(
            lambda: rt.store.run(lambda tx: tx.get_cursor("mqtt:test") == expected[-1][0])
        )

        screens = Listener(host, port, [topics.display, f"{topics.base}/windows/+"])
        async with screens:
            last = expected[-1][0]
            await screens.wait_for(
                lambda: any(p["event_id"] == last for p in screens.payloads(topics.display))
            )
            assert all(m.retain for m in screens.messages[:1])
            display = screens.payloads(topics.display)[-1]
            view = bridge.view
            assert display == view.snapshot(rt.clock.now())
            desks = {vn: (await rt.engine.desk(vn))[1] for vn in ("W0001", "W0002")}
            calling = {t.number for t in desks.values() if t}
            assert {c["number"] for c in display["calling"]} == calling and len(calling) == 2
            waiting = {
                s.code: len(await rt.engine.waiting(s.code)) for s in rt.engine.hall.services
            }
            assert {q["service"]: q["waiting"] for q in display["queues"]} == waiting
            lines = {w.number: view.window_line(w.number) for w in rt.engine.hall.windows}

            def windows() -> dict[str, dict]:
                pairs = zip(screens.messages, screens.payloads(), strict=True)
                return {p["window"]: p for m, p in pairs if m.topic.value != topics.display}

            await screens.wait_for(lambda: windows() == lines)
            assert windows()["1"]["number"] == desks["W0001"].number
            assert windows()["1"]["state"] == "calling"
            assert windows()["3"]["state"] == "offline"


async def command(host: str, port: int, topics: Topics, window: str, body: bytes | dict) -> dict:
    """Send one command as a device and return the bridge's reply."""
    async with Listener(host, port, [topics.reply(window)]) as replies:
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        await send(host, port, topics.command(window), payload)
        await replies.wait_for(lambda: bool(replies.messages))
        return replies.payloads()[0]


async def test_a_bound_caller_calls_the_next_ticket_and_the_pad_rates_it(
    rt: Hall, broker: tuple[str, int], prefix: str
) -> None:
    host, port = broker
    topics = Topics(prefix, rt.engine.hall.code)
    e = rt.engine
    await e.sign_in("W0001", "1")
    issued = await e.take_ticket("biz")
    async with running_bridge(rt, config(host, port, prefix)):
        reply = await command(
            host, port, topics, "1", {"device": "caller-1", "command": "call_next", "id": "r1"}
        )
        assert reply["ok"] is True, reply
        assert reply["result"]["ticket"]["number"] == issued.ticket.number
        assert (reply["window"], reply["device"], reply["id"]) == ("1", "caller-1", "r1")
        ws, ticket = await e.desk("W0001")
        assert ticket is not None and ticket.state == TicketState.CALLED
        assert ticket.id == issued.ticket.id

        again = await command(
            host, port, topics, "1", {"device": "caller-1", "command": "call_next", "id": "r1"}
        )
        assert again["error"]["code"] == "duplicate"

        for verb in ("start", "complete"):
            reply = await command(host, port, topics, "1", {"device": "caller-1", "command": verb})
            assert reply["ok"] is True, reply
        rated = await command(
            host, port, topics, "1", {"device": "pad-1", "command": "rate", "level": 5}
        )
        assert rated["ok"] is True, rated
        assert rated["result"]["rating"] == {"ticket_id": issued.ticket.id, "level": 5}

        nobody = await command(
            host, port, topics, "1", {"device": "caller-1", "command": "call_next"}
        )
        assert nobody["ok"] is True and nobody["result"]["ticket"] is None


REFUSED = [
    pytest.param("1", {"device": "caller-2", "command": "call_next"}, "unbound_device", id="device-of-another-window"),
    pytest.param("1", {"device": "stranger", "command": "call_next"}, "unbound_device", id="unknown-device"),
    pytest.param("1", {"device": "pad-1", "command": "call_next"}, "not_allowed", id="pad-cannot-call"),
    pytest.param("3", {"device": "caller-3", "command": "call_next"}, "no_staffer", id="window-with-no-staffer"),
    pytest.param("1", b"call next please", "malformed", id="not-json"),
    pytest.param("1", b"\xff\xfe\x00", "malformed", id="not-utf8"),
    pytest.param("1", b"[1, 2]", "malformed", id="not-an-object"),
    pytest.param("1", b"", "malformed", id="empty"),
    pytest.param("1", {"device": 12, "command": "call_next"}, "malformed", id="device-not-text"),
    pytest.param("1", {"device": "caller-1", "command": "explode"}, "unknown_command", id="unknown-command"),
    pytest.param("1", {"device": "pad-1", "command": "rate", "level": 9}, "bad_level", id="rating-out-of-range"),
    pytest.param("1", {"device": "pad-1", "command": "rate", "level": True}, "bad_level", id="rating-not-a-number"),
]  # fmt: skip


@pytest.mark.parametrize(("window", "body", "code"), REFUSED)
async def test_a_refused_command_changes_nothing_and_says_why(
    rt: Hall, broker: tuple[str, int], prefix: str, window: str, body: bytes | dict, code: str
) -> None:
    host, port = broker
    topics = Topics(prefix, rt.engine.hall.code)
    await rt.engine.sign_in("W0001", "1")
    issued = await rt.engine.take_ticket("biz")
    async with running_bridge(rt, config(host, port, prefix)):
        before = await rt.log()
        reply = await command(host, port, topics, window, body)
        assert reply["ok"] is False
        assert reply["error"]["code"] == code
        assert reply["error"]["message_zh"] and reply["error"]["message_en"]
        if isinstance(body, dict) and isinstance(body["device"], str):
            assert reply["device"] == body["device"], "the reply names the device it answers"
        assert await rt.log() == before
        assert (await rt.engine.ticket(issued.ticket.id)).state == TicketState.WAITING

        alive = await command(
            host, port, topics, "1", {"device": "caller-1", "command": "call_next"}
        )
        assert alive["ok"] is True, "the bridge still answers after a refusal"


async def test_a_restarted_bridge_publishes_what_happened_while_it_was_away(
    rt: Hall, broker: tuple[str, int], prefix: str
) -> None:
    host, port = broker
    topics = Topics(prefix, rt.engine.hall.code)
    e = rt.engine
    async with Listener(host, port, [topics.events]) as listener:
        async with running_bridge(rt, config(host, port, prefix)) as bridge:
            start = bridge.runner.position
            await e.sign_in("W0001", "1")
            await listener.wait_for(lambda: len(listener.messages) == 1)
        await e.take_ticket("biz")
        await e.call_next("W0001")
        async with running_bridge(rt, config(host, port, prefix)):
            await e.start_service("W0001")
            expected = [ev.id for ev in await rt.log() if ev.id > start]
            await listener.wait_for(lambda: len(listener.messages) >= len(expected))
            assert [p["id"] for p in listener.payloads()] == expected
