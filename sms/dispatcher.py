"""The dispatcher: drains the outbox to the provider, one message per row.

A row is claimed ('sending', with an attempt recorded) in one transaction
before the provider is called and settled in another after. A crash in
between leaves it 'sending'; the next run asks the provider whether it went
out before sending it again, so no message is lost and none is doubled.
Messages to one phone leave in the order they were written; a per-sender
pace keeps to the configured messages per second; transient failures are
retried with exponential back-off and jitter, permanent ones are not.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import defaultdict
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

# The earliest due row of each phone whose earlier rows are all settled.
CLAIM_SQL = (
    "SELECT id, phone, body, attempts FROM sms_outbox o"
    " WHERE o.status='pending' AND o.next_attempt_at<=? AND o.not_before<=?"
    " AND NOT EXISTS (SELECT 1 FROM sms_outbox p WHERE p.phone=o.phone AND p.id<o.id"
    "   AND p.status IN ('pending','sending') AND p.not_before<=?)"
    " ORDER BY o.id LIMIT ?"
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
        self._wake = asyncio.Event()
        self._limit = asyncio.Semaphore(max(1, config.concurrency))

    @property
    def status_callback(self) -> str:
        """Where the provider reports delivery."""
        return f"{self.config.public_url.rstrip('/')}/sms/status"

    def wake(self) -> None:
        """Something new is in the outbox."""
        self._wake.set()

    async def run(self, poll_s: float = 1.0, reconcile_every_s: float = 60.0) -> None:
        """Reconcile what a crash left mid-send, then drain forever, reconciling now and then
        (a lookup that failed, or a send that timed out, waits for the next one)."""
        last_reconcile = -reconcile_every_s
        while True:
            try:
                if self.clock.now() - last_reconcile >= reconcile_every_s:
                    last_reconcile = self.clock.now()
                    await self.reconcile()
                sent = await self.drain_once()
            except Exception:
                log.exception("the SMS dispatcher failed a round; it will try again")
                sent = 0
            if sent == 0:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(poll_s):  # not wait_for: see bus.Subscription.wait
                        await self._wake.wait()
                self._wake.clear()

    async def reconcile(self) -> int:
        """Settle rows left 'sending' by a crash: sent if the provider has them, else resend."""
        rows = await self.store.run(
            lambda tx: tx.execute(
                "SELECT o.id, o.phone, o.body, o.attempts, MAX(a.started_at) FROM sms_outbox o"
                " LEFT JOIN sms_attempts a ON a.outbox_id=o.id WHERE o.status='sending'"
                " GROUP BY o.id ORDER BY o.id"
            )
        )
        for ident, phone, body, attempts, started in rows:
            message = Outgoing(ident, phone, body, started or self.clock.now())
            try:
                found = await self.provider.lookup(message)
            except TransientSmsError:
                log.warning("cannot reconcile SMS %s yet; it stays mid-send", ident)
                continue
            await self._settle_reconciled(Claimed(message, attempts), found)
        return len(rows)

    async def drain_once(self) -> int:
        """Claim the due rows and send them; returns how many were attempted."""
        claimed = await self.store.run(self._claim)
        if not claimed:
            return 0
        by_phone: dict[str, list[Claimed]] = defaultdict(list)
        for item in claimed:
            by_phone[item.message.phone].append(item)
        await asyncio.gather(*(self._send_in_order(items) for items in by_phone.values()))
        return len(claimed)

    async def _send_in_order(self, items: list[Claimed]) -> None:
        for item in items:
            async with self._limit:
                await self.pace.wait()
                await self._send_one(item)

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

    def _claim(self, tx: Tx) -> list[Claimed]:
        now = self.clock.now()
        claimed = []
        for ident, phone, body, attempts in tx.execute(CLAIM_SQL, (now, now, now, self.batch)):
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
