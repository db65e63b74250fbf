"""The trainer routes through the real handler (``functions.trainer.handler``), on the real database,
with SES in moto (in-process) read back for the emails a review promises.

Callers carry the claims API Gateway's JWT authorizer hands over (an access token's ``sub`` and
``cognito:groups``). Students, assignments, progress and submissions are arranged with SQL as the
enrollment, assignment, start and submission code leaves them — a submission is inserted as the
submissions function does it (lock the progress row, supersede the pending attempt, insert the next
attempt, ``apranova.learning.recompute``) — and everything a review changes is read back from the
database and the mailbox.
"""

from __future__ import annotations

import html
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import psycopg
import pytest
from moto import mock_aws
from psycopg.rows import dict_row

from apranova import db, learning, mail
from apranova.errors import Conflict
from apranova.identity import Caller
from functions.trainer import handler, service
from functions.trainer.handler import lambda_handler
from functions.trainer.models import ReviewRequest
from local.events import LambdaContext, http_api_event
from local.moto_stack import mailbox

SENDER = "reviews@apranova.test"
SPA = "http://spa.trainer.test"
REVIEW = "/api/trainer/submissions/{}/review/"
ROUTES = [
    ("GET", "/api/trainer/students/", None),
    ("GET", "/api/trainer/submissions/", None),
    ("POST", REVIEW.format(uuid.uuid4()), {"decision": "approve"}),
]


@dataclass
class Person:
    user_id: str
    email: str
    groups: str
    name: str = ""

    @property
    def claims(self) -> dict[str, Any]:
        return {"sub": self.user_id, "token_use": "access", "cognito:groups": self.groups, "email": self.email}

    @property
    def caller(self) -> Caller:
        return Caller(self.user_id, frozenset(self.groups.strip("[]").split()), self.email)


def call(method: str, path: str, who: Person | None, body: Any = None, **query: str) -> tuple[int, Any]:
    event = http_api_event(
        method,
        path,
        body=json.dumps(body) if body is not None else None,
        claims=who.claims if who else None,
        query=query or None,
        request_id=f"req-{uuid.uuid4().hex[:12]}",
    )
    response = lambda_handler(event, LambdaContext("trainer"))
    return response["statusCode"], json.loads(response["body"]) if response.get("body") else None


def emails_to(person: Person) -> list[dict[str, Any]]:
    """What SES accepted for ``person``, oldest first."""
    return list(reversed([m for m in mailbox() if person.email in m["to"]]))


@pytest.fixture(scope="module", autouse=True)
def ses(database_url: str) -> Iterator[None]:
    try:
        with pytest.MonkeyPatch.context() as mp, mock_aws():
            mp.setenv("EMAIL_SENDER", SENDER)
            mp.setenv("SPA_ORIGIN", SPA)
            boto3.client("ses", region_name="us-east-1").verify_email_identity(EmailAddress=SENDER)
            mail.reset()
            handler.settings.cache_clear()
            yield
    finally:
        mail.reset()
        handler.settings.cache_clear()


@pytest.fixture
def people(conn) -> Iterator[Callable[..., Person]]:
    made: list[str] = []

    def make(role: str = "student", track: str | None = None, status: str = "ENROLLED") -> Person:
        user_id = str(uuid.uuid4())
        email = f"trainer-test-{user_id[:8]}@example.com"
        name = f"{role.title()} {user_id[:4]}"
        enrolled = role == "student" and track is not None
        conn.execute(
            "INSERT INTO users (id, email, name, role, track_id, enrollment_status, enrolled_at, email_verified)"
            " VALUES (%s, %s, %s, %s, (SELECT id FROM tracks WHERE code = %s), %s,"
            " CASE WHEN %s THEN now() END, true)",
            (user_id, email, name, role, track, status if enrolled else "PENDING_PAYMENT", enrolled),
        )
        made.append(user_id)
        return Person(user_id, email, f"[{role}s]", name)

    yield make
    conn.execute("DELETE FROM users WHERE id = ANY(%s::uuid[])", (made,))


# --- arranging state as the other functions leave it -------------------------------------------------


def assign(conn, student: Person, trainer: Person, track: str, days_ago: int = 0) -> None:
    conn.execute(
        "INSERT INTO trainer_assignments (student_id, trainer_id, track, assigned_at)"
        " VALUES (%s, %s, %s, now() - make_interval(days => %s))",
        (student.user_id, trainer.user_id, track, days_ago),
    )


