"""Every real start site of the two state machines, run on the machines CDK synthesizes: the input
each start site sends is built by the code the start site uses (the contract's constructors in
apranova/workflow_inputs.py, the admin API itself, the purge's deprovision step itself), every
execution SUCCEEDS, and what it changed is asked of the tools themselves.

Also: deprovision is scoped to the refunded payment's enrollment (a refund of a payment that
enrolled nobody leaves the student's tools and trainer alone), a tool not configured in the
deployment is skipped and recorded, and a tool outage retries in its own branch, is alerted, never
blocks the other tools, and leaves the run failed naming the pending tool, which the purge reports.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest

from apranova.workflow_inputs import DeprovisionInput, EnrollmentInput
from local.events import LambdaContext, http_api_event
from local.moto_stack import mailbox
from tests.workflow.conftest import OPS, WorkflowStack

DP = ("STUDENT_DATABASE", "SUPERSET", "PREFECT", "JUPYTER")


# --- helpers --------------------------------------------------------------------------------------


def _payment_row(wf: WorkflowStack, payment_id: str) -> dict[str, Any]:
    """The payment as the webhook's outbox row carries it (functions/payments/outbox.py)."""
    row = wf.row(
        """
        SELECT id::text AS payment_id, user_id::text AS user_id, track, status, dispute_status
        FROM payments WHERE id = %s
        """,
        payment_id,
    )
    assert row is not None
    return row


def _webhook_enrollment(row: dict[str, Any]) -> EnrollmentInput:
    """What the webhook's outbox starts the enrollment with, built by its own code."""
    from functions.payments import outbox

    return outbox.enrollment_input(row)


def _webhook_withdrawal(row: dict[str, Any]) -> DeprovisionInput:
    """What the webhook's outbox starts a refund's or lost dispute's deprovision with."""
    from functions.payments import outbox

    return outbox.deprovision_input(row)


def _refunded(wf: WorkflowStack, payment_id: str, *, dispute_lost: bool = False) -> dict[str, Any]:
    """What the webhook records for a full refund or a lost dispute."""
    wf.row(
        """
        UPDATE payments SET status = 'REFUNDED', refunded_amount_cents = amount_cents, refunded_at = now(),
                            disputed = %s, dispute_status = CASE WHEN %s THEN 'LOST' END
        WHERE id = %s RETURNING id
        """,
        dispute_lost,
        dispute_lost,
        payment_id,
    )
    return _payment_row(wf, payment_id)


def _run(wf: WorkflowStack, machine: str, workflow_input: EnrollmentInput | DeprovisionInput) -> dict[str, Any]:
    """Starts an execution as every start site does (the layer's ``workflows.start``) and waits."""
    from apranova import workflows

    arn, started = workflows.start(wf.arns[machine], f"s-{uuid.uuid4().hex[:12]}", workflow_input)
    assert started
    return wf.wait(arn)


def _succeeded(wf: WorkflowStack, result: dict[str, Any]) -> None:
    assert result["status"] == "SUCCEEDED", wf.history(result["executionArn"])[-4:]


def _paid_enrollment(wf: WorkflowStack, track: str) -> tuple[dict[str, str], str]:
    """A student enrolled by the webhook's start: the payment's enrollment, SUCCEEDED."""
    wf.trainer(track)
    student = wf.student()
    payment_id = wf.paid(student, track)
    _succeeded(wf, _run(wf, "enrollment", _webhook_enrollment(_payment_row(wf, payment_id))))
    return student, payment_id


def _tool_status(student: dict[str, str], track: str, tool: str) -> str:
    """Asked of the tool itself (its provisioner's ``status``)."""
    from functions.provision.tools import Student
    from functions.provision.tools.registry import provisioner

    return str(provisioner(tool).status(Student(user_id=student["id"], email=student["email"], track=track)))


def _records(wf: WorkflowStack, user_id: str) -> dict[str, dict[str, Any]]:
    rows = wf.rows(
        "SELECT tool, status, payment_id::text AS payment_id, error FROM tool_provisioning WHERE user_id = %s", user_id
    )
    return {r["tool"]: r for r in rows}


