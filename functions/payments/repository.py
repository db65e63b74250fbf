"""SQL of the payments domain. Every query is parameterised; writes take the caller's cursor so
that they commit together with the audit row that describes them."""

from __future__ import annotations

from typing import Any

from psycopg import Cursor, sql

from apranova import db

PAYMENT_COLUMNS = """
    p.id::text AS id, p.user_id::text AS user_id, p.track, p.amount_cents, p.currency, p.status, p.kind,
    p.stripe_checkout_session_id, p.stripe_payment_intent_id, p.stripe_customer_id, p.stripe_charge_id,
    p.refunded_amount_cents, p.disputed, p.dispute_status, p.failure_message, p.idempotency_key,
    p.customer_email::text AS customer_email, p.customer_name, p.account_created, p.enrollment_execution,
    p.created_at, p.updated_at, p.succeeded_at, p.refunded_at,
    (SELECT t.name FROM tracks t WHERE t.code = p.track) AS track_name
"""

_PAYMENT = sql.SQL(PAYMENT_COLUMNS)


def _payments_query(template: str) -> sql.Composed:
    """``template`` with ``{columns}`` standing for the payment columns (a constant of ours)."""
    return sql.SQL(template).format(columns=_PAYMENT)


# --- the buyer and the track ---------------------------------------------------------------------

# One statement: the track on sale, the buyer's account state (and a track they have paid for, if
# any) and whether they accepted the policy versions in force.
_BUYER = """
SELECT t.code AS track, t.name AS track_name, t.price_cents, t.currency::text AS currency, t.is_active,
       u.id::text AS user_id, u.email::text AS email, u.name, u.email_verified, u.enrollment_status,
       ut.code AS enrolled_track,
       (SELECT stripe_customer_id FROM stripe_customers WHERE user_id = u.id) AS stripe_customer_id,
       (SELECT p.track FROM payments p WHERE p.user_id = u.id
          AND p.status IN ('SUCCEEDED', 'PARTIALLY_REFUNDED', 'DISPUTED')
          AND NOT EXISTS (SELECT 1 FROM payment_outbox o WHERE o.payment_id = p.id AND o.action = 'REFUND')
        LIMIT 1) AS paid_track,
       EXISTS (
           SELECT 1 FROM user_consents c
           WHERE c.user_id = u.id
             AND c.privacy_policy_version = privacy_version_in_force()
             AND c.terms_version = terms_version_in_force()
       ) AS consent_current
FROM users u
LEFT JOIN tracks t ON t.code = %(track)s
LEFT JOIN tracks ut ON ut.id = u.track_id
WHERE u.id = %(user_id)s AND u.deleted_at IS NULL
"""


def buyer(user_id: str, track: str) -> dict[str, Any] | None:
    return db.connection().execute(_BUYER, {"user_id": user_id, "track": track}).fetchone()


def track(code: str) -> dict[str, Any] | None:
    return (
        db.connection()
        .execute(
            "SELECT code AS track, name AS track_name, price_cents, currency::text AS currency, is_active"
            " FROM tracks WHERE code = %s",
            (code,),
        )
        .fetchone()
    )


def active_versions() -> dict[str, Any]:
    return (
        db.connection()
        .execute("SELECT privacy_version_in_force() AS privacy_version, terms_version_in_force() AS terms_version")
        .fetchone()
        or {}
    )


def save_stripe_customer(user_id: str, stripe_customer_id: str) -> str:
    """Maps the user to the customer; under a race the first mapping wins and is returned."""
    row = (
        db.connection()
        .execute(
            """
            WITH inserted AS (
                INSERT INTO stripe_customers (user_id, stripe_customer_id) VALUES (%s, %s)
                ON CONFLICT DO NOTHING RETURNING stripe_customer_id
            )
            SELECT stripe_customer_id FROM inserted
            UNION ALL
            SELECT stripe_customer_id FROM stripe_customers WHERE user_id = %s
            LIMIT 1
            """,
            (user_id, stripe_customer_id, user_id),
        )
        .fetchone()
    )
    return row["stripe_customer_id"] if row else stripe_customer_id


# --- payments ------------------------------------------------------------------------------------