def projects(conn, track: str) -> list[dict[str, Any]]:
    return conn.execute(
        "SELECT p.id, p.number, p.title FROM projects p JOIN tracks t ON t.id = p.track_id"
        " WHERE t.code = %s AND p.is_active ORDER BY p.number",
        (track,),
    ).fetchall()


def deliverables(conn, project_id: int, required: bool = True) -> list[dict[str, Any]]:
    return conn.execute(
        "SELECT id, title, deliverable_type, accepted_content_types FROM deliverables"
        " WHERE project_id = %s AND is_active AND is_required = %s ORDER BY number",
        (project_id, required),
    ).fetchall()


def start(conn, student: Person, project_id: int) -> None:
    """What the start route leaves: project 1 unlocked at enrollment, then started."""
    conn.execute(
        "INSERT INTO student_progress (student_id, project_id, status, unlocked_at, started_at)"
        " VALUES (%s, %s, 'IN_PROGRESS', now(), now())"
        " ON CONFLICT (student_id, project_id) DO UPDATE SET status = 'IN_PROGRESS', started_at = now()",
        (student.user_id, project_id),
    )


def submit(conn, student: Person, project_id: int, deliverable: dict[str, Any]) -> str:
    """A new attempt, as the submissions function writes it."""
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(
            "SELECT 1 FROM student_progress WHERE student_id = %s AND project_id = %s FOR UPDATE",
            (student.user_id, project_id),
        )
        replaced = cur.execute(
            "UPDATE submissions SET status = 'SUPERSEDED'"
            " WHERE student_id = %s AND deliverable_id = %s AND status = 'PENDING' RETURNING attempt",
            (student.user_id, deliverable["id"]),
        ).fetchone()
        # A replaced pending attempt keeps its number; a try after a decision takes the next one.
        attempt = (
            replaced["attempt"]
            if replaced
            else cur.execute(
                "SELECT coalesce(max(attempt), 0) + 1 AS n FROM submissions"
                " WHERE student_id = %s AND deliverable_id = %s AND status <> 'SUPERSEDED'",
                (student.user_id, deliverable["id"]),
            ).fetchone()["n"]
        )
        content: dict[str, Any] = {"url": None, "sha": None, "text": None, "key": None, "size": None, "type": None}
        kind = deliverable["deliverable_type"]
        if kind == "LINK":
            content["url"] = f"https://example.com/{student.user_id[:8]}/{attempt}"
        elif kind == "GITHUB":
            content.update(url=f"https://github.com/learner/{student.user_id[:8]}", sha=uuid.uuid4().hex[:12])
        elif kind == "TEXT":
            content["text"] = f"My answer, attempt {attempt}."
        else:
            content.update(
                key=f"submissions/{student.user_id}/{deliverable['id']}/{uuid.uuid4().hex}",
                size=2048,
                type=deliverable["accepted_content_types"][0],
            )
        row = cur.execute(
            "INSERT INTO submissions (student_id, project_id, deliverable_id, attempt, submission_url, commit_sha,"
            " submission_text, file_key, file_size, file_content_type)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id::text AS id",
            (
                student.user_id,
                project_id,
                deliverable["id"],
                attempt,
                content["url"],
                content["sha"],
                content["text"],
                content["key"],
                content["size"],
                content["type"],
            ),
        ).fetchone()
        learning.recompute(cur, student.user_id, project_id)
    return row["id"]


def backdate(conn, submission_id: str, hours: int) -> None:
    conn.execute(
        "UPDATE submissions SET submitted_at = now() - make_interval(hours => %s) WHERE id = %s",
        (hours, submission_id),
    )


def progress(conn, student: Person) -> dict[int, str]:
    rows = conn.execute(
        "SELECT p.number, sp.status FROM student_progress sp JOIN projects p ON p.id = sp.project_id"
        " WHERE sp.student_id = %s",
        (student.user_id,),
    ).fetchall()
    return {r["number"]: r["status"] for r in rows}


def submission(conn, submission_id: str) -> dict[str, Any]:
    return conn.execute(
        "SELECT status, feedback, reviewed_by::text AS reviewed_by, reviewed_at FROM submissions WHERE id = %s",
        (submission_id,),
    ).fetchone()


