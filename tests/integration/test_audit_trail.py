"""Every sensitive action of the audited list (``LISTED``), triggered through its real flow, leaves its audit row.

The flows run over real HTTP against the local API (the real handlers behind the JWT check, the
Stripe emulator delivering signed webhooks, moto for Cognito, SSM, SES, S3, Lambda and Step
Functions) on a database of this module's own. The enrollment workflow's rows (ENROLLMENT,
PROVISIONING) come from calling its step handlers in order with the execution's real input (the
state machine the payment started is a stand-in here; tests/workflow runs the synthesized one):
RecordPayment, Enroll, UnlockFirstProject, and RecordProvisioningFailure for a failed run. Tool
provisioners are not run. The export route invokes its worker through moto's Lambda API, which
local.lambda_dispatch hands to the real worker; the daily purge is its Lambda handler, run as the
schedule runs it, against moto and the stand-in deprovision state machine (which moto executes).

Each flow is one test registered with ``@flow(ACTION)``; ``test_every_listed_action_has_a_flow``
fails when an action of ``LISTED`` has none.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import psycopg
import pytest
from moto.core.config import default_user_config
from psycopg.rows import dict_row

from apranova import audit, db
from apranova.audit import AuditAction
from local import lambda_dispatch, moto_stack
from local.events import LambdaContext
from tests.integration.auth_support import PASSWORD, mailed_code, moto_url
from tests.integration.governance_support import fresh_database
from tests.integration.metrics_support import metric_counts
from tests.integration.payments_support import PaymentsStack, start_stack

# The sensitive actions that must leave an audit row (``apranova.audit.AuditAction`` holds them all).
LISTED = {
    "SIGNUP", "LOGIN", "LOGIN_FAILED", "LOGOUT", "PASSWORD_CHANGE", "PROFILE_UPDATE", "CONSENT_ACCEPTED",
    "DATA_EXPORT", "DELETION_REQUESTED", "DELETION_CANCELLED", "ACCOUNT_PURGED", "PAYMENT", "REFUND_REQUESTED",
    "REFUND_DECIDED", "ENROLLMENT", "PROVISIONING", "CREDENTIALS_VIEWED", "SUBMISSION", "REVIEW", "ROLE_CHANGE",
    "TRAINER_ASSIGNED", "ADMIN_ENROLL", "POLICY_PUBLISHED",
}  # fmt: skip

UA = "audit-trail-tests/1.0"
NAME = "Ada Trail"
LOCAL_IP = "127.0.0.1"
SSM_PREFIX = "/apranova/audit-trail"
UPLOADS = "apranova-audit-trail"
EXPORTS = "apranova-audit-trail-exports"
EXPORT_WORKER = "apranova-audit-trail-export-worker"
PURGE = "apranova-compliance-purge"
FLOWS: dict[str, Callable[..., None]] = {}


def flow(action: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    def register(test: Callable[..., None]) -> Callable[..., None]:
        assert action not in FLOWS, f"two flows for {action}"
        FLOWS[action] = test
        return test

    return register


# --- the stack ------------------------------------------------------------------------------------------


@contextmanager
def moto_runs_executions() -> Iterator[None]:
    """moto executes state machines (the stand-in deprovision machine the purge waits for ends
    SUCCEEDED) and hands Lambda invocations to the in-repo handlers (the export worker), as the local
    stack configures it. Both settings are process-wide: put back afterwards."""
    lambda_dispatch.install()
    saved = {key: default_user_config.get(key) for key in moto_stack.MOTO_CONFIG}
    default_user_config.update({key: dict(value) for key, value in moto_stack.MOTO_CONFIG.items()})
    try:
        yield
    finally:
        default_user_config.update(saved)


def _reset_settings() -> None:
    from functions.compliance import settings as compliance_config
    from functions.compliance import settings as erasure_config
    from functions.submissions import config as submissions_config
    from functions.tools import config as tools_config

    tools_config.reset()
    submissions_config.reset()
    compliance_config.reset()
    erasure_config.reset()


@pytest.fixture(scope="module")
def stack(database_url: str, make_database) -> Iterator[PaymentsStack]:
    moto = moto_url()
    s3 = moto_stack.client("s3", moto)
    for bucket in (UPLOADS, EXPORTS):
        s3.create_bucket(Bucket=bucket)
    exports_key = moto_stack.client("kms", moto).create_key(Description="audit-trail exports")["KeyMetadata"]["KeyId"]
    env = {
        "SSM_PREFIX": SSM_PREFIX,
        "STUDENTS_DB_HOST": "students.db.test",
        "UPLOADS_BUCKET": UPLOADS,
        "EXPORTS_BUCKET": EXPORTS,
        "EXPORTS_KMS_KEY_ID": exports_key,
        "EXPORT_FUNCTION_NAME": EXPORT_WORKER,
        # S3 and Lambda only: other tests' in-process mock_aws keeps intercepting the rest.
        "AWS_ENDPOINT_URL_S3": moto,
        "AWS_ENDPOINT_URL_LAMBDA": moto,
        "PURGE_POLL_SECONDS": "0.05",
        "PURGE_WORKFLOW_WAIT_SECONDS": "30",
    }
    try:
        with pytest.MonkeyPatch.context() as mp:
            for key, value in env.items():
                mp.setenv(key, value)
            _reset_settings()
            with moto_runs_executions(), fresh_database(make_database, "apranova_trail") as url:
                moto_stack.register_function(moto, EXPORT_WORKER, "functions.compliance.export.worker.lambda_handler")
                yield from start_stack(url)
    finally:
        _reset_settings()


def api(stack: PaymentsStack, method: str, path: str, who: dict[str, str] | None = None, **kwargs: Any) -> Any:
    return stack.call(method, path, who, headers={"User-Agent": UA}, **kwargs)


def in_force(stack: PaymentsStack) -> dict[str, str]:
    return stack.row("SELECT privacy_version_in_force() AS privacy_version, terms_version_in_force() AS terms_version")


def register(stack: PaymentsStack) -> dict[str, str]:
    """A student signed up, verified and logged in, each through the API."""
    email = f"trail-{uuid.uuid4().hex[:10]}@example.com"
    versions = in_force(stack)
    body = {"email": email, "password": PASSWORD, "name": NAME, "accept_privacy": True, **versions}
    registered = api(stack, "POST", "/api/auth/registration/", json=body)
    assert registered.status_code == 201, registered.text
    verified = api(stack, "POST", "/api/auth/verify-email/", json={"email": email, "code": mailed_code(email)})
    assert verified.status_code == 200
    login = api(stack, "POST", "/api/auth/login/", json={"email": email, "password": PASSWORD})
    assert login.status_code == 200, login.text
    tokens = login.json()
    return {"email": email, "id": registered.json()["id"], "access": tokens["access"], "refresh": tokens["refresh"]}


def staff(stack: PaymentsStack, role: str, track: str | None = None) -> dict[str, str]:
    person = stack.staff(role)
    if track:
        stack.row("UPDATE users SET track_id = (SELECT id FROM tracks WHERE code = %s) WHERE id = %s RETURNING id",
                  track, person["id"])  # fmt: skip
    return person


def enrolled(stack: PaymentsStack, track: str = "DP") -> dict[str, str]:
    """A registered student enrolled as the enrollment workflow leaves them (project 1 unlocked)."""
    student = register(stack)
    stack.row(
        "UPDATE users SET track_id = (SELECT id FROM tracks WHERE code = %s), enrollment_status = 'ENROLLED'"
        " WHERE id = %s RETURNING id",
        track,
        student["id"],
    )
    stack.row(
        "INSERT INTO student_progress (student_id, project_id, status, unlocked_at)"
        " SELECT %s, p.id, 'UNLOCKED', now() FROM projects p JOIN tracks t ON t.id = p.track_id"
        " WHERE t.code = %s AND p.number = 1 RETURNING project_id",
        student["id"],
        track,
    )
    return student


def paid(stack: PaymentsStack, track: str = "DP") -> tuple[dict[str, str], str]:
    """A student who checked out and paid (the webhook recorded it and started the enrollment)."""
    student = register(stack)
    created = api(stack, "POST", "/api/payments/create-checkout-session/", student, json={"track": track})
    assert created.status_code == 201, created.text
    payment_id = created.json()["payment_id"]
    delivered = stack.pay(created.json()["session_id"])
    assert all(d["status"] == 200 for d in delivered["deliveries"]), delivered
    return student, payment_id


def rows(stack: PaymentsStack, action: str, subject_id: str | None) -> list[dict[str, Any]]:
    return stack.rows(
        "SELECT actor_id::text AS actor_id, actor_role, subject_id::text AS subject_id, resource_type, resource_id,"
        " details, host(ip_address) AS ip, user_agent, request_id, occurred_at FROM audit_logs"
        " WHERE action = %s AND subject_id IS NOT DISTINCT FROM %s::uuid ORDER BY id",
        action,
        subject_id,
    )


def found(
    stack: PaymentsStack,
    action: str,
    subject_id: str | None,
    *,
    actor_id: str | None,
    resource: tuple[str | None, str | None],
    from_request: bool = True,
    **details: Any,
) -> dict[str, Any]:
    """The one row of ``action`` about ``subject_id`` whose details include ``details``; its
    actor, resource and, for an action a request caused, the request's origin."""
    matching = [r for r in rows(stack, action, subject_id) if details.items() <= r["details"].items()]
    assert len(matching) == 1, (action, matching)
    row = matching[0]
    assert row["actor_id"] == actor_id, row
    assert (row["resource_type"], row["resource_id"]) == resource, row
    if from_request:
        assert (row["ip"], row["user_agent"]) == (LOCAL_IP, UA), row
        assert row["request_id"], row
    assert row["occurred_at"] > datetime.now(UTC) - timedelta(minutes=5)
    return row


