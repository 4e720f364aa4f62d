"""A real broker, a hall on SQLite, a bridge and test subscribers with unique topic prefixes.

The broker is the Mosquitto on 127.0.0.1:1883; a test that stops the broker
starts its own on a free loopback port instead. Without a broker the tests
skip with the reason, except under CI=true, where they fail.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from kiosk.devices import Binding, DeviceKind, MqttConfig
from kiosk.display import HallView
from kiosk.mqtt_bridge import MqttBridge
from queue_engine import Bus, Engine, FakeClock, Store, open_store
from tests.conftest import IN_CI, make_hall

HOST = "127.0.0.1"
PORT = int(os.environ.get("MQTT_TEST_PORT", "1883"))
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
WAIT_S = 5.0

DEVICES = (
    Binding("caller-1", "1", DeviceKind.CALLER),
    Binding("pad-1", "1", DeviceKind.RATINGPAD),
    Binding("caller-2", "2", DeviceKind.CALLER),
    Binding("caller-3", "3", DeviceKind.CALLER),
)


def unavailable(reason: str) -> None:
    """Skip, or fail under CI=true, where the broker must be there."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: the MQTT tests must run)")
    pytest.skip(reason)


def reachable(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class Mosquitto:
    """A broker of our own on a free loopback port, stopped and started by its PID."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.conf = folder / "mosquitto.conf"
        # Run as root, mosquitto would drop to its own user, who may not write to tmp_path.
        user = "user root\n" if os.geteuid() == 0 else ""
        self.conf.write_text(
            f"listener {self.port} {HOST}\nallow_anonymous true\nset_tcp_nodelay true\n"
            f"persistence true\npersistence_location {folder}/\nlog_dest none\n{user}"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.conf.with_name("mosquitto.out"), "ab") as out:
            self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)], stdout=out, stderr=out)
        deadline = time.monotonic() + WAIT_S
        while not reachable(HOST, self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mosquitto did not start on port {self.port}")
            time.sleep(0.02)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.kill(self.proc.pid, signal.SIGTERM)
        self.proc.wait(WAIT_S)


@pytest.fixture
def broker() -> tuple[str, int]:
    """The machine's Mosquitto."""
    if not reachable(HOST, PORT):
        unavailable(
            f"no MQTT broker at {HOST}:{PORT} (start: mosquitto -d -c /etc/mosquitto/mosquitto.conf)"
        )
    return HOST, PORT


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterable[Mosquitto]:
    """A Mosquitto of the test's own, which it may stop and start."""
    if not Path(MOSQUITTO).exists():
        unavailable(f"no mosquitto binary at {MOSQUITTO}")
    folder = tmp_path / "broker"
    folder.mkdir()
    m = Mosquitto(folder)
    m.start()
    try:
        yield m
    finally:
        m.stop()


@pytest.fixture
def prefix() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


class Hall:
    """A hall on a SQLite store in tmp_path: engine, bus, view and fake clock."""

    def __init__(self, store: Store, bus: Bus, engine: Engine, clock: FakeClock) -> None:
        self.store, self.bus, self.engine, self.clock = store, bus, engine, clock
        self.view: HallView | None = None

    async def fresh_view(self) -> HallView:
        state = await self.engine.state()
        self.view = HallView.load(
            self.engine.hall, state.day, state.tickets, state.workstations, state.last_event_id
        )
        return self.view

    async def log(self) -> list[Any]:
        return await self.store.run(lambda tx: tx.events_after(0, 10_000, self.engine.hall.code))


@pytest.fixture
async def rt(tmp_path: Path) -> AsyncIterator[Hall]:
    store = open_store(f"sqlite:///{tmp_path}/queue.db")
    async with store:
        bus = Bus()
        store.add_commit_listener(bus.publish)
        clock = FakeClock(1_780_020_000.0)  # Friday 2026-05-29, 10:00 in Shanghai
        engine = Engine(store, make_hall(), clock)
        await engine.load_hall()
        yield Hall(store, bus, engine, clock)


def config(host: str, port: int, prefix: str, **kw: Any) -> MqttConfig:
    """Bridge settings for a test: quick reconnects, the test devices."""
    return MqttConfig(
        host=host, port=port, client_id=f"bridge-{prefix}", prefix=prefix,
        reconnect_min_s=0.05, reconnect_max_s=0.3, keepalive=5, timeout_s=1.0, devices=DEVICES, **kw,
    )  # fmt: skip


@contextlib.asynccontextmanager
async def running_bridge(hall: Hall, cfg: MqttConfig) -> AsyncIterator[MqttBridge]:
    view = await hall.fresh_view()
    async with MqttBridge(cfg, hall.store, hall.bus, hall.engine, view) as bridge:
        await asyncio.wait_for(bridge.connected(), WAIT_S)
        yield bridge


class Listener:
    """A subscriber that keeps every message it gets, reconnecting when the broker goes away."""

    def __init__(
        self, host: str, port: int, topics: Iterable[str], *, persistent: bool = False
    ) -> None:
        self.host, self.port, self.topics = host, port, list(topics)
        self.identifier = f"listener-{uuid.uuid4().hex[:10]}"
        self.persistent = persistent
        self.messages: list[aiomqtt.Message] = []
        self._news = asyncio.Event()
        self._subscribed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Listener:
        self._task = asyncio.create_task(self._run(), name=self.identifier)
        await asyncio.wait_for(self._subscribed.wait(), WAIT_S)
        return self

    async def __aexit__(self, *exc: Any) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _run(self) -> None:
        while True:
            try:
                client = aiomqtt.Client(
                    self.host, self.port, identifier=self.identifier,
                    clean_session=not self.persistent, keepalive=5, timeout=1,
                )  # fmt: skip
                async with client:
                    for topic in self.topics:
                        await client.subscribe(topic, qos=1)
                    self._subscribed.set()
                    async for message in client.messages:
                        self.messages.append(message)
                        self._news.set()
            except aiomqtt.MqttError:
                await asyncio.sleep(0.05)

    def payloads(self, topic: str | None = None) -> list[Any]:
        import json

        return [
            json.loads(m.payload)  # type: ignore[arg-type]
            for m in self.messages
            if topic is None or m.topic.matches(topic)
        ]

    async def wait_for(self, done: Callable[[], bool], timeout: float = WAIT_S) -> None:
        async with asyncio.timeout(timeout):
            while not done():
                self._news.clear()
                await self._news.wait()


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = WAIT_S) -> None:
    """Poll ``check`` (a store read) until it holds; the broker's timing is real."""
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(0.01)


async def send(host: str, port: int, topic: str, payload: bytes | str) -> None:
    """One device message, QoS 1."""
    async with aiomqtt.Client(host, port, identifier=f"device-{uuid.uuid4().hex[:8]}") as c:
        await c.publish(topic, payload, qos=1)
