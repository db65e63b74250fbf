"""The admin routes that run the enrollment workflow: manual enrollment and re-provisioning."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest

from local.events import LambdaContext, http_api_event
from tests.workflow.conftest import WorkflowStack

ADMIN = {"sub": "00000000-0000-4000-8000-0000000a0001", "token_use": "access", "cognito:groups": "[admins]"}
STUDENT = {"sub": "00000000-0000-4000-8000-0000000a0002", "token_use": "access", "cognito:groups": "[students]"}


@pytest.fixture
def admin_api(wf: WorkflowStack, monkeypatch: pytest.MonkeyPatch) -> Iterator[WorkflowStack]:
    monkeypatch.setenv("ENROLLMENT_STATE_MACHINE_ARN", wf.arns["enrollment"])
    # The callers' accounts: a token is honoured only while its account holds the session.
    for claims, role in ((ADMIN, "admin"), (STUDENT, "student")):
        wf.rows(
            "INSERT INTO users (id, email, name, role, email_verified) VALUES (%s, %s, 'Caller', %s, true)"
            " ON CONFLICT (id) DO NOTHING RETURNING id",
            claims["sub"],
            f"caller-{claims['sub']}@example.com",
            role,
        )
    yield wf


def _call(path: str, body: str | None = None, claims: dict | None = None) -> tuple[int, dict]:
    import json

    from functions.admin import handler

    claims = {**(claims or ADMIN), "iat": int(time.time())}  # signed in just now
    event = http_api_event("POST", path, body=body, claims=claims, headers={"content-type": "application/json"})
    response = handler.lambda_handler(event, LambdaContext("apranova-admin"))
    return response["statusCode"], json.loads(response["body"])


def _execution(wf: WorkflowStack, name: str) -> dict:
    arn = wf.arns["enrollment"].replace(":stateMachine:", ":execution:") + f":{name}"
    return wf.wait(arn)


def test_manual_enrollment_runs_the_workflow_and_is_audited(admin_api: WorkflowStack) -> None:
    wf = admin_api
    wf.trainer("FSD")
    student = wf.student()
    status, body = _call(f"/api/admin/users/{student['id']}/enroll/", '{"track": "FSD", "reason": "Scholarship"}')
    assert status == 202, body
    assert (body["status"], body["track"]) == ("STARTED", "FSD")
    assert _execution(wf, body["execution"])["status"] == "SUCCEEDED"
    user = wf.row("SELECT enrollment_status, provisioning_status FROM users WHERE id = %s", student["id"])
    assert (user["enrollment_status"], user["provisioning_status"]) == ("ENROLLED", "SUCCEEDED")
    audit = wf.row(
        "SELECT actor_id::text AS actor, details FROM audit_logs WHERE subject_id = %s AND action = 'ADMIN_ENROLL'",
        student["id"],
    )
    assert audit["actor"] == ADMIN["sub"] and audit["details"]["reason"] == "Scholarship"
    # The workflow's Enroll step writes the enrollment's own row.
    enrolled = wf.row("SELECT details FROM audit_logs WHERE subject_id = %s AND action = 'ENROLLMENT'", student["id"])
    assert enrolled["details"]["source"] == "admin"
    # Enrolled already.
    again = _call(f"/api/admin/users/{student['id']}/enroll/", '{"track": "FSD", "reason": "Scholarship"}')
    assert again[0] == 409 and again[1]["error"]["code"] == "already_enrolled"


def test_manual_enrollment_bad_input(admin_api: WorkflowStack) -> None:
    wf = admin_api
    student = wf.student()
    trainer = wf.trainer("DP")
    assert _call(f"/api/admin/users/{student['id']}/enroll/", '{"track": "NOPE", "reason": "x y z"}')[0] == 422
    assert _call(f"/api/admin/users/{student['id']}/enroll/", '{"track": "DP"}')[0] == 422
    assert _call(f"/api/admin/users/{uuid.uuid4()}/enroll/", '{"track": "DP", "reason": "why not"}')[0] == 404
    assert _call(f"/api/admin/users/{trainer['id']}/enroll/", '{"track": "DP", "reason": "why not"}')[0] == 409
    denied = _call(f"/api/admin/users/{student['id']}/enroll/", '{"track": "DP", "reason": "why not"}', STUDENT)
    assert denied[0] == 403
    assert (
        wf.row("SELECT enrollment_status FROM users WHERE id = %s", student["id"])["enrollment_status"]
        == "PENDING_PAYMENT"
    )


def test_reprovision_after_a_failure_completes_the_tools(admin_api: WorkflowStack) -> None:
    from local.lambda_dispatch import inject
    from local.workflows import FUNCTION_PREFIX

    wf = admin_api
    wf.trainer("FSD")
    student = wf.student()
    payment_id = wf.paid(student, "FSD")
    inject(FUNCTION_PREFIX + "provision-workspace", "ToolFailed")
    failed = wf.run(
        "enrollment", {"user_id": student["id"], "track": "FSD", "payment_id": payment_id, "source": "stripe"}
    )
    assert failed["status"] == "FAILED"
    assert (
        wf.row("SELECT provisioning_status FROM users WHERE id = %s", student["id"])["provisioning_status"] == "FAILED"
    )
    status, body = _call(f"/api/admin/users/{student['id']}/reprovision/")
    assert status == 202, body
    assert _execution(wf, body["execution"])["status"] == "SUCCEEDED"
    user = wf.row("SELECT provisioning_status, tools_provisioned FROM users WHERE id = %s", student["id"])
    assert (user["provisioning_status"], user["tools_provisioned"]) == ("SUCCEEDED", True)
    not_enrolled = wf.student()
    assert _call(f"/api/admin/users/{not_enrolled['id']}/reprovision/")[0] == 409
