"""The shared HTTP behaviour every function gets from ``apranova.api``, through real handlers.

The functions are called exactly as API Gateway calls them (payload 2.0 events), against the run's
real database.
"""

from __future__ import annotations

import json
import time
import uuid

import pytest
from psycopg.conninfo import conninfo_to_dict
from pydantic import BaseModel, Field

from apranova import db, settings
from apranova.api import create_app
from apranova.routes import Access, Route
from functions.curriculum.handler import lambda_handler as curriculum
from functions.health.handler import lambda_handler as health
from local.events import LambdaContext, http_api_event


def call(handler, method, path, **kwargs):
    response = handler(http_api_event(method, path, **kwargs), LambdaContext("test"))
    body = response.get("body")
    return response["statusCode"], response.get("headers", {}), json.loads(body) if body else None


def assert_error_shape(body, code):
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert isinstance(body["error"]["details"], list)
    assert body["detail"] == body["error"]["message"]


@pytest.fixture(autouse=True)
def _database(database_url):
    return database_url


def test_tracks_lists_both_tracks_with_price_and_project_count():
    status, headers, body = call(curriculum, "GET", "/api/curriculum/tracks/")
    assert status == 200
    assert body["next_cursor"] is None
    tracks = {t["code"]: t for t in body["items"]}
    assert set(tracks) == {"DP", "FSD"}
    assert (tracks["DP"]["price_cents"], tracks["DP"]["currency"], tracks["DP"]["project_count"]) == (49900, "USD", 3)
    assert (tracks["FSD"]["price_cents"], tracks["FSD"]["currency"], tracks["FSD"]["project_count"]) == (
        59900,
        "USD",
        3,
    )
    assert tracks["DP"]["name"] == "Data Professional" and tracks["FSD"]["weeks"] == 12
    assert set(tracks["DP"]) >= {"code", "name", "description", "weeks", "price_cents", "currency", "project_count"}
    assert headers["Cache-Control"].startswith("public")


def test_an_inactive_track_is_not_offered(conn):
    conn.execute("UPDATE tracks SET is_active = false WHERE code = 'FSD'")
    try:
        _, _, body = call(curriculum, "GET", "/api/curriculum/tracks/")
        assert [t["code"] for t in body["items"]] == ["DP"]
    finally:
        conn.execute("UPDATE tracks SET is_active = true WHERE code = 'FSD'")


def test_health_reports_the_database_up():
    status, headers, body = call(health, "GET", "/api/health/")
    assert (status, body) == (200, {"status": "ok", "database": "ok"})
    assert headers["Cache-Control"] == "no-store"


@pytest.fixture
def unreachable_database(monkeypatch, pg_server):
    # A port nothing listens on: the connection is refused at once.
    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres@127.0.0.1:9/apranova")
    settings.database_settings.cache_clear()
    db.reset()
    yield
    monkeypatch.undo()
    settings.database_settings.cache_clear()
    db.reset()


def test_health_reports_a_down_database_as_503(unreachable_database):
    status, _, body = call(health, "GET", "/api/health/")
    assert (status, body) == (503, {"status": "unavailable", "database": "unreachable"})


def test_a_route_whose_database_is_down_answers_503_and_recovers(unreachable_database, app_database_url, monkeypatch):
    status, headers, body = call(curriculum, "GET", "/api/curriculum/tracks/")
    assert status == 503 and headers["Retry-After"] == "1"
    assert_error_shape(body, "service_unavailable")
    assert "9" not in body["error"]["message"]  # nothing about the connection leaks
    monkeypatch.setenv("DATABASE_URL", app_database_url)
    settings.database_settings.cache_clear()
    assert call(curriculum, "GET", "/api/curriculum/tracks/")[0] == 200


def test_a_connection_dropped_between_requests_is_replaced(pooler, app_database_url):
    assert call(curriculum, "GET", "/api/curriculum/tracks/")[0] == 200
    dropped = db.connection()
    # The pooler drops the function's connection, as RDS Proxy does on a failover.
    pooler.drop_clients(conninfo_to_dict(app_database_url)["dbname"])
    # The request that finds the dead connection is told to retry; the next one reconnects.
    first = call(curriculum, "GET", "/api/curriculum/tracks/")[0]
    assert first in (200, 503)
    assert call(curriculum, "GET", "/api/curriculum/tracks/")[0] == 200
    assert db.connection() is not dropped and dropped.closed


