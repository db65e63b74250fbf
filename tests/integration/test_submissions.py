"""The submissions routes through the real handler (``functions.submissions.handler``), on the real
database, with S3 and SES in moto (in-process) and GitHub's commit lookup served by a local Werkzeug
stand-in (tests/integration/github_fake.py).

Callers carry the claims API Gateway's JWT authorizer hands over. Students are arranged with SQL as
enrollment leaves them (enrolled, policies accepted), with ``student_progress`` rows as unlocking
and starting leave them; files are uploaded through the presigned POST the route returns (moto
intercepts the request). Everything a submission changes is read back from the database, S3 and
the mailbox.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
import requests
from moto import mock_aws

from apranova import db, mail
from bench.sqlcount import StatementCounter
from functions.submissions import config
from functions.submissions.handler import lambda_handler
from local.events import LambdaContext, http_api_event
from local.moto_stack import mailbox
from tests.integration.github_fake import FakeGitHub, closed_port_url, fake_github

BUCKET = "apranova-test-uploads"
SENDER = "submissions@apranova.test"
SPA = "http://spa.submissions.test"
MB = 1024 * 1024
SUBMIT = "/api/curriculum/submissions/"
UPLOAD = "/api/curriculum/submissions/upload-url/"
MINE = "/api/curriculum/my-submissions/"
SHA = "0123456789abcdef0123456789abcdef01234567"
PDF = b"%PDF-1.4\n% a one-page insights report\n%%EOF\n"


@dataclass
class Person:
    user_id: str
    email: str
    groups: str = "[students]"
    name: str = ""

    @property
    def claims(self) -> dict[str, Any]:
        return {"sub": self.user_id, "token_use": "access", "cognito:groups": self.groups, "email": self.email}


def call(method: str, path: str, who: Person | None, body: Any = None, **query: str) -> tuple[int, Any]:
    event = http_api_event(
        method,
        path,
        body=json.dumps(body) if body is not None else None,
        claims=who.claims if who else None,
        query=query or None,
        source_ip="203.0.113.9",
        request_id=f"req-{uuid.uuid4().hex[:12]}",
    )
    response = lambda_handler(event, LambdaContext("submissions"))
    return response["statusCode"], json.loads(response["body"]) if response.get("body") else None


@dataclass
class Aws:
    s3: Any
    github: FakeGitHub


@contextmanager
def environment(**values: str) -> Iterator[None]:
    try:
        with pytest.MonkeyPatch.context() as mp:
            for key, value in values.items():
                mp.setenv(key, value)
            config.reset()
            mail.reset()
            yield
    finally:
        config.reset()
        mail.reset()


@pytest.fixture(scope="module")
def aws(database_url: str) -> Iterator[Aws]:
    with fake_github() as github, mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        boto3.client("ses", region_name="us-east-1").verify_email_identity(EmailAddress=SENDER)
        env = {"UPLOADS_BUCKET": BUCKET, "EMAIL_SENDER": SENDER, "SPA_ORIGIN": SPA, "GITHUB_API_URL": github.url}
        with environment(**env):
            yield Aws(s3, github)


@pytest.fixture
def people(conn) -> Iterator[Callable[..., Person]]:
    made: list[str] = []

    def make(track: str | None = "DP", status: str = "ENROLLED", role: str = "student", consent: bool = True) -> Person:
        user_id = str(uuid.uuid4())
        email = f"submissions-{user_id[:8]}@example.com"
        name = f"{role.title()} {user_id[:4]}"
        conn.execute(
            "INSERT INTO users (id, email, name, role, track_id, enrollment_status, enrolled_at, email_verified)"
            " VALUES (%s, %s, %s, %s, (SELECT id FROM tracks WHERE code = %s), %s, now(), true)",
            (user_id, email, name, role, track, status),
        )
        if consent:
            conn.execute(
                "INSERT INTO user_consents (user_id, privacy_policy_version, terms_version, source)"
                " VALUES (%s, privacy_version_in_force(),"
                " terms_version_in_force(), 'SIGNUP')",
                (user_id,),
            )
        made.append(user_id)
        return Person(user_id, email, f"[{role}s]", name)

    yield make
    conn.execute("DELETE FROM users WHERE id = ANY(%s::uuid[])", (made,))


# --- arranging state --------------------------------------------------------------------------------


def project_id(conn, track: str, number: int) -> int:
    return conn.execute(
        "SELECT p.id FROM projects p JOIN tracks t ON t.id = p.track_id WHERE t.code = %s AND p.number = %s",
        (track, number),
    ).fetchone()["id"]


def deliverable(conn, track: str, project: int, number: int) -> dict[str, Any]:
    return conn.execute(
        "SELECT d.* FROM deliverables d JOIN projects p ON p.id = d.project_id JOIN tracks t ON t.id = p.track_id"
        " WHERE t.code = %s AND p.number = %s AND d.number = %s",
        (track, project, number),
    ).fetchone()


def progress(conn, who: Person, track: str, number: int, status: str = "IN_PROGRESS") -> int:
    pid = project_id(conn, track, number)
    conn.execute(
        "INSERT INTO student_progress (student_id, project_id, status, unlocked_at, started_at, approved_at)"
        " VALUES (%s, %s, %s, CASE WHEN %s <> 'LOCKED' THEN now() END,"
        " CASE WHEN %s NOT IN ('LOCKED', 'UNLOCKED') THEN now() END, CASE WHEN %s = 'APPROVED' THEN now() END)",
        (who.user_id, pid, status, status, status, status),
    )
    return pid


def project_status(conn, who: Person, pid: int) -> str | None:
    row = conn.execute(
        "SELECT status FROM student_progress WHERE student_id = %s AND project_id = %s", (who.user_id, pid)
    ).fetchone()
    return row["status"] if row else None


def attempts(conn, who: Person, deliverable_id: int | None = None) -> list[dict[str, Any]]:
    return conn.execute(
        "SELECT id::text AS id, deliverable_id, attempt, status, submission_url, commit_sha, submission_text,"
        " file_key, file_size, file_content_type, feedback, reviewed_by, reviewed_at"
        " FROM submissions WHERE student_id = %s AND (%s::int IS NULL OR deliverable_id = %s) ORDER BY submitted_at",
        (who.user_id, deliverable_id, deliverable_id),
    ).fetchall()


def audit_rows(conn, who: Person) -> list[dict[str, Any]]:
    return conn.execute(
        "SELECT actor_id::text AS actor_id, actor_role, resource_type, resource_id, details, host(ip_address) AS ip,"
        " request_id FROM audit_logs WHERE action = 'SUBMISSION' AND subject_id = %s ORDER BY id",
        (who.user_id,),
    ).fetchall()


def emails_to(who: Person) -> list[dict[str, Any]]:
    return [m for m in mailbox() if who.email in m["to"]]


def upload(form: dict[str, Any], content: bytes, content_type: str, filename: str = "report.pdf") -> int:
    """What a browser does with the upload form: the fields as given, then the file."""
    response = requests.post(
        form["url"], data=form["fields"], files={"file": (filename, content, content_type)}, timeout=10
    )
    return response.status_code


def policy(form: dict[str, Any]) -> dict[str, Any]:
    return json.loads(base64.b64decode(form["fields"]["policy"]))


@contextmanager
def counting() -> Iterator[StatementCounter]:
    """Counts the statements the handler sends on the shared layer's connection."""
    counter = StatementCounter()
    connection = db.connection()
    original = connection.cursor_factory
    connection.cursor_factory = counter.cursor_class()
    try:
        yield counter
    finally:
        connection.cursor_factory = original


