"""The connector: once an agent accepts, put the caller through, or dial the call-back.

It reads the event log (a durable reader, so an accepted call is never
forgotten across a restart) and talks to the provider's REST API in the
background, never inside a webhook: a live call is redirected to
/voice/connect; a call-back is dialled out, at most one new outbound call
per second. A reconciler asks the provider about calls whose webhooks went
quiet, so no caller or agent stays stuck after a lost status callback.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from twilio.base.exceptions import TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client

from queue_engine import Channel, Event, Tx
from sms.dispatcher import Pace

from . import ivr
from .views import FINAL_CALL, Hotline, settle_call

log = logging.getLogger(__name__)


class Connector:
    """A durable event reader that acts on accepted hotline calls through the REST API."""

    durable = True
    name = "hotline-connector"

    def __init__(self, hotline: Hotline) -> None:
        self.hotline = hotline
        self.config = hotline.config
        twilio = self.config.twilio
        assert twilio is not None, "the hotline needs [sms.twilio] or [hotline.twilio] credentials"
        self._http = AsyncTwilioHttpClient(timeout=10)
        self.client = Client(twilio.account_sid, twilio.auth_token, http_client=self._http)
        if twilio.base_url:
            self.client.api.base_url = twilio.base_url
        self.pace = Pace(self.config.callback_rate_per_s)
        self._callbacks: asyncio.Queue[int] = asyncio.Queue()

    def _url(self, path: str, **query: object) -> str:
        return self.config.public_url.rstrip("/") + ivr.url(path, **query)

    async def handle(self, events: Sequence[Event]) -> None:
        """Act on every accepted phone or call-back ticket: live callers first, since dialling
        call-backs waits for the outbound pace."""
        accepted = [
            e.ticket for e in events
            if e.type == "ticket.started" and e.ticket is not None and e.ticket.channel != Channel.HALL
        ]  # fmt: skip
        for ticket in accepted:
            if ticket is not None and ticket.channel == Channel.PHONE:
                await self._put_through(ticket.id)
        for ticket in accepted:
            if ticket is not None and ticket.channel == Channel.CALLBACK:
                # Dialled by the call-back worker at the outbound pace, so a live caller's
                # redirect never waits behind it; the reconciler re-queues any lost in a crash.
                self._callbacks.put_nowait(ticket.id)

    async def run_callbacks(self) -> None:
        """Dial queued call-backs, at most callback_rate_per_s new calls a second."""
        while True:
            ticket_id = await self._callbacks.get()
            try:
                ticket = await self.hotline.rt.engine.ticket(ticket_id)
                if ticket.state.value == "serving":
                    await self._call_back(ticket.id, ticket.phone or "", ticket.number, ticket.day)
            except Exception:
                log.exception("dialling the call-back of ticket %s failed", ticket_id)

    async def _put_through(self, ticket_id: int) -> None:
        engine = self.hotline.rt.engine
        rows = await engine.run(lambda tx: tx.execute(
            "SELECT call_sid, status FROM calls WHERE ticket_id=? AND direction='inbound'", (ticket_id,)))  # fmt: skip
        if not rows or rows[0][1] in FINAL_CALL:
            return
        try:
            await self.client.calls(rows[0][0]).update_async(
                url=self._url("connect", ticket=ticket_id), method="POST"
            )
        except TwilioRestException as exc:
            # The call is gone (hung up meanwhile): the status callback or the reconciler settles it.
            log.warning("could not redirect call %s: %s", rows[0][0], exc.msg)

    async def _call_back(self, ticket_id: int, phone: str, number: str, day: str) -> None:
        engine = self.hotline.rt.engine
        done = await engine.run(lambda tx: tx.execute(
            "SELECT 1 FROM calls WHERE ticket_id=? AND direction='outbound'", (ticket_id,)))  # fmt: skip
        if done:
            return  # a replayed event: this call-back was dialled already
        attempt = 1 + (await engine.run(lambda tx: tx.execute(
            "SELECT COUNT(*) FROM calls c JOIN tickets t ON t.id=c.ticket_id"
            " WHERE c.direction='outbound' AND t.number=? AND t.day=?", (number, day))))[0][0]  # fmt: skip
        await self.pace.wait()
        try:
            call = await self.client.calls.create_async(
                to=phone, from_=self.config.number, url=self._url("callback-connect", ticket=ticket_id),
                status_callback=self._url("status"), status_callback_method="POST",
                status_callback_event=["initiated", "ringing", "answered", "completed"],
            )  # fmt: skip
        except TwilioRestException as exc:
            # Refused outright: record the attempt as failed so the ticket is retried or ended
            # and the agent is not left holding a call that will never ring.
            log.warning("could not dial call-back for ticket %s: %s", number, exc.msg)
            sid = f"refused-{ticket_id}-{attempt}"
            await self._record_outbound(sid, phone, ticket_id, attempt)
            await settle_call(self.hotline, sid, "failed")
            return
        await self._record_outbound(call.sid or "", phone, ticket_id, attempt)

    async def _record_outbound(self, sid: str, phone: str, ticket_id: int, attempt: int) -> None:
        engine = self.hotline.rt.engine
        now = engine.clock.now()
        await engine.run(lambda tx: tx.execute(
            "INSERT INTO calls (call_sid, hall, direction, phone, ticket_id, status, attempt, created_at,"
            " updated_at) VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT (call_sid) DO NOTHING",
            (sid, engine.hall.code, "outbound", phone, ticket_id, "queued", attempt, now, now)))  # fmt: skip

    async def reconcile(self) -> int:
        """Ask the provider about open calls that have been quiet too long; settle the ended ones."""
        engine = self.hotline.rt.engine
        quiet_since = engine.clock.now() - self.config.reconcile_after_s
        marks = self.hotline.take_alive()

        def heard(tx: Tx) -> None:
            for sid, at in marks.items():
                tx.execute(
                    "UPDATE calls SET updated_at=MAX(updated_at, ?) WHERE call_sid=?", (at, sid)
                )

        if marks:  # the hold loop's sign of life, noted in memory, counts as news
            await engine.run(heard)
        rows = await engine.run(lambda tx: tx.execute(
            "SELECT call_sid FROM calls WHERE status NOT IN ('completed','busy','failed','no-answer',"
            "'canceled','callback_requested') AND updated_at<?", (quiet_since,)))  # fmt: skip
        await self._requeue_lost_callbacks(quiet_since)
        settled = 0
        for (sid,) in rows:
            try:
                call = await self.client.calls(sid).fetch_async()
            except TwilioRestException as exc:
                log.warning("cannot reconcile call %s: %s", sid, exc.msg)
                continue
            if call.status in FINAL_CALL:
                await settle_call(self.hotline, sid, str(call.status))
                settled += 1
            else:
                await engine.run(lambda tx, s=sid: tx.execute(
                    "UPDATE calls SET updated_at=? WHERE call_sid=?", (engine.clock.now(), s)))  # fmt: skip
        return settled

    async def _requeue_lost_callbacks(self, quiet_since: float) -> None:
        """Accepted call-backs with no dial on record (lost in a crash) go back to the worker."""
        engine = self.hotline.rt.engine
        rows = await engine.run(lambda tx: tx.execute(
            "SELECT t.id FROM tickets t WHERE t.hall=? AND t.channel='callback' AND t.state='serving'"
            " AND t.started_at<? AND NOT EXISTS (SELECT 1 FROM calls c WHERE c.ticket_id=t.id"
            " AND c.direction='outbound')", (engine.hall.code, quiet_since)))  # fmt: skip
        for (ticket_id,) in rows:
            self._callbacks.put_nowait(ticket_id)

    async def run_reconciler(self, every_s: float = 30.0) -> None:
        """Reconcile forever."""
        while True:
            try:
                await self.reconcile()
            except Exception:
                log.exception("the call reconciler failed a round")
            await asyncio.sleep(every_s)

    async def close(self) -> None:
        """Close the HTTP session."""
        await self._http.close()
