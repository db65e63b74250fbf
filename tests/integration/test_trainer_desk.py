"""The trainer desk's reads (issue 18): the review queue filtered by track and project, kept on the
per-trainer queue index (migration 0019) whoever changes an assignment, and the students page with
what waits for each student.

Through the real handler on the real database; assignments and submissions are written as the other
functions write them (helpers of test_trainer_review), and the queue is read back through the route.
"""

from __future__ import annotations

import threading
import time
import uuid

import psycopg
import pytest
from psycopg.rows import dict_row

from tests.integration import test_trainer_review as review
from tests.integration.test_trainer_review import assign, backdate, call, deliverables, projects, start, submit

# The trainer tests' fixtures: people made per test (and removed), SES in moto for the module.
people, ses = review.people, review.ses

QUEUE = "/api/trainer/submissions/"


def queue_ids(who, **query: str) -> list[str]:
    status, body = call("GET", QUEUE, who, **query)
    assert status == 200, body
    return [s["id"] for s in body["items"]]


def test_the_queue_filters_by_track_and_project(people, conn) -> None:
    trainer = people("trainer")
    ada, bob = people("student", "DP"), people("student", "FSD")
    assign(conn, ada, trainer, "DP")
    assign(conn, bob, trainer, "FSD")
    dp, fsd = projects(conn, "DP"), projects(conn, "FSD")
    start(conn, ada, dp[0]["id"])
    start(conn, bob, fsd[0]["id"])
    ada_first = submit(conn, ada, dp[0]["id"], deliverables(conn, dp[0]["id"])[0])
    bob_first = submit(conn, bob, fsd[0]["id"], deliverables(conn, fsd[0]["id"])[0])
    backdate(conn, ada_first, 4)
    backdate(conn, bob_first, 2)

    assert queue_ids(trainer) == [ada_first, bob_first]
    assert queue_ids(trainer, track="DP") == [ada_first]
    assert queue_ids(trainer, track="FSD") == [bob_first]
    assert queue_ids(trainer, project=str(fsd[0]["id"])) == [bob_first]
    assert queue_ids(trainer, track="DP", project=str(dp[0]["id"])) == [ada_first]
    assert queue_ids(trainer, project=str(dp[1]["id"])) == []  # a project nobody submitted yet
    status, body = call("GET", QUEUE, trainer, track="FSD")
    assert body["items"][0]["track"] == "FSD" and body["items"][0]["waiting_seconds"] >= 2 * 3600


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"track": "ZZ"}, "query.track"),  # well formed, no such track
        ({"project": "999999"}, "query.project"),
        ({"project": "0"}, "query.project"),
        ({"project": "abc"}, "query.project"),
        ({"project": "-1"}, "query.project"),
        ({"trainer": "x"}, "query.trainer"),  # not a parameter of the route
    ],
)
def test_unknown_filters_are_422_naming_the_parameter(query: dict[str, str], field: str, people) -> None:
    status, body = call("GET", QUEUE, people("trainer"), **query)
    assert status == 422, body
    assert field in [d["field"] for d in body["error"]["details"]]


def test_a_project_outside_the_track_is_422(people, conn) -> None:
    fsd = projects(conn, "FSD")
    status, body = call("GET", QUEUE, people("trainer"), track="DP", project=str(fsd[0]["id"]))
    assert status == 422, body
    assert body["error"]["details"][0]["field"] == "query.project"


def test_the_queue_follows_the_assignment(people, conn) -> None:
    """A reassignment moves the student's submissions to the new trainer's queue at once; an ended
    assignment takes them out of every trainer's queue; the submission's own dates stay."""
    first, second = people("trainer"), people("trainer")
    ada = people("student", "DP")
    project = projects(conn, "DP")[0]
    start(conn, ada, project["id"])
    before_assignment = submit(conn, ada, project["id"], deliverables(conn, project["id"])[0])
    assign(conn, ada, first, "DP")  # assigned after submitting: the submission follows
    assert queue_ids(first) == [before_assignment]
    dates = conn.execute("SELECT updated_at FROM submissions WHERE id = %s", (before_assignment,)).fetchone()

    conn.execute("UPDATE trainer_assignments SET trainer_id = %s WHERE student_id = %s", (second.user_id, ada.user_id))
    assert queue_ids(first) == [] and queue_ids(second) == [before_assignment]
    after = conn.execute("SELECT updated_at FROM submissions WHERE id = %s", (before_assignment,)).fetchone()
    assert after == dates  # a reassignment is not a change of the submission

    resubmitted = submit(conn, ada, project["id"], deliverables(conn, project["id"])[0])
    assert queue_ids(second) == [resubmitted]  # a new attempt takes the current trainer

    conn.execute("DELETE FROM trainer_assignments WHERE student_id = %s", (ada.user_id,))
    assert queue_ids(first) == [] and queue_ids(second) == []
    left = conn.execute(
        "SELECT count(*) AS n FROM submissions WHERE student_id = %s AND trainer_id IS NOT NULL", (ada.user_id,)
    ).fetchone()
    assert left["n"] == 0


