"""Bad input is a 4xx, never a 500, on every function: the two classes a review found system-wide.

- U+0000 anywhere in a request (a JSON string or key at any depth, a query value, a path
  parameter): PostgreSQL text and jsonb cannot hold it. The shared guard refuses the request with
  a 422 naming the field before the route runs, so nothing is written.
- Ids that are not canonical uuids (``urn:uuid:``, braces, no hyphens, misplaced hyphens): only
  the 8-4-4-4-12 form (either case) is an id. Another spelling is what the route answers for an
  unknown id (404 on a resource path, 422 for a filter, body field or cursor).

Every route is called through its real handler, as API Gateway calls it, on a database of this
module's own (so "nothing written" is checked against every table), with moto for AWS.
"""

from __future__ import annotations

import importlib
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from moto import mock_aws
from psycopg import sql
from psycopg.rows import dict_row

from apranova import mail, routes
from apranova.pagination import encode_cursor
from local.events import LambdaContext, http_api_event
from tests.integration.governance_support import Person, fresh_database, make_person

API_ROUTES = [r for r in routes.ROUTES if not r.local_only]
NUL = "\x00"
ENV = {
    "UPLOADS_BUCKET": "bad-input-uploads",
    "EXPORTS_BUCKET": "bad-input-exports",
    "EXPORT_FUNCTION_NAME": "bad-input-export-worker",
    "EMAIL_SENDER": "no-reply@apranova.test",
    "SPA_ORIGIN": "https://app.apranova.test",
    # Nothing of ours may reach Stripe: a port nothing listens on.
    "STRIPE_API_BASE": "http://127.0.0.1:9",
}


def _reset_settings() -> None:
    from functions.compliance import settings as compliance_config
    from functions.payments import config as payments_config
    from functions.submissions import config as submissions_config
    from functions.trainer import handler as trainer_handler

    compliance_config.reset()
    submissions_config.reset()
    payments_config.settings.cache_clear()
    trainer_handler.settings.cache_clear()
    mail.reset()


@pytest.fixture(scope="module")
def pg(database_url: str, make_database) -> Iterator[psycopg.Connection]:
    """A database of the module's own, with AWS mocked and every function's settings in place."""
    with fresh_database(make_database, "apranova_bad_input") as url, mock_aws():
        try:
            with pytest.MonkeyPatch.context() as mp:
                for key, value in ENV.items():
                    mp.setenv(key, value)
                _reset_settings()
                with psycopg.connect(url, autocommit=True, row_factory=dict_row) as connection:
                    CALLERS.update({role: make_person(connection, role) for role in ("student", "trainer", "admin")})
                    yield connection
                    CALLERS.clear()
        finally:
            _reset_settings()


def snapshot(pg: psycopg.Connection) -> dict[str, str]:
    """A digest of every row of every table: equal before and after means nothing was written."""
    tables = [
        r["table_name"]
        for r in pg.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
            " AND table_type = 'BASE TABLE' ORDER BY table_name"
        )
    ]
    digest = {}
    for table in tables:
        query = sql.SQL("SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) AS d FROM {} t")
        digest[table] = pg.execute(query.format(sql.Identifier(table))).fetchone()["d"]
    return digest


# One caller of each role, made by the ``pg`` fixture: the guard reads the caller's row (the
# session check) before anything else of the request.
CALLERS: dict[str, Person] = {}


def caller_for(api_route: routes.Route) -> Person | None:
    """A caller the route admits."""
    if not api_route.access.needs_token:
        return None
    role = {routes.Access.TRAINER: "trainer", routes.Access.ADMIN: "admin"}.get(api_route.access, "student")
    return CALLERS[role]


