"""One status model, through the real submissions, trainer and curriculum handlers: a project is
submitted only when every required deliverable is in, approved when every one is approved (and then
100 % done), attempts count real resubmissions, and content a trainer sent back is refused unchanged."""

from __future__ import annotations

import json
import uuid
from typing import Any

from functions.curriculum.handler import lambda_handler as curriculum
from functions.trainer.handler import lambda_handler as trainer_api
from local.events import LambdaContext, http_api_event
from tests.integration.test_submissions import (  # noqa: F401 - aws and people are fixtures
    PDF,
    SHA,
    SUBMIT,
    UPLOAD,
    Person,
    attempts,
    aws,
    call,
    deliverable,
    people,
    progress,
    project_status,
    upload,
)

REVIEW = "/api/trainer/submissions/{}/review/"


def as_trainer(path: str, who: Person, body: Any = None) -> tuple[int, Any]:
    event = http_api_event(
        "POST" if body is not None else "GET",
        path,
        body=json.dumps(body) if body is not None else None,
        claims=who.claims,
        request_id=f"req-{uuid.uuid4().hex[:12]}",
    )
    response = trainer_api(event, LambdaContext("trainer"))
    return response["statusCode"], json.loads(response["body"])


def project_page(who: Person, pid: int) -> dict[str, Any]:
    event = http_api_event("GET", f"/api/curriculum/projects/{pid}/", claims=who.claims)
    response = curriculum(event, LambdaContext("curriculum"))
    assert response["statusCode"] == 200, response
    return json.loads(response["body"])


def file_form(who: Person, report: dict[str, Any], content: bytes) -> str:
    status, form = call(
        "POST", UPLOAD, who,
        {"deliverable_id": report["id"], "filename": "r.pdf", "content_type": "application/pdf", "size": len(content)},
    )  # fmt: skip
    assert status == 200, form
    assert upload(form, content, "application/pdf") == 204
    return form["key"]


def assign(conn, student: Person, trainer: Person) -> None:
    conn.execute(
        "INSERT INTO trainer_assignments (student_id, trainer_id, track) VALUES (%s, %s, 'DP')",
        (student.user_id, trainer.user_id),
    )


def test_submitted_needs_every_required_deliverable_and_approved_is_all_of_them_done(aws, people, conn) -> None:  # noqa: F811 - the imported fixtures
    ada = people()
    coach = people(track=None, role="trainer", status="PENDING_PAYMENT")
    assign(conn, ada, coach)
    pid = progress(conn, ada, "DP", 1)
    aws.github.add("ada", "kpi", {"HEAD": SHA})
    link, repo, report = (deliverable(conn, "DP", 1, n) for n in (1, 2, 3))

    def submit(body: dict[str, Any]) -> dict[str, Any]:
        status, created = call("POST", SUBMIT, ada, body)
        assert status == 201, created
        return created

    first = submit({"deliverable_id": link["id"], "submission_url": "https://bi.example.com/d/1"})
    assert first["project_status"] == "in_progress"
    second = submit({"deliverable_id": repo["id"], "submission_url": "https://github.com/ada/kpi"})
    assert second["project_status"] == "in_progress"  # two of three required deliverables
    key = file_form(ada, report, PDF)
    third = submit({"deliverable_id": report["id"], "file_key": key})
    assert third["project_status"] == "submitted" and project_status(conn, ada, pid) == "SUBMITTED"
    page = project_page(ada, pid)
    assert page["status"] == "submitted" and page["progress_percent"] == 0  # no step ticked yet

    # The report is sent back: the project waits on the student again.
    status, decided = as_trainer(
        REVIEW.format(third["id"]), coach, {"decision": "request_changes", "feedback": "Add the KPI chart."}
    )
    assert status == 200 and decided["project_status"] == "changes_requested", decided

    # The same bytes uploaded again (a new key) are refused; so is the same key.
    same = file_form(ada, report, PDF)
    for again in (same, key):
        status, answer = call("POST", SUBMIT, ada, {"deliverable_id": report["id"], "file_key": again})
        assert (status, answer["error"]["code"]) == (409, "unchanged_resubmission"), answer
    assert [a["attempt"] for a in attempts(conn, ada, report["id"])] == [1]
    assert project_status(conn, ada, pid) == "CHANGES_REQUESTED"

    fixed = submit({"deliverable_id": report["id"], "file_key": file_form(ada, report, PDF + b"% with the chart\n")})
    assert fixed["attempt"] == 2 and fixed["project_status"] == "submitted"

    # Every required deliverable approved: the project is approved and complete, steps unticked or not.
    for submission_id in (first["id"], second["id"]):
        status, decided = as_trainer(REVIEW.format(submission_id), coach, {"decision": "approve"})
        assert status == 200 and decided["project_status"] == "submitted", decided
    status, decided = as_trainer(REVIEW.format(fixed["id"]), coach, {"decision": "approve"})
    assert status == 200 and decided["project_status"] == "approved", decided
    page = project_page(ada, pid)
    assert page["status"] == "approved" and page["progress_percent"] == 100
    assert not any(step["completed"] for step in page["steps"])