def test_unknown_route_is_a_json_404():
    # API Gateway sends every unmatched request to the $default route, served by the health function.
    status, _, body = call(health, "GET", "/api/nothing-here/")
    assert status == 404
    assert_error_shape(body, "not_found")


def test_wrong_method_is_a_405_naming_the_allowed_methods():
    status, headers, body = call(health, "DELETE", "/api/curriculum/tracks/")
    assert status == 405 and headers["Allow"] == "GET"
    assert_error_shape(body, "method_not_allowed")


def test_the_allow_of_a_405_names_only_the_methods_of_the_path_itself():
    # The literal route wins over /submissions/{id}/, as API Gateway picks the most specific route.
    status, headers, _ = call(health, "DELETE", "/api/curriculum/submissions/upload-url/")
    assert status == 405 and headers["Allow"] == "POST"
    status, headers, _ = call(health, "PUT", "/api/curriculum/projects/1/steps/2/complete/")
    assert status == 405 and headers["Allow"] == "DELETE, POST"


def test_oversized_body_is_413_even_on_an_unknown_route():
    status, _, body = call(health, "POST", "/api/anything/", body="x" * (1024 * 1024 + 1))
    assert status == 413
    assert_error_shape(body, "payload_too_large")


# The routes of this issue take no body; the shared body handling is exercised through a resolver
# built the same way, with a POST route of its own table.
class Enrolment(BaseModel):
    track: str = Field(min_length=2, max_length=3)
    seats: int


TEST_ROUTES = {
    r.key: r
    for r in (
        Route("POST", "/api/test/enrolments/", "test", Access.PUBLIC),
        Route("POST", "/api/test/admin-only/", "test", Access.ADMIN),
        Route("GET", "/api/test/students-only/", "test", Access.STUDENT),
    )
}
demo_app = create_app(TEST_ROUTES)
writes: list[Enrolment] = []


@demo_app.post("/api/test/enrolments/")
def create_enrolment(enrolment: Enrolment) -> dict:
    writes.append(enrolment)
    return {"track": enrolment.track, "seats": enrolment.seats}


@demo_app.post("/api/test/admin-only/")
def admin_only() -> dict:
    return {"ok": True}


@demo_app.get("/api/test/students-only/")
def students_only() -> dict:
    return {"ok": True}


@demo_app.get("/api/test/boom/")
def boom() -> dict:
    raise RuntimeError("secret connection string postgresql://user:pw@host")


def call_test_app(method, path, **kwargs):
    event = http_api_event(method, path, **kwargs)
    event["routeKey"] = event["requestContext"]["routeKey"] = f"{method} {path}"
    response = demo_app.resolve(event, LambdaContext("test"))
    return response["statusCode"], json.loads(response["body"])


def test_valid_body_reaches_the_route():
    writes.clear()
    assert call_test_app("POST", "/api/test/enrolments/", body='{"track": "DP", "seats": 2}') == (
        200,
        {"track": "DP", "seats": 2},
    )


def test_malformed_json_is_400_invalid_json_and_nothing_is_written():
    writes.clear()
    status, body = call_test_app("POST", "/api/test/enrolments/", body='{"track": "DP", ')
    assert status == 400
    assert_error_shape(body, "invalid_json")
    assert writes == []


def test_wrong_field_type_is_422_with_field_details_and_no_echo_of_input():
    writes.clear()
    status, body = call_test_app("POST", "/api/test/enrolments/", body='{"track": "DP", "seats": "hunter2"}')
    assert status == 422
    assert_error_shape(body, "validation_error")
    assert [d["field"] for d in body["error"]["details"]] == ["body.seats"]
    assert "hunter2" not in json.dumps(body)
    assert writes == []


def test_missing_field_is_422():
    status, body = call_test_app("POST", "/api/test/enrolments/", body='{"track": "DP"}')
    assert status == 422
    assert body["error"]["details"][0]["code"] == "missing"


def test_oversized_body_is_413_before_parsing():
    status, body = call_test_app("POST", "/api/test/enrolments/", body='{"track": "' + "D" * 1024 * 1024 + '"}')
    assert status == 413


def test_token_routes_refuse_anonymous_callers_with_401():
    status, body = call_test_app("POST", "/api/test/admin-only/")
    assert status == 401
    assert_error_shape(body, "not_authenticated")


