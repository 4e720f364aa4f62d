"""queue_engine.jsontext: the event log's and the feed's JSON, as the standard library's."""

from __future__ import annotations

import json

import pytest

from queue_engine.jsontext import dumps


def stdlib(obj: object) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


@pytest.mark.parametrize(
    "obj",
    [
        {"ticket": {"id": 7, "number": "A023", "note": "带齐材料", "declined_by": ["W0101"],
                    "called_at": 1_764_327_396.123456, "ended_at": None, "recalls": 0},
         "by_next": True, "reason": "午休"},
        [1, 2.5, "x", None, False, {"nested": []}],
        {"quote": 'say "hi"\n\ttab \\ back', "emoji": "窗口🙂", "control": "\x01"},
    ],
)  # fmt: skip
def test_writes_what_the_standard_library_writes(obj: object) -> None:
    assert dumps(obj) == stdlib(obj)


@pytest.mark.parametrize("obj", [{1: "an int key"}, {"big": 2**70}])
def test_what_orjson_refuses_goes_to_the_standard_library(obj: object) -> None:
    assert dumps(obj) == stdlib(obj)


def test_small_floats_read_back_alike() -> None:
    for x in (1e-7, 2.5e-5, 1e16, 0.1):
        assert json.loads(dumps(x)) == x


def test_what_neither_writes_is_still_refused() -> None:
    import datetime

    with pytest.raises(TypeError):
        dumps({"when": datetime.date(2026, 11, 28)})
