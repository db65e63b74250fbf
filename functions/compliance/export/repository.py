"""SQL of the right of access: export requests, and reading every row about a person per the
register. Every query is parameterised; identifiers and the register's selectors are composed with
``psycopg.sql`` from the register's constants, never from input."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
from psycopg import Cursor, sql

from apranova import db
from functions.compliance.register import Table

ROW_BATCH = 500


# --- the request (route) -------------------------------------------------------------------------------


def lock_person(cur: Cursor[Any], user_id: str) -> None:
    """Serialises one person's export requests (two at once cannot both pass the 24-hour check)."""
    cur.execute("SELECT pg_advisory_xact_lock(hashtextextended('data_export:' || %s, 0))", (user_id,))


def account(cur: Cursor[Any], user_id: str) -> dict[str, Any] | None:
    return cur.execute("SELECT id::text AS id FROM users WHERE id = %s AND deleted_at IS NULL", (user_id,)).fetchone()


def blocking_request(cur: Cursor[Any], user_id: str, interval_hours: int) -> dict[str, Any] | None:
    """The latest export the person asked for within the interval that did not fail, and when the
    next one is allowed (index data_export_requests_user)."""
    return cur.execute(
        """
        SELECT id::text AS id, requested_at,
               requested_at + make_interval(hours => %(hours)s) AS next_allowed_at,
               ceil(extract(epoch FROM requested_at + make_interval(hours => %(hours)s) - now()))::int AS wait_seconds
        FROM data_export_requests
        WHERE user_id = %(user)s AND status <> 'FAILED'
          AND requested_at > now() - make_interval(hours => %(hours)s)
        ORDER BY requested_at DESC
        LIMIT 1
        """,
        {"user": user_id, "hours": interval_hours},
    ).fetchone()


def fail_stale(cur: Cursor[Any], user_id: str, interval_hours: int) -> None:
    cur.execute(
        """
        UPDATE data_export_requests SET status = 'FAILED', error = 'the build did not finish'
        WHERE user_id = %s AND status = 'PENDING' AND requested_at <= now() - make_interval(hours => %s)
        """,
        (user_id, interval_hours),
    )


def insert_request(cur: Cursor[Any], user_id: str) -> dict[str, Any]:
    return db.one(
        cur.execute(
            """
            INSERT INTO data_export_requests (user_id) VALUES (%s)
            RETURNING id::text AS id, status, requested_at
            """,
            (user_id,),
        )
    )


def mark_failed(cur: Cursor[Any], export_id: str, error: str) -> dict[str, Any] | None:
    return cur.execute(
        """
        UPDATE data_export_requests SET status = 'FAILED', error = %s
        WHERE id = %s AND status = 'PENDING'
        RETURNING id::text AS id, user_id::text AS user_id
        """,
        (error[:200], export_id),
    ).fetchone()


_EXPORT = """
SELECT id::text AS id, user_id::text AS user_id, status, s3_key, size_bytes, requested_at, completed_at,
       expires_at,
       (status = 'EXPIRED' OR (status = 'READY' AND expires_at <= now())) AS expired,
       floor(extract(epoch FROM expires_at - now()))::int AS seconds_left
FROM data_export_requests
"""


def export_of(user_id: str, export_id: str) -> dict[str, Any] | None:
    """The person's own export; someone else's is None, as is one that does not exist."""
    return db.connection().execute(_EXPORT + " WHERE id = %s AND user_id = %s", (export_id, user_id)).fetchone()


def exports_of(user_id: str, after: list[Any] | None, limit: int) -> list[dict[str, Any]]:
    """The person's exports, newest first (index data_export_requests_user), ``limit`` at most,
    after the keyset ``(requested_at, id)`` of the previous page's last row."""
    where = " WHERE user_id = %s"
    params: list[Any] = [user_id]
    if after is not None:
        where += " AND (requested_at, id) < (%s::timestamptz, %s::uuid)"
        params.extend(after)
    return (
        db.connection()
        .execute(_EXPORT + where + " ORDER BY requested_at DESC, id DESC LIMIT %s", (*params, limit))
        .fetchall()
    )


# --- the build (worker) --------------------------------------------------------------------------------


def export_by_id(export_id: str) -> dict[str, Any] | None:
    return db.connection().execute(_EXPORT + " WHERE id = %s", (export_id,)).fetchone()


