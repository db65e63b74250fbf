"""The right to erasure's routes through the compliance function's real handler: accounts signed
up, verified and logged in through the auth function against moto's Cognito (server), SES in moto
(in-process) read back, the real database. The purge itself is tested in tests/workflow/test_purge.py."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import EndpointConnectionError, ReadTimeoutError
from moto import mock_aws

from apranova import cognito, mail
from apranova.errors import ConfigurationError
from functions.auth.handler import lambda_handler as auth
from functions.compliance import settings as erasure_config
from functions.compliance.erasure.purge import repository as purge_repository
from functions.compliance.handler import lambda_handler as compliance
from local.cognito import is_code_email
from local.events import LambdaContext, http_api_event
from local.moto_stack import mailbox
from tests.integration.auth_support import (
    PASSWORD,
    bearer,
    call,
    mailed_code,
    use_pool,
)

SENDER = "privacy@apranova.test"
SPA = "http://spa.erasure.test"
DELETE = "/api/compliance/delete-account/"
CANCEL = "/api/compliance/cancel-deletion/"


@pytest.fixture(scope="module", autouse=True)
def aws(database_url: str) -> Iterator[dict[str, str]]:
    """SES in process (mock_aws resets every moto backend when it starts: before the pool)."""
    env = {"EMAIL_SENDER": SENDER, "SPA_ORIGIN": SPA, "DELETION_GRACE_DAYS": ""}
    try:
        with pytest.MonkeyPatch.context() as mp, mock_aws():
            for key, value in env.items():
                mp.setenv(key, value)
            boto3.client("ses", region_name="us-east-1").verify_email_identity(EmailAddress=SENDER)
            mail.reset()
            erasure_config.reset()
            yield from use_pool()
    finally:
        mail.reset()
        erasure_config.reset()
        cognito.reset()


@pytest.fixture
def person(versions) -> dict:
    """A verified, logged-in student: ``{email, name, id, tokens}``."""
    email = f"erase-{uuid.uuid4().hex[:10]}@example.com"
    name = f"Erin {uuid.uuid4().hex[:6]}"
    body = {"email": email, "password": PASSWORD, "name": name, "accept_privacy": True, **versions}
    assert call(auth, "POST", "/api/auth/registration/", body)[0] == 201
    assert call(auth, "POST", "/api/auth/verify-email/", {"email": email, "code": mailed_code(email)})[0] == 200
    status, tokens = call(auth, "POST", "/api/auth/login/", {"email": email, "password": PASSWORD})
    assert status == 200, tokens
    return {"email": email, "name": name, "id": tokens["user"]["id"], "tokens": tokens}


def as_person(person: dict, **extra) -> dict:
    return {**bearer(person["tokens"]["access"]), "source_ip": "198.51.100.23", **extra}


def requests_of(conn, user_id: str) -> list[dict]:
    return conn.execute(
        "SELECT * FROM deletion_requests WHERE user_id = %s ORDER BY requested_at", (user_id,)
    ).fetchall()


def audit_rows(conn, user_id: str, action: str) -> list[dict]:
    return conn.execute(
        "SELECT * FROM audit_logs WHERE subject_id = %s AND action = %s ORDER BY id", (user_id, action)
    ).fetchall()


def emails_to(address: str) -> list[dict]:
    return [m for m in mailbox() if address in m["to"] and not is_code_email(m)]  # ours, not Cognito's


def refresh_works(person: dict) -> bool:
    status, _ = call(auth, "POST", "/api/auth/token/refresh/", {"refresh": person["tokens"]["refresh"]})
    return status == 200


# --- delete-account -----------------------------------------------------------------------------------


def test_delete_account_schedules_audits_signs_out_everywhere_and_emails(person, conn):
    before = datetime.now(UTC)
    status, answer = call(compliance, "POST", DELETE, {"password": PASSWORD, "reason": "  moving on  "},
                          **as_person(person))  # fmt: skip
    assert status == 202, answer
    assert set(answer) == {"id", "status", "scheduled_for"} and answer["status"] == "SCHEDULED"
    scheduled_for = datetime.fromisoformat(answer["scheduled_for"])
    assert before + timedelta(days=30) - timedelta(minutes=1) <= scheduled_for <= datetime.now(UTC) + timedelta(days=30)

    (row,) = requests_of(conn, person["id"])
    assert (str(row["id"]), row["status"], row["reason"]) == (answer["id"], "SCHEDULED", "moving on")
    assert row["completed_steps"] == [] and row["subject_ref"] is None
    (audit,) = audit_rows(conn, person["id"], "DELETION_REQUESTED")
    assert (str(audit["actor_id"]), audit["actor_role"], audit["resource_id"]) == (
        person["id"],
        "student",
        answer["id"],
    )
    assert (str(audit["ip_address"]), audit["user_agent"]) == ("198.51.100.23", "apranova-tests")
    assert audit["details"]["grace_days"] == 30
    assert PASSWORD not in str(audit["details"])

    # Signed out on every device: the access token is refused on the next request, the refresh
    # token Cognito issued at login no longer works...
    status, answer = call(auth, "GET", "/api/auth/user/", **as_person(person))
    assert status == 401 and answer["error"]["code"] == "session_ended"
    assert not refresh_works(person)
    # ...and logging in again does, which is how the person reaches the cancel.
    assert call(auth, "POST", "/api/auth/login/", {"email": person["email"], "password": PASSWORD})[0] == 200

    (email,) = emails_to(person["email"])
    body = email["body_html"] or email["body_text"]
    assert "scheduled for deletion" in email["subject"]
    assert scheduled_for.strftime("%d %B %Y") in body and SPA in body
    assert PASSWORD not in body and "token" not in body.lower()


def test_a_wrong_password_is_403_and_writes_nothing(person, conn):
    status, answer = call(compliance, "POST", DELETE, {"password": "Wrong-Passw0rd!"}, **as_person(person))
    assert status == 403 and answer["error"]["code"] == "wrong_password"
    assert "Wrong-Passw0rd!" not in str(answer)
    assert requests_of(conn, person["id"]) == []
    assert audit_rows(conn, person["id"], "DELETION_REQUESTED") == []
    assert refresh_works(person)  # not signed out
    assert emails_to(person["email"]) == []


def test_a_second_request_is_409_and_keeps_the_first(person, conn):
    first = call(compliance, "POST", DELETE, {"password": PASSWORD}, **as_person(person))
    assert first[0] == 202
    # The request ended every session: a second one comes from a new login.
    relogin = call(auth, "POST", "/api/auth/login/", {"email": person["email"], "password": PASSWORD})[1]
    status, answer = call(compliance, "POST", DELETE, {"password": PASSWORD}, **bearer(relogin["access"]))
    assert status == 409 and answer["error"]["code"] == "deletion_already_requested"
    assert answer["error"]["details"] == [{"id": first[1]["id"], "status": "SCHEDULED"}]
    assert [str(r["id"]) for r in requests_of(conn, person["id"])] == [first[1]["id"]]
    assert len(audit_rows(conn, person["id"], "DELETION_REQUESTED")) == 1
    assert len(emails_to(person["email"])) == 1


def test_the_grace_period_follows_the_user_data_retention_policy(person, conn):
    policy = conn.execute("SELECT * FROM data_retention_policies WHERE resource_type = 'USER_DATA'").fetchone()
    conn.execute("UPDATE data_retention_policies SET retention_days = 12 WHERE resource_type = 'USER_DATA'")
    try:
        status, answer = call(compliance, "POST", DELETE, {"password": PASSWORD}, **as_person(person))
    finally:
        conn.execute(
            "UPDATE data_retention_policies SET retention_days = %s WHERE resource_type = 'USER_DATA'",
            (policy["retention_days"],),
        )
    assert status == 202, answer
    days = (datetime.fromisoformat(answer["scheduled_for"]) - datetime.now(UTC)).total_seconds() / 86400
    assert 11.9 < days <= 12


def test_without_an_active_user_data_policy_the_setting_decides(person, conn, monkeypatch):
    monkeypatch.setenv("DELETION_GRACE_DAYS", "9")
    erasure_config.reset()
    conn.execute("UPDATE data_retention_policies SET is_active = false WHERE resource_type = 'USER_DATA'")
    try:
        status, answer = call(compliance, "POST", DELETE, {"password": PASSWORD}, **as_person(person))
    finally:
        conn.execute("UPDATE data_retention_policies SET is_active = true WHERE resource_type = 'USER_DATA'")
        monkeypatch.delenv("DELETION_GRACE_DAYS")
        erasure_config.reset()
    assert status == 202, answer
    days = (datetime.fromisoformat(answer["scheduled_for"]) - datetime.now(UTC)).total_seconds() / 86400
    assert 8.9 < days <= 9


def test_the_grace_period_is_capped_at_90_days_whatever_the_policy_says(person, conn):
    """A USER_DATA row above the cap (set before the cap existed, or by hand: the admin route refuses
    it) must not postpone the erasure: the grace period is at most 90 days."""
    policy = conn.execute("SELECT * FROM data_retention_policies WHERE resource_type = 'USER_DATA'").fetchone()
    conn.execute("UPDATE data_retention_policies SET retention_days = 36500 WHERE resource_type = 'USER_DATA'")
    try:
        status, answer = call(compliance, "POST", DELETE, {"password": PASSWORD}, **as_person(person))
    finally:
        conn.execute(
            "UPDATE data_retention_policies SET retention_days = %s WHERE resource_type = 'USER_DATA'",
            (policy["retention_days"],),
        )
    assert status == 202, answer
    days = (datetime.fromisoformat(answer["scheduled_for"]) - datetime.now(UTC)).total_seconds() / 86400
    assert 89.9 < days <= 90
    (audit,) = audit_rows(conn, person["id"], "DELETION_REQUESTED")
    assert audit["details"]["grace_days"] == 90


def test_a_grace_period_setting_above_the_cap_is_a_configuration_error(monkeypatch):
    monkeypatch.setenv("DELETION_GRACE_DAYS", "91")
    erasure_config.reset()
    try:
        with pytest.raises(ConfigurationError, match="DELETION_GRACE_DAYS .*less than or equal to 90"):
            erasure_config.erasure_settings()
    finally:
        monkeypatch.delenv("DELETION_GRACE_DAYS")
        erasure_config.reset()


# --- Cognito unavailable ------------------------------------------------------------------------------


def _error_answer(code: str, status: int) -> Any:
    """What Cognito's endpoint would have answered, parsed by the client (botocore raises the
    modelled exception class from it, as from a real answer)."""

    def answer(**_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        http = AWSResponse("https://cognito-idp.us-east-1.amazonaws.com/", status, {}, None)
        return http, {"Error": {"Code": code, "Message": "injected by the test"}, "ResponseMetadata": {}}

    return answer


def _connection_failure(error: Exception) -> Any:
    def answer(**_: Any) -> None:
        raise error

    return answer


FAILURES = {
    "TooManyRequestsException": _error_answer("TooManyRequestsException", 400),
    "LimitExceededException": _error_answer("LimitExceededException", 400),
    "InternalErrorException": _error_answer("InternalErrorException", 500),
    "EndpointConnectionError": _connection_failure(
        EndpointConnectionError(endpoint_url="https://cognito-idp.us-east-1.amazonaws.com/")
    ),
    "ReadTimeoutError": _connection_failure(
        ReadTimeoutError(endpoint_url="https://cognito-idp.us-east-1.amazonaws.com/")
    ),
}


@contextmanager
def cognito_failing(operation: str, failure: Any) -> Iterator[None]:
    """The functions' own (moto) Cognito client, answering ``operation`` with ``failure`` before the
    request leaves it; every other call goes to moto as usual."""
    events = cognito.client().meta.events
    event = f"before-call.cognito-identity-provider.{operation}"
    events.register(event, failure, unique_id="erasure-test-failure")
    try:
        yield
    finally:
        events.unregister(event, unique_id="erasure-test-failure")


def call_with_headers(person: dict, body: Any) -> tuple[int, dict[str, str], Any]:
    event = http_api_event("POST", DELETE, body=json.dumps(body), **as_person(person))
    response = compliance(event, LambdaContext("test"))
    headers = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
    return response["statusCode"], headers, json.loads(response["body"])


@pytest.mark.parametrize("failure", FAILURES)
@pytest.mark.parametrize("operation", ["InitiateAuth", "AdminUserGlobalSignOut"])
def test_cognito_unavailable_is_503_with_retry_after_and_writes_nothing(person, conn, operation, failure):
    with cognito_failing(operation, FAILURES[failure]):
        status, headers, answer = call_with_headers(person, {"password": PASSWORD})
    assert status == 503 and answer["error"]["code"] == "service_unavailable", answer
    assert headers["retry-after"] == "30"
    assert PASSWORD not in str(answer)
    assert requests_of(conn, person["id"]) == []
    assert audit_rows(conn, person["id"], "DELETION_REQUESTED") == []
    assert emails_to(person["email"]) == []
    # Once Cognito answers again, the same request goes through.
    status, answer = call(compliance, "POST", DELETE, {"password": PASSWORD}, **as_person(person))
    assert status == 202, answer
    assert [r["status"] for r in requests_of(conn, person["id"])] == ["SCHEDULED"]


def test_the_persons_own_failed_attempts_are_429(person, conn):
    with cognito_failing("InitiateAuth", _error_answer("TooManyFailedAttemptsException", 400)):
        status, headers, answer = call_with_headers(person, {"password": PASSWORD})
    assert status == 429 and headers["retry-after"] == "60", answer
    assert requests_of(conn, person["id"]) == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "body.password"),
        ({"password": ""}, "body.password"),
        ({"password": PASSWORD, "reason": "x" * 1001}, "body.reason"),
        ({"password": PASSWORD, "reason": "moving\u0000on"}, "body.reason"),  # PostgreSQL text cannot hold NUL
        ({"password": PASSWORD, "user_id": str(uuid.uuid4())}, "body.user_id"),
        ({"password": PASSWORD, "grace_days": 0}, "body.grace_days"),
    ],
)
def test_bad_input_is_422_and_writes_nothing(person, conn, body, field):
    status, answer = call(compliance, "POST", DELETE, body, **as_person(person))
    assert status == 422, answer
    assert field in [d["field"] for d in answer["error"]["details"]]
    assert PASSWORD not in str(answer)
    assert requests_of(conn, person["id"]) == []
    assert refresh_works(person)


def test_malformed_json_is_400(person):
    status, answer = call(compliance, "POST", DELETE, "{not json", **as_person(person))
    assert status == 400 and answer["error"]["code"] == "invalid_json"


@pytest.mark.parametrize("path", [DELETE, CANCEL])
def test_both_routes_need_a_signed_in_caller(path):
    status, answer = call(compliance, "POST", path, {"password": PASSWORD})
    assert status == 401 and answer["error"]["code"] == "not_authenticated"


@pytest.mark.parametrize("path", [DELETE, CANCEL])
def test_an_id_token_is_not_a_session(person, path):
    claims = {**bearer(person["tokens"]["access"])["claims"], "token_use": "id"}
    assert call(compliance, "POST", path, {"password": PASSWORD}, claims=claims)[0] == 401


@pytest.mark.parametrize("path", [DELETE, CANCEL])
def test_a_caller_without_an_account_is_401(path, conn):
    claims = {"sub": str(uuid.uuid4()), "token_use": "access", "cognito:groups": "[students]"}
    status, answer = call(compliance, "POST", path, {"password": PASSWORD}, claims=claims)
    assert status == 401 and answer["error"]["code"] == "session_ended", answer
    assert conn.execute("SELECT count(*) AS n FROM deletion_requests WHERE user_id = %s",
                        (claims["sub"],)).fetchone()["n"] == 0  # fmt: skip


def test_only_the_callers_own_account_is_touched(person, versions, conn):
    """The routes take no account id: another person's scheduled deletion is not theirs to cancel."""
    email = f"other-{uuid.uuid4().hex[:10]}@example.com"
    body = {"email": email, "password": PASSWORD, "name": "Other Person", "accept_privacy": True, **versions}
    assert call(auth, "POST", "/api/auth/registration/", body)[0] == 201
    call(auth, "POST", "/api/auth/verify-email/", {"email": email, "code": mailed_code(email)})
    other = call(auth, "POST", "/api/auth/login/", {"email": email, "password": PASSWORD})[1]
    assert call(compliance, "POST", DELETE, {"password": PASSWORD}, **bearer(other["access"]))[0] == 202
    status, answer = call(compliance, "POST", CANCEL, **as_person(person))
    assert status == 409 and answer["error"]["code"] == "no_deletion_scheduled"
    assert [r["status"] for r in requests_of(conn, other["user"]["id"])] == ["SCHEDULED"]
    # Nor can the other person's password schedule this account's deletion.
    status, answer = call(compliance, "POST", DELETE, {"password": "Another-Passw0rd!"}, **as_person(person))
    assert status == 403


