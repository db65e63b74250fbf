"""SQL of the policies and consent routes. The versions in force come from the database's
``privacy_version_in_force()`` / ``terms_version_in_force()`` (migration 0010), the one definition
every consent check shares."""

from __future__ import annotations

from typing import Any

from psycopg import Cursor, sql

from apranova import db

# kind -> (table, function giving its version in force); constants of ours, never from a request.
POLICY_TABLES = {
    "privacy": ("privacy_policies", "privacy_version_in_force"),
    "terms": ("terms_of_service", "terms_version_in_force"),
}

# One statement: the version in force and the next scheduled one (if any).
_POLICY = """
SELECT p.version, p.content, p.summary, p.effective_at,
       n.version AS upcoming_version, n.effective_at AS upcoming_effective_at
FROM (SELECT {in_force}() AS version) f
LEFT JOIN {table} p ON p.version = f.version
LEFT JOIN LATERAL (
    SELECT version, effective_at FROM {table} WHERE effective_at > now() ORDER BY effective_at, id LIMIT 1
) n ON true
"""

_CONSENT = """
c.id, c.privacy_policy_version AS privacy_version, c.terms_version, c.accepted_at, c.source,
host(c.ip_address) AS ip_address, c.user_agent,
(c.privacy_policy_version = privacy_version_in_force() AND c.terms_version = terms_version_in_force()) AS in_force
"""


def policy(kind: str) -> dict[str, Any] | None:
    table, in_force = POLICY_TABLES[kind]
    query = sql.SQL(_POLICY).format(table=sql.Identifier(table), in_force=sql.Identifier(in_force))
    return db.connection().execute(query).fetchone()


def lock_account(cur: Cursor[Any], user_id: str) -> bool:
    """Locks the caller's account row: two acceptances at once record one consent."""
    row = cur.execute("SELECT 1 FROM users WHERE id = %s AND deleted_at IS NULL FOR UPDATE", (user_id,)).fetchone()
    return row is not None


def versions_in_force(cur: Cursor[Any]) -> dict[str, Any]:
    return db.one(
        cur.execute("SELECT privacy_version_in_force() AS privacy_version, terms_version_in_force() AS terms_version")
    )


def latest_consent(cur: Cursor[Any], user_id: str) -> dict[str, Any] | None:
    query = sql.SQL(
        "SELECT {columns} FROM user_consents c WHERE c.user_id = %s ORDER BY c.accepted_at DESC, c.id DESC LIMIT 1"
    ).format(columns=sql.SQL(_CONSENT))
    return cur.execute(query, (user_id,)).fetchone()


def insert_consent(
    cur: Cursor[Any],
    *,
    user_id: str,
    privacy_version: str,
    terms_version: str,
    ip_address: str | None,
    user_agent: str | None,
) -> dict[str, Any]:
    query = sql.SQL(
        """
        WITH c AS (
            INSERT INTO user_consents (user_id, privacy_policy_version, terms_version, ip_address, user_agent, source)
            VALUES (%s, %s, %s, %s, %s, 'ACCEPT')
            RETURNING *
        )
        SELECT {columns} FROM c
        """
    ).format(columns=sql.SQL(_CONSENT))
    return db.one(cur.execute(query, (user_id, privacy_version, terms_version, ip_address, user_agent)))


def consents(user_id: str, after: list[Any] | None, limit: int) -> list[dict[str, Any]]:
    """Newest first, keyset on (accepted_at, id) over the user_consents_user index."""
    keyset = sql.SQL("AND (c.accepted_at, c.id) < (%s, %s)") if after is not None else sql.SQL("")
    query = sql.SQL(
        "SELECT {columns} FROM user_consents c WHERE c.user_id = %s {keyset}"
        " ORDER BY c.accepted_at DESC, c.id DESC LIMIT %s"
    ).format(columns=sql.SQL(_CONSENT), keyset=keyset)
    return db.connection().execute(query, (user_id, *(after or []), limit + 1)).fetchall()
