"""The caller, as the API Gateway JWT authorizer verified them and as the database says they are now.

In AWS the HTTP API's Cognito JWT authorizer has checked the token before the function runs and
passes its claims in ``requestContext.authorizer.jwt.claims``; the local server puts the claims
there the same way after the same checks. Identity never comes from the body or a client header.

A valid signature only says who the token was issued to. Whether it is still a session is the
database's to say (docs/principles.md §8 rule 15): ``current_session`` reads, in one primary-key lookup, that
the user exists, is active, holds a role, and that the token was issued after the user's
``sessions_valid_after`` (set by logout, sign-out everywhere, password change or reset, role change,
disable and a deletion request). The role the guard checks is the database's, not the token's groups.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from apranova.fields import canonical_uuid

ROLE_BY_GROUP = {"admins": "admin", "trainers": "trainer", "students": "student"}
ROLE_RANK = {"student": 1, "trainer": 2, "admin": 3}


@dataclass(frozen=True)
class Caller:
    user_id: str
    groups: frozenset[str]
    email: str | None = None

    @property
    def role(self) -> str | None:
        """The highest role among the caller's groups (an admin who is also a trainer is an admin)."""
        roles = [ROLE_BY_GROUP[g] for g in self.groups if g in ROLE_BY_GROUP]
        return max(roles, key=ROLE_RANK.__getitem__) if roles else None

    @property
    def is_admin(self) -> bool:
        return "admins" in self.groups

    @property
    def is_trainer(self) -> bool:
        return "trainers" in self.groups or self.is_admin

    @property
    def is_student(self) -> bool:
        return "students" in self.groups


def parse_groups(value: Any) -> frozenset[str]:
    """Groups arrive as a JSON list locally and as ``"[a b]"`` from the HTTP API authorizer."""
    if value is None:
        return frozenset()
    if isinstance(value, list | tuple):
        return frozenset(str(v) for v in value)
    text = str(value).strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    return frozenset(part.strip().strip('"') for part in text.replace(",", " ").split() if part.strip())


def caller_from_event(event: dict[str, Any]) -> Caller | None:
    """The caller, or None when the request carries no verified *access* token.

    API Gateway's JWT authorizer accepts a token whose ``aud`` or ``client_id`` is the app client:
    Cognito's ID token passes that check too. Only an access token is a session here, so its
    ``token_use`` is checked (an ID token is answered 401, as by the local JWT check).
    """
    claims = token_claims(event)
    if not claims or not claims.get("sub") or claims.get("token_use") != "access":
        return None
    return Caller(
        user_id=str(claims["sub"]),
        groups=parse_groups(claims.get("cognito:groups")),
        email=claims.get("email"),
    )


def token_claims(event: dict[str, Any]) -> dict[str, Any] | None:
    return (((event.get("requestContext") or {}).get("authorizer") or {}).get("jwt") or {}).get("claims")


def issued_at(claims: dict[str, Any] | None) -> int | None:
    """The token's ``iat`` in whole seconds (the authorizer passes it as a string), or None."""
    value = (claims or {}).get("iat")
    if isinstance(value, bool):
        return None
    try:
        seconds = int(str(value))
    except ValueError:
        return None
    return seconds if 0 <= seconds < 2**62 else None  # a bigint; nothing else is a time we issued


# One statement on the primary key. ``iat`` has whole-second resolution: a token counts only if it
# was issued in a second after the one holding sessions_valid_after, so a token issued in the same
# second as a logout is refused (login and refresh wait that second out; see functions/auth).
_SESSION = """
SELECT role,
       is_active AND deleted_at IS NULL AS active,
       sessions_valid_after IS NULL
           OR %(iat)s::bigint > floor(extract(epoch FROM sessions_valid_after))::bigint AS current
FROM users
WHERE id = %(id)s
"""


@dataclass(frozen=True)
class Session:
    """What the database says of a token's user: None fields when there is no such user."""

    role: str | None
    active: bool
    current: bool

    @property
    def valid(self) -> bool:
        return self.role is not None and self.active and self.current


def current_session(conn: Any, user_id: str, iat: int) -> Session:
    """The session state of ``user_id`` for a token issued at ``iat`` (``conn``: anything with ``execute``)."""
    if canonical_uuid(user_id) is None:
        return Session(role=None, active=False, current=False)
    row = conn.execute(_SESSION, {"id": user_id, "iat": iat}).fetchone()
    if row is None:
        return Session(role=None, active=False, current=False)
    return Session(role=row["role"], active=bool(row["active"]), current=bool(row["current"]))


def caller_with_role(caller: Caller, role: str) -> Caller:
    """``caller`` with the groups of their role in the database (the token's groups may be stale)."""
    group = next(g for g, r in ROLE_BY_GROUP.items() if r == role)
    return Caller(user_id=caller.user_id, groups=frozenset({group}), email=caller.email)


_END_SESSIONS = "UPDATE users SET sessions_valid_after = clock_timestamp() WHERE id = %s"


def end_sessions(cur: Any, user_id: str) -> None:
    """Every access token issued to ``user_id`` until now stops working on its next request.

    Refresh tokens are Cognito's: the caller revokes them too (GlobalSignOut) where the person
    must sign in again. Role changes, disabling and erasure set the column by trigger (0016).
    """
    cur.execute(_END_SESSIONS, (user_id,))
