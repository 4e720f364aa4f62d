"""callcenter.settings: the demo config's shape, every validation error, env overrides."""

from __future__ import annotations

import copy
import dataclasses
from collections import Counter
from datetime import time
from pathlib import Path
from typing import Any

import pytest

from callcenter.settings import (
    POLICY_FIELDS,
    ConfigError,
    Settings,
    load_settings,
    parse_settings,
)
from queue_engine.model import Channel, Policy, SeatKind, TransferPosition

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "config.toml"
SOURCE = Path("config.toml")
DELETE = object()


def minimal() -> dict[str, Any]:
    """The smallest valid config, fresh each call."""
    return {
        "server": {"host": "127.0.0.1", "port": 8000},
        "store": {"url": "sqlite:///:memory:"},
        "hall": {
            "code": "demo",
            "name_zh": "演示大厅",
            "name_en": "Demo hall",
            "timezone": "Asia/Shanghai",
            "departments": [{"code": "market", "name_zh": "市场监管", "name_en": "Market"}],
            "services": [
                {"code": "licence", "name_zh": "营业执照", "name_en": "Licence",
                 "department": "market", "prefix": "A", "target_wait_min": 30,
                 "default_handle_min": 20},
                {"code": "consult", "name_zh": "咨询", "name_en": "Enquiries",
                 "department": "market", "prefix": "B"},
            ],
            "priority_classes": [
                {"code": "normal", "name_zh": "普通", "name_en": "Normal"},
                {"code": "priority", "name_zh": "绿色通道", "name_en": "Green", "weight": 2.5,
                 "prefix": "G"},
            ],
            "windows": [{"number": "1", "zone": "A"}, {"number": "H01", "kind": "hotline"}],
            "staff": [
                {"virtual_number": "W0001", "name": "李雪梅", "skills": {"licence": 3}},
                {"virtual_number": "W0002", "name": "王建华", "skills": {"consult": 1}},
            ],
            "hours": {"mon": [{"opens": "09:00", "closes": "12:00"},
                              {"opens": "13:30", "closes": "17:30"}]},
            "policy": {"transfer_position": "back"},
        },
    }  # fmt: skip


def broken(keys: tuple[Any, ...], value: Any) -> dict[str, Any]:
    """minimal() with the value at keys replaced (or deleted, for DELETE)."""
    data = copy.deepcopy(minimal())
    *parents, last = keys
    target: Any = data
    for key in parents:
        target = target[key]
    if value is DELETE:
        del target[last]
    else:
        target[last] = value
    return data


# ---------------------------------------------------------------------------
# The real demo config


@pytest.fixture(scope="module")
def demo() -> Settings:
    return load_settings(CONFIG, env={})


def test_demo_server_and_store(demo: Settings) -> None:
    assert (demo.server_host, demo.server_port) == ("127.0.0.1", 8000)
    assert demo.store_url == f"sqlite:///{ROOT / 'var' / 'callcenter.db'}"
    assert demo.source == CONFIG
    assert demo.hall.code == "wuhou"
    assert demo.hall.timezone == "Asia/Shanghai"


def test_demo_services(demo: Settings) -> None:
    hall_services = [s for s in demo.hall.services if s.channel == Channel.HALL]
    phone_services = [s for s in demo.hall.services if s.channel == Channel.PHONE]
    assert len(hall_services) >= 12
    assert len({s.department for s in hall_services}) >= 6
    assert 2 <= len(phone_services) <= 3
    prefixes = [s.prefix for s in demo.hall.services]
    prefixes += [p.prefix for p in demo.hall.priority_classes if p.prefix]
    assert len(prefixes) == len(set(prefixes))


def test_demo_handle_times_are_realistic(demo: Settings) -> None:
    handle = {s.code: s.default_handle_min for s in demo.hall.services}
    assert 15 <= handle["business_licence"] <= 25
    assert 20 <= handle["real_estate_registration"] <= 40
    assert 10 <= handle["household_registration"] <= 15
    assert 8 <= handle["social_insurance"] <= 12
    assert 3 <= handle["general_consult"] <= 8


