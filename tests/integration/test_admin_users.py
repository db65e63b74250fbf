"""The admin users, trainer assignment, submissions and stats routes through the real handler
(``functions.admin.handler``) on the real PostgreSQL.

The module runs on its own freshly migrated and seeded database (and the stats test on another),
so every list and every number can be asserted exactly from the rows arranged here with SQL.
Callers carry the claims API Gateway's JWT authorizer hands over.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from apranova.pagination import encode_cursor
from functions.admin.handler import lambda_handler
from local.events import LambdaContext, http_api_event
from tests.integration.governance_support import fresh_database

T0 = datetime(2030, 1, 1, tzinfo=UTC)


# --- a database of the module's own ---------------------------------------------------------------


@pytest.fixture(scope="module")
def module_url(database_url: str, make_database) -> Iterator[str]:
    with fresh_database(make_database, "apranova_admin") as url:
        yield url


# --- people and calls -----------------------------------------------------------------------------


class World:
    """Arranges rows with SQL on one connection."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn

    def user(
        self,
        role: str = "student",
        track: str | None = "DP",
        status: str = "ENROLLED",
        *,
        email: str | None = None,
        name: str = "",
        created_at: datetime | None = None,
        is_active: bool = True,
    ) -> dict[str, Any]:
        user_id = str(uuid.uuid4())
        email = email or f"{role}-{user_id[:8]}@example.com"
        if status == "PENDING_PAYMENT" and role == "student" and track is not None:
            track = None
        row = self.conn.execute(
            "INSERT INTO users (id, email, name, role, track_id, enrollment_status, is_active, created_at)"
            " VALUES (%s, %s, %s, %s, (SELECT id FROM tracks WHERE code = %s), %s, %s, coalesce(%s, now()))"
            " RETURNING id::text AS id, email::text AS email, created_at",
            (user_id, email, name, role, track, status, is_active, created_at),
        ).fetchone()
        return {**row, "role": role, "track": track, "status": status}

    def project(self, track: str, number: int) -> dict[str, Any]:
        return self.conn.execute(
            "SELECT p.id, p.title FROM projects p JOIN tracks t ON t.id = p.track_id"
            " WHERE t.code = %s AND p.number = %s",
            (track, number),
        ).fetchone()

    def deliverables(self, project_id: int) -> list[int]:
        rows = self.conn.execute(
            "SELECT id FROM deliverables WHERE project_id = %s AND is_active ORDER BY number", (project_id,)
        ).fetchall()
        return [r["id"] for r in rows]

    def progress(self, student: dict[str, Any], project_id: int, status: str = "IN_PROGRESS") -> None:
        self.conn.execute(
            "INSERT INTO student_progress (student_id, project_id, status, unlocked_at, started_at, approved_at)"
            " VALUES (%s, %s, %s, now(), now(), CASE WHEN %s = 'APPROVED' THEN now() END)",
            (student["id"], project_id, status, status),
        )

    def submission(
        self,
        student: dict[str, Any],
        project_id: int,
        deliverable_id: int,
        *,
        attempt: int = 1,
        status: str = "PENDING",
        submitted_at: datetime,
        reviewed_at: datetime | None = None,
        reviewer: str | None = None,
    ) -> str:
        return self.conn.execute(
            "INSERT INTO submissions (student_id, project_id, deliverable_id, attempt, submission_url, status,"
            " feedback, reviewed_by, reviewed_at, submitted_at)"
            " VALUES (%s, %s, %s, %s, 'https://example.com/work', %s, %s, %s, %s, %s) RETURNING id::text AS id",
            (
                student["id"],
                project_id,
                deliverable_id,
                attempt,
                status,
                "Please fix" if status == "CHANGES_REQUESTED" else None,
                reviewer,
                reviewed_at,
                submitted_at,
            ),
        ).fetchone()["id"]

    def payment(
        self, student: dict[str, Any], track: str, amount: int, status: str, currency: str = "USD", refunded: int = 0
    ) -> str:
        return self.conn.execute(
            "INSERT INTO payments (user_id, track, amount_cents, currency, status, refunded_amount_cents, succeeded_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, CASE WHEN %s IN ('SUCCEEDED', 'PARTIALLY_REFUNDED', 'REFUNDED')"
            " THEN now() END) RETURNING id::text AS id",
            (student["id"], track, amount, currency, status, refunded, status),
        ).fetchone()["id"]

    def assign(self, student: dict[str, Any], trainer: dict[str, Any]) -> None:
        self.conn.execute(
            "INSERT INTO trainer_assignments (student_id, trainer_id, track) VALUES (%s, %s, %s)",
            (student["id"], trainer["id"], student["track"]),
        )