def reviews_audited(conn, submission_id: str) -> list[dict[str, Any]]:
    return conn.execute(
        "SELECT actor_id::text AS actor_id, actor_role, subject_id::text AS subject_id, details, request_id"
        " FROM audit_logs WHERE action = 'REVIEW' AND resource_type = 'submission' AND resource_id = %s",
        (submission_id,),
    ).fetchall()


def all_pages(path: str, who: Person, **query: str) -> list[dict[str, Any]]:
    items, cursor = [], None
    while True:
        status, body = call("GET", path, who, **query, limit="100", **({"cursor": cursor} if cursor else {}))
        assert status == 200, body
        items += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            return items


# --- who may call ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
def test_anonymous_and_id_tokens_are_401(method: str, path: str, body: Any, people) -> None:
    assert call(method, path, None, body)[0] == 401
    trainer = people("trainer")
    event = http_api_event(method, path, claims={**trainer.claims, "token_use": "id"})
    assert lambda_handler(event, LambdaContext("trainer"))["statusCode"] == 401


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
def test_students_are_403(method: str, path: str, body: Any, people, conn) -> None:
    student = people("student", "DP")
    status, answer = call(method, path, student, body)
    assert status == 403 and answer["error"]["code"] == "permission_denied"


def test_a_student_cannot_review_even_their_own_submission(people, conn) -> None:
    student = people("student", "DP")
    project = projects(conn, "DP")[0]
    start(conn, student, project["id"])
    submission_id = submit(conn, student, project["id"], deliverables(conn, project["id"])[0])
    status, _ = call("POST", REVIEW.format(submission_id), student, {"decision": "approve"})
    assert status == 403
    assert submission(conn, submission_id)["status"] == "PENDING"
    assert progress(conn, student) == {1: "IN_PROGRESS"}  # one required deliverable of several
    assert reviews_audited(conn, submission_id) == []


# --- assigned students ---------------------------------------------------------------------------------


def test_students_are_the_trainers_assigned_ones_with_their_progress(people, conn) -> None:
    trainer, other_trainer, admin = people("trainer"), people("trainer"), people("admin")
    ada, bob, cy = people("student", "DP"), people("student", "FSD"), people("student", "DP")
    assign(conn, ada, trainer, "DP", days_ago=2)
    assign(conn, bob, trainer, "FSD", days_ago=1)
    assign(conn, cy, other_trainer, "DP")
    dp = projects(conn, "DP")
    start(conn, ada, dp[0]["id"])
    steps = conn.execute(
        "SELECT id FROM project_steps WHERE project_id = %s AND is_active ORDER BY number LIMIT 2", (dp[0]["id"],)
    ).fetchall()
    for step in steps:
        conn.execute(
            "INSERT INTO step_completions (student_id, project_id, step_id) VALUES (%s, %s, %s)",
            (ada.user_id, dp[0]["id"], step["id"]),
        )
    submit(conn, ada, dp[0]["id"], deliverables(conn, dp[0]["id"])[0])
    dp_steps = conn.execute(
        "SELECT count(*) AS n FROM project_steps ps JOIN projects p ON p.id = ps.project_id"
        " JOIN tracks t ON t.id = p.track_id WHERE t.code = 'DP' AND p.is_active AND ps.is_active"
    ).fetchone()["n"]

    status, body = call("GET", "/api/trainer/students/", trainer)
    assert status == 200
    assert [s["id"] for s in body["items"]] == [ada.user_id, bob.user_id]  # oldest assignment first
    assert body["next_cursor"] is None
    first, second = body["items"]
    assert first["email"] == ada.email and first["name"] == ada.name and first["track"] == "DP"
    assert first["enrollment_status"] == "ENROLLED" and first["trainer_id"] == trainer.user_id
    assert first["current_project"] == {
        "id": dp[0]["id"],
        "number": 1,
        "title": dp[0]["title"],
        "status": "in_progress",
    }
    assert first["progress"] == {
        "steps_completed": 2,
        "steps_total": dp_steps,
        "steps_percent": 200 // dp_steps,
        "projects_approved": 0,
        "projects_total": 3,
        "projects_percent": 0,
    }
    assert first["last_submission_at"] is not None
    assert second["track"] == "FSD" and second["current_project"] is None and second["last_submission_at"] is None
    assert second["progress"]["steps_completed"] == 0 and second["progress"]["projects_total"] == 3

    # ?track= and keyset pages
    status, body = call("GET", "/api/trainer/students/", trainer, track="FSD")
    assert status == 200 and [s["id"] for s in body["items"]] == [bob.user_id]
    status, page1 = call("GET", "/api/trainer/students/", trainer, limit="1")
    assert [s["id"] for s in page1["items"]] == [ada.user_id] and page1["next_cursor"]
    status, page2 = call("GET", "/api/trainer/students/", trainer, limit="1", cursor=page1["next_cursor"])
    assert [s["id"] for s in page2["items"]] == [bob.user_id] and page2["next_cursor"] is None

    # another trainer sees only theirs; an admin sees every student
    status, body = call("GET", "/api/trainer/students/", other_trainer)
    assert [s["id"] for s in body["items"]] == [cy.user_id]
    everyone = {s["id"]: s for s in all_pages("/api/trainer/students/", admin, track="DP")}
    assert ada.user_id in everyone and cy.user_id in everyone and bob.user_id not in everyone
    assert everyone[cy.user_id]["trainer_id"] == other_trainer.user_id
    assert everyone[ada.user_id]["progress"]["steps_completed"] == 2