# --- the list -----------------------------------------------------------------------------------------------


def test_every_listed_action_has_a_flow() -> None:
    assert LISTED <= {a.value for a in AuditAction}
    assert set(FLOWS) == LISTED, sorted(LISTED ^ set(FLOWS))


def test_an_unknown_action_is_refused_and_writes_nothing(stack) -> None:
    with psycopg.connect(stack.database_url, autocommit=True, row_factory=dict_row) as conn:
        before = conn.execute("SELECT count(*) AS n FROM audit_logs").fetchone()["n"]
        with conn.cursor() as cur, pytest.raises(ValueError, match="DB_CREDENTIALS_VIEWED"):
            audit.record(cur, "DB_CREDENTIALS_VIEWED", subject_id=str(uuid.uuid4()))
        assert conn.execute("SELECT count(*) AS n FROM audit_logs").fetchone()["n"] == before


# --- accounts and sessions ----------------------------------------------------------------------------------


@flow("SIGNUP")
def test_signup(stack) -> None:
    ada = register(stack)
    row = found(stack, "SIGNUP", ada["id"], actor_id=ada["id"], resource=("user", ada["id"]))
    assert set(row["details"]) == {"privacy_version", "terms_version"}


@flow("LOGIN")
def test_login(stack) -> None:
    ada = register(stack)
    found(stack, "LOGIN", ada["id"], actor_id=ada["id"], resource=("user", ada["id"]))