@pytest.fixture(scope="module")
def world(pg: psycopg.Connection) -> World:
    return World(pg)


@pytest.fixture(scope="module")
def admin(world: World) -> dict[str, Any]:
    return world.user("admin", None, "PENDING_PAYMENT", created_at=T0 - timedelta(days=3650))


def claims(user: dict[str, Any] | None, group: str = "admins") -> dict[str, Any]:
    sub = user["id"] if user else str(uuid.uuid4())
    return {"sub": sub, "token_use": "access", "cognito:groups": f"[{group}]"}


def call(
    method: str,
    path: str,
    who: dict[str, Any] | None,
    body: Any = None,
    query: dict[str, str] | None = None,
    group: str = "admins",
) -> tuple[int, Any]:
    event = http_api_event(
        method,
        path,
        body=json.dumps(body) if body is not None else None,
        query=query,
        claims=claims(who, group),
        request_id=f"req-{uuid.uuid4().hex[:12]}",
    )
    response = lambda_handler(event, LambdaContext("apranova-admin"))
    return response["statusCode"], json.loads(response["body"]) if response.get("body") else None


def anonymous(method: str, path: str, body: Any = None) -> int:
    event = http_api_event(method, path, body=json.dumps(body) if body is not None else None)
    return lambda_handler(event, LambdaContext("apranova-admin"))["statusCode"]


def all_pages(path: str, who: dict[str, Any], query: dict[str, str], limit: int = 2) -> list[list[dict[str, Any]]]:
    """Follows next_cursor from the first page to the last; returns the pages."""
    pages, cursor = [], None
    while True:
        page_query = {**query, "limit": str(limit), **({"cursor": cursor} if cursor else {})}
        status, body = call("GET", path, who, query=page_query)
        assert status == 200, body
        pages.append(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages
        assert len(body["items"]) == limit


def percentile_cont(values: list[float], fraction: float) -> float:
    """PostgreSQL's percentile_cont: linear interpolation between the closest ranks."""
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


ROUTES = [
    ("GET", "/api/admin/users/"),
    ("GET", f"/api/admin/users/{uuid.uuid4()}/"),
    ("POST", f"/api/admin/users/{uuid.uuid4()}/assign-trainer/"),
    ("GET", "/api/admin/submissions/"),
    ("GET", "/api/admin/stats/"),
]


# --- access ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_every_route_needs_an_admin(pg, world, method, path) -> None:
    body = {"trainer_id": str(uuid.uuid4())} if method == "POST" else None
    assert anonymous(method, path, body) == 401
    trainer, student = world.user("trainer", "DP"), world.user("student", "DP")
    for who, group in ((trainer, "trainers"), (student, "students")):
        status, answer = call(method, path, who, body, group=group)
        assert status == 403, answer
        assert answer["error"]["code"] == "permission_denied"
    # An ID token (not an access token) is no session, even one naming the admins group.
    event = http_api_event(method, path, claims={**claims(trainer, "admins"), "token_use": "id"})
    assert lambda_handler(event, LambdaContext("apranova-admin"))["statusCode"] == 401


# --- users list -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def population(world: World, admin) -> dict[str, dict[str, Any]]:
    """Users created at known times, all under the email domain ``pop.test``."""
    base = T0 + timedelta(days=1)
    made = {
        "dp_enrolled": world.user("student", "DP", "ENROLLED", email="Ada@pop.test", created_at=base),
        "dp_completed": world.user("student", "DP", "COMPLETED", email="bob@pop.test", created_at=base + timedelta(1)),
        "fsd_enrolled": world.user("student", "FSD", "ENROLLED", email="cy@pop.test", created_at=base + timedelta(2)),
        "pending": world.user("student", None, "PENDING_PAYMENT", email="dee@pop.test", created_at=base + timedelta(3)),
        "trainer_dp": world.user("trainer", "DP", email="eve@pop.test", created_at=base + timedelta(4)),
        "trainer_fsd": world.user("trainer", "FSD", email="fay@pop.test", created_at=base + timedelta(5)),
        "admin2": world.user("admin", None, "PENDING_PAYMENT", email="gus@pop.test", created_at=base + timedelta(6)),
        # Two at the same instant: the id breaks the tie, also across a page boundary.
        "twin_a": world.user("student", "DP", "REFUNDED", email="h_a@pop.test", created_at=base + timedelta(7)),
        "twin_b": world.user("student", "DP", "SUSPENDED", email="h_b@pop.test", created_at=base + timedelta(7)),
    }
    return made


def newest_first(users: list[dict[str, Any]]) -> list[str]:
    return [u["id"] for u in sorted(users, key=lambda u: (u["created_at"], u["id"]), reverse=True)]


def ids(pages: list[list[dict[str, Any]]]) -> list[str]:
    return [item["id"] for page in pages for item in page]


def test_the_users_list_is_newest_first_with_its_fields(population, admin) -> None:
    status, body = call("GET", "/api/admin/users/", admin, query={"q": "Ada@"})
    assert status == 200, body
    ada = population["dp_enrolled"]
    assert datetime.fromisoformat(body["items"][0]["created_at"]) == ada["created_at"]
    body["items"][0]["created_at"] = ada["created_at"]
    assert body == {
        "items": [
            {
                "id": ada["id"],
                "email": "Ada@pop.test",
                "name": "",
                "role": "student",
                "track": "DP",
                "enrollment_status": "ENROLLED",
                "provisioning_status": "NOT_STARTED",
                "created_at": ada["created_at"],
                "last_login_at": None,
            }
        ],
        "next_cursor": None,
    }
    # The whole list: everyone this module made (the database is the module's own), newest first.
    status, body = call("GET", "/api/admin/users/", admin, query={"limit": "100"})
    assert status == 200
    listed = [item["id"] for item in body["items"]]
    assert listed[: len(population)] == newest_first(list(population.values()))


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"role": "student"}, ["dp_enrolled", "dp_completed", "fsd_enrolled", "pending", "twin_a", "twin_b"]),
        ({"role": "trainer"}, ["trainer_dp", "trainer_fsd"]),
        ({"role": "admin"}, ["admin2"]),
        ({"track": "DP"}, ["dp_enrolled", "dp_completed", "trainer_dp", "twin_a", "twin_b"]),
        ({"track": "FSD"}, ["fsd_enrolled", "trainer_fsd"]),
        ({"status": "ENROLLED"}, ["dp_enrolled", "fsd_enrolled", "trainer_dp", "trainer_fsd"]),
        ({"status": "PENDING_PAYMENT"}, ["pending", "admin2"]),
        ({"status": "COMPLETED"}, ["dp_completed"]),
        ({"role": "student", "track": "DP", "status": "ENROLLED"}, ["dp_enrolled"]),
        ({"role": "student", "track": "FSD", "status": "COMPLETED"}, []),
        ({"track": "ZZ"}, []),  # well formed, no such track
    ],
)
def test_users_filters(population, admin, query, expected) -> None:
    pages = all_pages("/api/admin/users/", admin, query, limit=100)
    mine = {u["id"] for u in population.values()}
    found = [i for i in ids(pages) if i in mine]
    assert found == newest_first([population[name] for name in expected])