def live_payment(cur: Cursor[Any], user_id: str, track: str) -> dict[str, Any] | None:
    """The user's payment for ``track`` that is pending or paid for (at most one exists)."""
    query = _payments_query(
        "SELECT {columns} FROM payments p WHERE p.user_id = %s AND p.track = %s"
        " AND p.status IN ('PENDING', 'SUCCEEDED', 'PARTIALLY_REFUNDED', 'DISPUTED') FOR UPDATE"
    )
    return cur.execute(query, (user_id, track)).fetchone()


def attempts(cur: Cursor[Any], user_id: str, track: str) -> int:
    row = cur.execute("SELECT count(*) AS n FROM payments WHERE user_id = %s AND track = %s", (user_id, track))
    return int(db.one(row)["n"])


def declined_open_sessions(cur: Cursor[Any], user_id: str, track: str) -> list[str]:
    """Checkout Sessions of the user's declined attempts for ``track``: Stripe keeps a session open
    after a declined card, so it could still be paid."""
    rows = cur.execute(
        "SELECT stripe_checkout_session_id AS id FROM payments WHERE user_id = %s AND track = %s"
        " AND kind = 'CHECKOUT' AND status = 'FAILED' AND stripe_checkout_session_id IS NOT NULL",
        (user_id, track),
    ).fetchall()
    return [row["id"] for row in rows]


def insert_payment(
    cur: Cursor[Any],
    *,
    user_id: str | None,
    track: str,
    amount_cents: int,
    currency: str,
    kind: str,
    idempotency_key: str,
    customer_email: str | None = None,
    customer_name: str | None = None,
    stripe_customer_id: str | None = None,
) -> dict[str, Any]:
    return db.one(
        cur.execute(
            _payments_query(
                """
        INSERT INTO payments AS p (user_id, track, amount_cents, currency, kind, idempotency_key,
                                   customer_email, customer_name, stripe_customer_id)
        VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
        RETURNING {columns}
        """
            ),
            (
                user_id,
                track,
                amount_cents,
                currency,
                kind,
                idempotency_key,
                customer_email,
                customer_name,
                stripe_customer_id,
            ),
        )
    )


def set_stripe_ids(
    cur: Cursor[Any], payment_id: str, *, checkout_session_id: str | None = None, payment_intent_id: str | None = None
) -> None:
    cur.execute(
        """
        UPDATE payments SET stripe_checkout_session_id = coalesce(stripe_checkout_session_id, %s),
                            stripe_payment_intent_id = coalesce(stripe_payment_intent_id, %s)
        WHERE id = %s
        """,
        (checkout_session_id, payment_intent_id, payment_id),
    )


def mark_expired(cur: Cursor[Any], payment_id: str) -> None:
    cur.execute("UPDATE payments SET status = 'EXPIRED' WHERE id = %s AND status = 'PENDING'", (payment_id,))


def payment_for_update(cur: Cursor[Any], payment_id: str) -> dict[str, Any] | None:
    query = _payments_query("SELECT {columns} FROM payments p WHERE p.id = %s FOR UPDATE")
    return cur.execute(query, (payment_id,)).fetchone()


def find_payment_for_update(
    cur: Cursor[Any],
    *,
    payment_id: str | None,
    checkout_session_id: str | None,
    payment_intent_id: str | None,
    charge_id: str | None,
) -> dict[str, Any] | None:
    """The payment an event is about: by our id in the metadata, else by any Stripe id it carries.

    Locked ``FOR NO KEY UPDATE``, as an UPDATE of it locks it: two events of one payment are still
    applied one after the other, while another payment's event may meanwhile write outbox rows that
    reference this one (expiring its checkout: the foreign key's KEY SHARE lock). ``FOR UPDATE``
    blocked that, and two payments of one person paid at once deadlocked: each held its payment
    and waited for the other's, one of them through the account row.
    """
    return cur.execute(
        _payments_query(
            """
        SELECT {columns} FROM payments p
        WHERE p.id = %(payment_id)s
           OR p.stripe_checkout_session_id = %(session)s
           OR p.stripe_payment_intent_id = %(intent)s
           OR p.stripe_charge_id = %(charge)s
        ORDER BY (p.id = %(payment_id)s) DESC NULLS LAST
        LIMIT 1
        FOR NO KEY UPDATE
        """
        ),
        {"payment_id": payment_id, "session": checkout_session_id, "intent": payment_intent_id, "charge": charge_id},
    ).fetchone()


