"""The student curriculum routes through the real handler (``functions.curriculum.handler``), on the
real database, with S3 in moto (in-process).

Callers carry the claims API Gateway's JWT authorizer hands over. Enrolled students are arranged as
the enrollment workflow leaves them: a user row ENROLLED in a track, a consent to the versions in
force, and project 1 UNLOCKED; later states (started, submitted, reviewed) are arranged with SQL as
the submission and review flows leave them. Only the routes under test change anything.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import requests
from moto import mock_aws

from apranova import db
from bench.sqlcount import StatementCounter
from functions.curriculum import config
from functions.curriculum.handler import lambda_handler
from functions.migrate.dataset import DATASET_KEY
from local.events import LambdaContext, http_api_event

BUCKET = "apranova-datasets-curriculum-test"
DATASET_BYTES = b"order_id,order_date\n1,2024-01-02\n"


@dataclass
class Person:
    user_id: str
    email: str
    groups: str = "[students]"

    @property
    def claims(self) -> dict[str, Any]:
        return {"sub": self.user_id, "token_use": "access", "cognito:groups": self.groups, "email": self.email}


def call(method: str, path: str, who: Person | None, body: Any = None) -> tuple[int, dict[str, str], Any]:
    event = http_api_event(
        method,
        path,
        body=json.dumps(body) if body is not None else None,
        headers={"user-agent": "curriculum-tests/1.0", "content-type": "application/json"},
        claims=who.claims if who else None,
        source_ip="203.0.113.9",
        request_id=f"req-{uuid.uuid4().hex[:12]}",
    )
    response = lambda_handler(event, LambdaContext("curriculum"))
    text = response.get("body")
    return (
        response["statusCode"],
        {k.lower(): v for k, v in (response.get("headers") or {}).items()},
        json.loads(text) if text else None,
    )


@pytest.fixture(scope="module")
def s3(database_url: str) -> Iterator[Any]:
    import boto3

    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        client.put_object(Bucket=BUCKET, Key=DATASET_KEY, Body=DATASET_BYTES, ContentType="text/csv")
        try:
            with pytest.MonkeyPatch.context() as mp:
                mp.setenv("DATASETS_BUCKET", BUCKET)
                config.reset()
                yield client
        finally:
            config.reset()


@pytest.fixture(scope="module")
def catalogue(database_url: str) -> dict[str, list[dict[str, Any]]]:
    """Each track's active projects in order, with their active steps and deliverables."""
    import psycopg
    from psycopg.rows import dict_row

    with psycopg.connect(database_url, row_factory=dict_row) as conn:
        rows = conn.execute(
            """
            SELECT t.code, p.id, p.number, p.title, p.dataset_key,
                   (SELECT array_agg(s.id ORDER BY s.number) FROM project_steps s
                    WHERE s.project_id = p.id AND s.is_active) AS steps,
                   (SELECT array_agg(s.id ORDER BY s.number) FROM project_steps s
                    WHERE s.project_id = p.id AND s.is_active AND NOT s.is_optional) AS required_steps,
                   (SELECT array_agg(d.id ORDER BY d.number) FROM deliverables d
                    WHERE d.project_id = p.id AND d.is_active) AS deliverables
            FROM projects p JOIN tracks t ON t.id = p.track_id
            WHERE p.is_active ORDER BY t.code, p.number
            """
        ).fetchall()
    tracks: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        tracks.setdefault(row["code"], []).append(row)
    return tracks


