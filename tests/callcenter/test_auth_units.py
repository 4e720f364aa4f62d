"""Units under the API: passwords, session and device tokens, rate limits, phones, masks."""

from __future__ import annotations

import base64
import json
import math

import pytest
from cc_support import DISPLAY, KIOSK, PASSWORD, WINDOW1

from callcenter.auth import (
    AuthError,
    Authority,
    Device,
    Principal,
    Role,
    hash_password,
    verify_password,
)
from callcenter.ratelimit import RateLimitedError, RateLimiter
from callcenter.security import authority_from
from callcenter.settings import Settings
from queue_engine.masking import mask_name, mask_phone
from sms.phone import InvalidPhoneError, normalise

SALT = bytes(range(16))


# --- passwords ----------------------------------------------------------------------


def test_hash_and_verify_round_trip() -> None:
    stored = hash_password("s3cret")
    kind, n, r, p, salt, digest = stored.split("$")
    assert (kind, n, r, p) == ("scrypt", "16384", "8", "1")
    assert len(base64.urlsafe_b64decode(salt + "==")) == 16
    assert len(base64.urlsafe_b64decode(digest + "=" * (-len(digest) % 4))) == 64
    assert verify_password("s3cret", stored) is True
    assert verify_password("s3cret ", stored) is False
    assert verify_password("S3cret", stored) is False
    assert verify_password("", stored) is False


def test_salt_makes_hashes_differ_and_a_given_salt_repeats() -> None:
    assert hash_password("x") != hash_password("x")
    assert hash_password("x", SALT) == hash_password("x", SALT)
    assert hash_password("x", SALT).split("$")[4] == "AAECAwQFBgcICQoLDA0ODw"


def test_the_demo_default_hash_is_96166demo(settings: Settings) -> None:
    stored = settings.raw["auth"]["default_password_hash"]
    assert verify_password(PASSWORD, stored) is True
    assert verify_password("96166", stored) is False


@pytest.mark.parametrize(
    "stored", ["", "scrypt", "bcrypt$16384$8$1$AAAA$AAAA", "scrypt$16384$8$1$AAAA", "plain"]
)
def test_malformed_stored_hashes_never_verify(stored: str) -> None:
    assert verify_password("x", stored) is False


@pytest.mark.parametrize(
    "stored",
    [
        "scrypt$abc$8$1$AAAA$AAAA",  # n not a number
        "scrypt$1000$8$1$AAAA$AAAA",  # n not a power of 2
        "scrypt$16384$8$1$A$AAAA",  # truncated salt
        "scrypt$16384$8$1$AAAA$",  # no digest
    ],
)
def test_a_garbled_scrypt_hash_does_not_raise(stored: str) -> None:
    assert verify_password("x", stored) is False


# --- session tokens -----------------------------------------------------------------


@pytest.fixture
def authority(settings: Settings) -> Authority:
    return authority_from(settings, env={"CALLCENTER_SECRET": "unit-secret"})


def test_login_sign_and_check_round_trip(authority: Authority) -> None:
    token, who = authority.login("wuhou", "W0101", PASSWORD, now=1000.0)
    assert who == Principal("W0101", "agent", "wuhou", 1000.0 + 720 * 60)
    assert authority.check(token, 1000.0) == who
    assert authority.check(token, 1000.0 + 720 * 60 - 0.001) == who
    body = token.split(".")[0]
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    assert claims == {"sub": "W0101", "role": "agent", "hall": "wuhou", "exp": 44200.0}


def test_a_token_expires_at_its_exp(authority: Authority) -> None:
    token = authority.sign(Principal("W0001", "staff", "wuhou", 5000.0))
    assert authority.check(token, 4999.999).subject == "W0001"
    for now in (5000.0, 5000.001, 10**10):
        with pytest.raises(AuthError) as err:
            authority.check(token, now)
        assert err.value.details["reason"] == "the session has expired"
        assert err.value.status == 401


def test_login_errors(authority: Authority) -> None:
    for hall, vn, password in (
        ("wuhou", "W0001", "wrong"),
        ("wuhou", "W7777", PASSWORD),
        ("elsewhere", "W0001", PASSWORD),
    ):
        with pytest.raises(AuthError) as err:
            authority.login(hall, vn, password, now=0.0)
        assert err.value.message_en == "Sign in first: wrong work number or password."


