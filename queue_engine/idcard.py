"""Resident ID numbers (GB 11643-1999): check digit validation and a keyed hash for storage.

The number itself is never stored: only an HMAC-SHA256 under the hall's key,
enough to find a citizen's booking again and nothing more.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import date

from .errors import InvalidRequestError

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK = "10X98765432"
_SHAPE = re.compile(r"\d{17}[\dX]")


def check_digit(first17: str) -> str:
    """The GB 11643 check character for the first 17 digits."""
    return CHECK[sum(int(d) * w for d, w in zip(first17, WEIGHTS, strict=True)) % 11]


def is_valid(number: str) -> bool:
    """True for an 18-character ID number with a real birth date and the right check character."""
    number = number.strip().upper()
    if not _SHAPE.fullmatch(number):
        return False
    try:
        date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        return False
    return check_digit(number[:17]) == number[17]


def id_key(number: str, secret: bytes) -> str:
    """The keyed hash stored in place of a valid ID number; InvalidRequestError otherwise."""
    number = number.strip().upper()
    if not is_valid(number):
        raise InvalidRequestError(
            reason="the ID number is not valid (GB 11643 check digit)",
            reason_zh="身份证号码无效（校验位不符）",
        )
    return "id:" + hmac.new(secret, number.encode(), hashlib.sha256).hexdigest()


def mask_id(number: str) -> str:
    """510107********1234: the first 6 and the last 4."""
    number = number.strip()
    return number[:6] + "*" * max(0, len(number) - 10) + number[-4:]