def update_payment(cur: Cursor[Any], payment_id: str, changes: dict[str, Any]) -> dict[str, Any]:
    """Applies ``changes`` (column → value; column names are ours, never the caller's)."""
    allowed = {
        "status", "stripe_checkout_session_id", "stripe_payment_intent_id", "stripe_charge_id",
        "stripe_customer_id", "refunded_amount_cents", "disputed", "dispute_status", "failure_message",
        "succeeded_at", "refunded_at", "user_id", "account_created", "enrollment_execution",
    }  # fmt: skip
    unknown = set(changes) - allowed
    if unknown:
        raise ValueError(f"not payment columns: {sorted(unknown)}")
    assignments = sql.SQL(", ").join(
        sql.SQL("{} = {}").format(sql.Identifier(column), sql.Placeholder(column)) for column in changes
    )
    query = sql.SQL("UPDATE payments AS p SET {assignments} WHERE p.id = {id} RETURNING {columns}").format(
        assignments=assignments, id=sql.Placeholder("_id"), columns=_PAYMENT
    )
    return db.one(cur.execute(query, {**changes, "_id": payment_id}))


def payment_of(user_id: str, payment_id: str) -> dict[str, Any] | None:
    query = _payments_query("SELECT {columns} FROM payments p WHERE p.id = %s AND p.user_id = %s")
    return db.connection().execute(query, (payment_id, user_id)).fetchone()


def payments_of(user_id: str, after: list[Any] | None, limit: int) -> list[dict[str, Any]]:
    if after is None:
        query = _payments_query(
            "SELECT {columns} FROM payments p WHERE p.user_id = %s ORDER BY p.created_at DESC, p.id DESC LIMIT %s"
        )
        return db.connection().execute(query, (user_id, limit + 1)).fetchall()
    query = _payments_query(
        "SELECT {columns} FROM payments p WHERE p.user_id = %s AND (p.created_at, p.id) < (%s, %s)"
        " ORDER BY p.created_at DESC, p.id DESC LIMIT %s"
    )
    return db.connection().execute(query, (user_id, after[0], after[1], limit + 1)).fetchall()


def all_payments(status: str | None, after: list[Any] | None, limit: int) -> list[dict[str, Any]]:
    """Admin list, newest first, optionally of one status; each row with who paid: the account's
    email and name, or the checkout's customer details when no account is linked (yet)."""
    clauses, params = [sql.SQL("true")], []
    if status:
        clauses.append(sql.SQL("p.status = %s"))
        params.append(status)
    if after is not None:
        clauses.append(sql.SQL("(p.created_at, p.id) < (%s, %s)"))
        params.extend(after)
    query = sql.SQL(
        "SELECT {columns}, coalesce(u.email::text, p.customer_email::text) AS email,"
        " coalesce(u.name, p.customer_name) AS name"
        " FROM payments p LEFT JOIN users u ON u.id = p.user_id"
        " WHERE {where} ORDER BY p.created_at DESC, p.id DESC LIMIT %s"
    ).format(columns=_PAYMENT, where=sql.SQL(" AND ").join(clauses))
    return db.connection().execute(query, (*params, limit + 1)).fetchall()


def session_status(session_id: str) -> dict[str, Any] | None:
    """What the success page may learn from a Checkout Session id: states, nothing personal."""
    return (
        db.connection()
        .execute(
            """
            SELECT p.status, p.account_created,
                   (u.enrollment_status IN ('ENROLLED', 'COMPLETED') AND ut.code = p.track) AS enrolled
            FROM payments p
            LEFT JOIN users u ON u.id = p.user_id
            LEFT JOIN tracks ut ON ut.id = u.track_id
            WHERE p.stripe_checkout_session_id = %s
            """,
            (session_id,),
        )
        .fetchone()
    )


# --- the webhook's event record ------------------------------------------------------------------