def test_users_email_prefix_is_case_insensitive_and_literal(population, admin, world) -> None:
    status, body = call("GET", "/api/admin/users/", admin, query={"q": "ADA"})
    assert [i["id"] for i in body["items"]] == [population["dp_enrolled"]["id"]]
    # "_" and "%" are the characters they are, not LIKE wildcards.
    status, body = call("GET", "/api/admin/users/", admin, query={"q": "h_"})
    assert {i["id"] for i in body["items"]} == {population["twin_a"]["id"], population["twin_b"]["id"]}
    world.user(email="hxb@pop.test")
    status, body = call("GET", "/api/admin/users/", admin, query={"q": "h_"})
    assert len(body["items"]) == 2
    assert call("GET", "/api/admin/users/", admin, query={"q": "%"})[1]["items"] == []


def test_users_pagination_round_trip_with_limit_2(population, admin) -> None:
    pages = all_pages("/api/admin/users/", admin, {"role": "student"})
    mine = [population[n] for n in ("dp_enrolled", "dp_completed", "fsd_enrolled", "pending", "twin_a", "twin_b")]
    listed = ids(pages)
    assert len(listed) == len(set(listed))  # nothing twice
    assert [i for i in listed if i in {u["id"] for u in mine}] == newest_first(mine)
    assert all(len(page) <= 2 for page in pages) and len(pages) >= 3
    # Everyone, two by two, is the same as everyone at once.
    everyone = call("GET", "/api/admin/users/", admin, query={"limit": "100"})[1]["items"]
    assert ids(all_pages("/api/admin/users/", admin, {})) == [u["id"] for u in everyone]
    # Two created at the same instant, split by a page boundary: the id orders them, neither is lost.
    twins = newest_first([population["twin_a"], population["twin_b"]])
    assert all_pages("/api/admin/users/", admin, {"q": "h_"}, limit=1) == [
        [next(i for i in everyone if i["id"] == twins[0])],
        [next(i for i in everyone if i["id"] == twins[1])],
    ]


