"""Every audit row says in what role its actor acted (issue 16): a caller's own role, the account's
role when only its id is known (sign-up, login, logout, a pay-first account), ``anonymous`` for a
request without an account, ``system`` for the webhook, workflow steps and schedules."""

from __future__ import annotations

import uuid

from apranova import audit
from apranova.identity import Caller


def _user(conn, role: str) -> str:
    user_id = str(uuid.uuid4())
    conn.execute(
        "INSERT INTO users (id, email, name, role) VALUES (%s, %s, 'Role Test', %s)",
        (user_id, f"role-{user_id[:8]}@example.com", role),
    )
    return user_id


def _role_of(conn, row_id: int) -> str | None:
    return conn.execute("SELECT actor_role FROM audit_logs WHERE id = %s", (row_id,)).fetchone()["actor_role"]


def test_each_row_names_the_role_its_actor_acted_in(conn) -> None:
    trainer, admin = _user(conn, "trainer"), _user(conn, "admin")
    try:
        with conn.cursor() as cur:
            as_caller = audit.record(cur, "REVIEW", actor=Caller(trainer, frozenset({"trainers"}), "t@example.com"))
            by_id = audit.record(cur, "LOGIN", actor_id=admin, subject_id=admin)
            anonymous = audit.record(cur, "LOGIN_FAILED", subject_id=admin, ip_address="203.0.113.5", request_id="r-1")
            system = audit.record(cur, "PAYMENT", resource_type="payment", resource_id="p-1")
            explicit = audit.record(cur, "ENROLLMENT", actor_id=admin, actor_role="student")
        assert _role_of(conn, as_caller) == "trainer"
        assert _role_of(conn, by_id) == "admin"  # read from the account at that moment
        assert _role_of(conn, anonymous) == "anonymous"
        assert _role_of(conn, system) == "system"
        assert _role_of(conn, explicit) == "student"
    finally:
        conn.execute("DELETE FROM users WHERE id = ANY(%s::uuid[])", ([trainer, admin],))