# --- cancel-deletion ----------------------------------------------------------------------------------


def test_cancel_during_the_grace_period_restores_the_account(person, conn):
    scheduled = call(compliance, "POST", DELETE, {"password": PASSWORD}, **as_person(person))[1]
    relogin = call(auth, "POST", "/api/auth/login/", {"email": person["email"], "password": PASSWORD})[1]
    # The profile tells the SPA that a deletion is scheduled, and when (so it can offer the cancel).
    status, profile = call(auth, "GET", "/api/auth/user/", **bearer(relogin["access"]))
    assert status == 200
    assert datetime.fromisoformat(profile["deletion_scheduled_for"]) == datetime.fromisoformat(
        scheduled["scheduled_for"]
    )
    status, answer = call(compliance, "POST", CANCEL, **bearer(relogin["access"]))
    assert status == 200, answer
    assert (answer["id"], answer["status"]) == (scheduled["id"], "CANCELLED") and answer["cancelled_at"]
    (row,) = requests_of(conn, person["id"])
    assert (row["status"], row["cancelled_at"] is not None) == ("CANCELLED", True)
    (audit,) = audit_rows(conn, person["id"], "DELETION_CANCELLED")
    assert (str(audit["actor_id"]), audit["resource_id"]) == (person["id"], scheduled["id"])
    # Everything is as it was: the profile answers, the account row is live, a new request is possible.
    status, profile = call(auth, "GET", "/api/auth/user/", **bearer(relogin["access"]))
    assert status == 200 and profile["email"] == person["email"] and profile["deletion_scheduled_for"] is None
    user = conn.execute("SELECT deleted_at, is_active FROM users WHERE id = %s", (person["id"],)).fetchone()
    assert (user["deleted_at"], user["is_active"]) == (None, True)
    subjects = [m["subject"] for m in reversed(emails_to(person["email"]))]
    assert subjects == [
        "Your ApraNova account is scheduled for deletion",
        "Your ApraNova account deletion was cancelled",
    ]
    assert call(compliance, "POST", DELETE, {"password": PASSWORD}, **bearer(relogin["access"]))[0] == 202


