"""``GET /api/tools/jupyter-access/`` gives a way in: a one-time sign-in link that an HTTP client
follows into the real local JupyterHub (``.tools/jupyterhub``) and ends signed in as the student,
once, and as no one else. The route runs through the real handler; SSM in moto (in-process)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import requests
from moto import mock_aws
from psycopg.types.json import Jsonb

from functions.provision.tools import Student
from functions.provision.tools.jupyterhub import JupyterHubProvisioner, JupyterHubSettings
from functions.tools import config
from functions.tools.handler import lambda_handler
from local.events import LambdaContext, http_api_event
from local.tools.jupyterhub import JupyterHubHandle, bootstrap_jupyterhub, start
from tests.integration.tool_server_support import start_or_skip

PREFIX = "/apranova/jupyter-sign-in-test"
ROUTE = "/api/tools/jupyter-access/"


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterHubHandle]:
    handle = start_or_skip(lambda: start(tmp_path_factory.mktemp("state")))
    yield handle
    handle.stop()


@pytest.fixture(scope="module")
def tools(hub: JupyterHubHandle, database_url: str) -> Iterator[JupyterHubProvisioner]:
    with mock_aws(), pytest.MonkeyPatch.context() as mp:
        ssm = boto3.client("ssm", region_name="us-east-1")
        bootstrap_jupyterhub(ssm, PREFIX, hub)
        mp.setenv("SSM_PREFIX", PREFIX)
        mp.setenv("STUDENTS_DB_HOST", "students.db.apranova.test")
        config.reset()
        yield JupyterHubProvisioner(ssm, JupyterHubSettings(ssm_prefix=PREFIX))
        config.reset()


def enrolled_dp_student(conn, tools: JupyterHubProvisioner) -> dict[str, Any]:
    """A DP student the enrollment workflow provisioned on the hub (its record as the step leaves it)."""
    user_id = str(uuid.uuid4())
    email = f"jupyter-{user_id[:8]}@example.com"
    conn.execute(
        "INSERT INTO users (id, email, role, track_id, enrollment_status, email_verified)"
        " VALUES (%s, %s, 'student', (SELECT id FROM tracks WHERE code = 'DP'), 'ENROLLED', true)",
        (user_id, email),
    )
    result = tools.provision(Student(user_id=user_id, email=email, track="DP"))
    conn.execute(
        "INSERT INTO tool_provisioning (user_id, tool, status, access_url, details, provisioned_at)"
        " VALUES (%s, 'JUPYTER', 'SUCCEEDED', %s, %s, now())",
        (user_id, result.details["access_url"], Jsonb({"username": result.details["username"]})),
    )
    return {"user_id": user_id, "email": email, "username": result.details["username"]}


def jupyter_access(student: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    claims = {
        "sub": student["user_id"],
        "token_use": "access",
        "cognito:groups": "[students]",
        "email": student["email"],
    }
    event = http_api_event("GET", ROUTE, claims=claims, headers={"user-agent": "jupyter-tests/1.0"})
    response = lambda_handler(event, LambdaContext("tools"))
    return response["statusCode"], json.loads(response["body"])


def signed_in_as(session: requests.Session, hub: JupyterHubHandle) -> str | None:
    """Who the hub's home page says is signed in (None: the hub asks to sign in)."""
    home = session.get(f"{hub.url}/hub/home", allow_redirects=False, timeout=10)
    if home.status_code != 200:
        return None
    model = session.get(
        f"{hub.url}/hub/api/user", headers={"X-XSRFToken": session.cookies.get("_xsrf", "")}, timeout=10
    )
    return model.json().get("name") if model.status_code == 200 else "?"


def test_the_link_signs_the_student_in_once_and_as_themself(tools, hub, conn) -> None:
    ada = enrolled_dp_student(conn, tools)
    status, access = jupyter_access(ada)
    assert status == 200, access
    assert (access["tool"], access["username"], access["login_expires_in"]) == ("JUPYTER", ada["username"], 60)
    assert access["url"] == f"{hub.url}/user/{ada['username']}/"
    (audited,) = conn.execute(
        "SELECT details FROM audit_logs WHERE subject_id = %s AND action = 'CREDENTIALS_VIEWED'", (ada["user_id"],)
    ).fetchall()
    assert audited["details"]["tool"] == "JUPYTER" and "ticket" not in json.dumps(audited["details"])

    browser = requests.Session()
    assert signed_in_as(browser, hub) is None  # nobody yet
    arrived = browser.get(access["login_url"], allow_redirects=False, timeout=10)
    assert arrived.status_code == 302 and arrived.headers["Location"] == f"/user/{ada['username']}/"
    assert signed_in_as(browser, hub) == ada["username"]

    # Spent: the same link signs no one in again.
    again = requests.Session()
    assert again.get(access["login_url"], allow_redirects=False, timeout=10).status_code == 403
    assert signed_in_as(again, hub) is None


def test_each_student_gets_their_own_way_in(tools, hub, conn) -> None:
    ada, bob = enrolled_dp_student(conn, tools), enrolled_dp_student(conn, tools)
    links = {who["username"]: jupyter_access(who)[1]["login_url"] for who in (ada, bob)}
    for name, link in links.items():
        browser = requests.Session()
        browser.get(link, timeout=10)
        assert signed_in_as(browser, hub) == name


def test_a_made_up_or_tampered_ticket_signs_no_one_in(tools, hub, conn) -> None:
    ada = enrolled_dp_student(conn, tools)
    link = jupyter_access(ada)[1]["login_url"]
    tampered = link.replace("ticket=", "ticket=x")
    browser = requests.Session()
    assert browser.get(tampered, allow_redirects=False, timeout=10).status_code == 403
    assert browser.get(f"{hub.url}/hub/apranova-login", allow_redirects=False, timeout=10).status_code == 403
    assert signed_in_as(browser, hub) is None
    # The untampered link still works (a failed guess spends nothing).
    assert browser.get(link, allow_redirects=False, timeout=10).status_code == 302


def test_a_next_outside_the_students_server_goes_to_the_hub_home(tools, hub, conn) -> None:
    ada, bob = enrolled_dp_student(conn, tools), enrolled_dp_student(conn, tools)
    link = jupyter_access(ada)[1]["login_url"]
    elsewhere = link.replace(f"next=%2Fuser%2F{ada['username']}%2F", f"next=%2Fuser%2F{bob['username']}%2F")
    assert elsewhere != link
    arrived = requests.Session().get(elsewhere, allow_redirects=False, timeout=10)
    assert arrived.status_code == 302 and arrived.headers["Location"] == "/hub/home"
