"""The auth function through its real handler, against moto's Cognito and the real database."""

from __future__ import annotations

import uuid

import boto3
import pytest

from apranova import mail
from functions.auth.handler import lambda_handler as auth
from local.cognito import is_code_email
from local.moto_stack import mailbox
from tests.integration.auth_support import (
    PASSWORD,
    bearer,
    call,
    idp,
    mailed_code,
    moto_url,
    other_than,
)

pytestmark = pytest.mark.usefixtures("database_url", "pool")


def new_email() -> str:
    return f"s-{uuid.uuid4().hex[:10]}@example.com"


def signup_body(versions, **changes):
    body = {"email": new_email(), "password": PASSWORD, "name": "Ada Lovelace", "accept_privacy": True, **versions}
    body.update(changes)
    return body


def register(versions, **changes):
    body = signup_body(versions, **changes)
    status, answer = call(auth, "POST", "/api/auth/registration/", body, source_ip="203.0.113.7")
    assert status == 201, answer
    return body, answer


def verified_login(versions):
    body, _ = register(versions)
    code = mailed_code(body["email"])
    assert call(auth, "POST", "/api/auth/verify-email/", {"email": body["email"], "code": code})[0] == 200
    status, tokens = call(auth, "POST", "/api/auth/login/", {"email": body["email"], "password": PASSWORD})
    assert status == 200, tokens
    return body, tokens


def cognito_user(pool, email):
    found = idp().list_users(UserPoolId=pool["user_pool_id"], Filter=f'email = "{email}"')["Users"]
    return found[0] if found else None


def audit_actions(conn, user_id):
    rows = conn.execute("SELECT action FROM audit_logs WHERE subject_id = %s ORDER BY id", (user_id,)).fetchall()
    return [r["action"] for r in rows]


# --- registration -------------------------------------------------------------------------------


def test_registration_creates_user_row_consent_audit_and_student_group(pool, versions, conn):
    body, answer = register(versions)
    user_id = answer["id"]
    assert answer["email"] == body["email"] and answer["email_verified"] is False
    row = conn.execute("SELECT * FROM users WHERE id = %s", (user_id,)).fetchone()
    assert (row["role"], row["enrollment_status"], row["email_verified"]) == ("student", "PENDING_PAYMENT", False)
    consent = conn.execute("SELECT * FROM user_consents WHERE user_id = %s", (user_id,)).fetchone()
    assert consent["privacy_policy_version"] == versions["privacy_version"]
    assert consent["terms_version"] == versions["terms_version"]
    assert (str(consent["ip_address"]), consent["user_agent"], consent["source"]) == (
        "203.0.113.7",
        "apranova-tests",
        "SIGNUP",
    )
    assert audit_actions(conn, user_id) == ["SIGNUP"]
    groups = idp().admin_list_groups_for_user(UserPoolId=pool["user_pool_id"], Username=body["email"])["Groups"]
    assert [g["GroupName"] for g in groups] == ["students"]
    assert cognito_user(pool, body["email"])["UserStatus"] == "UNCONFIRMED"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"email": "not-an-email"}, "body.email"),
        ({"accept_privacy": False}, "body.accept_privacy"),
        ({"accept_privacy": None}, "body.accept_privacy"),
        ({"role": "admin"}, "body.role"),
        ({"enrollment_status": "ENROLLED"}, "body.enrollment_status"),
        ({"name": "   "}, "body.name"),
    ],
)
def test_registration_rejects_bad_input_with_422_and_writes_nothing(pool, versions, conn, changes, field):
    body = signup_body(versions, **changes)
    if changes.get("accept_privacy", True) is None:
        del body["accept_privacy"]
    status, answer = call(auth, "POST", "/api/auth/registration/", body)
    assert status == 422, answer
    assert field in [d["field"] for d in answer["error"]["details"]]
    assert conn.execute("SELECT count(*) AS n FROM users WHERE email = %s", (body["email"],)).fetchone()["n"] == 0
    assert cognito_user(pool, body["email"]) is None


