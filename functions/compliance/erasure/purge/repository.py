"""SQL of the daily purge. Every query is parameterised; the erasure of the rows is one transaction
(``erase``) that also marks the request COMPLETED, so it happens entirely or not at all."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import Cursor, sql
from psycopg.types.json import Jsonb

from apranova import db

_REQUEST = (
    "id::text AS id, user_id::text AS user_id, subject_ref, status, scheduled_for, completed_steps, attempts,"
    " last_error"
)


def due_requests(limit: int) -> list[str]:
    """Open requests whose grace period is over, oldest first (a crash leaves one IN_PROGRESS)."""
    rows = (
        db.connection()
        .execute(
            """
            SELECT id::text AS id FROM deletion_requests
            WHERE status IN ('SCHEDULED', 'IN_PROGRESS') AND scheduled_for <= now()
            ORDER BY scheduled_for, id LIMIT %s
            """,
            (limit,),
        )
        .fetchall()
    )
    return [r["id"] for r in rows]


# How long a purge run's hold on a request lasts if the function dies holding it: the purge's
# timeout (15 minutes in the CDK app), after which that invocation has ended for sure.
PURGE_LEASE = "15 minutes"


@contextmanager
def request_lock(request_id: str) -> Iterator[bool]:
    """A lease on the request's row for the whole purge of one account (several transactions and
    remote calls): two overlapping runs never work on the same account. (Not a session advisory
    lock: through RDS Proxy or PgBouncer the unlock may reach another server connection and the
    lock would leak.)"""
    conn = db.connection()
    row = conn.execute(
        """
        UPDATE deletion_requests SET purge_lease_until = now() + %s::interval
        WHERE id = %s AND (purge_lease_until IS NULL OR purge_lease_until <= now())
        RETURNING id
        """,
        (PURGE_LEASE, request_id),
    ).fetchone()
    held = row is not None
    try:
        yield held
    finally:
        if held:
            try:  # on a connection reopened if the purge's work broke the first one
                db.connection().execute(
                    "UPDATE deletion_requests SET purge_lease_until = NULL WHERE id = %s", (request_id,)
                )
            except psycopg.OperationalError:
                pass  # the database is unreachable: the lease runs out by itself


def claim(request_id: str, new_subject_ref: str) -> dict[str, Any] | None:
    """IN_PROGRESS (again), with its opaque reference fixed on the first claim; the account is
    marked deleted from here on (invisible to the API, refused by the provisioning steps).
    None when the request was cancelled or completed meanwhile, or is not due."""
    with db.transaction() as cur:
        row = cur.execute(
            f"""
            UPDATE deletion_requests
            SET status = 'IN_PROGRESS', started_at = coalesce(started_at, now()), attempts = attempts + 1,
                subject_ref = coalesce(subject_ref, %s)
            WHERE id = %s AND status IN ('SCHEDULED', 'IN_PROGRESS') AND scheduled_for <= now()
            RETURNING {_REQUEST}
            """,  # noqa: S608 - a constant column list
            (new_subject_ref, request_id),
        ).fetchone()
        if row is not None and row["user_id"] is not None:
            cur.execute("UPDATE users SET deleted_at = coalesce(deleted_at, now()) WHERE id = %s", (row["user_id"],))
    return row


def account(user_id: str) -> dict[str, Any] | None:
    """The account being erased (deleted_at is set by now)."""
    return (
        db.connection()
        .execute(
            """
            SELECT u.id::text AS id, u.email::text AS email, u.name, t.code AS track, u.provisioning_status
            FROM users u LEFT JOIN tracks t ON t.id = u.track_id WHERE u.id = %s
            """,
            (user_id,),
        )
        .fetchone()
    )


def tools_left(user_id: str) -> dict[str, Any]:
    """What the deprovision workflow has to take back: tool records not yet deprovisioned, and the
    student database credentials row (the deprovisioner deletes it only after the role, schema and
    password are gone)."""
    row = db.one(
        db.connection().execute(
            """
            SELECT (SELECT array_agg(tool ORDER BY tool) FROM tool_provisioning
                    WHERE user_id = %(user)s AND status NOT IN ('DEPROVISIONED', 'NOT_CONFIGURED')) AS tools,
                   EXISTS (SELECT 1 FROM student_database_credentials WHERE user_id = %(user)s) AS student_database
            """,
            {"user": user_id},
        )
    )
    return {"tools": list(row["tools"] or []), "student_database": bool(row["student_database"])}


def tools_pending(user_id: str) -> list[dict[str, Any]]:
    """The tools a deprovision has not taken back (neither removed nor skipped as not configured)."""
    return (
        db.connection()
        .execute(
            """
            SELECT tool, status, error FROM tool_provisioning
            WHERE user_id = %s AND status NOT IN ('DEPROVISIONED', 'NOT_CONFIGURED')
            ORDER BY tool
            """,
            (user_id,),
        )
        .fetchall()
    )


def file_keys(user_id: str) -> dict[str, list[str]]:
    """The objects the rows name (besides the per-user prefixes): uploads and export archives."""
    conn = db.connection()
    uploads = conn.execute(
        "SELECT DISTINCT file_key FROM submissions WHERE student_id = %s AND file_key IS NOT NULL", (user_id,)
    ).fetchall()
    exports = conn.execute(
        "SELECT DISTINCT s3_key FROM data_export_requests WHERE user_id = %s AND s3_key IS NOT NULL", (user_id,)
    ).fetchall()
    return {"uploads": [r["file_key"] for r in uploads], "exports": [r["s3_key"] for r in exports]}


def password_parameters(user_id: str) -> list[str]:
    rows = (
        db.connection()
        .execute("SELECT password_parameter_name FROM student_database_credentials WHERE user_id = %s", (user_id,))
        .fetchall()
    )
    return [r["password_parameter_name"] for r in rows]


def complete_step(request_id: str, step: str) -> None:
    db.connection().execute(
        """
        UPDATE deletion_requests SET completed_steps = array_append(completed_steps, %(step)s)
        WHERE id = %(id)s AND NOT (%(step)s = ANY (completed_steps))
        """,
        {"id": request_id, "step": step},
    )


def record_error(request_id: str, error: str) -> None:
    db.connection().execute("UPDATE deletion_requests SET last_error = %s WHERE id = %s", (error[:1000], request_id))


# --- the erasure of the rows (one transaction) ------------------------------------------------------


def lock_database_step(cur: Cursor[Any], request_id: str) -> dict[str, Any] | None:
    return cur.execute(
        f"SELECT {_REQUEST} FROM deletion_requests WHERE id = %s AND status = 'IN_PROGRESS' FOR UPDATE",  # noqa: S608
        (request_id,),
    ).fetchone()


def anonymise_payments(cur: Cursor[Any], user_id: str, email: str, subject_ref: str) -> list[str]:
    """Payments stay (a legal requirement); who paid becomes the opaque reference. The trigger
    keeps amounts, currency, track and Stripe ids as they were; the idempotency key embedded the
    user id and gets the reference instead."""
    rows = cur.execute(
        """
        UPDATE payments
        SET user_id = NULL, subject_ref = coalesce(subject_ref, %(ref)s), customer_email = NULL, customer_name = NULL,
            idempotency_key = replace(idempotency_key, %(user)s::text, %(ref)s)
        WHERE user_id = %(user)s::uuid OR customer_email = %(email)s
        RETURNING id::text AS id
        """,
        {"user": user_id, "email": email, "ref": subject_ref},
    ).fetchall()
    return [r["id"] for r in rows]


def anonymise_refund_requests(cur: Cursor[Any], user_id: str, payment_ids: list[str]) -> int:
    """Refund requests are financial records too: kept, without the person or the free text about them."""
    cur.execute(
        """
        UPDATE refund_requests SET user_id = NULL, reason = NULL, decision_reason = NULL
        WHERE user_id = %s OR payment_id = ANY (%s::uuid[])
        """,
        (user_id, payment_ids),
    )
    return cur.rowcount


def delete_consents(cur: Cursor[Any], user_id: str, payment_ids: list[str]) -> int:
    """Consents of the account and of its pay-first checkouts (recorded before the account existed)."""
    cur.execute("DELETE FROM user_consents WHERE user_id = %s OR payment_id = ANY (%s::uuid[])", (user_id, payment_ids))
    return cur.rowcount


def audit_rows_about(cur: Cursor[Any], user_id: str, email: str) -> list[dict[str, Any]]:
    """Every audit row that names the person: as actor or subject (indexed), or inside its
    resource id or details (execution names, assignments, typed emails: a scan, once per account)."""
    return cur.execute(
        """
        SELECT id, actor_id::text AS actor_id, subject_id::text AS subject_id, resource_id, details
        FROM audit_logs
        WHERE actor_id = %(user)s OR subject_id = %(user)s
           OR strpos(resource_id, %(user_text)s) > 0
           OR strpos(details::text, %(user_text)s) > 0
           OR strpos(lower(details::text), %(email)s) > 0
        ORDER BY id
        """,
        {"user": user_id, "user_text": user_id, "email": email.lower()},
    ).fetchall()


def anonymise_audit_row(
    cur: Cursor[Any],
    row_id: int,
    *,
    clear_actor: bool,
    clear_subject: bool,
    clear_origin: bool,
    resource_id: str | None,
    details: dict[str, Any],
) -> None:
    """Only the personal references change (the append-only trigger allows exactly these under the
    purge's ``apranova.retention_sweep`` setting): what happened and when stay."""
    cur.execute(
        """
        UPDATE audit_logs
        SET actor_id = CASE WHEN %(clear_actor)s THEN NULL ELSE actor_id END,
            subject_id = CASE WHEN %(clear_subject)s THEN NULL ELSE subject_id END,
            ip_address = CASE WHEN %(clear_origin)s THEN NULL ELSE ip_address END,
            user_agent = CASE WHEN %(clear_origin)s THEN NULL ELSE user_agent END,
            resource_id = %(resource_id)s,
            details = %(details)s
        WHERE id = %(id)s
        """,
        {
            "id": row_id,
            "clear_actor": clear_actor,
            "clear_subject": clear_subject,
            "clear_origin": clear_origin,
            "resource_id": resource_id,
            "details": Jsonb(details),
        },
    )


def rows_left(cur: Cursor[Any], table: str, selector: str, user_id: str, email: str) -> int:
    """How many rows of ``table`` the register's ``selector`` (a constant of the register) still
    finds about the person."""
    query = sql.SQL("SELECT count(*) AS n FROM {table} t WHERE {selector}").format(
        table=sql.Identifier(table),
        selector=sql.SQL(selector),  # noqa: S608 - the register's constant
    )
    row = cur.execute(query, {"user_id": user_id, "email": email}).fetchone()
    return int(row["n"]) if row else 0


def allow_audit_anonymisation(cur: Cursor[Any]) -> None:
    cur.execute("SET LOCAL apranova.retention_sweep = 'on'")


def delete_other_requests(cur: Cursor[Any], user_id: str, request_id: str) -> int:
    """The person's earlier (cancelled) deletion requests: they hold a reason and the user id."""
    cur.execute("DELETE FROM deletion_requests WHERE user_id = %s AND id <> %s", (user_id, request_id))
    return cur.rowcount


def delete_exports(cur: Cursor[Any], user_id: str) -> int:
    cur.execute("DELETE FROM data_export_requests WHERE user_id = %s", (user_id,))
    return cur.rowcount


def delete_user(cur: Cursor[Any], user_id: str) -> int:
    """The account row. Its id is the Cognito sub, itself personal data. Every personal row cascades
    (consents, progress, submissions, tools, credentials, trainer links, Stripe customer); payments
    and refund requests were detached above (their FK is RESTRICT)."""
    cur.execute("DELETE FROM users WHERE id = %s", (user_id,))
    return cur.rowcount


def complete(cur: Cursor[Any], request_id: str, step: str) -> None:
    """COMPLETED, with no trace of the person left on the request but the opaque reference."""
    cur.execute(
        """
        UPDATE deletion_requests
        SET status = 'COMPLETED', completed_at = now(), user_id = NULL, reason = NULL, last_error = NULL,
            completed_steps = CASE WHEN %(step)s = ANY (completed_steps) THEN completed_steps
                                   ELSE array_append(completed_steps, %(step)s) END
        WHERE id = %(id)s
        """,
        {"id": request_id, "step": step},
    )


def complete_without_account(request_id: str, step: str) -> None:
    with db.transaction() as cur:
        complete(cur, request_id, step)
