"""The dispatcher: drains the outbox to the provider, one message per row.

A row is claimed ('sending', with an attempt recorded) in one transaction
before the provider is called and settled in another after. A crash in
between leaves it 'sending'; the next run asks the provider whether it went
out before sending it again, so no message is lost and none is doubled.
Sends run as tasks, at most ``concurrency`` at once, and a slot that frees is
refilled at once: one slow request never holds back the messages behind it.
Messages to one phone leave in the order they were written, urgent ones
ahead of those that can wait; a per-sender pace keeps to the configured
messages per second; transient failures are retried with exponential
back-off and jitter, permanent ones are not.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from queue_engine import Clock, Store, Tx

from .config import SmsConfig
from .providers.base import (
    OptedOutError,
    Outgoing,
    PermanentSmsError,
    Sent,
    SmsProvider,
    TransientSmsError,
)

log = logging.getLogger(__name__)

# The earliest due row of each phone whose earlier rows are all settled, urgent first.
CLAIM_SQL = (
    "SELECT id, phone, body, attempts FROM sms_outbox o"
    " WHERE o.status='pending' AND o.next_attempt_at<=? AND o.not_before<=?"
    " AND NOT EXISTS (SELECT 1 FROM sms_outbox p WHERE p.phone=o.phone AND p.id<o.id"
    "   AND p.status IN ('pending','sending') AND p.not_before<=?)"
    " ORDER BY o.urgent DESC, o.id LIMIT ?"
)
FINAL = ("sent", "delivered", "undelivered", "failed", "opted_out", "skipped", "expired")


@dataclass(frozen=True, slots=True)
class Claimed:
    """A row being sent, with the number of this attempt."""

    message: Outgoing
    attempt: int


class Pace:
    """At most ``rate`` sends per second from one sender (slots reserved without awaiting)."""

    def __init__(self, rate: float, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.monotonic = monotonic
        self._next = 0.0

    async def wait(self) -> None:
        """Wait for this send's slot."""
        now = self.monotonic()
        slot = max(now, self._next)
        self._next = slot + self.interval
        if slot > now:
            await asyncio.sleep(slot - now)


