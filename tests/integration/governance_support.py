"""Shared by the consent, admin governance and audit trail tests: a migrated and seeded database
of the module's own (publishing a policy version changes what every later test would have to
accept, and policy rows can never be deleted once accepted), people arranged with SQL, and calls
through a real handler with the claims API Gateway's JWT authorizer hands over."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest

from apranova import db, settings
from local.events import LambdaContext, http_api_event

SOURCE_IP = "198.51.100.23"
USER_AGENT = "governance-tests/1.0"
GROUPS = {"student": "[students]", "trainer": "[trainers]", "admin": "[admins]"}


@contextmanager
def fresh_database(make_database: Callable[..., str], prefix: str) -> Iterator[str]:
    """A migrated, seeded database the functions use until the block ends (then the previous one)."""
    from functions.migrate.runner import migrate
    from functions.migrate.seed import seed_database
    from tests.conftest import pooled_url

    url = make_database(prefix)
    with psycopg.connect(url, autocommit=True) as conn:
        migrate(conn)
        seed_database(conn)
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("DATABASE_URL", pooled_url(url))  # the functions connect through the pooler
            settings.database_settings.cache_clear()
            db.reset()
            yield url
    finally:
        settings.database_settings.cache_clear()
        db.reset()


@dataclass(frozen=True)
class Person:
    id: str
    email: str
    role: str = "student"

    @property
    def claims(self) -> dict[str, Any]:
        return {"sub": self.id, "token_use": "access", "cognito:groups": GROUPS[self.role], "email": self.email}


def make_person(
    conn: psycopg.Connection,
    role: str = "student",
    *,
    track: str | None = "DP",
    status: str = "ENROLLED",
    consent: bool = True,
) -> Person:
    """A user row (verified); a student of a track gets project 1 unlocked, as enrollment leaves it;
    ``consent``: a SIGNUP consent to the versions in force."""
    user_id = str(uuid.uuid4())
    email = f"{role}-{user_id[:8]}@example.com"
    if role != "student":
        status = "PENDING_PAYMENT"  # staff are not enrolled; a trainer keeps the track they teach
        track = track if role == "trainer" else None
    elif status == "PENDING_PAYMENT":
        track = None
    conn.execute(
        "INSERT INTO users (id, email, name, role, track_id, enrollment_status, email_verified)"
        " VALUES (%s, %s, 'Test Person', %s, (SELECT id FROM tracks WHERE code = %s), %s, true)",
        (user_id, email, role, track, status),
    )
    if consent:
        conn.execute(
            "INSERT INTO user_consents (user_id, privacy_policy_version, terms_version, source)"
            " VALUES (%s, privacy_version_in_force(), terms_version_in_force(), 'SIGNUP')",
            (user_id,),
        )
    if role == "student" and track is not None and status in ("ENROLLED", "COMPLETED"):
        conn.execute(
            "INSERT INTO student_progress (student_id, project_id, status, unlocked_at)"
            " SELECT %s, p.id, 'UNLOCKED', now() FROM projects p JOIN tracks t ON t.id = p.track_id"
            " WHERE t.code = %s AND p.number = 1",
            (user_id, track),
        )
    return Person(user_id, email, role)


def call(
    handler: Callable[[dict[str, Any], Any], dict[str, Any]],
    method: str,
    path: str,
    who: Person | None = None,
    body: Any = None,
    query: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], Any]:
    if body is not None and not isinstance(body, str | bytes):
        body = json.dumps(body)
    event = http_api_event(
        method,
        path,
        body=body,
        query=query,
        headers={"user-agent": USER_AGENT, "content-type": "application/json"},
        claims=who.claims if who else None,
        source_ip=SOURCE_IP,
        request_id=f"req-{uuid.uuid4().hex[:12]}",
    )
    response = handler(event, LambdaContext("governance-tests"))
    text = response.get("body")
    headers = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
    return response["statusCode"], headers, json.loads(text) if text else None


def error_code(body: Any) -> str | None:
    return (body or {}).get("error", {}).get("code")
