"""SQL of the enrollment and deprovision workflows' steps. Every query is parameterised; each
write is idempotent, because a retried or re-run step must find its work done."""

from __future__ import annotations

from typing import Any

from psycopg import Cursor
from psycopg.types.json import Jsonb

from apranova import db


def user(user_id: str) -> dict[str, Any] | None:
    return (
        db.connection()
        .execute(
            """
            SELECT u.id::text AS id, u.email::text AS email, u.name, u.role, t.code AS track,
                   u.enrollment_status, u.provisioning_status, u.tools_provisioned,
                   u.enrollment_payment_id::text AS enrollment_payment_id, u.email_verified
            FROM users u LEFT JOIN tracks t ON t.id = u.track_id
            WHERE u.id = %s AND u.deleted_at IS NULL
            """,
            (user_id,),
        )
        .fetchone()
    )


def account(user_id: str) -> dict[str, Any] | None:
    """The users row even while an erasure runs (``deleted_at`` set): the deprovision records on it."""
    return (
        db.connection()
        .execute(
            """
            SELECT u.id::text AS id, u.email::text AS email, u.deleted_at,
                   u.enrollment_payment_id::text AS enrollment_payment_id
            FROM users u WHERE u.id = %s
            """,
            (user_id,),
        )
        .fetchone()
    )


def track_exists(code: str) -> bool:
    return db.connection().execute("SELECT 1 FROM tracks WHERE code = %s", (code,)).fetchone() is not None


def payment(payment_id: str) -> dict[str, Any] | None:
    return (
        db.connection()
        .execute(
            "SELECT id::text AS id, user_id::text AS user_id, track, status FROM payments WHERE id = %s", (payment_id,)
        )
        .fetchone()
    )


def mark_provisioning(user_id: str, status: str, error: str | None = None) -> None:
    db.connection().execute(
        "UPDATE users SET provisioning_status = %s, provisioning_error = %s WHERE id = %s",
        (status, error, user_id),
    )


def enroll(cur: Cursor[Any], user_id: str, track: str, allowed_from: tuple[str, ...], payment_id: str | None) -> bool:
    """ENROLLED in ``track`` (kept when already enrolled in it); False when the status forbids it.

    The enrollment remembers the payment it came from (None: an administrator's), which scopes a
    later refund's deprovision; an enrollment that goes on in the same track (already enrolled, or
    suspended and re-enrolled by an administrator) keeps its own.
    """
    row = cur.execute(
        """
        UPDATE users SET enrollment_payment_id = CASE
                             WHEN enrollment_status IN ('ENROLLED', 'SUSPENDED')
                                  AND track_id = (SELECT id FROM tracks WHERE code = %(track)s)
                             THEN enrollment_payment_id ELSE %(payment)s::uuid END,
                         track_id = (SELECT id FROM tracks WHERE code = %(track)s),
                         enrollment_status = 'ENROLLED',
                         enrolled_at = coalesce(enrolled_at, now())
        WHERE id = %(user)s AND deleted_at IS NULL
          AND (enrollment_status = ANY(%(allowed)s)
               OR (enrollment_status = 'ENROLLED' AND track_id = (SELECT id FROM tracks WHERE code = %(track)s)))
        RETURNING id
        """,
        {"user": user_id, "track": track, "allowed": list(allowed_from), "payment": payment_id},
    ).fetchone()
    return row is not None


def record_tool(
    user_id: str,
    tool: str,
    *,
    status: str,
    external_id: str | None = None,
    access_url: str | None = None,
    details: dict[str, Any] | None = None,
    error: str | None = None,
    attempt: bool = False,
    enrollment: bool = False,
) -> None:
    """The per-tool record the workflows keep (one row per user and tool). ``enrollment``: the
    provisioning of the user's current enrollment, whose payment the record takes (a deprovision
    keeps the payment the tool was provisioned for)."""
    db.connection().execute(
        """
        INSERT INTO tool_provisioning (user_id, tool, status, external_id, access_url, details, error, attempts,
                                       provisioned_at, deprovisioned_at, payment_id)
        VALUES (%(user)s, %(tool)s, %(status)s, %(external_id)s, %(access_url)s, %(details)s, %(error)s,
                %(attempts)s, CASE WHEN %(status)s = 'SUCCEEDED' THEN now() END,
                CASE WHEN %(status)s = 'DEPROVISIONED' THEN now() END,
                CASE WHEN %(enrollment)s THEN (SELECT enrollment_payment_id FROM users WHERE id = %(user)s) END)
        ON CONFLICT (user_id, tool) DO UPDATE SET
            status = EXCLUDED.status,
            payment_id = CASE WHEN %(enrollment)s THEN EXCLUDED.payment_id ELSE tool_provisioning.payment_id END,
            external_id = coalesce(EXCLUDED.external_id, tool_provisioning.external_id),
            access_url = CASE WHEN EXCLUDED.status = 'DEPROVISIONED' THEN NULL
                              ELSE coalesce(EXCLUDED.access_url, tool_provisioning.access_url) END,
            details = tool_provisioning.details || EXCLUDED.details,
            error = EXCLUDED.error,
            attempts = tool_provisioning.attempts + EXCLUDED.attempts,
            provisioned_at = CASE WHEN EXCLUDED.status = 'SUCCEEDED'
                                  THEN coalesce(tool_provisioning.provisioned_at, now())
                                  ELSE tool_provisioning.provisioned_at END,
            deprovisioned_at = CASE WHEN EXCLUDED.status = 'DEPROVISIONED' THEN now() END
        """,
        {
            "user": user_id,
            "tool": tool,
            "status": status,
            "external_id": external_id,
            "access_url": access_url,
            "details": Jsonb(details or {}),
            "error": error,
            "attempts": 1 if attempt else 0,
            "enrollment": enrollment,
        },
    )


