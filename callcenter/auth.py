"""Who may do what: staff passwords, signed expiring tokens, roles, device tokens.

Passwords are scrypt hashes (standard library). Session tokens are
``payload.signature`` with an HMAC-SHA256 over a JSON payload carrying the
virtual number, role, hall and expiry, so any process holding the secret can
check them without a session table. Devices (kiosks, displays, window
screens, rating pads) hold tokens from config, each scoped to one hall.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from queue_engine import HallConfig, QueueError

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1


class Role(StrEnum):
    """What a signed-in person may do; each role includes the ones before it."""

    STAFF = "staff"
    AGENT = "agent"
    OFFICER = "officer"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"


RANK = {Role.STAFF: 0, Role.AGENT: 0, Role.OFFICER: 0, Role.SUPERVISOR: 1, Role.ADMIN: 2}


class AuthError(QueueError):
    """Sign in first: {reason}."""

    code = "unauthorized"
    zh = "请先登录：{reason_zh}"
    status = 401


class ForbiddenError(QueueError):
    """Not allowed: {reason}."""

    code = "forbidden"
    zh = "无权操作：{reason_zh}"
    status = 403


def hash_password(password: str, salt: bytes | None = None) -> str:
    """An scrypt hash as ``scrypt$n$r$p$salt$hash`` (base64)."""
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P)
    return "$".join(
        ["scrypt", str(SCRYPT_N), str(SCRYPT_R), str(SCRYPT_P), _b64(salt), _b64(digest)]
    )


def is_scrypt_hash(stored: str) -> bool:
    """True for a well-formed ``scrypt$n$r$p$salt$hash``."""
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        cost = int(n)
        ok = kind == "scrypt" and cost > 1 and cost & (cost - 1) == 0 and int(r) > 0 and int(p) > 0
        return ok and bool(_unb64(salt)) and bool(_unb64(digest))
    except (ValueError, binascii.Error):
        return False


def verify_password(password: str, stored: str) -> bool:
    """True if ``password`` matches an scrypt hash made by hash_password."""
    if not is_scrypt_hash(stored):
        return False
    kind, n, r, p, salt, digest = stored.split("$")
    got = hashlib.scrypt(
        password.encode(),
        salt=_unb64(salt),
        n=int(n),
        r=int(r),
        p=int(p),
        dklen=len(_unb64(digest)),
    )
    return hmac.compare_digest(got, _unb64(digest))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class Principal:
    """A signed-in staffer (from a session token) or a device (from its device token)."""

    subject: str
    role: str
    hall: str
    expires_at: float
    device_kind: str | None = None
    window: str | None = None
    department: str | None = None

    @property
    def is_device(self) -> bool:
        """True for kiosks and screens."""
        return self.device_kind is not None

    def at_least(self, role: Role) -> bool:
        """True if this principal's role ranks at or above ``role``."""
        if self.is_device:
            return False
        return RANK.get(Role(self.role), -1) >= RANK[role]


@dataclass(frozen=True, slots=True)
class Device:
    """A configured device: its id, kind, hall, optional window, and token."""

    id: str
    kind: str
    hall: str
    token: str
    window: str | None = None
    department: str | None = None


class Authority:
    """Issues and checks tokens for one process."""

    def __init__(
        self,
        secret: bytes,
        halls: Mapping[str, HallConfig],
        password_hashes: Mapping[str, str],
        default_hash: str | None,
        devices: Mapping[str, Device],
        ttl_s: float = 12 * 3600,
    ) -> None:
        self._secret = secret
        self._halls = halls
        self._hashes = password_hashes
        self._default_hash = default_hash
        self.devices = devices
        # Device tokens by their SHA-256: one dict look-up per request instead of a
        # comparison with every device's token (the digest leaks nothing a timing can use).
        self._by_digest = {_digest(d.token): d for d in devices.values()}
        self.ttl_s = ttl_s

    def login(
        self, hall: str, virtual_number: str, password: str, now: float
    ) -> tuple[str, Principal]:
        """Check a password and return a session token and who it names."""
        config = self._halls.get(hall)
        staff = config.staffer(virtual_number) if config else None
        stored = self._hashes.get(virtual_number) or self._default_hash or _DUMMY_HASH
        # Hash even for an unknown number, so the answer's timing does not tell which exist.
        matches = verify_password(password, stored)
        if staff is None or not matches or stored is _DUMMY_HASH:
            raise AuthError(reason="wrong work number or password", reason_zh="工号或密码错误")
        who = Principal(virtual_number, staff.role, hall, now + self.ttl_s)
        return self.sign(who), who

    def sign(self, who: Principal) -> str:
        """A token for ``who``."""
        body = json.dumps(
            {"sub": who.subject, "role": who.role, "hall": who.hall, "exp": who.expires_at},
            separators=(",", ":"),
        ).encode()
        mac = hmac.new(self._secret, body, hashlib.sha256).digest()
        return f"{_b64(body)}.{_b64(mac)}"

    def check(self, token: str, now: float) -> Principal:
        """The principal behind a session or device token; AuthError if none or expired."""
        device = self._device(token)
        if device is not None:
            return Principal(
                device.id, "device", device.hall, float("inf"), device.kind, device.window,
                device.department,
            )  # fmt: skip
        body, _, mac = token.partition(".")
        try:
            raw = _unb64(body)
            good = hmac.compare_digest(
                hmac.new(self._secret, raw, hashlib.sha256).digest(), _unb64(mac)
            )
            claims: dict[str, Any] = json.loads(raw) if good else {}
        except (ValueError, UnicodeDecodeError):
            claims = {}
        if not claims:
            raise AuthError(reason="the token is not valid", reason_zh="登录凭证无效")
        if claims["exp"] <= now:
            raise AuthError(reason="the session has expired", reason_zh="登录已过期")
        return Principal(claims["sub"], claims["role"], claims["hall"], claims["exp"])

    def _device(self, token: str) -> Device | None:
        return self._by_digest.get(_digest(token))


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


# Verified against when a work number has no hash, so every login costs one scrypt.
_DUMMY_HASH = hash_password(secrets.token_urlsafe(16))
