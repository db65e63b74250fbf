"""SQL of the workspace: the uid allocation locks and the idle stopper's view of activity.
Every query is parameterised."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from psycopg import Cursor

from apranova import db


@contextmanager
def uid_locks(base: int) -> Iterator[Callable[[int], None]]:
    """One transaction for the block; ``hold(uid)`` takes the transaction-level advisory lock
    ``base + uid`` in it (kept until the block ends). The transaction holds no rows."""
    with db.transaction() as cur:
        cur.execute("SET LOCAL lock_timeout = '10s'")

        def hold(uid: int) -> None:
            cur.execute("SELECT pg_advisory_xact_lock(%s::bigint)", (base + uid,))

        yield hold


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