def test_demo_priority_classes(demo: Settings) -> None:
    weights = {p.code: p.weight for p in demo.hall.priority_classes}
    assert weights == {"normal": 1.0, "appointment": 1.5, "green": 2.5}


def test_demo_windows(demo: Settings) -> None:
    windows = [w for w in demo.hall.windows if w.kind == SeatKind.WINDOW]
    seats = [w for w in demo.hall.windows if w.kind == SeatKind.HOTLINE]
    assert [w.number for w in windows] == [str(n) for n in range(1, 31)]
    assert {w.zone for w in windows} == {"A", "B", "C", "D"}
    assert [w.number for w in seats] == [f"H{n:02d}" for n in range(1, 11)]


def test_demo_staff_cover_every_service_twice(demo: Settings) -> None:
    hall_staff = [s for s in demo.hall.staff if s.role == "staff"]
    assert len(hall_staff) >= 40
    cover = Counter(code for s in demo.hall.staff for code in s.skills)
    for service in demo.hall.services:
        assert cover[service.code] >= 2, service.code
    assert any(len(s.skills) >= 4 for s in hall_staff)  # 混合窗口


def test_demo_roles(demo: Settings) -> None:
    roles = {s.virtual_number: s.role for s in demo.hall.staff}
    assert roles["W0900"] == "supervisor"
    assert roles["W0999"] == "admin"
    assert sum(1 for r in roles.values() if r == "agent") == 10


def test_demo_hours(demo: Settings) -> None:
    hours = demo.hall.hours
    assert sorted(hours) == [0, 1, 2, 3, 4, 5]
    assert [(s.opens, s.closes) for s in hours[0]] == [
        (time(9), time(12)),
        (time(13, 30), time(17, 30)),
    ]
    evening = hours[2][-1]
    assert (evening.opens, evening.closes, evening.extended) == (time(17, 30), time(20), True)
    assert not any(s.extended for day in (0, 1, 3, 4) for s in hours[day])
    assert [(s.opens, s.closes) for s in hours[5]] == [(time(9), time(12))]


def test_demo_policy_sets_every_field() -> None:
    import tomllib

    policy = tomllib.loads(CONFIG.read_text(encoding="utf-8"))["hall"]["policy"]
    assert set(policy) == {f.name for f in dataclasses.fields(Policy)}


# ---------------------------------------------------------------------------
# Parsing


def test_minimal_parses() -> None:
    settings = parse_settings(minimal(), SOURCE)
    hall = settings.hall
    assert hall.service("licence").target_wait_min == 30.0
    assert hall.service("consult").default_handle_min == 10.0  # the model's default
    assert hall.priority_class("priority").prefix == "G"
    assert hall.window("H01").kind == SeatKind.HOTLINE
    assert dict(hall.staffer("W0001").skills) == {"licence": 3}
    assert hall.policy.transfer_position == TransferPosition.BACK
    assert hall.policy.recalls_before_no_show == Policy().recalls_before_no_show
    assert settings.raw == {}


def test_settings_are_frozen() -> None:
    settings = parse_settings(minimal(), SOURCE)
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.server_port = 1  # type: ignore[misc]


def test_unknown_top_level_tables_are_kept_in_raw() -> None:
    data = minimal() | {"sms": {"provider": "console"}, "mqtt": {"prefix": "cc"}}
    settings = parse_settings(data, SOURCE)
    assert settings.raw == {"sms": {"provider": "console"}, "mqtt": {"prefix": "cc"}}


def test_defaults_for_server_and_store() -> None:
    data = minimal()
    del data["server"], data["store"]
    settings = parse_settings(data, Path("/etc/cc/config.toml"))
    assert (settings.server_host, settings.server_port) == ("127.0.0.1", 8000)
    assert settings.store_url == "sqlite:////etc/cc/var/callcenter.db"


def test_sessions_are_sorted_and_toml_times_accepted() -> None:
    data = broken(
        ("hall", "hours", "sun"),
        [{"opens": time(14), "closes": "16:00"}, {"opens": "09:00", "closes": time(12)}],
    )
    sessions = parse_settings(data, SOURCE).hall.hours[6]
    assert [(s.opens, s.closes) for s in sessions] == [(time(9), time(12)), (time(14), time(16))]


