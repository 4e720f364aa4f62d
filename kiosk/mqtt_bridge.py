"""The MQTT bridge (DESIGN §6): a hall's events, screens and window hardware over a broker.

Topics, under ``{prefix}/halls/{hall}``::

    events                  every event (the feed's public form), QoS 1, in log order
    display                 retained: the hall display's snapshot (HallView.snapshot)
    windows/{window}        retained: what that window's LED shows (HallView.window_line)
    windows/{window}/cmd    inbound: a caller button or rating pad (kiosk/devices.py)
    windows/{window}/reply  the answer to each command: ok, or the refusal's reason

Events go out through a durable reader, ``mqtt:{hall}``, driven by a
ReaderRunner. Its ``handle`` returns only when the broker has acknowledged
every event of the batch, so the cursor never passes an event the broker
does not hold; while the link is down it waits for the next connection and
resends what is still unacknowledged. That makes delivery at least once (an
event whose PUBACK was lost with the link goes out again; its ``id`` tells).
The retained topics follow each acknowledged batch, coalesced, and are all
republished on every new connection, so a broker that lost them gets them back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import socket
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import aiomqtt

from queue_engine import Bus, Engine, Event, QueueError, ReaderRunner, Store, WorkstationState
from queue_engine.ratings import Ratings

from .devices import Command, MqttConfig, Refusal, Topics, Verb, decide, echo, parse
from .display import HallView
from .feed import public_event

log = logging.getLogger(__name__)
T = TypeVar("T")
# Unlimited in flight (a batch is bounded by the reader's batch size); a limit makes
# paho scan every unacknowledged message on each PUBACK.
MAX_INFLIGHT = 0
PENDING_WARNING = 10_000
# Without it each pipelined publish waits for the ACK of the one before (Nagle).
NO_DELAY = ((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),)
DISPLAY_MIN_S = 0.05
DISPLAY_SHARE = 0.01
SEEN_REQUESTS = 256
TICKET_VERBS = {
    Verb.CALL_NEXT: "call_next", Verb.RECALL: "recall", Verb.START: "start_service",
    Verb.COMPLETE: "complete", Verb.NO_SHOW: "mark_no_show",
}  # fmt: skip


def dumps(data: Any) -> bytes:
    """Compact UTF-8 JSON, Chinese left readable."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


def backoff(
    attempt: int, low: float, high: float, rand: Callable[[], float] = random.random
) -> float:
    """Seconds before reconnect ``attempt`` (0-based): doubling from ``low`` up to ``high``, jittered."""
    ceiling = min(high, low * 2 ** min(attempt, 32))
    return ceiling * (0.5 + rand() / 2)


class LinkLostError(Exception):
    """The connection to the broker was lost while a call waited on it."""


class Connection:
    """One broker session: its client, and whether it has been lost."""

    def __init__(self, client: aiomqtt.Client) -> None:
        self.client = client
        self.lost = asyncio.Event()

    async def guard(self, work: Awaitable[T]) -> T:
        """Await ``work`` unless the connection is lost first (then LinkLostError)."""
        task = asyncio.ensure_future(work)
        lost = asyncio.ensure_future(self.lost.wait())
        abandoned = False
        try:
            await asyncio.wait((task, lost), return_when=asyncio.FIRST_COMPLETED)
        finally:
            lost.cancel()
            if not task.done():
                abandoned = True
                task.cancel()
                await asyncio.wait((task,))
                if not task.cancelled():
                    task.exception()  # a cancelled gather finishes with one; we know why
        if abandoned:
            raise LinkLostError
        return task.result()


class Link:
    """The current connection, if any; callers wait for the next one."""

    def __init__(self) -> None:
        self.current: Connection | None = None
        self._ready = asyncio.Event()

    async def up(self) -> Connection:
        """The live connection, waiting for one if there is none."""
        while self.current is None:
            await self._ready.wait()
        return self.current

    def open(self, conn: Connection) -> None:
        """``conn`` is connected and subscribed."""
        self.current = conn
        self._ready.set()

    def close(self, conn: Connection) -> None:
        """``conn`` is gone (or must be abandoned): wake everything waiting on it."""
        conn.lost.set()
        if self.current is conn:
            self.current = None
            self._ready.clear()