@contextmanager
def deliverable_limit(conn, deliverable_id: int, max_bytes: int) -> Iterator[None]:
    """A catalogue limit other than the seed's, for one test (restored after)."""
    before = conn.execute("SELECT max_file_bytes FROM deliverables WHERE id = %s", (deliverable_id,)).fetchone()
    conn.execute("UPDATE deliverables SET max_file_bytes = %s WHERE id = %s", (max_bytes, deliverable_id))
    try:
        yield
    finally:
        conn.execute(
            "UPDATE deliverables SET max_file_bytes = %s WHERE id = %s", (before["max_file_bytes"], deliverable_id)
        )


# --- FILE: upload through the presigned POST, then submit the key ----------------------------------


def test_upload_then_submit_a_file_download_it_and_emails(aws, people, conn) -> None:
    ada, trainer = people(), people(track=None, role="trainer", status="PENDING_PAYMENT")
    conn.execute(
        "INSERT INTO trainer_assignments (student_id, trainer_id, track) VALUES (%s, %s, 'DP')",
        (ada.user_id, trainer.user_id),
    )
    pid = progress(conn, ada, "DP", 1)
    report = deliverable(conn, "DP", 1, 3)  # FILE, application/pdf

    status, form = call(
        "POST",
        UPLOAD,
        ada,
        {"deliverable_id": report["id"], "filename": "../My Report (final).PDF", "content_type": "Application/PDF",
         "size": len(PDF)},
    )  # fmt: skip
    assert status == 200, form
    assert set(form) == {"url", "fields", "key", "expires_in"} and form["expires_in"] == 900
    prefix = f"submissions/{ada.user_id}/{report['id']}/"
    assert form["key"].startswith(prefix) and form["key"].endswith("/My_Report_final_.PDF")
    uuid.UUID(form["key"][len(prefix) :].split("/")[0])
    assert form["fields"]["key"] == form["key"] and form["fields"]["Content-Type"] == "application/pdf"
    conditions = policy(form)["conditions"]
    assert ["content-length-range", 1, 50 * MB] in conditions
    assert {"Content-Type": "application/pdf"} in conditions
    assert {"key": form["key"]} in conditions and {"bucket": BUCKET} in conditions

    assert upload(form, PDF, "application/pdf") == 204
    status, created = call("POST", SUBMIT, ada, {"deliverable_id": report["id"], "file_key": form["key"]})
    assert status == 201, created
    assert created["attempt"] == 1 and created["status"] == "PENDING" and created["deliverable_id"] == report["id"]
    assert created["file_key"] == form["key"] and created["file_name"] == "My_Report_final_.PDF"
    assert (created["file_size"], created["file_content_type"]) == (len(PDF), "application/pdf")
    # One required deliverable of three: the project is still in progress.
    assert created["project_id"] == pid and created["project_status"] == "in_progress"
    assert created["superseded_id"] is None and created["feedback"] is None and created["reviewed_at"] is None
    assert project_status(conn, ada, pid) == "IN_PROGRESS"

    (audited,) = audit_rows(conn, ada)
    assert (audited["actor_id"], audited["actor_role"]) == (ada.user_id, "student")
    assert (audited["resource_type"], audited["resource_id"]) == ("submission", created["id"])
    assert audited["details"]["attempt"] == 1 and audited["details"]["deliverable_id"] == report["id"]
    assert audited["details"]["project_status"] == {"before": "IN_PROGRESS", "after": "IN_PROGRESS"}
    assert audited["ip"] == "203.0.113.9" and audited["request_id"]

    status, detail = call("GET", f"{SUBMIT}{created['id']}/", ada)
    assert status == 200, detail
    assert detail["download_expires_in"] == 300 and detail["file_name"] == "My_Report_final_.PDF"
    downloaded = requests.get(detail["download_url"], timeout=10)
    assert downloaded.status_code == 200 and downloaded.content == PDF
    assert "attachment" in downloaded.headers.get("content-disposition", "")

    (to_student,) = emails_to(ada)
    assert to_student["subject"] == "We received your submission: PDF insights report"
    (to_trainer,) = emails_to(trainer)
    assert to_trainer["subject"] == f"New submission to review from {ada.name}"
    for message in (to_student, to_trainer):
        body = message["body_text"] or message["body_html"] or ""
        assert "PDF insights report" in body and SPA in body and form["key"] not in body


