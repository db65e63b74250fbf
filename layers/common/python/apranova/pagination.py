"""Keyset pagination: ``?cursor=&limit=`` in, ``{"items": [...], "next_cursor": ...}`` out.

The cursor is the sort key of the last item returned, opaque to clients (base64url JSON). Pages
read ``limit + 1`` rows to know whether another page exists without a COUNT.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from apranova.errors import ValidationFailed
from apranova.fields import canonical_uuid

T = TypeVar("T")

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


def encode_cursor(key: Sequence[Any]) -> str:
    raw = json.dumps(list(key), default=str, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None, size: int) -> list[Any] | None:
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        key = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        key = None
    if not isinstance(key, list) or len(key) != size:
        raise _invalid_cursor()
    return key


def timestamp_id_keyset(cursor: str | None) -> list[Any] | None:
    """The (timestamp, integer id) a page of rows ordered by both continues after, parsed so a
    forged cursor is a 422, never a database error."""
    return _keyset(cursor, int)


def timestamp_uuid_keyset(cursor: str | None) -> list[Any] | None:
    """The same for rows whose id is a uuid (users, payments, submissions, refund requests)."""
    return _keyset(cursor, _uuid)


def _uuid(value: str) -> str:
    # Only as we spell ids: a cursor holding another spelling is not one we made.
    found = canonical_uuid(value)
    if found is None:
        raise ValueError("not a canonical uuid")
    return found


def _keyset(cursor: str | None, parse_id: Callable[[str], Any]) -> list[Any] | None:
    key = decode_cursor(cursor, 2)
    if key is None:
        return None
    try:
        return [datetime.fromisoformat(str(key[0])), parse_id(str(key[1]))]
    except (TypeError, ValueError):
        raise _invalid_cursor() from None


def _invalid_cursor() -> ValidationFailed:
    return ValidationFailed(
        "The cursor is not valid.",
        code="invalid_cursor",
        details=[{"field": "query.cursor", "code": "invalid_cursor", "message": "Use next_cursor as given."}],
    )


def parse_limit(value: str | int | None) -> int:
    if value is None or value == "":
        return DEFAULT_LIMIT
    try:
        limit = int(value)
    except (TypeError, ValueError):
        limit = 0
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationFailed(
            f"limit must be an integer from 1 to {MAX_LIMIT}.",
            details=[{"field": "query.limit", "code": "out_of_range", "message": f"1..{MAX_LIMIT}"}],
        )
    return limit


def build_page(rows: list[T], limit: int, key_of: Callable[[T], Sequence[Any]]) -> Page[T]:
    """``rows`` holds up to ``limit + 1`` rows in order; the extra one only says another page exists."""
    has_more = len(rows) > limit
    items = rows[:limit]
    return Page[T](items=items, next_cursor=encode_cursor(key_of(items[-1])) if has_more and items else None)
