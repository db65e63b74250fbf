"""Field rules that more than one domain's request models share."""

from __future__ import annotations

import re

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

# The canonical 8-4-4-4-12 hex form, either case. ``uuid.UUID`` also takes ``urn:uuid:``, braces,
# no hyphens and hyphens anywhere; PostgreSQL's uuid input refuses some of those (a database error,
# not a 404) and reads others as an id spelled differently from every one we return. For a
# ``Field``/``Query`` pattern as well (pydantic's regex: ``$`` is the end of the text).
UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
_UUID = re.compile(UUID_PATTERN)


def canonical_uuid(value: object) -> str | None:
    """``value`` as we spell ids (lower case) if it is a uuid in the canonical form, else None."""
    if isinstance(value, str) and _UUID.fullmatch(value):
        return value.lower()
    return None


def is_uuid(value: object) -> bool:
    return canonical_uuid(value) is not None


def check_email(value: str) -> str:
    """A plausible address, normalised to lower case (the users table compares case-insensitively)."""
    value = value.strip()
    if not EMAIL.match(value):
        raise ValueError("not a valid email address")
    return value.lower()
