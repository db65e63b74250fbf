"""The audit-log writer: one append-only row per sensitive action.

It writes on the caller's cursor, so the audit row commits or rolls back with the change it
describes. ``details`` must never hold a secret (a trigger keeps rows from being edited later).

Every row says in what role its actor acted (``actor_role``): the caller's role for a request with a
token; the account's role at that moment when only the actor's id is known (sign-up, login, logout,
a pay-first account); ``anonymous`` for a request without an account (a failed login, a
pay-first checkout); ``system`` when no request of a person caused it (the webhook, a workflow
step, a schedule).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from psycopg import Cursor
from psycopg.types.json import Jsonb

from apranova.identity import Caller


class AuditAction(StrEnum):
    """Every action the trail knows. ``record`` refuses any other name, so a typo fails loudly
    instead of writing a row that no filter, export or report would ever find."""

    # Accounts and sessions
    SIGNUP = "SIGNUP"
    EMAIL_VERIFIED = "EMAIL_VERIFIED"
    LOGIN = "LOGIN"
    LOGIN_FAILED = "LOGIN_FAILED"
    LOGOUT = "LOGOUT"
    PASSWORD_CHANGE = "PASSWORD_CHANGE"  # noqa: S105 - an action name, not a password
    PASSWORD_RESET = "PASSWORD_RESET"  # noqa: S105 - an action name, not a password
    PROFILE_UPDATE = "PROFILE_UPDATE"
    # GDPR
    CONSENT_ACCEPTED = "CONSENT_ACCEPTED"
    DATA_EXPORT = "DATA_EXPORT"
    DELETION_REQUESTED = "DELETION_REQUESTED"
    DELETION_CANCELLED = "DELETION_CANCELLED"
    ACCOUNT_PURGED = "ACCOUNT_PURGED"
    POLICY_PUBLISHED = "POLICY_PUBLISHED"
    RETENTION_POLICY_CHANGED = "RETENTION_POLICY_CHANGED"
    RETENTION_SWEEP = "RETENTION_SWEEP"
    # Money and enrollment
    PAYMENT = "PAYMENT"
    REFUND_REQUESTED = "REFUND_REQUESTED"
    REFUND_DECIDED = "REFUND_DECIDED"
    ENROLLMENT = "ENROLLMENT"
    ADMIN_ENROLL = "ADMIN_ENROLL"
    # Tools
    PROVISIONING = "PROVISIONING"
    REPROVISION_REQUESTED = "REPROVISION_REQUESTED"
    TOOLS_DEPROVISIONED = "TOOLS_DEPROVISIONED"
    CREDENTIALS_VIEWED = "CREDENTIALS_VIEWED"
    WORKSPACE_STARTED = "WORKSPACE_STARTED"
    WORKSPACE_STOPPED = "WORKSPACE_STOPPED"
    WELCOME_EMAIL_SENT = "WELCOME_EMAIL_SENT"
    # Learning and review
    PROJECT_STARTED = "PROJECT_STARTED"
    PROJECT_UNLOCKED = "PROJECT_UNLOCKED"
    SUBMISSION = "SUBMISSION"
    SUBMISSION_FILE_VIEWED = "SUBMISSION_FILE_VIEWED"  # a download link to a student's file was issued
    REVIEW = "REVIEW"
    # Administration
    ROLE_CHANGE = "ROLE_CHANGE"
    TRAINER_ASSIGNED = "TRAINER_ASSIGNED"


def record(
    cur: Cursor[Any],
    action: AuditAction | str,
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
    actor_role: str | None = None,
) -> int:
    """Writes one row; ``ValueError`` for an action that is not an ``AuditAction``."""
    try:
        known = AuditAction(action)
    except ValueError:
        raise ValueError(f"unknown audit action {action!r}: add it to apranova.audit.AuditAction") from None
    who = actor.user_id if actor else actor_id
    role = actor.role if actor else actor_role
    if role is None and who is None:
        role = "anonymous" if (ip_address or request_id) else "system"
    cur.execute(
        """
        INSERT INTO audit_logs (action, actor_id, actor_role, subject_id, resource_type, resource_id,
                                details, ip_address, user_agent, request_id)
        VALUES (%(action)s, %(actor_id)s,
                coalesce(%(role)s, (SELECT u.role FROM users u WHERE u.id = %(actor_id)s)),
                %(subject_id)s, %(resource_type)s, %(resource_id)s, %(details)s, %(ip)s, %(ua)s, %(request_id)s)
        RETURNING id
        """,
        {
            "action": known.value,
            "actor_id": who,
            "role": role,
            "subject_id": subject_id,
            "resource_type": resource_type,
            "resource_id": resource_id,
            "details": Jsonb(details or {}),
            "ip": ip_address,
            "ua": (user_agent or "")[:512] or None,
            "request_id": request_id,
        },
    )
    row = cur.fetchone()
    if row is None:  # INSERT ... RETURNING returns its row
        raise LookupError("the audit row was not returned")
    return row["id"] if isinstance(row, dict) else row[0]


@dataclass(frozen=True)
class RequestInfo:
    """Where a request came from, as the audit trail records it."""

    ip_address: str | None = None
    user_agent: str | None = None
    request_id: str | None = None

    def audit(self, cur: Cursor[Any], action: AuditAction | str, **fields: Any) -> int:
        """An audit row for this request (who, what, from where), on the use case's transaction."""
        return record(
            cur, action, ip_address=self.ip_address, user_agent=self.user_agent, request_id=self.request_id, **fields
        )