def test_a_trainer_purged_leaves_no_queue_behind(people, conn) -> None:
    trainer = people("trainer")
    ada = people("student", "DP")
    assign(conn, ada, trainer, "DP")
    project = projects(conn, "DP")[0]
    start(conn, ada, project["id"])
    submitted = submit(conn, ada, project["id"], deliverables(conn, project["id"])[0])
    conn.execute("DELETE FROM users WHERE id = %s", (trainer.user_id,))  # the assignment cascades
    row = conn.execute("SELECT trainer_id FROM submissions WHERE id = %s", (submitted,)).fetchone()
    assert row["trainer_id"] is None


def test_a_reassignment_racing_a_submission_leaves_the_new_trainer(people, conn, database_url: str) -> None:
    """The submission's insert and the reassignment lock the student's row: whichever commits second
    reads what the first committed, so the submission ends with the trainer the student now has."""
    first, second = people("trainer"), people("trainer")
    ada = people("student", "DP")
    assign(conn, ada, first, "DP")
    project = projects(conn, "DP")[0]
    deliverable = deliverables(conn, project["id"])[0]
    start(conn, ada, project["id"])
    with psycopg.connect(database_url, row_factory=dict_row) as submitting:
        row = submitting.execute(
            "INSERT INTO submissions (student_id, project_id, deliverable_id, attempt, submission_text)"
            " VALUES (%s, %s, %s, 1, 'race') RETURNING id::text AS id, trainer_id::text AS trainer_id",
            (ada.user_id, project["id"], deliverable["id"]),
        ).fetchone()
        assert row["trainer_id"] == first.user_id  # not committed yet
        done = threading.Event()

        def reassign() -> None:
            with psycopg.connect(database_url, autocommit=True) as other:
                other.execute(
                    "UPDATE trainer_assignments SET trainer_id = %s WHERE student_id = %s",
                    (second.user_id, ada.user_id),
                )
            done.set()

        thread = threading.Thread(target=reassign)
        thread.start()
        time.sleep(0.5)
        assert not done.is_set()  # waits for the submission's transaction
        submitting.commit()
    thread.join(10)
    assert done.is_set()
    stored = conn.execute("SELECT trainer_id::text AS t FROM submissions WHERE id = %s", (row["id"],)).fetchone()
    assert stored["t"] == second.user_id
    assert queue_ids(second) == [row["id"]] and queue_ids(first) == []


def test_students_carry_what_waits_and_their_last_activity(people, conn) -> None:
    trainer = people("trainer")
    ada, bob = people("student", "DP"), people("student", "DP")
    assign(conn, ada, trainer, "DP", days_ago=2)
    assign(conn, bob, trainer, "DP", days_ago=1)
    project = projects(conn, "DP")[0]
    start(conn, ada, project["id"])
    for deliverable in deliverables(conn, project["id"])[:2]:
        submit(conn, ada, project["id"], deliverable)

    status, body = call("GET", "/api/trainer/students/", trainer)
    assert status == 200, body
    by_id = {s["id"]: s for s in body["items"]}
    expected = min(2, len(deliverables(conn, project["id"])))
    assert by_id[ada.user_id]["waiting_submissions"] == expected
    assert by_id[ada.user_id]["last_activity_at"] == by_id[ada.user_id]["last_submission_at"]
    assert by_id[bob.user_id]["waiting_submissions"] == 0
    assert by_id[bob.user_id]["last_activity_at"] is not None  # enrolled: their latest activity so far


def test_unknown_student_filter_values_are_422(people) -> None:
    status, body = call("GET", "/api/trainer/students/", people("trainer"), track="ZZ_" + uuid.uuid4().hex[:4].upper())
    assert status == 422, body