def test_without_an_assigned_trainer_only_the_student_is_emailed(aws, people, conn) -> None:
    ada = people()
    progress(conn, ada, "DP", 1)
    before = len(mailbox())
    link = deliverable(conn, "DP", 1, 1)
    status, _ = call(
        "POST", SUBMIT, ada, {"deliverable_id": link["id"], "submission_url": "https://bi.example.com/d/1"}
    )
    assert status == 201
    new = mailbox()[: len(mailbox()) - before]
    assert [m["to"] for m in new] == [[ada.email]]


def test_upload_url_refusals(aws, people, conn) -> None:
    ada = people()
    progress(conn, ada, "DP", 1)
    report, link = deliverable(conn, "DP", 1, 3), deliverable(conn, "DP", 1, 1)
    fsd_file = deliverable(conn, "FSD", 1, 2)
    good = {"deliverable_id": report["id"], "filename": "r.pdf", "content_type": "application/pdf", "size": 10}

    cases = [
        ({**good, "deliverable_id": link["id"]}, 422, "not_a_file_deliverable"),
        ({**good, "content_type": "text/html"}, 422, "content_type_not_accepted"),
        ({**good, "size": 50 * MB + 1}, 422, "file_too_large"),
        ({**good, "size": 0}, 422, "validation_error"),
        ({**good, "content_type": "not a type"}, 422, "validation_error"),
        ({**good, "key": "submissions/someone-else/x.pdf"}, 422, "validation_error"),
        ({**good, "bucket": "elsewhere"}, 422, "validation_error"),
        ({k: v for k, v in good.items() if k != "filename"}, 422, "validation_error"),
        ({**good, "deliverable_id": fsd_file["id"]}, 404, "not_found"),
        ({**good, "deliverable_id": 2_000_000_000}, 404, "not_found"),
    ]
    for body, expected, code in cases:
        status, answer = call("POST", UPLOAD, ada, body)
        assert (status, answer["error"]["code"]) == (expected, code), (body, answer)

    # A limit below 50 MB is the deliverable's; one above is capped at 50 MB.
    with deliverable_limit(conn, report["id"], 1000):
        status, form = call("POST", UPLOAD, ada, {**good, "size": 1000})
        assert status == 200 and ["content-length-range", 1, 1000] in policy(form)["conditions"]
        status, answer = call("POST", UPLOAD, ada, {**good, "size": 1001})
        assert status == 422 and answer["error"]["details"][0]["max_bytes"] == 1000
    with deliverable_limit(conn, report["id"], 200 * MB):
        status, form = call("POST", UPLOAD, ada, {**good, "size": 50 * MB})
        assert status == 200 and ["content-length-range", 1, 50 * MB] in policy(form)["conditions"]


