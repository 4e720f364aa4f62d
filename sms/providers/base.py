"""What a provider does: send one message, and find a message it may already have sent."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from queue_engine import QueueError


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One outbox row on its way out."""

    outbox_id: int
    phone: str
    body: str
    attempt_started_at: float


@dataclass(frozen=True, slots=True)
class Sent:
    """The provider accepted the message: its id there and its first status."""

    provider_id: str
    status: str = "sent"


class SmsError(QueueError):
    """The SMS provider refused the message: {reason}."""

    code = "sms_error"
    zh = "短信发送失败：{reason}"
    status = 502

    def __init__(self, reason: str, error_code: str | None = None) -> None:
        super().__init__(reason=reason)
        self.error_code = error_code


class TransientSmsError(SmsError):
    """The SMS provider could not take the message now: {reason}."""

    code = "sms_transient"


class PermanentSmsError(SmsError):
    """The SMS provider will never deliver the message: {reason}."""

    code = "sms_permanent"


class OptedOutError(PermanentSmsError):
    """The recipient has opted out of our messages: {reason}."""

    code = "sms_opted_out"


class SmsProvider(Protocol):
    """Sends messages; raises TransientSmsError (retry) or PermanentSmsError (give up)."""

    name: str

    async def send(self, message: Outgoing, status_callback: str | None) -> Sent:
        """Hand one message to the provider."""
        ...

    async def lookup(self, message: Outgoing) -> Sent | None:
        """The provider's record of a message an earlier run may have sent, if any."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...
