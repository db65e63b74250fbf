"""The enrollment and deprovision state machines as CDK synthesizes them, executed in moto with the
in-repo step handlers against real PostgreSQL, the tools and moto's AWS."""

from __future__ import annotations

import pytest

from local.moto_stack import mailbox
from local.workflows import FUNCTION_PREFIX
from tests.workflow.conftest import OPS, WorkflowStack

DP_STEPS = [
    "provision-record-payment",
    "provision-enroll",
    "provision-student-database",
    "provision-superset",
    "provision-prefect",
    "provision-jupyter",
    "provision-assign-trainer",
    "provision-unlock-first-project",
]
FSD_STEPS = ["provision-record-payment", "provision-enroll", "provision-workspace", "provision-assign-trainer",
             "provision-unlock-first-project"]  # fmt: skip


def _enroll(wf: WorkflowStack, track: str, *, trainer: bool = True) -> tuple[dict[str, str], str, dict]:
    if trainer:
        wf.trainer(track)
    student = wf.student()
    payment_id = wf.paid(student, track)
    payload = {"user_id": student["id"], "track": track, "payment_id": payment_id, "source": "stripe"}
    return student, payment_id, payload


def _tools(wf: WorkflowStack, user_id: str) -> dict[str, dict]:
    return {r["tool"]: r for r in wf.rows("SELECT * FROM tool_provisioning WHERE user_id = %s", user_id)}


def _students_db_objects(wf: WorkflowStack, user_id: str) -> tuple[int, int]:
    from functions.provision.tools.student_database import names_for

    names = names_for(user_id, wf.env["SSM_PREFIX"])
    roles = wf.students_db("SELECT 1 FROM pg_roles WHERE rolname = %s", names.role)
    databases = wf.students_db("SELECT 1 FROM pg_database WHERE datname = %s", names.database)  # one each
    return len(roles), len(databases)


def _student_parameters(wf: WorkflowStack, user_id: str) -> list[str]:
    ssm = wf.client("ssm")
    found = ssm.get_parameters_by_path(Path=f"{wf.env['SSM_PREFIX']}/students/{user_id}", Recursive=True)
    return sorted(p["Name"] for p in found["Parameters"])


# --- happy paths ----------------------------------------------------------------------------------


def test_dp_enrollment_provisions_everything(wf: WorkflowStack) -> None:
    student, payment_id, payload = _enroll(wf, "DP")
    result = wf.run("enrollment", payload)
    assert result["status"] == "SUCCEEDED", wf.history(result["executionArn"])[-3:]

    user = wf.row("SELECT * FROM users WHERE id = %s", student["id"])
    assert (user["enrollment_status"], user["provisioning_status"], user["tools_provisioned"]) == (
        "ENROLLED",
        "SUCCEEDED",
        True,
    )
    tools = _tools(wf, student["id"])
    assert {t: r["status"] for t, r in tools.items()} == {
        "STUDENT_DATABASE": "SUCCEEDED",
        "SUPERSET": "SUCCEEDED",
        "PREFECT": "SUCCEEDED",
        "JUPYTER": "SUCCEEDED",
    }
    assert _students_db_objects(wf, student["id"]) == (1, 1)
    credentials = wf.row("SELECT * FROM student_database_credentials WHERE user_id = %s", student["id"])
    assert credentials["password_parameter_name"] in _student_parameters(wf, student["id"])
    assert wf.row("SELECT trainer_id FROM trainer_assignments WHERE student_id = %s", student["id"]) is not None
    progress = wf.rows(
        "SELECT p.number, sp.status FROM student_progress sp JOIN projects p ON p.id = sp.project_id"
        " WHERE sp.student_id = %s",
        student["id"],
    )
    assert progress == [{"number": 1, "status": "UNLOCKED"}]
    welcome = [m for m in mailbox() if student["email"] in m["to"] and m["subject"].startswith("Welcome")]
    assert len(welcome) == 1
    body = welcome[0]["body_html"] or welcome[0]["body_text"]
    for tool in ("Superset", "Prefect", "JupyterHub"):
        assert tool in body
    password = wf.client("ssm").get_parameter(Name=credentials["password_parameter_name"], WithDecryption=True)
    assert password["Parameter"]["Value"] not in body
    # The student's role opens the students' database, never the application's.
    import psycopg
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    login = {"user": credentials["role_name"], "password": password["Parameter"]["Value"]}
    with psycopg.connect(make_conninfo(wf.students_url, **login, dbname=credentials["database_name"])) as conn:
        assert conn.execute("SELECT current_schema()").fetchone()[0] == credentials["schema_name"]
    app_db = conninfo_to_dict(wf.database_url)
    with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
        psycopg.connect(make_conninfo(wf.database_url, **login), dbname=app_db["dbname"])


