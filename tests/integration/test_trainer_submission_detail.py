"""A reviewer opens one submission: the student uploads through the real presigned form and submits
through the submissions handler; the trainer reads it through the trainer handler and downloads the
exact bytes with the short-lived link (S3 in moto), and every link issued is audited. Another
trainer's student is a 404, a student 403, no token 401."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from functions.trainer import handler as trainer_handler
from local.events import LambdaContext, http_api_event
from tests.integration.test_submissions import (  # noqa: F401 - aws and people are fixtures
    SUBMIT,
    UPLOAD,
    Person,
    aws,
    call,
    deliverable,
    people,
    progress,
    upload,
)

DETAIL = "/api/trainer/submissions/{}/"
FIRST = b"%PDF-1.4\n% first draft\n%%EOF\n"
SECOND = b"%PDF-1.4\n% second draft, with the KPI chart\n" + bytes(range(256)) + b"\n%%EOF\n"


@pytest.fixture(autouse=True)
def fresh_trainer_settings(aws) -> Iterator[None]:  # noqa: F811
    for cached in (trainer_handler.settings, trainer_handler.file_settings, trainer_handler.s3):
        cached.cache_clear()
    yield
    for cached in (trainer_handler.settings, trainer_handler.file_settings, trainer_handler.s3):
        cached.cache_clear()


def detail(path: str, who: Person | None) -> tuple[int, Any]:
    event = http_api_event("GET", path, claims=who.claims if who else None, request_id=f"req-{uuid.uuid4().hex[:12]}")
    response = trainer_handler.lambda_handler(event, LambdaContext("trainer"))
    return response["statusCode"], json.loads(response["body"])


def submit_file(who: Person, report: dict[str, Any], content: bytes, filename: str) -> dict[str, Any]:
    status, form = call(
        "POST", UPLOAD, who,
        {"deliverable_id": report["id"], "filename": filename, "content_type": "application/pdf",
         "size": len(content)},
    )  # fmt: skip
    assert status == 200, form
    assert upload(form, content, "application/pdf", filename) == 204
    status, created = call("POST", SUBMIT, who, {"deliverable_id": report["id"], "file_key": form["key"]})
    assert status == 201, created
    return created


def viewed(conn, submission_id: str) -> list[dict[str, Any]]:
    return conn.execute(
        "SELECT actor_id::text AS actor_id, actor_role, subject_id::text AS subject_id, details FROM audit_logs"
        " WHERE action = 'SUBMISSION_FILE_VIEWED' AND resource_id = %s ORDER BY id",
        (submission_id,),
    ).fetchall()


@pytest.fixture
def reviewed_file(aws, people, conn) -> dict[str, Any]:  # noqa: F811
    ada = people()
    coach = people(track=None, role="trainer", status="PENDING_PAYMENT")
    conn.execute(
        "INSERT INTO trainer_assignments (student_id, trainer_id, track) VALUES (%s, %s, 'DP')",
        (ada.user_id, coach.user_id),
    )
    progress(conn, ada, "DP", 1)
    report = deliverable(conn, "DP", 1, 3)
    first = submit_file(ada, report, FIRST, "draft.pdf")
    conn.execute(
        "UPDATE submissions SET status = 'CHANGES_REQUESTED', feedback = 'Add the KPI chart.', reviewed_by = %s,"
        " reviewed_at = now() WHERE id = %s",
        (coach.user_id, first["id"]),
    )
    second = submit_file(ada, report, SECOND, "final report.pdf")
    return {"student": ada, "trainer": coach, "first": first, "second": second, "report": report}


def test_the_assigned_trainer_downloads_the_exact_bytes_the_student_uploaded(reviewed_file, conn) -> None:
    ada, coach, first, second = (reviewed_file[k] for k in ("student", "trainer", "first", "second"))
    status, found = detail(DETAIL.format(second["id"]), coach)
    assert status == 200, found
    assert (found["id"], found["attempt"], found["status"]) == (second["id"], 2, "PENDING")
    assert (found["student_id"], found["student_email"], found["student_name"]) == (ada.user_id, ada.email, ada.name)
    assert found["project_number"] == 1 and found["project_title"] and found["deliverable_type"] == "FILE"
    assert found["deliverable_title"] == reviewed_file["report"]["title"]
    assert found["file_name"] == "final_report.pdf" and found["file_size"] == len(SECOND)
    assert found["file_url_expires_in"] == 300
    downloaded = requests.get(found["file_url"], timeout=10)
    assert downloaded.status_code == 200 and downloaded.content == SECOND
    assert downloaded.headers["content-disposition"].startswith("attachment;")
    assert 'filename="final_report.pdf"' in downloaded.headers["content-disposition"]
    # A PDF is also shown in the page: the same bytes, served inline as a PDF.
    shown = requests.get(found["file_view_url"], timeout=10)
    assert shown.status_code == 200 and shown.content == SECOND
    assert shown.headers["content-disposition"] == 'inline; filename="final_report.pdf"'
    assert shown.headers["content-type"] == "application/pdf"
    (earlier,) = found["earlier_attempts"]
    assert (earlier["id"], earlier["attempt"], earlier["status"]) == (first["id"], 1, "CHANGES_REQUESTED")
    assert earlier["feedback"] == "Add the KPI chart." and earlier["file_name"] == "draft.pdf"
    assert earlier["reviewed_by"] == coach.user_id and "file_key" not in earlier

    # Each link issued is audited, without the link (a bearer URL).
    (row,) = viewed(conn, second["id"])
    assert (row["actor_id"], row["actor_role"], row["subject_id"]) == (coach.user_id, "trainer", ada.user_id)
    assert row["details"]["attempt"] == 2 and row["details"]["expires_in"] == 300 and row["details"]["inline"] is True
    assert "X-Amz-Signature" not in json.dumps(row["details"])

    # The earlier attempt opens too, with its own bytes.
    status, older = detail(DETAIL.format(first["id"]), coach)
    assert status == 200 and requests.get(older["file_url"], timeout=10).content == FIRST
    assert older["earlier_attempts"] == []


def test_an_admin_opens_any_submission_and_other_callers_do_not(reviewed_file, people, conn) -> None:  # noqa: F811
    second = reviewed_file["second"]
    admin = people(track=None, role="admin", status="PENDING_PAYMENT")
    status, found = detail(DETAIL.format(second["id"]), admin)
    assert status == 200 and requests.get(found["file_url"], timeout=10).content == SECOND
    assert [r["actor_role"] for r in viewed(conn, second["id"])] == ["admin"]

    other = people(track=None, role="trainer", status="PENDING_PAYMENT")
    for missing in (second["id"], str(uuid.uuid4()), "not-a-uuid"):
        status, answer = detail(DETAIL.format(missing), other)
        assert (status, answer["error"]["code"]) == (404, "not_found"), missing
    status, answer = detail(DETAIL.format(second["id"]), reviewed_file["student"])
    assert (status, answer["error"]["code"]) == (403, "permission_denied")
    status, _ = detail(DETAIL.format(second["id"]), None)
    assert status == 401
    assert len(viewed(conn, second["id"])) == 1  # only the admin's link


def test_a_submission_without_a_file_has_no_link_and_no_audit_row(aws, people, conn) -> None:  # noqa: F811
    ada = people()
    coach = people(track=None, role="trainer", status="PENDING_PAYMENT")
    conn.execute(
        "INSERT INTO trainer_assignments (student_id, trainer_id, track) VALUES (%s, %s, 'DP')",
        (ada.user_id, coach.user_id),
    )
    progress(conn, ada, "DP", 1)
    link = deliverable(conn, "DP", 1, 1)
    status, created = call(
        "POST", SUBMIT, ada, {"deliverable_id": link["id"], "submission_url": "https://bi.example.com/d"}
    )
    assert status == 201
    status, found = detail(DETAIL.format(created["id"]), coach)
    assert status == 200 and found["submission_url"] == "https://bi.example.com/d"
    assert (found["file_url"], found["file_url_expires_in"], found["file_name"]) == (None, None, None)
    assert found["file_view_url"] is None
    assert viewed(conn, created["id"]) == []


@pytest.mark.parametrize(
    ("content_type", "filename", "content"),
    [("text/csv", "results.csv", b"metric,value\nrows,42\n"), ("image/svg+xml", "chart.svg", b"<svg/>")],
)
def test_other_types_are_download_only(content_type: str, filename: str, content: bytes, aws, people, conn) -> None:  # noqa: F811
    """Only a PDF or a raster image is served inline; anything else (an SVG can carry script) is a
    download, and the audit row says no inline link was issued."""
    ada = people()
    coach = people(track=None, role="trainer", status="PENDING_PAYMENT")
    conn.execute(
        "INSERT INTO trainer_assignments (student_id, trainer_id, track) VALUES (%s, %s, 'DP')",
        (ada.user_id, coach.user_id),
    )
    progress(conn, ada, "DP", 1)
    report = deliverable(conn, "DP", 1, 3)
    conn.execute(  # this test's type accepted, for this test only (the catalogue is shared)
        "UPDATE deliverables SET accepted_content_types = accepted_content_types || %s::text WHERE id = %s",
        (content_type, report["id"]),
    )
    try:
        status, form = call(
            "POST", UPLOAD, ada,
            {"deliverable_id": report["id"], "filename": filename, "content_type": content_type, "size": len(content)},
        )  # fmt: skip
        assert status == 200, form
        assert upload(form, content, content_type, filename) == 204
        status, created = call("POST", SUBMIT, ada, {"deliverable_id": report["id"], "file_key": form["key"]})
        assert status == 201, created
    finally:
        conn.execute(
            "UPDATE deliverables SET accepted_content_types = %s WHERE id = %s",
            (report["accepted_content_types"], report["id"]),
        )

    status, found = detail(DETAIL.format(created["id"]), coach)
    assert status == 200 and found["file_view_url"] is None
    downloaded = requests.get(found["file_url"], timeout=10)
    assert downloaded.content == content and downloaded.headers["content-disposition"].startswith("attachment;")
    (row,) = viewed(conn, created["id"])
    assert row["details"]["inline"] is False
