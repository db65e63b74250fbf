"""SQL of the tools API. Every query is parameterised; writes take the caller's cursor so that
they commit together with the audit row that describes them."""

from __future__ import annotations

from typing import Any

from psycopg import Cursor

from apranova import db


def student_tool(user_id: str, tool: str) -> dict[str, Any] | None:
    """In one statement: the student's enrollment and track, the tool's record, and for the
    student database the credentials row (names and the parameter name, never a password)."""
    return (
        db.connection()
        .execute(
            """
            SELECT u.enrollment_status, u.provisioning_status, t.code AS track,
                   tp.status AS tool_status, tp.access_url, tp.details, tp.last_activity_at,
                   c.database_name, c.schema_name, c.role_name, c.password_parameter_name
            FROM users u
            LEFT JOIN tracks t ON t.id = u.track_id
            LEFT JOIN tool_provisioning tp ON tp.user_id = u.id AND tp.tool = %(tool)s
            LEFT JOIN student_database_credentials c ON c.user_id = u.id AND %(tool)s = 'STUDENT_DATABASE'
            WHERE u.id = %(user)s AND u.deleted_at IS NULL
            """,
            {"user": user_id, "tool": tool},
        )
        .fetchone()
    )


def lock_workspace(cur: Cursor[Any], user_id: str) -> bool:
    """Locks the student's WORKSPACE record: their starts and stops (and the idle stopper) queue."""
    row = cur.execute(
        "SELECT 1 FROM tool_provisioning WHERE user_id = %s AND tool = 'WORKSPACE' FOR UPDATE", (user_id,)
    ).fetchone()
    return row is not None


def record_activity(cur: Cursor[Any], user_id: str) -> None:
    cur.execute(
        "UPDATE tool_provisioning SET last_activity_at = now() WHERE user_id = %s AND tool = 'WORKSPACE'", (user_id,)
    )


def keep_alive(user_id: str) -> None:
    """Refreshes the activity of a running workspace being used (at most once a minute)."""
    db.connection().execute(
        """
        UPDATE tool_provisioning SET last_activity_at = now()
        WHERE user_id = %s AND tool = 'WORKSPACE'
          AND (last_activity_at IS NULL OR last_activity_at < now() - interval '1 minute')
        """,
        (user_id,),
    )