def call(
    api_route: routes.Route,
    path: str | None = None,
    *,
    who: Person | None = None,
    body: Any = None,
    query: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """``api_route`` called through the function that serves it, as API Gateway calls it."""
    handler = importlib.import_module(routes.handler_module(api_route.function)).lambda_handler
    who = who or caller_for(api_route)
    event = http_api_event(
        api_route.method,
        path or api_route.path,
        body=body if body is None or isinstance(body, str | bytes) else json.dumps(body),
        query=query,
        headers={"content-type": "application/json"},
        claims=who.claims if who else None,
        request_id=f"req-{uuid.uuid4().hex[:12]}",
    )
    response = handler(event, LambdaContext(api_route.function))
    text = response.get("body")
    return response["statusCode"], json.loads(text) if text else None


def route(key: str) -> routes.Route:
    return next(r for r in API_ROUTES if r.key == key)


def concrete(path: str, **values: str) -> str:
    for name in ("id", "step_id"):
        path = path.replace(
            "{" + name + "}", values.get(name, "1" if "curriculum/projects" in path else str(uuid.uuid4()))
        )
    return path


def assert_refused(status: int, body: Any, field: str) -> None:
    assert status == 422, body
    assert body["error"]["code"] == "validation_error"
    assert {"field": field, "code": "invalid_character"} in [
        {"field": d["field"], "code": d["code"]} for d in body["error"]["details"]
    ], body
    assert NUL not in json.dumps(body, ensure_ascii=False) and "\\u0000" not in json.dumps(body)


# --- NUL: every route, every place ------------------------------------------------------------------


BODY_ROUTES = [r for r in API_ROUTES if r.method in ("POST", "PUT", "PATCH") and r.access is not routes.Access.STRIPE]
PATH_PARAMETERS = [(r, name) for r in API_ROUTES for name in ("id", "step_id") if "{" + name + "}" in r.path]


@pytest.mark.parametrize("api_route", API_ROUTES, ids=lambda r: r.key)
def test_a_nul_in_a_query_value_is_refused_before_the_route_runs(api_route, pg):
    before = snapshot(pg)
    status, body = call(api_route, concrete(api_route.path), query={"q": f"ada{NUL}", "limit": "5"})
    assert_refused(status, body, "query.q")
    assert snapshot(pg) == before


@pytest.mark.parametrize(("api_route", "name"), PATH_PARAMETERS, ids=lambda p: p.key if hasattr(p, "key") else p)
def test_a_nul_in_a_path_parameter_is_refused_before_the_route_runs(api_route, name, pg):
    before = snapshot(pg)
    path = concrete(api_route.path, **{name: f"1{NUL}"})
    status, body = call(api_route, path, body={} if api_route.method != "GET" else None)
    assert_refused(status, body, f"path.{name}")
    assert snapshot(pg) == before


@pytest.mark.parametrize("api_route", BODY_ROUTES, ids=lambda r: r.key)
def test_a_nul_in_a_nested_body_string_is_refused_before_the_route_runs(api_route, pg):
    before = snapshot(pg)
    body = {"reason": "fine", "items": [{"name": "fine"}, {"name": f"Ada{NUL}Lovelace"}]}
    status, answer = call(api_route, concrete(api_route.path), body=body)
    assert_refused(status, answer, "body.items.1.name")
    assert snapshot(pg) == before


def test_a_nul_in_a_body_key_or_a_top_level_list_is_refused(pg):
    before = snapshot(pg)
    admin = CALLERS["admin"]
    retention = route("PUT /api/admin/retention-policies/")
    status, body = call(retention, who=admin, body=[{"resource_type": "AUDIT_LOGS", f"days{NUL}": 400}])
    assert status == 422 and body["error"]["details"][0]["field"] == "body.0.days\\u0000"  # escaped, not echoed
    status, body = call(retention, who=admin, body=[{"resource_type": f"AUDIT{NUL}", "retention_days": 400}])
    assert_refused(status, body, "body.0.resource_type")
    status, body = call(retention, who=admin, body=f'"{json.dumps(NUL)[1:-1]}"')
    assert_refused(status, body, "body")
    assert snapshot(pg) == before


def test_a_form_encoded_body_is_checked_too(pg):
    """Powertools hands a form's fields to the route's model as well; API Gateway delivers such a
    body base64-encoded (a plain-text body must be JSON: 400)."""
    student = make_person(pg)
    patch = route("PATCH /api/auth/user/")
    status, answer = call_raw(patch, student, b"name=Ada%00", "application/x-www-form-urlencoded")
    assert_refused(status, answer, "body.name")
    # Not encoded (as a client may send it locally): read as the form it says it is, and checked.
    status, answer = call_raw(patch, student, "name=Ada%00", "application/x-www-form-urlencoded")
    assert_refused(status, answer, "body.name")
    assert pg.execute("SELECT name FROM users WHERE id = %s", (student.id,)).fetchone()["name"] == "Test Person"


def test_a_base64_encoded_json_body_is_checked_too(pg):
    student = make_person(pg)
    body = json.dumps({"name": f"Ada{NUL}"}).encode()
    status, answer = call_raw(route("PATCH /api/auth/user/"), student, body, "application/json")
    assert_refused(status, answer, "body.name")
    assert pg.execute("SELECT name FROM users WHERE id = %s", (student.id,)).fetchone()["name"] == "Test Person"


def call_raw(api_route: routes.Route, who: Person, body: str | bytes, content_type: str) -> tuple[int, Any]:
    handler = importlib.import_module(routes.handler_module(api_route.function)).lambda_handler
    event = http_api_event(
        api_route.method, api_route.path, body=body, headers={"content-type": content_type}, claims=who.claims
    )
    response = handler(event, LambdaContext(api_route.function))
    return response["statusCode"], json.loads(response["body"]) if response.get("body") else None


# The requests the review found answered with a 500: real rows, real field names.


def test_a_nul_in_the_profile_name_is_refused_and_nothing_changes(pg):
    student = make_person(pg)
    before = snapshot(pg)
    status, body = call(route("PATCH /api/auth/user/"), who=student, body={"name": f"Ada{NUL}"})
    assert_refused(status, body, "body.name")
    assert snapshot(pg) == before


def test_a_nul_in_a_refund_reason_is_refused_and_nothing_is_written(pg):
    student = make_person(pg)
    payment = _payment(pg, student)
    before = snapshot(pg)
    status, body = call(
        route("POST /api/payments/request-refund/"), who=student, body={"payment_id": payment, "reason": f"no{NUL}"}
    )
    assert_refused(status, body, "body.reason")
    assert snapshot(pg) == before


def test_a_nul_in_an_enrollment_reason_is_refused_and_nothing_is_written(pg):
    admin = make_person(pg, "admin")
    student = make_person(pg, status="PENDING_PAYMENT")
    before = snapshot(pg)
    status, body = call(
        route("POST /api/admin/users/{id}/enroll/"),
        concrete("/api/admin/users/{id}/enroll/", id=student.id),
        who=admin,
        body={"track": "DP", "reason": f"scholarship{NUL}"},
    )
    assert_refused(status, body, "body.reason")
    assert snapshot(pg) == before


def test_a_nul_in_a_list_filter_is_refused(pg):
    admin = make_person(pg, "admin")
    status, body = call(route("GET /api/admin/users/"), who=admin, query={"q": f"student{NUL}"})
    assert_refused(status, body, "query.q")


# --- ids that are not canonical uuids ---------------------------------------------------------------


def spellings(value: str) -> dict[str, str]:
    """``value`` as ``uuid.UUID`` reads it but PostgreSQL refuses it or reads it differently."""
    digits = value.replace("-", "")
    return {
        "urn": f"urn:uuid:{value}",
        "braces": "{" + value + "}",
        "no hyphens": digits,
        "misplaced hyphens": f"{digits[:7]}-{digits[7:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}",
        "trailing newline": value + "\n",
    }


FORMS = list(spellings(str(uuid.uuid4())))


def _payment(pg: psycopg.Connection, student: Person, status: str = "SUCCEEDED") -> str:
    return pg.execute(
        "INSERT INTO payments (user_id, track, amount_cents, currency, status, succeeded_at)"
        " VALUES (%s, 'DP', 49900, 'USD', %s, now()) RETURNING id::text AS id",
        (student.id, status),
    ).fetchone()["id"]


@pytest.fixture(scope="module")
def world(pg: psycopg.Connection) -> dict[str, Any]:
    """One of each thing a path names: users, a submission, a payment, a refund request, an export."""
    admin = make_person(pg, "admin")
    trainer = make_person(pg, "trainer")
    student = make_person(pg)
    pg.execute(
        "INSERT INTO trainer_assignments (student_id, trainer_id, track) VALUES (%s, %s, 'DP')",
        (student.id, trainer.id),
    )
    deliverable = pg.execute(
        "SELECT d.id, d.project_id FROM deliverables d JOIN projects p ON p.id = d.project_id"
        " JOIN tracks t ON t.id = p.track_id WHERE t.code = 'DP' AND p.number = 1 ORDER BY d.number LIMIT 1"
    ).fetchone()
    submission = pg.execute(
        "INSERT INTO submissions (student_id, project_id, deliverable_id, attempt, submission_url, status)"
        " VALUES (%s, %s, %s, 1, 'https://example.com/work', 'PENDING') RETURNING id::text AS id",
        (student.id, deliverable["project_id"], deliverable["id"]),
    ).fetchone()["id"]
    payment = _payment(pg, student)
    refund = pg.execute(
        "INSERT INTO refund_requests (payment_id, user_id, reason, amount_cents) VALUES (%s, %s, 'x', 49900)"
        " RETURNING id::text AS id",
        (payment, student.id),
    ).fetchone()["id"]
    export = pg.execute(
        "INSERT INTO data_export_requests (user_id) VALUES (%s) RETURNING id::text AS id", (student.id,)
    ).fetchone()["id"]
    return {
        "admin": admin,
        "trainer": trainer,
        "student": student,
        "submission": submission,
        "payment": payment,
        "refund": refund,
        "export": export,
    }


# (route, who calls, which id the path names, the body)
RESOURCE_PATHS = [
    ("GET /api/admin/users/{id}/", "admin", "student", None),
    ("POST /api/admin/users/{id}/role/", "admin", "admin", {"role": "student"}),
    ("POST /api/admin/users/{id}/assign-trainer/", "admin", "student", "trainer"),
    ("POST /api/admin/users/{id}/enroll/", "admin", "student", {"track": "DP", "reason": "scholarship"}),
    ("POST /api/admin/users/{id}/reprovision/", "admin", "student", None),
    ("GET /api/curriculum/submissions/{id}/", "student", "submission", None),
    ("POST /api/trainer/submissions/{id}/review/", "trainer", "submission", {"decision": "approve"}),
    ("GET /api/payments/status/{id}/", "student", "payment", None),
    ("POST /api/admin/refund-requests/{id}/approve/", "admin", "refund", None),
    ("POST /api/admin/refund-requests/{id}/reject/", "admin", "refund", {"reason": "outside the policy"}),
    ("GET /api/compliance/exports/{id}/", "student", "export", None),
]


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize(("key", "who", "target", "body"), RESOURCE_PATHS, ids=[p[0] for p in RESOURCE_PATHS])
def test_a_resource_path_with_another_spelling_of_an_id_is_a_404(key, who, target, body, form, world, pg):
    if body == "trainer":
        body = {"trainer_id": world["trainer"].id}
    before = snapshot(pg)
    api_route = route(key)
    path = concrete(
        api_route.path, id=spellings(world[target] if isinstance(world[target], str) else world[target].id)[form]
    )
    status, answer = call(api_route, path, who=world[who], body=body)
    assert status == 404, answer
    assert answer["error"]["code"] == "not_found"
    assert snapshot(pg) == before


# (route, who calls, the field, where the id goes)
FIELDS = [
    ("GET /api/admin/submissions/", "admin", "query.trainer_id", "trainer"),
    ("GET /api/admin/audit-logs/", "admin", "query.actor_id", "admin"),
    ("GET /api/admin/audit-logs/", "admin", "query.subject_id", "student"),
    ("POST /api/admin/users/{id}/assign-trainer/", "admin", "body.trainer_id", "trainer"),
    ("POST /api/payments/request-refund/", "student", "body.payment_id", "payment"),
]


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize(("key", "who", "field", "target"), FIELDS, ids=[f"{f[0]} {f[2]}" for f in FIELDS])
def test_a_filter_or_body_field_with_another_spelling_of_an_id_is_a_422(key, who, field, target, form, world, pg):
    value = world[target] if isinstance(world[target], str) else world[target].id
    api_route = route(key)
    place, name = field.split(".")
    query = {name: spellings(value)[form]} if place == "query" else None
    body = {name: spellings(value)[form], **({"reason": "changed my mind"} if "refund" in key else {})}
    before = snapshot(pg)
    status, answer = call(
        api_route,
        concrete(api_route.path, id=world["student"].id),
        who=world[who],
        query=query,
        body=body if place == "body" else None,
    )
    assert status == 422, answer
    assert field in [d["field"] for d in answer["error"]["details"]], answer
    assert snapshot(pg) == before


# The keyset lists: a cursor whose id is spelled otherwise is one we never made.
CURSORS = [
    ("GET /api/admin/users/", "admin"),
    ("GET /api/admin/submissions/", "admin"),
    ("GET /api/curriculum/my-submissions/", "student"),
    ("GET /api/trainer/students/", "trainer"),
    ("GET /api/trainer/submissions/", "trainer"),
    ("GET /api/payments/my-payments/", "student"),
    ("GET /api/admin/payments/", "admin"),
    ("GET /api/admin/refund-requests/", "admin"),
]


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize(("key", "who"), CURSORS, ids=[c[0] for c in CURSORS])
def test_a_cursor_with_another_spelling_of_an_id_is_a_422(key, who, form, world):
    cursor = encode_cursor([datetime.now(UTC).isoformat(), spellings(str(uuid.uuid4()))[form]])
    status, answer = call(route(key), who=world[who], query={"cursor": cursor})
    assert status == 422, answer
    assert answer["error"]["code"] == "invalid_cursor"


def test_an_upper_case_id_is_the_same_id(world):
    status, answer = call(
        route("GET /api/admin/users/{id}/"),
        concrete("/api/admin/users/{id}/", id=world["student"].id.upper()),
        who=world["admin"],
    )
    assert status == 200 and answer["profile"]["id"] == world["student"].id
    status, answer = call(
        route("GET /api/payments/status/{id}/"),
        concrete("/api/payments/status/{id}/", id=world["payment"].upper()),
        who=world["student"],
    )
    assert status == 200 and answer["id"] == world["payment"]


def test_the_last_admin_cannot_drop_the_role_through_an_upper_case_id(make_database, database_url):
    """The last-admin check compares ids as text: the path's spelling must be ours."""
    with fresh_database(make_database, "apranova_last_admin") as url:
        with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
            admin = make_person(conn, "admin")
            status, answer = call(
                route("POST /api/admin/users/{id}/role/"),
                concrete("/api/admin/users/{id}/role/", id=admin.id.upper()),
                who=admin,
                body={"role": "student"},
            )
            assert status == 409 and answer["error"]["code"] == "last_admin"
            assert conn.execute("SELECT role FROM users WHERE id = %s", (admin.id,)).fetchone()["role"] == "admin"


def test_a_lone_surrogate_is_refused_like_a_nul(pg):
    """JSON's "\\ud800" decodes to a string UTF-8 cannot encode: the database cannot take it either."""
    student = make_person(pg)
    before = snapshot(pg)
    status, body = call(route("PATCH /api/auth/user/"), who=student, body='{"name": "Ada \\ud800"}')
    assert_refused(status, body, "body.name")
    assert snapshot(pg) == before


def test_a_document_nested_too_deeply_is_a_400_not_a_500(pg):
    student = make_person(pg)
    status, body = call(route("PATCH /api/auth/user/"), who=student, body="[" * 100_000 + "]" * 100_000)
    assert status == 400 and body["error"]["code"] == "invalid_json"


def test_the_caller_is_checked_before_the_characters(pg):
    status, body = call(route("GET /api/admin/users/"), who=make_person(pg), query={"q": NUL})
    assert status == 403
    api_route = route("GET /api/admin/users/")
    handler = importlib.import_module(routes.handler_module(api_route.function)).lambda_handler
    response = handler(http_api_event("GET", api_route.path, query={"q": NUL}), LambdaContext("admin"))
    assert response["statusCode"] == 401


# --- bodies that cannot be read, or are not what the route takes (issue 15) -----------------------
#
# Every operation with a body, called as API Gateway calls it: an unsupported content type is 415,
# bytes that are not UTF-8 or a broken multipart form are 400, a JSON body whose top level is not
# what the route takes (an object; an array for a list route) is 422. Never a 500, nothing written.

LIST_BODY_ROUTES = {"PUT /api/admin/retention-policies/"}


def call_body(api_route: routes.Route, body: str | bytes, content_type: str) -> tuple[int, Any]:
    handler = importlib.import_module(routes.handler_module(api_route.function)).lambda_handler
    who = caller_for(api_route)
    event = http_api_event(
        api_route.method,
        concrete(api_route.path),
        body=body,
        headers={"content-type": content_type},
        claims=who.claims if who else None,
    )
    response = handler(event, LambdaContext(api_route.function))
    return response["statusCode"], json.loads(response["body"]) if response.get("body") else None


def assert_error(status: int, body: Any, expected_status: int, code: str, before: dict, pg) -> None:
    assert status == expected_status, body
    assert body["error"]["code"] == code, body
    assert snapshot(pg) == before


@pytest.mark.parametrize("api_route", BODY_ROUTES, ids=lambda r: r.key)
def test_a_text_plain_body_is_415(api_route, pg):
    before = snapshot(pg)
    status, body = call_body(api_route, '{"name": "Ada"}', "text/plain")
    assert_error(status, body, 415, "unsupported_media_type", before, pg)


@pytest.mark.parametrize("api_route", BODY_ROUTES, ids=lambda r: r.key)
def test_a_multipart_body_without_a_boundary_is_400(api_route, pg):
    before = snapshot(pg)
    status, body = call_body(api_route, b"name=Ada", "multipart/form-data")
    assert_error(status, body, 400, "invalid_multipart", before, pg)


@pytest.mark.parametrize("api_route", BODY_ROUTES, ids=lambda r: r.key)
def test_a_multipart_body_that_does_not_parse_is_400(api_route, pg):
    before = snapshot(pg)
    broken = b'--b\r\nContent-Disposition: form-data; name="\xff\xfe"\r\n\r\nAda\r\n--b--\r\n'
    status, body = call_body(api_route, broken, "multipart/form-data; boundary=b")
    assert_error(status, body, 400, "invalid_multipart", before, pg)


@pytest.mark.parametrize("api_route", BODY_ROUTES, ids=lambda r: r.key)
def test_invalid_utf8_in_a_json_body_is_400(api_route, pg):
    before = snapshot(pg)
    status, body = call_body(api_route, b'{"name": "Ada \xff\xfe"}', "application/json")
    assert_error(status, body, 400, "invalid_encoding", before, pg)


@pytest.mark.parametrize("top_level", ["[null, null]", "[{}]", '"text"', "1", "null", "true"])
@pytest.mark.parametrize("api_route", BODY_ROUTES, ids=lambda r: r.key)
def test_a_json_body_that_is_not_an_object_is_422(api_route, top_level, pg):
    if api_route.key in LIST_BODY_ROUTES:
        top_level = {"[null, null]": "{}", "[{}]": '{"resource_type": "AUDIT_LOGS"}'}.get(top_level, top_level)
    before = snapshot(pg)
    status, body = call_body(api_route, top_level, "application/json")
    assert_error(status, body, 422, "validation_error", before, pg)
    expected = "array_expected" if api_route.key in LIST_BODY_ROUTES else "object_expected"
    assert body["error"]["details"] == [
        {"field": "body", "code": expected, "message": body["error"]["details"][0]["message"]}
    ]


def test_an_array_does_not_approve_a_refund(world, pg):
    """``[null, null]`` was read as its first element (null: no body) and executed the refund."""
    payer = make_person(pg)
    refund = pg.execute(
        "INSERT INTO refund_requests (payment_id, user_id, reason, amount_cents)"
        " VALUES (%s, %s, 'array test', 100) RETURNING id::text AS id",
        (_payment(pg, payer), payer.id),
    ).fetchone()["id"]
    before = snapshot(pg)
    approve = route("POST /api/admin/refund-requests/{id}/approve/")
    path = concrete(approve.path, id=refund)
    status, body = call(approve, path, who=world["admin"], body="[null, null]")
    assert status == 422 and body["error"]["details"][0]["code"] == "object_expected"
    assert snapshot(pg) == before
    assert pg.execute("SELECT status FROM refund_requests WHERE id = %s", (refund,)).fetchone()["status"] == "PENDING"


def test_a_profile_patch_as_an_array_is_422(pg):
    student = make_person(pg)
    status, body = call(route("PATCH /api/auth/user/"), who=student, body=[{"name": "Mallory"}])
    assert status == 422 and body["error"]["details"][0]["code"] == "object_expected"
    assert pg.execute("SELECT name FROM users WHERE id = %s", (student.id,)).fetchone()["name"] == "Test Person"


# --- strict types: booleans and date-times ----------------------------------------------------------


@pytest.mark.parametrize("value", ["0.5", "1700000000", "0", "yesterday", "2026-13-01T00:00:00Z"])
@pytest.mark.parametrize("name", ["from", "to"])
def test_a_date_time_filter_takes_iso_8601_only(name, value, world):
    status, body = call(route("GET /api/admin/audit-logs/"), who=world["admin"], query={name: value})
    assert status == 422, body
    assert f"query.{name}" in [d["field"] for d in body["error"]["details"]]
    ok = call(route("GET /api/admin/audit-logs/"), who=world["admin"], query={name: "2026-01-31T12:00:00Z"})
    assert ok[0] == 200


@pytest.mark.parametrize("value", [0, 1, 1.0, "true", "yes", None.__class__.__name__])
def test_a_boolean_in_a_body_takes_true_or_false_only(value, world, pg):
    before = snapshot(pg)
    change = [{"resource_type": "AUDIT_LOGS", "retention_days": 3650, "is_active": value}]
    status, body = call(route("PUT /api/admin/retention-policies/"), who=world["admin"], body=change)
    assert status == 422, body
    assert "body.0.is_active" in [d["field"] for d in body["error"]["details"]]
    assert snapshot(pg) == before


@pytest.mark.parametrize("value", [1900000000, "1900000000", "0.5"])
def test_a_date_time_in_a_body_takes_iso_8601_only(value, world, pg):
    before = snapshot(pg)
    policy = {"kind": "privacy", "version": "9.9", "content": "Text", "summary": "Why", "effective_at": value}
    status, body = call(route("POST /api/admin/policies/"), who=world["admin"], body=policy)
    assert status == 422, body
    assert "body.effective_at" in [d["field"] for d in body["error"]["details"]]
    assert snapshot(pg) == before


# --- security headers on every answer ---------------------------------------------------------------


SECURITY = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
# The public catalogue: the same for everyone, so a cache may keep it.
CATALOGUE = {"GET /api/health/", "GET /api/curriculum/tracks/", "GET /api/compliance/privacy-policy/",
             "GET /api/compliance/terms/"}  # fmt: skip


def headers_of(api_route: routes.Route, *, who: Person | None, body: Any = None) -> tuple[int, dict[str, str]]:
    handler = importlib.import_module(routes.handler_module(api_route.function)).lambda_handler
    event = http_api_event(
        api_route.method,
        concrete(api_route.path),
        body=None if body is None else json.dumps(body),
        claims=who.claims if who else None,
    )
    response = handler(event, LambdaContext(api_route.function))
    return response["statusCode"], response.get("headers") or {}


@pytest.mark.parametrize("api_route", API_ROUTES, ids=lambda r: r.key)
def test_every_answer_carries_the_security_headers(api_route, pg):
    # The route's own caller and no caller at all: whatever the answer (this module has no tool
    # servers or Cognito pool, so some routes answer 5xx here), it carries the headers.
    for who in {caller_for(api_route), None}:
        status, headers = headers_of(api_route, who=who, body={} if api_route.method != "GET" else None)
        for name, value in SECURITY.items():
            assert headers.get(name) == value, (api_route.key, name, headers)
        assert headers["Strict-Transport-Security"].startswith("max-age=31536000"), headers
        if api_route.key not in CATALOGUE or status >= 400:
            assert headers.get("Cache-Control") == "no-store", (api_route.key, status, headers)


def test_an_unmatched_request_carries_them_too(pg):
    from functions.health.handler import lambda_handler as health

    for method, path in (("GET", "/api/nothing/"), ("DELETE", "/api/curriculum/tracks/")):
        response = health(http_api_event(method, path), LambdaContext("health"))
        assert response["statusCode"] in (404, 405)
        assert response["headers"]["X-Content-Type-Options"] == "nosniff"
        assert response["headers"]["Cache-Control"] == "no-store"


# --- names are plain text at the edge -------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["Ada\r\n\r\nURGENT https://evil.example/x", "Ada\nLovelace", "Ada\x1b[31m", "Ada\u2028x"]
)
def test_a_name_with_control_characters_is_422_on_the_profile_and_the_pay_first_checkout(name, pg):
    student = make_person(pg)
    before = snapshot(pg)
    status, body = call(route("PATCH /api/auth/user/"), who=student, body={"name": name})
    assert status == 422 and {"field": "body.name", "code": "plain_text"} in [
        {"field": d["field"], "code": d["code"]} for d in body["error"]["details"]
    ]
    checkout = {
        "track": "DP",
        "email": "victim@example.com",
        "name": name,
        "accept_privacy": True,
        "privacy_version": "1.0",
        "terms_version": "1.0",
    }
    status, body = call(route("POST /api/payments/create-anonymous-checkout/"), body=checkout)
    assert status == 422 and "body.name" in [d["field"] for d in body["error"]["details"]]
    assert snapshot(pg) == before


# --- query parameters a route does not declare --------------------------------------------------------


@pytest.mark.parametrize("api_route", API_ROUTES, ids=lambda r: r.key)
def test_an_undeclared_query_parameter_is_refused_by_name(api_route, pg):
    """Never silently ignored: ``?email=dana`` on a list that filters by ``q`` would answer everyone."""
    before = snapshot(pg)
    status, body = call(api_route, concrete(api_route.path), query={"not_a_parameter": "1"})
    assert status == 422, body
    assert {"field": "query.not_a_parameter", "code": "unknown_parameter"} in [
        {"field": d["field"], "code": d["code"]} for d in body["error"]["details"]
    ], body
    assert snapshot(pg) == before


def test_a_webhook_body_that_is_not_utf8_is_an_invalid_signature():
    """Stripe signs UTF-8 text; the SDK's own decoding error used to be a 500."""
    from functions.payments.webhook import InvalidSignature, verified_event

    with pytest.raises(InvalidSignature):
        verified_event(b"\xff\xfe{}", "t=1,v1=" + "0" * 64, "whsec_" + "s" * 32)