@flow("LOGIN_FAILED")
def test_login_failed(stack) -> None:
    ada = register(stack)
    wrong = api(stack, "POST", "/api/auth/login/", json={"email": ada["email"], "password": PASSWORD + "x"})
    assert wrong.status_code == 401
    row = found(stack, "LOGIN_FAILED", ada["id"], actor_id=None, resource=("user", ada["id"]))
    assert PASSWORD not in json.dumps(row, default=str)


@flow("LOGOUT")
def test_logout(stack) -> None:
    ada = register(stack)
    assert api(stack, "POST", "/api/auth/logout/", ada, json={"refresh": ada["refresh"]}).status_code in (200, 204)
    row = found(stack, "LOGOUT", ada["id"], actor_id=ada["id"], resource=("user", ada["id"]))
    assert row["actor_role"] == "student"


@flow("PASSWORD_CHANGE")
def test_password_change(stack) -> None:
    ada = register(stack)
    new_password = "An0ther-Horse-Battery!"
    changed = api(
        stack, "POST", "/api/auth/password/change/", ada, json={"old_password": PASSWORD, "new_password": new_password}
    )
    assert changed.status_code == 200, changed.text
    row = found(stack, "PASSWORD_CHANGE", ada["id"], actor_id=ada["id"], resource=("user", ada["id"]))
    assert PASSWORD not in json.dumps(row, default=str) and new_password not in json.dumps(row, default=str)


@flow("PROFILE_UPDATE")
def test_profile_update(stack) -> None:
    ada = register(stack)
    assert api(stack, "PATCH", "/api/auth/user/", ada, json={"name": "Ada King"}).status_code == 200
    row = found(stack, "PROFILE_UPDATE", ada["id"], actor_id=ada["id"], resource=("user", ada["id"]))
    assert row["details"] == {"fields": ["name"]}


