"""Settings: the only reader of config.toml and the environment.

``load_settings`` reads the file and applies the environment overrides;
``parse_settings`` turns a mapping into a frozen ``Settings`` (tests build
settings from dicts with it). Every problem is a ``ConfigError`` naming the
key path, so a broken config stops the process at start with one clear line.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
import zoneinfo
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import time
from itertools import pairwise
from pathlib import Path
from types import MappingProxyType
from typing import Any

from callcenter.config_checks import (
    ConfigError,
    Table,
    check,
    choice,
    code,
    count,
    letter,
    one_of,
    only_keys,
    optional_table,
    positive,
    positive_int,
    seconds,
    table,
    tables,
    text,
    typed,
    unique,
)
from callcenter.records_settings import records
from queue_engine.model import (
    Channel,
    Department,
    HallConfig,
    Policy,
    PriorityClass,
    SeatKind,
    Service,
    Session,
    Staff,
    TransferPosition,
    Window,
)

__all__ = ["ConfigError", "Settings", "load_settings", "parse_settings"]

ENV_STORE_URL = "CALLCENTER_STORE_URL"
ENV_HOST = "CALLCENTER_HOST"
ENV_PORT = "CALLCENTER_PORT"
ENV_SECRETS = frozenset({"CALLCENTER_SECRET", "CALLCENTER_ID_KEY", "TWILIO_AUTH_TOKEN"})

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
DEFAULT_STORE_URL = "sqlite:///var/callcenter.db"
STORE_SCHEMES = ("sqlite", "postgres", "postgresql")

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ROLES = frozenset({"staff", "agent", "officer", "supervisor", "admin"})

_VIRTUAL_NUMBER = re.compile(r"W[0-9]{4}")
_HHMM = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]")
_OWN_TABLES = frozenset({"server", "store", "hall"})


@dataclass(frozen=True)
class Settings:
    """Everything the process is configured with, loaded once and passed down.

    ``raw`` keeps the top-level tables this module does not own (``[sms]``,
    ``[mqtt]``, ``[hotline]`` …) for the adapters that read them.
    """

    server_host: str
    server_port: int
    store_url: str
    hall: HallConfig
    source: Path
    raw: Mapping[str, Any] = field(default_factory=dict)
    # The secrets the environment supplies (CALLCENTER_SECRET, CALLCENTER_ID_KEY,
    # TWILIO_AUTH_TOKEN), captured by load_settings so nothing reads os.environ later.
    env: Mapping[str, str] = field(default_factory=dict)


def load_settings(path: str | Path, env: Mapping[str, str] | None = None) -> Settings:
    """Read a config file, apply the CALLCENTER_* environment overrides, validate."""
    path = Path(path)
    data = _read_toml(path)
    environ = os.environ if env is None else env
    try:
        data = _apply_env(data, environ)
    except ConfigError as exc:
        raise exc.within(path) from None
    secrets = {k: v for k, v in environ.items() if k in ENV_SECRETS}
    return dataclasses.replace(parse_settings(data, path), env=MappingProxyType(secrets))


def parse_settings(data: Mapping[str, Any], source: Path) -> Settings:
    """Validate a config mapping (as read from TOML) into Settings."""
    try:
        return _settings(data, Path(source))
    except ConfigError as exc:
        raise exc.within(source) from None


# ---------------------------------------------------------------------------
# The file and the environment


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        source = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("", f"config file not found at {path.absolute()}", path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError("", f"cannot read config file: {exc}", path) from None
    try:
        return tomllib.loads(source)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("", _toml_problem(exc, source), path) from None


def _toml_problem(exc: tomllib.TOMLDecodeError, source: str) -> str:
    match = re.search(r"at line (\d+)", str(exc))
    lines = source.splitlines()
    if not match or not 0 < int(match[1]) <= len(lines):
        return f"invalid TOML: {exc}"
    return f"invalid TOML: {exc}: {lines[int(match[1]) - 1].strip()!r}"


def _apply_env(data: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    server = dict(optional_table(data, "server", ""))
    store = dict(optional_table(data, "store", ""))
    if ENV_HOST in env:
        server["host"] = env[ENV_HOST]
    if ENV_PORT in env:
        server["port"] = _env_int(env, ENV_PORT)
    if ENV_STORE_URL in env:
        store["url"] = env[ENV_STORE_URL]
    return {**data, "server": server, "store": store}


def _env_int(env: Mapping[str, str], name: str) -> int:
    try:
        return int(env[name])
    except ValueError:
        raise ConfigError(name, f"{env[name]!r} must be an integer") from None


# ---------------------------------------------------------------------------
# Top level


def _settings(data: Mapping[str, Any], source: Path) -> Settings:
    server = optional_table(data, "server", "")
    only_keys(server, {"host", "port"}, "server")
    store = optional_table(data, "store", "")
    only_keys(store, {"url"}, "store")
    return Settings(
        server_host=text(server, "host", "server", DEFAULT_HOST),
        server_port=_port(server),
        store_url=_store_url(store, source),
        hall=_hall(table(data, "hall", "")),
        source=source.resolve(),
        raw=MappingProxyType({k: v for k, v in data.items() if k not in _OWN_TABLES}),
    )


def _port(server: Table) -> int:
    port = typed(server, "port", "server", int, DEFAULT_PORT)
    check(0 < port < 65536, "server.port", f"{port} must be between 1 and 65535")
    return port


def _store_url(store: Table, source: Path) -> str:
    url = text(store, "url", "store", DEFAULT_STORE_URL)
    scheme, sep, rest = url.partition("://")
    schemes = " or ".join(f"{s}://" for s in STORE_SCHEMES)
    check(bool(sep) and scheme in STORE_SCHEMES, "store.url", f"{url!r} must start with {schemes}")
    return _resolve_sqlite(url, rest, source) if scheme == "sqlite" else url


def _resolve_sqlite(url: str, rest: str, source: Path) -> str:
    # Relative to the config file rather than the working directory, so the process
    # finds the same database wherever it is started. sqlite:////abs/x.db is absolute.
    path = rest.removeprefix("/")
    if not path or path == ":memory:" or Path(path).is_absolute():
        return url
    return "sqlite:///" + str(source.resolve().parent / path)


# ---------------------------------------------------------------------------
# The hall

_HALL_KEYS = frozenset(
    {"code", "name_zh", "name_en", "timezone", "departments", "services",
     "priority_classes", "windows", "staff", "hours", "policy", "calendar", "booking",
     "case_flows", "rating", "work_orders"}
)  # fmt: skip


def _hall(t: Table) -> HallConfig:
    only_keys(t, _HALL_KEYS, "hall")
    departments = _each(t, "departments", _department, ("code",))
    services = _each(t, "services", lambda s, p: _service(s, p, departments), ("code", "prefix"))
    classes = _each(t, "priority_classes", _priority_class, ("code",))
    _check_class_prefixes(classes, services)
    return HallConfig(
        code=code(t, "code", "hall"),
        name_zh=text(t, "name_zh", "hall"),
        name_en=text(t, "name_en", "hall"),
        timezone=_timezone(t),
        departments=departments,
        services=services,
        priority_classes=classes,
        windows=_each(t, "windows", _window, ("number",)),
        staff=_each(t, "staff", lambda s, p: _staff(s, p, services), ("virtual_number",)),
        hours=_hours(optional_table(t, "hours", "hall"), "hall.hours"),
        policy=_policy(optional_table(t, "policy", "hall"), "hall.policy"),
        **records(t, services),
    )


def _each(
    t: Table, key: str, build: Callable[[Table, str], Any], keys: tuple[str, ...]
) -> tuple[Any, ...]:
    path = f"hall.{key}"
    entries = typed(t, key, "hall", list)
    check(bool(entries), path, "must not be empty")
    items = tuple(build(entry, entry_path) for entry, entry_path in tables(entries, path))
    for attr in keys:
        unique(items, attr, path)
    return items


def _timezone(t: Table) -> str:
    name = text(t, "timezone", "hall")
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ConfigError("hall.timezone", f"{name!r} is not a known time zone") from None
    return name


def _department(t: Table, path: str) -> Department:
    only_keys(t, {"code", "name_zh", "name_en"}, path)
    return Department(code(t, "code", path), text(t, "name_zh", path), text(t, "name_en", path))


_SERVICE_KEYS = frozenset(
    {"code", "name_zh", "name_en", "department", "prefix", "target_wait_min",
     "default_handle_min", "channel", "daily_limit", "promise_days", "case_flow", "bookable",
     "pickup_window", "pickup_note_zh", "pickup_note_en"}
)  # fmt: skip


def _service(t: Table, path: str, departments: Iterable[Department]) -> Service:
    only_keys(t, _SERVICE_KEYS, path)
    return Service(
        code=code(t, "code", path),
        name_zh=text(t, "name_zh", path),
        name_en=text(t, "name_en", path),
        department=one_of(t, "department", path, {d.code for d in departments}, "department"),
        prefix=letter(t, "prefix", path),
        target_wait_min=positive(t, "target_wait_min", path, _default(Service, "target_wait_min")),
        default_handle_min=positive(
            t, "default_handle_min", path, _default(Service, "default_handle_min")
        ),
        channel=choice(t, "channel", path, Channel, Channel.HALL),
        daily_limit=positive_int(t, "daily_limit", path, None),
        promise_days=typed(t, "promise_days", path, int, _default(Service, "promise_days")),
        case_flow=typed(t, "case_flow", path, str, _default(Service, "case_flow")),
        bookable=typed(t, "bookable", path, bool, True),
        pickup_window=typed(t, "pickup_window", path, str, None),
        pickup_note_zh=typed(t, "pickup_note_zh", path, str, _default(Service, "pickup_note_zh")),
        pickup_note_en=typed(t, "pickup_note_en", path, str, _default(Service, "pickup_note_en")),
    )


def _default(cls: type, name: str) -> Any:
    # The model's dataclasses use slots, so ``Service.target_wait_min`` is a descriptor.
    return next(f.default for f in fields(cls) if f.name == name)


def _priority_class(t: Table, path: str) -> PriorityClass:
    only_keys(t, {"code", "name_zh", "name_en", "weight", "prefix"}, path)
    return PriorityClass(
        code=code(t, "code", path),
        name_zh=text(t, "name_zh", path),
        name_en=text(t, "name_en", path),
        weight=positive(t, "weight", path, _default(PriorityClass, "weight")),
        prefix=letter(t, "prefix", path, None),
    )


def _check_class_prefixes(classes: Iterable[PriorityClass], services: Iterable[Service]) -> None:
    owners = {s.prefix: f"service {s.code!r}" for s in services}
    for i, c in enumerate(classes):
        check(
            c.prefix not in owners,
            f"hall.priority_classes[{i}].prefix",
            f"{c.prefix!r} is already the prefix of {owners.get(c.prefix)}",
        )
        if c.prefix:
            owners[c.prefix] = f"class {c.code!r}"
    check(
        "normal" in {c.code for c in classes},
        "hall.priority_classes",
        "a class with code 'normal' is required",
    )


def _window(t: Table, path: str) -> Window:
    only_keys(t, {"number", "kind", "zone"}, path)
    return Window(
        number=text(t, "number", path),
        kind=choice(t, "kind", path, SeatKind, SeatKind.WINDOW),
        zone=typed(t, "zone", path, str, ""),
    )


def _staff(t: Table, path: str, services: Iterable[Service]) -> Staff:
    only_keys(t, {"virtual_number", "name", "skills", "role", "department"}, path)
    return Staff(
        virtual_number=_virtual_number(t, path),
        name=text(t, "name", path),
        skills=_skills(optional_table(t, "skills", path), f"{path}.skills", services),
        role=one_of(t, "role", path, ROLES, "role", "staff"),
        department=typed(t, "department", path, str, None),
    )


def _virtual_number(t: Table, path: str) -> str:
    number = text(t, "virtual_number", path)
    check(
        bool(_VIRTUAL_NUMBER.fullmatch(number)),
        f"{path}.virtual_number",
        f"{number!r} must be W and four digits, e.g. 'W0123'",
    )
    return number


def _skills(t: Table, path: str, services: Iterable[Service]) -> Mapping[str, int]:
    known = {s.code for s in services}
    for service in t:
        check(service in known, f"{path}.{service}", f"unknown service {service!r}")
        level = typed(t, service, path, int)
        check(1 <= level <= 5, f"{path}.{service}", f"level {level} must be 1–5")
    return MappingProxyType(dict(t))


# ---------------------------------------------------------------------------
# Opening hours


def _hours(t: Table, path: str) -> Mapping[int, tuple[Session, ...]]:
    for day in t:
        check(day in DAYS, f"{path}.{day}", "day must be one of " + ", ".join(DAYS))
    days = {DAYS.index(day): _day(typed(t, day, path, list), f"{path}.{day}") for day in t}
    return MappingProxyType(dict(sorted(days.items())))


def _day(entries: list[Any], path: str) -> tuple[Session, ...]:
    ordered = sorted((_session(s, p) for s, p in tables(entries, path)), key=lambda s: s.opens)
    for before, after in pairwise(ordered):
        check(before.closes <= after.opens, path, f"{_span(after)} overlaps {_span(before)}")
    return tuple(ordered)


def _session(t: Table, path: str) -> Session:
    only_keys(t, {"opens", "closes", "extended"}, path)
    opens, closes = _clock(t, "opens", path), _clock(t, "closes", path)
    check(opens < closes, path, f"opens {opens:%H:%M} must be before closes {closes:%H:%M}")
    return Session(opens, closes, typed(t, "extended", path, bool, False))


def _clock(t: Table, key: str, path: str) -> time:
    value = typed(t, key, path, (str, time))
    if isinstance(value, time):  # an unquoted TOML local time
        return value.replace(second=0, microsecond=0)
    check(bool(_HHMM.fullmatch(value)), f"{path}.{key}", f"{value!r} must be a time HH:MM")
    return time.fromisoformat(value)


def _span(s: Session) -> str:
    return f"{s.opens:%H:%M}–{s.closes:%H:%M}"


# ---------------------------------------------------------------------------
# Policy

POLICY_FIELDS: Mapping[str, Callable[[Table, str, str], Any]] = {
    "recalls_before_no_show": count,
    "call_timeout_s": seconds,
    "offer_timeout_s": lambda t, key, path: positive(t, key, path),
    "missed_offers_before_pause": lambda t, key, path: positive_int(t, key, path),
    "wrap_up_s": seconds,
    "hotline_wrap_up_s": seconds,
    "transfer_position": lambda t, key, path: choice(t, key, path, TransferPosition),
    "handle_time_window": lambda t, key, path: positive_int(t, key, path),
    "silent": lambda t, key, path: typed(t, key, path, bool),
    "issue_outside_hours": lambda t, key, path: typed(t, key, path, bool),
    "next_completes": lambda t, key, path: typed(t, key, path, bool),
}


def _policy(t: Table, path: str) -> Policy:
    only_keys(t, POLICY_FIELDS, path)
    return Policy(**{key: POLICY_FIELDS[key](t, key, path) for key in t})