@pytest.mark.parametrize(
    ("project_state", "expected", "code"),
    [
        (None, 403, "project_locked"),
        ("LOCKED", 403, "project_locked"),
        ("UNLOCKED", 409, "project_not_started"),
        ("APPROVED", 409, "project_approved"),
    ],
)
def test_a_project_not_started_or_approved_takes_nothing(aws, people, conn, project_state, expected, code) -> None:
    ada = people()
    if project_state:
        progress(conn, ada, "DP", 1, project_state)
    report, link = deliverable(conn, "DP", 1, 3), deliverable(conn, "DP", 1, 1)
    upload_request = {"deliverable_id": report["id"], "filename": "r.pdf", "content_type": "application/pdf", "size": 9}
    status, answer = call("POST", UPLOAD, ada, upload_request)
    assert (status, answer["error"]["code"]) == (expected, code)
    status, answer = call("POST", SUBMIT, ada, {"deliverable_id": link["id"], "submission_url": "https://x.example/"})
    assert (status, answer["error"]["code"]) == (expected, code)
    assert attempts(conn, ada) == [] and audit_rows(conn, ada) == []


def test_file_key_refusals_write_nothing(aws, people, conn) -> None:
    ada, bob = people(), people()
    progress(conn, ada, "DP", 2)
    progress(conn, bob, "DP", 2)
    flow = deliverable(conn, "DP", 2, 2)  # FILE: png, jpeg, pdf, json
    email_shot = deliverable(conn, "DP", 2, 4)  # FILE: png, jpeg, pdf

    def form_for(who: Person, target: dict[str, Any], content_type: str = "image/png") -> dict[str, Any]:
        body = {"deliverable_id": target["id"], "filename": "a.png", "content_type": content_type, "size": 100}
        status, form = call("POST", UPLOAD, who, body)
        assert status == 200, form
        return form

    bobs = form_for(bob, flow)
    assert upload(bobs, b"\x89PNG bob", "image/png") == 204
    other_deliverable = form_for(ada, email_shot)
    assert upload(other_deliverable, b"\x89PNG ada", "image/png") == 204
    never_uploaded = form_for(ada, flow)
    wrong_type = form_for(ada, flow)
    # The policy binds the type; moto does not enforce policies, so this stands for an object of
    # another type reaching the key (S3 would refuse the POST).
    aws.s3.put_object(Bucket=BUCKET, Key=wrong_type["key"], Body=b"<html>", ContentType="text/html")
    too_big = form_for(ada, flow)
    aws.s3.put_object(Bucket=BUCKET, Key=too_big["key"], Body=b"x" * 2000, ContentType="image/png")

    cases = [
        (bobs["key"], "file_not_yours"),
        (other_deliverable["key"], "file_not_yours"),
        (f"submissions/{ada.user_id}/{flow['id']}", "file_not_yours"),
        ("../" + never_uploaded["key"], "file_not_yours"),
        (never_uploaded["key"], "file_not_found"),
        (wrong_type["key"], "file_type_not_accepted"),
    ]
    for key, code in cases:
        status, answer = call("POST", SUBMIT, ada, {"deliverable_id": flow["id"], "file_key": key})
        assert (status, answer["error"]["code"]) == (422, code), (key, answer)
        assert answer["error"]["details"][0]["field"] == "body.file_key"
    with deliverable_limit(conn, flow["id"], 1000):
        status, answer = call("POST", SUBMIT, ada, {"deliverable_id": flow["id"], "file_key": too_big["key"]})
        assert (status, answer["error"]["code"]) == (422, "file_too_large")
    status, answer = call("POST", SUBMIT, ada, {"deliverable_id": flow["id"]})
    assert (status, answer["error"]["code"]) == (422, "field_required")
    assert attempts(conn, ada) == [] and audit_rows(conn, ada) == []

    # Bob's own key is fine for Bob.
    status, created = call("POST", SUBMIT, bob, {"deliverable_id": flow["id"], "file_key": bobs["key"]})
    assert status == 201 and created["file_content_type"] == "image/png"


# --- LINK, GITHUB, TEXT ----------------------------------------------------------------------------