def test_a_replacement_before_review_keeps_its_attempt_number(aws, people, conn) -> None:  # noqa: F811 - the imported fixtures
    ada = people()
    progress(conn, ada, "DP", 1)
    link = deliverable(conn, "DP", 1, 1)
    numbers = []
    for n in range(3):
        status, created = call(
            "POST", SUBMIT, ada, {"deliverable_id": link["id"], "submission_url": f"https://bi.example.com/v{n}"}
        )
        assert status == 201, created
        numbers.append(created["attempt"])
    assert numbers == [1, 1, 1]
    assert [a["status"] for a in attempts(conn, ada)] == ["SUPERSEDED", "SUPERSEDED", "PENDING"]


def _send_back(conn, submission_id: str, reviewer: Person) -> None:
    conn.execute(
        "UPDATE submissions SET status = 'CHANGES_REQUESTED', feedback = 'Not yet.', reviewed_by = %s,"
        " reviewed_at = now() WHERE id = %s",
        (reviewer.user_id, submission_id),
    )


def test_text_and_commits_sent_back_are_refused_unchanged_and_links_are_not(aws, people, conn) -> None:  # noqa: F811 - the imported fixtures
    ada = people()
    coach = people(track=None, role="trainer", status="PENDING_PAYMENT")
    progress(conn, ada, "DP", 1)
    progress(conn, ada, "DP", 2)
    link, repo = deliverable(conn, "DP", 1, 1), deliverable(conn, "DP", 1, 2)
    text = deliverable(conn, "DP", 2, 3)
    cases = [
        (text, {"submission_text": "My answer."}, {"submission_text": "  My answer.\n"}, 409),
        (repo, {"submission_url": "https://github.com/ada/kpi", "commit_sha": SHA},
         {"submission_url": "https://github.com/ada/kpi.git", "commit_sha": SHA.upper()}, 409),
        # What a URL shows can change behind it: the same link may be sent again.
        (link, {"submission_url": "https://bi.example.com/d"}, {"submission_url": "https://bi.example.com/d"}, 201),
    ]  # fmt: skip
    for target, before, again, expected in cases:
        status, created = call("POST", SUBMIT, ada, {"deliverable_id": target["id"], **before})
        assert status == 201, created
        _send_back(conn, created["id"], coach)
        status, answer = call("POST", SUBMIT, ada, {"deliverable_id": target["id"], **again})
        assert status == expected, answer
        if expected == 409:
            assert answer["error"]["code"] == "unchanged_resubmission"
            assert answer["error"]["details"] == [{"submission_id": created["id"], "attempt": 1}]
        else:
            assert answer["attempt"] == 2
    status, changed = call(
        "POST", SUBMIT, ada, {"deliverable_id": text["id"], "submission_text": "My answer, with the fix."}
    )
    assert status == 201 and changed["attempt"] == 2
