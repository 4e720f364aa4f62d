"""Reads the ``[mqtt]`` table into kiosk.devices.MqttConfig; every problem names its key.

Devices that talk MQTT are bound in ``[[mqtt.devices]]`` (id, window, kind
``caller`` or ``ratingpad``), not in the top-level ``[[devices]]``: those are
web devices holding bearer tokens, while an MQTT device proves itself to the
broker (its username and the broker's ACL), and the bridge then checks that
the id it names is bound to the window whose topic it wrote to.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from kiosk.devices import Binding, DeviceKind, MqttConfig

from .config_checks import (
    ConfigError,
    Table,
    check,
    choice,
    only_keys,
    positive,
    positive_int,
    tables,
    text,
    typed,
)
from .settings import Settings

PATH = "mqtt"
KEYS = {
    "host", "port", "client_id", "username", "password", "tls", "ca_file", "prefix",
    "keepalive", "timeout_s", "reconnect_min_s", "reconnect_max_s", "devices",
}  # fmt: skip
ENV_PASSWORD = "CALLCENTER_MQTT_PASSWORD"


def mqtt_config(settings: Settings, env: Mapping[str, str] | None = None) -> MqttConfig | None:
    """The bridge's settings, or None when there is no ``[mqtt]`` table (the bridge is off)."""
    if PATH not in settings.raw:
        return None
    env = os.environ if env is None else env
    try:
        t = typed(settings.raw, PATH, "", Mapping)
        return _mqtt(t, settings, env)
    except ConfigError as exc:
        raise exc.within(settings.source) from None


def _mqtt(t: Table, settings: Settings, env: Mapping[str, str]) -> MqttConfig:
    only_keys(t, KEYS, PATH)
    d = MqttConfig()
    tls = typed(t, "tls", PATH, bool, False)
    port = positive_int(t, "port", PATH, 8883 if tls else d.port)
    check(port < 65536, f"{PATH}.port", f"{port} is not a port number")
    low = positive(t, "reconnect_min_s", PATH, d.reconnect_min_s)
    high = positive(t, "reconnect_max_s", PATH, d.reconnect_max_s)
    check(low <= high, f"{PATH}.reconnect_max_s", "must be >= reconnect_min_s")
    username = typed(t, "username", PATH, str, None)
    password = env.get(ENV_PASSWORD) or typed(t, "password", PATH, str, None)
    check(password is None or username is not None, f"{PATH}.password", "needs a username")
    return MqttConfig(
        host=text(t, "host", PATH, d.host),
        port=port,
        client_id=text(t, "client_id", PATH, f"callcenter-{settings.hall.code}"),
        username=username,
        password=password,
        tls=tls,
        ca_file=_ca_file(t, settings.source) if tls else None,
        prefix=_prefix(t),
        keepalive=positive_int(t, "keepalive", PATH, d.keepalive),
        timeout_s=positive(t, "timeout_s", PATH, d.timeout_s),
        reconnect_min_s=low,
        reconnect_max_s=high,
        devices=_devices(t, settings),
    )


def _prefix(t: Table) -> str:
    value = text(t, "prefix", PATH, "callcenter")
    ok = not any(c in value for c in "#+") and not value.startswith("/") and not value.endswith("/")
    check(ok, f"{PATH}.prefix", f"{value!r} must be topic levels without wildcards or edge slashes")
    return value


def _ca_file(t: Table, source: Path) -> str | None:
    value = typed(t, "ca_file", PATH, str, None)
    if value is None:
        return None  # the system's trusted CAs
    path = Path(value) if Path(value).is_absolute() else source.parent / value
    check(path.is_file(), f"{PATH}.ca_file", f"no file at {path}")
    return str(path)


def _devices(t: Table, settings: Settings) -> tuple[Binding, ...]:
    found: dict[str, Binding] = {}
    for entry, path in tables(typed(t, "devices", PATH, list, []), f"{PATH}.devices"):
        only_keys(entry, {"id", "window", "kind"}, path)
        ident = text(entry, "id", path)
        check(ident not in found, f"{path}.id", f"duplicate device id {ident!r}")
        window = text(entry, "window", path)
        seat = settings.hall.window(window)
        check(seat is not None, f"{path}.window", f"unknown window {window!r}")
        assert seat is not None
        check(seat.kind.value == "window", f"{path}.window", f"{window!r} is a hotline seat")
        found[ident] = Binding(ident, window, choice(entry, "kind", path, DeviceKind, "caller"))
    return tuple(found.values())