class EventPublisher:
    """The durable reader ``mqtt:{hall}``: returns once the broker acknowledged its batch."""

    durable = True

    def __init__(
        self,
        topics: Topics,
        link: Link,
        view: HallView,
        published: Callable[[Sequence[Event]], None],
    ) -> None:
        self.name = f"mqtt:{topics.hall}"
        self.topics = topics
        self.link = link
        self.view = view
        self._published = published
        self.busy = False
        self.handled = 0

    async def handle(self, events: Sequence[Event]) -> None:
        """Publish this hall's events at QoS 1, across reconnects, until all are acknowledged."""
        mine = [e for e in events if e.hall == self.topics.hall]
        payloads = [dumps(public_event(e)) for e in mine]
        self.busy = True
        try:
            while payloads:
                conn = await self.link.up()
                payloads = payloads[await self._send(conn, payloads) :]
        finally:
            self.busy = False
        if events:
            self.handled = events[-1].id
        for event in mine:
            self.view.apply(event)  # idempotent: the screens reader may have folded it in already
        if mine:
            self._published(mine)

    async def _send(self, conn: Connection, payloads: list[bytes]) -> int:
        """How many of ``payloads``, from the first, the broker acknowledged on ``conn``."""
        # Tasks start in creation order, so the publishes leave in log order, pipelined.
        topic, client = self.topics.events, conn.client
        tasks = [asyncio.create_task(client.publish(topic, p, qos=1)) for p in payloads]
        try:
            await conn.guard(asyncio.gather(*tasks))
        except (LinkLostError, aiomqtt.MqttError) as exc:
            log.warning("mqtt: events not acknowledged (%s); resending after reconnect", exc)
            self.link.close(conn)
        finally:
            for task in tasks:
                task.cancel()
        acked = 0
        for task in tasks:
            if not task.done() or task.cancelled() or task.exception() is not None:
                break
            acked += 1
        return acked


class Commands:
    """Carries out device commands: parse, decide, run on the engine, build the reply."""

    def __init__(self, config: MqttConfig, engine: Engine, ratings: Ratings) -> None:
        self.config = config
        self.engine = engine
        self.ratings = ratings
        self._seen: OrderedDict[tuple[str, str | int | None], None] = OrderedDict()

    async def answer(self, window: str, payload: bytes) -> dict[str, Any]:
        """The reply to one payload sent on ``window``'s command topic."""
        command = parse(payload)
        if isinstance(command, Refusal):
            return self._reply(window, echo(payload), command)
        asked = {"device": command.device, "command": command.verb.value, "id": command.request_id}
        try:
            outcome = await self._run(window, command)
        except QueueError as exc:
            outcome = Refusal(exc.code, exc.message_zh, exc.message_en)
        except Exception:
            log.exception("mqtt: command %s at window %s failed", command, window)
            outcome = Refusal("internal_error", "系统内部错误", "Internal error")
        return self._reply(window, asked, outcome)

    async def _run(self, window: str, command: Command) -> Refusal | dict[str, Any]:
        hall = self.engine.hall.code
        ws = await self.engine.run(lambda tx: tx.workstation_at(hall, window))
        staffer = ws.virtual_number if ws and ws.state != WorkstationState.OFFLINE else None
        refusal = decide(command, window, self.config.bindings, staffer)
        key = (command.device, command.request_id)
        if refusal is None and key in self._seen:
            refusal = Refusal("duplicate", "该指令已处理", "This command id was already handled")
        if refusal is not None:
            return refusal
        assert staffer is not None
        result = await self._execute(window, command, staffer)
        if command.request_id is not None:  # only what was done: a failed press may be retried
            self._seen[key] = None
            if len(self._seen) > SEEN_REQUESTS:
                self._seen.popitem(last=False)
        return result

    async def _execute(self, window: str, command: Command, vn: str) -> dict[str, Any]:
        if command.verb in TICKET_VERBS:
            ticket = await getattr(self.engine, TICKET_VERBS[command.verb])(vn)
            fields = ("id", "number", "service", "state", "recalls")
            return {"ticket": {k: getattr(ticket, k) for k in fields} if ticket else None}
        if command.verb is Verb.RATE:
            assert command.level is not None
            rating = await self.ratings.rate_at_window(window, command.level)
            return {"rating": {"ticket_id": rating.ticket_id, "level": rating.level}}
        if command.verb is Verb.PAUSE:
            ws = await self.engine.pause(vn, command.reason)
        else:
            ws = await self.engine.resume_work(vn)
        return {"workstation": {"virtual_number": vn, "state": ws.state.value}}

    @staticmethod
    def _reply(
        window: str, asked: dict[str, Any], outcome: Refusal | dict[str, Any]
    ) -> dict[str, Any]:
        reply: dict[str, Any] = {"window": window, **asked, "ok": not isinstance(outcome, Refusal)}
        if isinstance(outcome, Refusal):
            log.warning(
                "mqtt: refused %s from %s at window %s: %s",
                asked["command"], asked["device"], window, outcome.message_en,
            )  # fmt: skip
            reply["error"] = outcome.to_dict()
        else:
            reply["result"] = outcome
        return reply


