"""SQL of the workspace: the uid allocation lock and the idle stopper's view of activity.
Every query is parameterised."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from psycopg import Cursor

from apranova import db


@contextmanager
def uid_allocation_lock(key: int) -> Iterator[None]:
    """A transaction-level advisory lock on the application database, held for the block.

    Workspace provisioners take it around "list the file system's access points, pick a free uid,
    create the access point", so two of them never pick the same uid. The transaction holds no rows.
    """
    with db.transaction() as cur:
        cur.execute("SET LOCAL lock_timeout = '10s'")
        cur.execute("SELECT pg_advisory_xact_lock(%s::bigint)", (key,))
        yield


def workspace_activity(user_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The WORKSPACE record of each user (status, last activity), by user id."""
    if not user_ids:
        return {}
    rows = (
        db.connection()
        .execute(
            """
            SELECT user_id::text AS user_id, status, last_activity_at, provisioned_at
            FROM tool_provisioning WHERE tool = 'WORKSPACE' AND user_id = ANY(%s::uuid[])
            """,
            (user_ids,),
        )
        .fetchall()
    )
    return {row["user_id"]: row for row in rows}


def still_idle(cur: Cursor[Any], user_id: str, idle_minutes: int) -> bool:
    """Under a row lock: no activity was recorded in the last ``idle_minutes`` (or no record)."""
    row = cur.execute(
        """
        SELECT last_activity_at > now() - make_interval(mins => %s) AS active
        FROM tool_provisioning WHERE user_id = %s AND tool = 'WORKSPACE' FOR UPDATE
        """,
        (idle_minutes, user_id),
    ).fetchone()
    return row is None or not row["active"]