def claim_event(cur: Cursor[Any], event_id: str, event_type: str, stripe_created_at: Any) -> dict[str, Any]:
    """Records the event; returns its row. ``processed_at`` set means an earlier delivery finished.

    A concurrent delivery of the same event waits here for the first one's transaction.
    """
    cur.execute(
        "INSERT INTO stripe_events (event_id, type, stripe_created_at) VALUES (%s, %s, to_timestamp(%s))"
        " ON CONFLICT (event_id) DO NOTHING",
        (event_id, event_type, stripe_created_at),
    )
    return db.one(
        cur.execute(
            "SELECT event_id, processed_at, outcome, payment_id::text AS payment_id FROM stripe_events"
            " WHERE event_id = %s FOR UPDATE",
            (event_id,),
        )
    )


def finish_event(cur: Cursor[Any], event_id: str, outcome: str, payment_id: str | None) -> None:
    cur.execute(
        "UPDATE stripe_events SET processed_at = now(), outcome = %s, payment_id = coalesce(%s, payment_id)"
        " WHERE event_id = %s",
        (outcome, payment_id, event_id),
    )


def note_event(cur: Cursor[Any], event_id: str, outcome: str, payment_id: str | None) -> None:
    """The outcome so far of an event whose follow-up (starting a workflow) is still to be done."""
    cur.execute(
        "UPDATE stripe_events SET outcome = %s, payment_id = coalesce(%s, payment_id) WHERE event_id = %s",
        (outcome, payment_id, event_id),
    )


# --- users touched by payments -------------------------------------------------------------------


def account_exists(email: str) -> bool:
    row = db.connection().execute("SELECT 1 AS x FROM users WHERE email = %s", (email,)).fetchone()
    return row is not None


def user_by_email(cur: Cursor[Any], email: str) -> dict[str, Any] | None:
    return cur.execute(
        "SELECT id::text AS id, email::text AS email, name, enrollment_status FROM users"
        " WHERE email = %s AND deleted_at IS NULL",
        (email,),
    ).fetchone()


def user_contact(user_id: str) -> dict[str, Any] | None:
    return (
        db.connection()
        .execute("SELECT email::text AS email, name FROM users WHERE id = %s AND deleted_at IS NULL", (user_id,))
        .fetchone()
    )


def insert_pay_first_user(cur: Cursor[Any], *, user_id: str, email: str, name: str) -> None:
    # Role and status are the table's defaults (student, PENDING_PAYMENT); enrollment is the workflow's.
    cur.execute(
        "INSERT INTO users (id, email, name, email_verified) VALUES (%s, %s, %s, true) ON CONFLICT (id) DO NOTHING",
        (user_id, email, name),
    )


def insert_checkout_consent(
    cur: Cursor[Any],
    *,
    payment_id: str,
    privacy_version: str,
    terms_version: str,
    ip_address: str | None,
    user_agent: str | None,
) -> None:
    cur.execute(
        """
        INSERT INTO user_consents (payment_id, privacy_policy_version, terms_version, ip_address, user_agent, source)
        VALUES (%s, %s, %s, %s, %s, 'ANONYMOUS_CHECKOUT')
        """,
        (payment_id, privacy_version, terms_version, ip_address, (user_agent or "")[:1024] or None),
    )


def attach_checkout_consent(cur: Cursor[Any], payment_id: str, user_id: str) -> None:
    cur.execute(
        "UPDATE user_consents SET user_id = %s WHERE payment_id = %s AND user_id IS NULL", (user_id, payment_id)
    )


def withdraw_enrollment(cur: Cursor[Any], user_id: str, payment_id: str) -> bool:
    """A fully refunded or lost-dispute payment ends the enrollment it paid for, and only that one:
    the user's enrollment must have come from this payment (``enrollment_payment_id``, migration
    0013), so a refund of payment X never withdraws an enrollment paid by payment Y (or made by an
    admin), whatever their tracks."""
    row = cur.execute(
        """
        UPDATE users SET enrollment_status = 'REFUNDED'
        WHERE id = %s AND enrollment_payment_id = %s
          AND enrollment_status IN ('ENROLLED', 'COMPLETED', 'SUSPENDED')
        RETURNING id
        """,
        (user_id, payment_id),
    ).fetchone()
    return row is not None


# --- refunds -------------------------------------------------------------------------------------

