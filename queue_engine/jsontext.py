"""Compact JSON for the event log and the live feed.

For what events hold (str keys; str, int, float, bool and None; lists and dicts) orjson
writes what ``json.dumps(obj, ensure_ascii=False, separators=(",", ":"))`` writes, about
twelve times faster: every call-next encodes two events for the log and two for the
screens. Very small floats are spelt otherwise (``1e-7`` for ``1e-07``), which every parser
reads alike, and NaN and infinities become ``null`` (the standard library writes ``NaN``,
which is not JSON). What orjson refuses (a non-str key, an int beyond 64 bits) and what the
standard library would refuse too (dates, dataclasses) is left to the standard library.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

_AS_STDLIB = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def dumps(obj: Any) -> bytes:
    """``obj`` as compact UTF-8 JSON."""
    try:
        return orjson.dumps(obj, option=_AS_STDLIB)
    except TypeError:  # orjson.JSONEncodeError is one
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()