@pytest.fixture
def people(conn) -> Iterator[Callable[..., Person]]:
    made: list[str] = []

    def make(
        track: str | None = "DP",
        status: str = "ENROLLED",
        groups: str = "[students]",
        consent: bool = True,
        unlock_first: bool = True,
    ) -> Person:
        user_id = str(uuid.uuid4())
        email = f"curriculum-{user_id[:8]}@example.com"
        # The role is the database's (the guard reads it); the token's groups say the same.
        role = {"[trainers]": "trainer", "[admins]": "admin"}.get(groups, "student")
        conn.execute(
            "INSERT INTO users (id, email, name, role, track_id, enrollment_status, email_verified, enrolled_at)"
            " VALUES (%s, %s, 'Ada', %s, (SELECT id FROM tracks WHERE code = %s), %s, true,"
            " CASE WHEN %s IN ('ENROLLED', 'COMPLETED') THEN now() END)",
            (user_id, email, role, track, status, status),
        )
        made.append(user_id)
        if consent:
            conn.execute(
                "INSERT INTO user_consents (user_id, privacy_policy_version, terms_version, source)"
                " VALUES (%s, privacy_version_in_force(),"
                " terms_version_in_force(), 'SIGNUP')",
                (user_id,),
            )
        if unlock_first and track is not None and status in ("ENROLLED", "COMPLETED"):
            conn.execute(
                "INSERT INTO student_progress (student_id, project_id, status, unlocked_at)"
                " SELECT %s, p.id, 'UNLOCKED', now() FROM projects p JOIN tracks t ON t.id = p.track_id"
                " WHERE t.code = %s AND p.number = 1",
                (user_id, track),
            )
        return Person(user_id, email, groups)

    yield make
    conn.execute("DELETE FROM users WHERE id = ANY(%s::uuid[])", (made,))


def set_progress(conn, who: Person, project_id: int, status: str) -> None:
    """As the enrollment, submission and review flows leave a project (never a student route)."""
    conn.execute(
        """
        INSERT INTO student_progress
            (student_id, project_id, status, unlocked_at, started_at, submitted_at, approved_at)
        VALUES (%(student)s, %(project)s, %(status)s, now(),
                CASE WHEN %(status)s NOT IN ('LOCKED', 'UNLOCKED') THEN now() END,
                CASE WHEN %(status)s IN ('SUBMITTED', 'CHANGES_REQUESTED', 'APPROVED') THEN now() END,
                CASE WHEN %(status)s = 'APPROVED' THEN now() END)
        ON CONFLICT (student_id, project_id) DO UPDATE SET status = excluded.status,
            started_at = excluded.started_at, submitted_at = excluded.submitted_at, approved_at = excluded.approved_at
        """,
        {"student": who.user_id, "project": project_id, "status": status},
    )


def complete(conn, who: Person, project_id: int, step_ids: list[int]) -> None:
    for step_id in step_ids:
        conn.execute(
            "INSERT INTO step_completions (student_id, project_id, step_id) VALUES (%s, %s, %s)",
            (who.user_id, project_id, step_id),
        )


def progress_rows(conn, who: Person) -> list[dict[str, Any]]:
    return conn.execute(
        "SELECT project_id, status, started_at FROM student_progress WHERE student_id = %s ORDER BY project_id",
        (who.user_id,),
    ).fetchall()


def completions(conn, who: Person) -> list[int]:
    rows = conn.execute(
        "SELECT step_id FROM step_completions WHERE student_id = %s ORDER BY step_id", (who.user_id,)
    ).fetchall()
    return [row["step_id"] for row in rows]


def error_code(body: Any) -> str:
    return body["error"]["code"]


def routes_for(project_id: int, step_id: int) -> list[tuple[str, str]]:
    base = f"/api/curriculum/projects/{project_id}"
    return [
        ("GET", "/api/curriculum/my-track/"),
        ("GET", "/api/curriculum/projects/"),
        ("GET", f"{base}/"),
        ("GET", "/api/curriculum/my-progress/"),
        ("POST", f"{base}/start/"),
        ("POST", f"{base}/steps/{step_id}/complete/"),
        ("DELETE", f"{base}/steps/{step_id}/complete/"),
        ("GET", f"{base}/dataset/"),
    ]


# -- reads ----------------------------------------------------------------------------------------


