"""Field rules that more than one domain's request models share."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, BeforeValidator, Field
from pydantic_core import PydanticCustomError

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


# --- names and other short plain text ------------------------------------------------------------

# What a name may not hold: control characters (C0, DEL, C1: CR/LF would start new lines in an email
# or a header), line and paragraph separators, and the bidirectional embedding, override and isolate
# controls (they reorder what a reader sees, e.g. in a subject line).
_NOT_PLAIN = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def check_plain_text(value: str) -> str:
    """``value`` stripped, if it is plain text on one line (a ``plain_text`` error otherwise)."""
    if _NOT_PLAIN.search(value):
        raise PydanticCustomError("plain_text", "must be plain text on one line, without control characters")
    value = value.strip()
    if not value:
        raise PydanticCustomError("blank", "must not be blank")
    return value


# The same rule as a JSON Schema pattern (for clients and the API's property tests): no character of
# _NOT_PLAIN, and one that is not a space. check_plain_text stays the check (its 422 names the rule).
_NOT_PLAIN_CLASS = "\\u0000-\\u001f\\u007f-\\u009f\\u2028\\u2029\\u202a-\\u202e\\u2066-\\u2069"
PLAIN_TEXT_PATTERN = f"^[^{_NOT_PLAIN_CLASS}]*[^{_NOT_PLAIN_CLASS}\\s][^{_NOT_PLAIN_CLASS}]*$"

# A person's name as every request model takes it (registration, profile, pay-first checkout).
PlainName = Annotated[
    str,
    Field(min_length=1, max_length=200, examples=["Ada Lovelace"], json_schema_extra={"pattern": PLAIN_TEXT_PATTERN}),
    AfterValidator(check_plain_text),
]


# --- strict scalars -----------------------------------------------------------------------------------

_ISO_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")


def require_iso_date_time(value: object) -> object:
    """Only an ISO 8601 date-time string (or a datetime): pydantic would otherwise read a number,
    or a string such as "0.5", as seconds since 1970."""
    if isinstance(value, datetime) or (isinstance(value, str) and _ISO_DATE_TIME.match(value)):
        return value
    raise PydanticCustomError("datetime_type", "must be an ISO 8601 date-time, such as 2026-01-31T12:00:00Z")


# A date-time with its offset, given as ISO 8601 text only (filters and bodies).
IsoDateTime = Annotated[AwareDatetime, BeforeValidator(require_iso_date_time)]


def require_bool(value: object) -> object:
    """Only JSON's true and false: pydantic would otherwise take 1, 0, "yes" or 1.0 for a boolean."""
    if isinstance(value, bool):
        return value
    raise PydanticCustomError("bool_type", "must be true or false")


# Consent given in a request body: the JSON value true, nothing that merely compares equal to it.
AcceptTrue = Annotated[Literal[True], BeforeValidator(require_bool)]