@pytest.mark.parametrize(
    "query",
    [{"track": "dp"}, {"limit": "0"}, {"limit": "101"}, {"cursor": "not-a-cursor"}, {"cursor": "WyJ4IiwieSJd"}],
)
def test_students_bad_query_is_422(query: dict[str, str], people) -> None:
    status, body = call("GET", "/api/trainer/students/", people("trainer"), **query)
    assert status == 422, body
    assert body["error"]["code"] == ("invalid_cursor" if "cursor" in query else "validation_error")


# --- the review queue ----------------------------------------------------------------------------------


def test_the_queue_is_my_students_pending_submissions_oldest_first(people, conn) -> None:
    trainer, other_trainer, admin = people("trainer"), people("trainer"), people("admin")
    ada, bob, cy = people("student", "DP"), people("student", "FSD"), people("student", "DP")
    assign(conn, ada, trainer, "DP")
    assign(conn, bob, trainer, "FSD")
    assign(conn, cy, other_trainer, "DP")
    subs = {}
    for who, track, hours in ((ada, "DP", 3), (bob, "FSD", 5), (cy, "DP", 1)):
        project = projects(conn, track)[0]
        deliverable = deliverables(conn, project["id"])[0]
        start(conn, who, project["id"])
        subs[who.user_id] = submit(conn, who, project["id"], deliverable)
        backdate(conn, subs[who.user_id], hours)

    status, body = call("GET", "/api/trainer/submissions/", trainer)
    assert status == 200
    assert [s["id"] for s in body["items"]] == [subs[bob.user_id], subs[ada.user_id]]  # oldest first
    oldest = body["items"][0]
    fsd = projects(conn, "FSD")[0]
    assert oldest["status"] == "PENDING" and oldest["attempt"] == 1
    assert oldest["student_id"] == bob.user_id and oldest["student_email"] == bob.email
    assert oldest["student_name"] == bob.name
    assert oldest["project_id"] == fsd["id"] and oldest["project_title"] == fsd["title"]
    assert oldest["deliverable_title"] == deliverables(conn, fsd["id"])[0]["title"]
    assert oldest["waiting_seconds"] >= 5 * 3600
    assert body["items"][1]["waiting_seconds"] >= 3 * 3600
    assert oldest["reviewed_by"] is None and oldest["feedback"] is None

    status, page1 = call("GET", "/api/trainer/submissions/", trainer, status="PENDING", limit="1")
    assert [s["id"] for s in page1["items"]] == [subs[bob.user_id]] and page1["next_cursor"]
    status, page2 = call("GET", "/api/trainer/submissions/", trainer, limit="1", cursor=page1["next_cursor"])
    assert [s["id"] for s in page2["items"]] == [subs[ada.user_id]] and page2["next_cursor"] is None

    status, body = call("GET", "/api/trainer/submissions/", other_trainer)
    assert [s["id"] for s in body["items"]] == [subs[cy.user_id]]
    pending = [s["id"] for s in all_pages("/api/trainer/submissions/", admin)]
    assert set(subs.values()) <= set(pending)

    # decided ones by ?status=, with how long they waited for the decision
    status, _ = call("POST", REVIEW.format(subs[ada.user_id]), trainer, {"decision": "approve"})
    assert status == 200
    status, body = call("GET", "/api/trainer/submissions/", trainer, status="APPROVED")
    assert [s["id"] for s in body["items"]] == [subs[ada.user_id]]
    assert body["items"][0]["reviewed_by"] == trainer.user_id and body["items"][0]["waiting_seconds"] >= 3 * 3600
    status, body = call("GET", "/api/trainer/submissions/", trainer)
    assert [s["id"] for s in body["items"]] == [subs[bob.user_id]]