def test_authentication_is_checked_before_the_body_is_validated():
    status, body = call_test_app("POST", "/api/test/admin-only/", body='{"not": "checked"')
    assert status == 401


STUDENT_ID, ADMIN_ID, TRAINER_ID = (
    "11111111-1111-1111-1111-111111111111",
    "22222222-2222-2222-2222-222222222222",
    "33333333-3333-3333-3333-333333333333",
)


@pytest.fixture
def accounts(conn):
    """Users of each role: the guard reads the caller's row on every request with a token."""
    people = {STUDENT_ID: "student", ADMIN_ID: "admin", TRAINER_ID: "trainer"}
    for user_id, role in people.items():
        conn.execute(
            "INSERT INTO users (id, email, name, role) VALUES (%s, %s, 'Contract', %s)",
            (user_id, f"contract-{role}@example.com", role),
        )
    yield people
    conn.execute("DELETE FROM audit_logs WHERE actor_id = ANY(%s::uuid[])", (list(people),))
    conn.execute("DELETE FROM users WHERE id = ANY(%s::uuid[])", (list(people),))


def token(user_id, groups):
    return {"sub": user_id, "token_use": "access", "cognito:groups": groups}


def test_a_student_on_an_admin_route_is_403(accounts):
    status, body = call_test_app("POST", "/api/test/admin-only/", claims=token(STUDENT_ID, "[students]"))
    assert status == 403
    assert_error_shape(body, "permission_denied")


def test_roles_come_from_the_database_not_the_token(accounts, conn):
    assert call_test_app("POST", "/api/test/admin-only/", claims=token(ADMIN_ID, "[admins]"))[0] == 200
    # A trainer is not a student; an admin is not a student either.
    assert call_test_app("GET", "/api/test/students-only/", claims=token(TRAINER_ID, "[trainers]"))[0] == 403
    # The token says admin, the database says student: the database wins, both ways.
    assert call_test_app("POST", "/api/test/admin-only/", claims=token(STUDENT_ID, "[admins]"))[0] == 403
    assert call_test_app("GET", "/api/test/students-only/", claims=token(STUDENT_ID, "[admins]"))[0] == 200


def test_a_token_of_no_user_a_disabled_user_or_an_ended_session_is_401(accounts, conn):
    status, body = call_test_app("POST", "/api/test/admin-only/", claims=token(str(uuid.uuid4()), "[admins]"))
    assert status == 401
    assert_error_shape(body, "session_ended")
    conn.execute("UPDATE users SET is_active = false WHERE id = %s", (ADMIN_ID,))
    assert call_test_app("POST", "/api/test/admin-only/", claims=token(ADMIN_ID, "[admins]"))[0] == 401
    # Sessions ended half-way through second ``iat``: a token of that second is refused (it may
    # have been issued before the end), one of the next second is not.
    iat = int(time.time())
    conn.execute(
        "UPDATE users SET is_active = true, sessions_valid_after = to_timestamp(%s + 0.5) WHERE id = %s",
        (iat, ADMIN_ID),
    )
    for issued, status in ((iat - 60, 401), (iat, 401), (iat + 1, 200)):
        claims = {**token(ADMIN_ID, "[admins]"), "iat": str(issued)}
        assert call_test_app("POST", "/api/test/admin-only/", claims=claims)[0] == status, issued


def test_a_token_without_iat_is_401(accounts):
    event = http_api_event("POST", "/api/test/admin-only/", claims=token(ADMIN_ID, "[admins]"))
    del event["requestContext"]["authorizer"]["jwt"]["claims"]["iat"]
    event["routeKey"] = event["requestContext"]["routeKey"] = "POST /api/test/admin-only/"
    assert demo_app.resolve(event, LambdaContext("test"))["statusCode"] == 401


def test_a_route_missing_from_the_table_is_refused_not_guessed():
    status, body = call_test_app("GET", "/api/test/boom/")
    assert status == 404


def test_an_unexpected_error_is_a_500_that_leaks_nothing(monkeypatch):
    monkeypatch.setitem(TEST_ROUTES, "GET /api/test/boom/", Route("GET", "/api/test/boom/", "test", Access.PUBLIC))
    status, body = call_test_app("GET", "/api/test/boom/")
    assert status == 500
    assert body == {
        "error": {"code": "internal_error", "message": "An unexpected error occurred.", "details": []},
        "detail": "An unexpected error occurred.",
    }