def test_link_submissions_take_http_urls_only(aws, people, conn) -> None:
    ada = people()
    pid = progress(conn, ada, "DP", 1)
    link = deliverable(conn, "DP", 1, 1)
    bad = [
        "ftp://bi.example.com/dashboard",
        "javascript:alert(1)",
        "file:///etc/passwd",
        "https://ada:secret@bi.example.com/d/1",
        "https://@bi.example.com/",
        "http://",
        "https:///only-a-path",
        "bi.example.com/d/1",
        "https://bi.example .com/",
        "https://bi.example.com:99999/",
        "",
    ]
    for url in bad:
        status, answer = call("POST", SUBMIT, ada, {"deliverable_id": link["id"], "submission_url": url})
        assert (status, answer["error"]["code"]) == (422, "invalid_url"), (url, answer)
    for field, value in (("submission_text", "a note"), ("file_key", "k"), ("commit_sha", "abcdef1")):
        body = {"deliverable_id": link["id"], "submission_url": "https://bi.example.com/", field: value}
        status, answer = call("POST", SUBMIT, ada, body)
        assert (status, answer["error"]["code"]) == (422, "field_not_allowed"), answer
        assert answer["error"]["details"][0]["field"] == f"body.{field}"
    fsd_link = deliverable(conn, "FSD", 1, 1)
    for other in (fsd_link["id"], 2_000_000_000):
        status, answer = call("POST", SUBMIT, ada, {"deliverable_id": other, "submission_url": "https://x.example/"})
        assert (status, answer["error"]["code"]) == (404, "not_found")
    assert attempts(conn, ada) == []

    url = "https://superset.example.com/superset/dashboard/7/?standalone=1"
    status, created = call("POST", SUBMIT, ada, {"deliverable_id": link["id"], "submission_url": url})
    assert status == 201 and created["submission_url"] == url and created["commit_sha"] is None
    assert project_status(conn, ada, pid) == "IN_PROGRESS"


def test_github_with_a_commit_given_is_pinned_without_asking_github(aws, people, conn) -> None:
    ada = people()
    progress(conn, ada, "DP", 1)
    repo = deliverable(conn, "DP", 1, 2)
    asked = len(aws.github.requests)
    body = {
        "deliverable_id": repo["id"],
        "submission_url": "https://github.com/ada/kpi-sql.git",
        "commit_sha": "ABCDEF1",
    }
    status, created = call("POST", SUBMIT, ada, body)
    assert status == 201, created
    assert (created["submission_url"], created["commit_sha"]) == ("https://github.com/ada/kpi-sql", "abcdef1")
    assert len(aws.github.requests) == asked
    for sha in ("abc", "g" * 40, "a" * 41):
        status, answer = call("POST", SUBMIT, ada, {**body, "commit_sha": sha})
        assert status == 422 and answer["error"]["details"][0]["field"] == "body.commit_sha"


def test_github_without_a_commit_pins_the_head_or_the_tree_ref(aws, people, conn) -> None:
    ada = people()
    progress(conn, ada, "DP", 1)
    repo = deliverable(conn, "DP", 1, 2)
    branch_sha = "fedcba9876543210fedcba9876543210fedcba98"
    aws.github.add("Ada-L", "kpi.sql", {"HEAD": SHA, "feature/kpis": branch_sha})

    status, created = call(
        "POST", SUBMIT, ada, {"deliverable_id": repo["id"], "submission_url": "https://github.com/Ada-L/kpi.sql/"}
    )
    assert status == 201, created
    assert (created["submission_url"], created["commit_sha"]) == ("https://github.com/Ada-L/kpi.sql", SHA)
    asked = aws.github.requests[-1]
    assert asked["path"] == "/repos/Ada-L/kpi.sql/commits/HEAD"
    assert asked["headers"]["Accept"] == "application/vnd.github+json"

    url = "https://github.com/Ada-L/kpi.sql/tree/feature/kpis"
    status, again = call("POST", SUBMIT, ada, {"deliverable_id": repo["id"], "submission_url": url})
    # It replaces the pending attempt before any review: the same try, corrected.
    assert status == 201 and again["commit_sha"] == branch_sha and again["attempt"] == 1
    assert aws.github.requests[-1]["path"] == "/repos/Ada-L/kpi.sql/commits/feature/kpis"


