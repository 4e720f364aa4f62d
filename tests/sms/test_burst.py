"""A burst of 1,000 tickets with phone numbers through engine, notifier, dispatcher and Twilio.

Every message the outbox holds reaches the Twilio-shaped server exactly once, messages
to one phone arrive in the order their events happened (also across a 429 back-off),
and the server never sees more than the configured rate in any one second.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import defaultdict

import pytest

from queue_engine import Bus, Engine, FakeClock, HallConfig, ReaderRunner, Store, Tx
from sms.dispatcher import Dispatcher
from sms.notifier import SmsNotifier
from sms.providers.twilio import TwilioProvider
from tests.sms.conftest import outbox, sms_config
from tests.sms.fake_twilio import TOO_MANY, FakeTwilio

RATE = 400.0
TICKETS = 1000


def phones_for(n: int, rng: random.Random) -> list[str]:
    """``n`` phones for ``n`` tickets: most distinct, 50 phones with three tickets each."""
    repeated = [f"+861390000{i:04d}" for i in range(50)] * 3
    single = [f"+861380000{i:04d}" for i in range(n - len(repeated))]
    phones = repeated + single
    rng.shuffle(phones)
    return phones


def busiest_second(arrivals: list[float]) -> int:
    """The most arrivals in any one-second window starting at an arrival."""
    arrivals = sorted(arrivals)
    best, j = 0, 0
    for i, start in enumerate(arrivals):
        while j < len(arrivals) and arrivals[j] < start + 1.0:
            j += 1
        best = max(best, j - i)
    return best


@pytest.mark.slow
async def test_burst_of_1000_tickets(
    store: Store, engine: Engine, bus: Bus, hall: HallConfig, clock: FakeClock, fake: FakeTwilio
) -> None:
    rng = random.Random(96166)
    config = sms_config(fake, rate_per_s=RATE, concurrency=16)
    assert config.twilio is not None
    provider = TwilioProvider(config.twilio, config.send_timeout_s)
    dispatcher = Dispatcher(store, provider, config, clock, rng=rng.random)
    runner = ReaderRunner(store, bus, SmsNotifier(config, {hall.code: hall}, dispatcher.wake))
    phones = phones_for(TICKETS, rng)
    for phone in rng.sample(sorted(set(phones)), 5):
        fake.answer_to(phone, TOO_MANY)  # a few first sends are refused once
    tasks = [asyncio.create_task(runner.run()), asyncio.create_task(dispatcher.run(poll_s=0.1))]
    try:
        for vn, window in (("W0001", "1"), ("W0002", "2"), ("W0003", "3"), ("W0004", "4")):
            await engine.sign_in(vn, window)
        services = ("biz", "pension", "medical")
        for start in range(0, TICKETS, 50):  # a burst: 50 kiosks at once, twenty times
            chunk = phones[start : start + 50]
            await asyncio.gather(*(
                engine.take_ticket(services[(start + i) % 3], phone=p) for i, p in enumerate(chunk)
            ))  # fmt: skip
            if start % 200 == 0:  # the windows call meanwhile: called and near-turn messages
                for vn in ("W0001", "W0002", "W0003", "W0004"):
                    if await engine.call_next(vn) is not None:
                        await engine.start_service(vn)
                        await engine.complete(vn)
        async with asyncio.timeout(25):
            while await _unsettled(store, runner):
                clock.advance(0.5)  # lets the refused sends' back-off run out
                dispatcher.wake()
                await asyncio.sleep(0.05)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await provider.close()

    due = [r for r in await outbox(store) if r["status"] not in ("skipped", "opted_out")]
    assert {r["status"] for r in due} == {"sent"}
    assert len([r for r in due if r["template"] == "issued"]) == TICKETS
    assert {r["template"] for r in due} >= {"issued", "called", "near_turn"}
    check_exactly_once_in_order(fake, due, refused=5)

    # Within the rate: the pace allows one slot of burst; a few more for network jitter.
    arrivals = [c.mono for c in fake.creates]
    assert busiest_second(arrivals) <= RATE + 1 + RATE * 0.03
    assert (len(arrivals) - 1) / (max(arrivals) - min(arrivals)) <= RATE * 1.02


def check_exactly_once_in_order(fake: FakeTwilio, due: list[dict], refused: int) -> None:
    """One message per due row (matched by the provider's id), each phone's in row order."""
    assert len(fake.messages) == len(due)
    by_sid = {m["sid"]: m for m in fake.messages}
    assert len(by_sid) == len(due)
    for r in due:
        m = by_sid[r["provider_id"]]
        assert (m["to"], m["body"]) == (r["phone"], r["body"])
    assert len(fake.creates) == len(due) + refused
    expected: dict[str, list[str]] = defaultdict(list)
    for r in due:
        expected[r["phone"]].append(r["body"])
    got: dict[str, list[str]] = defaultdict(list)
    for m in fake.messages:
        got[m["to"]].append(m["body"])
    assert got == expected
    assert max(len(v) for v in got.values()) >= 4  # some phones had several messages


async def _unsettled(store: Store, runner: ReaderRunner) -> int:
    """Events the notifier has yet to read plus rows the dispatcher has yet to settle."""

    def count(tx: Tx) -> int:
        behind = tx.last_event_id() - tx.get_cursor(runner.reader.name)
        rows = tx.execute("SELECT COUNT(*) FROM sms_outbox WHERE status IN ('pending','sending')")
        return behind + rows[0][0]

    return await store.run(count)
