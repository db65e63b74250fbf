"""Sessions end when the person or an admin decides, on the next request (docs/principles.md §8 rule 15).

Real tokens from moto's Cognito, the real auth, admin and trainer handlers, the real database: after
logout, a password change or reset, a demotion or disabling, the old access token is refused (401)
by the guard of every function, and the refresh tokens that Cognito must revoke no longer work.
Logging in again right after, in the same second, works (the login waits that second out).
"""

from __future__ import annotations

import time
import uuid

import pytest

from functions.admin.handler import lambda_handler as admin
from functions.auth.handler import lambda_handler as auth
from functions.trainer.handler import lambda_handler as trainer
from tests.integration.auth_support import (
    PASSWORD,
    bearer,
    call,
    idp,
    mailed_code,
)

PROFILE = "/api/auth/user/"
QUEUE = "/api/trainer/submissions/"


# The module's Cognito user pool and the policy versions in force: tests/integration/conftest.py.
pytestmark = pytest.mark.usefixtures("pool")


def login(email: str, password: str = PASSWORD) -> dict:
    status, tokens = call(auth, "POST", "/api/auth/login/", {"email": email, "password": password})
    assert status == 200, tokens
    return tokens


def person(versions) -> tuple[str, dict]:
    """A verified student, logged in."""
    email = f"sess-{uuid.uuid4().hex[:10]}@example.com"
    body = {"email": email, "password": PASSWORD, "name": "Sam", "accept_privacy": True, **versions}
    assert call(auth, "POST", "/api/auth/registration/", body)[0] == 201
    assert call(auth, "POST", "/api/auth/verify-email/", {"email": email, "code": mailed_code(email)})[0] == 200
    return email, login(email)


def refresh(tokens: dict) -> tuple[int, dict]:
    return call(auth, "POST", "/api/auth/token/refresh/", {"refresh": tokens["refresh"]})


def refused(handler, method: str, path: str, tokens: dict) -> bool:
    status, answer = call(handler, method, path, **bearer(tokens["access"]))
    return status == 401 and answer["error"]["code"] == "session_ended"


def with_role(pool, conn, email: str, tokens: dict, role: str) -> dict:
    """Makes the person ``role`` (database and Cognito group, as the admin route does) and logs in."""
    conn.execute("UPDATE users SET role = %s WHERE id = %s", (role, tokens["user"]["id"]))
    idp().admin_add_user_to_group(UserPoolId=pool["user_pool_id"], Username=email, GroupName=f"{role}s")
    return login(email)


def test_after_logout_the_access_token_is_refused_on_the_next_request(pool, versions):
    email, tokens = person(versions)
    assert call(auth, "GET", PROFILE, **bearer(tokens["access"]))[0] == 200
    assert call(auth, "POST", "/api/auth/logout/", {}, **bearer(tokens["access"]))[0] == 200
    # Issued in the same second as the logout or before: refused, by every function's guard.
    assert refused(auth, "GET", PROFILE, tokens)
    assert refused(auth, "PATCH", PROFILE, tokens)
    assert refresh(tokens)[0] == 401
    # Logging in again at once works: the new token counts (the login waited out the second).
    again = login(email)
    assert call(auth, "GET", PROFILE, **bearer(again["access"]))[0] == 200


def test_a_password_change_ends_every_session_and_revokes_refresh_tokens(pool, versions):
    email, tokens = person(versions)
    other_device = login(email)
    change = {"old_password": PASSWORD, "new_password": "Changed-Passw0rd!"}
    assert call(auth, "POST", "/api/auth/password/change/", change, **bearer(tokens["access"]))[0] == 200
    for old in (tokens, other_device):
        assert refused(auth, "GET", PROFILE, old)
        assert refresh(old)[0] == 401
    fresh = login(email, "Changed-Passw0rd!")
    assert call(auth, "GET", PROFILE, **bearer(fresh["access"]))[0] == 200
    assert refresh(fresh)[0] == 200