def test_projects_list_each_projects_status_and_progress_in_order(people, conn, catalogue) -> None:
    dp = catalogue["DP"]
    ada = people()

    status, headers, body = call("GET", "/api/curriculum/projects/", ada)

    assert status == 200, body
    assert headers["cache-control"] == "no-store"
    assert body["next_cursor"] is None
    assert [(p["id"], p["number"], p["status"], p["progress_percent"]) for p in body["items"]] == [
        (dp[0]["id"], 1, "unlocked", 0),
        (dp[1]["id"], 2, "locked", 0),
        (dp[2]["id"], 3, "locked", 0),
    ]
    assert set(body["items"][0]) == {
        "id",
        "number",
        "title",
        "subtitle",
        "estimated_hours",
        "status",
        "progress_percent",
    }
    assert body["items"][0]["title"] == dp[0]["title"]

    # Every stored status reads lower-cased; progress counts the required steps.
    set_progress(conn, ada, dp[0]["id"], "APPROVED")
    set_progress(conn, ada, dp[1]["id"], "CHANGES_REQUESTED")
    required = dp[1]["required_steps"]
    complete(conn, ada, dp[1]["id"], required[:2])
    items = call("GET", "/api/curriculum/projects/", ada)[2]["items"]
    assert [p["status"] for p in items] == ["approved", "changes_requested", "locked"]
    assert items[1]["progress_percent"] == 2 * 100 // len(required)
    for status_name in ("IN_PROGRESS", "SUBMITTED", "UNLOCKED", "LOCKED"):
        set_progress(conn, ada, dp[1]["id"], status_name)
        assert call("GET", "/api/curriculum/projects/", ada)[2]["items"][1]["status"] == status_name.lower()

    # An FSD student sees FSD's projects only.
    fsd = catalogue["FSD"]
    bob = people(track="FSD")
    assert [p["id"] for p in call("GET", "/api/curriculum/projects/", bob)[2]["items"]] == [p["id"] for p in fsd]


def test_my_track_is_the_track_with_its_projects(people, conn, catalogue) -> None:
    ada = people()
    set_progress(conn, ada, catalogue["DP"][0]["id"], "IN_PROGRESS")

    status, headers, body = call("GET", "/api/curriculum/my-track/", ada)

    assert status == 200, body
    assert headers["cache-control"] == "no-store"
    assert body["code"] == "DP" and body["weeks"] > 0 and body["name"]
    assert body["enrollment_status"] == "ENROLLED" and body["enrolled_at"] and body["completed_at"] is None
    assert [(p["number"], p["status"]) for p in body["projects"]] == [(1, "in_progress"), (2, "locked"), (3, "locked")]
    assert "price_cents" not in body