def test_fsd_enrollment_provisions_the_workspace(wf: WorkflowStack) -> None:
    student, _, payload = _enroll(wf, "FSD")
    result = wf.run("enrollment", payload)
    assert result["status"] == "SUCCEEDED", wf.history(result["executionArn"])[-3:]
    tools = _tools(wf, student["id"])
    assert {t: r["status"] for t, r in tools.items()} == {"WORKSPACE": "SUCCEEDED"}
    efs = wf.client("efs")
    points = [p for p in efs.describe_access_points()["AccessPoints"] if _tagged(p.get("Tags"), student["id"])]
    assert len(points) == 1
    assert wf.row("SELECT enrollment_status FROM users WHERE id = %s", student["id"])["enrollment_status"] == "ENROLLED"


def _tagged(tags: list[dict] | None, user_id: str) -> bool:
    return any(user_id in str(t.get("Value")) for t in tags or [])


def test_the_same_input_twice_makes_exactly_one_of_everything(wf: WorkflowStack) -> None:
    student, _, payload = _enroll(wf, "DP")
    first = wf.run("enrollment", payload)
    second = wf.run("enrollment", payload)
    assert (first["status"], second["status"]) == ("SUCCEEDED", "SUCCEEDED")
    assert _students_db_objects(wf, student["id"]) == (1, 1)
    parameters = _student_parameters(wf, student["id"])
    assert len(parameters) == len(set(parameters))
    assert wf.row("SELECT count(*) AS n FROM tool_provisioning WHERE user_id = %s", student["id"])["n"] == 4
    assert wf.row("SELECT count(*) AS n FROM trainer_assignments WHERE student_id = %s", student["id"])["n"] == 1
    assert wf.row("SELECT count(*) AS n FROM student_progress WHERE student_id = %s", student["id"])["n"] == 1
    welcome = [m for m in mailbox() if student["email"] in m["to"] and m["subject"].startswith("Welcome")]
    assert len(welcome) == 1
    enrolled = wf.rows(
        "SELECT 1 FROM audit_logs WHERE subject_id = %s AND action = 'ENROLLMENT' AND details->>'step' = 'enrolled'",
        student["id"],
    )
    assert len(enrolled) == 1


# --- faults ---------------------------------------------------------------------------------------


def _injected_failures(wf: WorkflowStack, execution_arn: str) -> list[dict]:
    """The task failures the test injected (a DP run may also retry Superset while it waits for
    the student database, a real transient failure)."""
    found = []
    for event in wf.history(execution_arn):
        details = event.get("lambdaFunctionFailedEventDetails") or event.get("taskFailedEventDetails") or {}
        if "injected" in str(details.get("cause", "")):
            found.append(event)
    return found


@pytest.mark.parametrize("step", DP_STEPS)
def test_a_transient_failure_at_each_task_is_retried(wf: WorkflowStack, step: str) -> None:
    from local.lambda_dispatch import inject

    _, _, payload = _enroll(wf, "DP")
    inject(FUNCTION_PREFIX + step, "ToolUnavailable", times=2)
    result = wf.run("enrollment", payload)
    assert result["status"] == "SUCCEEDED", wf.history(result["executionArn"])[-3:]
    assert len(_injected_failures(wf, result["executionArn"])) == 2


@pytest.mark.parametrize("step", DP_STEPS)
def test_a_permanent_failure_at_each_task_is_caught_recorded_and_alerted(wf: WorkflowStack, step: str) -> None:
    from local.lambda_dispatch import inject

    student, _, payload = _enroll(wf, "DP")
    inject(FUNCTION_PREFIX + step, "ToolFailed")
    result = wf.run("enrollment", payload)
    assert result["status"] == "FAILED"
    user = wf.row("SELECT provisioning_status, provisioning_error FROM users WHERE id = %s", student["id"])
    assert user["provisioning_status"] == "FAILED" and user["provisioning_error"].startswith("ToolFailed")
    alerts = [m for m in mailbox() if OPS in m["to"] and student["id"] in (m["body_text"] or m["body_html"] or "")]
    assert alerts and "workflow failed" in alerts[0]["subject"]


