"""SMS providers behind one interface; Twilio is imported only when configured."""

from __future__ import annotations

from ..config import SmsConfig
from .base import SmsProvider


def make_provider(config: SmsConfig) -> SmsProvider:
    """The provider ``config`` names."""
    if config.provider == "twilio":
        from .twilio import TwilioProvider

        assert config.twilio is not None
        return TwilioProvider(config.twilio, config.send_timeout_s)
    from .console import ConsoleProvider

    return ConsoleProvider(config.console_log)