def test_github_urls_that_are_not_repositories_are_422(aws, people, conn) -> None:
    ada = people()
    progress(conn, ada, "DP", 1)
    repo = deliverable(conn, "DP", 1, 2)
    aws.github.add("ada", "kpi", {"HEAD": SHA})
    aws.github.add("ada", "empty", None)
    asked = len(aws.github.requests)
    not_repositories = [
        "https://github.com/ada/kpi/issues/3",
        "https://github.com/ada/kpi/pull/4",
        "https://github.com/ada/kpi/blob/main/kpi.sql",
        "https://github.com/ada/kpi/tree",
        "https://github.com/ada/kpi.git/tree/main",
        "https://github.com/ada/kpi?tab=readme",
        "https://github.com/ada/kpi#readme",
        "https://github.com/ada",
        "https://github.com/",
        "https://github.com/orgs/ada",
        "https://github.com/settings/profile",
        "https://gist.github.com/ada/0123456789abcdef",
        "https://gitlab.com/ada/kpi",
        "https://github.com.evil.example/ada/kpi",
        "http://github.com/ada/kpi",
        "https://github.com:8443/ada/kpi",
        "https://github.com/-ada/kpi",
        "https://github.com/ada/..",
    ]
    for url in not_repositories:
        status, answer = call("POST", SUBMIT, ada, {"deliverable_id": repo["id"], "submission_url": url})
        assert (status, answer["error"]["code"]) == (422, "not_a_repository"), (url, answer)
    for url in ("ssh://git@github.com/ada/kpi.git", "git@github.com:ada/kpi.git", "https://tok@github.com/ada/kpi"):
        status, answer = call("POST", SUBMIT, ada, {"deliverable_id": repo["id"], "submission_url": url})
        assert (status, answer["error"]["code"]) == (422, "invalid_url"), (url, answer)
    assert len(aws.github.requests) == asked  # none of these reached GitHub

    for url, code in (
        ("https://github.com/ada/no-such-repo", "repository_not_found"),
        ("https://github.com/ada/empty", "repository_has_no_commit"),
        ("https://github.com/ada/kpi/tree/no-such-branch", "repository_has_no_commit"),
    ):
        status, answer = call("POST", SUBMIT, ada, {"deliverable_id": repo["id"], "submission_url": url})
        assert (status, answer["error"]["code"]) == (422, code), (url, answer)
    status, answer = call("POST", SUBMIT, ada, {"deliverable_id": repo["id"]})
    assert (status, answer["error"]["code"]) == (422, "field_required")
    assert attempts(conn, ada) == [] and audit_rows(conn, ada) == []


def test_github_unreachable_or_failing_is_502_and_writes_nothing(aws, people, conn) -> None:
    ada = people()
    pid = progress(conn, ada, "DP", 1)
    repo = deliverable(conn, "DP", 1, 2)
    body = {"deliverable_id": repo["id"], "submission_url": "https://github.com/ada/kpi"}
    aws.github.add("ada", "kpi", {"HEAD": SHA})
    before = len(mailbox())

    with environment(GITHUB_API_URL=closed_port_url()):
        status, answer = call("POST", SUBMIT, ada, body)
    assert (status, answer["error"]["code"]) == (502, "upstream_error")
    for failure in (500, 503, 403, 429):
        aws.github.fail_with = failure
        try:
            status, answer = call("POST", SUBMIT, ada, body)
        finally:
            aws.github.fail_with = None
        assert (status, answer["error"]["code"]) == (502, "upstream_error"), failure
    assert attempts(conn, ada) == [] and audit_rows(conn, ada) == []
    assert project_status(conn, ada, pid) == "IN_PROGRESS" and len(mailbox()) == before


def test_text_submissions(aws, people, conn) -> None:
    ada = people()
    progress(conn, ada, "DP", 2)
    text = deliverable(conn, "DP", 2, 3)
    for value, code in (("   \n ", "blank_text"), ("x" * 50_001, "validation_error")):
        status, answer = call("POST", SUBMIT, ada, {"deliverable_id": text["id"], "submission_text": value})
        assert (status, answer["error"]["code"]) == (422, code)
    status, answer = call("POST", SUBMIT, ada, {"deliverable_id": text["id"], "submission_url": "https://x.example/"})
    assert (status, answer["error"]["code"]) == (422, "field_not_allowed")
    status, created = call("POST", SUBMIT, ada, {"deliverable_id": text["id"], "submission_text": "y" * 50_000})
    assert status == 201 and len(created["submission_text"]) == 50_000


# --- attempts and review state -----------------------------------------------------------------------


def test_a_resubmission_supersedes_the_pending_attempt_and_keeps_history(aws, people, conn) -> None:
    ada, trainer = people(), people(track=None, role="trainer", status="PENDING_PAYMENT")
    pid = progress(conn, ada, "DP", 1)
    link = deliverable(conn, "DP", 1, 1)

    def submit(url: str) -> dict[str, Any]:
        status, created = call("POST", SUBMIT, ada, {"deliverable_id": link["id"], "submission_url": url})
        assert status == 201, created
        return created

    first = submit("https://bi.example.com/v1")
    second = submit("https://bi.example.com/v2")
    # Replaced before review: not a new try, so it keeps attempt 1.
    assert second["attempt"] == 1 and second["superseded_id"] == first["id"]
    assert [(a["attempt"], a["status"]) for a in attempts(conn, ada)] == [(1, "SUPERSEDED"), (1, "PENDING")]

    # The trainer requests changes (as the trainer function records a review).
    conn.execute(
        "UPDATE submissions SET status = 'CHANGES_REQUESTED', feedback = 'Add the KPI filters.', reviewed_by = %s,"
        " reviewed_at = now() WHERE id = %s",
        (trainer.user_id, second["id"]),
    )
    conn.execute("UPDATE student_progress SET status = 'CHANGES_REQUESTED' WHERE student_id = %s", (ada.user_id,))
    status, reviewed = call("GET", f"{SUBMIT}{second['id']}/", ada)
    assert (
        reviewed["feedback"] == "Add the KPI filters." and reviewed["reviewed_at"] and reviewed["download_url"] is None
    )

    third = submit("https://bi.example.com/v3")
    # The first real resubmission; the project's other required deliverables are not in yet.
    assert third["attempt"] == 2 and third["superseded_id"] is None and third["project_status"] == "in_progress"
    assert [(a["attempt"], a["status"]) for a in attempts(conn, ada)] == [
        (1, "SUPERSEDED"),
        (1, "CHANGES_REQUESTED"),
        (2, "PENDING"),
    ]
    assert attempts(conn, ada)[1]["feedback"] == "Add the KPI filters."
    assert project_status(conn, ada, pid) == "IN_PROGRESS"
    assert [row["details"]["attempt"] for row in audit_rows(conn, ada)] == [1, 1, 2]

    # An approved deliverable takes no new attempt.
    conn.execute(
        "UPDATE submissions SET status = 'APPROVED', reviewed_by = %s, reviewed_at = now() WHERE id = %s",
        (trainer.user_id, third["id"]),
    )
    status, answer = call("POST", SUBMIT, ada, {"deliverable_id": link["id"], "submission_url": "https://x.example/"})
    assert (status, answer["error"]["code"]) == (409, "deliverable_approved")
    assert len(attempts(conn, ada)) == 3


