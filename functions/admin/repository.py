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
