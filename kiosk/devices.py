"""Hardware at the windows, as pure data and decisions (DESIGN §6, §11).

A caller button or a rating pad publishes a small JSON command on its window's
``cmd`` topic (``Topics`` names the tree), e.g.
``{"device": "caller-12", "command": "call_next", "id": "a1"}`` or
``{"device": "pad-12", "command": "rate", "level": 5}``. ``parse`` reads it,
``decide`` says whether that device may do it at that window now. Both are
pure, so the bridge only does the I/O, and every refusal has one shape: a
stable code and a Chinese and an English reason.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

MAX_PAYLOAD = 4096
MAX_FIELD = 64
PAUSE_REASONS = ("break", "meeting", "back_office", "away")


class DeviceKind(StrEnum):
    """What a bound device is: a staffer's call button or a citizen's rating pad."""

    CALLER = "caller"
    RATINGPAD = "ratingpad"


class Verb(StrEnum):
    """The commands a device can send."""

    CALL_NEXT = "call_next"
    RECALL = "recall"
    START = "start"
    COMPLETE = "complete"
    NO_SHOW = "no_show"
    PAUSE = "pause"
    RESUME = "resume"
    RATE = "rate"


ALLOWED: Mapping[DeviceKind, frozenset[Verb]] = {
    DeviceKind.CALLER: frozenset(Verb) - {Verb.RATE},
    DeviceKind.RATINGPAD: frozenset({Verb.RATE}),
}
VERB_ZH = {
    Verb.CALL_NEXT: "叫号", Verb.RECALL: "重呼", Verb.START: "开始办理", Verb.COMPLETE: "办结",
    Verb.NO_SHOW: "过号", Verb.PAUSE: "暂停", Verb.RESUME: "恢复", Verb.RATE: "评价",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Binding:
    """A device id bound to one window of the hall."""

    device: str
    window: str
    kind: DeviceKind = DeviceKind.CALLER


@dataclass(frozen=True, slots=True)
class MqttConfig:
    """The broker, the topic prefix and the device bindings (read from ``[mqtt]``)."""

    host: str = "127.0.0.1"
    port: int = 1883
    client_id: str = ""
    username: str | None = None
    password: str | None = None
    tls: bool = False
    ca_file: str | None = None
    prefix: str = "callcenter"
    keepalive: int = 30
    timeout_s: float = 5.0
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 30.0
    devices: tuple[Binding, ...] = ()
    bindings: Mapping[str, Binding] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "bindings", {b.device: b for b in self.devices})

    def bound_to(self, window: str) -> list[Binding]:
        """The devices bound to ``window``."""
        return [b for b in self.devices if b.window == window]


@dataclass(frozen=True, slots=True)
class Topics:
    """The topic tree of one hall."""

    prefix: str
    hall: str

    @property
    def base(self) -> str:
        """``{prefix}/halls/{hall}``."""
        return f"{self.prefix}/halls/{self.hall}"

    @property
    def events(self) -> str:
        """Every event, QoS 1."""
        return f"{self.base}/events"

    @property
    def display(self) -> str:
        """The retained hall display snapshot."""
        return f"{self.base}/display"

    @property
    def commands(self) -> str:
        """The wildcard the bridge subscribes to for device commands."""
        return f"{self.base}/windows/+/cmd"

    def window(self, window: str) -> str:
        """The retained LED line of one window."""
        return f"{self.base}/windows/{window}"

    def command(self, window: str) -> str:
        """Where a window's devices send commands."""
        return f"{self.window(window)}/cmd"

    def reply(self, window: str) -> str:
        """Where the bridge answers a window's devices."""
        return f"{self.window(window)}/reply"

    def window_of(self, topic: str) -> str | None:
        """The window a command topic names, or None."""
        head, tail = f"{self.base}/windows/", "/cmd"
        if not (topic.startswith(head) and topic.endswith(tail)):
            return None
        window = topic[len(head) : -len(tail)]
        return window if window and "/" not in window else None