# --- consent and policies -----------------------------------------------------------------------------------


@flow("CONSENT_ACCEPTED")
def test_consent_accepted(stack) -> None:
    ada = register(stack)
    # As if a new version had come into force since the sign-up: no consent to the current ones.
    stack.row("DELETE FROM user_consents WHERE user_id = %s RETURNING id", ada["id"])
    versions = in_force(stack)
    accepted = api(stack, "POST", "/api/compliance/accept-consent/", ada, json=versions)
    assert accepted.status_code == 201, accepted.text
    row = found(
        stack, "CONSENT_ACCEPTED", ada["id"], actor_id=ada["id"], resource=("user_consent", str(accepted.json()["id"]))
    )
    assert row["details"] == versions


@flow("POLICY_PUBLISHED")
def test_policy_published(stack) -> None:
    admin = staff(stack, "admin")
    # For a date far ahead (within the 366 days a version may be scheduled): the versions the other
    # flows accept stay in force.
    body = {
        "kind": "terms",
        "version": "90.0",
        "content": "Terms, far in the future.",
        "summary": "A scheduled change.",
        "effective_at": (datetime.now(UTC) + timedelta(days=300)).isoformat(),
    }
    published = api(stack, "POST", "/api/admin/policies/", admin, json=body)
    assert published.status_code == 201, published.text
    row = found(stack, "POLICY_PUBLISHED", None, actor_id=admin["id"], resource=("terms_of_service", "90.0"))
    assert row["actor_role"] == "admin" and row["details"]["in_force"] is False


# --- the rights of access and erasure -------------------------------------------------------------------------


@flow("DATA_EXPORT")
def test_data_export(stack) -> None:
    ada = register(stack)
    started = api(stack, "POST", "/api/compliance/export-data/", ada)
    assert started.status_code == 202, started.text
    export_id = started.json()["id"]
    found(stack, "DATA_EXPORT", ada["id"], actor_id=ada["id"], resource=("data_export", export_id), stage="requested")
    # The worker Lambda the route invoked builds the archive and records it: no caller.
    built = stack.wait_for(
        "SELECT status FROM data_export_requests WHERE id = %s AND status <> 'PENDING'", export_id, timeout=30
    )
    assert built["status"] == "READY", built
    row = found(stack, "DATA_EXPORT", ada["id"], actor_id=None, resource=("data_export", export_id),
                from_request=False, stage="ready")  # fmt: skip
    assert row["details"]["size_bytes"] > 0
    # Each download link handed out is audited too.
    shown = api(stack, "GET", f"/api/compliance/exports/{export_id}/", ada)
    assert shown.status_code == 200 and shown.json()["download_url"], shown.text
    found(stack, "DATA_EXPORT", ada["id"], actor_id=ada["id"], resource=("data_export", export_id),
          stage="link_issued")  # fmt: skip


def ask_for_deletion(stack: PaymentsStack, person: dict[str, str]) -> str:
    asked = api(stack, "POST", "/api/compliance/delete-account/", person, json={"password": PASSWORD})
    assert asked.status_code == 202, asked.text
    return asked.json()["id"]


@flow("DELETION_REQUESTED")
def test_deletion_requested(stack) -> None:
    ada = register(stack)
    deletion_id = ask_for_deletion(stack, ada)
    row = found(stack, "DELETION_REQUESTED", ada["id"], actor_id=ada["id"], resource=("deletion_request", deletion_id))
    assert row["actor_role"] == "student" and row["details"]["grace_days"] == 30
    assert PASSWORD not in json.dumps(row, default=str)


@flow("DELETION_CANCELLED")
def test_deletion_cancelled(stack) -> None:
    ada = register(stack)
    deletion_id = ask_for_deletion(stack, ada)
    # Signed out everywhere by the request: the person logs in again to cancel.
    login = api(stack, "POST", "/api/auth/login/", json={"email": ada["email"], "password": PASSWORD})
    assert login.status_code == 200, login.text
    cancelled = api(stack, "POST", "/api/compliance/cancel-deletion/", {"access": login.json()["access"]})
    assert cancelled.status_code == 200, cancelled.text
    row = found(stack, "DELETION_CANCELLED", ada["id"], actor_id=ada["id"], resource=("deletion_request", deletion_id))
    assert set(row["details"]) == {"was_scheduled_for"}


