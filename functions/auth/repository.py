"""SQL of the auth domain. Every query is parameterised; writes take the caller's cursor so that
they commit together with the audit row that describes them."""

from __future__ import annotations

from typing import Any

from psycopg import Cursor

from apranova import db

_ACTIVE_VERSIONS = """
SELECT privacy_version_in_force() AS privacy_version,
       terms_version_in_force() AS terms_version
"""

# One statement: the user, their track, their latest consent, the versions in force and a scheduled
# deletion (at most one is open: deletion_requests_one_open).
_PROFILE = """
SELECT u.id::text AS id, u.email::text AS email, u.name, u.role, t.code AS track, u.enrollment_status,
       u.tools_provisioned, u.provisioning_status,
       c.privacy_policy_version AS consent_privacy_version, c.terms_version AS consent_terms_version,
       privacy_version_in_force() AS active_privacy_version,
       terms_version_in_force() AS active_terms_version,
       d.scheduled_for AS deletion_scheduled_for
FROM users u
LEFT JOIN tracks t ON t.id = u.track_id
LEFT JOIN deletion_requests d ON d.user_id = u.id AND d.status = 'SCHEDULED'
LEFT JOIN LATERAL (
    SELECT privacy_policy_version, terms_version FROM user_consents
    WHERE user_id = u.id ORDER BY accepted_at DESC, id DESC LIMIT 1
) c ON true
WHERE u.id = %s AND u.deleted_at IS NULL
"""


def active_versions() -> dict[str, Any]:
    return db.connection().execute(_ACTIVE_VERSIONS).fetchone() or {}


def profile(user_id: str) -> dict[str, Any] | None:
    return db.connection().execute(_PROFILE, (user_id,)).fetchone()


def insert_user(cur: Cursor[Any], *, user_id: str, email: str, name: str) -> None:
    # Role and status are the table's defaults (student, PENDING_PAYMENT): never from the request.
    cur.execute("INSERT INTO users (id, email, name) VALUES (%s, %s, %s)", (user_id, email, name))


def insert_consent(
    cur: Cursor[Any],
    *,
    user_id: str,
    privacy_version: str,
    terms_version: str,
    ip_address: str | None,
    user_agent: str | None,
) -> None:
    cur.execute(
        """
        INSERT INTO user_consents (user_id, privacy_policy_version, terms_version, ip_address, user_agent, source)
        VALUES (%s, %s, %s, %s, %s, 'SIGNUP')
        """,
        (user_id, privacy_version, terms_version, ip_address, user_agent),
    )


def email_exists(email: str) -> bool:
    return db.connection().execute("SELECT 1 FROM users WHERE email = %s", (email,)).fetchone() is not None


def mark_email_verified(cur: Cursor[Any], email: str) -> str | None:
    row = cur.execute(
        "UPDATE users SET email_verified = true WHERE email = %s RETURNING id::text AS id", (email,)
    ).fetchone()
    return row["id"] if row else None


# ``sessions_ended``: the second the account's sessions last ended in (whole seconds since 1970, as
# a token's ``iat``), or null when they never were.
_RECORD_LOGIN = """
UPDATE users SET last_login_at = now() WHERE id = %s AND deleted_at IS NULL
RETURNING floor(extract(epoch FROM sessions_valid_after))::bigint AS sessions_ended, is_active
"""
_SESSIONS_ENDED = """
SELECT floor(extract(epoch FROM sessions_valid_after))::bigint AS sessions_ended FROM users WHERE id = %s
"""


def record_login(cur: Cursor[Any], user_id: str) -> dict[str, Any] | None:
    """Stamps the login: the row with ``sessions_ended``, or None without an account."""
    return cur.execute(_RECORD_LOGIN, (user_id,)).fetchone()


def sessions_ended(user_id: str) -> int | None:
    """The second the account's sessions last ended in (None: never, or no such account)."""
    row = db.connection().execute(_SESSIONS_ENDED, (user_id,)).fetchone()
    return row["sessions_ended"] if row else None


def account_state(email: str) -> dict[str, Any] | None:
    """The account of ``email``, if any: its id and whether the address is verified."""
    return (
        db.connection()
        .execute("SELECT id::text AS id, email_verified FROM users WHERE email = %s AND deleted_at IS NULL", (email,))
        .fetchone()
    )


def user_id_by_email(cur: Cursor[Any], email: str) -> str | None:
    row = cur.execute("SELECT id::text AS id FROM users WHERE email = %s", (email,)).fetchone()
    return row["id"] if row else None


def update_name(cur: Cursor[Any], user_id: str, name: str) -> bool:
    row = cur.execute(
        "UPDATE users SET name = %s WHERE id = %s AND deleted_at IS NULL RETURNING id", (name, user_id)
    ).fetchone()
    return row is not None
