"""Builds the Authority from the ``[auth]`` and ``[[devices]]`` tables of the config."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping

from .auth import Authority, Device, is_scrypt_hash
from .config_checks import ConfigError, check, one_of, optional_table, positive, tables, text, typed
from .settings import Settings

log = logging.getLogger(__name__)
DEVICE_KINDS = ("kiosk", "display", "window", "ratingpad", "department")
ENV_SECRET = "CALLCENTER_SECRET"
ENV_ID_KEY = "CALLCENTER_ID_KEY"


def id_secret(settings: Settings, env: Mapping[str, str] | None = None) -> bytes:
    """The key ID numbers are hashed with; it must survive restarts, or check-in by ID breaks."""
    env = settings.env if env is None else env
    auth = optional_table(settings.raw, "auth", "")
    key = (
        env.get(ENV_ID_KEY) or auth.get("id_hash_key") or env.get(ENV_SECRET) or auth.get("secret")
    )
    if not key:
        log.warning("no auth.id_hash_key: ID-number check-in works only until the process restarts")
        return secrets.token_bytes(32)
    return str(key).encode()


def authority_from(settings: Settings, env: Mapping[str, str] | None = None) -> Authority:
    """The process's Authority; a bad ``[auth]`` or ``[[devices]]`` table is a ConfigError."""
    env = settings.env if env is None else env
    try:
        return _authority(settings, env)
    except ConfigError as exc:
        raise exc.within(settings.source) from None


def _authority(settings: Settings, env: Mapping[str, str]) -> Authority:
    auth = optional_table(settings.raw, "auth", "")
    secret = env.get(ENV_SECRET) or auth.get("secret")
    if not secret:
        log.warning("no auth.secret or %s: sessions end when the process restarts", ENV_SECRET)
        secret = secrets.token_hex(32)
    hashes = dict(optional_table(auth, "password_hashes", "auth"))
    for vn, value in hashes.items():
        key = f"auth.password_hashes.{vn}"
        hashed = isinstance(value, str) and is_scrypt_hash(value)
        check(hashed, key, "must be an scrypt hash from 'callcenter hash-password'")
        check(
            settings.hall.staffer(vn) is not None,
            f"auth.password_hashes.{vn}",
            "unknown work number",
        )
    default = typed(auth, "default_password_hash", "auth", str, None)
    if default is not None:
        check(is_scrypt_hash(default), "auth.default_password_hash",
              "must be an scrypt hash from 'callcenter hash-password'")  # fmt: skip
    ttl_min = positive(auth, "token_ttl_min", "auth", 720.0)
    return Authority(
        secret=str(secret).encode(), halls={settings.hall.code: settings.hall},
        password_hashes=hashes, default_hash=default, devices=_devices(settings),
        ttl_s=ttl_min * 60,
    )  # fmt: skip


def _devices(settings: Settings) -> dict[str, Device]:
    devices: dict[str, Device] = {}
    for entry, path in tables(settings.raw.get("devices", []), "devices"):
        ident = text(entry, "id", path)
        check(ident not in devices, f"{path}.id", f"duplicate device id {ident!r}")
        kind = one_of(entry, "kind", path, DEVICE_KINDS, "device kind")
        token = text(entry, "token", path)
        check(len(token) >= 12, f"{path}.token", "must be at least 12 characters")
        twin = next((d.id for d in devices.values() if d.token == token), None)
        check(
            twin is None, f"{path}.token", f"is the same as device {twin!r}'s: one token per device"
        )
        window = typed(entry, "window", path, str, None)
        if window is not None:
            check(
                settings.hall.window(window) is not None,
                f"{path}.window",
                f"unknown window {window!r}",
            )
        department = typed(entry, "department", path, str, None)
        if kind == "department":
            known = {d.code for d in settings.hall.departments}
            check(department in known, f"{path}.department", f"unknown department {department!r}")
        hall = typed(entry, "hall", path, str, settings.hall.code)
        check(hall == settings.hall.code, f"{path}.hall", f"unknown hall {hall!r}")
        devices[ident] = Device(ident, kind, hall, token, window, department)
    return devices
