"""``callcenter device-sim``: one window's LED display, caller button and rating pad, over MQTT.

It shows the retained ``windows/{window}`` line as the LED above the counter
would, and sends what a hardware button would send, so a hall can be shown
without hardware. Keys: n call next, r recall, s start, c complete, x no-show,
p pause, u resume, 1–5 rate, q quit. ``--send`` plays a fixed sequence and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import uuid
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.panel import Panel
from rich.text import Text

from kiosk.devices import DeviceKind, MqttConfig, Topics, Verb

from .config_checks import ConfigError
from .mqtt_settings import mqtt_config
from .settings import load_settings

KEYS = {
    "n": Verb.CALL_NEXT, "r": Verb.RECALL, "s": Verb.START, "c": Verb.COMPLETE,
    "x": Verb.NO_SHOW, "p": Verb.PAUSE, "u": Verb.RESUME,
}  # fmt: skip
REPLY_WAIT_S = 5.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The subcommand's options."""
    parser.add_argument("--config", default="config.toml")
    parser.add_argument("--window", required=True, help="the window to play, e.g. 12")
    parser.add_argument("--device", help="caller id (default: the caller bound to the window)")
    parser.add_argument("--pad", help="rating pad id (default: the pad bound to the window)")
    parser.add_argument(
        "--send", action="append", metavar="COMMAND",
        help="send COMMAND (call_next, start, complete, rate:5 …) and exit; repeatable",
    )  # fmt: skip


def run(args: argparse.Namespace, console: Console) -> int:
    """Play the window until q (or send ``--send`` commands and exit)."""
    settings = load_settings(args.config)
    config = mqtt_config(settings)
    if config is None:
        raise ConfigError(
            "mqtt", "the config has no mqtt table: the bridge is off, nothing would answer"
        )
    if settings.hall.window(args.window) is None:
        raise ConfigError("--window", f"the hall has no window {args.window!r}")
    sim = Simulator(config, settings.hall.code, args.window, console, args.device, args.pad)
    return asyncio.run(sim.run(args.send))


def bound(config: MqttConfig, window: str, kind: DeviceKind) -> str | None:
    """The first device of ``kind`` bound to ``window``."""
    return next((b.device for b in config.bound_to(window) if b.kind is kind), None)


def led(line: dict[str, Any]) -> Panel:
    """The LED strip above the window, in rich."""
    state, number, window = line.get("state"), line.get("number"), line.get("window")
    if state == "calling" and number:
        zh, en = (
            f"请 {number} 号到 {window} 号窗口",
            f"Ticket {number}, please come to window {window}",
        )
    elif state == "serving" and number:
        zh, en = f"{number} 号 正在办理", f"Now serving {number}"
    elif state in ("available", "wrap_up"):
        zh, en = (
            "欢迎办理",
            f"Open · {line.get('staff_masked') or ''} {line.get('virtual_number') or ''}",
        )
    elif state == "paused":
        zh, en = "暂停服务", f"Paused ({line.get('pause_reason') or ''})"
    else:
        zh, en = "暂停服务", "Closed"
    text = Text(zh, style="bold red on black", justify="center")
    text.append(f"\n{en}", style="red on black")
    return Panel(text, title=f"{window} 号窗口 · window {window}", style="on black", width=60)


class Simulator:
    """The caller button and rating pad of one window, and its LED."""

    def __init__(
        self,
        config: MqttConfig,
        hall: str,
        window: str,
        console: Console,
        caller: str | None = None,
        pad: str | None = None,
    ) -> None:
        self.config, self.window, self.console = config, window, console
        self.topics = Topics(config.prefix, hall)
        self.caller = caller or bound(config, window, DeviceKind.CALLER) or f"caller-{window}"
        self.pad = pad or bound(config, window, DeviceKind.RATINGPAD) or f"pad-{window}"
        self.replies: dict[str, asyncio.Future[dict[str, Any]]] = {}

    async def run(self, script: Sequence[str] | None) -> int:
        """Connect, show the LED, and send commands from the keyboard or the script."""
        import aiomqtt

        c = self.config
        tls = aiomqtt.TLSParameters(ca_certs=c.ca_file) if c.tls else None
        client = aiomqtt.Client(
            c.host, c.port, identifier=f"device-sim-{self.window}-{uuid.uuid4().hex[:6]}",
            username=c.username, password=c.password, tls_params=tls,
        )  # fmt: skip
        self.console.print(
            f"caller [bold]{self.caller}[/] · pad [bold]{self.pad}[/] · {c.host}:{c.port}"
        )
        async with client:
            await client.subscribe(self.topics.window(self.window), qos=1)
            await client.subscribe(self.topics.reply(self.window), qos=1)
            shower = asyncio.create_task(self._show(client), name=f"device-sim-{self.window}")
            try:
                if script:
                    return await self._play(client, script)
                await self._keyboard(client)
                return 0
            finally:
                shower.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await shower

    async def _show(self, client: Any) -> None:
        async for message in client.messages:
            with contextlib.suppress(ValueError, TypeError):
                data = json.loads(message.payload)
                if message.topic.value == self.topics.reply(self.window):
                    self._answered(data)
                else:
                    self.console.print(led(data))

    def _answered(self, reply: dict[str, Any]) -> None:
        future = self.replies.pop(str(reply.get("id")), None)
        if future is not None and not future.done():
            future.set_result(reply)
        if reply.get("ok"):
            self.console.print(
                f"[green]✓ {reply.get('command')}[/] {json.dumps(reply.get('result'), ensure_ascii=False)}"
            )
        else:
            error = reply.get("error") or {}
            self.console.print(
                f"[red]✗ {error.get('code')}[/] {error.get('message_zh')} · {error.get('message_en')}"
            )

    async def send(self, client: Any, command: str) -> dict[str, Any] | None:
        """Send one command (``rate:5`` rates with the pad) and wait for its reply."""
        verb, _, level = command.partition(":")
        rid = uuid.uuid4().hex[:8]
        body: dict[str, Any] = {"device": self.caller, "command": verb, "id": rid}
        if verb == Verb.RATE:
            body |= {"device": self.pad, "level": int(level) if level.isdigit() else level}
        future = asyncio.get_running_loop().create_future()
        self.replies[rid] = future
        await client.publish(self.topics.command(self.window), json.dumps(body), qos=1)
        try:
            return await asyncio.wait_for(future, REPLY_WAIT_S)
        except TimeoutError:
            self.replies.pop(rid, None)
            self.console.print("[yellow]no reply: is the bridge running?[/]")
            return None

    async def _play(self, client: Any, script: Sequence[str]) -> int:
        replies = [await self.send(client, command) for command in script]
        await asyncio.sleep(0.2)  # let the LED show the last change
        return 0 if all(r and r.get("ok") for r in replies) else 1

    async def _keyboard(self, client: Any) -> None:
        self.console.print("keys: n call next · r recall · s start · c complete · x no-show · "
                           "p pause · u resume · 1–5 rate · q quit")  # fmt: skip
        while True:
            try:
                key = (await asyncio.to_thread(input)).strip().lower()
            except EOFError:
                return
            if key == "q":
                return
            if key in KEYS:
                await self.send(client, KEYS[key].value)
            elif key in ("1", "2", "3", "4", "5"):
                await self.send(client, f"rate:{key}")
            elif key:
                await self.send(client, key)