@pytest.mark.parametrize(
    ("password", "rule"),
    [
        ("Sh0rt!pass", "password_too_short"),
        ("all-lower-case-123", "password_no_uppercase"),
        ("ALL-UPPER-CASE-123", "password_no_lowercase"),
        ("No-Digits-At-All!", "password_no_digit"),
        ("NoSymbolsHere1234", "password_no_symbol"),
    ],
)
def test_a_weak_password_is_422_naming_the_rule(pool, versions, password, rule):
    body = signup_body(versions, password=password)
    status, answer = call(auth, "POST", "/api/auth/registration/", body)
    assert status == 422
    assert rule in answer["error"]["details"][0]["message"]
    assert password not in str(answer)
    assert cognito_user(pool, body["email"]) is None


def test_stale_consent_versions_are_409_with_the_current_ones(pool, versions, conn):
    body = signup_body(versions, privacy_version="0.1")
    status, answer = call(auth, "POST", "/api/auth/registration/", body)
    assert status == 409 and answer["error"]["code"] == "consent_outdated"
    assert {d["field"]: d["current"] for d in answer["error"]["details"]} == {
        "body.privacy_version": versions["privacy_version"],
        "body.terms_version": versions["terms_version"],
    }
    assert cognito_user(pool, body["email"]) is None


@pytest.fixture
def ses(monkeypatch):
    """SES on the module's moto server, beside its Cognito (an in-process mock_aws would take the
    Cognito calls too), with the sender verified. moto keeps what it accepted in this process."""
    from functions.auth import handler

    monkeypatch.setenv("AWS_ENDPOINT_URL_SESV2", moto_url())
    monkeypatch.setenv("EMAIL_SENDER", "no-reply@apranova.test")
    monkeypatch.setenv("SPA_ORIGIN", "https://app.apranova.test")
    monkeypatch.delenv("EMAIL_CONFIGURATION_SET", raising=False)
    handler.settings.cache_clear()
    mail.reset()
    boto3.client("ses", endpoint_url=moto_url(), region_name="us-east-1").verify_email_identity(
        EmailAddress="no-reply@apranova.test"
    )
    yield
    handler.settings.cache_clear()
    mail.reset()


def emails_to(address):
    return [m for m in mailbox() if address.lower() in [t.lower() for t in m["to"]]]


def test_an_address_with_an_account_gets_the_same_201_and_its_owner_an_email(pool, versions, conn, ses):
    body, first = register(versions, name="Ada Lovelace")
    again = signup_body(versions, email=body["email"].upper(), name="Mallory https://evil.example/x")
    status, answer = call(auth, "POST", "/api/auth/registration/", again)
    assert status == 201, answer
    # The same answer a new address gets; the id is a fresh one that names no account.
    assert set(answer) == set(first) and answer["detail"] == first["detail"]
    assert answer["email_verified"] is False and answer["id"] != first["id"]
    assert conn.execute("SELECT count(*) AS n FROM users WHERE id = %s", (answer["id"],)).fetchone()["n"] == 0
    assert conn.execute("SELECT name FROM users WHERE id = %s", (first["id"],)).fetchone()["name"] == "Ada Lovelace"
    (email,) = [m for m in emails_to(body["email"]) if not is_code_email(m)]  # besides Cognito's code
    assert "tried to create an ApraNova account" in email["subject"]
    # moto keeps the HTML part of what SES accepted.
    assert '<a href="https://app.apranova.test/login">' in email["body_html"]
    # Nothing the second sign-up typed reaches the owner.
    assert "Mallory" not in email["body_html"] and "evil" not in email["body_html"]


def test_an_address_only_cognito_knows_gets_the_same_201_and_no_row(pool, versions, conn, ses):
    # A Cognito user without a row (created behind the API's back): Cognito says the name is taken.
    email = new_email()
    idp().admin_create_user(UserPoolId=pool["user_pool_id"], Username=email, MessageAction="SUPPRESS")
    status, answer = call(auth, "POST", "/api/auth/registration/", signup_body(versions, email=email))
    assert status == 201 and answer["detail"] == "Check your email to finish signing up."
    assert conn.execute("SELECT count(*) AS n FROM users WHERE email = %s", (email,)).fetchone()["n"] == 0
    assert len(emails_to(email)) == 1