def person(user_id: str) -> dict[str, Any] | None:
    """The person, unless the purge has claimed the account (deleted_at): nothing is built for it."""
    return (
        db.connection()
        .execute(
            "SELECT id::text AS id, email::text AS email, name FROM users WHERE id = %s AND deleted_at IS NULL",
            (user_id,),
        )
        .fetchone()
    )


# How long a build's claim lasts if the worker dies holding it: the worker's timeout (5 minutes in
# the CDK app), after which that invocation has ended for sure.
BUILD_LEASE = "5 minutes"


def try_claim(export_id: str) -> bool:
    """A lease on the export's row: a second delivery of the same event, running at the same time,
    finds it taken and leaves the build to the first. (Not a session advisory lock: through RDS
    Proxy or PgBouncer the unlock may reach another server connection and the lock would leak.)"""
    row = (
        db.connection()
        .execute(
            """
            UPDATE data_export_requests SET build_lease_until = now() + %s::interval
            WHERE id = %s AND (build_lease_until IS NULL OR build_lease_until <= now())
            RETURNING id
            """,
            (BUILD_LEASE, export_id),
        )
        .fetchone()
    )
    return row is not None


def release(export_id: str) -> None:
    try:  # on a connection reopened if the build broke the first one
        db.connection().execute("UPDATE data_export_requests SET build_lease_until = NULL WHERE id = %s", (export_id,))
    except psycopg.OperationalError:
        pass  # the database is unreachable: the lease runs out by itself


def reopen_failed(export_id: str) -> bool:
    """A retry of a failed build (Lambda's own retry of the event) builds it again, unless the person
    has asked for another export since (or one is being built)."""
    try:
        with db.transaction() as cur:
            row = cur.execute(
                """
                UPDATE data_export_requests e SET status = 'PENDING', error = NULL
                WHERE e.id = %s AND e.status = 'FAILED'
                  AND NOT EXISTS (SELECT 1 FROM data_export_requests o
                                  WHERE o.user_id = e.user_id AND o.requested_at > e.requested_at)
                RETURNING e.id
                """,
                (export_id,),
            ).fetchone()
    except psycopg.errors.UniqueViolation:  # another export of the person is PENDING
        return False
    return row is not None


def mark_ready(
    cur: Cursor[Any], export_id: str, s3_key: str, size_bytes: int, valid_days: int
) -> dict[str, Any] | None:
    return cur.execute(
        """
        UPDATE data_export_requests
        SET status = 'READY', s3_key = %s, size_bytes = %s, error = NULL, completed_at = now(),
            expires_at = now() + make_interval(days => %s)
        WHERE id = %s AND status = 'PENDING'
          -- A purge that claimed the account during the build may have deleted its files already.
          AND EXISTS (SELECT 1 FROM users u WHERE u.id = data_export_requests.user_id AND u.deleted_at IS NULL)
        RETURNING id::text AS id, user_id::text AS user_id, completed_at, expires_at
        """,
        (s3_key, size_bytes, valid_days, export_id),
    ).fetchone()


def snapshot(cur: Cursor[Any]) -> None:
    """Every table of the export is read from one snapshot, so the parts agree with each other."""
    cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")


def rows_query(table: Table) -> sql.Composed:
    """The person's rows of ``table``: every column the register lists (so nothing unregistered is
    exported); a column that is another person's data in this row is null (``only_when``)."""
    columns = []
    for column in table.columns:
        name = sql.Identifier(column.name)
        if column.only_when:
            columns.append(sql.SQL("CASE WHEN ({}) THEN t.{} END AS {}").format(sql.SQL(column.only_when), name, name))
        else:
            columns.append(sql.SQL("t.{}").format(name))
    return sql.SQL("SELECT {columns} FROM {table} t WHERE {selector} ORDER BY {order}").format(
        columns=sql.SQL(", ").join(columns),
        table=sql.Identifier(table.name),
        selector=sql.SQL(table.selector),
        order=sql.SQL(table.order_by or "1"),
    )


def rows_of(conn: psycopg.Connection[Any], table: Table, user_id: str, email: str) -> Iterator[dict[str, Any]]:
    """Streams the rows (a server-side cursor: a long audit trail is never all in memory). Must run
    inside a transaction."""
    with conn.cursor(name=f"export_{table.name}") as cur:
        cur.itersize = ROW_BATCH
        cur.execute(rows_query(table), {"user_id": user_id, "email": email})
        yield from cur