def _reencode(claims: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()


def test_tampered_tokens_are_refused(authority: Authority, settings: Settings) -> None:
    token = authority.sign(Principal("W0001", "staff", "wuhou", 5000.0))
    body, _, mac = token.partition(".")
    other = authority_from(settings, env={"CALLCENTER_SECRET": "another-secret"})
    forged_claims = {"sub": "W0001", "role": "admin", "hall": "wuhou", "exp": 5000.0}
    bad = [
        f"{_reencode(forged_claims)}.{mac}",
        f"{body}.{'B' if mac[0] == 'A' else 'A'}{mac[1:]}",
        f"{body}.",
        f".{mac}",
        body,
        "",
        "..",
        "not base64!.also not",
        other.sign(Principal("W0001", "staff", "wuhou", 5000.0)),
    ]
    for forged in bad:
        with pytest.raises(AuthError) as err:
            authority.check(forged, 0.0)
        assert err.value.details["reason"] == "the token is not valid", forged


def test_roles_rank() -> None:
    def who(role: str) -> Principal:
        return Principal("W0001", role, "wuhou", 1.0)

    for role in ("staff", "agent", "officer"):
        assert who(role).at_least(Role.STAFF)
        assert not who(role).at_least(Role.SUPERVISOR)
    assert who("supervisor").at_least(Role.SUPERVISOR)
    assert not who("supervisor").at_least(Role.ADMIN)
    assert who("admin").at_least(Role.SUPERVISOR) and who("admin").at_least(Role.ADMIN)


# --- device tokens ------------------------------------------------------------------


def test_device_tokens_name_their_device(authority: Authority, settings: Settings) -> None:
    kiosk = authority.check(KIOSK, 0.0)
    assert kiosk == Principal("kiosk-1", "device", "wuhou", math.inf, "kiosk", None)
    assert kiosk.is_device and not kiosk.at_least(Role.STAFF)
    assert authority.check(DISPLAY, 1e12).device_kind == "display"
    window = authority.check(WINDOW1, 0.0)
    assert (window.subject, window.device_kind, window.window) == ("window-1", "window", "1")
    assert sorted(authority.devices) == sorted(d["id"] for d in settings.raw["devices"])


@pytest.mark.parametrize("token", [KIOSK[:-1], KIOSK + "0", KIOSK.upper(), " " + KIOSK])
def test_near_miss_device_tokens_are_refused(authority: Authority, token: str) -> None:
    with pytest.raises(AuthError):
        authority.check(token, 0.0)


def test_a_hand_built_authority_checks_its_devices() -> None:
    devices = {"k": Device("k", "kiosk", "h", "kiosk-token-123", None)}
    authority = Authority(b"s", {}, {}, None, devices, ttl_s=60)
    assert authority.check("kiosk-token-123", 0.0).subject == "k"
    with pytest.raises(AuthError):
        authority.login("h", "W0001", "x", 0.0)


# --- rate limits --------------------------------------------------------------------


def test_rate_limiter_burst_then_refill() -> None:
    rl = RateLimiter(rate=1 / 60, burst=3)
    for _ in range(3):
        rl.hit("p", 0.0)
    with pytest.raises(RateLimitedError) as err:
        rl.hit("p", 0.0)
    assert err.value.details == {"retry_s": 60}
    assert (err.value.code, err.value.status) == ("rate_limited", 429)
    assert err.value.message_en == "Too many requests; try again in 60 seconds."
    with pytest.raises(RateLimitedError) as err:
        rl.hit("p", 30.0)  # half a token refilled
    assert err.value.details == {"retry_s": 30}
    rl.hit("p", 60.0)  # one whole token
    with pytest.raises(RateLimitedError):
        rl.hit("p", 60.0)
    rl.hit("other", 60.0)  # keys are independent


def test_rate_limiter_refill_is_capped_at_the_burst() -> None:
    rl = RateLimiter(rate=2.0, burst=4)
    for _ in range(4):
        rl.hit("k", 0.0)
    for _ in range(4):
        rl.hit("k", 1000.0)  # a long pause refills to 4, not 2000
    with pytest.raises(RateLimitedError) as err:
        rl.hit("k", 1000.0)
    assert err.value.details == {"retry_s": 1}  # (1 - 0) / 2 = 0.5 s, at least 1
    rl.hit("k", 1000.5)
    with pytest.raises(RateLimitedError):
        rl.hit("k", 1000.5)


def test_rate_limiter_forgets_full_buckets_when_it_has_too_many_keys() -> None:
    rl = RateLimiter(rate=1.0, burst=2, max_keys=2)
    rl.hit("a", 0.0)
    rl.hit("b", 0.0)
    rl.hit("a", 0.0)  # a is empty now
    rl.hit("c", 10.0)  # a and b are full again by now: forgotten
    assert sorted(rl._buckets) == ["c"]
    rl.hit("d", 10.0)
    rl.hit("d", 10.0)
    rl.hit("e", 10.0)  # c and d are not full: everything is forgotten
    assert sorted(rl._buckets) == ["e"]


# --- phone numbers ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "region", "e164"),
    [
        ("13812345678", "CN", "+8613812345678"),
        ("138 1234 5678", "CN", "+8613812345678"),
        ("138-1234-5678", "CN", "+8613812345678"),
        ("(138) 1234.5678", "CN", "+8613812345678"),
        ("  19912345678 ", "CN", "+8619912345678"),
        ("+86 138 1234 5678", "CN", "+8613812345678"),
        ("008613812345678", "CN", "+8613812345678"),
        ("+852 6123 4567", "CN", "+85261234567"),
        ("+14155552671", "CN", "+14155552671"),
        ("4155552671", "US", "+14155552671"),
        ("07700 900123", "GB", "+447700900123"),
        ("61234567", "HK", "+85261234567"),
        ("+8613812345678", "US", "+8613812345678"),
    ],
)
def test_normalise_valid(raw: str, region: str, e164: str) -> None:
    assert normalise(raw, region) == e164