class ScheduledRun(LambdaContext):
    """The purge Lambda's context as its daily schedule invokes it: its whole 15-minute timeout ahead."""

    def get_remaining_time_in_millis(self) -> int:
        return 15 * 60 * 1000


@flow("ACCOUNT_PURGED")
def test_account_purged(stack) -> None:
    from functions.compliance.erasure.purge import handler as purge
    from functions.provision.steps import enroll, record_payment, unlock_first_project

    # Paid and provisioned (so the purge runs the deprovision workflow and keeps the payment).
    ada, payment_id = paid(stack)
    unlock_first_project.lambda_handler(
        enroll.lambda_handler(record_payment.lambda_handler(workflow_input(stack, payment_id), None), None), None
    )
    deletion_id = ask_for_deletion(stack, ada)
    stack.row(
        "UPDATE deletion_requests SET requested_at = now() - interval '31 days', scheduled_for = now() - interval"
        " '1 day' WHERE id = %s RETURNING id",
        deletion_id,
    )

    with db.function_slot(PURGE):
        result = purge.lambda_handler({}, ScheduledRun(PURGE))
    assert result["outcomes"][deletion_id] == "completed", result
    (execution,) = stack.executions(stack.deprovision_arn, f"purge-{deletion_id}-1")
    assert execution["status"] == "SUCCEEDED"
    request = stack.row("SELECT status, user_id, subject_ref FROM deletion_requests WHERE id = %s", deletion_id)
    ref = request["subject_ref"]
    assert (request["status"], request["user_id"]) == ("COMPLETED", None) and ref.startswith("erased-")

    row = found(stack, "ACCOUNT_PURGED", None, actor_id=None, resource=("deletion_request", deletion_id),
                from_request=False, subject_ref=ref)  # fmt: skip
    assert row["details"] == {"subject_ref": ref, "payments_kept": 1, "refund_requests_kept": 0}
    # Only the opaque reference: no id, email or name of the person anywhere in the row.
    (whole,) = stack.rows("SELECT * FROM audit_logs WHERE action = 'ACCOUNT_PURGED' AND resource_id = %s", deletion_id)
    assert (whole["actor_id"], whole["subject_id"], whole["ip_address"], whole["user_agent"]) == (None,) * 4
    text = json.dumps(whole, default=str).lower()
    assert not [needle for needle in (ada["id"], ada["email"], NAME) if needle.lower() in text], whole
    kept = stack.row("SELECT user_id, subject_ref, customer_email FROM payments WHERE id = %s", payment_id)
    assert kept == {"user_id": None, "subject_ref": ref, "customer_email": None}


# --- money and enrollment -------------------------------------------------------------------------------------


@flow("PAYMENT")
def test_payment(stack) -> None:
    ada, payment_id = paid(stack)
    found(stack, "PAYMENT", ada["id"], actor_id=ada["id"], resource=("payment", payment_id), step="checkout_created")
    # The webhook's row: Stripe's event, no caller.
    row = found(stack, "PAYMENT", ada["id"], actor_id=None, resource=("payment", payment_id), from_request=False,
                to="SUCCEEDED")  # fmt: skip
    assert row["details"]["event"] in ("checkout.session.completed", "payment_intent.succeeded")


@flow("REFUND_REQUESTED")
def test_refund_requested(stack) -> None:
    ada, payment_id = paid(stack)
    asked = api(stack, "POST", "/api/payments/request-refund/", ada, json={"payment_id": payment_id, "reason": "Moved"})
    assert asked.status_code == 201, asked.text
    found(stack, "REFUND_REQUESTED", ada["id"], actor_id=ada["id"], resource=("refund_request", asked.json()["id"]))


@flow("REFUND_DECIDED")
def test_refund_decided(stack) -> None:
    ada, payment_id = paid(stack)
    admin = staff(stack, "admin")
    asked = api(stack, "POST", "/api/payments/request-refund/", ada, json={"payment_id": payment_id, "reason": "Moved"})
    request_id = asked.json()["id"]
    rejected = api(stack, "POST", f"/api/admin/refund-requests/{request_id}/reject/", admin, json={"reason": "Late"})
    assert rejected.status_code == 200, rejected.text
    row = found(stack, "REFUND_DECIDED", ada["id"], actor_id=admin["id"], resource=("refund_request", request_id))
    assert row["details"]["decision"] == "REJECTED"