def _user(wf: WorkflowStack, user_id: str) -> dict[str, Any]:
    return wf.row(
        """
        SELECT enrollment_status, provisioning_status, provisioning_error, enrollment_payment_id::text AS payment_id,
               (SELECT trainer_id::text FROM trainer_assignments WHERE student_id = users.id) AS trainer
        FROM users WHERE id = %s
        """,
        user_id,
    )


def _database_login(wf: WorkflowStack, user_id: str) -> str:
    """The student's own database login, as their dashboard gives it (role, password, database)."""
    from psycopg.conninfo import make_conninfo

    credentials = wf.row("SELECT * FROM student_database_credentials WHERE user_id = %s", user_id)
    password = wf.client("ssm").get_parameter(Name=credentials["password_parameter_name"], WithDecryption=True)
    return make_conninfo(
        wf.students_url,
        user=credentials["role_name"],
        password=password["Parameter"]["Value"],
        dbname=credentials["database_name"],
    )


def _alerts(user_id: str) -> list[dict[str, Any]]:
    return [m for m in mailbox() if OPS in m["to"] and user_id in (m["body_text"] or m["body_html"] or "")]


@contextmanager
def _tool_url(wf: WorkflowStack, tool: str, url: str | None) -> Iterator[None]:
    """The tool's URL parameter replaced (``None``: deleted, the tool not configured, as in dev)
    for the block; the provisioners are rebuilt so no cached value hides the change."""
    from functions.provision.tools import registry

    ssm = wf.client("ssm")
    name = f"{wf.env['SSM_PREFIX']}/tools/{tool}/url"
    saved = ssm.get_parameter(Name=name)["Parameter"]
    try:
        if url is None:
            ssm.delete_parameter(Name=name)
        else:
            ssm.put_parameter(Name=name, Value=url, Type=saved["Type"], Overwrite=True)
        registry.reset()
        yield
    finally:
        ssm.put_parameter(Name=name, Value=saved["Value"], Type=saved["Type"], Overwrite=True)
        registry.reset()