class Screens:
    """What the retained topics should say: window lines as they change, the display paced.

    A window line is recomputed only for windows the acknowledged events touched,
    and published only if it changed. The display snapshot costs time with every
    window in the hall, so it is refreshed at once after a quiet spell and otherwise
    at a pace that keeps it under DISPLAY_SHARE of the loop; the last change is
    always published (trailing edge).
    """

    def __init__(self, topics: Topics, view: HallView, now: Callable[[], float]) -> None:
        self.topics, self.view, self.now = topics, view, now
        self.lines: dict[str, dict[str, Any]] = {}
        self.dirty = asyncio.Event()
        self.reset()

    def reset(self) -> None:
        """A new session: publish everything again."""
        self.lines.clear()
        self._windows: set[str] | None = None  # None: every window
        self._people: set[str] = set()
        self._stale, self._due = True, 0.0
        self.dirty.set()

    def note(self, events: Sequence[Event]) -> None:
        """These events are on the broker: their windows and the display may have changed."""
        for event in events:
            if self._windows is not None and event.window:
                self._windows.add(event.window)
            if event.virtual_number:
                self._people.add(event.virtual_number)  # a sign-out names no window
        self._stale = True
        self.dirty.set()

    async def wait(self) -> None:
        """Until something changed, or a paced display refresh falls due."""
        timeout = max(0.0, self._due - time.monotonic()) if self._stale else None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):  # not wait_for: see bus.Subscription.wait
                await self.dirty.wait()
        self.dirty.clear()

    def updates(self) -> dict[str, bytes]:
        """Retained topic -> payload, for everything that changed and is due."""
        changed = {self.topics.window(w): dumps(line) for w, line in self._changed_lines()}
        if self._stale and time.monotonic() >= self._due:
            began = time.perf_counter()
            changed[self.topics.display] = dumps(self.view.snapshot(self.now()))
            cost = time.perf_counter() - began
            self._stale = False
            self._due = time.monotonic() + max(DISPLAY_MIN_S, cost / DISPLAY_SHARE)
        return changed

    def _changed_lines(self) -> list[tuple[str, dict[str, Any]]]:
        every = [w.number for w in self.view.hall.windows]
        if self._windows is None:
            windows = every
        else:
            seated = {w for w, line in self.lines.items() if line["virtual_number"] in self._people}
            windows = [w for w in every if w in self._windows or w in seated]
        self._windows, self._people = set(), set()
        changed = []
        for window in windows:
            line = self.view.window_line(window)
            if self.lines.get(window) != line:
                self.lines[window] = line
                changed.append((window, line))
        return changed