def test_a_password_reset_ends_every_session_and_revokes_refresh_tokens(pool, versions, conn):
    email, tokens = person(versions)
    idp().forgot_password(ClientId=pool["client_id"], Username=email)
    code = mailed_code(email)  # the reset code Cognito mailed
    reset = {"email": email, "code": code, "new_password": "Reset-Passw0rd!"}
    assert call(auth, "POST", "/api/auth/password/reset/confirm/", reset)[0] == 200
    assert refused(auth, "GET", PROFILE, tokens)
    assert refresh(tokens)[0] == 401
    fresh = login(email, "Reset-Passw0rd!")
    assert call(auth, "GET", PROFILE, **bearer(fresh["access"]))[0] == 200
    actions = conn.execute(
        "SELECT action FROM audit_logs WHERE subject_id = %s ORDER BY id", (tokens["user"]["id"],)
    ).fetchall()
    assert [a["action"] for a in actions][-2:] == ["PASSWORD_RESET", "LOGIN"]


def test_a_password_reset_confirm_for_an_unknown_email_is_the_wrong_code_answer(pool):
    unknown = {
        "email": f"nobody-{uuid.uuid4().hex[:8]}@example.com",
        "code": "123456",
        "new_password": "Reset-Passw0rd!",
    }
    status, answer = call(auth, "POST", "/api/auth/password/reset/confirm/", unknown)
    assert status == 400 and answer["error"]["code"] == "invalid_code"


def test_a_demoted_trainer_is_refused_at_once_and_a_new_token_has_the_new_role(pool, versions, conn):
    admin_email, admin_tokens = person(versions)
    admin_tokens = with_role(pool, conn, admin_email, admin_tokens, "admin")
    email, tokens = person(versions)
    tokens = with_role(pool, conn, email, tokens, "trainer")
    assert call(trainer, "GET", QUEUE, **bearer(tokens["access"]))[0] == 200
    status, answer = call(
        admin, "POST", f"/api/admin/users/{tokens['user']['id']}/role/", {"role": "student"},
        **bearer(admin_tokens["access"]),
    )  # fmt: skip
    assert status == 200, answer
    # The trainer's token (its groups still say trainers) stops working on the next request.
    assert refused(trainer, "GET", QUEUE, tokens)
    # The refresh token survives a role change; what it hands out is current, and a student's.
    status, refreshed = refresh(tokens)
    assert status == 200, refreshed
    status, answer = call(trainer, "GET", QUEUE, **bearer(refreshed["access"]))
    assert status == 403 and answer["error"]["code"] == "permission_denied"
    assert call(auth, "GET", PROFILE, **bearer(refreshed["access"]))[1]["role"] == "student"


def test_the_database_role_wins_over_the_tokens_groups(pool, versions, conn):
    email, tokens = person(versions)
    # A group added behind the database's back (or a stale one) grants nothing.
    idp().admin_add_user_to_group(UserPoolId=pool["user_pool_id"], Username=email, GroupName="admins")
    relogin = login(email)
    assert "admins" in str(bearer(relogin["access"])["claims"]["cognito:groups"])
    status, answer = call(admin, "GET", "/api/admin/users/", **bearer(relogin["access"]))
    assert status == 403 and answer["error"]["code"] == "permission_denied"


def test_a_disabled_account_is_refused_at_once(pool, versions, conn):
    email, tokens = person(versions)
    conn.execute("UPDATE users SET is_active = false WHERE id = %s", (tokens["user"]["id"],))
    assert refused(auth, "GET", PROFILE, tokens)
    # Nor does signing in again hand out tokens (only once the password is right).
    status, answer = call(auth, "POST", "/api/auth/login/", {"email": email, "password": PASSWORD})
    assert status == 403 and answer["error"]["code"] == "account_disabled"
    assert call(auth, "POST", "/api/auth/login/", {"email": email, "password": "Wrong-Passw0rd!"})[0] == 401
    # Turned back on, the old token stays refused (disabling ended the sessions); a new one works.
    conn.execute("UPDATE users SET is_active = true WHERE id = %s", (tokens["user"]["id"],))
    assert refused(auth, "GET", PROFILE, tokens)
    time.sleep(max(0.0, int(time.time()) + 1 - time.time()))  # a token of a later second
    status, refreshed = refresh(tokens)
    assert status == 200 and call(auth, "GET", PROFILE, **bearer(refreshed["access"]))[0] == 200