@dataclass(frozen=True, slots=True)
class Command:
    """One parsed command from a device."""

    device: str
    verb: Verb
    level: int | None = None
    reason: str = "away"
    request_id: str | int | None = None


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a command was not carried out: a stable code and a bilingual reason."""

    code: str
    message_zh: str
    message_en: str

    def to_dict(self) -> dict[str, str]:
        """The ``error`` member of a reply."""
        return {"code": self.code, "message_zh": self.message_zh, "message_en": self.message_en}


def malformed(en: str, zh: str = "指令格式错误") -> Refusal:
    """A payload that is not a command we understand."""
    return Refusal("malformed", zh, f"Malformed command: {en}")


def parse(payload: bytes | bytearray | str) -> Command | Refusal:
    """A command from a raw payload, or why it is not one."""
    if len(payload) > MAX_PAYLOAD:
        return malformed(f"longer than {MAX_PAYLOAD} bytes", "指令过长")
    try:
        data = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return malformed("not JSON", "指令不是有效的JSON")
    if not isinstance(data, dict):
        return malformed("not a JSON object", "指令必须是JSON对象")
    return _command(data)


def echo(payload: bytes | bytearray | str) -> dict[str, Any]:
    """The ``device`` and ``id`` of a payload ``parse`` refused, where they can be read, for the reply."""
    try:
        data = json.loads(payload) if len(payload) <= MAX_PAYLOAD else None
    except (ValueError, UnicodeDecodeError):
        data = None
    data = data if isinstance(data, dict) else {}
    device, rid = data.get("device"), data.get("id")
    return {
        "device": device if _short_text(device) else None,
        "command": data.get("command") if _short_text(data.get("command")) else None,
        "id": rid if _short_text(rid) or _plain_int(rid) else None,
    }


def _command(data: Mapping[str, Any]) -> Command | Refusal:
    device, verb, rid = data.get("device"), data.get("command"), data.get("id")
    if not _short_text(device):
        return malformed("'device' must be a non-empty string", "缺少设备编号")
    if verb not in Verb.__members__.values():
        known = ", ".join(v.value for v in Verb)
        return Refusal(
            "unknown_command", "不支持的指令", f"Unknown command {verb!r}; expected one of {known}"
        )
    if rid is not None and not (_short_text(rid) or _plain_int(rid)):
        return malformed("'id' must be a short string or an integer", "指令编号无效")
    verb = Verb(verb)
    level = data.get("level")
    if verb is Verb.RATE and not (_plain_int(level) and 1 <= level <= 5):
        return Refusal(
            "bad_level", "评价须为1到5的整数", "A rating must be a whole number from 1 to 5"
        )
    reason = data.get("reason", "away")
    if verb is Verb.PAUSE and reason not in PAUSE_REASONS:
        return Refusal(
            "bad_reason",
            "暂停原因无效",
            f"A pause reason must be one of {', '.join(PAUSE_REASONS)}",
        )
    return Command(device, verb, level if verb is Verb.RATE else None, reason, rid)


def _short_text(value: Any) -> bool:
    return isinstance(value, str) and 0 < len(value.strip()) <= MAX_FIELD


def _plain_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def decide(
    command: Command, window: str, bindings: Mapping[str, Binding], staffer: str | None
) -> Refusal | None:
    """None when ``command`` may run at ``window`` now, else why not."""
    binding = bindings.get(command.device)
    if binding is None or binding.window != window:
        return Refusal(
            "unbound_device",
            f"设备{command.device}未绑定{window}号窗口",
            f"Device {command.device} is not bound to window {window}",
        )
    if command.verb not in ALLOWED[binding.kind]:
        return Refusal(
            "not_allowed",
            f"{binding.kind.value}设备不能{VERB_ZH[command.verb]}",
            f"A {binding.kind.value} device cannot send {command.verb.value}",
        )
    if staffer is None:
        return Refusal(
            "no_staffer", f"{window}号窗口无人签到", f"Nobody is signed in at window {window}"
        )
    return None