@pytest.mark.parametrize(
    ("raw", "region"),
    [
        ("", "CN"),
        ("phone", "CN"),
        ("12345", "CN"),
        ("12812345678", "CN"),  # no mainland mobile starts 12
        ("1381234567", "CN"),  # 10 digits
        ("138123456789", "CN"),  # 12 digits
        ("8613812345678", "CN"),  # country code without +
        ("+8612812345678", "CN"),
        ("+86138123456", "CN"),
        ("+0123456789", "CN"),
        ("+123456", "CN"),  # 6 digits: too short for E.164
        ("+1234567890123456", "CN"),  # 16 digits: too long
        ("13812345678", "FR"),  # no country code known for FR
        ("0+8613812345678", "CN"),
    ],
)
def test_normalise_invalid(raw: str, region: str) -> None:
    with pytest.raises(InvalidPhoneError) as err:
        normalise(raw, region)
    assert (err.value.code, err.value.status) == ("invalid_phone", 422)
    assert err.value.details["phone"] == raw


def test_an_invalid_mainland_number_says_why() -> None:
    with pytest.raises(InvalidPhoneError) as err:
        normalise("+86 128 1234 5678")
    assert err.value.message_en == (
        "'+86 128 1234 5678' is not a valid mobile number: "
        "a mainland mobile number has 11 digits starting 13–19."
    )


@pytest.mark.parametrize("raw", ["13８12345678", "13٨١٢٣٤٥٦٧٨", "+1４１５５５５２６７１"])
def test_normalise_never_returns_non_ascii_digits(raw: str) -> None:
    try:
        got = normalise(raw)
    except InvalidPhoneError:
        return
    assert got.isascii() and got[1:].isdigit(), got


# --- masks --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("phone", "masked"),
    [
        ("+8613812341234", "138****1234"),
        ("13812341234", "138****1234"),
        ("+86 138 1234 1234", "138****1234"),
        ("+14155552671", "141****2671"),
        ("+85261234567", "852****4567"),
        ("12345", "***45"),
        ("42", "42"),
        ("", ""),
        (None, ""),
    ],
)
def test_mask_phone(phone: str | None, masked: str) -> None:
    assert mask_phone(phone) == masked


@pytest.mark.parametrize(
    ("name", "masked"),
    [
        ("张伟", "张*"),
        ("王志刚", "王**"),
        ("欧阳娜娜", "欧***"),
        ("Li Na", "L****"),
        ("  李雪梅  ", "李**"),
        ("", ""),
        ("   ", ""),
    ],
)
def test_mask_name(name: str, masked: str) -> None:
    assert mask_name(name) == masked


def test_two_devices_may_not_share_a_token(settings: Settings) -> None:
    """A shared token would let one device act as the other (and make the look-up pick one)."""
    import tomllib

    from callcenter.settings import ConfigError, parse_settings

    data = tomllib.loads(settings.source.read_text(encoding="utf-8"))
    data["devices"][1]["token"] = data["devices"][0]["token"]
    authority_from(
        parse_settings(tomllib.loads(settings.source.read_text(encoding="utf-8")), settings.source)
    )
    with pytest.raises(ConfigError, match=r"devices\[1\]\.token: is the same as device"):
        authority_from(parse_settings(data, settings.source))