class Dispatcher:
    """Sends what the notifier wrote; owned by the app's lifespan as one task."""

    def __init__(
        self,
        store: Store,
        provider: SmsProvider,
        config: SmsConfig,
        clock: Clock,
        *,
        rng: Callable[[], float] = random.random,
        batch: int = 200,
    ) -> None:
        self.store = store
        self.provider = provider
        self.config = config
        self.clock = clock
        self.rng = rng
        self.batch = batch
        self.pace = Pace(config.rate_per_s)
        self.concurrency = max(1, config.concurrency)
        self._wake = asyncio.Event()
        self._in_flight: set[int] = set()  # outbox ids this process is sending
        # A claim and reconcile's read of mid-send rows never interleave, so reconcile
        # always knows which of the rows it reads are in flight here.
        self._claiming = asyncio.Lock()

    @property
    def status_callback(self) -> str:
        """Where the provider reports delivery."""
        return f"{self.config.public_url.rstrip('/')}/sms/status"

    def wake(self) -> None:
        """Something new is in the outbox."""
        self._wake.set()

    async def run(self, poll_s: float = 1.0, reconcile_every_s: float = 60.0) -> None:
        """Keep up to ``concurrency`` sends in flight, claiming more whenever a slot frees or
        something is written; reconcile what a crash or a timeout left mid-send at the start
        and then now and then, beside the sends."""
        next_reconcile = self.clock.now()
        reconciling: asyncio.Task[None] | None = None
        async with asyncio.TaskGroup() as tasks:
            while True:
                self._wake.clear()
                idle = reconciling is None or reconciling.done()
                if idle and self.clock.now() >= next_reconcile:
                    next_reconcile = self.clock.now() + reconcile_every_s
                    reconciling = tasks.create_task(self._reconcile_logged(), name="sms-reconcile")
                try:
                    await self._fill(tasks)
                except Exception:
                    log.exception("the SMS dispatcher failed to claim; it will try again")
                await self._woken(poll_s)

    async def _woken(self, poll_s: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(poll_s):  # not wait_for: see bus.Subscription.wait
                await self._wake.wait()

    async def _fill(self, tasks: asyncio.TaskGroup) -> None:
        free = self.concurrency - len(self._in_flight)
        if free <= 0:
            return
        for item in await self._claim_some(min(free, self.batch)):
            tasks.create_task(self._send_tracked(item), name=f"sms-send-{item.message.outbox_id}")

    async def _reconcile_logged(self) -> None:
        try:
            await self.reconcile()
        except Exception:
            log.exception("the SMS dispatcher failed to reconcile; it will try again")
        self._wake.set()  # a row put back, or settled, lets its phone's next one go

    async def reconcile(self) -> int:
        """Settle rows a crash or a timeout left 'sending' (not those in flight here): sent if
        the provider has them, else resend."""
        async with self._claiming:
            busy = set(self._in_flight)
            rows = await self.store.run(
                lambda tx: tx.execute(
                    "SELECT o.id, o.phone, o.body, o.attempts, MAX(a.started_at) FROM sms_outbox o"
                    " LEFT JOIN sms_attempts a ON a.outbox_id=o.id WHERE o.status='sending'"
                    " GROUP BY o.id ORDER BY o.id"
                )
            )
        left = [r for r in rows if r[0] not in busy]
        for ident, phone, body, attempts, started in left:
            message = Outgoing(ident, phone, body, started or self.clock.now())
            try:
                found = await self.provider.lookup(message)
            except TransientSmsError:
                log.warning("cannot reconcile SMS %s yet; it stays mid-send", ident)
                continue
            await self._settle_reconciled(Claimed(message, attempts), found)
        return len(left)

    async def drain_once(self) -> int:
        """Claim the due rows and send them, waiting for every send (one round, for tests and
        tools: ``run`` never waits for a round); returns how many were attempted."""
        claimed = await self._claim_some(self.batch)
        limit = asyncio.Semaphore(self.concurrency)

        async def send(item: Claimed) -> None:
            async with limit:
                await self._send_tracked(item)

        await asyncio.gather(*(send(item) for item in claimed))
        return len(claimed)

    async def _claim_some(self, limit: int) -> list[Claimed]:
        async with self._claiming:
            claimed = await self.store.run(lambda tx: self._claim(tx, limit))
            self._in_flight.update(item.message.outbox_id for item in claimed)
        return claimed

    async def _send_tracked(self, item: Claimed) -> None:
        try:
            await self.pace.wait()
            await self._send_one(item)
        except Exception:
            log.exception("SMS %s was not settled; reconcile will", item.message.outbox_id)
        finally:
            # Only once settled (or left for a look-up) may reconcile take the row.
            self._in_flight.discard(item.message.outbox_id)
            self._wake.set()  # a free slot, and maybe this phone's next message

    async def _send_one(self, item: Claimed) -> None:
        try:
            async with asyncio.timeout(self.config.send_timeout_s):
                sent = await self.provider.send(item.message, self.status_callback)
        except TimeoutError:
            # The provider may have taken it: leave it mid-send for reconcile() to look up,
            # rather than risk a second copy.
            await self._leave_for_lookup(item)
        except OptedOutError as exc:
            await self._settle(item, "opted_out", exc.error_code, exc.message_en, opt_out=True)
        except PermanentSmsError as exc:
            await self._settle(item, "failed", exc.error_code, exc.message_en)
        except TransientSmsError as exc:
            await self._retry_or_fail(item, exc)
        else:
            await self._settle(item, _our_status(sent.status), None, None, sent=sent)

    # --- transactions ----------------------------------------------------------

    def _claim(self, tx: Tx, limit: int | None = None) -> list[Claimed]:
        now = self.clock.now()
        claimed = []
        rows = tx.execute(CLAIM_SQL, (now, now, now, limit or self.batch))
        for ident, phone, body, attempts in rows:
            if tx.execute("SELECT 1 FROM sms_optouts WHERE phone=?", (phone,)):
                tx.execute(
                    "UPDATE sms_outbox SET status='opted_out', updated_at=? WHERE id=?",
                    (now, ident),
                )
                continue
            tx.execute(
                "UPDATE sms_outbox SET status='sending', attempts=attempts+1, updated_at=?"
                " WHERE id=?",
                (now, ident),
            )
            tx.execute(
                "INSERT INTO sms_attempts (outbox_id, n, started_at, outcome) VALUES (?,?,?,?)",
                (ident, attempts + 1, now, "sending"),
            )
            claimed.append(Claimed(Outgoing(ident, phone, body, now), attempts + 1))
        return claimed

    async def _settle(
        self,
        item: Claimed,
        status: str,
        code: str | None,
        error: str | None,
        *,
        sent: Sent | None = None,
        opt_out: bool = False,
    ) -> None:
        now = self.clock.now()
        ident = item.message.outbox_id
        provider_id = sent.provider_id if sent else None

        def settle(tx: Tx) -> None:
            tx.execute(
                "UPDATE sms_outbox SET status=?, provider_id=COALESCE(?, provider_id),"
                " error_code=?, error=?, sent_at=CASE WHEN ? THEN ? ELSE sent_at END,"
                " updated_at=? WHERE id=?",
                (status, provider_id, code, error, sent is not None, now, now, ident),
            )
            _finish_attempt(tx, ident, item.attempt, now, status, code, error, provider_id)
            if provider_id:
                apply_early_status(tx, provider_id, now)
            if opt_out:
                tx.execute(
                    "INSERT INTO sms_optouts (phone, opted_out_at, source) VALUES (?,?,?)"
                    " ON CONFLICT (phone) DO NOTHING",
                    (item.message.phone, now, self.provider.name),
                )

        await self.store.run(settle)

    async def _settle_reconciled(self, item: Claimed, found: Sent | None) -> None:
        if found is not None:
            await self._settle(item, _our_status(found.status), None, None, sent=found)
            return
        now = self.clock.now()
        ident = item.message.outbox_id

        def back(tx: Tx) -> None:
            tx.execute(
                "UPDATE sms_outbox SET status='pending', next_attempt_at=?, updated_at=?"
                " WHERE id=? AND status='sending'",
                (now, now, ident),
            )
            _finish_attempt(tx, ident, item.attempt, now, "lost", None, "not at the provider", None)

        await self.store.run(back)

    async def _leave_for_lookup(self, item: Claimed) -> None:
        now = self.clock.now()
        ident = item.message.outbox_id
        await self.store.run(
            lambda tx: _finish_attempt(
                tx,
                ident,
                item.attempt,
                now,
                "timeout",
                "timeout",
                "no answer in time; to be looked up",
                None,
            )  # fmt: skip
        )

    async def _retry_or_fail(self, item: Claimed, exc: TransientSmsError) -> None:
        if item.attempt >= self.config.max_attempts:
            await self._settle(item, "failed", exc.error_code, f"gave up: {exc.message_en}")
            return
        now = self.clock.now()
        delay = self.backoff(item.attempt)
        ident = item.message.outbox_id

        def later(tx: Tx) -> None:
            tx.execute(
                "UPDATE sms_outbox SET status='pending', next_attempt_at=?, error_code=?,"
                " error=?, updated_at=? WHERE id=?",
                (now + delay, exc.error_code, exc.message_en, now, ident),
            )
            _finish_attempt(
                tx, ident, item.attempt, now, "retry", exc.error_code, exc.message_en, None
            )

        await self.store.run(later)

    def backoff(self, attempt: int) -> float:
        """Seconds before attempt ``attempt + 1``: exponential, capped, with ±50% jitter."""
        base = min(self.config.max_backoff_s, self.config.backoff_s * 2 ** (attempt - 1))
        return base * (0.5 + self.rng())


def _finish_attempt(
    tx: Tx,
    outbox_id: int,
    n: int,
    now: float,
    outcome: str,
    code: str | None,
    error: str | None,
    provider_id: str | None,
) -> None:
    tx.execute(
        "UPDATE sms_attempts SET finished_at=?, outcome=?, error_code=?, error=?, provider_id=?"
        " WHERE outbox_id=? AND n=?",
        (now, outcome, code, error, provider_id, outbox_id, n),
    )


def _our_status(provider_status: str) -> str:
    """The provider's first status in our words: handed over is 'sent'."""
    return "delivered" if provider_status == "delivered" else "sent"


def apply_early_status(tx: Tx, provider_id: str, now: float) -> None:
    """A delivery callback that came before we saved the message id is applied now."""
    rows = tx.execute(
        "SELECT status, error_code FROM sms_early_status WHERE provider_id=?", (provider_id,)
    )
    if rows:
        tx.execute(
            "UPDATE sms_outbox SET status=?, error_code=COALESCE(?, error_code), updated_at=?"
            " WHERE provider_id=?",
            (rows[0][0], rows[0][1], now, provider_id),
        )
        tx.execute("DELETE FROM sms_early_status WHERE provider_id=?", (provider_id,))