def workflow_input(stack: PaymentsStack, payment_id: str) -> dict[str, Any]:
    (execution,) = stack.executions(stack.enrollment_arn, f"enroll-{payment_id}")
    return stack.execution_input(execution["executionArn"])


@flow("ENROLLMENT")
def test_enrollment(stack) -> None:
    from functions.provision.steps import enroll, record_payment

    ada, payment_id = paid(stack)
    state = workflow_input(stack, payment_id)
    enroll.lambda_handler(record_payment.lambda_handler(state, None), None)
    row = found(stack, "ENROLLMENT", ada["id"], actor_id=None, resource=("user", ada["id"]), from_request=False,
                step="enrolled")  # fmt: skip
    assert (row["details"]["payment_id"], row["details"]["source"]) == (payment_id, "stripe")


@flow("PROVISIONING")
def test_provisioning(stack) -> None:
    from functions.provision.steps import enroll, record_failure, record_payment, unlock_first_project

    ada, payment_id = paid(stack)
    state = enroll.lambda_handler(record_payment.lambda_handler(workflow_input(stack, payment_id), None), None)
    unlock_first_project.lambda_handler(state, None)
    unlock_first_project.lambda_handler(state, None)  # a retried step records nothing twice
    row = found(stack, "PROVISIONING", ada["id"], actor_id=None, resource=("user", ada["id"]), from_request=False,
                status="SUCCEEDED")  # fmt: skip
    assert row["details"]["track"] == "DP"

    # A later run fails (e.g. a re-provisioning): the failure is recorded as PROVISIONING too.
    error = {"Error": "ToolFailed", "Cause": json.dumps({"errorMessage": "superset is down"})}
    record_failure.lambda_handler({**state, "error": error}, None)
    row = found(stack, "PROVISIONING", ada["id"], actor_id=None, resource=("user", ada["id"]), from_request=False,
                status="FAILED")  # fmt: skip
    assert row["details"]["error"] == "ToolFailed: superset is down"


def test_the_steps_count_enrollments_and_failures(stack, capfd, monkeypatch) -> None:
    """Business metrics (issue 20, item 6): an enrollment counts once, a retried Enroll step does not
    count it again, and a failed run counts once."""
    from functions.provision.steps import enroll, record_failure, record_payment

    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")  # the tests run with metrics off
    _ada, payment_id = paid(stack)
    state = record_payment.lambda_handler(workflow_input(stack, payment_id), None)
    capfd.readouterr()
    state = enroll.lambda_handler(state, None)
    enroll.lambda_handler(state, None)  # a retry finds the student enrolled
    error = {"Error": "ToolFailed", "Cause": json.dumps({"errorMessage": "superset is down"})}
    record_failure.lambda_handler({**state, "error": error}, None)
    assert metric_counts(capfd.readouterr().out) == {"EnrollmentCompleted": 1, "ProvisioningFailed": 1}


@flow("ADMIN_ENROLL")
def test_admin_enroll(stack) -> None:
    admin, ada = staff(stack, "admin"), register(stack)
    started = api(stack, "POST", f"/api/admin/users/{ada['id']}/enroll/", admin,
                  json={"track": "FSD", "reason": "Scholarship"})  # fmt: skip
    assert started.status_code == 202, started.text
    row = found(stack, "ADMIN_ENROLL", ada["id"], actor_id=admin["id"], resource=("user", ada["id"]))
    assert row["details"] == {"track": "FSD", "reason": "Scholarship", "execution": started.json()["execution"]}
    assert stack.executions(stack.enrollment_arn, started.json()["execution"])


# --- tools ------------------------------------------------------------------------------------------------------


