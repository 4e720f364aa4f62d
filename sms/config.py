"""The SMS settings, built by callcenter.settings from the ``[sms]`` table."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import time


@dataclass(frozen=True, slots=True)
class TwilioConfig:
    """Credentials and sender of the Twilio provider."""

    account_sid: str
    auth_token: str
    from_number: str | None = None
    messaging_service_sid: str | None = None
    base_url: str | None = None  # tests point the real library at a local Twilio-shaped server


@dataclass(frozen=True, slots=True)
class SmsConfig:
    """How the silent call sends: provider, signature, pace, retries, quiet hours."""

    provider: str = "console"
    signature: str = "政务服务"
    region: str = "CN"
    public_url: str = "http://127.0.0.1:8000"
    rate_per_s: float = 10.0
    concurrency: int = 8
    near_turn_n: int = 3
    quiet_start: time | None = time(22, 0)
    quiet_end: time | None = time(7, 30)
    max_attempts: int = 6
    backoff_s: float = 2.0
    max_backoff_s: float = 300.0
    send_timeout_s: float = 10.0
    bilingual: bool = True
    console_log: str = "var/sms-console.jsonl"
    twilio: TwilioConfig | None = field(default=None)