@pytest.mark.parametrize("name", ["Ada\r\n\r\nURGENT", "Ada\nLovelace", "Ada\tLovelace", "Ada\u202eecalevol", "A\x7f"])
def test_a_name_with_control_characters_is_422_at_sign_up_and_on_the_profile(pool, versions, conn, name):
    body = signup_body(versions, name=name)
    status, answer = call(auth, "POST", "/api/auth/registration/", body)
    assert status == 422 and {"field": "body.name", "code": "plain_text"} in [
        {"field": d["field"], "code": d["code"]} for d in answer["error"]["details"]
    ]
    assert conn.execute("SELECT count(*) AS n FROM users WHERE email = %s", (body["email"],)).fetchone()["n"] == 0


def test_consent_must_be_the_json_value_true(pool, versions, conn):
    for value in (1, 1.0, "true"):
        body = signup_body(versions, accept_privacy=value)
        status, answer = call(auth, "POST", "/api/auth/registration/", body)
        assert status == 422 and "body.accept_privacy" in [d["field"] for d in answer["error"]["details"]], value
        assert cognito_user(pool, body["email"]) is None


@pytest.fixture
def failing_consent_insert(conn):
    # A real database failure in the middle of the registration transaction.
    conn.execute(
        """
        CREATE FUNCTION test_fail_consent() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN IF NEW.user_agent = 'fail-this-insert' THEN RAISE EXCEPTION 'boom'; END IF; RETURN NEW; END $$;
        CREATE TRIGGER test_fail_consent BEFORE INSERT ON user_consents
            FOR EACH ROW EXECUTE FUNCTION test_fail_consent();
        """
    )
    yield
    conn.execute("DROP TRIGGER test_fail_consent ON user_consents; DROP FUNCTION test_fail_consent();")


def test_when_the_database_fails_the_cognito_user_is_removed(pool, versions, conn, failing_consent_insert):
    body = signup_body(versions)
    status, answer = call(auth, "POST", "/api/auth/registration/", body, headers={"user-agent": "fail-this-insert"})
    assert status == 500 and answer["error"]["code"] == "internal_error"
    assert conn.execute("SELECT count(*) AS n FROM users WHERE email = %s", (body["email"],)).fetchone()["n"] == 0
    assert cognito_user(pool, body["email"]) is None


# --- verification -------------------------------------------------------------------------------


def test_verify_email_confirms_cognito_and_the_row(pool, versions, conn):
    body, answer = register(versions)
    code = mailed_code(body["email"])
    status, result = call(auth, "POST", "/api/auth/verify-email/", {"email": body["email"], "code": code})
    assert status == 200, result
    assert conn.execute("SELECT email_verified FROM users WHERE id = %s", (answer["id"],)).fetchone()["email_verified"]
    assert cognito_user(pool, body["email"])["UserStatus"] == "CONFIRMED"


def test_verify_email_bad_input(pool):
    assert call(auth, "POST", "/api/auth/verify-email/", {"email": "x@example.com"})[0] == 422
    status, answer = call(auth, "POST", "/api/auth/verify-email/", {"email": new_email(), "code": "1"})
    assert status == 400 and answer["error"]["code"] == "invalid_code"


def test_verify_email_answers_alike_for_confirmed_and_unknown_addresses(pool, versions):
    body, _ = verified_login(versions)
    confirmed = call(auth, "POST", "/api/auth/verify-email/", {"email": body["email"], "code": "123456"})
    unknown = call(auth, "POST", "/api/auth/verify-email/", {"email": new_email(), "code": "123456"})
    assert confirmed == unknown
    assert confirmed[0] == 400 and confirmed[1]["error"]["code"] == "invalid_code"


