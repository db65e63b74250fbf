"""The caller, as the API Gateway JWT authorizer verified them.

In AWS the HTTP API's Cognito JWT authorizer has checked the token before the function runs and
passes its claims in ``requestContext.authorizer.jwt.claims``; the local server puts the claims
there the same way after the same checks. Identity never comes from the body or a client header.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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
    claims = (((event.get("requestContext") or {}).get("authorizer") or {}).get("jwt") or {}).get("claims")
    if not claims or not claims.get("sub") or claims.get("token_use") != "access":
        return None
    return Caller(
        user_id=str(claims["sub"]),
        groups=parse_groups(claims.get("cognito:groups")),
        email=claims.get("email"),
    )
