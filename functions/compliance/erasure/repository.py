"""SQL of the deletion requests (the routes' side of the right to erasure). Every query is
parameterised; writes take the use case's cursor so they commit with their audit row."""

from __future__ import annotations

from typing import Any

from psycopg import Cursor

from apranova import db

_REQUEST_COLUMNS = "id::text AS id, status, scheduled_for, cancelled_at, requested_at"


def account(user_id: str, *, include_deleted: bool = False) -> dict[str, Any] | None:
    """The account (by default only while the purge has not started on it): where to send the
    emails and whose password to re-check."""
    return (
        db.connection()
        .execute(
            "SELECT id::text AS id, email::text AS email, name FROM users WHERE id = %s AND (deleted_at IS NULL OR %s)",
            (user_id, include_deleted),
        )
        .fetchone()
    )


def open_request(user_id: str) -> dict[str, Any] | None:
    return (
        db.connection()
        .execute(
            f"SELECT {_REQUEST_COLUMNS} FROM deletion_requests"  # noqa: S608 - a constant column list
            " WHERE user_id = %s AND status IN ('SCHEDULED', 'IN_PROGRESS')",
            (user_id,),
        )
        .fetchone()
    )


def grace_days_from_policy() -> int | None:
    """The USER_DATA retention policy's period, when it is active (admins manage it)."""
    row = (
        db.connection()
        .execute("SELECT retention_days FROM data_retention_policies WHERE resource_type = 'USER_DATA' AND is_active")
        .fetchone()
    )
    return int(row["retention_days"]) if row else None


def insert_request(cur: Cursor[Any], user_id: str, reason: str | None, grace_days: int) -> dict[str, Any]:
    """A SCHEDULED request; a second open one is a unique violation (deletion_requests_one_open)."""
    row = cur.execute(
        f"""
        INSERT INTO deletion_requests (user_id, reason, requested_at, scheduled_for)
        VALUES (%s, %s, now(), now() + make_interval(days => %s))
        RETURNING {_REQUEST_COLUMNS}
        """,  # noqa: S608 - a constant column list
        (user_id, reason, grace_days),
    ).fetchone()
    assert row is not None
    return row


def lock_open_request(cur: Cursor[Any], user_id: str) -> dict[str, Any] | None:
    """The open request, locked: the purge claims it under the same row lock, so a cancel and a
    purge start cannot both win."""
    return cur.execute(
        f"SELECT {_REQUEST_COLUMNS} FROM deletion_requests"  # noqa: S608 - a constant column list
        " WHERE user_id = %s AND status IN ('SCHEDULED', 'IN_PROGRESS') FOR UPDATE",
        (user_id,),
    ).fetchone()


def cancel(cur: Cursor[Any], request_id: str) -> dict[str, Any]:
    row = cur.execute(
        f"""
        UPDATE deletion_requests SET status = 'CANCELLED', cancelled_at = now()
        WHERE id = %s AND status = 'SCHEDULED'
        RETURNING {_REQUEST_COLUMNS}
        """,  # noqa: S608 - a constant column list
        (request_id,),
    ).fetchone()
    assert row is not None
    return row