def test_project_detail_steps_with_completion_and_deliverables_with_latest_review(people, conn, catalogue) -> None:
    project = catalogue["DP"][0]
    ada, bob = people(), people()
    set_progress(conn, ada, project["id"], "CHANGES_REQUESTED")
    first_step, second_step = project["steps"][:2]
    complete(conn, ada, project["id"], [first_step])
    set_progress(conn, bob, project["id"], "IN_PROGRESS")
    complete(conn, bob, project["id"], [second_step])  # another student's completion: not Ada's
    reviewer = people(groups="[trainers]", status="PENDING_PAYMENT", track=None, consent=False)
    reviewed, pending = project["deliverables"][:2]
    conn.execute(
        """
        INSERT INTO submissions (student_id, project_id, deliverable_id, attempt, submission_text, status,
                                 feedback, reviewed_by, reviewed_at, submitted_at)
        VALUES (%(s)s, %(p)s, %(d1)s, 1, 'first', 'CHANGES_REQUESTED', 'Handle the blanks.', %(r)s,
                now() - interval '1 day', now() - interval '2 days'),
               (%(s)s, %(p)s, %(d1)s, 2, 'second', 'CHANGES_REQUESTED', 'Nearly: dates.', %(r)s,
                now() - interval '1 hour', now() - interval '3 hours'),
               (%(s)s, %(p)s, %(d2)s, 1, 'text', 'PENDING', NULL, NULL, NULL, now())
        """,
        {"s": ada.user_id, "p": project["id"], "d1": reviewed, "d2": pending, "r": reviewer.user_id},
    )

    status, headers, body = call("GET", f"/api/curriculum/projects/{project['id']}/", ada)

    assert status == 200, body
    assert headers["cache-control"] == "no-store"
    assert body["id"] == project["id"] and body["status"] == "changes_requested"
    assert body["has_dataset"] is True and body["tech_stack"] and body["tools"] and body["description"]
    assert body["started_at"] and body["submitted_at"] and body["approved_at"] is None
    steps = body["steps"]
    assert [s["id"] for s in steps] == project["steps"]
    assert {s["id"]: s["completed"] for s in steps} == {sid: sid == first_step for sid in project["steps"]}
    assert steps[0]["completed_at"] and steps[1]["completed_at"] is None
    assert set(steps[0]) >= {"id", "number", "title", "description", "minutes", "completed"}
    assert body["progress_percent"] == 100 // len(project["required_steps"])
    deliverables = {d["id"]: d for d in body["deliverables"]}
    assert list(deliverables) == project["deliverables"]
    latest = deliverables[reviewed]["latest_submission"]
    assert latest["attempt"] == 2 and latest["status"] == "CHANGES_REQUESTED"
    assert latest["feedback"] == "Nearly: dates." and latest["reviewed_at"]
    assert "reviewed_by" not in latest
    assert deliverables[pending]["latest_submission"]["status"] == "PENDING"
    assert deliverables[pending]["latest_submission"]["feedback"] is None
    others = [d for d in project["deliverables"] if d not in (reviewed, pending)]
    assert all(deliverables[d]["latest_submission"] is None for d in others)
    assert {"deliverable_type", "is_required", "title"} <= set(deliverables[reviewed])


def test_a_locked_projects_detail_is_visible_read_only(people, catalogue) -> None:
    project = catalogue["DP"][1]
    ada = people()

    status, _, body = call("GET", f"/api/curriculum/projects/{project['id']}/", ada)

    assert status == 200, body
    assert body["status"] == "locked" and body["progress_percent"] == 0
    assert body["unlocked_at"] is None and body["started_at"] is None
    assert [s["id"] for s in body["steps"]] == project["steps"]
    assert not any(s["completed"] for s in body["steps"])
    assert all(d["latest_submission"] is None for d in body["deliverables"])


def test_project_detail_of_another_track_or_unknown_is_404(people, catalogue) -> None:
    ada = people()
    fsd_project = catalogue["FSD"][0]["id"]

    for project_id in (fsd_project, 2_000_000_000):
        status, _, body = call("GET", f"/api/curriculum/projects/{project_id}/", ada)
        assert status == 404 and error_code(body) == "not_found", body
    for bad in ("abc", "0", "-1", "99999999999"):
        status, _, body = call("GET", f"/api/curriculum/projects/{bad}/", ada)
        assert status == 422 and error_code(body) == "validation_error", (bad, body)


