"""The money chain over real HTTP, in ``python -m local.stack`` (what ``make dev`` runs): every
paying student is enrolled, a refund takes the tools back, nobody pays for nothing.

- 50 students sign up and pay at the same moment (half each track): 50 ENROLLED with provisioning
  SUCCEEDED, 50 enrollment executions SUCCEEDED, one each.
- A refund: the student's database login fails afterwards, each tool's own ``status()`` says
  NOT_PROVISIONED, and the deprovision execution SUCCEEDED.
- Paying for nothing: a second track while one is paid is refused (409); pay first with the email
  of an existing account is refused (409 ``account_exists``).
- Unticking steps does not reopen a refund.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import psycopg
import pytest
import requests
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from tests.e2e.test_local_stack import Stack, _free_port

PASSWORD = "Money-Chain-42!"
PAYERS = 50
CARD = "4242424242424242"


@pytest.fixture(scope="module")
def money_stack(tmp_path_factory: pytest.TempPathFactory, make_database) -> Iterator[Stack]:
    state: Path = tmp_path_factory.mktemp("money-chain") / "state"
    started = Stack(state, make_database("apranova_e2e_money"), _free_port())
    yield started
    started.stop(timeout=30)
    started.drop_students_database()


# --- people and calls ---------------------------------------------------------------------------------


def _versions(stack: Stack) -> dict[str, str]:
    privacy = requests.get(stack.url("/api/compliance/privacy-policy/"), timeout=10).json()["version"]
    terms = requests.get(stack.url("/api/compliance/terms/"), timeout=10).json()["version"]
    return {"privacy_version": privacy, "terms_version": terms}


def _mailed_code(stack: Stack, email: str) -> str:
    """The code Cognito mailed to ``email``, read from the local mailbox as the person reads it."""
    from local.cognito import mailed_code

    return mailed_code(requests.get(stack.url("/_local/mailbox"), timeout=30).json()["items"], email)


def _student(stack: Stack, versions: dict[str, str], email: str | None = None) -> dict[str, Any]:
    email = email or f"payer-{uuid.uuid4().hex[:10]}@example.com"
    body = {"email": email, "password": PASSWORD, "name": "Pat Payer", "accept_privacy": True, **versions}
    registered = requests.post(stack.url("/api/auth/registration/"), json=body, timeout=60)
    assert registered.status_code == 201, registered.text
    verified = requests.post(
        stack.url("/api/auth/verify-email/"), json={"email": email, "code": _mailed_code(stack, email)}, timeout=60
    )
    assert verified.ok, verified.text
    login = requests.post(stack.url("/api/auth/login/"), json={"email": email, "password": PASSWORD}, timeout=60)
    assert login.status_code == 200, login.text
    return {
        "email": email,
        "id": login.json()["user"]["id"],
        "auth": {"Authorization": f"Bearer {login.json()['access']}"},
    }


def _admin(stack: Stack) -> dict[str, str]:
    admin = stack.info["dev_users"]["admin"]
    login = requests.post(stack.url("/api/auth/login/"), json=admin, timeout=30)
    assert login.status_code == 200, login.text
    return {"Authorization": f"Bearer {login.json()['access']}"}


def _checkout(stack: Stack, student: dict[str, Any], track: str) -> dict[str, str]:
    created = requests.post(
        stack.url("/api/payments/create-checkout-session/"), json={"track": track}, headers=student["auth"], timeout=60
    )
    assert created.status_code == 201, created.text
    return created.json()


def _pay(stack: Stack, session_id: str) -> dict[str, Any]:
    paid = requests.post(
        f"{stack.info['stripe_url']}/_test/checkout/sessions/{session_id}/pay", json={"card": CARD}, timeout=120
    )
    assert paid.status_code == 200, paid.text
    return paid.json()


def _profile(stack: Stack, student: dict[str, Any]) -> dict[str, Any]:
    return requests.get(stack.url("/api/auth/user/"), headers=student["auth"], timeout=30).json()


def _wait_enrolled(stack: Stack, student: dict[str, Any], timeout: float = 300) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        profile = _profile(stack, student)
        done = profile.get("enrollment_status") == "ENROLLED" and profile.get("tools_provisioned")
        if done or profile.get("provisioning_status") == "FAILED" or time.monotonic() > deadline:
            return profile
        time.sleep(0.5)


def _sfn(stack: Stack) -> Any:
    return boto3.client("stepfunctions", endpoint_url=stack.info["moto_url"], region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip


def _machine(stack: Stack, key: str) -> str:
    machines = _sfn(stack).list_state_machines()["stateMachines"]
    (arn,) = [m["stateMachineArn"] for m in machines if m["name"] == f"apranova-local-{key}"]
    return arn


def _execution(stack: Stack, key: str, name: str, timeout: float = 300) -> dict[str, Any]:
    """The execution ``name`` of machine ``key`` once it has ended (or as it is at the deadline)."""
    arn = _machine(stack, key).replace(":stateMachine:", ":execution:") + f":{name}"
    deadline = time.monotonic() + timeout
    while True:
        try:
            described = _sfn(stack).describe_execution(executionArn=arn)
        except _sfn(stack).exceptions.ExecutionDoesNotExist:
            described = {"status": "NOT STARTED"}
        if described["status"] not in ("RUNNING", "NOT STARTED") or time.monotonic() > deadline:
            return described
        time.sleep(0.5)


def _row(stack: Stack, query: str, *params: Any) -> dict[str, Any] | None:
    from psycopg.rows import dict_row

    with psycopg.connect(stack.database_url, autocommit=True, row_factory=dict_row) as conn:
        return conn.execute(query, params).fetchone()


# --- 50 payers at once --------------------------------------------------------------------------------


def test_fifty_students_paying_at_once_are_all_enrolled_exactly_once(money_stack: Stack) -> None:
    stack = money_stack
    versions = _versions(stack)
    tracks = ["DP", "FSD"] * (PAYERS // 2)
    # Sign-ups one after another (not what this test is about), the payments all at once.
    students = [_student(stack, versions) for _ in range(PAYERS)]
    with ThreadPoolExecutor(10) as pool:
        checkouts = list(pool.map(lambda pair: _checkout(stack, *pair), zip(students, tracks, strict=True)))

    start = threading.Barrier(PAYERS)

    def pay(checkout: dict[str, str]) -> dict[str, Any]:
        start.wait()  # all at the same moment
        return _pay(stack, checkout["session_id"])

    with ThreadPoolExecutor(PAYERS) as pool:
        paid = list(pool.map(pay, checkouts))
    # Every event was answered 200 at last (a first attempt may time out under the burst: Stripe redelivers).
    deliveries = [d for p in paid for d in p["deliveries"]]
    delivered = {d["event_id"] for d in deliveries if d["status"] == 200}
    assert not [d for d in deliveries if d["event_id"] not in delivered], deliveries[:5]

    with ThreadPoolExecutor(10) as pool:
        profiles = list(pool.map(lambda s: _wait_enrolled(stack, s), students))
    outcomes = [(p.get("enrollment_status"), p.get("provisioning_status"), p.get("track")) for p in profiles]
    assert outcomes == [("ENROLLED", "SUCCEEDED", track) for track in tracks], [
        (o, _row(stack, "SELECT provisioning_error FROM users WHERE id = %s", s["id"]))
        for o, s in zip(outcomes, students, strict=True)
        if o[:2] != ("ENROLLED", "SUCCEEDED")
    ]
    executions = [_execution(stack, "enrollment", f"enroll-{c['payment_id']}") for c in checkouts]
    assert [e["status"] for e in executions] == ["SUCCEEDED"] * PAYERS
    names = [
        e["name"] for e in _sfn(stack).list_executions(stateMachineArn=_machine(stack, "enrollment"))["executions"]
    ]
    assert all(names.count(f"enroll-{c['payment_id']}") == 1 for c in checkouts)
    for checkout in checkouts:
        payment = _row(stack, "SELECT status FROM payments WHERE id = %s", checkout["payment_id"])
        assert payment["status"] == "SUCCEEDED"
    assert _row(stack, "SELECT count(*) AS n FROM payment_outbox WHERE done_at IS NULL")["n"] == 0


# --- a refund takes the tools back ----------------------------------------------------------------------


def _tool_environment(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the stack's tool steps read, in this process: moto's SSM, the students' database."""
    students = make_conninfo(stack.database_url, dbname=f"{conninfo_to_dict(stack.database_url)['dbname']}_students")
    params = conninfo_to_dict(students)
    for key, value in {
        "AWS_ENDPOINT_URL": stack.info["moto_url"],
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "SSM_PREFIX": "/apranova/local",
        "STUDENTS_DB_ADMIN_URL": students,
        "STUDENTS_DB_NAME": str(params["dbname"]),
        "STUDENTS_DB_HOST": str(params.get("host") or "127.0.0.1"),
        "STUDENTS_DB_PORT": str(params.get("port") or 5432),
        # The student database's status reads its record in the application database.
        "DATABASE_URL": stack.database_url,
    }.items():
        monkeypatch.setenv(key, value)
    from apranova import db
    from functions.provision.tools import registry

    db.reset()
    registry.reset()