@pytest.mark.parametrize(
    "query",
    [
        {"role": "boss"},
        {"role": "Student"},
        {"track": "dp"},
        {"track": "DP;DROP"},
        {"status": "ACTIVE"},
        {"q": "x" * 255},
        {"limit": "0"},
        {"limit": "101"},
        {"limit": "ten"},
        {"cursor": "not-a-cursor"},
        # Well-formed cursors we never made: a 422, not a database error.
        {"cursor": encode_cursor(["yesterday", str(uuid.uuid4())])},
        {"cursor": encode_cursor([datetime.now(UTC).isoformat(), "not-a-uuid"])},
        {"cursor": encode_cursor([None, 7])},
    ],
)
def test_users_bad_filters_are_422(admin, query) -> None:
    status, body = call("GET", "/api/admin/users/", admin, query=query)
    assert status == 422, body
    assert body["error"]["code"] in ("validation_error", "invalid_cursor")


# --- user detail ----------------------------------------------------------------------------------


def test_user_detail_has_profile_payments_progress_trainer_and_tools(world, admin, pg) -> None:
    trainer = world.user("trainer", "DP", name="Tess Trainer")
    student = world.user("student", "DP", "ENROLLED", name="Stu Dent")
    world.assign(student, trainer)
    first, second = world.project("DP", 1), world.project("DP", 2)
    world.progress(student, first["id"], "APPROVED")
    world.progress(student, second["id"], "IN_PROGRESS")
    steps = [
        r["id"]
        for r in pg.execute(
            "SELECT id FROM project_steps WHERE project_id = %s AND is_active ORDER BY number", (second["id"],)
        ).fetchall()
    ]
    for step in steps[:2]:
        pg.execute(
            "INSERT INTO step_completions (student_id, project_id, step_id) VALUES (%s, %s, %s)",
            (student["id"], second["id"], step),
        )
    world.submission(student, second["id"], world.deliverables(second["id"])[0], submitted_at=T0)
    world.payment(student, "DP", 49900, "FAILED")
    world.payment(student, "DP", 49900, "PARTIALLY_REFUNDED", refunded=10000)
    pg.execute(
        "INSERT INTO tool_provisioning (user_id, tool, status, access_url, attempts, provisioned_at)"
        " VALUES (%s, 'SUPERSET', 'SUCCEEDED', 'https://superset.apranova.test/', 1, now()),"
        " (%s, 'PREFECT', 'FAILED', NULL, 3, NULL)",
        (student["id"], student["id"]),
    )
    pg.execute(
        "UPDATE tool_provisioning SET error = 'timed out' WHERE user_id = %s AND tool = 'PREFECT'", (student["id"],)
    )

    status, body = call("GET", f"/api/admin/users/{student['id']}/", admin)

    assert status == 200, body
    profile = body["profile"]
    assert (profile["id"], profile["email"], profile["name"], profile["role"], profile["track"]) == (
        student["id"],
        student["email"],
        "Stu Dent",
        "student",
        "DP",
    )
    assert profile["enrollment_status"] == "ENROLLED" and profile["is_active"] is True
    payments = body["payments"]
    assert payments["count"] == 2
    assert payments["totals"] == [{"currency": "USD", "paid_cents": 49900, "refunded_cents": 10000, "net_cents": 39900}]
    assert [p["status"] for p in payments["recent"]] == ["PARTIALLY_REFUNDED", "FAILED"]  # newest first
    progress = body["progress"]
    dp_projects = pg.execute(
        "SELECT count(*) AS n FROM projects WHERE track_id = (SELECT id FROM tracks WHERE code = 'DP') AND is_active"
    ).fetchone()["n"]
    assert [p["number"] for p in progress] == list(range(1, dp_projects + 1))
    assert [p["status"] for p in progress] == ["APPROVED", "IN_PROGRESS"] + ["LOCKED"] * (dp_projects - 2)
    assert (progress[1]["steps_completed"], progress[1]["steps_total"]) == (2, len(steps))
    assert (progress[1]["pending_submissions"], progress[0]["pending_submissions"]) == (1, 0)
    assert progress[2]["unlocked_at"] is None and progress[0]["approved_at"] is not None
    assert body["trainer"]["id"] == trainer["id"] and body["trainer"]["name"] == "Tess Trainer"
    assert [(t["tool"], t["status"], t["error"], t["attempts"]) for t in body["tools"]] == [
        ("PREFECT", "FAILED", "timed out", 3),
        ("SUPERSET", "SUCCEEDED", None, 1),
    ]