@pytest.mark.parametrize(
    "query", [{"status": "pending"}, {"status": "BOGUS"}, {"limit": "x"}, {"cursor": "WyJub3QtYS1kYXRlIiwiMSJd"}]
)
def test_queue_bad_query_is_422(query: dict[str, str], people) -> None:
    status, body = call("GET", "/api/trainer/submissions/", people("trainer"), **query)
    assert status == 422, body
    assert body["error"]["code"] == ("invalid_cursor" if "cursor" in query else "validation_error")


# --- reviewing -------------------------------------------------------------------------------------


@pytest.fixture
def pending(people, conn) -> Callable[..., tuple[Person, Person, str]]:
    """(trainer, student, submission id): a DP student assigned to the trainer, project 1 started,
    its first deliverable submitted."""

    def make() -> tuple[Person, Person, str]:
        trainer, student = people("trainer"), people("student", "DP")
        assign(conn, student, trainer, "DP")
        project = projects(conn, "DP")[0]
        start(conn, student, project["id"])
        return trainer, student, submit(conn, student, project["id"], deliverables(conn, project["id"])[0])

    return make


def test_request_changes_records_the_decision_audits_and_emails(pending, conn) -> None:
    trainer, student, submission_id = pending()
    status, body = call(
        "POST", REVIEW.format(submission_id), trainer, {"decision": "request_changes", "feedback": "  Add <axes>.  "}
    )
    assert status == 200, body
    assert body["status"] == "CHANGES_REQUESTED" and body["feedback"] == "Add <axes>."
    assert body["reviewed_by"] == trainer.user_id and body["project_status"] == "changes_requested"
    assert body["unlocked_project_id"] is None and body["track_completed"] is False
    stored = submission(conn, submission_id)
    assert stored["status"] == "CHANGES_REQUESTED" and stored["reviewed_by"] == trainer.user_id
    assert stored["reviewed_at"] is not None
    assert progress(conn, student) == {1: "CHANGES_REQUESTED"}
    [audited] = reviews_audited(conn, submission_id)
    assert audited["actor_id"] == trainer.user_id and audited["actor_role"] == "trainer"
    assert audited["subject_id"] == student.user_id and audited["request_id"]
    assert audited["details"]["decision"] == "request_changes"
    assert audited["details"]["project_id"] == projects(conn, "DP")[0]["id"]
    [email] = emails_to(student)
    assert email["from"] == SENDER and email["subject"].startswith("Changes requested:")
    assert html.escape("Add <axes>.") in email["body_html"] and f"{SPA}/dashboard" in email["body_html"]


def test_an_admin_may_review_any_student(pending, people, conn) -> None:
    _, student, submission_id = pending()
    admin = people("admin")
    status, body = call("POST", REVIEW.format(submission_id), admin, {"decision": "approve", "feedback": "Nice."})
    assert status == 200 and body["status"] == "APPROVED" and body["reviewed_by"] == admin.user_id
    assert reviews_audited(conn, submission_id)[0]["actor_role"] == "admin"


def test_another_trainers_student_and_unknown_ids_are_404(pending, people, conn) -> None:
    _, student, submission_id = pending()
    stranger = people("trainer")
    for target in (submission_id, str(uuid.uuid4()), "not-a-uuid"):
        status, body = call("POST", REVIEW.format(target), stranger, {"decision": "approve"})
        assert status == 404 and body["error"]["code"] == "not_found"
    unassigned = people("student", "DP")
    project = projects(conn, "DP")[0]
    start(conn, unassigned, project["id"])
    orphan = submit(conn, unassigned, project["id"], deliverables(conn, project["id"])[0])
    assert call("POST", REVIEW.format(orphan), stranger, {"decision": "approve"})[0] == 404
    assert submission(conn, submission_id)["status"] == "PENDING" and submission(conn, orphan)["status"] == "PENDING"
    assert emails_to(student) == [] and reviews_audited(conn, submission_id) == []