def test_cancel_with_nothing_scheduled_is_409(person, conn):
    status, answer = call(compliance, "POST", CANCEL, **as_person(person))
    assert status == 409 and answer["error"]["code"] == "no_deletion_scheduled"
    assert audit_rows(conn, person["id"], "DELETION_CANCELLED") == []
    assert emails_to(person["email"]) == []


def test_cancel_twice_is_409_the_second_time(person, conn):
    call(compliance, "POST", DELETE, {"password": PASSWORD}, **as_person(person))
    relogin = call(auth, "POST", "/api/auth/login/", {"email": person["email"], "password": PASSWORD})[1]
    assert call(compliance, "POST", CANCEL, **bearer(relogin["access"]))[0] == 200
    status, answer = call(compliance, "POST", CANCEL, **bearer(relogin["access"]))
    assert status == 409 and answer["error"]["code"] == "no_deletion_scheduled"
    assert len(audit_rows(conn, person["id"], "DELETION_CANCELLED")) == 1


@pytest.fixture
def claimed(person, conn) -> Iterator[str]:
    """The person's request, due and claimed by the purge's own code (which then stops); removed
    afterwards so no later purge in the run picks it up."""
    scheduled = call(compliance, "POST", DELETE, {"password": PASSWORD}, **as_person(person))[1]
    conn.execute(
        "UPDATE deletion_requests SET requested_at = now() - interval '31 days',"
        " scheduled_for = now() - interval '1 day' WHERE id = %s",
        (scheduled["id"],),
    )
    assert purge_repository.claim(scheduled["id"], "erased-test-claim") is not None
    yield scheduled["id"]
    conn.execute("DELETE FROM deletion_requests WHERE id = %s", (scheduled["id"],))
    conn.execute("UPDATE users SET deleted_at = NULL WHERE id = %s", (person["id"],))


def test_once_the_purge_has_started_no_session_holds(person, conn, claimed):
    """The purge marks the account deleted: every token of it is refused from then on (401), even
    one Cognito issues until the purge reaches it, so nothing can be cancelled or asked again."""
    assert conn.execute("SELECT deleted_at FROM users WHERE id = %s", (person["id"],)).fetchone()["deleted_at"]
    relogin = call(auth, "POST", "/api/auth/login/", {"email": person["email"], "password": PASSWORD})[1]
    status, answer = call(compliance, "POST", CANCEL, **bearer(relogin["access"]))
    assert status == 401 and answer["error"]["code"] == "session_ended"
    assert [r["status"] for r in requests_of(conn, person["id"])] == ["IN_PROGRESS"]
    assert call(compliance, "POST", DELETE, {"password": PASSWORD}, **bearer(relogin["access"]))[0] == 401
