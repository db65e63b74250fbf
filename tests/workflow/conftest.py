"""The workflow tests execute the state machines CDK synthesizes, in moto (docs/principles.md §6): the session's
synthesized template is resolved to moto ARNs, every Lambda task is dispatched to the in-repo step
handler, and the steps reach real things — the run's PostgreSQL (app and students' databases), the
tools (real servers or emulators, as each tool's provisioner tests use them) and moto for AWS.
Retry intervals do not sleep here (moto's retrier is patched); the retries themselves happen."""

from __future__ import annotations

import json
import os
import time
import types
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from local import lambda_dispatch, moto_stack
from local import workflows as local_workflows

# boto3's per-service endpoints: the steps' AWS calls go to the moto server, while other tests'
# in-process mock_aws keeps intercepting the services it mocks.
SERVICES = ("SSM", "SES", "SESV2", "SFN", "LAMBDA", "EFS", "ECS", "EC2", "SECRETSMANAGER", "IAM", "STS")
SENDER = "no-reply@apranova.test"
OPS = "ops@apranova.test"


@dataclass
class WorkflowStack:
    moto_url: str
    database_url: str
    students_url: str
    arns: dict[str, str]
    env: dict[str, str]
    state_dir: Path
    handles: list[Any] = field(default_factory=list)

    def sfn(self) -> Any:
        return moto_stack.client("stepfunctions", self.moto_url)

    def client(self, service: str) -> Any:
        return moto_stack.client(service, self.moto_url)

    def run(self, machine: str, payload: dict[str, Any], timeout: float = 60.0) -> dict[str, Any]:
        """Starts an execution and waits for it to end; returns describe_execution."""
        sfn = self.sfn()
        arn = sfn.start_execution(
            stateMachineArn=self.arns[machine], name=f"t-{uuid.uuid4().hex[:12]}", input=json.dumps(payload)
        )["executionArn"]
        return self.wait(arn, timeout)

    def wait(self, execution_arn: str, timeout: float = 60.0) -> dict[str, Any]:
        sfn = self.sfn()
        deadline = time.monotonic() + timeout
        while True:
            described = sfn.describe_execution(executionArn=execution_arn)
            if described["status"] != "RUNNING":
                return described
            if time.monotonic() > deadline:
                raise AssertionError(f"execution still running after {timeout} s: {execution_arn}")
            time.sleep(0.05)

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        return self.sfn().get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]

    def row(self, query: str, *params: Any) -> dict[str, Any] | None:
        with psycopg.connect(self.database_url, autocommit=True, row_factory=dict_row) as conn:
            return conn.execute(query, params).fetchone()

    def rows(self, query: str, *params: Any) -> list[dict[str, Any]]:
        with psycopg.connect(self.database_url, autocommit=True, row_factory=dict_row) as conn:
            return conn.execute(query, params).fetchall()

    def students_db(self, query: str, *params: Any) -> list[dict[str, Any]]:
        with psycopg.connect(self.students_url, autocommit=True, row_factory=dict_row) as conn:
            return conn.execute(query, params).fetchall()

    def student(self, *, role: str = "student") -> dict[str, str]:
        user_id, email = str(uuid.uuid4()), f"wf-{uuid.uuid4().hex[:10]}@example.com"
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO users (id, email, name, role, email_verified) VALUES (%s, %s, 'Wanda Flow', %s, true)",
                (user_id, email, role),
            )
        return {"id": user_id, "email": email}

    def paid(self, student: dict[str, str], track: str) -> str:
        """A SUCCEEDED payment for ``student`` and ``track`` (what the webhook records)."""
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            row = conn.execute(
                """
                INSERT INTO payments (user_id, track, amount_cents, currency, status, succeeded_at, idempotency_key)
                SELECT %s, code, price_cents, currency, 'SUCCEEDED', now(), %s FROM tracks WHERE code = %s
                RETURNING id::text
                """,
                (student["id"], f"wf-{uuid.uuid4()}", track),
            ).fetchone()
        return row[0]

    def trainer(self, track: str, capacity: int | None = None) -> dict[str, str]:
        person = self.student(role="trainer")
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            conn.execute(
                "UPDATE users SET track_id = (SELECT id FROM tracks WHERE code = %s) WHERE id = %s",
                (track, person["id"]),
            )
            if capacity is not None:
                conn.execute(
                    "INSERT INTO trainer_profiles (user_id, max_students) VALUES (%s, %s)", (person["id"], capacity)
                )
        return person


def _tool_environment(stack_dir: Path, moto_url: str) -> tuple[dict[str, str], list[Any]]:
    """The tools the steps provision, started for the session; their settings as environment."""
    from tests.workflow import tools

    return tools.start_all(stack_dir, moto_url)


@pytest.fixture(scope="session")
def workflow_stack(
    template: Any, database_url: str, make_database: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkflowStack]:
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

    state_dir = tmp_path_factory.mktemp("workflow")
    students_url = make_database("apranova_students")
    moto = moto_stack.MotoServer()
    moto.start()
    saved_time = retrier_decl.time
    retrier_decl.time = types.SimpleNamespace(sleep=lambda _seconds: None)  # retries happen, without waiting
    saved_env = dict(os.environ)
    try:
        moto_stack.client("ses", moto.url).verify_email_identity(EmailAddress=SENDER)
        from psycopg.conninfo import conninfo_to_dict

        students = conninfo_to_dict(students_url)
        env = {
            **{f"AWS_ENDPOINT_URL_{service}": moto.url for service in SERVICES},
            "EMAIL_SENDER": SENDER,
            "OPS_EMAIL": OPS,
            "SPA_ORIGIN": "http://spa.test",
            "SSM_PREFIX": "/apranova/wf",
            "STUDENTS_DB_ADMIN_URL": students_url,
            "STUDENTS_DB_NAME": str(students["dbname"]),
            "STUDENTS_DB_HOST": str(students.get("host") or "127.0.0.1"),
            "STUDENTS_DB_PORT": str(students.get("port") or 5432),
            "STUDENTS_DB_STATEMENT_TIMEOUT": "5s",
        }
        os.environ.update(env)
        tool_env, handles = _tool_environment(state_dir, moto.url)
        env.update(tool_env)
        os.environ.update(tool_env)
        _reset_caches()
        workflows = local_workflows.extract(template.to_json())
        suffix = uuid.uuid4().hex[:6]
        arns = local_workflows.install(
            moto.url, workflows, {"enrollment": f"wf-enrollment-{suffix}", "deprovision": f"wf-deprovision-{suffix}"}
        )
        yield WorkflowStack(moto.url, database_url, students_url, arns, env, state_dir, handles)
    finally:
        for handle in reversed(locals().get("handles") or []):
            handle.stop()
        retrier_decl.time = saved_time
        lambda_dispatch.FAULTS.clear()
        os.environ.clear()
        os.environ.update(saved_env)
        _reset_caches()
        moto.stop()
        from psycopg.conninfo import conninfo_to_dict

        from tests.student_roles import drop_database_and_student_roles

        drop_database_and_student_roles(database_url, str(conninfo_to_dict(students_url)["dbname"]))


def _reset_caches() -> None:
    from apranova import alerts, mail, workflows
    from functions.provision.steps import assign_trainer
    from functions.provision.tools import registry

    registry.reset()
    mail.reset()
    alerts.reset()
    workflows.reset()
    assign_trainer.settings.cache_clear()


@pytest.fixture
def wf(workflow_stack: WorkflowStack) -> Iterator[WorkflowStack]:
    lambda_dispatch.FAULTS.clear()
    yield workflow_stack
    lambda_dispatch.FAULTS.clear()