def test_a_trainers_detail_has_no_progress_or_trainer(world, admin) -> None:
    trainer = world.user("trainer", "FSD")
    status, body = call("GET", f"/api/admin/users/{trainer['id']}/", admin)
    assert status == 200, body
    assert (body["progress"], body["trainer"], body["tools"]) == ([], None, [])
    assert body["payments"] == {"count": 0, "totals": [], "recent": []}


@pytest.mark.parametrize("user_id", [str(uuid.uuid4()), "not-a-uuid", "1"])
def test_user_detail_of_an_unknown_user_is_404(admin, user_id) -> None:
    status, body = call("GET", f"/api/admin/users/{user_id}/", admin)
    assert status == 404 and body["error"]["code"] == "not_found"


# --- assign trainer -------------------------------------------------------------------------------


def assignment_audit(pg, student: dict[str, Any]) -> list[dict[str, Any]]:
    return pg.execute(
        "SELECT actor_id::text AS actor_id, actor_role, resource_type, resource_id, details, request_id"
        " FROM audit_logs WHERE action = 'TRAINER_ASSIGNED' AND subject_id = %s ORDER BY id",
        (student["id"],),
    ).fetchall()


def assignment(pg, student: dict[str, Any]) -> dict[str, Any] | None:
    return pg.execute(
        "SELECT trainer_id::text AS trainer_id, track, assigned_by::text AS assigned_by"
        " FROM trainer_assignments WHERE student_id = %s",
        (student["id"],),
    ).fetchone()


def test_assign_trainer_upserts_and_audits_from_and_to(world, admin, pg) -> None:
    first, second = world.user("trainer", "DP"), world.user("trainer", "DP")
    student = world.user("student", "DP", "ENROLLED")
    path = f"/api/admin/users/{student['id']}/assign-trainer/"

    status, body = call("POST", path, admin, {"trainer_id": first["id"]})
    assert status == 200, body
    assert (body["student_id"], body["trainer_id"], body["track"]) == (student["id"], first["id"], "DP")
    assert (body["previous_trainer_id"], body["changed"], body["assigned_by"]) == (None, True, admin["id"])
    assert assignment(pg, student) == {"trainer_id": first["id"], "track": "DP", "assigned_by": admin["id"]}

    # Moving to another trainer; the id's spelling does not matter.
    status, body = call("POST", path, admin, {"trainer_id": second["id"].upper()})
    assert status == 200, body
    assert (body["trainer_id"], body["previous_trainer_id"]) == (second["id"], first["id"])
    assert assignment(pg, student)["trainer_id"] == second["id"]

    # The same trainer again: nothing to write, nothing to audit.
    status, body = call("POST", path, admin, {"trainer_id": second["id"]})
    assert status == 200 and body["changed"] is False and body["previous_trainer_id"] == second["id"]

    rows = assignment_audit(pg, student)
    assert [r["details"] for r in rows] == [
        {"from": None, "to": first["id"], "track": "DP"},
        {"from": first["id"], "to": second["id"], "track": "DP"},
    ]
    assert all(r["actor_id"] == admin["id"] and r["actor_role"] == "admin" for r in rows)
    assert all(r["resource_type"] == "trainer_assignment" and r["resource_id"] == student["id"] for r in rows)
    assert all(r["request_id"] for r in rows)


def test_a_completed_student_can_be_assigned(world, admin, pg) -> None:
    trainer, student = world.user("trainer", "FSD"), world.user("student", "FSD", "COMPLETED")
    status, body = call(
        "POST", f"/api/admin/users/{student['id']}/assign-trainer/", admin, {"trainer_id": trainer["id"]}
    )
    assert status == 200, body
    assert assignment(pg, student)["trainer_id"] == trainer["id"]


@pytest.mark.parametrize(
    ("who", "code"),
    [
        ("student", "not_a_trainer"),
        ("admin", "not_a_trainer"),
        ("fsd_trainer", "other_track"),
        ("inactive_trainer", "trainer_inactive"),
        ("nobody", "unknown_trainer"),
    ],
)
def test_assign_trainer_needs_an_active_trainer_of_the_students_track(world, admin, pg, who, code) -> None:
    student = world.user("student", "DP", "ENROLLED")
    candidates = {
        "student": lambda: world.user("student", "DP", "ENROLLED")["id"],
        "admin": lambda: admin["id"],
        "fsd_trainer": lambda: world.user("trainer", "FSD")["id"],
        "inactive_trainer": lambda: world.user("trainer", "DP", is_active=False)["id"],
        "nobody": lambda: str(uuid.uuid4()),
    }
    status, body = call(
        "POST", f"/api/admin/users/{student['id']}/assign-trainer/", admin, {"trainer_id": candidates[who]()}
    )
    assert status == 422, body
    assert body["error"]["details"][0]["code"] == code
    assert assignment(pg, student) is None and assignment_audit(pg, student) == []


