"""Field rules that more than one domain's request models share."""

from __future__ import annotations

import re

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def check_email(value: str) -> str:
    """A plausible address, normalised to lower case (the users table compares case-insensitively)."""
    value = value.strip()
    if not EMAIL.match(value):
        raise ValueError("not a valid email address")
    return value.lower()