@flow("CREDENTIALS_VIEWED")
def test_credentials_viewed(stack) -> None:
    ada = enrolled(stack)
    role = "s_" + uuid.uuid4().hex
    parameter = f"{SSM_PREFIX}/students/{ada['id']}/db-password"
    password = f"pw-{uuid.uuid4().hex}"
    ssm = boto3.client("ssm", endpoint_url=stack.moto, region_name="us-east-1")
    ssm.put_parameter(Name=parameter, Value=password, Type="SecureString", Overwrite=True)
    stack.row(
        "INSERT INTO student_database_credentials (user_id, database_name, schema_name, role_name,"
        " password_parameter_name) VALUES (%s, 'apranova_students', %s, %s, %s) RETURNING user_id",
        ada["id"],
        role,
        role,
        parameter,
    )
    stack.row(
        "INSERT INTO tool_provisioning (user_id, tool, status, provisioned_at) VALUES (%s, 'STUDENT_DATABASE',"
        " 'SUCCEEDED', now()) RETURNING user_id",
        ada["id"],
    )
    shown = api(stack, "GET", "/api/tools/db-credentials/", ada)
    assert shown.status_code == 200 and shown.json()["password"] == password, shown.text
    row = found(stack, "CREDENTIALS_VIEWED", ada["id"], actor_id=ada["id"], resource=("student_database", role))
    assert row["details"]["tool"] == "STUDENT_DATABASE" and password not in json.dumps(row, default=str)


# --- learning and review -------------------------------------------------------------------------------------


def submitted(stack: PaymentsStack) -> tuple[dict[str, str], str]:
    """An enrolled student who started project 1 and submitted its first LINK deliverable."""
    ada = enrolled(stack)
    project = stack.row(
        "SELECT p.id FROM projects p JOIN tracks t ON t.id = p.track_id WHERE t.code = 'DP' AND p.number = 1"
    )["id"]
    deliverable = stack.row(
        "SELECT id FROM deliverables WHERE project_id = %s AND deliverable_type = 'LINK' AND is_active"
        " ORDER BY number LIMIT 1",
        project,
    )["id"]
    assert api(stack, "POST", f"/api/curriculum/projects/{project}/start/", ada).status_code == 200
    created = api(stack, "POST", "/api/curriculum/submissions/", ada,
                  json={"deliverable_id": deliverable, "submission_url": "https://example.com/dashboard"})  # fmt: skip
    assert created.status_code == 201, created.text
    return ada, created.json()["id"]


@flow("SUBMISSION")
def test_submission(stack) -> None:
    ada, submission_id = submitted(stack)
    row = found(stack, "SUBMISSION", ada["id"], actor_id=ada["id"], resource=("submission", submission_id))
    assert row["details"]["attempt"] == 1 and row["details"]["deliverable_type"] == "LINK"


@flow("REVIEW")
def test_review(stack) -> None:
    ada, submission_id = submitted(stack)
    trainer = staff(stack, "trainer", "DP")
    stack.row("INSERT INTO trainer_assignments (student_id, trainer_id, track) VALUES (%s, %s, 'DP') RETURNING track",
              ada["id"], trainer["id"])  # fmt: skip
    reviewed = api(stack, "POST", f"/api/trainer/submissions/{submission_id}/review/", trainer,
                   json={"decision": "request_changes", "feedback": "Add the data sources."})  # fmt: skip
    assert reviewed.status_code == 200, reviewed.text
    row = found(stack, "REVIEW", ada["id"], actor_id=trainer["id"], resource=("submission", submission_id))
    assert (row["actor_role"], row["details"]["decision"]) == ("trainer", "request_changes")


# --- administration -------------------------------------------------------------------------------------------


@flow("ROLE_CHANGE")
def test_role_change(stack) -> None:
    admin, ada = staff(stack, "admin"), register(stack)
    changed = api(stack, "POST", f"/api/admin/users/{ada['id']}/role/", admin, json={"role": "trainer"})
    assert changed.status_code == 200, changed.text
    row = found(stack, "ROLE_CHANGE", ada["id"], actor_id=admin["id"], resource=("user", ada["id"]))
    assert row["details"] == {"from": "student", "to": "trainer"}


@flow("TRAINER_ASSIGNED")
def test_trainer_assigned(stack) -> None:
    admin, trainer, ada = staff(stack, "admin"), staff(stack, "trainer", "DP"), enrolled(stack)
    assigned = api(stack, "POST", f"/api/admin/users/{ada['id']}/assign-trainer/", admin,
                   json={"trainer_id": trainer["id"]})  # fmt: skip
    assert assigned.status_code == 200, assigned.text
    row = found(stack, "TRAINER_ASSIGNED", ada["id"], actor_id=admin["id"], resource=("trainer_assignment", ada["id"]))
    assert row["details"]["to"] == trainer["id"]
