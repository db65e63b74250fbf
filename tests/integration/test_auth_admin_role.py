"""POST /api/admin/users/{id}/role/: admins only, Cognito group and row move together, audited;
and no request a student can make sets a role."""

from __future__ import annotations

import uuid

import pytest

from functions.admin.handler import lambda_handler as admin
from functions.auth.handler import lambda_handler as auth
from tests.integration.auth_support import (
    PASSWORD,
    bearer,
    call,
    idp,
    mailed_code,
)

# The module's Cognito user pool and the policy versions in force: tests/integration/conftest.py.
pytestmark = pytest.mark.usefixtures("pool")


def student(versions):
    email = f"r-{uuid.uuid4().hex[:10]}@example.com"
    body = {"email": email, "password": PASSWORD, "name": "Stu", "accept_privacy": True, **versions}
    assert call(auth, "POST", "/api/auth/registration/", body)[0] == 201
    assert call(auth, "POST", "/api/auth/verify-email/", {"email": email, "code": mailed_code(email)})[0] == 200
    return email, call(auth, "POST", "/api/auth/login/", {"email": email, "password": PASSWORD})[1]


def groups(pool, email):
    found = idp().admin_list_groups_for_user(UserPoolId=pool["user_pool_id"], Username=email)["Groups"]
    return sorted(g["GroupName"] for g in found)


def login(email):
    return call(auth, "POST", "/api/auth/login/", {"email": email, "password": PASSWORD})[1]


@pytest.fixture
def only_admin(pool, versions, conn):
    """A fresh admin who is the only active admin in the database for the test."""
    email, tokens = student(versions)
    others = [r["id"] for r in conn.execute("SELECT id FROM users WHERE role = 'admin' AND is_active").fetchall()]
    conn.execute("UPDATE users SET is_active = false WHERE id = ANY(%s)", (others,))
    conn.execute("UPDATE users SET role = 'admin' WHERE id = %s", (tokens["user"]["id"],))
    idp().admin_add_user_to_group(UserPoolId=pool["user_pool_id"], Username=email, GroupName="admins")
    yield email, login(email)
    conn.execute("UPDATE users SET is_active = true WHERE id = ANY(%s)", (others,))


def test_an_admin_promotes_a_student_and_it_is_audited(pool, versions, conn, only_admin):
    _, admin_tokens = only_admin
    email, tokens = student(versions)
    user_id = tokens["user"]["id"]
    status, answer = call(
        admin, "POST", f"/api/admin/users/{user_id}/role/", {"role": "trainer"}, **bearer(admin_tokens["access"])
    )
    assert status == 200, answer
    assert (answer["role"], answer["previous_role"]) == ("trainer", "student")
    assert groups(pool, email) == ["trainers"]
    assert conn.execute("SELECT role FROM users WHERE id = %s", (user_id,)).fetchone()["role"] == "trainer"
    row = conn.execute(
        "SELECT actor_id::text, actor_role, details FROM audit_logs WHERE subject_id = %s AND action = 'ROLE_CHANGE'",
        (user_id,),
    ).fetchone()
    assert (row["actor_id"], row["actor_role"]) == (admin_tokens["user"]["id"], "admin")
    assert row["details"] == {"from": "student", "to": "trainer"}
    # The next token carries the new group.
    relogin = login(email)
    assert call(auth, "GET", "/api/auth/user/", **bearer(relogin["access"]))[1]["role"] == "trainer"


def test_the_last_admin_cannot_demote_themself(pool, only_admin, conn):
    email, admin_tokens = only_admin
    user_id = admin_tokens["user"]["id"]
    status, answer = call(
        admin, "POST", f"/api/admin/users/{user_id}/role/", {"role": "student"}, **bearer(admin_tokens["access"])
    )
    assert status == 409 and answer["error"]["code"] == "last_admin"
    assert groups(pool, email) == ["admins", "students"]
    assert conn.execute("SELECT role FROM users WHERE id = %s", (user_id,)).fetchone()["role"] == "admin"


def test_bad_input(pool, versions, only_admin):
    _, admin_tokens = only_admin
    args = bearer(admin_tokens["access"])
    _, tokens = student(versions)
    path = f"/api/admin/users/{tokens['user']['id']}/role/"
    assert call(admin, "POST", path, {"role": "superuser"}, **args)[0] == 422
    assert call(admin, "POST", path, {"role": "admin", "extra": 1}, **args)[0] == 422
    assert call(admin, "POST", f"/api/admin/users/{uuid.uuid4()}/role/", {"role": "admin"}, **args)[0] == 404
    assert call(admin, "POST", "/api/admin/users/not-a-uuid/role/", {"role": "admin"}, **args)[0] == 404
    assert call(admin, "POST", path, {"role": "admin"})[0] == 401


def test_no_request_a_student_can_make_sets_a_role(pool, versions, conn):
    email, tokens = student(versions)
    user_id = tokens["user"]["id"]
    args = bearer(tokens["access"])
    assert call(admin, "POST", f"/api/admin/users/{user_id}/role/", {"role": "admin"}, **args)[0] == 403
    assert call(auth, "PATCH", "/api/auth/user/", {"role": "admin"}, **args)[0] == 422
    body = {"email": "x" + email, "password": PASSWORD, "name": "S", "accept_privacy": True, **versions}
    assert call(auth, "POST", "/api/auth/registration/", {**body, "role": "admin"})[0] == 422
    # Claims are the only identity: a forged group in a header or the body changes nothing.
    forged = {**args, "headers": {**args["headers"], "x-cognito-groups": "admins"}}
    assert call(admin, "POST", f"/api/admin/users/{user_id}/role/", {"role": "admin"}, **forged)[0] == 403
    assert conn.execute("SELECT role FROM users WHERE id = %s", (user_id,)).fetchone()["role"] == "student"
    assert groups(pool, email) == ["students"]