REFUND_COLUMNS = """
    r.id::text AS id, r.payment_id::text AS payment_id, r.user_id::text AS user_id, r.reason, r.amount_cents,
    r.status, r.decided_by::text AS decided_by, r.decided_at, r.decision_reason, r.stripe_refund_id,
    r.failure_message, r.created_at, p.currency, p.track,
    (SELECT t.name FROM tracks t WHERE t.code = p.track) AS track_name
"""


def insert_refund_request(
    cur: Cursor[Any], *, payment_id: str, user_id: str, reason: str, amount_cents: int
) -> dict[str, Any]:
    row = cur.execute(
        "INSERT INTO refund_requests (payment_id, user_id, reason, amount_cents) VALUES (%s, %s, %s, %s)"
        " RETURNING id::text AS id",
        (payment_id, user_id, reason, amount_cents),
    )
    return _known_refund_request(cur, db.one(row)["id"])


_REFUND = sql.SQL(REFUND_COLUMNS)


def refund_request(cur: Cursor[Any], request_id: str, *, lock: bool = False) -> dict[str, Any] | None:
    query = sql.SQL(
        "SELECT {columns} FROM refund_requests r JOIN payments p ON p.id = r.payment_id WHERE r.id = %s {lock}"
    ).format(columns=_REFUND, lock=sql.SQL("FOR UPDATE OF r" if lock else ""))
    return cur.execute(query, (request_id,)).fetchone()


def _known_refund_request(cur: Cursor[Any], request_id: str) -> dict[str, Any]:
    """A refund request this transaction has just written."""
    found = refund_request(cur, request_id)
    if found is None:
        raise LookupError(f"refund request {request_id} not found")
    return found


def decide_refund_request(
    cur: Cursor[Any],
    request_id: str,
    *,
    status: str,
    decided_by: str,
    decision_reason: str | None,
    stripe_refund_id: str | None = None,
) -> dict[str, Any]:
    cur.execute(
        """
        UPDATE refund_requests SET status = %s, decided_by = %s, decided_at = now(), decision_reason = %s,
                                   stripe_refund_id = %s
        WHERE id = %s
        """,
        (status, decided_by, decision_reason, stripe_refund_id, request_id),
    )
    return _known_refund_request(cur, request_id)


def refund_requests_of(user_id: str, after: list[Any] | None, limit: int) -> list[dict[str, Any]]:
    """The person's own refund requests, newest first: from their payments (payments_user_created)
    to each payment's requests (refund_requests_payment), ``limit`` at most after the keyset."""
    clauses, params = [sql.SQL("p.user_id = %s AND r.user_id = %s")], [user_id, user_id]
    if after is not None:
        clauses.append(sql.SQL("(r.created_at, r.id) < (%s, %s)"))
        params.extend(after)
    query = sql.SQL(
        "SELECT {columns} FROM payments p JOIN refund_requests r ON r.payment_id = p.id WHERE {where}"
        " ORDER BY r.created_at DESC, r.id DESC LIMIT %s"
    ).format(columns=_REFUND, where=sql.SQL(" AND ").join(clauses))
    return db.connection().execute(query, (*params, limit + 1)).fetchall()


def refund_requests(
    status: str | None, after: list[Any] | None, limit: int, *, user_id: str | None = None
) -> list[dict[str, Any]]:
    """Admin list, oldest first (the queue order), optionally of one status and of one person (the
    refund_requests_user index)."""
    clauses: list[sql.Composable] = [sql.SQL("true")]
    params: list[Any] = []
    if status:
        clauses.append(sql.SQL("r.status = %s"))
        params.append(status)
    if user_id:
        clauses.append(sql.SQL("r.user_id = %s"))
        params.append(user_id)
    if after is not None:
        clauses.append(sql.SQL("(r.created_at, r.id) > (%s, %s)"))
        params.extend(after)
    query = sql.SQL(
        "SELECT {columns} FROM refund_requests r JOIN payments p ON p.id = r.payment_id WHERE {where}"
        " ORDER BY r.created_at, r.id LIMIT %s"
    ).format(columns=_REFUND, where=sql.SQL(" AND ").join(clauses))
    return db.connection().execute(query, (*params, limit + 1)).fetchall()