@pytest.mark.parametrize(
    "body",
    [{}, {"trainer_id": "not-a-uuid"}, {"trainer_id": None}, {"trainer_id": str(uuid.uuid4()), "track": "DP"}],
)
def test_assign_trainer_request_validation(world, admin, body) -> None:
    student = world.user("student", "DP", "ENROLLED")
    status, answer = call("POST", f"/api/admin/users/{student['id']}/assign-trainer/", admin, body)
    assert status == 422, answer


@pytest.mark.parametrize(
    ("role", "track", "status", "code"),
    [
        ("student", None, "PENDING_PAYMENT", "not_enrolled"),
        ("student", "DP", "REFUNDED", "not_enrolled"),
        ("student", "DP", "SUSPENDED", "not_enrolled"),
        ("trainer", "DP", "ENROLLED", "not_a_student"),
    ],
)
def test_assign_trainer_needs_an_enrolled_student(world, admin, pg, role, track, status, code) -> None:
    user, trainer = world.user(role, track, status), world.user("trainer", "DP")
    answer = call("POST", f"/api/admin/users/{user['id']}/assign-trainer/", admin, {"trainer_id": trainer["id"]})
    assert answer[0] == 409, answer
    assert answer[1]["error"]["code"] == code
    assert assignment(pg, user) is None


@pytest.mark.parametrize("user_id", [str(uuid.uuid4()), "nope"])
def test_assign_trainer_to_an_unknown_student_is_404(world, admin, user_id) -> None:
    trainer = world.user("trainer", "DP")
    status, body = call("POST", f"/api/admin/users/{user_id}/assign-trainer/", admin, {"trainer_id": trainer["id"]})
    assert status == 404 and body["error"]["code"] == "not_found"


# --- submissions ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def submitted(world: World, admin) -> dict[str, Any]:
    """Two DP students of one trainer, one FSD student of another, submissions an hour apart."""
    dp_trainer, fsd_trainer = world.user("trainer", "DP"), world.user("trainer", "FSD")
    ann, ben = world.user("student", "DP"), world.user("student", "DP")
    cat, dan = world.user("student", "FSD"), world.user("student", "FSD")  # dan has no trainer
    for student, trainer in ((ann, dp_trainer), (ben, dp_trainer), (cat, fsd_trainer)):
        world.assign(student, trainer)
    dp1, fsd1 = world.project("DP", 1), world.project("FSD", 1)
    for student in (ann, ben):
        world.progress(student, dp1["id"])
    for student in (cat, dan):
        world.progress(student, fsd1["id"])
    dp_d, fsd_d = world.deliverables(dp1["id"]), world.deliverables(fsd1["id"])
    base = T0 + timedelta(days=100)
    hour = timedelta(hours=1)
    made = [
        ("ann1", ann, dp1, dp_d[0], 1, "CHANGES_REQUESTED", base, base + hour),
        ("ann2", ann, dp1, dp_d[0], 2, "PENDING", base + 2 * hour, None),
        ("ben1", ben, dp1, dp_d[0], 1, "APPROVED", base + 3 * hour, base + 4 * hour),
        ("cat1", cat, fsd1, fsd_d[0], 1, "SUPERSEDED", base + 4 * hour, None),
        ("cat2", cat, fsd1, fsd_d[0], 2, "PENDING", base + 5 * hour, None),
        ("dan1", dan, fsd1, fsd_d[1], 1, "PENDING", base + 6 * hour, None),
        ("ben2", ben, dp1, dp_d[1], 1, "PENDING", base + 6 * hour, None),  # same instant as dan1
    ]
    out: dict[str, Any] = {"dp_trainer": dp_trainer, "fsd_trainer": fsd_trainer, "ann": ann, "dan": dan}
    for name, student, project, deliverable, attempt, status, at, reviewed in made:
        out[name] = {
            "id": world.submission(
                student,
                project["id"],
                deliverable,
                attempt=attempt,
                status=status,
                submitted_at=at,
                reviewed_at=reviewed,
                reviewer=admin["id"] if reviewed else None,
            ),
            "submitted_at": at,
            "status": status,
            "track": "DP" if project is dp1 else "FSD",
            "student": student["id"],
        }
    return out