class MqttBridge:
    """One hall's bridge: an async context manager owning its tasks in a TaskGroup."""

    def __init__(
        self,
        config: MqttConfig,
        store: Store,
        bus: Bus,
        engine: Engine,
        view: HallView,
        ratings: Ratings | None = None,
        *,
        batch: int = 500,
    ) -> None:
        self.config = config
        self.store = store
        self.engine = engine
        self.view = view
        self.topics = Topics(config.prefix, engine.hall.code)
        self.link = Link()
        self.commands = Commands(config, engine, ratings or Ratings(engine))
        self.screens = Screens(self.topics, view, engine.clock.now)
        self.publisher = EventPublisher(self.topics, self.link, view, self.screens.note)
        self.runner = ReaderRunner(store, bus, self.publisher, batch=batch, poll_s=1.0)
        self._group: asyncio.TaskGroup | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> MqttBridge:
        self.runner.position = await self.store.run(self._place_cursor)
        self._group = asyncio.TaskGroup()
        await self._group.__aenter__()
        hall = self.topics.hall
        for name, work in (
            (f"mqtt-{hall}-link", self._stay_connected()),
            (f"mqtt-{hall}-events", self.runner.run()),
            (f"mqtt-{hall}-retained", self._keep_retained()),
        ):
            self._tasks.append(self._group.create_task(work, name=name))
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self._settle()
        for task in self._tasks:
            task.cancel()
        assert self._group is not None
        # The body's own exception propagates as it is, not wrapped in an ExceptionGroup.
        await self._group.__aexit__(None, None, None)

    async def _settle(self, timeout: float = 1.0) -> None:
        # A graceful stop lets a batch the broker already holds have its cursor written,
        # so the next start does not send it again; a broker that is away is not waited for.
        def settled() -> bool:
            publisher = self.publisher
            return not publisher.busy and self.runner.position >= publisher.handled

        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while not settled() and self.link.current is not None:
                    await asyncio.sleep(0.005)

    async def run(self) -> None:
        """Run until cancelled (the app's lifespan owns this as one named task)."""
        async with self:
            await asyncio.Future()

    async def connected(self) -> None:
        """Wait until the bridge is connected and subscribed."""
        await self.link.up()

    def _place_cursor(self, tx: Any) -> int:
        # A bridge seen for the first time starts at the log's end: devices want what
        # happens from now on, not the hall's whole history. get_cursor says 0 both for
        # "never ran" and "ran, acknowledged nothing yet", so a marker tells them apart.
        name, joined = self.publisher.name, f"{self.publisher.name}:joined"
        if tx.get_cursor(joined) == 0:
            position = tx.last_event_id()
            tx.set_cursor(joined, position + 1)
            tx.set_cursor(name, position)
            return position
        return tx.get_cursor(name)

    # --- the connection -----------------------------------------------------

    def _client(self) -> aiomqtt.Client:
        c = self.config
        # A fresh client per connection: nothing half-sent survives into the next
        # session, because the reader resends from what the broker acknowledged.
        client = aiomqtt.Client(
            c.host, c.port, identifier=c.client_id or None, username=c.username,
            password=c.password, keepalive=c.keepalive, timeout=c.timeout_s, clean_session=True,
            tls_params=aiomqtt.TLSParameters(ca_certs=c.ca_file) if c.tls else None,
            max_inflight_messages=MAX_INFLIGHT, logger=log, socket_options=NO_DELAY,
        )  # fmt: skip
        client.pending_calls_threshold = PENDING_WARNING
        return client

    async def _stay_connected(self) -> None:
        c = self.config
        attempt = 0
        while True:
            try:
                async with self._client() as client:
                    attempt = 0
                    log.info("mqtt: connected to %s:%s", c.host, c.port)
                    await self._serve(Connection(client))
            except (aiomqtt.MqttError, LinkLostError) as exc:
                log.warning("mqtt: %s:%s unavailable (%s)", c.host, c.port, exc or "link lost")
            except Exception:
                log.exception("mqtt: the connection to %s:%s failed; reconnecting", c.host, c.port)
            delay = backoff(attempt, c.reconnect_min_s, c.reconnect_max_s)
            attempt += 1
            await asyncio.sleep(delay)

    async def _serve(self, conn: Connection) -> None:
        try:
            await conn.client.subscribe(self.topics.commands, qos=1)
            self.link.open(conn)
            self.screens.dirty.set()  # a new session: republish the retained topics
            await conn.guard(self._take_commands(conn.client))
        finally:
            self.link.close(conn)

    async def _take_commands(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            window = self.topics.window_of(message.topic.value)
            if window is None:
                continue
            payload = message.payload if isinstance(message.payload, bytes) else b""
            reply = await self.commands.answer(window, payload)
            await client.publish(self.topics.reply(window), dumps(reply), qos=1)

    # --- retained topics ----------------------------------------------------

    async def _keep_retained(self) -> None:
        current: Connection | None = None
        while True:
            await self.screens.wait()
            conn = await self.link.up()
            if conn is not current:
                self.screens.reset()  # the broker may have lost them all
                current = conn
            updates = self.screens.updates()
            publish = conn.client.publish
            # QoS 0 is enough: a new session republishes them all, and a PUBACK per LED
            # line would double the acknowledgements the events compete with.
            try:
                await conn.guard(
                    asyncio.gather(*(publish(t, p, qos=0, retain=True) for t, p in updates.items()))
                )
            except (aiomqtt.MqttError, LinkLostError):
                self.link.close(conn)
                self.screens.dirty.set()  # again, on the next connection