@pytest.fixture
def admin_api(wf: WorkflowStack, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """An administrator's access token claims (the account exists, signed in just now)."""
    monkeypatch.setenv("ENROLLMENT_STATE_MACHINE_ARN", wf.arns["enrollment"])
    admin = wf.student(role="admin")
    yield {"sub": admin["id"], "token_use": "access", "cognito:groups": "[admins]", "iat": int(time.time())}


def _admin(claims: dict[str, Any], path: str, body: str | None = None) -> tuple[int, dict[str, Any]]:
    from functions.admin import handler

    event = http_api_event("POST", path, body=body, claims=claims, headers={"content-type": "application/json"})
    response = handler.lambda_handler(event, LambdaContext("apranova-admin"))
    return response["statusCode"], json.loads(response["body"])


def _execution(wf: WorkflowStack, machine: str, name: str) -> dict[str, Any]:
    return wf.wait(wf.arns[machine].replace(":stateMachine:", ":execution:") + f":{name}")


def _purge_deprovision(wf: WorkflowStack, user_id: str) -> None:
    """The purge's own deprovision step (functions/compliance/erasure/purge/service.py), on an account
    claimed for erasure (deleted_at set): it builds the input, starts the execution and waits."""
    from functions.compliance.erasure.purge import service as purge_service
    from functions.compliance.settings import PurgeSettings

    wf.row("UPDATE users SET deleted_at = now() WHERE id = %s RETURNING id", user_id)
    settings = PurgeSettings.model_construct(
        deprovision_state_machine_arn=wf.arns["deprovision"],
        purge_max_deprovision_attempts=3,
        purge_workflow_wait_seconds=120.0,
        purge_poll_seconds=0.05,
    )
    deps = purge_service.PurgeDeps(settings=settings, s3=None, ssm=None, cognito=None, sfn=wf.sfn(), sleep=time.sleep)
    request = purge_service.Request(
        id=str(uuid.uuid4()), user_id=user_id, subject_ref="erased-test", completed_steps=()
    )
    purge_service.deprovision(deps, request)


# --- every start site runs to SUCCEEDED -----------------------------------------------------------


def test_webhook_enroll_then_refund_takes_back_that_enrollment(wf: WorkflowStack) -> None:
    student, payment_id = _paid_enrollment(wf, "DP")
    user = _user(wf, student["id"])
    assert (user["enrollment_status"], user["provisioning_status"], user["payment_id"]) == (
        "ENROLLED",
        "SUCCEEDED",
        payment_id,
    )
    assert {t: (r["status"], r["payment_id"]) for t, r in _records(wf, student["id"]).items()} == {
        t: ("SUCCEEDED", payment_id) for t in DP
    }
    assert all(_tool_status(student, "DP", t) == "PROVISIONED" for t in DP)
    login = _database_login(wf, student["id"])
    with psycopg.connect(login):
        pass

    _succeeded(wf, _run(wf, "deprovision", _webhook_withdrawal(_refunded(wf, payment_id))))
    for tool in DP:
        assert _tool_status(student, "DP", tool) == "NOT_PROVISIONED", tool
    with pytest.raises(psycopg.OperationalError):  # the student's database login is gone
        psycopg.connect(login, connect_timeout=5)
    user = _user(wf, student["id"])
    assert (user["provisioning_status"], user["trainer"]) == ("DEPROVISIONED", None)
    assert {r["status"] for r in _records(wf, student["id"]).values()} == {"DEPROVISIONED"}


def test_webhook_lost_dispute_takes_back_that_enrollment(wf: WorkflowStack) -> None:
    student, payment_id = _paid_enrollment(wf, "FSD")
    assert _tool_status(student, "FSD", "WORKSPACE") == "PROVISIONED"
    dispute = _webhook_withdrawal(_refunded(wf, payment_id, dispute_lost=True))
    assert dispute.source == "dispute"
    _succeeded(wf, _run(wf, "deprovision", dispute))
    assert _tool_status(student, "FSD", "WORKSPACE") == "NOT_PROVISIONED"
    user = _user(wf, student["id"])
    assert (user["provisioning_status"], user["trainer"]) == ("DEPROVISIONED", None)


def test_admin_enroll_and_reprovision_run_to_succeeded(wf: WorkflowStack, admin_api: dict[str, Any]) -> None:
    wf.trainer("DP")
    student = wf.student()
    status, body = _admin(
        admin_api, f"/api/admin/users/{student['id']}/enroll/", '{"track": "DP", "reason": "Scholarship"}'
    )
    assert status == 202, body
    _succeeded(wf, _execution(wf, "enrollment", body["execution"]))
    user = _user(wf, student["id"])
    assert (user["enrollment_status"], user["provisioning_status"], user["payment_id"]) == (
        "ENROLLED",
        "SUCCEEDED",
        None,
    )
    assert all(_tool_status(student, "DP", t) == "PROVISIONED" for t in DP)

    # A tool lost out of band; the administrator re-runs the tools.
    from functions.provision.tools import Student
    from functions.provision.tools.registry import provisioner

    provisioner("PREFECT").deprovision(Student(user_id=student["id"], email=student["email"], track="DP"))
    assert _tool_status(student, "DP", "PREFECT") == "NOT_PROVISIONED"
    status, body = _admin(admin_api, f"/api/admin/users/{student['id']}/reprovision/")
    assert status == 202, body
    _succeeded(wf, _execution(wf, "enrollment", body["execution"]))
    assert all(_tool_status(student, "DP", t) == "PROVISIONED" for t in DP)
    assert _user(wf, student["id"])["provisioning_status"] == "SUCCEEDED"


def test_the_purge_s_deprovision_takes_back_everything(wf: WorkflowStack) -> None:
    student, _payment_id = _paid_enrollment(wf, "DP")
    _purge_deprovision(wf, student["id"])  # raises StepFailed unless the execution SUCCEEDED
    for tool in DP:
        assert _tool_status(student, "DP", tool) == "NOT_PROVISIONED", tool
    assert _user(wf, student["id"])["trainer"] is None
    assert wf.row("SELECT 1 AS x FROM student_database_credentials WHERE user_id = %s", student["id"]) is None


def test_the_purge_takes_back_an_administrator_s_enrollment_too(wf: WorkflowStack) -> None:
    """Everything of the person, whatever made it: an admin enrollment has no payment."""
    wf.trainer("FSD")
    student = wf.student()
    _succeeded(wf, _run(wf, "enrollment", EnrollmentInput.by_admin(student["id"], "FSD")))
    assert _tool_status(student, "FSD", "WORKSPACE") == "PROVISIONED"
    _purge_deprovision(wf, student["id"])
    assert _tool_status(student, "FSD", "WORKSPACE") == "NOT_PROVISIONED"


# --- payment-scoped deprovision -------------------------------------------------------------------


def test_a_refund_of_a_payment_that_enrolled_nobody_leaves_the_student_alone(wf: WorkflowStack) -> None:
    student, payment_id = _paid_enrollment(wf, "DP")
    trainer = _user(wf, student["id"])["trainer"]
    assert trainer is not None
    # A second payment (another track) that enrolled nobody, refunded.
    other = wf.paid(student, "FSD")
    _succeeded(wf, _run(wf, "deprovision", _webhook_withdrawal(_refunded(wf, other))))
    for tool in DP:
        assert _tool_status(student, "DP", tool) == "PROVISIONED", tool
    user = _user(wf, student["id"])
    assert (user["enrollment_status"], user["provisioning_status"], user["trainer"], user["payment_id"]) == (
        "ENROLLED",
        "SUCCEEDED",
        trainer,
        payment_id,
    )
    assert {r["status"] for r in _records(wf, student["id"]).values()} == {"SUCCEEDED"}
    # The student's own database still opens with their password.
    with psycopg.connect(_database_login(wf, student["id"])) as conn:
        assert conn.execute("SELECT current_user").fetchone()[0] != "postgres"


def test_a_refund_never_touches_an_administrator_s_enrollment(wf: WorkflowStack) -> None:
    """An old payment refunded after the student was enrolled by an administrator: not its enrollment."""
    wf.trainer("FSD")
    student = wf.student()
    old = wf.paid(student, "DP")
    _succeeded(wf, _run(wf, "enrollment", EnrollmentInput.by_admin(student["id"], "FSD")))
    _succeeded(wf, _run(wf, "deprovision", _webhook_withdrawal(_refunded(wf, old))))
    assert _tool_status(student, "FSD", "WORKSPACE") == "PROVISIONED"
    assert _user(wf, student["id"])["trainer"] is not None


def test_a_late_refund_of_an_earlier_enrollment_leaves_the_new_one(wf: WorkflowStack) -> None:
    """Refunded, paid again (the tools are the new payment's now), then the first refund replayed."""
    student, first = _paid_enrollment(wf, "FSD")
    refund = _webhook_withdrawal(_refunded(wf, first))
    _succeeded(wf, _run(wf, "deprovision", refund))
    wf.row("UPDATE users SET enrollment_status = 'REFUNDED' WHERE id = %s RETURNING id", student["id"])
    second = wf.paid(student, "FSD")
    _succeeded(wf, _run(wf, "enrollment", _webhook_enrollment(_payment_row(wf, second))))
    assert _records(wf, student["id"])["WORKSPACE"]["payment_id"] == second
    _succeeded(wf, _run(wf, "deprovision", refund))
    assert _tool_status(student, "FSD", "WORKSPACE") == "PROVISIONED"
    assert _user(wf, student["id"])["trainer"] is not None


# --- unconfigured tools and outages ---------------------------------------------------------------


@pytest.mark.parametrize("site", ["refund", "dispute", "purge"])
def test_every_deprovision_start_site_succeeds_with_an_unconfigured_tool(wf: WorkflowStack, site: str) -> None:
    student, payment_id = _paid_enrollment(wf, "DP")
    with _tool_url(wf, "jupyterhub", None):  # JupyterHub not configured in this deployment
        if site == "purge":
            _purge_deprovision(wf, student["id"])
        else:
            withdrawal = _webhook_withdrawal(_refunded(wf, payment_id, dispute_lost=site == "dispute"))
            assert withdrawal.source == site
            _succeeded(wf, _run(wf, "deprovision", withdrawal))
    records = _records(wf, student["id"])
    assert records["JUPYTER"]["status"] == "NOT_CONFIGURED"
    assert "not configured" in records["JUPYTER"]["error"]
    for tool in ("STUDENT_DATABASE", "SUPERSET", "PREFECT"):
        assert records[tool]["status"] == "DEPROVISIONED", tool
        assert _tool_status(student, "DP", tool) == "NOT_PROVISIONED", tool
    # It had an account there when it was configured: the operators are told it may be left.
    assert any("no longer configured" in m["subject"] for m in _alerts(student["id"]))


def test_a_tool_outage_retries_alerts_and_never_blocks_the_other_tools(wf: WorkflowStack) -> None:
    student, payment_id = _paid_enrollment(wf, "DP")
    refund = _webhook_withdrawal(_refunded(wf, payment_id))
    with _tool_url(wf, "prefect", "http://127.0.0.1:9"):  # Prefect down: connections refused
        result = _run(wf, "deprovision", refund)
    assert result["status"] == "FAILED"
    history = wf.history(result["executionArn"])
    prefect_calls = [
        e
        for e in history
        if e["type"] == "LambdaFunctionScheduled"
        and "provision-prefect" in e["lambdaFunctionScheduledEventDetails"]["resource"]
    ]
    assert len(prefect_calls) == 1 + 8  # the first attempt and every retry of the outage policy
    # The other tools were taken back meanwhile.
    for tool in ("STUDENT_DATABASE", "SUPERSET", "JUPYTER"):
        assert _tool_status(student, "DP", tool) == "NOT_PROVISIONED", tool
    assert _tool_status(student, "DP", "PREFECT") == "PROVISIONED"
    records = _records(wf, student["id"])
    assert records["PREFECT"]["status"] == "FAILED" and records["PREFECT"]["error"].startswith("ToolUnavailable")
    user = _user(wf, student["id"])
    assert user["provisioning_status"] == "FAILED"
    assert user["provisioning_error"].startswith("DeprovisionIncomplete: still pending: PREFECT (ToolUnavailable")
    subjects = [m["subject"] for m in _alerts(student["id"])]
    assert sum("unavailable" in s for s in subjects) == 1  # once per outage, not once per retry
    assert any("Deprovision workflow failed" in s for s in subjects)

    # Prefect is back: the same refund, started again, takes back the rest.
    _succeeded(wf, _run(wf, "deprovision", refund))
    assert _tool_status(student, "DP", "PREFECT") == "NOT_PROVISIONED"
    assert _user(wf, student["id"])["provisioning_status"] == "DEPROVISIONED"


def test_the_purge_reports_what_is_still_pending(wf: WorkflowStack) -> None:
    from functions.compliance.erasure.purge.service import StepFailed

    student, _ = _paid_enrollment(wf, "DP")
    with _tool_url(wf, "prefect", "http://127.0.0.1:9"), pytest.raises(StepFailed) as failed:
        _purge_deprovision(wf, student["id"])
    assert "ended FAILED" in str(failed.value)
    assert "still pending: PREFECT FAILED (ToolUnavailable)" in str(failed.value)
    assert student["id"] not in str(failed.value)  # the recorded error names no account
    for tool in ("STUDENT_DATABASE", "SUPERSET", "JUPYTER"):
        assert _tool_status(student, "DP", tool) == "NOT_PROVISIONED", tool