SUBMISSIONS = ("ann1", "ann2", "ben1", "cat1", "cat2", "dan1", "ben2")


def own(submitted: dict[str, Any]) -> set[str]:
    """The module's other tests add submissions too: the assertions look at these ones."""
    return {submitted[name]["id"] for name in SUBMISSIONS}


def newest_submissions(submitted: dict[str, Any], names: list[str]) -> list[str]:
    chosen = [submitted[n] for n in names]
    return [s["id"] for s in sorted(chosen, key=lambda s: (s["submitted_at"], s["id"]), reverse=True)]


def test_admin_submissions_newest_first_with_their_fields(submitted, admin) -> None:
    status, body = call("GET", "/api/admin/submissions/", admin, query={"limit": "100"})
    assert status == 200, body
    assert [i["id"] for i in body["items"] if i["id"] in own(submitted)] == newest_submissions(
        submitted, list(SUBMISSIONS)
    )
    ann2 = next(i for i in body["items"] if i["id"] == submitted["ann2"]["id"])
    assert ann2["student_id"] == submitted["ann"]["id"] and ann2["student_email"] == submitted["ann"]["email"]
    assert (ann2["track"], ann2["project_number"], ann2["attempt"], ann2["status"]) == ("DP", 1, 2, "PENDING")
    assert ann2["deliverable_type"] == "LINK" and ann2["deliverable_title"]
    assert ann2["trainer_id"] == submitted["dp_trainer"]["id"] and ann2["reviewed_at"] is None
    dan1 = next(i for i in body["items"] if i["id"] == submitted["dan1"]["id"])
    assert dan1["trainer_id"] is None
    ben1 = next(i for i in body["items"] if i["id"] == submitted["ben1"]["id"])
    assert ben1["reviewed_by"] == admin["id"] and ben1["reviewed_at"] is not None


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ({"status": "PENDING"}, ["ann2", "cat2", "dan1", "ben2"]),
        ({"status": "APPROVED"}, ["ben1"]),
        ({"status": "SUPERSEDED"}, ["cat1"]),
        ({"track": "DP"}, ["ann1", "ann2", "ben1", "ben2"]),
        ({"track": "FSD", "status": "PENDING"}, ["cat2", "dan1"]),
        ({"trainer_id": "dp_trainer"}, ["ann1", "ann2", "ben1", "ben2"]),
        ({"trainer_id": "fsd_trainer", "status": "PENDING"}, ["cat2"]),
        ({"track": "ZZ"}, []),
    ],
)
def test_admin_submissions_filters_and_pages(submitted, admin, query, names) -> None:
    if "trainer_id" in query:
        query = {**query, "trainer_id": submitted[query["trainer_id"]]["id"]}
    pages = all_pages("/api/admin/submissions/", admin, query, limit=2)
    listed = ids(pages)
    assert len(listed) == len(set(listed))
    assert [i for i in listed if i in own(submitted)] == newest_submissions(submitted, names)


@pytest.mark.parametrize(
    "query",
    [
        {"status": "pending"},
        {"status": "REVIEWED"},
        {"track": "fsd"},
        {"trainer_id": "not-a-uuid"},
        {"limit": "0"},
        {"cursor": "@@@"},
        {"cursor": encode_cursor(["yesterday", str(uuid.uuid4())])},
        {"cursor": encode_cursor([datetime.now(UTC).isoformat(), "not-a-uuid"])},
    ],
)
def test_admin_submissions_bad_filters_are_422(admin, query) -> None:
    status, body = call("GET", "/api/admin/submissions/", admin, query=query)
    assert status == 422, body


# --- stats ----------------------------------------------------------------------------------------


@pytest.fixture
def stats_world(module_url, make_database) -> Iterator[World]:
    """Another fresh database: the stats cover everything in it, so only what this test arranges."""
    with (
        fresh_database(make_database, "apranova_admin") as url,
        psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn,
    ):
        yield World(conn)