@pytest.mark.parametrize(
    "field",
    ["status", "feedback", "attempt", "reviewed_by", "reviewed_at", "student_id", "project_id", "id", "file_size"],
)
def test_review_fields_from_a_student_are_422(aws, people, conn, field) -> None:
    ada = people()
    progress(conn, ada, "DP", 1)
    link = deliverable(conn, "DP", 1, 1)
    value = {"status": "APPROVED", "attempt": 1, "file_size": 10, "project_id": 1}.get(field, str(uuid.uuid4()))
    body = {"deliverable_id": link["id"], "submission_url": "https://bi.example.com/", field: value}
    status, answer = call("POST", SUBMIT, ada, body)
    assert status == 422 and answer["error"]["code"] == "validation_error"
    assert answer["error"]["details"][0]["field"] == f"body.{field}"
    assert attempts(conn, ada) == []


def test_submitting_every_deliverable_never_approves_or_unlocks(aws, people, conn) -> None:
    ada = people()
    pid = progress(conn, ada, "DP", 1)
    aws.github.add("ada", "kpi", {"HEAD": SHA})
    link, repo, report, optional = (deliverable(conn, "DP", 1, n) for n in (1, 2, 3, 4))
    status, form = call(
        "POST", UPLOAD, ada, {"deliverable_id": report["id"], "filename": "r.pdf", "content_type": "application/pdf",
                              "size": len(PDF)}
    )  # fmt: skip
    assert upload(form, PDF, "application/pdf") == 204
    for body in (
        {"deliverable_id": link["id"], "submission_url": "https://bi.example.com/d/1"},
        {"deliverable_id": repo["id"], "submission_url": "https://github.com/ada/kpi"},
        {"deliverable_id": report["id"], "file_key": form["key"]},
        {"deliverable_id": optional["id"], "submission_url": "https://github.com/ada/kpi", "commit_sha": SHA},
    ):
        status, created = call("POST", SUBMIT, ada, body)
        assert status == 201 and created["status"] == "PENDING", created
    assert project_status(conn, ada, pid) == "SUBMITTED"
    assert {a["status"] for a in attempts(conn, ada)} == {"PENDING"}
    assert all(a["reviewed_by"] is None and a["reviewed_at"] is None for a in attempts(conn, ada))
    unlocked = conn.execute("SELECT count(*) AS n FROM student_progress WHERE student_id = %s", (ada.user_id,))
    assert unlocked.fetchone()["n"] == 1
    enrollment = conn.execute("SELECT enrollment_status FROM users WHERE id = %s", (ada.user_id,)).fetchone()
    assert enrollment["enrollment_status"] == "ENROLLED"


# --- reading -----------------------------------------------------------------------------------------


def insert_attempts(conn, who: Person, rows: list[tuple[int, int, str, int]]) -> list[str]:
    """(deliverable_id, attempt, status, minutes ago) → ids; a decided attempt has feedback and a review time."""
    ids = []
    for deliverable_id, attempt, status, minutes in rows:
        ids.append(
            conn.execute(
                """
                INSERT INTO submissions (student_id, project_id, deliverable_id, attempt, submission_url, status,
                                         feedback, reviewed_at, submitted_at)
                SELECT %(student)s, project_id, id, %(attempt)s, 'https://x.example/', %(status)s,
                       CASE WHEN %(status)s IN ('APPROVED', 'CHANGES_REQUESTED') THEN 'Fix it.' END,
                       CASE WHEN %(status)s IN ('APPROVED', 'CHANGES_REQUESTED')
                            THEN now() - make_interval(mins => %(minutes)s - 1) END,
                       now() - make_interval(mins => %(minutes)s)
                FROM deliverables WHERE id = %(deliverable)s
                RETURNING id::text AS id
                """,
                {"student": who.user_id, "attempt": attempt, "status": status, "minutes": minutes,
                 "deliverable": deliverable_id},
            ).fetchone()["id"]
        )  # fmt: skip
    return ids