def test_resend_verification_answers_the_same_for_unknown_emails(pool, versions):
    body, _ = register(versions)
    known = call(auth, "POST", "/api/auth/resend-verification/", {"email": body["email"]})
    unknown = call(auth, "POST", "/api/auth/resend-verification/", {"email": new_email()})
    assert known == unknown and known[0] == 202
    assert call(auth, "POST", "/api/auth/resend-verification/", {"email": "nope"})[0] == 422


# --- login, refresh, logout ---------------------------------------------------------------------


def test_login_returns_tokens_and_profile_and_is_audited(pool, versions, conn):
    body, tokens = verified_login(versions)
    assert set(tokens) == {"access", "refresh", "id_token", "expires_in", "user"}
    user = tokens["user"]
    assert (user["email"], user["role"], user["enrollment_status"]) == (body["email"], "student", "PENDING_PAYMENT")
    row = conn.execute("SELECT last_login_at FROM users WHERE id = %s", (user["id"],)).fetchone()
    assert row["last_login_at"] is not None
    assert audit_actions(conn, user["id"]) == ["SIGNUP", "EMAIL_VERIFIED", "LOGIN"]


def test_wrong_password_and_unknown_email_give_the_same_401(pool, versions, conn):
    body, tokens = verified_login(versions)
    wrong = call(auth, "POST", "/api/auth/login/", {"email": body["email"], "password": "Wrong-Passw0rd!"})
    unknown = call(auth, "POST", "/api/auth/login/", {"email": new_email(), "password": "Wrong-Passw0rd!"})
    assert wrong == unknown
    assert wrong[0] == 401 and wrong[1]["error"]["code"] == "invalid_credentials"
    assert audit_actions(conn, tokens["user"]["id"])[-1] == "LOGIN_FAILED"


def test_an_unverified_account_is_403_only_with_the_right_password(pool, versions):
    body, _ = register(versions)
    status, answer = call(auth, "POST", "/api/auth/login/", {"email": body["email"], "password": PASSWORD})
    assert status == 403 and answer["error"]["code"] == "email_not_verified"
    wrong = call(auth, "POST", "/api/auth/login/", {"email": body["email"], "password": "Wrong-Passw0rd!"})
    assert wrong[0] == 401


def test_login_bad_input(pool):
    assert call(auth, "POST", "/api/auth/login/", {"email": "a@example.com"})[0] == 422
    assert (
        call(auth, "POST", "/api/auth/login/", {"email": "a@example.com", "password": "x", "role": "admin"})[0] == 422
    )


def test_refresh_gives_a_new_access_token_and_echoes_the_refresh(pool, versions):
    _, tokens = verified_login(versions)
    status, answer = call(auth, "POST", "/api/auth/token/refresh/", {"refresh": tokens["refresh"]})
    assert status == 200, answer
    assert set(answer) == {"access", "refresh", "expires_in"}
    assert answer["refresh"] == tokens["refresh"] and answer["access"]
    status, answer = call(auth, "POST", "/api/auth/token/refresh/", {"refresh": "garbage"})
    assert status == 401 and answer["error"]["code"] == "token_not_valid"
    # No token in the body and no cookie (browsers send theirs as the HttpOnly cookie).
    assert call(auth, "POST", "/api/auth/token/refresh/", {})[0] == 401


def test_after_logout_the_refresh_token_no_longer_works(pool, versions, conn):
    _, tokens = verified_login(versions)
    status, answer = call(auth, "POST", "/api/auth/logout/", {"refresh": tokens["refresh"]}, **bearer(tokens["access"]))
    assert status == 200, answer
    assert call(auth, "POST", "/api/auth/token/refresh/", {"refresh": tokens["refresh"]})[0] == 401
    assert audit_actions(conn, tokens["user"]["id"])[-1] == "LOGOUT"


def test_logout_needs_a_token():
    assert call(auth, "POST", "/api/auth/logout/", {})[0] == 401


# --- passwords ----------------------------------------------------------------------------------


