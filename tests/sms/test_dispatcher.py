"""The dispatcher through the real TwilioProvider (the twilio library) to a Twilio-shaped server."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

import pytest

from queue_engine import FakeClock, Store
from sms.config import SmsConfig
from sms.dispatcher import Dispatcher
from sms.providers.base import Outgoing, Sent, TransientSmsError
from sms.providers.twilio import TwilioProvider
from tests.sms.conftest import PUBLIC, SENDER, SERVICE_SID, add_row, attempts, outbox, sms_config
from tests.sms.fake_twilio import (
    INVALID_TO,
    OPTED_OUT,
    SERVER_ERROR,
    TOO_MANY,
    FakeTwilio,
    Reply,
)

P1, P2 = "+8613800000001", "+8613800000002"


async def row(store: Store, ident: int) -> dict:
    [r] = await outbox(store, "id=?", (ident,))
    return r


async def drain_all(dispatcher: Dispatcher) -> int:
    total = 0
    while n := await dispatcher.drain_once():
        total += n
    return total


async def test_request_carries_to_from_body_and_status_callback(
    store: Store, dispatcher: Dispatcher, fake: FakeTwilio, clock: FakeClock
) -> None:
    ident = await add_row(store, P1, "【武侯政务】请A001号到5号窗口办理。", at=clock.now())
    assert await dispatcher.drain_once() == 1
    [req] = fake.creates
    assert req.auth_ok and req.path == f"/2010-04-01/Accounts/{fake.account_sid}/Messages.json"
    assert req.form == {
        "To": P1, "From": SENDER, "Body": "【武侯政务】请A001号到5号窗口办理。",
        "StatusCallback": f"{PUBLIC}/sms/status",
    }  # fmt: skip
    r = await row(store, ident)
    assert r["status"] == "sent" and r["provider_id"] == fake.messages[0]["sid"]
    assert r["provider_id"].startswith("SM") and len(r["provider_id"]) == 34
    assert r["sent_at"] == clock.now() and r["attempts"] == 1
    assert await attempts(store, ident) == [(1, "sent", None)]
    assert await dispatcher.drain_once() == 0


async def test_messaging_service_sid_instead_of_from(
    store: Store, fake: FakeTwilio, clock: FakeClock
) -> None:
    config = sms_config(fake, from_number=None, messaging_service_sid=SERVICE_SID)
    assert config.twilio is not None
    provider = TwilioProvider(config.twilio, config.send_timeout_s)
    try:
        await add_row(store, P1, "hello", at=clock.now())
        await Dispatcher(store, provider, config, clock).drain_once()
    finally:
        await provider.close()
    [req] = fake.creates
    assert req.form["MessagingServiceSid"] == SERVICE_SID and "From" not in req.form
    assert req.form["StatusCallback"] == f"{PUBLIC}/sms/status"


async def test_429_then_201_sends_once_after_back_off(
    store: Store, dispatcher: Dispatcher, fake: FakeTwilio, clock: FakeClock
) -> None:
    fake.answer(TOO_MANY)
    ident = await add_row(store, P1, "hello", at=clock.now())
    assert await dispatcher.drain_once() == 1
    r = await row(store, ident)
    assert r["status"] == "pending" and r["error_code"] == "20429"
    assert r["next_attempt_at"] == pytest.approx(clock.now() + 2.0)  # backoff_s, jitter 0.5 → ×1
    assert await dispatcher.drain_once() == 0  # not before the back-off
    clock.advance(1.9)
    assert await dispatcher.drain_once() == 0
    clock.advance(0.2)
    assert await dispatcher.drain_once() == 1
    assert [q.answered for q in fake.creates] == [429, 201]
    assert len(fake.messages) == 1
    r = await row(store, ident)
    assert r["status"] == "sent" and r["provider_id"] == fake.messages[0]["sid"]
    assert await attempts(store, ident) == [(1, "retry", "20429"), (2, "sent", None)]


def test_back_off_is_exponential_capped_and_jittered(config: SmsConfig) -> None:
    d = Dispatcher(None, None, config, FakeClock(), rng=lambda: 0.5)  # type: ignore[arg-type]
    assert [d.backoff(n) for n in (1, 2, 3, 4)] == [2.0, 4.0, 8.0, 16.0]
    assert d.backoff(20) == config.max_backoff_s
    low = Dispatcher(None, None, config, FakeClock(), rng=lambda: 0.0)  # type: ignore[arg-type]
    high = Dispatcher(None, None, config, FakeClock(), rng=lambda: 0.999)  # type: ignore[arg-type]
    assert low.backoff(3) == 4.0 and 11.9 < high.backoff(3) < 12.0


@pytest.mark.parametrize(
    "reply", [SERVER_ERROR, Reply.error(500, 20500, "Internal Server Error"),
              Reply.error(400, 30001, "Queue overflow")],
    ids=["503", "500", "30001"],
)  # fmt: skip
async def test_server_errors_are_retried(
    store: Store, dispatcher: Dispatcher, fake: FakeTwilio, clock: FakeClock, reply: Reply
) -> None:
    fake.answer(reply)
    ident = await add_row(store, P1, "hello", at=clock.now())
    await dispatcher.drain_once()
    clock.advance(2.1)
    await dispatcher.drain_once()
    assert [q.answered for q in fake.creates] == [reply.status, 201]
    assert await attempts(store, ident) == [(1, "retry", str(reply.code)), (2, "sent", None)]


async def test_timeout_is_retried(store: Store, fake: FakeTwilio, clock: FakeClock) -> None:
    config = sms_config(fake, send_timeout_s=0.3)
    assert config.twilio is not None
    provider = TwilioProvider(config.twilio, config.send_timeout_s)
    dispatcher = Dispatcher(store, provider, config, clock, rng=lambda: 0.5)
    fake.answer(Reply(delay_s=2.0, create=False))  # never got as far as making the message
    ident = await add_row(store, P1, "hello", at=clock.now())
    try:
        started = time.monotonic()
        await dispatcher.drain_once()
        assert time.monotonic() - started < 1.5
        # Timed out: the provider may have it, so it waits mid-send for a look-up.
        assert (await row(store, ident))["status"] == "sending"
        await dispatcher.reconcile()  # not at the provider: back in the queue
        assert (await row(store, ident))["status"] == "pending"
        await dispatcher.drain_once()
    finally:
        await provider.close()
    assert len(fake.creates) == 2 and len(fake.messages) == 1
    assert (await row(store, ident))["status"] == "sent"
    outcomes = await attempts(store, ident)
    assert [o[1] for o in outcomes] == ["lost", "sent"]


async def test_timeout_after_the_provider_took_it_sends_no_second_message(
    store: Store, fake: FakeTwilio, clock: FakeClock
) -> None:
    config = sms_config(fake, send_timeout_s=0.3)
    assert config.twilio is not None
    provider = TwilioProvider(config.twilio, config.send_timeout_s)
    dispatcher = Dispatcher(store, provider, config, clock, rng=lambda: 0.5)
    fake.answer(Reply(delay_s=2.0))  # created at once, answered too late
    await add_row(store, P1, "hello", at=clock.now())
    try:
        await dispatcher.drain_once()
        clock.advance(2.1)
        await dispatcher.drain_once()
    finally:
        await provider.close()
    assert len(fake.messages) == 1


async def test_invalid_number_fails_at_once_without_retry(
    store: Store, dispatcher: Dispatcher, fake: FakeTwilio, clock: FakeClock
) -> None:
    fake.answer(INVALID_TO)
    ident = await add_row(store, P1, "hello", at=clock.now())
    await dispatcher.drain_once()
    r = await row(store, ident)
    assert r["status"] == "failed" and r["error_code"] == "21211" and r["attempts"] == 1
    assert "21211" in r["error"]
    clock.advance(3600)
    assert await dispatcher.drain_once() == 0
    assert len(fake.creates) == 1
    assert await attempts(store, ident) == [(1, "failed", "21211")]


async def test_21610_marks_opted_out_and_suppresses_the_phone(
    store: Store, dispatcher: Dispatcher, fake: FakeTwilio, clock: FakeClock
) -> None:
    fake.answer(OPTED_OUT)
    first = await add_row(store, P1, "one", at=clock.now())
    await dispatcher.drain_once()
    r = await row(store, first)
    assert r["status"] == "opted_out" and r["error_code"] == "21610"
    optouts = await store.run(lambda tx: tx.execute("SELECT phone, source FROM sms_optouts"))
    assert [tuple(o) for o in optouts] == [(P1, "twilio")]
    second = await add_row(store, P1, "two", at=clock.now())
    await dispatcher.drain_once()
    assert (await row(store, second))["status"] == "opted_out"
    assert len(fake.creates) == 1
    assert await attempts(store, second) == []


async def test_max_attempts_then_failed(store: Store, fake: FakeTwilio, clock: FakeClock) -> None:
    config = sms_config(fake, max_attempts=3)
    assert config.twilio is not None
    provider = TwilioProvider(config.twilio, config.send_timeout_s)
    dispatcher = Dispatcher(store, provider, config, clock, rng=lambda: 0.5)
    fake.answer(TOO_MANY, TOO_MANY, TOO_MANY, Reply())
    ident = await add_row(store, P1, "hello", at=clock.now())
    try:
        for _ in range(5):
            await dispatcher.drain_once()
            clock.advance(100)
    finally:
        await provider.close()
    r = await row(store, ident)
    assert r["status"] == "failed" and r["error"].startswith("gave up") and r["attempts"] == 3
    assert [o[1] for o in await attempts(store, ident)] == ["retry", "retry", "failed"]
    assert len(fake.creates) == 3 and fake.messages == []


async def test_crash_mid_send_after_the_provider_took_it_is_reconciled_not_resent(
    store: Store, dispatcher: Dispatcher, fake: FakeTwilio, clock: FakeClock, config: SmsConfig
) -> None:
    fake.answer(Reply(hold=True))
    ident = await add_row(store, P1, "hello", at=clock.now())
    other = await add_row(store, P1, "after", at=clock.now())
    task = asyncio.create_task(dispatcher.drain_once())
    await asyncio.wait_for(fake.received.wait(), 5)
    task.cancel()  # the process dies while Twilio holds the request
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert (await row(store, ident))["status"] == "sending"
    assert len(fake.messages) == 1
    clock.advance(30)

    assert config.twilio is not None
    restarted = TwilioProvider(config.twilio, config.send_timeout_s)
    try:
        again = Dispatcher(store, restarted, config, clock)
        assert await again.reconcile() == 1
        r = await row(store, ident)
        assert r["status"] == "sent" and r["provider_id"] == fake.messages[0]["sid"]
        await drain_all(again)
    finally:
        await restarted.close()
    assert len(fake.lists) == 1 and fake.lists[0].query["To"] == P1
    assert [m["body"] for m in fake.messages] == ["hello", "after"]
    assert len([c for c in fake.creates if c.form["Body"] == "hello"]) == 1
    assert (await row(store, other))["status"] == "sent"


async def test_crash_before_the_request_left_is_resent_once(
    store: Store, dispatcher: Dispatcher, fake: FakeTwilio, clock: FakeClock, config: SmsConfig
) -> None:
    ident = await add_row(store, P1, "hello", at=clock.now())
    claimed = await store.run(dispatcher._claim)  # claimed, then the process died
    assert len(claimed) == 1 and (await row(store, ident))["status"] == "sending"
    clock.advance(30)
    again = Dispatcher(store, dispatcher.provider, config, clock)
    assert await again.reconcile() == 1
    assert (await row(store, ident))["status"] == "pending"
    assert await drain_all(again) == 1
    assert len(fake.creates) == 1 and len(fake.messages) == 1
    assert await attempts(store, ident) == [(1, "lost", None), (2, "sent", None)]


async def test_lookup_server_error_is_transient(
    provider: TwilioProvider, fake: FakeTwilio, clock: FakeClock
) -> None:
    fake.list_script.append(SERVER_ERROR)
    with pytest.raises(TransientSmsError):
        await provider.lookup(Outgoing(1, P1, "hello", clock.now()))


async def test_dispatcher_survives_a_failed_look_up_at_start(
    store: Store, dispatcher: Dispatcher, fake: FakeTwilio, clock: FakeClock, config: SmsConfig
) -> None:
    await add_row(store, P1, "hello", at=clock.now())
    await store.run(dispatcher._claim)  # crash after the claim
    later = await add_row(store, P2, "later", at=clock.now())
    fake.list_script.append(SERVER_ERROR)
    again = Dispatcher(store, dispatcher.provider, config, clock)
    task = asyncio.create_task(again.run(poll_s=0.05))
    try:
        await asyncio.sleep(0.5)
        assert not task.done(), task.exception()
        assert (await row(store, later))["status"] == "sent"
    finally:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task


async def test_reconcile_that_failed_once_is_tried_again(
    store: Store, dispatcher: Dispatcher, fake: FakeTwilio, clock: FakeClock, config: SmsConfig,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    ident = await add_row(store, P1, "hello", at=clock.now())
    await store.run(dispatcher._claim)  # crash after the claim
    later = await add_row(store, P1, "later", at=clock.now())
    real = dispatcher.provider.lookup
    failures = [TransientSmsError("HTTP 503 code 20503: Service Unavailable", "20503")]

    async def flaky(message: Outgoing) -> Sent | None:
        if failures:
            raise failures.pop()
        return await real(message)

    monkeypatch.setattr(dispatcher.provider, "lookup", flaky)
    again = Dispatcher(store, dispatcher.provider, config, clock)
    task = asyncio.create_task(again.run(poll_s=0.05))
    try:
        for _ in range(20):
            clock.advance(60)
            again.wake()
            await asyncio.sleep(0.05)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert not failures
    assert (await row(store, ident))["status"] == "sent"
    assert (await row(store, later))["status"] == "sent"


async def test_reconcile_finds_a_message_twilio_still_has_queued(
    store: Store, dispatcher: Dispatcher, fake: FakeTwilio, clock: FakeClock, config: SmsConfig
) -> None:
    fake.date_sent_on_create = False
    fake.answer(Reply(hold=True))
    await add_row(store, P1, "hello", at=clock.now())
    task = asyncio.create_task(dispatcher.drain_once())
    await asyncio.wait_for(fake.received.wait(), 5)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    again = Dispatcher(store, dispatcher.provider, config, clock)
    await again.reconcile()
    await drain_all(again)
    assert len(fake.messages) == 1


async def test_per_phone_order_kept_while_the_first_is_in_back_off(
    store: Store, dispatcher: Dispatcher, fake: FakeTwilio, clock: FakeClock
) -> None:
    fake.answer_to(P1, TOO_MANY)
    first = await add_row(store, P1, "first", at=clock.now())
    second = await add_row(store, P1, "second", at=clock.now())
    await add_row(store, P2, "other", at=clock.now())
    await drain_all(dispatcher)
    assert fake.sent_to(P2) == ["other"] and fake.sent_to(P1) == []
    assert (await row(store, second))["status"] == "pending"
    assert [c.form["Body"] for c in fake.creates if c.form["To"] == P1] == ["first"]
    clock.advance(2.1)
    await drain_all(dispatcher)
    assert fake.sent_to(P1) == ["first", "second"]
    assert (await row(store, first))["sent_at"] <= (await row(store, second))["sent_at"]


async def test_quiet_hold_does_not_block_a_later_urgent_message(
    store: Store, dispatcher: Dispatcher, fake: FakeTwilio, clock: FakeClock
) -> None:
    await add_row(store, P1, "can wait", at=clock.now(), not_before=clock.now() + 3600)
    await add_row(store, P1, "urgent", at=clock.now())
    await drain_all(dispatcher)
    assert fake.sent_to(P1) == ["urgent"]
    clock.advance(3601)
    await drain_all(dispatcher)
    assert fake.sent_to(P1) == ["urgent", "can wait"]


async def test_one_slow_request_does_not_hold_back_new_messages(
    store: Store, dispatcher: Dispatcher, fake: FakeTwilio, clock: FakeClock
) -> None:
    fake.answer_to(P1, Reply(hold=True))
    await add_row(store, P1, "slow", at=clock.now())
    task = asyncio.create_task(dispatcher.run(poll_s=0.05))
    try:
        await asyncio.wait_for(fake.received.wait(), 5)
        await add_row(store, P2, "请A002号到3号窗口办理", at=clock.now())
        dispatcher.wake()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(1.0):
                while not fake.sent_to(P2):
                    await asyncio.sleep(0.01)
        assert fake.sent_to(P2) == ["请A002号到3号窗口办理"]
    finally:
        fake.release()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def until(check: Callable[[], object], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.01)


async def test_run_keeps_at_most_concurrency_sends_in_flight(
    store: Store, fake: FakeTwilio, clock: FakeClock
) -> None:
    config = sms_config(fake, concurrency=2)
    assert config.twilio is not None
    provider = TwilioProvider(config.twilio, config.send_timeout_s)
    dispatcher = Dispatcher(store, provider, config, clock)
    fake.answer(Reply(hold=True), Reply(hold=True), Reply(hold=True))
    for i in range(3):
        await add_row(store, f"+86138000{i:05d}", f"m{i}", at=clock.now())
    task = asyncio.create_task(dispatcher.run(poll_s=0.05))
    try:
        await until(lambda: len(fake.creates) == 2)
        dispatcher.wake()
        await asyncio.sleep(0.2)  # a third would have left by now
        assert len(fake.creates) == 2
        # Nor is it claimed: only what is in flight is 'sending', so whatever comes next
        # (an urgent message) is not queued behind rows claimed early.
        assert sorted(r["status"] for r in await outbox(store)) == ["pending", "sending", "sending"]
        fake.release()
        await until(lambda: len(fake.messages) == 3)
    finally:
        fake.release()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await provider.close()
    assert {r["status"] for r in await outbox(store)} == {"sent"}


async def test_reconcile_leaves_a_send_in_flight_alone(
    store: Store, dispatcher: Dispatcher, fake: FakeTwilio, clock: FakeClock
) -> None:
    fake.answer(Reply(hold=True))
    ident = await add_row(store, P1, "hello", at=clock.now())
    task = asyncio.create_task(dispatcher.drain_once())
    try:
        await asyncio.wait_for(fake.received.wait(), 5)
        # Not at the provider yet as far as a look-up could tell, but still on its way:
        # putting it back would send it twice.
        assert await dispatcher.reconcile() == 0
        assert fake.lists == [] and (await row(store, ident))["status"] == "sending"
    finally:
        fake.release()
        await task
    assert (await row(store, ident))["status"] == "sent" and len(fake.creates) == 1


async def test_urgent_messages_are_claimed_ahead_of_those_that_can_wait(
    store: Store, fake: FakeTwilio, clock: FakeClock
) -> None:
    config = sms_config(fake, concurrency=1)
    assert config.twilio is not None
    provider = TwilioProvider(config.twilio, config.send_timeout_s)
    dispatcher = Dispatcher(store, provider, config, clock, batch=1)
    for i in range(3):
        await add_row(store, f"+86139000{i:05d}", f"later {i}", at=clock.now(), urgent=False)
    await add_row(store, P1, "not yet", at=clock.now(), urgent=False)
    await add_row(store, P1, "after not yet", at=clock.now())  # its phone's order still holds
    await add_row(store, P2, "请A002号到3号窗口办理", at=clock.now())
    try:
        await drain_all(dispatcher)
    finally:
        await provider.close()
    assert [c.form["Body"] for c in fake.creates] == [
        "请A002号到3号窗口办理", "later 0", "later 1", "later 2", "not yet", "after not yet",
    ]  # fmt: skip


async def test_pace_keeps_to_rate_per_s(store: Store, fake: FakeTwilio, clock: FakeClock) -> None:
    config = sms_config(fake, rate_per_s=50.0, concurrency=8)
    assert config.twilio is not None
    provider = TwilioProvider(config.twilio, config.send_timeout_s)
    dispatcher = Dispatcher(store, provider, config, clock)
    for i in range(100):
        await add_row(store, f"+86138000{i:05d}", f"m{i}", at=clock.now())
    started = time.monotonic()
    try:
        assert await drain_all(dispatcher) == 100
    finally:
        await provider.close()
    elapsed = time.monotonic() - started
    assert elapsed >= 1.9, elapsed  # 100 sends at 50/s: the last slot is 99/50 s after the first
    arrivals = sorted(c.mono for c in fake.creates)
    assert len(arrivals) == 100
    assert 99 / (arrivals[-1] - arrivals[0]) <= 50 * 1.02
    # One slot of burst, plus a little for network jitter (a request that left late
    # shortens the window it starts): 50 ms of jitter at 50/s is 2.5 slots.
    assert busiest_second(arrivals) <= 50 + 1 + 3


def busiest_second(arrivals: list[float]) -> int:
    """The most arrivals in any one-second window starting at an arrival."""
    return max(sum(1 for t in arrivals if a <= t < a + 1.0) for a in arrivals)