def test_every_policy_field_is_validated() -> None:
    assert set(POLICY_FIELDS) == {f.name for f in dataclasses.fields(Policy)}


def test_full_policy_parses() -> None:
    policy = {
        "recalls_before_no_show": 3,
        "call_timeout_s": 120,
        "offer_timeout_s": 15.5,
        "missed_offers_before_pause": 1,
        "wrap_up_s": 5,
        "hotline_wrap_up_s": 45.0,
        "transfer_position": "front",
        "handle_time_window": 10,
        "silent": True,
    }
    parsed = parse_settings(broken(("hall", "policy"), policy), SOURCE).hall.policy
    assert parsed == Policy(3, 120.0, 15.5, 1, 5.0, 45.0, TransferPosition.FRONT, 10, True)


# ---------------------------------------------------------------------------
# Every validation error names its key path

H = "hall"
SVC = (H, "services", 1)
STAFF = (H, "staff", 0)
CLS = (H, "priority_classes", 1)
MON = (H, "hours", "mon")

ERRORS = [
    # required keys and types
    ((H,), DELETE, "hall: required key is missing"),
    ((H,), "wuhou", "hall: 'wuhou' must be a table"),
    ((H, "code"), DELETE, "hall.code: required key is missing"),
    ((H, "code"), "Wu Hou", "hall.code: 'Wu Hou' must be snake_case"),
    ((H, "name_zh"), " ", "hall.name_zh: must not be empty"),
    ((H, "name_en"), 5, "hall.name_en: 5 must be a string"),
    ((H, "timezone"), "Mars/Olympus", "hall.timezone: 'Mars/Olympus' is not a known time zone"),
    ((H, "departments"), [], "hall.departments: must not be empty"),
    ((H, "services"), {"code": "x"}, "hall.services: {'code': 'x'} must be an array"),
    ((H, "services", 0), "licence", "hall.services[0]: 'licence' must be a table"),
    ((*SVC, "name_zh"), DELETE, "hall.services[1].name_zh: required key is missing"),
    ((*SVC, "prefx"), "B", "hall.services[1].prefx: unknown key"),
    ((H, "colour"), "blue", "hall.colour: unknown key"),
    (("server", "port"), "8000", "server.port: '8000' must be an integer"),
    (("server", "port"), True, "server.port: True must be an integer"),
    (("server", "port"), 70000, "server.port: 70000 must be between 1 and 65535"),
    (("server", "hostname"), "x", "server.hostname: unknown key"),
    (("store", "url"), "mysql://db", "store.url: 'mysql://db' must start with sqlite://"),
    (("store",), "sqlite:///x.db", "store: 'sqlite:///x.db' must be a table"),
    # unique codes, prefixes, numbers
    ((*SVC, "code"), "licence", "hall.services[1].code: 'licence' is already used by hall.services[0]"),
    ((*SVC, "prefix"), "A", "hall.services[1].prefix: 'A' is already used by hall.services[0]"),
    ((*SVC, "prefix"), "AB", "hall.services[1].prefix: 'AB' must be one uppercase letter A–Z"),
    ((*SVC, "prefix"), "b", "hall.services[1].prefix: 'b' must be one uppercase letter A–Z"),
    ((H, "departments"), [{"code": "market", "name_zh": "市场监管", "name_en": "Market"}] * 2,
     "hall.departments[1].code: 'market' is already used by hall.departments[0]"),
    ((H, "windows", 1, "number"), "1", "hall.windows[1].number: '1' is already used by hall.windows[0]"),
    ((*STAFF, "virtual_number"), "W0002",
     "hall.staff[1].virtual_number: 'W0002' is already used by hall.staff[0]"),
    ((*STAFF, "virtual_number"), "123", "hall.staff[0].virtual_number: '123' must be W and four digits"),
    ((*CLS, "code"), "normal", "hall.priority_classes[1].code: 'normal' is already used"),
    ((*CLS, "prefix"), "A", "hall.priority_classes[1].prefix: 'A' is already the prefix of service 'licence'"),
    ((*CLS, "prefix"), "GG", "hall.priority_classes[1].prefix: 'GG' must be one uppercase letter A–Z"),
    ((H, "priority_classes", 0, "prefix"), "G",
     "hall.priority_classes[1].prefix: 'G' is already the prefix of class 'normal'"),
    ((H, "priority_classes", 0, "code"), "regular", "hall.priority_classes: a class with code 'normal' is required"),
    ((*CLS, "weight"), 0, "hall.priority_classes[1].weight: 0 must be > 0"),
    # references
    ((*SVC, "department"), "police", "hall.services[1].department: unknown department 'police'; expected one of market"),
    ((*SVC, "channel"), "fax", "hall.services[1].channel: unknown channel 'fax'"),
    ((H, "windows", 0, "kind"), "desk", "hall.windows[0].kind: unknown kind 'desk'"),
    ((*STAFF, "skills", "foo"), 2, "hall.staff[0].skills.foo: unknown service 'foo'"),
    ((*STAFF, "skills", "licence"), 6, "hall.staff[0].skills.licence: level 6 must be 1–5"),
    ((*STAFF, "skills", "licence"), 0, "hall.staff[0].skills.licence: level 0 must be 1–5"),
    ((*STAFF, "skills", "licence"), "3", "hall.staff[0].skills.licence: '3' must be an integer"),
    ((*STAFF, "skills"), ["licence"], "hall.staff[0].skills: ['licence'] must be a table"),
    ((*STAFF, "role"), "boss", "hall.staff[0].role: unknown role 'boss'"),
    # minutes
    ((*SVC, "target_wait_min"), 0, "hall.services[1].target_wait_min: 0 must be > 0"),
    ((*SVC, "default_handle_min"), -5, "hall.services[1].default_handle_min: -5 must be > 0"),
    ((*SVC, "default_handle_min"), "ten", "hall.services[1].default_handle_min: 'ten' must be a number"),
    ((*SVC, "daily_limit"), 0, "hall.services[1].daily_limit: 0 must be > 0"),
    ((*SVC, "daily_limit"), 1.5, "hall.services[1].daily_limit: 1.5 must be an integer"),
    # hours
    ((H, "hours", "monday"), [], "hall.hours.monday: day must be one of mon, tue"),
    ((*MON, 0, "opens"), "9:00", "hall.hours.mon[0].opens: '9:00' must be a time HH:MM"),
    ((*MON, 0, "closes"), "24:00", "hall.hours.mon[0].closes: '24:00' must be a time HH:MM"),
    ((*MON, 1, "closes"), "12:30", "hall.hours.mon[1]: opens 13:30 must be before closes 12:30"),
    ((*MON, 1, "opens"), "11:00", "hall.hours.mon: 11:00–17:30 overlaps 09:00–12:00"),
    ((*MON, 1), {"opens": "13:30"}, "hall.hours.mon[1].closes: required key is missing"),
    ((*MON, 0, "extended"), "yes", "hall.hours.mon[0].extended: 'yes' must be true or false"),
    (MON, {"opens": "09:00"}, "hall.hours.mon: {'opens': '09:00'} must be an array"),
    # policy
    ((H, "policy", "recalls"), 2, "hall.policy.recalls: unknown key"),
    ((H, "policy", "recalls_before_no_show"), -1, "hall.policy.recalls_before_no_show: -1 must be >= 0"),
    ((H, "policy", "recalls_before_no_show"), 2.5, "hall.policy.recalls_before_no_show: 2.5 must be an integer"),
    ((H, "policy", "call_timeout_s"), -1, "hall.policy.call_timeout_s: -1 must be >= 0"),
    ((H, "policy", "offer_timeout_s"), 0, "hall.policy.offer_timeout_s: 0 must be > 0"),
    ((H, "policy", "missed_offers_before_pause"), 0, "hall.policy.missed_offers_before_pause: 0 must be > 0"),
    ((H, "policy", "wrap_up_s"), "30s", "hall.policy.wrap_up_s: '30s' must be a number"),
    ((H, "policy", "hotline_wrap_up_s"), -0.5, "hall.policy.hotline_wrap_up_s: -0.5 must be >= 0"),
    ((H, "policy", "transfer_position"), "middle",
     "hall.policy.transfer_position: unknown transfer_position 'middle'; expected one of back, front"),
    ((H, "policy", "handle_time_window"), 0, "hall.policy.handle_time_window: 0 must be > 0"),
    ((H, "policy", "silent"), 1, "hall.policy.silent: 1 must be true or false"),
]  # fmt: skip