def test_password_reset_answers_the_same_for_unknown_emails_and_the_code_sets_a_new_password(pool, versions):
    body, _ = verified_login(versions)
    known = call(auth, "POST", "/api/auth/password/reset/", {"email": body["email"]})
    unknown = call(auth, "POST", "/api/auth/password/reset/", {"email": new_email()})
    assert known == unknown and known[0] == 202
    code = mailed_code(body["email"])  # the reset code Cognito mailed
    new_password = "Another-Passw0rd!"
    wrong = {"email": body["email"], "code": other_than(code), "new_password": new_password}
    status, answer = call(auth, "POST", "/api/auth/password/reset/confirm/", wrong)
    assert status == 400 and answer["error"]["code"] == "invalid_code"
    weak = {"email": body["email"], "code": code, "new_password": "weak"}
    assert call(auth, "POST", "/api/auth/password/reset/confirm/", weak)[0] == 422
    good = {"email": body["email"], "code": code, "new_password": new_password}
    assert call(auth, "POST", "/api/auth/password/reset/confirm/", good)[0] == 200
    assert call(auth, "POST", "/api/auth/login/", {"email": body["email"], "password": new_password})[0] == 200
    assert call(auth, "POST", "/api/auth/login/", {"email": body["email"], "password": PASSWORD})[0] == 401


def test_password_change_needs_the_old_password_and_is_audited(pool, versions, conn):
    body, tokens = verified_login(versions)
    auth_args = bearer(tokens["access"])
    new_password = "Changed-Passw0rd!"
    status, answer = call(
        auth,
        "POST",
        "/api/auth/password/change/",
        {"old_password": "Not-The-Passw0rd!", "new_password": new_password},
        **auth_args,
    )
    assert status == 400 and answer["error"]["code"] == "wrong_password"
    weak = {"old_password": PASSWORD, "new_password": "short"}
    assert call(auth, "POST", "/api/auth/password/change/", weak, **auth_args)[0] == 422
    good = {"old_password": PASSWORD, "new_password": new_password}
    assert call(auth, "POST", "/api/auth/password/change/", good, **auth_args)[0] == 200
    assert audit_actions(conn, tokens["user"]["id"])[-1] == "PASSWORD_CHANGE"
    assert call(auth, "POST", "/api/auth/login/", {"email": body["email"], "password": new_password})[0] == 200
    assert call(auth, "POST", "/api/auth/password/change/", good)[0] == 401


# --- profile ------------------------------------------------------------------------------------


def test_profile_has_the_contract_shape(pool, versions):
    body, tokens = verified_login(versions)
    status, profile = call(auth, "GET", "/api/auth/user/", **bearer(tokens["access"]))
    assert status == 200
    assert profile == {
        "id": tokens["user"]["id"],
        "email": body["email"],
        "name": "Ada Lovelace",
        "role": "student",
        "track": None,
        "enrollment_status": "PENDING_PAYMENT",
        "tools_provisioned": False,
        "provisioning_status": "NOT_STARTED",
        "privacy_accepted": True,
        "consent": {**versions, "current": True},
        "deletion_scheduled_for": None,
    }
    assert call(auth, "GET", "/api/auth/user/")[0] == 401


def test_patch_changes_the_name_only(pool, versions, conn):
    _, tokens = verified_login(versions)
    auth_args = bearer(tokens["access"])
    status, profile = call(auth, "PATCH", "/api/auth/user/", {"name": "Ada King"}, **auth_args)
    assert status == 200 and profile["name"] == "Ada King"
    for field, value in (("role", "admin"), ("email", "x@example.com"), ("enrollment_status", "ENROLLED")):
        status, answer = call(auth, "PATCH", "/api/auth/user/", {"name": "X", field: value}, **auth_args)
        assert status == 422 and f"body.{field}" in [d["field"] for d in answer["error"]["details"]]
    row = conn.execute("SELECT name, role, enrollment_status FROM users WHERE id = %s", (tokens["user"]["id"],))
    assert tuple(row.fetchone().values()) == ("Ada King", "student", "PENDING_PAYMENT")
