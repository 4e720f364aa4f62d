"""Reads the ``[sms]`` table into sms.config.SmsConfig; every problem names its key."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import time
from pathlib import Path

from sms.config import SmsConfig, TwilioConfig
from sms.phone import COUNTRY_CODES

from .config_checks import (
    ConfigError,
    Table,
    check,
    one_of,
    only_keys,
    optional_table,
    positive,
    positive_int,
    text,
    typed,
)
from .settings import Settings

PATH = "sms"
KEYS = {
    "provider", "signature", "region", "public_url", "rate_per_s", "concurrency", "near_turn_n",
    "quiet_hours", "max_attempts", "backoff_s", "max_backoff_s", "send_timeout_s", "bilingual",
    "console_log", "twilio",
}  # fmt: skip
TWILIO_KEYS = {"account_sid", "auth_token", "from_number", "messaging_service_sid", "base_url"}
_QUIET = re.compile(r"([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)")
ENV_TWILIO_TOKEN = "TWILIO_AUTH_TOKEN"


def sms_config(settings: Settings, env: Mapping[str, str] | None = None) -> SmsConfig:
    """The SMS settings of ``settings`` (defaults when there is no ``[sms]`` table)."""
    env = settings.env if env is None else env
    try:
        return _sms(optional_table(settings.raw, PATH, ""), settings.source, env)
    except ConfigError as exc:
        raise exc.within(settings.source) from None


def _sms(t: Table, source: Path, env: Mapping[str, str]) -> SmsConfig:
    only_keys(t, KEYS, PATH)
    d = SmsConfig()
    provider = one_of(t, "provider", PATH, ("console", "twilio"), "SMS provider", d.provider)
    quiet = _quiet(typed(t, "quiet_hours", PATH, str, "22:00-07:30"))
    log_path = Path(typed(t, "console_log", PATH, str, d.console_log))
    twilio = _twilio(optional_table(t, "twilio", PATH), env) if "twilio" in t else None
    check(
        provider != "twilio" or twilio is not None,
        f"{PATH}.twilio",
        "provider is twilio but [sms.twilio] is missing",
    )
    return SmsConfig(
        provider=provider,
        signature=text(t, "signature", PATH, d.signature),
        region=one_of(t, "region", PATH, COUNTRY_CODES, "region", d.region),
        public_url=_url(t, "public_url", d.public_url),
        rate_per_s=positive(t, "rate_per_s", PATH, d.rate_per_s),
        concurrency=positive_int(t, "concurrency", PATH, d.concurrency),
        near_turn_n=positive_int(t, "near_turn_n", PATH, d.near_turn_n),
        quiet_start=quiet[0] if quiet else None,
        quiet_end=quiet[1] if quiet else None,
        max_attempts=positive_int(t, "max_attempts", PATH, d.max_attempts),
        backoff_s=positive(t, "backoff_s", PATH, d.backoff_s),
        max_backoff_s=positive(t, "max_backoff_s", PATH, d.max_backoff_s),
        send_timeout_s=positive(t, "send_timeout_s", PATH, d.send_timeout_s),
        bilingual=typed(t, "bilingual", PATH, bool, d.bilingual),
        console_log=str(log_path if log_path.is_absolute() else source.parent / log_path),
        twilio=twilio,
    )


def _quiet(value: str) -> tuple[time, time] | None:
    if not value:
        return None
    m = _QUIET.fullmatch(value.replace(" ", ""))
    check(
        m is not None, f"{PATH}.quiet_hours", f"{value!r} must look like 22:00-07:30 (or be empty)"
    )
    assert m is not None
    return time(int(m[1]), int(m[2])), time(int(m[3]), int(m[4]))


def _url(t: Table, key: str, default: str) -> str:
    value = typed(t, key, PATH, str, default)
    check(
        value.startswith(("http://", "https://")),
        f"{PATH}.{key}",
        f"{value!r} must be an http(s) URL",
    )
    return value


def _twilio(t: Table, env: Mapping[str, str]) -> TwilioConfig:
    path = f"{PATH}.twilio"
    only_keys(t, TWILIO_KEYS, path)
    sid = text(t, "account_sid", path)
    check(
        sid.startswith("AC") and len(sid) == 34,
        f"{path}.account_sid",
        "must be AC followed by 32 characters",
    )
    token = env.get(ENV_TWILIO_TOKEN) or typed(t, "auth_token", path, str, "")
    check(bool(token), f"{path}.auth_token", f"missing (set it here or in {ENV_TWILIO_TOKEN})")
    sender = typed(t, "from_number", path, str, None)
    service = typed(t, "messaging_service_sid", path, str, None)
    check(bool(sender or service), path, "needs from_number or messaging_service_sid")
    return TwilioConfig(sid, token, sender, service, typed(t, "base_url", path, str, None))
