"""The tools routes through the real handler (``functions.tools.handler``), on the real database,
with SSM, EFS, ECS and EC2 in moto (in-process).

Callers carry the claims API Gateway's JWT authorizer hands over (an access token's ``sub`` and
``cognito:groups``); the route guard and the service do the rest. Provisioned state is arranged as
the enrollment workflow leaves it: user rows, ``tool_provisioning`` records, the credentials row
and SSM parameters; the workspace's AWS pieces are made by the workspace provisioner itself.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from psycopg.conninfo import conninfo_to_dict
from psycopg.types.json import Jsonb

from functions.provision.tools import Student
from functions.provision.tools.workspace import WorkspaceProvisioner
from functions.tools import config
from functions.tools.handler import lambda_handler
from local.events import LambdaContext, http_api_event
from tests.integration.workspace_support import Aws, moto_workspaces

PREFIX = "/apranova/tools-test"
DB_HOST = "students.db.apranova.test"
DP_ROUTES = {
    "STUDENT_DATABASE": "/api/tools/db-credentials/",
    "SUPERSET": "/api/tools/superset-access/",
    "PREFECT": "/api/tools/prefect-access/",
    "JUPYTER": "/api/tools/jupyter-access/",
}
ALL_ROUTES = [
    ("GET", "/api/tools/db-credentials/"),
    ("GET", "/api/tools/superset-access/"),
    ("GET", "/api/tools/prefect-access/"),
    ("GET", "/api/tools/jupyter-access/"),
    ("GET", "/api/tools/workspace-access/"),
    ("POST", "/api/tools/workspace/start/"),
    ("POST", "/api/tools/workspace/stop/"),
]
WORKSPACE_ROUTES = ALL_ROUTES[4:]
DP_ROUTE_LIST = ALL_ROUTES[:4]


@dataclass
class Person:
    user_id: str
    email: str
    groups: str = "[students]"

    @property
    def claims(self) -> dict[str, Any]:
        return {"sub": self.user_id, "token_use": "access", "cognito:groups": self.groups, "email": self.email}


def call(method: str, path: str, who: Person | None) -> tuple[int, dict[str, str], Any]:
    event = http_api_event(
        method,
        path,
        headers={"user-agent": "tools-tests/1.0"},
        claims=who.claims if who else None,
        source_ip="203.0.113.7",
        request_id=f"req-{uuid.uuid4().hex[:12]}",
    )
    response = lambda_handler(event, LambdaContext("tools"))
    body = json.loads(response["body"]) if response.get("body") else None
    return response["statusCode"], {k.lower(): v for k, v in (response.get("headers") or {}).items()}, body


@pytest.fixture(scope="module")
def aws(database_url: str) -> Iterator[Aws]:
    with moto_workspaces() as made:
        env = {**made.environment(PREFIX), "STUDENTS_DB_HOST": DB_HOST, "STUDENTS_DB_PORT": "6432"}
        try:
            with pytest.MonkeyPatch.context() as mp:
                for key, value in env.items():
                    mp.setenv(key, value)
                config.reset()
                yield made
        finally:
            config.reset()


@pytest.fixture
def people(conn) -> Iterator[Callable[..., Person]]:
    made: list[str] = []

    def make(track: str | None = "DP", status: str = "ENROLLED", groups: str = "[students]") -> Person:
        user_id = str(uuid.uuid4())
        email = f"tools-{user_id[:8]}@example.com"
        # The role is the database's (the guard reads it); the token's groups say the same.
        role = {"[trainers]": "trainer", "[admins]": "admin"}.get(groups, "student")
        conn.execute(
            "INSERT INTO users (id, email, role, track_id, enrollment_status, email_verified)"
            " VALUES (%s, %s, %s, (SELECT id FROM tracks WHERE code = %s), %s, true)",
            (user_id, email, role, track, status),
        )
        made.append(user_id)
        return Person(user_id, email, groups)

    yield make
    conn.execute("DELETE FROM users WHERE id = ANY(%s::uuid[])", (made,))


def record_tool(conn, who: Person, tool: str, status: str = "SUCCEEDED", url: str | None = None, **details: Any):
    conn.execute(
        "INSERT INTO tool_provisioning (user_id, tool, status, access_url, details, provisioned_at)"
        " VALUES (%s, %s, %s, %s, %s, CASE WHEN %s = 'SUCCEEDED' THEN now() END)",
        (who.user_id, tool, status, url, Jsonb(details), status),
    )


def provision_dp(conn, aws: Aws, who: Person, *, superset_password: bool = True) -> dict[str, str]:
    """What the DP enrollment leaves: four SUCCEEDED records, the credentials row, the passwords."""
    role = "s_" + uuid.uuid4().hex
    parameter = f"{PREFIX}/students/{who.user_id}/db-password"
    secrets = {"db": f"db-{uuid.uuid4().hex}", "superset": f"ss-{uuid.uuid4().hex}"}
    aws.ssm.put_parameter(Name=parameter, Value=secrets["db"], Type="SecureString")
    if superset_password:
        aws.ssm.put_parameter(
            Name=f"{PREFIX}/students/{who.user_id}/superset-password", Value=secrets["superset"], Type="SecureString"
        )
    conn.execute(
        "INSERT INTO student_database_credentials (user_id, database_name, schema_name, role_name,"
        " password_parameter_name) VALUES (%s, 'apranova_students', %s, %s, %s)",
        (who.user_id, role, role, parameter),
    )
    record_tool(conn, who, "STUDENT_DATABASE", external_id=role)
    record_tool(conn, who, "SUPERSET", url="https://superset.apranova.test/", username=f"u-{who.user_id[:8]}")
    record_tool(conn, who, "PREFECT", url="https://prefect.apranova.test/", username=f"p-{who.user_id[:8]}")
    record_tool(conn, who, "JUPYTER", url="https://jupyter.apranova.test/", username=f"j-{who.user_id[:8]}")
    return {**secrets, "role": role}


def provision_fsd(conn, aws: Aws, who: Person) -> WorkspaceProvisioner:
    workspace = WorkspaceProvisioner(aws.efs, aws.ecs, aws.ssm, aws.settings(PREFIX))
    result = workspace.provision(Student(who.user_id, who.email, "FSD"))
    details = dict(result.details)
    conn.execute(
        "INSERT INTO tool_provisioning (user_id, tool, status, external_id, details, provisioned_at)"
        " VALUES (%s, 'WORKSPACE', 'SUCCEEDED', %s, %s, now())",
        (who.user_id, details.pop("external_id"), Jsonb(details)),
    )
    return workspace


def audit_rows(conn, action: str, who: Person) -> list[dict[str, Any]]:
    return conn.execute(
        "SELECT actor_id::text AS actor_id, actor_role, subject_id::text AS subject_id, resource_type, resource_id,"
        " details, host(ip_address) AS ip, user_agent, request_id FROM audit_logs"
        " WHERE action = %s AND subject_id = %s ORDER BY id",
        (action, who.user_id),
    ).fetchall()


# -- DP -----------------------------------------------------------------------------------------


def test_db_credentials_are_the_callers_own_not_cached_and_audited(aws, people, conn) -> None:
    ada, bob = people(), people()
    mine, theirs = provision_dp(conn, aws, ada), provision_dp(conn, aws, bob)

    status, headers, body = call("GET", "/api/tools/db-credentials/", ada)

    assert status == 200, body
    uri = body.pop("connection_uri")
    assert body == {
        "host": DB_HOST,
        "port": 6432,
        "dbname": "apranova_students",
        "user": mine["role"],
        "password": mine["db"],
        "schema": mine["role"],
    }
    # The URI says the same to libpq (TLS required by default, as the students' database in AWS).
    assert conninfo_to_dict(uri) == {
        "host": DB_HOST,
        "port": "6432",
        "dbname": "apranova_students",
        "user": mine["role"],
        "password": mine["db"],
        "sslmode": "require",
    }
    assert headers["cache-control"] == "no-store"
    (row,) = audit_rows(conn, "CREDENTIALS_VIEWED", ada)
    assert row["actor_id"] == ada.user_id and row["actor_role"] == "student"
    assert (row["resource_type"], row["resource_id"]) == ("student_database", mine["role"])
    assert row["details"] == {"tool": "STUDENT_DATABASE", "dbname": "apranova_students", "schema": mine["role"]}
    assert (row["ip"], row["user_agent"]) == ("203.0.113.7", "tools-tests/1.0") and row["request_id"]
    assert mine["db"] not in json.dumps(row, default=str)

    # Bob, with the same route, gets his own (the user id comes from the token only).
    assert call("GET", "/api/tools/db-credentials/", bob)[2]["password"] == theirs["db"]


def test_superset_and_prefect_access(aws, people, conn) -> None:
    ada = people()
    secrets = provision_dp(conn, aws, ada)

    status, headers, superset = call("GET", "/api/tools/superset-access/", ada)
    assert status == 200 and headers["cache-control"] == "no-store"
    assert superset == {
        "tool": "SUPERSET",
        "url": "https://superset.apranova.test/",
        "username": f"u-{ada.user_id[:8]}",
        "password": secrets["superset"],
    }
    (viewed,) = audit_rows(conn, "CREDENTIALS_VIEWED", ada)  # a password left: audited (without it)
    assert (viewed["details"]["tool"], viewed["resource_id"]) == ("SUPERSET", f"u-{ada.user_id[:8]}")
    assert (viewed["ip"], viewed["user_agent"]) == ("203.0.113.7", "tools-tests/1.0")
    assert secrets["superset"] not in json.dumps(viewed, default=str)
    assert call("GET", "/api/tools/prefect-access/", ada)[2] == {
        "tool": "PREFECT",
        "url": "https://prefect.apranova.test/",
        "username": f"p-{ada.user_id[:8]}",
    }
    # JupyterHub's sign-in link, against the real hub: tests/integration/test_jupyter_sign_in.py.
    assert len(audit_rows(conn, "CREDENTIALS_VIEWED", ada)) == 1  # Prefect gives no password

    bob = people()
    provision_dp(conn, aws, bob, superset_password=False)
    assert call("GET", "/api/tools/superset-access/", bob)[2]["password"] is None
    assert audit_rows(conn, "CREDENTIALS_VIEWED", bob) == []


# -- refusals -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), ALL_ROUTES)
def test_no_token_is_401(aws, method, path) -> None:
    status, _, body = call(method, path, None)
    assert status == 401 and body["error"]["code"] == "not_authenticated"


@pytest.mark.parametrize(("method", "path"), ALL_ROUTES)
def test_staff_are_not_students_403(aws, people, conn, method, path) -> None:
    trainer = people(track="DP", groups="[trainers]")
    provision_dp(conn, aws, trainer)
    status, _, body = call(method, path, trainer)
    assert status == 403 and body["error"]["code"] == "permission_denied"


@pytest.mark.parametrize(("method", "path"), ALL_ROUTES)
def test_not_enrolled_is_402(aws, people, method, path) -> None:
    for who in (people(track=None, status="PENDING_PAYMENT"), people(track="DP", status="REFUNDED")):
        status, _, body = call(method, path, who)
        assert status == 402 and body["error"]["code"] == "payment_required", body


def test_a_suspended_enrollment_is_403(aws, people, conn) -> None:
    ada = people(status="SUSPENDED")
    provision_dp(conn, aws, ada)
    status, _, body = call("GET", "/api/tools/db-credentials/", ada)
    assert status == 403 and body["error"]["code"] == "account_suspended"


def test_another_tracks_tools_are_403_wrong_track(aws, people, conn) -> None:
    dp, fsd = people("DP"), people("FSD")
    provision_dp(conn, aws, dp)
    provision_fsd(conn, aws, fsd)
    for method, path in WORKSPACE_ROUTES:
        status, _, body = call(method, path, dp)
        assert status == 403 and body["error"]["code"] == "wrong_track", (path, body)
        assert body["error"]["details"][0]["track"] == "FSD"
    for method, path in DP_ROUTE_LIST:
        status, _, body = call(method, path, fsd)
        assert status == 403 and body["error"]["code"] == "wrong_track", (path, body)
    assert audit_rows(conn, "CREDENTIALS_VIEWED", fsd) == []


def test_tools_not_provisioned_are_409_with_the_status(aws, people, conn) -> None:
    ada = people("DP")
    conn.execute("UPDATE users SET provisioning_status = 'IN_PROGRESS' WHERE id = %s", (ada.user_id,))
    record_tool(conn, ada, "SUPERSET", status="IN_PROGRESS")
    record_tool(conn, ada, "PREFECT", status="FAILED")
    expected = {
        "STUDENT_DATABASE": "NOT_STARTED",
        "SUPERSET": "IN_PROGRESS",
        "PREFECT": "FAILED",
        "JUPYTER": "NOT_STARTED",
    }
    for tool, path in DP_ROUTES.items():
        status, headers, body = call("GET", path, ada)
        assert status == 409 and body["error"]["code"] == "not_provisioned", (path, body)
        assert body["error"]["details"] == [
            {"tool": tool, "status": expected[tool], "provisioning_status": "IN_PROGRESS"}
        ]

    fsd = people("FSD")
    for method, path in WORKSPACE_ROUTES:
        status, _, body = call(method, path, fsd)
        assert status == 409 and body["error"]["details"][0]["status"] == "NOT_STARTED", (path, body)
    assert aws.ecs.list_tasks(cluster=aws.cluster, startedBy=fsd.user_id, desiredStatus="RUNNING")["taskArns"] == []


def test_a_record_without_its_password_is_409_partial_and_not_audited(aws, people, conn) -> None:
    ada = people("DP")
    provision_dp(conn, aws, ada)
    aws.ssm.delete_parameter(Name=f"{PREFIX}/students/{ada.user_id}/db-password")
    status, _, body = call("GET", "/api/tools/db-credentials/", ada)
    assert status == 409 and body["error"]["details"][0]["status"] == "PARTIAL"
    assert audit_rows(conn, "CREDENTIALS_VIEWED", ada) == []


# -- FSD: the workspace --------------------------------------------------------------------------


def test_workspace_access_start_and_stop(aws, people, conn) -> None:
    ada = people("FSD")
    workspace = provision_fsd(conn, aws, ada)
    password = aws.ssm.get_parameter(Name=f"{PREFIX}/students/{ada.user_id}/workspace-password", WithDecryption=True)[
        "Parameter"
    ]["Value"]

    status, headers, body = call("GET", "/api/tools/workspace-access/", ada)
    assert status == 200 and headers["cache-control"] == "no-store"
    assert body == {"status": "STOPPED", "url": None, "started_at": None, "password": password}
    (viewed,) = audit_rows(conn, "CREDENTIALS_VIEWED", ada)
    assert viewed["details"] == {"tool": "WORKSPACE", "status": "STOPPED"} and viewed["actor_id"] == ada.user_id
    assert password not in json.dumps(viewed, default=str)

    status, headers, started = call("POST", "/api/tools/workspace/start/", ada)
    assert status == 200 and headers["cache-control"] == "no-store", started
    (task_arn,) = aws.ecs.list_tasks(cluster=aws.cluster, startedBy=ada.user_id, desiredStatus="RUNNING")["taskArns"]
    state = workspace.describe(Student(ada.user_id, ada.email, "FSD"))
    assert state.task_arn == task_arn and state.private_ip
    assert started["status"] == "RUNNING" and started["url"] == f"http://{state.private_ip}:8080/"
    record = conn.execute(
        "SELECT last_activity_at > now() - interval '1 minute' AS recent FROM tool_provisioning"
        " WHERE user_id = %s AND tool = 'WORKSPACE'",
        (ada.user_id,),
    ).fetchone()
    assert record["recent"] is True
    (audited,) = audit_rows(conn, "WORKSPACE_STARTED", ada)
    assert audited["actor_id"] == ada.user_id and audited["resource_id"] == task_arn
    assert password not in json.dumps(audited, default=str)

    # Starting again starts nothing new.
    assert call("POST", "/api/tools/workspace/start/", ada)[0] == 200
    assert aws.ecs.list_tasks(cluster=aws.cluster, startedBy=ada.user_id, desiredStatus="RUNNING")["taskArns"] == [
        task_arn
    ]

    status, _, access = call("GET", "/api/tools/workspace-access/", ada)
    assert status == 200 and access["status"] == "RUNNING"
    assert access["url"] == started["url"] and access["password"] == password and password not in access["url"]

    status, _, stopped = call("POST", "/api/tools/workspace/stop/", ada)
    assert status == 200 and stopped["status"] in ("STOPPING", "STOPPED")
    assert aws.ecs.list_tasks(cluster=aws.cluster, startedBy=ada.user_id, desiredStatus="RUNNING")["taskArns"] == []
    (audited,) = audit_rows(conn, "WORKSPACE_STOPPED", ada)
    assert audited["resource_id"] == task_arn and audited["details"]["reason"] == "student"
    assert call("GET", "/api/tools/workspace-access/", ada)[2]["status"] == "STOPPED"
    workspace.deprovision(Student(ada.user_id, ada.email, "FSD"))


def test_a_workspace_record_without_its_aws_pieces_is_409(aws, people, conn) -> None:
    ada = people("FSD")
    workspace = provision_fsd(conn, aws, ada)
    workspace.deprovision(Student(ada.user_id, ada.email, "FSD"))  # the record still says SUCCEEDED
    for method, path in WORKSPACE_ROUTES[:2]:
        status, _, body = call(method, path, ada)
        assert status == 409 and body["error"]["details"][0]["status"] == "PARTIAL", (path, body)
