"""Masks for public screens: a citizen's or staffer's name and phone are never shown whole."""

from __future__ import annotations


def mask_name(name: str) -> str:
    """张伟 → 张*, 欧阳娜娜 → 欧***; Latin names keep their first letter: Li Na → L****."""
    name = name.strip()
    if not name:
        return ""
    return name[0] + "*" * (len(name) - 1) if len(name) > 1 else name


def mask_phone(phone: str | None) -> str:
    """+8613812341234 or 13812341234 → 138****1234; short or odd numbers keep only the last 2."""
    if not phone:
        return ""
    digits = "".join(ch for ch in phone if ch.isdigit())
    if phone.startswith("+86") and len(digits) == 13:
        digits = digits[2:]
    if len(digits) >= 11:
        return f"{digits[:3]}****{digits[-4:]}"
    return "*" * max(0, len(digits) - 2) + digits[-2:]
