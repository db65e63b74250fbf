"""``python -m local.stack`` (what ``make dev`` runs), started as a real process and used over HTTP.

The stack gets its own state dir, ports and a fresh database, so it runs beside a developer's own
``make dev`` without touching it.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import psycopg
import pytest
import requests
from psycopg.conninfo import conninfo_to_dict

from local import cognito as local_cognito
from local.jwt_check import JwtCheck

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 60


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _port_is_free(port: int) -> bool:
    """Whether a server could listen on ``port`` again. Like every server (Werkzeug's included) it
    sets SO_REUSEADDR: the closed connections' TIME_WAIT entries do not hold a port, a listener does."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


class Stack:
    def __init__(self, state_dir: Path, database_url: str, port: int) -> None:
        self.state_dir = state_dir
        self.database_url = database_url
        self.port = port
        self.log = (state_dir.parent / f"stack-{port}-{time.monotonic_ns()}.log").open("w+")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MOTO_"))}
        env.update({"PORT": str(port), "LOCAL_STATE_DIR": str(state_dir), "DATABASE_URL": database_url})
        self.process = subprocess.Popen(
            [sys.executable, "-m", "local.stack"], cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT
        )
        self.info = self._wait()

    def _wait(self) -> dict[str, Any]:
        stack_file = self.state_dir / "stack.json"
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the stack exited with {self.process.returncode}:\n{self.output()}")
            if stack_file.exists():
                return json.loads(stack_file.read_text())
            time.sleep(0.1)
        self.process.kill()
        raise AssertionError(f"no stack.json after {START_TIMEOUT} s:\n{self.output()}")

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read()[-5000:]

    def stop(self, timeout: float = 10) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise

    def drop_students_database(self) -> None:
        """The stack made ``<db>_students`` with a login role per DP student (roles are server-wide)."""
        from psycopg.conninfo import conninfo_to_dict

        from tests.student_roles import drop_database_and_student_roles

        name = f"{conninfo_to_dict(self.database_url)['dbname']}_students"
        drop_database_and_student_roles(self.database_url, name)

    def url(self, path: str) -> str:
        return self.info["api_url"] + path

    def mailed_code(self, email: str) -> str:
        """The newest code Cognito mailed to ``email``, read from the local mailbox as a person would."""
        items = requests.get(self.url("/_local/mailbox"), timeout=10).json()["items"]
        return local_cognito.mailed_code(items, email)


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("local-state") / "state"


@pytest.fixture(scope="module")
def stack_database(make_database) -> str:
    return make_database("apranova_e2e")


@pytest.fixture(scope="module")
def stack(state_dir: Path, stack_database: str) -> Iterator[Stack]:
    started = Stack(state_dir, stack_database, _free_port())
    yield started
    started.stop()
    started.drop_students_database()


def _cognito(info: dict[str, Any]) -> Any:
    return boto3.client(
        "cognito-idp",
        endpoint_url=info["moto_url"],
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def _login(info: dict[str, Any], user: str) -> dict[str, Any]:
    return _cognito(info).initiate_auth(
        ClientId=info["cognito"]["client_id"],
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": info["dev_users"][user]["email"], "PASSWORD": info["dev_users"][user]["password"]},
    )["AuthenticationResult"]


def test_stack_json_keeps_the_contract(stack: Stack) -> None:
    info = stack.info
    assert set(info) == {
        "api_url",
        "stripe_url",
        "github_url",
        "moto_url",
        "database_url",
        "pooler_url",
        "workspace_url",
        "workspace_proxy_url",
        "cognito",
        "dev_users",
    }
    assert info["api_url"] == f"http://127.0.0.1:{stack.port}"
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", info["stripe_url"])
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", info["workspace_url"])  # the workspaces' front door
    assert info["database_url"].startswith("postgresql://")
    assert info["pooler_url"].startswith("postgresql://") and info["pooler_url"] != info["database_url"]
    assert set(info["cognito"]) == {"user_pool_id", "client_id"}
    assert set(info["dev_users"]) == {"admin", "trainer_dp", "trainer_fsd"}
    for user in info["dev_users"].values():
        assert set(user) == {"email", "password"} and user["email"].endswith("@apranova.local")
    assert "ApraNova local stack is up" in stack.output()


def test_the_functions_connect_through_the_pooler_which_refuses_what_rds_proxy_refuses(stack: Stack) -> None:
    info = stack.info
    with psycopg.connect(info["pooler_url"], autocommit=True) as pooled:
        database = pooled.execute("SELECT current_database()").fetchone()[0]
    assert database == conninfo_to_dict(info["database_url"])["dbname"]
    with pytest.raises(psycopg.OperationalError, match="unsupported startup parameter: options"):
        psycopg.connect(info["pooler_url"], options="-c statement_timeout=1000")
    # The functions connect only through the pooler (their DATABASE_URL): they reach the database.
    assert requests.get(stack.url("/api/health/"), timeout=10).json()["database"] == "ok"


def test_tracks_over_http(stack: Stack) -> None:
    response = requests.get(stack.url("/api/curriculum/tracks/"), timeout=10)
    assert response.status_code == 200
    tracks = {t["code"]: t for t in response.json()["items"]}
    assert (tracks["DP"]["price_cents"], tracks["DP"]["currency"], tracks["DP"]["project_count"]) == (49900, "USD", 3)
    assert (tracks["FSD"]["price_cents"], tracks["FSD"]["currency"], tracks["FSD"]["project_count"]) == (
        59900,
        "USD",
        3,
    )


def test_health(stack: Stack) -> None:
    response = requests.get(stack.url("/api/health/"), timeout=10)
    assert response.status_code == 200
    assert response.json()["database"] == "ok"


def test_unknown_route_is_a_json_404(stack: Stack) -> None:
    response = requests.get(stack.url("/api/nothing/here/"), timeout=10)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_wrong_method_is_a_405_with_allow(stack: Stack) -> None:
    response = requests.post(stack.url("/api/curriculum/tracks/"), json={}, timeout=10)
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET"
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_oversized_body_is_a_413(stack: Stack) -> None:
    body = json.dumps({"blob": "x" * (1024 * 1024 + 10)})
    response = requests.post(
        stack.url("/api/anything/"), data=body, headers={"Content-Type": "application/json"}, timeout=10
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


def test_query_strings_and_binary_bodies_reach_the_function(stack: Stack) -> None:
    response = requests.put(
        stack.url("/api/health/?a=1&a=2"), data=b"\x00\xff", headers={"Content-Type": "image/png"}, timeout=10
    )
    assert response.status_code == 405  # the function answered (its guard decoded the event)


def test_openapi_document(stack: Stack) -> None:
    response = requests.get(stack.url("/api/openapi.json"), timeout=10)
    assert response.status_code == 200
    document = response.json()
    assert document["info"]["title"] == "ApraNova API"
    assert "/api/curriculum/tracks/" in document["paths"]


def test_docs_page_uses_only_local_assets(stack: Stack) -> None:
    response = requests.get(stack.url("/api/docs/"), timeout=10)
    assert response.status_code == 200
    assert "text/html" in response.headers["Content-Type"]
    sources = re.findall(r'(?:src|href)="([^"]+)"', response.text)
    assert sources and not [s for s in sources if "://" in s or s.startswith("//")]
    for source in sources:
        assert requests.get(stack.url(source), timeout=10).status_code == 200, source


def test_mailbox(stack: Stack) -> None:
    response = requests.get(stack.url("/_local/mailbox"), timeout=10)
    assert response.status_code == 200
    assert isinstance(response.json()["items"], list)


def test_mailbox_lists_what_ses_accepted_newest_first(stack: Stack) -> None:
    info = stack.info
    ses = boto3.client(
        "sesv2",
        endpoint_url=info["moto_url"],
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    for subject in ("first", "second"):
        ses.send_email(
            FromEmailAddress="no-reply@apranova.local",
            Destination={"ToAddresses": ["student@example.com"]},
            Content={"Simple": {"Subject": {"Data": subject}, "Body": {"Text": {"Data": f"{subject} body"}}}},
        )
    items = requests.get(stack.url("/_local/mailbox"), timeout=10).json()["items"]
    assert [i["subject"] for i in items[:2]] == ["second", "first"]
    assert items[0]["to"] == ["student@example.com"]
    assert items[0]["from"] == "no-reply@apranova.local"
    assert items[0]["body_text"] == "second body" and items[0]["sent_at"]


def test_dev_users_log_in_and_their_tokens_pass_the_jwt_check(stack: Stack) -> None:
    info = stack.info
    check = JwtCheck(
        moto_url=info["moto_url"],
        region="us-east-1",
        user_pool_id=info["cognito"]["user_pool_id"],
        client_id=info["cognito"]["client_id"],
    )
    groups = {"admin": ["admins"], "trainer_dp": ["trainers"], "trainer_fsd": ["trainers"]}
    for user, expected in groups.items():
        claims = check.verify(_login(info, user)["AccessToken"])
        assert claims["cognito:groups"] == expected


def test_dev_users_have_their_rows(stack: Stack) -> None:
    import psycopg

    info = stack.info
    cognito = _cognito(info)
    expected = {"admin": ("admin", None), "trainer_dp": ("trainer", "DP"), "trainer_fsd": ("trainer", "FSD")}
    with psycopg.connect(info["database_url"]) as conn:
        for key, user in info["dev_users"].items():
            found = cognito.admin_get_user(UserPoolId=info["cognito"]["user_pool_id"], Username=user["email"])
            sub = next(a["Value"] for a in found["UserAttributes"] if a["Name"] == "sub")
            row = conn.execute(
                "SELECT u.email, u.role, t.code FROM users u LEFT JOIN tracks t ON t.id = u.track_id WHERE u.id = %s",
                (sub,),
            ).fetchone()
            assert row is not None, key
            assert (row[0], row[1], row[2]) == (user["email"], *expected[key])


def test_a_person_pays_on_the_emulator_page_and_the_webhook_has_fired(stack: Stack) -> None:
    """Create checkout → the pay page → back at the success URL, with the payment recorded."""
    import uuid

    email, password = f"payer-{uuid.uuid4().hex[:8]}@example.com", "Payer-Passw0rd!"
    registration = {"email": email, "password": password, "name": "Pat Payer", "accept_privacy": True}
    refused = requests.post(
        stack.url("/api/auth/registration/"),
        json={**registration, "privacy_version": "0", "terms_version": "0"},
        timeout=10,
    )
    current = {d["field"].removeprefix("body."): d["current"] for d in refused.json()["error"]["details"]}
    assert requests.post(stack.url("/api/auth/registration/"), json={**registration, **current}, timeout=10).ok
    code = stack.mailed_code(email)
    assert requests.post(stack.url("/api/auth/verify-email/"), json={"email": email, "code": code}, timeout=10).ok
    access = requests.post(stack.url("/api/auth/login/"), json={"email": email, "password": password}, timeout=10)
    headers = {"Authorization": f"Bearer {access.json()['access']}"}

    created = requests.post(
        stack.url("/api/payments/create-checkout-session/"), json={"track": "DP"}, headers=headers, timeout=30
    )
    assert created.status_code == 201, created.text
    checkout = created.json()
    assert checkout["checkout_url"].startswith(stack.info["stripe_url"] + "/pay/")
    page = requests.get(checkout["checkout_url"], timeout=10)
    assert page.status_code == 200 and "499.00 USD" in page.text
    paid = requests.post(checkout["checkout_url"], data={"card": "4242424242424242"}, allow_redirects=False, timeout=30)
    assert paid.status_code == 303
    success = paid.headers["Location"]
    assert success == stack.url(f"/_local/payment/success?session_id={checkout['session_id']}")
    assert "Payment received" in requests.get(success, timeout=10).text
    status = requests.get(stack.url(f"/api/payments/verify-session/?session_id={checkout['session_id']}"), timeout=10)
    assert status.json()["payment_status"] == "SUCCEEDED"
    mine = requests.get(stack.url("/api/payments/my-payments/"), headers=headers, timeout=10).json()["items"]
    assert [(p["id"], p["status"], p["amount_cents"]) for p in mine] == [(checkout["payment_id"], "SUCCEEDED", 49900)]
    sfn = boto3.client(
        "stepfunctions",
        endpoint_url=stack.info["moto_url"],
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    (machine,) = [m for m in sfn.list_state_machines()["stateMachines"] if m["name"] == "apranova-local-enrollment"]
    runs = sfn.list_executions(stateMachineArn=machine["stateMachineArn"])["executions"]
    assert f"enroll-{checkout['payment_id']}" in [r["name"] for r in runs]

    # Within seconds the enrollment workflow has run: enrolled, tools provisioned, project 1
    # unlocked, the welcome email sent.
    deadline = time.monotonic() + 30
    while True:
        profile = requests.get(stack.url("/api/auth/user/"), headers=headers, timeout=10).json()
        if profile["tools_provisioned"] or profile["provisioning_status"] == "FAILED" or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert (profile["enrollment_status"], profile["track"]) == ("ENROLLED", "DP"), profile
    assert (profile["provisioning_status"], profile["tools_provisioned"]) == ("SUCCEEDED", True), profile
    import psycopg

    with psycopg.connect(stack.info["database_url"]) as conn:
        unlocked = conn.execute(
            "SELECT p.number, sp.status FROM student_progress sp JOIN projects p ON p.id = sp.project_id"
            " JOIN users u ON u.id = sp.student_id WHERE u.email = %s",
            (email,),
        ).fetchall()
    assert unlocked == [(1, "UNLOCKED")]
    # The welcome email is the workflow's last step, just after the profile turns provisioned.
    WELCOME = "Welcome to ApraNova — Data Professional"  # noqa: N806 - the track's name, not its code
    deadline = time.monotonic() + 10
    while True:
        mails = requests.get(stack.url("/_local/mailbox"), timeout=10).json()["items"]
        welcome = [m for m in mails if email in m["to"] and m["subject"] == WELCOME]
        if welcome or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert len(welcome) == 1
    credentials = requests.get(stack.url("/api/tools/db-credentials/"), headers=headers, timeout=10)
    assert credentials.status_code == 200 and credentials.json()["password"]

    # A repository deliverable without a commit: the local GitHub resolves its HEAD, offline.
    github = stack.info["github_url"]
    owner = f"pat-{uuid.uuid4().hex[:6]}"
    assert requests.post(f"{github}/_test/repos", json={"owner": owner, "repo": "kpi-sql"}, timeout=10).ok
    pushed = requests.post(f"{github}/_test/repos/{owner}/kpi-sql/commits", json={"message": "KPIs"}, timeout=10)
    with psycopg.connect(stack.info["database_url"]) as conn:
        project, deliverable = conn.execute(
            "SELECT p.id, d.id FROM deliverables d JOIN projects p ON p.id = d.project_id"
            " JOIN tracks t ON t.id = p.track_id"
            " WHERE t.code = 'DP' AND p.number = 1 AND d.deliverable_type = 'GITHUB' AND d.is_required"
        ).fetchone()
    started = requests.post(stack.url(f"/api/curriculum/projects/{project}/start/"), headers=headers, timeout=30)
    assert started.status_code == 200, started.text
    repository = {"deliverable_id": deliverable, "submission_url": f"https://github.com/{owner}/kpi-sql"}
    submitted = requests.post(stack.url("/api/curriculum/submissions/"), json=repository, headers=headers, timeout=30)
    assert submitted.status_code == 201, submitted.text
    assert submitted.json()["commit_sha"] == pushed.json()["sha"]


def test_scheduled_jobs_run_on_demand(stack: Stack) -> None:
    """A person asks to be deleted, their grace period ends, and the purge the schedule runs erases
    them: the same functions EventBridge Scheduler invokes in AWS, through /_local/jobs/."""
    url = stack.url
    email, password = f"gone-{uuid.uuid4().hex[:8]}@example.com", "Erase-Me-42!"
    privacy = requests.get(url("/api/compliance/privacy-policy/"), timeout=10).json()["version"]
    terms = requests.get(url("/api/compliance/terms/"), timeout=10).json()["version"]
    body = {"email": email, "password": password, "name": "Gone Soon", "accept_privacy": True}
    body |= {"privacy_version": privacy, "terms_version": terms}
    registered = requests.post(url("/api/auth/registration/"), json=body, timeout=10)
    assert registered.status_code == 201, registered.text
    user_id = registered.json()["id"]
    code = stack.mailed_code(email)
    assert requests.post(url("/api/auth/verify-email/"), json={"email": email, "code": code}, timeout=10).ok
    access = requests.post(url("/api/auth/login/"), json={"email": email, "password": password}, timeout=10).json()
    auth = {"Authorization": f"Bearer {access['access']}"}
    asked = requests.post(url("/api/compliance/delete-account/"), json={"password": password}, headers=auth, timeout=10)
    assert asked.status_code == 202, asked.text
    with psycopg.connect(stack.info["database_url"], autocommit=True) as conn:
        conn.execute(
            "UPDATE deletion_requests SET requested_at = now() - interval '31 days',"
            " scheduled_for = now() - interval '1 day' WHERE user_id = %s",
            (user_id,),
        )

    assert requests.get(url("/_local/jobs/purge"), timeout=10).status_code == 405
    assert requests.post(url("/_local/jobs/nothing"), timeout=10).status_code == 404
    ran = requests.post(url("/_local/jobs/purge"), timeout=120)
    assert ran.status_code == 200, ran.text
    with psycopg.connect(stack.info["database_url"], autocommit=True) as conn:
        assert conn.execute("SELECT 1 FROM users WHERE id = %s", (user_id,)).fetchone() is None, ran.json()
        assert conn.execute("SELECT 1 FROM users WHERE email = %s", (email,)).fetchone() is None
        done = conn.execute(
            "SELECT status, user_id, subject_ref FROM deletion_requests WHERE subject_ref IS NOT NULL"
            " AND completed_at > now() - interval '5 minutes'"
        ).fetchall()
    assert done and all(row[0] == "COMPLETED" and row[1] is None for row in done)
    login = requests.post(url("/api/auth/login/"), json={"email": email, "password": password}, timeout=10)
    assert login.status_code in (400, 401), login.text
    for job in ("retention", "idle-workspaces"):
        assert requests.post(url(f"/_local/jobs/{job}"), timeout=120).status_code == 200, job


# Last: it stops the module's stack.
def test_stop_and_restart_keeps_state(state_dir: Path, stack: Stack, stack_database: str) -> None:
    info = stack.info
    s3 = boto3.client(
        "s3",
        endpoint_url=info["moto_url"],
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    s3.put_object(Bucket="apranova-local-uploads", Key="kept/by-restart.txt", Body=b"still here")
    datasets = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="apranova-local-datasets").get("Contents", []))
    assert datasets
    cognito = _cognito(info)
    pool = info["cognito"]["user_pool_id"]
    cognito.admin_create_user(UserPoolId=pool, Username="kept@example.com", MessageAction="SUPPRESS")
    boto3.client(
        "ses",
        endpoint_url=info["moto_url"],
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    ).send_email(
        Source="no-reply@apranova.local",
        Destination={"ToAddresses": ["kept@example.com"]},
        Message={"Subject": {"Data": "kept mail"}, "Body": {"Html": {"Data": "<p>kept</p>"}}},
    )

    started = time.monotonic()
    assert stack.stop() == 0
    assert time.monotonic() - started < 5
    assert _port_is_free(stack.port)
    assert not (state_dir / "stack.json").exists()

    again = Stack(state_dir, stack_database, stack.port)
    try:
        assert again.info["cognito"] == info["cognito"]
        assert again.info["dev_users"] == info["dev_users"]
        _login(again.info, "admin")  # the kept password still works
        cognito = _cognito(again.info)
        assert cognito.admin_get_user(UserPoolId=pool, Username="kept@example.com")["Username"]
        s3 = boto3.client(
            "s3",
            endpoint_url=again.info["moto_url"],
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        assert s3.get_object(Bucket="apranova-local-uploads", Key="kept/by-restart.txt")["Body"].read() == b"still here"
        kept = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="apranova-local-datasets").get("Contents", []))
        assert kept == datasets
        newest = requests.get(again.url("/_local/mailbox"), timeout=10).json()["items"][0]
        assert (newest["subject"], newest["body_html"]) == ("kept mail", "<p>kept</p>")
        assert requests.get(again.url("/api/curriculum/tracks/"), timeout=10).status_code == 200
    finally:
        assert again.stop() == 0