def test_a_decided_or_superseded_attempt_is_409(pending, conn) -> None:
    trainer, student, first = pending()
    assert call("POST", REVIEW.format(first), trainer, {"decision": "approve"})[0] == 200
    for decision in ({"decision": "approve"}, {"decision": "request_changes", "feedback": "again"}):
        status, body = call("POST", REVIEW.format(first), trainer, decision)
        assert status == 409 and body["error"]["code"] == "not_reviewable"
    assert submission(conn, first)["status"] == "APPROVED" and len(reviews_audited(conn, first)) == 1

    project = projects(conn, "DP")[0]
    second_deliverable = deliverables(conn, project["id"])[1]
    older = submit(conn, student, project["id"], second_deliverable)
    newer = submit(conn, student, project["id"], second_deliverable)
    status, body = call("POST", REVIEW.format(older), trainer, {"decision": "approve"})
    assert status == 409 and body["error"]["code"] == "not_reviewable"
    assert submission(conn, older)["status"] == "SUPERSEDED" and submission(conn, newer)["status"] == "PENDING"


@pytest.mark.parametrize(
    "body",
    [
        {"decision": "request_changes"},
        {"decision": "request_changes", "feedback": "   "},
        {"decision": "request_changes", "feedback": None},
        {"decision": "maybe", "feedback": "x"},
        {},
        {"decision": "approve", "status": "APPROVED"},
        {"decision": "approve", "reviewed_by": str(uuid.uuid4())},
    ],
)
def test_bad_review_bodies_are_422_and_change_nothing(body: dict[str, Any], pending, conn) -> None:
    trainer, student, submission_id = pending()
    status, answer = call("POST", REVIEW.format(submission_id), trainer, body)
    assert status == 422 and answer["error"]["code"] == "validation_error"
    if body.get("decision") == "request_changes":
        assert [d["field"] for d in answer["error"]["details"]] == ["body.feedback"]
    assert submission(conn, submission_id)["status"] == "PENDING" and progress(conn, student) == {1: "IN_PROGRESS"}


def test_two_concurrent_reviews_decide_once(pending, database_url: str, conn) -> None:
    trainer, student, submission_id = pending()
    outcomes: list[Any] = []

    def review(slot: str, decision: ReviewRequest) -> None:
        with db.function_slot(slot):  # each thread on its own connection, as two Lambda environments
            try:
                outcomes.append(service.review(trainer.caller, submission_id, decision, mail.send, SPA))
            except Conflict as error:
                outcomes.append(error)

    approve = ReviewRequest(decision="approve")
    changes = ReviewRequest(decision="request_changes", feedback="Redo it.")
    threads = [
        threading.Thread(target=review, args=("review-a", approve)),
        threading.Thread(target=review, args=("review-b", changes)),
    ]
    try:
        # Hold the submission's row lock so both reviews are in flight (one waiting on the
        # submission, the other on the project it locked first) before either can decide.
        with psycopg.connect(database_url, row_factory=dict_row) as holder:
            holder.execute("SELECT 1 FROM submissions WHERE id = %s FOR UPDATE", (submission_id,))
            for thread in threads:
                thread.start()
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                waiting = conn.execute(
                    "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database()"
                    " AND wait_event_type = 'Lock' AND application_name = 'apranova'"
                ).fetchone()["n"]
                if waiting >= 2:
                    break
                time.sleep(0.02)
            else:
                pytest.fail("the two reviews never waited on each other")
        for thread in threads:
            thread.join(timeout=30)
    finally:
        db.reset()

    decided = [o for o in outcomes if isinstance(o, dict)]
    refused = [o for o in outcomes if isinstance(o, Conflict)]
    assert len(decided) == 1 and len(refused) == 1 and refused[0].code == "not_reviewable"
    assert submission(conn, submission_id)["status"] == decided[0]["status"]
    assert len(reviews_audited(conn, submission_id)) == 1
    assert len(emails_to(student)) == 1

    # and sequentially, through the route: the second review is a 409
    status, body = call("POST", REVIEW.format(submission_id), trainer, {"decision": "approve"})
    assert status == 409 and body["error"]["code"] == "not_reviewable"


