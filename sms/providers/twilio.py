"""Twilio, through the real twilio library's async REST client.

Errors are sorted at this boundary: HTTP 429 and 5xx, Twilio's 20429 and
network failures are transient (the dispatcher retries with back-off);
21610 means the recipient opted out; every other refusal is permanent.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import aiohttp
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client

from ..config import TwilioConfig
from .base import OptedOutError, Outgoing, PermanentSmsError, Sent, TransientSmsError

TRANSIENT_CODES = {20429, 30001, 63017}
OPTED_OUT = 21610


class TwilioProvider:
    """Sends through Twilio's Messages API; finds earlier sends by recipient, time and body."""

    name = "twilio"

    def __init__(self, config: TwilioConfig, timeout_s: float = 10.0) -> None:
        self.config = config
        self._http = AsyncTwilioHttpClient(timeout=timeout_s)
        self.client = Client(config.account_sid, config.auth_token, http_client=self._http)
        if config.base_url:
            self.client.api.base_url = config.base_url

    def _sender(self) -> dict[str, str]:
        if self.config.messaging_service_sid:
            return {"messaging_service_sid": self.config.messaging_service_sid}
        return {"from_": self.config.from_number or ""}

    async def send(self, message: Outgoing, status_callback: str | None) -> Sent:
        """Create the message; the status callback reports its delivery later."""
        extra = {"status_callback": status_callback} if status_callback else {}
        try:
            created = await self.client.messages.create_async(
                to=message.phone, body=message.body, **self._sender(), **extra
            )
        except TwilioRestException as exc:
            raise _sorted(exc) from exc
        except (TwilioException, aiohttp.ClientError, TimeoutError) as exc:
            raise TransientSmsError(f"{type(exc).__name__}: {exc}") from exc
        return Sent(provider_id=created.sid or "", status=str(created.status or "queued"))

    async def lookup(self, message: Outgoing) -> Sent | None:
        """A message to the same number with the same body, created since the attempt began."""
        # Not filtered by date sent: a message still queued at the provider has none yet.
        since = datetime.fromtimestamp(message.attempt_started_at, UTC) - timedelta(minutes=1)
        try:
            found = await self.client.messages.list_async(to=message.phone, limit=50)
        except TwilioRestException as exc:
            raise _sorted(exc) from exc
        except (TwilioException, aiohttp.ClientError, TimeoutError) as exc:
            raise TransientSmsError(f"{type(exc).__name__}: {exc}") from exc
        for m in found:
            created = m.date_created
            recent = created is None or created >= since
            if m.body == message.body and m.sid and recent:
                return Sent(provider_id=m.sid, status=str(m.status or "sent"))
        return None

    async def close(self) -> None:
        """Close the HTTP session."""
        await self._http.close()


def _sorted(exc: TwilioRestException) -> Exception:
    code = str(exc.code) if exc.code else None
    reason = f"HTTP {exc.status} code {exc.code}: {exc.msg}"
    if exc.code == OPTED_OUT:
        return OptedOutError(reason, code)
    if exc.status == 429 or exc.status >= 500 or (exc.code in TRANSIENT_CODES):
        return TransientSmsError(reason, code)
    return PermanentSmsError(reason, code)
