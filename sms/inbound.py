"""What a citizen's reply asks for: opt out, opt back in, a ticket's status, or help."""

from __future__ import annotations

import re
from dataclasses import dataclass

OPT_OUT = {
    "退订",
    "TD",
    "T",
    "STOP",
    "STOPALL",
    "UNSUBSCRIBE",
    "END",
    "QUIT",
    "CANCEL",
    "OPTOUT",
    "REVOKE",
}
OPT_IN = {"START", "订阅", "UNSTOP", "恢复"}
TICKET_NUMBER = re.compile(r"[A-Z]\d{3,4}")
CASE_NUMBER = re.compile(r"[A-Z]{2,4}\d{12}")
CANCEL = re.compile(r"(?:QX|取消)\s*(\d{6})")
RATING = re.compile(r"[1-5]")


@dataclass(frozen=True, slots=True)
class Intent:
    """The reply's meaning: ``kind`` is opt_out, opt_in, ticket, case, cancel, rate or help."""

    kind: str
    number: str | None = None


def parse(body: str) -> Intent:
    """Read one reply (case and surrounding punctuation ignored)."""
    text = body.strip().strip("。.!！ ").upper()
    if text in OPT_OUT:
        return Intent("opt_out")
    if text in OPT_IN:
        return Intent("opt_in")
    if TICKET_NUMBER.fullmatch(text):
        return Intent("ticket", text)
    if CASE_NUMBER.fullmatch(text):
        return Intent("case", text)
    if m := CANCEL.fullmatch(text):
        return Intent("cancel", m[1])
    if RATING.fullmatch(text):
        return Intent("rate", text)
    return Intent("help")