def test_a_refund_takes_every_tool_back(money_stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    from functions.provision.tools import Student, ToolStatus, registry

    stack = money_stack
    student = _student(stack, _versions(stack))
    checkout = _checkout(stack, student, "DP")
    _pay(stack, checkout["session_id"])
    assert _wait_enrolled(stack, student)["tools_provisioned"] is True
    credentials = requests.get(stack.url("/api/tools/db-credentials/"), headers=student["auth"], timeout=30)
    assert credentials.status_code == 200, credentials.text
    creds = credentials.json()
    with psycopg.connect(creds["connection_uri"], connect_timeout=10) as conn:  # the student's own login works
        assert conn.execute("SELECT 1").fetchone() == (1,)

    _tool_environment(stack, monkeypatch)
    person = Student(user_id=student["id"], email=student["email"], track="DP")
    tools = ("STUDENT_DATABASE", "SUPERSET", "PREFECT", "JUPYTER")
    assert {tool: registry.provisioner(tool).status(person) for tool in tools} == dict.fromkeys(
        tools, ToolStatus.PROVISIONED
    )

    asked = requests.post(
        stack.url("/api/payments/request-refund/"),
        json={"payment_id": checkout["payment_id"], "reason": "not for me"},
        headers=student["auth"],
        timeout=30,
    )
    assert asked.status_code == 201, asked.text
    approved = requests.post(
        stack.url(f"/api/admin/refund-requests/{asked.json()['id']}/approve/"), json={}, headers=_admin(stack),
        timeout=120,
    )  # fmt: skip
    assert approved.status_code == 200, approved.text

    deprovision = _execution(stack, "deprovision", f"deprovision-{checkout['payment_id']}")
    assert deprovision["status"] == "SUCCEEDED", deprovision
    payment = _row(stack, "SELECT status, refunded_amount_cents FROM payments WHERE id = %s", checkout["payment_id"])
    assert (payment["status"], payment["refunded_amount_cents"]) == ("REFUNDED", 49900)
    assert _profile(stack, student)["enrollment_status"] == "REFUNDED"
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(creds["connection_uri"], connect_timeout=10).close()
    assert {tool: registry.provisioner(tool).status(person) for tool in tools} == dict.fromkeys(
        tools, ToolStatus.NOT_PROVISIONED
    )
    registry.reset()
    from apranova import db

    db.reset()


# --- paying for nothing ----------------------------------------------------------------------------------


def test_paying_for_nothing_is_refused(money_stack: Stack) -> None:
    stack = money_stack
    versions = _versions(stack)
    student = _student(stack, versions)
    _pay(stack, _checkout(stack, student, "FSD")["session_id"])
    second = requests.post(
        stack.url("/api/payments/create-checkout-session/"), json={"track": "DP"}, headers=student["auth"], timeout=30
    )
    assert second.status_code == 409 and second.json()["error"]["code"] in ("already_paid", "already_enrolled")

    body = {"track": "DP", "email": student["email"], "name": "Someone Else", "accept_privacy": True, **versions}
    stranger = requests.post(stack.url("/api/payments/create-anonymous-checkout/"), json=body, timeout=30)
    assert stranger.status_code == 409 and stranger.json()["error"]["code"] == "account_exists"
    assert _row(stack, "SELECT count(*) AS n FROM payments WHERE customer_email = %s", student["email"])["n"] == 0
    assert _row(stack, "SELECT count(*) AS n FROM user_consents WHERE user_id = %s", student["id"])["n"] == 1


# --- the unticking bypass ------------------------------------------------------------------------------


def test_unticking_steps_does_not_reopen_the_refund(money_stack: Stack) -> None:
    stack = money_stack
    student = _student(stack, _versions(stack))
    checkout = _checkout(stack, student, "FSD")
    _pay(stack, checkout["session_id"])
    assert _wait_enrolled(stack, student)["enrollment_status"] == "ENROLLED"
    projects = requests.get(stack.url("/api/curriculum/projects/"), headers=student["auth"], timeout=30).json()
    first = projects["items"][0] if isinstance(projects, dict) else projects[0]
    started = requests.post(stack.url(f"/api/curriculum/projects/{first['id']}/start/"), headers=student["auth"],
                            json={}, timeout=30)  # fmt: skip
    assert started.status_code in (200, 201), started.text
    total = _row(
        stack,
        "SELECT count(*) AS n FROM project_steps s JOIN projects p ON p.id = s.project_id JOIN tracks t"
        " ON t.id = p.track_id WHERE t.code = 'FSD' AND s.is_active AND NOT s.is_optional AND p.is_active",
    )["n"]
    detail = requests.get(stack.url(f"/api/curriculum/projects/{first['id']}/"), headers=student["auth"], timeout=30)
    steps = detail.json()["steps"][: -(-total // 5)]  # the refund limit: a fifth of the course
    assert len(steps) * 5 >= total, "project 1 holds a fifth of the course"
    for step in steps:
        done = requests.post(stack.url(f"/api/curriculum/projects/{first['id']}/steps/{step['id']}/complete/"),
                             headers=student["auth"], json={}, timeout=30)  # fmt: skip
        assert done.status_code in (200, 201), done.text
    body = {"payment_id": checkout["payment_id"], "reason": "changed my mind"}
    ticked = requests.post(stack.url("/api/payments/request-refund/"), json=body, headers=student["auth"], timeout=30)
    assert ticked.status_code == 422 and ticked.json()["error"]["code"] == "refund_progress_exceeded"
    for step in steps:
        undone = requests.delete(stack.url(f"/api/curriculum/projects/{first['id']}/steps/{step['id']}/complete/"),
                                 headers=student["auth"], timeout=30)  # fmt: skip
        assert undone.status_code in (200, 204), undone.text
    unticked = requests.post(stack.url("/api/payments/request-refund/"), json=body, headers=student["auth"], timeout=30)
    assert unticked.status_code == 422 and unticked.json()["error"]["code"] == "refund_progress_exceeded"
