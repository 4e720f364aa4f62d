"""Errors of the web process that the engine does not know about."""

from __future__ import annotations

from queue_engine import QueueError


class ConsentRequiredError(QueueError):
    """A phone number for SMS notices needs the citizen's consent (sms_consent: true)."""

    code = "consent_required"
    zh = "留存手机号用于短信通知需要市民同意（sms_consent: true）"
    status = 422
