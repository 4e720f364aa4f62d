"""A broker restart mid-stream: every event issued while it was down arrives once, in order."""

from __future__ import annotations

import asyncio

import pytest

from kiosk.devices import Topics

from .conftest import HOST, Hall, Listener, Mosquitto, config, eventually, running_bridge

pytestmark = [pytest.mark.mqtt, pytest.mark.slow]


async def test_events_missed_while_the_broker_was_down_arrive_once_in_order(
    rt: Hall, own_broker: Mosquitto, prefix: str
) -> None:
    e, port = rt.engine, own_broker.port
    topics = Topics(prefix, e.hall.code)
    cursor_name = f"mqtt:{e.hall.code}"

    async def cursor() -> int:
        return await rt.store.run(lambda tx: tx.get_cursor(cursor_name))

    async def cursor_is(value: int) -> bool:
        return await cursor() == value

    async def log_ids() -> list[int]:
        return [ev.id for ev in await rt.log()]

    await e.sign_in("W0001", "1")
    # A persistent session: the broker keeps what is published while the listener reconnects.
    listener = Listener(HOST, port, [topics.events], persistent=True)
    async with running_bridge(rt, config(HOST, port, prefix)) as bridge, listener:
        start = bridge.runner.position
        await e.take_ticket("biz")
        await e.take_ticket("biz")
        await e.call_next("W0001")
        before = [i for i in await log_ids() if i > start]
        await listener.wait_for(lambda: len(listener.messages) == len(before))
        await eventually(lambda: cursor_is(before[-1]))

        own_broker.stop()
        for service in ("biz", "pension", "biz"):
            await e.take_ticket(service)
        await e.start_service("W0001")
        await e.complete("W0001")
        await e.call_next("W0001")
        missed = [i for i in await log_ids() if i > before[-1]]
        await asyncio.sleep(0.2)  # the bridge is retrying against a broker that is not there
        assert await cursor() == before[-1], "the cursor never passes an unacknowledged event"

        own_broker.start()
        await e.recall("W0001")
        after = [i for i in await log_ids() if i > missed[-1]]
        await listener.wait_for(lambda: len(listener.messages) >= len(before + missed + after), 10)
        await asyncio.sleep(0.1)  # room for a duplicate to show up, if there were one
        assert [p["id"] for p in listener.payloads()] == before + missed + after
        await eventually(lambda: cursor_is(after[-1]))