def test_a_transient_failure_that_persists_is_caught_after_the_retries(wf: WorkflowStack) -> None:
    from local.lambda_dispatch import inject

    student, _, payload = _enroll(wf, "FSD")
    # The first attempt and its 4 retries (MaxAttempts counts retries).
    inject(FUNCTION_PREFIX + "provision-workspace", "ToolUnavailable", times=5)
    result = wf.run("enrollment", payload)
    assert result["status"] == "FAILED"
    assert len(_injected_failures(wf, result["executionArn"])) == 5
    assert (
        wf.row("SELECT provisioning_status FROM users WHERE id = %s", student["id"])["provisioning_status"] == "FAILED"
    )


def test_a_failed_welcome_email_does_not_undo_the_enrollment(wf: WorkflowStack) -> None:
    from local.lambda_dispatch import inject

    student, _, payload = _enroll(wf, "FSD")
    inject(FUNCTION_PREFIX + "provision-welcome-email", "MessageRejected")
    result = wf.run("enrollment", payload)
    assert result["status"] == "SUCCEEDED"
    user = wf.row("SELECT enrollment_status, provisioning_status FROM users WHERE id = %s", student["id"])
    assert (user["enrollment_status"], user["provisioning_status"]) == ("ENROLLED", "SUCCEEDED")


def test_an_unknown_track_is_a_recorded_failure(wf: WorkflowStack) -> None:
    student = wf.student()
    result = wf.run("enrollment", {"user_id": student["id"], "track": "NOPE", "payment_id": None, "source": "admin"})
    assert result["status"] == "FAILED"
    user = wf.row("SELECT provisioning_status, provisioning_error FROM users WHERE id = %s", student["id"])
    assert user["provisioning_status"] == "FAILED" and "unknown track" in user["provisioning_error"]


def test_a_user_deleted_mid_workflow_is_a_recorded_failure(wf: WorkflowStack) -> None:
    student, _, payload = _enroll(wf, "FSD")
    wf.row("UPDATE users SET deleted_at = now() WHERE id = %s RETURNING id", student["id"])
    result = wf.run("enrollment", payload)
    assert result["status"] == "FAILED"
    assert _tools(wf, student["id"]) == {}


def test_a_payment_that_does_not_pay_for_the_enrollment_is_refused(wf: WorkflowStack) -> None:
    student, payment_id, payload = _enroll(wf, "DP")
    result = wf.run("enrollment", {**payload, "track": "FSD"})
    assert result["status"] == "FAILED"
    user = wf.row("SELECT enrollment_status, provisioning_error FROM users WHERE id = %s", student["id"])
    assert user["enrollment_status"] == "PENDING_PAYMENT" and user["provisioning_error"].startswith("PaymentNotValid")


# --- trainers -------------------------------------------------------------------------------------


def test_the_least_loaded_trainer_under_capacity_is_assigned(wf: WorkflowStack) -> None:
    track = "FSD"
    # Fill every existing FSD trainer so only the two made here can take students.
    wf.rows(
        "INSERT INTO trainer_profiles (user_id, accepting_students) SELECT id, false FROM users"
        " WHERE role = 'trainer' AND track_id = (SELECT id FROM tracks WHERE code = %s)"
        " ON CONFLICT (user_id) DO UPDATE SET accepting_students = false RETURNING user_id",
        track,
    )
    busy, free = wf.trainer(track, capacity=5), wf.trainer(track, capacity=5)
    for _ in range(2):
        other = wf.student()
        wf.rows(
            "INSERT INTO trainer_assignments (student_id, trainer_id, track) VALUES (%s, %s, %s) RETURNING student_id",
            other["id"],
            busy["id"],
            track,
        )
    student, _, payload = _enroll(wf, track, trainer=False)
    assert wf.run("enrollment", payload)["status"] == "SUCCEEDED"
    assigned = wf.row("SELECT trainer_id::text AS id FROM trainer_assignments WHERE student_id = %s", student["id"])
    assert assigned["id"] == free["id"]
    wf.rows("UPDATE trainer_profiles SET accepting_students = false WHERE user_id = %s RETURNING user_id", free["id"])
    wf.rows("UPDATE trainer_profiles SET max_students = 2 WHERE user_id = %s RETURNING user_id", busy["id"])
    lonely, _, payload = _enroll(wf, track, trainer=False)
    assert wf.run("enrollment", payload)["status"] == "SUCCEEDED"
    assert wf.row("SELECT 1 AS x FROM trainer_assignments WHERE student_id = %s", lonely["id"]) is None
    alerts = [m for m in mailbox() if OPS in m["to"] and lonely["id"] in (m["body_text"] or m["body_html"] or "")]
    assert alerts and "No trainer available" in alerts[0]["subject"]
    wf.rows("UPDATE trainer_profiles SET accepting_students = true WHERE user_id = %s RETURNING user_id", free["id"])


