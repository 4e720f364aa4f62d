"""The ``[hotline]`` settings: number, voices, hold behaviour, call-backs, agent endpoints."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sms.config import TwilioConfig

from ..config_checks import ConfigError, check, optional_table, positive, typed
from ..settings import Settings


@dataclass(frozen=True, slots=True)
class HotlineConfig:
    """How the hotline answers and routes."""

    number: str = "+862896166000"
    public_url: str = "http://127.0.0.1:8000"
    language: str = "cmn-CN"
    voice: str = "Polly.Zhiyu"
    en_language: str = "en-US"
    en_voice: str = "Polly.Joanna"
    hold_announce_s: float = 60.0
    hold_music_url: str | None = None
    gather_timeout_s: int = 6
    callback_attempts: int = 3
    callback_rate_per_s: float = 1.0
    reconcile_after_s: float = 120.0
    endpoints: Mapping[str, str] = field(default_factory=dict)
    services: Mapping[str, str] = field(
        default_factory=lambda: {
            "agent": "hotline_consult",
            "appointment": "hotline_appointment",
            "complaint": "hotline_complaint",
        }  # fmt: skip
    )
    twilio: TwilioConfig | None = None

    def endpoint(self, vn: str) -> str:
        """Where an agent's calls are put through: client:ID, sip:URI or a phone number."""
        return self.endpoints.get(vn, f"client:{vn}")


def hotline_config(settings: Settings, twilio: TwilioConfig | None) -> HotlineConfig | None:
    """The hotline settings, or None when there is no ``[hotline]`` table."""
    if "hotline" not in settings.raw:
        return None
    try:
        return _hotline(optional_table(settings.raw, "hotline", ""), settings, twilio)
    except ConfigError as exc:
        raise exc.within(settings.source) from None


def _hotline(
    t: Mapping[str, Any], settings: Settings, twilio: TwilioConfig | None
) -> HotlineConfig:
    d = HotlineConfig()
    endpoints = dict(optional_table(t, "endpoints", "hotline"))
    for vn, target in endpoints.items():
        check(
            settings.hall.staffer(vn) is not None, f"hotline.endpoints.{vn}", "unknown work number"
        )
        check(isinstance(target, str) and target.startswith(("client:", "sip:", "+")),
              f"hotline.endpoints.{vn}", "must be client:ID, sip:URI or +number")  # fmt: skip
    services = dict(optional_table(t, "services", "hotline")) or dict(d.services)
    for key, code in services.items():
        svc = settings.hall.service(code)
        check(svc is not None and svc.channel.value == "phone", f"hotline.services.{key}",
              f"{code!r} must be a phone service")  # fmt: skip
    check("agent" in services, "hotline.services", "needs an 'agent' service")
    return HotlineConfig(
        number=typed(t, "number", "hotline", str, d.number),
        public_url=typed(t, "public_url", "hotline", str, d.public_url),
        language=typed(t, "language", "hotline", str, d.language),
        voice=typed(t, "voice", "hotline", str, d.voice),
        en_language=typed(t, "en_language", "hotline", str, d.en_language),
        en_voice=typed(t, "en_voice", "hotline", str, d.en_voice),
        hold_announce_s=positive(t, "hold_announce_s", "hotline", d.hold_announce_s),
        hold_music_url=typed(t, "hold_music_url", "hotline", str, None),
        gather_timeout_s=int(positive(t, "gather_timeout_s", "hotline", d.gather_timeout_s)),
        callback_attempts=int(positive(t, "callback_attempts", "hotline", d.callback_attempts)),
        callback_rate_per_s=positive(t, "callback_rate_per_s", "hotline", d.callback_rate_per_s),
        reconcile_after_s=positive(t, "reconcile_after_s", "hotline", d.reconcile_after_s),
        endpoints=endpoints,
        services=services,
        twilio=twilio,
    )
