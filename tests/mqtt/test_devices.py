"""Device commands, bindings, back-off and the [mqtt] table: pure, no broker."""

from __future__ import annotations

from pathlib import Path

import pytest

from callcenter.config_checks import ConfigError
from callcenter.mqtt_settings import mqtt_config
from callcenter.settings import Settings
from kiosk.devices import Binding, Command, DeviceKind, Refusal, Topics, Verb, decide, parse
from kiosk.mqtt_bridge import backoff
from tests.conftest import make_hall

BINDINGS = {
    "caller-1": Binding("caller-1", "1"),
    "pad-1": Binding("pad-1", "1", DeviceKind.RATINGPAD),
}


def test_parse_reads_a_command() -> None:
    assert parse(b'{"device": "caller-1", "command": "call_next", "id": 7}') == Command(
        "caller-1", Verb.CALL_NEXT, request_id=7
    )
    assert parse('{"device": "pad-1", "command": "rate", "level": 4}') == Command(
        "pad-1", Verb.RATE, level=4
    )
    assert parse(b'{"device": "caller-1", "command": "pause", "reason": "meeting"}') == Command(
        "caller-1", Verb.PAUSE, reason="meeting"
    )


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (b"", "malformed"), (b"nope", "malformed"), (b"\xff", "malformed"), (b"null", "malformed"),
        (b'"call_next"', "malformed"), (b'{"command": "call_next"}', "malformed"),
        (b'{"device": "", "command": "call_next"}', "malformed"),
        (b'{"device": "x", "command": "call_next", "id": {"a": 1}}', "malformed"),
        (b'{"device": "x", "command": ["call_next"]}', "unknown_command"),
        (b'{"device": "x", "command": "rate"}', "bad_level"),
        (b'{"device": "x", "command": "rate", "level": 4.5}', "bad_level"),
        (b'{"device": "x", "command": "pause", "reason": "lunch"}', "bad_reason"),
        (b"{" * 5000, "malformed"),
    ],
)  # fmt: skip
def test_parse_refuses_what_it_cannot_read(payload: bytes, code: str) -> None:
    refusal = parse(payload)
    assert isinstance(refusal, Refusal) and refusal.code == code
    assert refusal.message_zh and refusal.message_en


@pytest.mark.parametrize(
    ("device", "verb", "window", "staffer", "code"),
    [
        ("caller-1", Verb.CALL_NEXT, "1", "W0001", None),
        ("pad-1", Verb.RATE, "1", "W0001", None),
        ("caller-1", Verb.CALL_NEXT, "2", "W0001", "unbound_device"),
        ("ghost", Verb.CALL_NEXT, "1", "W0001", "unbound_device"),
        ("pad-1", Verb.COMPLETE, "1", "W0001", "not_allowed"),
        ("caller-1", Verb.RATE, "1", "W0001", "not_allowed"),
        ("caller-1", Verb.CALL_NEXT, "1", None, "no_staffer"),
    ],
)
def test_decide(
    device: str, verb: Verb, window: str, staffer: str | None, code: str | None
) -> None:
    level = 5 if verb is Verb.RATE else None
    refusal = decide(Command(device, verb, level), window, BINDINGS, staffer)
    assert (refusal.code if refusal else None) == code


def test_backoff_doubles_within_bounds_with_jitter() -> None:
    assert [backoff(a, 0.5, 4.0, lambda: 1.0) for a in range(6)] == [0.5, 1, 2, 4, 4, 4]
    assert backoff(3, 0.5, 4.0, lambda: 0.0) == 2.0
    assert backoff(10_000, 0.5, 30.0, lambda: 1.0) == 30.0


def test_topics() -> None:
    t = Topics("site/a", "wuhou")
    assert t.events == "site/a/halls/wuhou/events"
    assert t.window_of("site/a/halls/wuhou/windows/12/cmd") == "12"
    assert t.window_of("site/a/halls/wuhou/windows/12/reply") is None
    assert t.window_of("site/a/halls/other/windows/12/cmd") is None


def settings(mqtt: object | None = None) -> Settings:
    raw = {} if mqtt is None else {"mqtt": mqtt}
    return Settings("127.0.0.1", 8000, "sqlite:///x.db", make_hall(), Path("/tmp/config.toml"), raw)


def test_mqtt_is_off_without_its_table_and_reads_it_when_there() -> None:
    assert mqtt_config(settings()) is None
    cfg = mqtt_config(
        settings({
            "host": "broker.local", "username": "hall", "password": "pw", "prefix": "wuhou96166",
            "devices": [{"id": "caller-1", "window": "1"},
                        {"id": "pad-1", "window": "1", "kind": "ratingpad"}],
        }),
        env={"CALLCENTER_MQTT_PASSWORD": "from-env"},
    )  # fmt: skip
    assert cfg is not None
    assert (cfg.host, cfg.port, cfg.client_id, cfg.password) == (
        "broker.local",
        1883,
        "callcenter-test",
        "from-env",
    )
    assert cfg.bindings["pad-1"] == Binding("pad-1", "1", DeviceKind.RATINGPAD)
    tls = mqtt_config(settings({"tls": True}), env={})
    assert tls is not None and tls.port == 8883 and tls.ca_file is None


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ({"hots": "x"}, "mqtt.hots"),
        ({"port": 70000}, "mqtt.port"),
        ({"prefix": "a/#"}, "mqtt.prefix"),
        ({"reconnect_min_s": 5, "reconnect_max_s": 1}, "mqtt.reconnect_max_s"),
        ({"password": "pw"}, "mqtt.password"),
        ({"tls": True, "ca_file": "missing.pem"}, "mqtt.ca_file"),
        ({"devices": [{"id": "a", "window": "99"}]}, "mqtt.devices[0].window"),
        ({"devices": [{"id": "a", "window": "H01"}]}, "mqtt.devices[0].window"),
        ({"devices": [{"id": "a", "window": "1", "kind": "toaster"}]}, "mqtt.devices[0].kind"),
        (
            {"devices": [{"id": "a", "window": "1"}, {"id": "a", "window": "2"}]},
            "mqtt.devices[1].id",
        ),
    ],
)
def test_a_bad_mqtt_table_names_its_key(table: dict, key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        mqtt_config(settings(table), env={})
    assert caught.value.key == key