# --- deprovisioning -------------------------------------------------------------------------------


def test_deprovision_after_a_dp_enrollment_leaves_nothing(wf: WorkflowStack) -> None:
    student, payment_id, payload = _enroll(wf, "DP")
    assert wf.run("enrollment", payload)["status"] == "SUCCEEDED"
    result = wf.run("deprovision", {**payload, "source": "refund"})
    assert result["status"] == "SUCCEEDED", wf.history(result["executionArn"])[-3:]
    assert _students_db_objects(wf, student["id"]) == (0, 0)
    assert _student_parameters(wf, student["id"]) == []
    assert {r["status"] for r in _tools(wf, student["id"]).values()} == {"DEPROVISIONED"}
    assert wf.row("SELECT 1 AS x FROM student_database_credentials WHERE user_id = %s", student["id"]) is None
    user = wf.row("SELECT provisioning_status, tools_provisioned FROM users WHERE id = %s", student["id"])
    assert (user["provisioning_status"], user["tools_provisioned"]) == ("DEPROVISIONED", False)
    assert wf.row("SELECT 1 AS x FROM trainer_assignments WHERE student_id = %s", student["id"]) is None
    # Asked of the tools themselves: no Superset user/role/connection, hub user or work pool left.
    from functions.provision.tools import Student, ToolStatus
    from functions.provision.tools.registry import provisioner

    someone = Student(user_id=student["id"], email=student["email"], track="DP")
    for tool in ("STUDENT_DATABASE", "SUPERSET", "PREFECT", "JUPYTER"):
        assert provisioner(tool).status(someone) == ToolStatus.NOT_PROVISIONED, tool


def test_deprovision_after_an_fsd_enrollment_leaves_nothing(wf: WorkflowStack) -> None:
    student, _, payload = _enroll(wf, "FSD")
    assert wf.run("enrollment", payload)["status"] == "SUCCEEDED"
    result = wf.run("deprovision", {**payload, "source": "refund"})
    assert result["status"] == "SUCCEEDED", wf.history(result["executionArn"])[-3:]
    efs = wf.client("efs")
    assert [p for p in efs.describe_access_points()["AccessPoints"] if _tagged(p.get("Tags"), student["id"])] == []
    assert _student_parameters(wf, student["id"]) == []
    from functions.provision.tools import Student, ToolStatus
    from functions.provision.tools.registry import provisioner

    someone = Student(user_id=student["id"], email=student["email"], track="FSD")
    assert provisioner("WORKSPACE").status(someone) == ToolStatus.NOT_PROVISIONED


def test_deprovision_of_a_student_never_provisioned_succeeds(wf: WorkflowStack) -> None:
    student = wf.student()
    payment_id = wf.paid(student, "DP")
    for source, payment in (("refund", payment_id), ("purge", None)):
        state = {"user_id": student["id"], "track": "DP", "payment_id": payment, "source": source}
        result = wf.run("deprovision", state)
        assert result["status"] == "SUCCEEDED", wf.history(result["executionArn"])[-3:]


@pytest.mark.parametrize(
    "state",
    [
        {"track": "DP", "payment_id": None, "source": "refund"},  # a refund names its payment
        {"track": "DP", "source": "purge"},  # every field of the contract is sent, null or not
        {"track": "DP", "payment_id": None, "source": "stripe"},  # not a deprovision source
    ],
)
def test_a_deprovision_input_outside_the_contract_fails_recorded_and_alerted(wf: WorkflowStack, state: dict) -> None:
    student = wf.student()
    result = wf.run("deprovision", {"user_id": student["id"], **state})
    assert result["status"] == "FAILED"
    if "payment_id" not in state:  # the first states refuse it before any step runs
        assert any(e["type"] == "ExecutionFailed" for e in wf.history(result["executionArn"]))
        return
    user = wf.row("SELECT provisioning_status, provisioning_error FROM users WHERE id = %s", student["id"])
    assert user["provisioning_status"] == "FAILED" and "InvalidInput" in user["provisioning_error"]
    assert wf.rows("SELECT 1 AS x FROM tool_provisioning WHERE user_id = %s", student["id"]) == []