# --- the whole unlock chain --------------------------------------------------------------------------


@pytest.mark.parametrize("track", ["DP", "FSD"])
def test_the_unlock_chain_to_a_completed_track(track: str, people, conn) -> None:
    trainer, student = people("trainer"), people("student", track)
    assign(conn, student, trainer, track)
    chain = projects(conn, track)
    assert [p["number"] for p in chain] == [1, 2, 3]

    def approve(submission_id: str) -> dict[str, Any]:
        status, body = call("POST", REVIEW.format(submission_id), trainer, {"decision": "approve"})
        assert status == 200, body
        return body

    # Project 1: everything submitted; changes requested on one, resubmitted, then all approved.
    first = chain[0]
    start(conn, student, first["id"])
    required = deliverables(conn, first["id"])
    submitted = [submit(conn, student, first["id"], d) for d in required]
    assert progress(conn, student) == {1: "SUBMITTED"}
    status, body = call(
        "POST", REVIEW.format(submitted[0]), trainer, {"decision": "request_changes", "feedback": "Fix the README."}
    )
    assert status == 200 and body["project_status"] == "changes_requested"
    for submission_id in submitted[1:]:
        assert approve(submission_id)["project_status"] == "changes_requested"
    assert progress(conn, student) == {1: "CHANGES_REQUESTED"}
    resubmitted = submit(conn, student, first["id"], required[0])
    assert progress(conn, student) == {1: "SUBMITTED"}
    assert submission(conn, submitted[0])["status"] == "CHANGES_REQUESTED"  # history kept
    result = approve(resubmitted)
    assert result["project_status"] == "approved" and result["unlocked_project_id"] == chain[1]["id"]
    assert (result["unlocked_project_number"], result["unlocked_project_title"]) == (2, chain[1]["title"])
    assert progress(conn, student) == {1: "APPROVED", 2: "UNLOCKED"}
    subjects = [e["subject"] for e in emails_to(student)]
    assert f"Project 2 unlocked: {chain[1]['title']}" in subjects

    # Projects 2 and 3: started, every required deliverable submitted and approved.
    for project in chain[1:]:
        start(conn, student, project["id"])
        submitted = [submit(conn, student, project["id"], d) for d in deliverables(conn, project["id"])]
        assert progress(conn, student)[project["number"]] == "SUBMITTED"
        results = [approve(submission_id) for submission_id in submitted]
        assert results[-1]["project_status"] == "approved"
        assert all(r["project_status"] == "submitted" for r in results[:-1])
    assert results[-1]["track_completed"] is True and results[-1]["unlocked_project_id"] is None
    assert (results[-1]["unlocked_project_number"], results[-1]["unlocked_project_title"]) == (None, None)
    assert progress(conn, student) == {1: "APPROVED", 2: "APPROVED", 3: "APPROVED"}
    user = conn.execute(
        "SELECT enrollment_status, completed_at FROM users WHERE id = %s", (student.user_id,)
    ).fetchone()
    assert user["enrollment_status"] == "COMPLETED" and user["completed_at"] is not None

    subjects = [e["subject"] for e in emails_to(student)]
    track_name = conn.execute("SELECT name FROM tracks WHERE code = %s", (track,)).fetchone()["name"]
    assert f"Project 3 unlocked: {chain[2]['title']}" in subjects
    assert subjects[-1] == f"You completed the {track_name} track"
    reviews = sum(len(deliverables(conn, p["id"])) for p in chain) + 1
    assert sum(s.startswith(("Approved:", "Changes requested:")) for s in subjects) == reviews
    audited = conn.execute(
        "SELECT count(*) AS n FROM audit_logs WHERE action = 'REVIEW' AND subject_id = %s",
        (student.user_id,),
    ).fetchone()["n"]
    assert audited == reviews

    status, body = call("GET", "/api/trainer/students/", trainer)
    [row] = body["items"]
    assert row["enrollment_status"] == "COMPLETED" and row["current_project"] is None
    assert row["progress"]["projects_approved"] == 3 and row["progress"]["projects_percent"] == 100