def test_my_submissions_newest_first_paginated_filtered_and_own_only(aws, people, conn) -> None:
    ada, bob = people(), people()
    progress(conn, ada, "DP", 1)
    progress(conn, bob, "DP", 1)
    link, repo = deliverable(conn, "DP", 1, 1), deliverable(conn, "DP", 1, 2)
    ids = insert_attempts(
        conn,
        ada,
        [
            (link["id"], 1, "SUPERSEDED", 50),
            (link["id"], 2, "CHANGES_REQUESTED", 40),
            (repo["id"], 1, "PENDING", 30),
            (link["id"], 3, "PENDING", 20),
        ],
    )
    insert_attempts(conn, bob, [(link["id"], 1, "PENDING", 10)])
    newest_first = list(reversed(ids))

    seen, cursor = [], None
    while True:
        query = {"limit": "3", **({"cursor": cursor} if cursor else {})}
        with counting() as statements:
            status, page = call("GET", MINE, ada, **query)
        assert status == 200, page
        assert 1 <= statements.count <= 3
        seen.extend(item["id"] for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == newest_first

    status, page = call("GET", MINE, ada, deliverable_id=str(link["id"]))
    assert [i["id"] for i in page["items"]] == [ids[3], ids[1], ids[0]]
    assert [i["attempt"] for i in page["items"]] == [3, 2, 1]
    status, page = call("GET", MINE, ada, status="PENDING")
    assert [i["id"] for i in page["items"]] == [ids[3], ids[2]]
    status, page = call("GET", MINE, ada, status="CHANGES_REQUESTED", deliverable_id=str(link["id"]))
    (item,) = page["items"]
    assert item["feedback"] == "Fix it." and item["reviewed_at"] and item["deliverable_title"] == link["title"]
    assert item["deliverable_type"] == "LINK" and item["project_number"] == 1

    for query in ({"status": "DONE"}, {"deliverable_id": "x"}, {"limit": "0"}, {"cursor": "bm9wZQ"}):
        status, answer = call("GET", MINE, ada, **query)
        assert status == 422, (query, answer)
    forged = base64.urlsafe_b64encode(json.dumps(["not a time", "x"]).encode()).decode().rstrip("=")
    status, answer = call("GET", MINE, ada, cursor=forged)
    assert (status, answer["error"]["code"]) == (422, "invalid_cursor")


def test_a_submission_is_its_owners_only(aws, people, conn) -> None:
    ada, bob = people(), people()
    progress(conn, ada, "DP", 1)
    link = deliverable(conn, "DP", 1, 1)
    (mine,) = insert_attempts(conn, ada, [(link["id"], 1, "PENDING", 1)])

    with counting() as statements:
        status, found = call("GET", f"{SUBMIT}{mine}/", ada)
    assert status == 200 and found["id"] == mine and 1 <= statements.count <= 3
    assert found["download_url"] is None and found["submission_url"] == "https://x.example/"
    for who, submission_id in ((bob, mine), (ada, str(uuid.uuid4())), (ada, "not-a-uuid")):
        status, answer = call("GET", f"{SUBMIT}{submission_id}/", who)
        assert (status, answer["error"]["code"]) == (404, "not_found")
    status, page = call("GET", MINE, bob)
    assert status == 200 and page == {"items": [], "next_cursor": None}


# --- who may call ------------------------------------------------------------------------------------

ROUTES = [
    ("POST", UPLOAD, {"deliverable_id": 1, "filename": "r.pdf", "content_type": "application/pdf", "size": 1}),
    ("POST", SUBMIT, {"deliverable_id": 1, "submission_url": "https://x.example/"}),
    ("GET", MINE, None),
    ("GET", f"{SUBMIT}0b6f3a52-5c1e-4d3f-9a57-2f1f0c6d8e11/", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
def test_who_may_call(aws, people, method, path, body) -> None:
    status, answer = call(method, path, None, body)
    assert (status, answer["error"]["code"]) == (401, "not_authenticated")
    for staff in (people(role="trainer"), people(role="admin")):
        status, answer = call(method, path, staff, body)
        assert (status, answer["error"]["code"]) == (403, "permission_denied")
    for unenrolled in (people(track=None, status="PENDING_PAYMENT"), people(status="REFUNDED")):
        status, answer = call(method, path, unenrolled, body)
        assert (status, answer["error"]["code"]) == (402, "payment_required")
    status, answer = call(method, path, people(consent=False), body)
    assert (status, answer["error"]["code"]) == (403, "consent_required")
    assert set(answer["error"]["details"][0]) == {"privacy_version", "terms_version"}