@pytest.mark.parametrize(("keys", "value", "message"), ERRORS, ids=[e[2] for e in ERRORS])
def test_validation_error_names_key_path(keys: tuple[Any, ...], value: Any, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_settings(broken(keys, value), SOURCE)
    assert str(info.value).startswith(f"config.toml: {message}")
    assert info.value.key == message.split(": ")[0]


# ---------------------------------------------------------------------------
# Files and the environment


def write_config(folder: Path, text: str | None = None) -> Path:
    path = folder / "config.toml"
    path.write_text(CONFIG.read_text(encoding="utf-8") if text is None else text, "utf-8")
    return path


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nowhere\.toml: config file not found at /"):
        load_settings(tmp_path / "nowhere.toml", env={})


def test_invalid_toml_names_the_line(tmp_path: Path) -> None:
    path = write_config(tmp_path, '[server]\nhost = "a"\nport 8000\n')
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    message = str(info.value)
    assert message.startswith(f"{path}: invalid TOML: ")
    assert "line 3" in message
    assert message.endswith("'port 8000'")


def test_relative_sqlite_path_is_resolved_from_the_config_folder(tmp_path: Path) -> None:
    settings = load_settings(write_config(tmp_path), env={})
    assert settings.store_url == f"sqlite:///{tmp_path.resolve()}/var/callcenter.db"
    assert settings.source == tmp_path.resolve() / "config.toml"


@pytest.mark.parametrize(
    "url",
    ["sqlite:////srv/cc/queue.db", "sqlite:///:memory:", "postgresql://cc@db:5432/callcenter"],
)
def test_other_store_urls_are_kept(url: str) -> None:
    settings = parse_settings(broken(("store", "url"), url), Path("/etc/cc/config.toml"))
    assert settings.store_url == url


def test_env_overrides(tmp_path: Path) -> None:
    env = {
        "CALLCENTER_HOST": "0.0.0.0",
        "CALLCENTER_PORT": "9001",
        "CALLCENTER_STORE_URL": "postgresql://cc@localhost/cc",
    }
    settings = load_settings(write_config(tmp_path), env=env)
    assert (settings.server_host, settings.server_port) == ("0.0.0.0", 9001)
    assert settings.store_url == "postgresql://cc@localhost/cc"


def test_env_store_url_relative_sqlite_is_resolved(tmp_path: Path) -> None:
    env = {"CALLCENTER_STORE_URL": "sqlite:///data/cc.db"}
    settings = load_settings(write_config(tmp_path), env=env)
    assert settings.store_url == f"sqlite:///{tmp_path.resolve()}/data/cc.db"


def test_env_defaults_to_the_process_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CALLCENTER_PORT", "8123")
    assert load_settings(write_config(tmp_path)).server_port == 8123


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CALLCENTER_PORT": "http"}, "CALLCENTER_PORT: 'http' must be an integer"),
        ({"CALLCENTER_PORT": "0"}, "server.port: 0 must be between 1 and 65535"),
        ({"CALLCENTER_STORE_URL": "redis://x"}, "store.url: 'redis://x' must start with"),
    ],
)
def test_bad_env_values(tmp_path: Path, env: dict[str, str], message: str) -> None:
    path = write_config(tmp_path)
    with pytest.raises(ConfigError) as info:
        load_settings(path, env=env)
    assert str(info.value).startswith(f"{path}: {message}")