def refund_progress_facts(user_id: str, track: str) -> dict[str, Any]:
    """What refund eligibility is decided on, from facts that only grow: the most required steps ever
    completed at once (or today's count, if higher), the track's required steps, and the student's
    submissions for the track."""
    return db.one(
        db.connection().execute(
            """
            SELECT (SELECT count(*) FROM project_steps s JOIN projects pr ON pr.id = s.project_id AND pr.is_active
                    JOIN tracks t ON t.id = pr.track_id
                    WHERE t.code = %(track)s AND s.is_active AND NOT s.is_optional) AS total,
                   greatest(
                       (SELECT count(*) FROM step_completions sc
                        JOIN projects pr ON pr.id = sc.project_id AND pr.is_active
                        JOIN project_steps s ON s.id = sc.step_id AND s.is_active AND NOT s.is_optional
                        JOIN tracks t ON t.id = pr.track_id WHERE t.code = %(track)s AND sc.student_id = %(user)s),
                       coalesce((SELECT completed_steps FROM progress_high_water
                                 WHERE student_id = %(user)s AND track = %(track)s), 0)
                   ) AS most_done,
                   (SELECT count(*) FROM submissions sb JOIN projects pr ON pr.id = sb.project_id
                    JOIN tracks t ON t.id = pr.track_id
                    WHERE sb.student_id = %(user)s AND t.code = %(track)s) AS submissions
            """,
            {"track": track, "user": user_id},
        )
    )


# --- what a paid payment may still become ---------------------------------------------------------


def lock_user(cur: Cursor[Any], user_id: str) -> dict[str, Any] | None:
    """The account a payment pays for, locked: two payments of one person are decided one at a time."""
    return cur.execute(
        "SELECT u.id::text AS id, u.email::text AS email, u.name, u.enrollment_status, t.code AS track"
        " FROM users u LEFT JOIN tracks t ON t.id = u.track_id"
        " WHERE u.id = %s AND u.deleted_at IS NULL FOR UPDATE OF u",
        (user_id,),
    ).fetchone()


def other_paid_payment(cur: Cursor[Any], user_id: str, payment_id: str) -> dict[str, Any] | None:
    """Another payment of the user that is paid for, or already enrolling them."""
    return cur.execute(
        "SELECT p.id::text AS id, p.track, p.status FROM payments p"
        " WHERE p.user_id = %s AND p.id <> %s AND p.status IN ('SUCCEEDED', 'PARTIALLY_REFUNDED', 'DISPUTED')"
        " AND NOT EXISTS (SELECT 1 FROM payment_outbox o WHERE o.payment_id = p.id AND o.action = 'REFUND')"
        " ORDER BY p.succeeded_at NULLS LAST LIMIT 1",
        (user_id, payment_id),
    ).fetchone()


def refund_queued(cur: Cursor[Any], payment_id: str) -> bool:
    """The payment was found unfulfillable and its refund decided."""
    row = cur.execute(
        "SELECT 1 AS x FROM payment_outbox WHERE payment_id = %s AND action = 'REFUND'", (payment_id,)
    ).fetchone()
    return row is not None


def other_open_sessions(cur: Cursor[Any], user_id: str, payment_id: str) -> list[dict[str, Any]]:
    """The user's other Checkout Sessions that could still be paid (pending or declined attempts)."""
    return cur.execute(
        "SELECT id::text AS payment_id, stripe_checkout_session_id AS session_id FROM payments"
        " WHERE user_id = %s AND id <> %s AND kind = 'CHECKOUT' AND status IN ('PENDING', 'FAILED')"
        " AND stripe_checkout_session_id IS NOT NULL",
        (user_id, payment_id),
    ).fetchall()


def failed_paid_enrollments(limit: int) -> list[dict[str, Any]]:
    """Paid payments whose enrollment run started but whose payer is left with provisioning FAILED
    and no other enrollment: not enrolled at all (PENDING_PAYMENT, or REFUNDED from an earlier
    payment), or enrolled by this payment with tools that failed. The reconcile job asks Step
    Functions whether the run really failed before it restarts it."""
    query = _payments_query(
        """
        SELECT {columns} FROM payments p JOIN users u ON u.id = p.user_id
        WHERE u.provisioning_status = 'FAILED' AND u.deleted_at IS NULL AND u.role = 'student'
          AND p.status IN ('SUCCEEDED', 'PARTIALLY_REFUNDED')
          AND p.enrollment_execution IS NOT NULL AND p.subject_ref IS NULL
          AND (u.enrollment_payment_id = p.id
               OR (u.enrollment_status IN ('PENDING_PAYMENT', 'REFUNDED')
                   AND u.enrollment_payment_id IS DISTINCT FROM p.id))
        ORDER BY p.succeeded_at, p.id LIMIT %s
        """
    )
    return db.connection().execute(query, (limit,)).fetchall()