def tool_record(user_id: str, tool: str) -> dict[str, Any] | None:
    return (
        db.connection()
        .execute(
            """
            SELECT status, payment_id::text AS payment_id, error FROM tool_provisioning
            WHERE user_id = %s AND tool = %s
            """,
            (user_id, tool),
        )
        .fetchone()
    )


def tools(user_id: str) -> list[dict[str, Any]]:
    return (
        db.connection()
        .execute(
            "SELECT tool, status, access_url, details FROM tool_provisioning WHERE user_id = %s ORDER BY tool",
            (user_id,),
        )
        .fetchall()
    )


# --- trainer assignment -------------------------------------------------------------------------


def current_trainer(cur: Cursor[Any], student_id: str) -> dict[str, Any] | None:
    return cur.execute(
        "SELECT trainer_id::text AS trainer_id, track FROM trainer_assignments WHERE student_id = %s", (student_id,)
    ).fetchone()


def least_loaded_trainer(cur: Cursor[Any], track: str, default_capacity: int) -> dict[str, Any] | None:
    """The active trainer of ``track`` with the fewest students, among those under capacity."""
    return cur.execute(
        """
        SELECT u.id::text AS id, u.email::text AS email, count(a.student_id) AS load,
               coalesce(p.max_students, %(capacity)s) AS capacity
        FROM users u
        LEFT JOIN trainer_profiles p ON p.user_id = u.id
        LEFT JOIN trainer_assignments a ON a.trainer_id = u.id
        WHERE u.role = 'trainer' AND u.is_active AND u.deleted_at IS NULL
          AND u.track_id = (SELECT id FROM tracks WHERE code = %(track)s)
          AND coalesce(p.accepting_students, true)
        GROUP BY u.id, p.max_students
        HAVING count(a.student_id) < coalesce(p.max_students, %(capacity)s)
        ORDER BY count(a.student_id), u.created_at, u.id
        LIMIT 1
        """,
        {"track": track, "capacity": default_capacity},
    ).fetchone()


def assign_trainer(cur: Cursor[Any], student_id: str, trainer_id: str, track: str) -> None:
    cur.execute(
        """
        INSERT INTO trainer_assignments (student_id, trainer_id, track) VALUES (%s, %s, %s)
        ON CONFLICT (student_id) DO NOTHING
        """,
        (student_id, trainer_id, track),
    )


def lock_track_assignments(cur: Cursor[Any], track: str) -> None:
    """Serialises assignment per track, so two enrollments cannot both take a trainer's last seat."""
    cur.execute("SELECT pg_advisory_xact_lock(hashtextextended('trainer-assignment:' || %s, 0))", (track,))


def unassign_trainer(cur: Cursor[Any], student_id: str) -> None:
    cur.execute("DELETE FROM trainer_assignments WHERE student_id = %s", (student_id,))


# --- projects -----------------------------------------------------------------------------------


def track_name(code: str) -> str | None:
    """What people call the track (emails name it, never its code)."""
    row = db.connection().execute("SELECT name FROM tracks WHERE code = %s", (code,)).fetchone()
    return row["name"] if row else None


def first_project(track: str) -> dict[str, Any] | None:
    return (
        db.connection()
        .execute(
            """
            SELECT p.id, p.number, p.title FROM projects p JOIN tracks t ON t.id = p.track_id
            WHERE t.code = %s ORDER BY p.number LIMIT 1
            """,
            (track,),
        )
        .fetchone()
    )


def unlock_project(cur: Cursor[Any], user_id: str, project_id: int) -> bool:
    row = cur.execute(
        """
        INSERT INTO student_progress (student_id, project_id, status, unlocked_at)
        VALUES (%s, %s, 'UNLOCKED', now())
        ON CONFLICT (student_id, project_id) DO NOTHING
        RETURNING project_id
        """,
        (user_id, project_id),
    ).fetchone()
    return row is not None


def finish_provisioning(cur: Cursor[Any], user_id: str) -> bool:
    """True when this call marked the tools provisioned (False: a re-run found it done already)."""
    row = cur.execute(
        """
        UPDATE users SET provisioning_status = 'SUCCEEDED', provisioning_error = NULL, tools_provisioned = true,
                         provisioned_at = coalesce(provisioned_at, now())
        WHERE id = %s AND provisioning_status IS DISTINCT FROM 'SUCCEEDED'
        RETURNING id
        """,
        (user_id,),
    ).fetchone()
    return row is not None


def provisioned_tools(cur: Cursor[Any], user_id: str) -> list[str]:
    rows = cur.execute(
        "SELECT tool FROM tool_provisioning WHERE user_id = %s AND status = 'SUCCEEDED' ORDER BY tool", (user_id,)
    ).fetchall()
    return [row["tool"] for row in rows]


def finish_deprovisioning(cur: Cursor[Any], user_id: str) -> bool:
    row = cur.execute(
        """
        UPDATE users SET provisioning_status = 'DEPROVISIONED', provisioning_error = NULL, tools_provisioned = false
        WHERE id = %s RETURNING id
        """,
        (user_id,),
    ).fetchone()
    return row is not None


def audited(user_id: str, action: str) -> bool:
    """Whether an audit row of ``action`` exists about ``user_id`` (a step already done once)."""
    row = (
        db.connection()
        .execute("SELECT 1 FROM audit_logs WHERE subject_id = %s AND action = %s LIMIT 1", (user_id, action))
        .fetchone()
    )
    return row is not None
