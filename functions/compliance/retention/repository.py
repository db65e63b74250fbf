"""SQL of the retention sweep. Every statement touches at most ``limit`` rows (its own short
transaction), so a run with a large backlog never holds many locks at once; every one is safe to
repeat (it only selects what is still past its period)."""

from __future__ import annotations

from typing import Any

from apranova import db
from apranova.audit import AuditAction, record

# Audit actions about money: the trail of a financial record is kept as long as the record.
FINANCIAL_ACTIONS = ("PAYMENT", "REFUND_REQUESTED", "REFUND_DECIDED")


def policies() -> dict[str, dict[str, Any]]:
    rows = (
        db.connection()
        .execute(
            "SELECT resource_type, retention_days, legal_minimum_days, legal_requirement, is_active"
            " FROM data_retention_policies"
        )
        .fetchall()
    )
    return {r["resource_type"]: r for r in rows}


# --- EXPORTS -------------------------------------------------------------------------------------------


def expired_exports(days: int, limit: int) -> list[dict[str, Any]]:
    """READY exports past their link's expiry, or older than the policy's period."""
    return (
        db.connection()
        .execute(
            """
            SELECT id::text AS id, s3_key FROM data_export_requests
            WHERE status = 'READY'
              AND (expires_at <= now() OR completed_at <= now() - make_interval(days => %s))
            ORDER BY expires_at LIMIT %s
            """,
            (days, limit),
        )
        .fetchall()
    )


def mark_exports_expired(ids: list[str]) -> int:
    cur = db.connection().execute(
        "UPDATE data_export_requests SET status = 'EXPIRED' WHERE id = ANY (%s::uuid[]) AND status = 'READY'", (ids,)
    )
    return cur.rowcount


def delete_closed_exports(days: int, limit: int) -> int:
    """EXPIRED and FAILED export records a period after they ended (the DATA_EXPORT audit row
    remains the record that an export was made)."""
    cur = db.connection().execute(
        """
        DELETE FROM data_export_requests WHERE id IN (
            SELECT id FROM data_export_requests
            WHERE status IN ('EXPIRED', 'FAILED')
              AND coalesce(expires_at, completed_at, requested_at) <= now() - make_interval(days => %s)
            LIMIT %s)
        """,
        (days, limit),
    )
    return cur.rowcount


# --- LOGS ----------------------------------------------------------------------------------------------


def delete_processed_stripe_events(days: int, limit: int) -> int:
    """Processed webhook idempotency records; an unprocessed one is work left and stays."""
    cur = db.connection().execute(
        """
        DELETE FROM stripe_events WHERE event_id IN (
            SELECT event_id FROM stripe_events
            WHERE received_at <= now() - make_interval(days => %s) AND processed_at IS NOT NULL
            ORDER BY received_at LIMIT %s)
        """,
        (days, limit),
    )
    return cur.rowcount


# --- AUDIT_LOGS ----------------------------------------------------------------------------------------


def delete_audit_rows(days: int, financial_days: int, limit: int) -> int:
    """Audit rows past the period; those about money only past the payment records' period too."""
    with db.transaction() as cur:
        cur.execute("SET LOCAL apranova.retention_sweep = 'on'")
        cur.execute(
            """
            DELETE FROM audit_logs WHERE id IN (
                SELECT id FROM audit_logs
                WHERE occurred_at <= now() - make_interval(days => %(days)s)
                  AND (action <> ALL (%(financial)s)
                       OR occurred_at <= now() - make_interval(days => %(financial_days)s))
                ORDER BY occurred_at, id LIMIT %(limit)s)
            """,
            {"days": days, "financial": list(FINANCIAL_ACTIONS), "financial_days": financial_days, "limit": limit},
        )
        return cur.rowcount


def delete_cancelled_deletion_requests(days: int, limit: int) -> int:
    """Cancelled deletion requests (they hold the user id and the reason), a period after the
    cancel; the DELETION_CANCELLED audit row says the same until it expires too. Completed ones
    hold only the opaque reference and are kept as the proof of the erasure."""
    cur = db.connection().execute(
        """
        DELETE FROM deletion_requests WHERE id IN (
            SELECT id FROM deletion_requests
            WHERE status = 'CANCELLED' AND cancelled_at <= now() - make_interval(days => %s)
            LIMIT %s)
        """,
        (days, limit),
    )
    return cur.rowcount


# --- SUBMISSIONS ---------------------------------------------------------------------------------------


