"""The audit-log writer: one append-only row per sensitive action.

It writes on the caller's cursor, so the audit row commits or rolls back with the change it
describes. ``details`` must never hold a secret (a trigger keeps rows from being edited later).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg import Cursor
from psycopg.types.json import Jsonb

from apranova.identity import Caller


def record(
    cur: Cursor[Any],
    action: str,
    *,
    actor: Caller | None = None,
    actor_id: str | None = None,
    subject_id: str | None = None,
    resource_type: str | None = None,
    resource_id: str | None = None,
    details: dict[str, Any] | None = None,
    ip_address: str | None = None,
    user_agent: str | None = None,
    request_id: str | None = None,
) -> int:
    cur.execute(
        """
        INSERT INTO audit_logs (action, actor_id, actor_role, subject_id, resource_type, resource_id,
                                details, ip_address, user_agent, request_id)
        VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
        RETURNING id
        """,
        (
            action,
            actor.user_id if actor else actor_id,
            actor.role if actor else None,
            subject_id,
            resource_type,
            resource_id,
            Jsonb(details or {}),
            ip_address,
            (user_agent or "")[:512] or None,
            request_id,
        ),
    )
    row = cur.fetchone()
    return row["id"] if isinstance(row, dict) else row[0]


@dataclass(frozen=True)
class RequestInfo:
    """Where a request came from, as the audit trail records it."""

    ip_address: str | None = None
    user_agent: str | None = None
    request_id: str | None = None

    def audit(self, cur: Cursor[Any], action: str, **fields: Any) -> int:
        """An audit row for this request (who, what, from where), on the use case's transaction."""
        return record(
            cur, action, ip_address=self.ip_address, user_agent=self.user_agent, request_id=self.request_id, **fields
        )
