"""Phone numbers: validated and normalised to E.164, shown masked."""

from __future__ import annotations

import re

from queue_engine import QueueError

_CN_MOBILE = re.compile(r"1[3-9][0-9]{9}")
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
_SEPARATORS = re.compile(r"[\s\-().]")
COUNTRY_CODES = {"CN": "86", "HK": "852", "MO": "853", "US": "1", "GB": "44"}


class InvalidPhoneError(QueueError):
    """'{phone}' is not a valid mobile number: {reason}."""

    code = "invalid_phone"
    zh = "“{phone}”不是有效的手机号码：{reason_zh}"
    status = 422


def normalise(phone: str, region: str = "CN") -> str:
    """E.164 form of a mobile number; mainland numbers may be given without +86."""
    raw = _SEPARATORS.sub("", phone.strip())
    if raw.startswith("00"):
        raw = "+" + raw[2:]
    if region == "CN" and _CN_MOBILE.fullmatch(raw):
        return "+86" + raw
    if raw.startswith("+86"):
        if _CN_MOBILE.fullmatch(raw[3:]):
            return raw
        raise InvalidPhoneError(
            phone=phone, reason="a mainland mobile number has 11 digits starting 13–19",
            reason_zh="大陆手机号为以13–19开头的11位数字",
        )  # fmt: skip
    if raw.startswith("+") and _E164.fullmatch(raw):
        return raw
    code = COUNTRY_CODES.get(region)
    if (
        code
        and raw.isascii()
        and raw.isdigit()
        and region != "CN"
        and _E164.fullmatch(f"+{code}{raw.lstrip('0')}")
    ):
        return f"+{code}{raw.lstrip('0')}"
    raise InvalidPhoneError(
        phone=phone, reason="expected 11 digits such as 13812345678, or +country code",
        reason_zh="应为11位手机号（如13812345678）或带国家代码",
    )  # fmt: skip