def old_decided_submissions(days: int, limit: int) -> list[dict[str, Any]]:
    """Decided attempts (a pending one still awaits its review) submitted longer ago than the period.
    ``file_key`` is null when a newer attempt the sweep keeps submits the same upload (the same
    student and deliverable: the key is under their prefix): that file goes with the last of them."""
    return (
        db.connection()
        .execute(
            """
            SELECT s.id::text AS id,
                   CASE WHEN NOT EXISTS (
                       SELECT 1 FROM submissions o
                       WHERE o.student_id = s.student_id AND o.deliverable_id = s.deliverable_id
                         AND o.file_key = s.file_key AND o.id <> s.id
                         AND (o.status = 'PENDING' OR o.submitted_at > now() - make_interval(days => %(days)s))
                   ) THEN s.file_key END AS file_key
            FROM submissions s
            WHERE s.status <> 'PENDING' AND s.submitted_at <= now() - make_interval(days => %(days)s)
            ORDER BY s.submitted_at, s.id LIMIT %(limit)s
            """,
            {"days": days, "limit": limit},
        )
        .fetchall()
    )


def submitted_file_keys(student_ids: list[str], keys: list[str]) -> set[str]:
    """Which of ``keys`` (objects of these students) a submission names (by student: its index)."""
    rows = (
        db.connection()
        .execute(
            "SELECT DISTINCT file_key FROM submissions WHERE student_id = ANY (%s::uuid[]) AND file_key = ANY (%s)",
            (student_ids, keys),
        )
        .fetchall()
    )
    return {r["file_key"] for r in rows}


def delete_submissions(ids: list[str]) -> int:
    cur = db.connection().execute("DELETE FROM submissions WHERE id = ANY (%s::uuid[]) AND status <> 'PENDING'", (ids,))
    return cur.rowcount


# --- USER_DATA -----------------------------------------------------------------------------------------


def existing_users(ids: list[str]) -> set[str]:
    rows = db.connection().execute("SELECT id::text AS id FROM users WHERE id = ANY (%s::uuid[])", (ids,)).fetchall()
    return {r["id"] for r in rows}


# --- ABANDONED_CHECKOUTS -------------------------------------------------------------------------------

# A pay-first checkout nobody paid for and no account was linked to, untouched for the period, that
# still holds the buyer's email or name or an unlinked consent. Never money (succeeded, refunded,
# disputed: a financial record kept with the person until it is linked or the person purged), never
# an account's payment. Evaluated again on the locked row, so a webhook that pays it meanwhile wins.
_ABANDONED = """
    p.user_id IS NULL AND p.succeeded_at IS NULL AND p.status IN ('PENDING', 'FAILED', 'EXPIRED')
    AND p.refunded_amount_cents = 0 AND NOT p.disputed AND p.enrollment_execution IS NULL
    AND p.updated_at <= now() - make_interval(days => %(days)s)
"""


def anonymise_abandoned_checkouts(days: int, limit: int) -> int:
    """One batch: the payment rows keep everything the payments trigger protects (amounts, track,
    Stripe ids) and lose the buyer's email and name, as the purge anonymises a person's payments;
    the checkout's consent record (time, IP, user agent) is deleted; the checkout's own audit rows
    lose the IP address and user agent of the request that created it. Returns the payments done."""
    with db.transaction() as cur:
        cur.execute("SET LOCAL apranova.retention_sweep = 'on'")
        rows = cur.execute(
            f"""
            UPDATE payments p SET customer_email = NULL, customer_name = NULL
            WHERE p.id IN (
                SELECT p.id FROM payments p
                WHERE {_ABANDONED}
                  AND (p.customer_email IS NOT NULL OR p.customer_name IS NOT NULL
                       OR EXISTS (SELECT 1 FROM user_consents c WHERE c.payment_id = p.id AND c.user_id IS NULL))
                ORDER BY p.updated_at, p.id LIMIT %(limit)s
                FOR UPDATE SKIP LOCKED)
              AND {_ABANDONED}
            RETURNING p.id::text AS id
            """,  # noqa: S608 - constant conditions
            {"days": days, "limit": limit},
        ).fetchall()
        ids = [r["id"] for r in rows]
        if ids:
            cur.execute("DELETE FROM user_consents WHERE payment_id = ANY (%s::uuid[]) AND user_id IS NULL", (ids,))
            cur.execute(
                """
                UPDATE audit_logs SET ip_address = NULL, user_agent = NULL
                WHERE resource_type = 'payment' AND resource_id = ANY (%s)
                  AND actor_id IS NULL AND subject_id IS NULL
                  AND (ip_address IS NOT NULL OR user_agent IS NOT NULL)
                """,
                (ids,),
            )
        return len(ids)


# --- PAYMENT_DATA --------------------------------------------------------------------------------------


def payments_past(days: int) -> int:
    row = (
        db.connection()
        .execute("SELECT count(*) AS n FROM payments WHERE created_at <= now() - make_interval(days => %s)", (days,))
        .fetchone()
    )
    return int(row["n"]) if row else 0


def record_sweep(details: dict[str, Any]) -> None:
    with db.transaction() as cur:
        record(cur, AuditAction.RETENTION_SWEEP, resource_type="retention", details=details)