def paid_without_outcome(limit: int, min_age_seconds: int) -> list[dict[str, Any]]:
    """Paid payments (paid more than ``min_age_seconds`` ago) that neither started an enrollment nor
    were found unfulfillable."""
    query = _payments_query(
        """
        SELECT {columns} FROM payments p
        WHERE p.status IN ('SUCCEEDED', 'PARTIALLY_REFUNDED')
          AND p.enrollment_execution IS NULL AND p.subject_ref IS NULL
          AND p.succeeded_at <= now() - make_interval(secs => %s)
          AND NOT EXISTS (SELECT 1 FROM payment_outbox o WHERE o.payment_id = p.id AND o.action = 'REFUND')
        ORDER BY p.succeeded_at, p.id LIMIT %s
        """
    )
    return db.connection().execute(query, (min_age_seconds, limit)).fetchall()


def event_processed(event_id: str) -> bool:
    row = db.connection().execute("SELECT processed_at FROM stripe_events WHERE event_id = %s", (event_id,)).fetchone()
    return row is not None and row["processed_at"] is not None


# --- the outbox ----------------------------------------------------------------------------------


def enqueue(
    cur: Cursor[Any], key: str, action: str, payment_id: str, *, target: str | None = None, reason: str | None = None
) -> int | None:
    """One row per ``key``: its id, or None when it was enqueued before (the action is already decided)."""
    row = cur.execute(
        "INSERT INTO payment_outbox (key, action, payment_id, target, reason) VALUES (%s, %s, %s, %s, %s)"
        " ON CONFLICT (key) DO NOTHING RETURNING id",
        (key, action, payment_id, target, reason),
    ).fetchone()
    return row["id"] if row else None


def outbox_rows_of(payment_id: str) -> list[int]:
    rows = (
        db.connection()
        .execute("SELECT id FROM payment_outbox WHERE payment_id = %s AND done_at IS NULL ORDER BY id", (payment_id,))
        .fetchall()
    )
    return [row["id"] for row in rows]


def pending_outbox(older_than_seconds: int, limit: int) -> list[int]:
    rows = (
        db.connection()
        .execute(
            "SELECT id FROM payment_outbox WHERE done_at IS NULL"
            " AND created_at <= now() - make_interval(secs => %s) ORDER BY created_at, id LIMIT %s",
            (older_than_seconds, limit),
        )
        .fetchall()
    )
    return [row["id"] for row in rows]


def claim_outbox_row(cur: Cursor[Any], row_id: int) -> dict[str, Any] | None:
    """The row with its payment, locked; None when it is done or another environment is on it."""
    return cur.execute(
        """
        SELECT o.id, o.key, o.action, o.target, o.reason, o.attempts,
               p.id::text AS payment_id, p.user_id::text AS user_id, p.track, p.status, p.amount_cents,
               p.refunded_amount_cents, p.currency, p.stripe_payment_intent_id, p.dispute_status
        FROM payment_outbox o JOIN payments p ON p.id = o.payment_id
        WHERE o.id = %s AND o.done_at IS NULL
        FOR UPDATE OF o SKIP LOCKED
        """,
        (row_id,),
    ).fetchone()


def outbox_done(cur: Cursor[Any], row_id: int) -> None:
    cur.execute(
        "UPDATE payment_outbox SET done_at = now(), attempts = attempts + 1, last_error = NULL WHERE id = %s",
        (row_id,),
    )


def outbox_failed(cur: Cursor[Any], row_id: int, error: str) -> None:
    cur.execute(
        "UPDATE payment_outbox SET attempts = attempts + 1, last_error = %s WHERE id = %s", (error[:500], row_id)
    )
