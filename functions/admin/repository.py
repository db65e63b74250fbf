"""SQL of the admin domain. Writes take the caller's cursor (one transaction per use case)."""

from __future__ import annotations

from typing import Any

from psycopg import Cursor


def lock_user(cur: Cursor[Any], user_id: str) -> dict[str, Any] | None:
    return cur.execute(
        "SELECT id::text AS id, email::text AS email, role FROM users WHERE id = %s AND deleted_at IS NULL FOR UPDATE",
        (user_id,),
    ).fetchone()


def lock_admins(cur: Cursor[Any]) -> list[str]:
    """The active admins, locked so two concurrent demotions cannot both see "another admin"."""
    rows = cur.execute(
        "SELECT id::text AS id FROM users WHERE role = 'admin' AND is_active AND deleted_at IS NULL FOR UPDATE"
    ).fetchall()
    return [row["id"] for row in rows]


def set_role(cur: Cursor[Any], user_id: str, role: str) -> None:
    cur.execute("UPDATE users SET role = %s WHERE id = %s", (role, user_id))


def lock_enrollment(cur: Cursor[Any], user_id: str) -> dict[str, Any] | None:
    """The user's enrollment state, locked so two admins cannot start two enrollments at once."""
    return cur.execute(
        """
        SELECT u.id::text AS id, u.role, u.enrollment_status, u.provisioning_status, t.code AS track
        FROM users u LEFT JOIN tracks t ON t.id = u.track_id
        WHERE u.id = %s AND u.deleted_at IS NULL
        FOR UPDATE OF u
        """,
        (user_id,),
    ).fetchone()


def track_is_active(cur: Cursor[Any], code: str) -> bool | None:
    """True/False for an existing track, None for an unknown one."""
    row = cur.execute("SELECT is_active FROM tracks WHERE code = %s", (code,)).fetchone()
    return None if row is None else bool(row["is_active"])


def mark_provisioning_started(cur: Cursor[Any], user_id: str) -> None:
    cur.execute(
        "UPDATE users SET provisioning_status = 'IN_PROGRESS', provisioning_error = NULL WHERE id = %s", (user_id,)
    )