def test_my_progress_by_steps_and_projects_with_the_current_project(people, conn, catalogue) -> None:
    dp = catalogue["DP"]
    ada = people()
    total_steps = sum(len(p["required_steps"]) for p in dp)

    status, headers, body = call("GET", "/api/curriculum/my-progress/", ada)

    assert status == 200, body
    assert headers["cache-control"] == "no-store"
    assert body == {
        "track": "DP",
        "enrollment_status": "ENROLLED",
        "steps_completed": 0,
        "steps_total": total_steps,
        "steps_percent": 0,
        "projects_approved": 0,
        "projects_total": 3,
        "projects_percent": 0,
        "current_project": {
            "id": dp[0]["id"],
            "number": 1,
            "title": dp[0]["title"],
            "status": "unlocked",
            "progress_percent": 0,
        },
        "completed": False,
        "completed_at": None,
    }

    set_progress(conn, ada, dp[0]["id"], "APPROVED")
    complete(conn, ada, dp[0]["id"], dp[0]["required_steps"])
    set_progress(conn, ada, dp[1]["id"], "IN_PROGRESS")
    complete(conn, ada, dp[1]["id"], dp[1]["required_steps"][:1])
    body = call("GET", "/api/curriculum/my-progress/", ada)[2]
    done = len(dp[0]["required_steps"]) + 1
    assert (body["steps_completed"], body["steps_percent"]) == (done, done * 100 // total_steps)
    assert (body["projects_approved"], body["projects_percent"]) == (1, 33)
    assert body["current_project"]["id"] == dp[1]["id"] and body["current_project"]["status"] == "in_progress"
    assert body["current_project"]["progress_percent"] == 100 // len(dp[1]["required_steps"])
    assert body["completed"] is False and body["completed_at"] is None


def test_my_progress_of_a_completed_track(people, conn, catalogue) -> None:
    fsd = catalogue["FSD"]
    ada = people(track="FSD")
    for project in fsd:
        set_progress(conn, ada, project["id"], "APPROVED")
    conn.execute("UPDATE users SET enrollment_status = 'COMPLETED', completed_at = now() WHERE id = %s", (ada.user_id,))

    status, _, body = call("GET", "/api/curriculum/my-progress/", ada)

    assert status == 200, body
    assert body["completed"] is True and body["completed_at"]
    assert body["enrollment_status"] == "COMPLETED"
    assert (body["projects_approved"], body["projects_total"], body["projects_percent"]) == (3, 3, 100)
    assert body["current_project"] is None
    # A completed student keeps reading the curriculum.
    assert call("GET", "/api/curriculum/my-track/", ada)[2]["completed_at"] == body["completed_at"]


# -- start ----------------------------------------------------------------------------------------


def audit_rows(conn, who: Person) -> list[dict[str, Any]]:
    return conn.execute(
        "SELECT actor_id::text AS actor_id, actor_role, resource_type, resource_id, details,"
        " host(ip_address) AS ip, user_agent, request_id"
        " FROM audit_logs WHERE action = 'PROJECT_STARTED' AND subject_id = %s ORDER BY id",
        (who.user_id,),
    ).fetchall()


def test_start_an_unlocked_project_once_audited_then_idempotent(people, conn, catalogue) -> None:
    project = catalogue["DP"][0]
    ada = people()

    status, headers, body = call("POST", f"/api/curriculum/projects/{project['id']}/start/", ada)

    assert status == 200, body
    assert headers["cache-control"] == "no-store"
    assert body["id"] == project["id"] and body["status"] == "in_progress"
    assert body["started_at"] and body["unlocked_at"]
    (row,) = progress_rows(conn, ada)
    assert row["status"] == "IN_PROGRESS" and row["started_at"] is not None
    (audit,) = audit_rows(conn, ada)
    assert audit["actor_id"] == ada.user_id and audit["actor_role"] == "student"
    assert (audit["resource_type"], audit["resource_id"]) == ("project", str(project["id"]))
    assert audit["details"] == {"from": "UNLOCKED", "to": "IN_PROGRESS", "track": "DP"}
    assert (audit["ip"], audit["user_agent"]) == ("203.0.113.9", "curriculum-tests/1.0") and audit["request_id"]

    again = call("POST", f"/api/curriculum/projects/{project['id']}/start/", ada)
    assert again[0] == 200 and again[2] == body
    assert len(audit_rows(conn, ada)) == 1

    # A project further on (submitted) is answered as it is: starting never moves it back.
    set_progress(conn, ada, project["id"], "SUBMITTED")
    status, _, body = call("POST", f"/api/curriculum/projects/{project['id']}/start/", ada, body={})
    assert status == 200 and body["status"] == "submitted"
    assert progress_rows(conn, ada)[0]["status"] == "SUBMITTED"


def test_starting_a_locked_project_is_403_and_unlocks_nothing(people, conn, catalogue) -> None:
    dp = catalogue["DP"]
    ada = people()

    status, _, body = call("POST", f"/api/curriculum/projects/{dp[1]['id']}/start/", ada)

    assert status == 403 and error_code(body) == "project_locked", body
    assert [r["project_id"] for r in progress_rows(conn, ada)] == [dp[0]["id"]]
    # A LOCKED row (an operator's re-lock) is locked too.
    set_progress(conn, ada, dp[1]["id"], "LOCKED")
    status, _, body = call("POST", f"/api/curriculum/projects/{dp[1]['id']}/start/", ada)
    assert status == 403 and error_code(body) == "project_locked"
    assert progress_rows(conn, ada)[1]["status"] == "LOCKED"
    assert audit_rows(conn, ada) == []


def test_start_of_another_tracks_or_unknown_project_is_404(people, conn, catalogue) -> None:
    ada = people()
    for project_id in (catalogue["FSD"][0]["id"], 2_000_000_000):
        status, _, body = call("POST", f"/api/curriculum/projects/{project_id}/start/", ada)
        assert status == 404 and error_code(body) == "not_found", body
    assert len(progress_rows(conn, ada)) == 1


def test_a_client_cannot_send_a_status_or_any_field(people, conn, catalogue) -> None:
    dp = catalogue["DP"]
    ada = people()
    step = dp[0]["steps"][0]
    attempts = [
        ("POST", f"/api/curriculum/projects/{dp[0]['id']}/start/", {"status": "APPROVED"}),
        ("POST", f"/api/curriculum/projects/{dp[1]['id']}/start/", {"status": "UNLOCKED"}),
        ("POST", f"/api/curriculum/projects/{dp[0]['id']}/steps/{step}/complete/", {"completed": True}),
        ("DELETE", f"/api/curriculum/projects/{dp[0]['id']}/steps/{step}/complete/", {"student_id": ada.user_id}),
    ]
    for method, path, payload in attempts:
        status, _, body = call(method, path, ada, body=payload)
        assert status == 422 and error_code(body) == "validation_error", (path, body)
    # The read routes take no writes at all.
    for method in ("POST", "PUT", "PATCH"):
        status, _, body = call(method, f"/api/curriculum/projects/{dp[1]['id']}/", ada, body={"status": "UNLOCKED"})
        assert status == 405, body
        status, _, body = call(method, "/api/curriculum/my-progress/", ada, body={"completed": True})
        assert status == 405, body

    assert [(r["project_id"], r["status"], r["started_at"]) for r in progress_rows(conn, ada)] == [
        (dp[0]["id"], "UNLOCKED", None)
    ]
    assert completions(conn, ada) == [] and audit_rows(conn, ada) == []


# -- steps ----------------------------------------------------------------------------------------


def test_complete_and_uncomplete_a_step_of_a_started_project(people, conn, catalogue) -> None:
    project = catalogue["DP"][0]
    ada = people()
    set_progress(conn, ada, project["id"], "IN_PROGRESS")
    required = project["required_steps"]
    path = f"/api/curriculum/projects/{project['id']}/steps/{required[0]}/complete/"

    status, headers, body = call("POST", path, ada)

    assert status == 200, body
    assert headers["cache-control"] == "no-store"
    assert body["project_id"] == project["id"] and body["step_id"] == required[0]
    assert body["completed"] is True and body["completed_at"]
    assert body["progress_percent"] == 100 // len(required)
    assert completions(conn, ada) == [required[0]]

    # Idempotent: the same completion, the same time.
    assert call("POST", path, ada) == (status, headers, body)
    assert completions(conn, ada) == [required[0]]

    status, _, undone = call("DELETE", path, ada)
    assert status == 200 and undone["completed"] is False and undone["completed_at"] is None
    assert undone["progress_percent"] == 0 and completions(conn, ada) == []
    assert call("DELETE", path, ada)[0] == 200

    # While submitted or under changes requested, steps still move.
    for state in ("SUBMITTED", "CHANGES_REQUESTED"):
        set_progress(conn, ada, project["id"], state)
        assert call("POST", path, ada)[2]["completed"] is True
        assert call("DELETE", path, ada)[2]["completed"] is False
    # The progress row's status is never touched by a step.
    assert progress_rows(conn, ada)[0]["status"] == "CHANGES_REQUESTED"


def test_steps_of_a_locked_unstarted_or_approved_project_do_not_change(people, conn, catalogue) -> None:
    dp = catalogue["DP"]
    ada = people()
    first, second = dp[0], dp[1]

    def step_path(project: dict[str, Any]) -> str:
        return f"/api/curriculum/projects/{project['id']}/steps/{project['steps'][0]}/complete/"

    for method in ("POST", "DELETE"):
        status, _, body = call(method, step_path(second), ada)
        assert status == 403 and error_code(body) == "project_locked", body
        status, _, body = call(method, step_path(first), ada)
        assert status == 409 and error_code(body) == "project_not_started", body
    set_progress(conn, ada, first["id"], "APPROVED")
    status, _, body = call("POST", step_path(first), ada)
    assert status == 409 and error_code(body) == "project_closed", body
    assert completions(conn, ada) == []
    assert [r["project_id"] for r in progress_rows(conn, ada)] == [first["id"]]


def test_a_step_of_another_project_or_track_is_404(people, conn, catalogue) -> None:
    dp, fsd = catalogue["DP"], catalogue["FSD"]
    ada = people()
    set_progress(conn, ada, dp[0]["id"], "IN_PROGRESS")
    for project_id, step_id in (
        (dp[0]["id"], dp[1]["steps"][0]),  # a step of project 2 under project 1
        (dp[0]["id"], fsd[0]["steps"][0]),  # a step of another track
        (dp[0]["id"], 2_000_000_000),  # no such step
        (fsd[0]["id"], fsd[0]["steps"][0]),  # another track's project
    ):
        for method in ("POST", "DELETE"):
            status, _, body = call(method, f"/api/curriculum/projects/{project_id}/steps/{step_id}/complete/", ada)
            assert status == 404 and error_code(body) == "not_found", (project_id, step_id, body)
    status, _, body = call("POST", f"/api/curriculum/projects/{dp[0]['id']}/steps/x/complete/", ada)
    assert status == 422, body
    assert completions(conn, ada) == []


# -- dataset --------------------------------------------------------------------------------------


def test_dataset_is_a_short_lived_presigned_get(s3, people, catalogue) -> None:
    project = catalogue["DP"][0]
    assert project["dataset_key"] == DATASET_KEY
    ada = people()

    status, headers, body = call("GET", f"/api/curriculum/projects/{project['id']}/dataset/", ada)

    assert status == 200, body
    assert headers["cache-control"] == "no-store"
    assert body["expires_in"] == 300 and body["filename"] == "sales_raw.csv"
    url = urlparse(body["url"])
    query = parse_qs(url.query)
    assert BUCKET in url.netloc + url.path and url.path.endswith(DATASET_KEY)
    assert query["X-Amz-Expires"] == ["300"] and "X-Amz-Signature" in query
    assert query["response-content-disposition"] == ['attachment; filename="sales_raw.csv"']
    downloaded = requests.get(body["url"], timeout=10)
    assert downloaded.status_code == 200 and downloaded.content == DATASET_BYTES


def test_dataset_of_a_project_without_one_locked_or_of_another_track(s3, people, conn, catalogue) -> None:
    dp, fsd = catalogue["DP"], catalogue["FSD"]
    ada = people()
    set_progress(conn, ada, dp[1]["id"], "UNLOCKED")
    assert dp[1]["dataset_key"] is None

    status, _, body = call("GET", f"/api/curriculum/projects/{dp[1]['id']}/dataset/", ada)
    assert status == 404 and error_code(body) == "no_dataset", body

    locked = people(unlock_first=False)
    status, _, body = call("GET", f"/api/curriculum/projects/{dp[0]['id']}/dataset/", locked)
    assert status == 403 and error_code(body) == "project_locked", body

    for project_id in (fsd[0]["id"], 2_000_000_000):
        status, _, body = call("GET", f"/api/curriculum/projects/{project_id}/dataset/", ada)
        assert status == 404 and error_code(body) == "not_found", body


# -- who may call ---------------------------------------------------------------------------------


def test_every_route_needs_a_token(catalogue) -> None:
    project = catalogue["DP"][0]
    for method, path in routes_for(project["id"], project["steps"][0]):
        status, _, body = call(method, path, None)
        assert status == 401 and error_code(body) == "not_authenticated", (method, path, body)


def test_trainers_and_admins_are_not_students(people, catalogue) -> None:
    project = catalogue["DP"][0]
    trainer = people(groups="[trainers]")
    admin = people(groups="[admins]")
    for who in (trainer, admin):
        for method, path in routes_for(project["id"], project["steps"][0]):
            status, _, body = call(method, path, who)
            assert status == 403 and error_code(body) == "permission_denied", (who.groups, path, body)


def test_a_student_not_enrolled_is_402(people, conn, catalogue) -> None:
    project = catalogue["DP"][0]
    pending = people(status="PENDING_PAYMENT", track=None)
    refunded = people(status="REFUNDED")
    for who in (pending, refunded):
        for method, path in routes_for(project["id"], project["steps"][0]):
            status, _, body = call(method, path, who)
            assert status == 402 and error_code(body) == "payment_required", (path, body)
    assert progress_rows(conn, pending) == []


def test_a_new_policy_version_requires_consent_first(people, conn, catalogue) -> None:
    project = catalogue["DP"][0]
    ada = people()
    before = conn.execute("SELECT privacy_version_in_force() AS version").fetchone()
    terms = conn.execute("SELECT terms_version_in_force() AS version").fetchone()["version"]
    new_version = f"{before['version']}.{uuid.uuid4().int % 10_000 + 1}"
    try:
        # In force from now on (the latest effective_at that has passed: migration 0010).
        conn.execute(
            "INSERT INTO privacy_policies (version, content, effective_at) VALUES (%s, 'A newer policy.', now())",
            (new_version,),
        )
        for method, path in routes_for(project["id"], project["steps"][0]):
            status, _, body = call(method, path, ada)
            assert status == 403 and error_code(body) == "consent_required", (path, body)
            assert body["error"]["details"] == [{"privacy_version": new_version, "terms_version": terms}]
        assert progress_rows(conn, ada)[0]["status"] == "UNLOCKED"
    finally:
        conn.execute("DELETE FROM privacy_policies WHERE version = %s", (new_version,))
    assert call("GET", "/api/curriculum/projects/", ada)[0] == 200


# -- statements -----------------------------------------------------------------------------------


def test_student_gets_take_at_most_three_statements(people, conn, catalogue) -> None:
    project = catalogue["DP"][0]
    ada = people()
    set_progress(conn, ada, project["id"], "IN_PROGRESS")
    complete(conn, ada, project["id"], project["steps"][:2])
    counter = StatementCounter()
    shared = db.connection()
    original = shared.cursor_factory
    shared.cursor_factory = counter.cursor_class()
    try:
        for path in (
            "/api/curriculum/my-track/",
            "/api/curriculum/projects/",
            f"/api/curriculum/projects/{project['id']}/",
            "/api/curriculum/my-progress/",
        ):
            counter.reset()
            status, _, body = call("GET", path, ada)
            assert status == 200, body
            assert counter.count <= 3, (path, counter.count)
    finally:
        shared.cursor_factory = original