def test_stats_of_an_empty_platform_and_of_arranged_rows(stats_world: World) -> None:
    w = stats_world
    admin = w.user("admin", None, "PENDING_PAYMENT")
    status, body = call("GET", "/api/admin/stats/", admin)
    assert status == 200, body
    assert body == {  # nothing yet
        "enrollments": [],
        "revenue": [],
        "review_turnaround": {"decided": 0, "median_seconds": None, "p90_seconds": None},
        "review_queue": 0,
        "oldest_pending_at": None,
        "students_without_trainer": 0,
        "series": None,  # asked with ?from, ?to or ?bucket (test_admin_stats_series)
    }

    dp_trainer = w.user("trainer", "DP")
    dp = [w.user("student", "DP", "ENROLLED") for _ in range(3)]
    dp_done = w.user("student", "DP", "COMPLETED")
    fsd = [w.user("student", "FSD", "ENROLLED") for _ in range(2)]
    fsd_refunded = w.user("student", "FSD", "REFUNDED")
    pending = [w.user("student", None, "PENDING_PAYMENT") for _ in range(2)]
    w.assign(dp[0], dp_trainer)
    w.assign(dp_done, dp_trainer)

    # Money: paid, partly refunded, refunded in full, disputed; and what never arrived.
    w.payment(dp[0], "DP", 49900, "SUCCEEDED")
    w.payment(dp[1], "DP", 49900, "PARTIALLY_REFUNDED", refunded=9900)
    w.payment(dp[2], "DP", 45000, "SUCCEEDED", currency="EUR")
    w.payment(dp_done, "DP", 49900, "DISPUTED")
    w.payment(fsd[0], "FSD", 59900, "SUCCEEDED")
    w.payment(fsd_refunded, "FSD", 59900, "REFUNDED", refunded=59900)
    w.payment(fsd[1], "FSD", 59900, "FAILED")
    w.payment(pending[0], "FSD", 59900, "PENDING")
    w.payment(pending[1], "DP", 49900, "EXPIRED")

    # Reviews: decided attempts with known turnarounds; pending and superseded ones do not count.
    project = w.project("DP", 1)["id"]
    deliverables = w.deliverables(project)
    for student in dp:
        w.progress(student, project)
    turnarounds = [120.0, 3600.0, 600.0, 86400.0, 30.5]
    base = T0 + timedelta(days=200)
    for n, seconds in enumerate(turnarounds):
        student, deliverable = dp[n % 3], deliverables[n // 3]
        submitted_at = base + timedelta(hours=n)
        w.submission(
            student,
            project,
            deliverable,
            status="APPROVED" if n % 2 else "CHANGES_REQUESTED",
            submitted_at=submitted_at,
            reviewed_at=submitted_at + timedelta(seconds=seconds),
            reviewer=admin["id"],
        )
    w.submission(dp[0], project, deliverables[2], status="SUPERSEDED", submitted_at=base)
    w.submission(dp[0], project, deliverables[2], attempt=2, submitted_at=base + timedelta(days=1))
    w.submission(dp[1], project, deliverables[2], submitted_at=base + timedelta(days=2))
    w.submission(dp[2], project, deliverables[3], submitted_at=base + timedelta(days=3))

    status, body = call("GET", "/api/admin/stats/", admin)

    assert status == 200, body
    assert body["enrollments"] == [
        {"track": None, "status": "PENDING_PAYMENT", "count": 2},
        {"track": "DP", "status": "COMPLETED", "count": 1},
        {"track": "DP", "status": "ENROLLED", "count": 3},
        {"track": "FSD", "status": "ENROLLED", "count": 2},
        {"track": "FSD", "status": "REFUNDED", "count": 1},
    ]
    assert body["revenue"] == [
        {
            "track": "DP",
            "currency": "EUR",
            "payments": 1,
            "gross_cents": 45000,
            "refunded_cents": 0,
            "net_cents": 45000,
        },
        {
            "track": "DP",
            "currency": "USD",
            "payments": 3,
            "gross_cents": 3 * 49900,
            "refunded_cents": 9900,
            "net_cents": 3 * 49900 - 9900,
        },
        {
            "track": "FSD",
            "currency": "USD",
            "payments": 2,
            "gross_cents": 2 * 59900,
            "refunded_cents": 59900,
            "net_cents": 59900,
        },
    ]
    turnaround = body["review_turnaround"]
    assert turnaround["decided"] == len(turnarounds)
    # From the turnaround histogram (migration 0021): within 1 % of percentile_cont.
    assert turnaround["median_seconds"] == pytest.approx(percentile_cont(turnarounds, 0.5), rel=0.01)
    assert turnaround["p90_seconds"] == pytest.approx(percentile_cont(turnarounds, 0.9), rel=0.01)
    assert turnaround["p90_seconds"] == pytest.approx(3600 + 0.6 * (86400 - 3600), rel=0.01)
    assert body["review_queue"] == 3
    assert datetime.fromisoformat(body["oldest_pending_at"]) == base + timedelta(days=1)
    # ENROLLED students without a trainer: dp[1], dp[2], fsd[0], fsd[1] (dp_done is COMPLETED).
    assert body["students_without_trainer"] == 4
