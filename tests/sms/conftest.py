"""SMS fixtures: a store with the sms migrations, a Twilio-shaped server, the real provider."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from queue_engine import Bus, Engine, FakeClock, HallConfig, ReaderRunner, Store
from sms.config import SmsConfig, TwilioConfig
from sms.dispatcher import Dispatcher
from sms.notifier import SmsNotifier
from sms.providers.twilio import TwilioProvider
from tests.sms.fake_twilio import FakeTwilio

SENDER = "+15005550006"
SERVICE_SID = "MG" + "fedcba9876543210" * 2
PUBLIC = "https://hall.example"

# twilio 9.13's async client still hands aiohttp 3.14 a BasicAuth and ``auth=``; both warn
# (DeprecationWarning), which the suite's filterwarnings=error turns into a failed send.
TWILIO_DEPRECATIONS = (
    "ignore:BasicAuth is deprecated:DeprecationWarning",
    "ignore:The 'auth' parameter is deprecated:DeprecationWarning",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/sms/" in str(item.path).replace("\\", "/"):
            for spec in TWILIO_DEPRECATIONS:
                item.add_marker(pytest.mark.filterwarnings(spec))


def sms_config(fake: FakeTwilio | None = None, **overrides: Any) -> SmsConfig:
    """Settings for tests: quick back-off, a fast pace, Twilio pointed at ``fake``."""
    twilio = None
    if fake is not None:
        twilio = TwilioConfig(
            fake.account_sid, fake.auth_token, overrides.pop("from_number", SENDER),
            overrides.pop("messaging_service_sid", None), fake.base_url,
        )  # fmt: skip
    base = SmsConfig(
        provider="twilio" if fake else "console",
        signature="武侯政务",
        public_url=PUBLIC,
        rate_per_s=1000.0,
        concurrency=8,
        backoff_s=2.0,
        max_backoff_s=60.0,
        send_timeout_s=2.0,
        twilio=twilio,
    )
    return dataclasses.replace(base, **overrides)


@pytest.fixture
async def store(store_factory: Callable[[], Store]) -> AsyncIterator[Store]:
    s = store_factory()
    s.add_migrations("sms")
    async with s:
        yield s


@pytest.fixture
async def fake(clock: FakeClock) -> AsyncIterator[FakeTwilio]:
    async with FakeTwilio(clock=clock.now) as server:
        yield server


@pytest.fixture
def config(fake: FakeTwilio) -> SmsConfig:
    return sms_config(fake)


@pytest.fixture
async def provider(config: SmsConfig) -> AsyncIterator[TwilioProvider]:
    assert config.twilio is not None
    p = TwilioProvider(config.twilio, config.send_timeout_s)
    yield p
    await p.close()


@pytest.fixture
def dispatcher(
    store: Store, provider: TwilioProvider, config: SmsConfig, clock: FakeClock
) -> Dispatcher:
    return Dispatcher(store, provider, config, clock, rng=lambda: 0.5)


@pytest.fixture
def notifier(config: SmsConfig, hall: HallConfig) -> SmsNotifier:
    return SmsNotifier(config, {hall.code: hall})


@pytest.fixture
def runner(store: Store, bus: Bus, notifier: SmsNotifier, engine: Engine) -> ReaderRunner:
    return ReaderRunner(store, bus, notifier)


async def outbox(store: Store, where: str = "1", params: tuple = ()) -> list[dict[str, Any]]:
    """Outbox rows as dicts, in id order."""

    def read(tx: Any) -> list[dict[str, Any]]:
        cols = [r[1] for r in tx.execute("PRAGMA table_info(sms_outbox)")]
        rows = tx.execute(f"SELECT * FROM sms_outbox WHERE {where} ORDER BY id", params)
        return [dict(zip(cols, r, strict=True)) for r in rows]

    return await store.run(read)


async def attempts(store: Store, outbox_id: int) -> list[tuple[int, str, str | None]]:
    """(n, outcome, error_code) of a row's attempts."""
    return await store.run(
        lambda tx: [
            tuple(r)
            for r in tx.execute(
                "SELECT n, outcome, error_code FROM sms_attempts WHERE outbox_id=? ORDER BY n",
                (outbox_id,),
            )
        ]
    )


async def add_row(
    store: Store, phone: str, body: str, *, at: float, key: str | None = None,
    template: str = "called", not_before: float | None = None, urgent: bool = True,
) -> int:  # fmt: skip
    """An outbox row written directly (dispatcher tests need no engine)."""

    def insert(tx: Any) -> int:
        n = tx.execute("SELECT COUNT(*) FROM sms_outbox")[0][0]
        tx.execute(
            "INSERT INTO sms_outbox (dedupe_key, event_id, template, hall, ticket_id, phone,"
            " body, urgent, status, created_at, not_before, next_attempt_at, updated_at)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (key or f"test:{n}", None, template, "test", None, phone, body, int(urgent), "pending",
             at, not_before or at, not_before or at, at),
        )  # fmt: skip
        return tx.execute("SELECT MAX(id) FROM sms_outbox")[0][0]

    return await store.run(insert)
