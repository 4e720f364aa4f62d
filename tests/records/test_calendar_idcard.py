"""The working-day calendar across 国庆 2026 with its 调休 weekends, and GB 11643 ID numbers."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest

from callcenter.settings import load_settings
from queue_engine.calendar import WorkCalendar
from queue_engine.errors import InvalidRequestError
from queue_engine.idcard import check_digit, id_key, is_valid, mask_id
from tests.records.conftest import CALENDAR

CONFIG = Path(__file__).resolve().parents[2] / "config.toml"
D = date


# --- the calendar -------------------------------------------------------------------


def test_the_test_calendar_is_the_one_in_config_toml(tmp_path: Path) -> None:
    settings = load_settings(CONFIG, env={"CALLCENTER_STORE_URL": f"sqlite:///{tmp_path}/x.db"})
    cal = settings.hall.calendar
    for day in (D(2026, 9, 19) + timedelta(days=i) for i in range(30)):
        assert cal.is_working_day(day) == CALENDAR.is_working_day(day), day


@pytest.mark.parametrize(
    ("day", "worked"),
    [
        (D(2026, 9, 19), False),  # an ordinary Saturday
        (D(2026, 9, 20), True),   # Sunday worked in exchange (调休)
        (D(2026, 9, 30), True),   # Wednesday before the holiday
        (D(2026, 10, 1), False),  # 国庆 Thursday
        (D(2026, 10, 2), False),
        (D(2026, 10, 3), False),  # the weekend inside the holiday
        (D(2026, 10, 4), False),
        (D(2026, 10, 5), False),
        (D(2026, 10, 7), False),
        (D(2026, 10, 8), True),   # back to work on Thursday
        (D(2026, 10, 10), True),  # Saturday worked in exchange
        (D(2026, 10, 11), False),
        (D(2026, 10, 12), True),
    ],
)  # fmt: skip
def test_is_working_day(day: date, worked: bool) -> None:
    assert CALENDAR.is_working_day(day) is worked


@pytest.mark.parametrize(
    ("start", "n", "expected"),
    [
        (D(2026, 9, 30), 1, D(2026, 10, 8)),   # over the whole holiday
        (D(2026, 9, 30), 2, D(2026, 10, 9)),
        (D(2026, 9, 30), 3, D(2026, 10, 10)),  # the worked Saturday counts
        (D(2026, 9, 30), 4, D(2026, 10, 12)),
        (D(2026, 9, 30), 5, D(2026, 10, 13)),
        (D(2026, 9, 18), 1, D(2026, 9, 20)),   # Friday → the worked Sunday
        (D(2026, 9, 18), 2, D(2026, 9, 21)),
        (D(2026, 10, 1), 1, D(2026, 10, 8)),   # from inside the holiday
        (D(2026, 10, 3), 0, D(2026, 10, 8)),   # 0: the day itself if worked, else the next
        (D(2026, 9, 30), 0, D(2026, 9, 30)),
        (D(2026, 10, 8), -1, D(2026, 9, 30)),  # backwards over the holiday
        (D(2026, 10, 12), -2, D(2026, 10, 9)),
    ],
)  # fmt: skip
def test_add_working_days(start: date, n: int, expected: date) -> None:
    assert CALENDAR.add_working_days(start, n) == expected


def test_working_days_between_counts_after_start_up_to_end() -> None:
    assert CALENDAR.working_days_between(D(2026, 9, 30), D(2026, 10, 13)) == 5
    assert CALENDAR.working_days_between(D(2026, 10, 13), D(2026, 9, 30)) == -5
    assert CALENDAR.working_days_between(D(2026, 10, 1), D(2026, 10, 7)) == 0
    assert CALENDAR.working_days_between(D(2026, 9, 18), D(2026, 9, 20)) == 1
    assert CALENDAR.working_days_between(D(2026, 9, 30), D(2026, 9, 30)) == 0
    # the inverse of add_working_days, whatever the start
    for i in range(40):
        start = D(2026, 9, 15) + timedelta(days=i)
        for n in (1, 3, 7):
            assert CALENDAR.working_days_between(start, CALENDAR.add_working_days(start, n)) == n


def test_working_days_from_lists_the_next_working_days() -> None:
    assert CALENDAR.working_days_from(D(2026, 9, 29), 5) == [
        D(2026, 9, 30), D(2026, 10, 8), D(2026, 10, 9), D(2026, 10, 10), D(2026, 10, 12)
    ]  # fmt: skip
    assert CALENDAR.working_days_from(D(2026, 9, 18), 2) == [D(2026, 9, 20), D(2026, 9, 21)]
    assert CALENDAR.working_days_from(D(2026, 9, 18), 0) == []


def test_an_empty_calendar_is_monday_to_friday() -> None:
    cal = WorkCalendar()
    assert cal.add_working_days(D(2026, 10, 1), 1) == D(2026, 10, 2)
    assert cal.add_working_days(D(2026, 10, 2), 1) == D(2026, 10, 5)
    assert not cal.is_working_day(D(2026, 10, 10))


# --- GB 11643 ID numbers ------------------------------------------------------------

VALID = ["11010519491231002X", "440524188001010014", "34052419800101001X"]


@pytest.mark.parametrize("number", VALID)
def test_published_vectors_are_valid(number: str) -> None:
    assert is_valid(number)
    assert check_digit(number[:17]) == number[17]


def test_a_lower_case_x_and_surrounding_spaces_are_accepted() -> None:
    assert is_valid(" 11010519491231002x ")


@pytest.mark.parametrize(
    "number",
    [
        "110105194912310021",   # wrong check digit (X expected)
        "440524188001010015",   # wrong check digit (4 expected)
        "34052419800101001 ",   # check character missing
        "110105194902300020",   # 30 February, with its correct check digit
        "110105194913010015",   # month 13
        "11010519491231002",    # 17 characters
        "11010519491231002X1",  # 19 characters
        "110105491231002",      # the old 15-digit form
        "11010519491231002Y",
        "X10105194912310021",
        "",
    ],
)  # fmt: skip
def test_invalid_numbers(number: str) -> None:
    assert not is_valid(number)


def test_the_bad_date_vector_fails_only_on_its_date() -> None:
    # 110105194902300020 has the right check digit: only the date check can reject it.
    assert check_digit("11010519490230002") == "0"


def test_id_key_is_keyed_and_never_contains_the_number() -> None:
    number = VALID[0]
    a1, a2 = id_key(number, b"secret-a"), id_key(number, b"secret-a")
    b = id_key(number, b"secret-b")
    assert a1 == a2 and a1 != b
    assert a1.startswith("id:") and len(a1) == 3 + 64
    for key in (a1, b):
        assert number not in key and number.lower() not in key
        assert number[6:14] not in key  # not even the birth date
    # the same person however the number is typed
    assert id_key(" 11010519491231002x", b"secret-a") == a1
    assert id_key(VALID[1], b"secret-a") != a1


@pytest.mark.parametrize("number", ["110105194912310021", "12345", ""])
def test_id_key_refuses_an_invalid_number(number: str) -> None:
    with pytest.raises(InvalidRequestError):
        id_key(number, b"k")


def test_mask_id_keeps_the_first_six_and_last_four() -> None:
    assert mask_id("11010519491231002X") == "110105********002X"
    assert mask_id("440524188001010014") == "440524********0014"
    assert "19491231" not in mask_id(VALID[0])
