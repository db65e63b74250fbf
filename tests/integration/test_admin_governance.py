"""The admin governance routes through the real handler (``functions.admin.handler``) on the real
PostgreSQL: publishing policy versions, the audit trail with its filters and keyset pages, and the
retention policies. The module has a database of its own (it publishes policies and changes
retention periods)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from apranova import audit
from apranova.identity import Caller
from functions.admin.handler import lambda_handler as admin
from functions.compliance.handler import lambda_handler as compliance
from tests.integration.governance_support import (
    SOURCE_IP,
    USER_AGENT,
    Person,
    call,
    error_code,
    fresh_database,
    make_person,
)

POLICIES = "/api/admin/policies/"
AUDIT = "/api/admin/audit-logs/"
RETENTION = "/api/admin/retention-policies/"
ROUTES = [("POST", POLICIES), ("GET", AUDIT), ("GET", RETENTION), ("PUT", RETENTION)]


@pytest.fixture(scope="module")
def module_url(database_url: str, make_database) -> Iterator[str]:
    with fresh_database(make_database, "apranova_governance") as url:
        yield url


@pytest.fixture(scope="module")
def people(pg) -> dict[str, Person]:
    return {role: make_person(pg, role) for role in ("admin", "trainer", "student")}


def table_dump(pg, table: str) -> list[dict[str, Any]]:
    return pg.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()  # noqa: S608 - the test's constants


def audit_count(pg, action: str) -> int:
    return pg.execute("SELECT count(*) AS n FROM audit_logs WHERE action = %s", (action,)).fetchone()["n"]


def zulu(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def publication(kind: str, version: str, effective_at: datetime | None = None, **changes: Any) -> dict[str, Any]:
    body = {
        "kind": kind,
        "version": version,
        "content": f"The {kind} text, version {version}.",
        "summary": f"What changed in {version}.",
        "effective_at": zulu(effective_at or datetime.now(UTC)),
    }
    return {**body, **changes}


# --- access ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_anonymous_is_401_and_students_and_trainers_are_403(pg, people, method, path) -> None:
    body = publication("terms", "50.0") if method == "POST" else ([] if method == "PUT" else None)
    before = {t: table_dump(pg, t) for t in ("terms_of_service", "data_retention_policies")}
    status, _, answer = call(admin, method, path, None, body)
    assert status == 401 and error_code(answer) == "not_authenticated", answer
    for role in ("student", "trainer"):
        status, _, answer = call(admin, method, path, people[role], body)
        assert status == 403 and error_code(answer) == "permission_denied", (role, answer)
    assert {t: table_dump(pg, t) for t in before} == before


# --- publishing policies --------------------------------------------------------------------------------------


def test_publishing_a_version_now_puts_it_in_force_and_is_audited(pg, people) -> None:
    body = publication("terms", "1.1", summary="Refund rules clarified.")
    status, headers, published = call(admin, "POST", POLICIES, people["admin"], body)
    assert status == 201, published
    assert headers["cache-control"] == "no-store"
    assert published["in_force"] is True and published["published_by"] == people["admin"].id
    assert (published["kind"], published["version"], published["summary"]) == (
        "terms",
        "1.1",
        "Refund rules clarified.",
    )
    assert pg.execute("SELECT terms_version_in_force() AS v").fetchone()["v"] == "1.1"
    # The informational is_active mirror follows the version in force.
    assert [r["version"] for r in pg.execute("SELECT version FROM terms_of_service WHERE is_active")] == ["1.1"]
    document = call(compliance, "GET", "/api/compliance/terms/")[2]
    assert (document["version"], document["content"]) == ("1.1", body["content"])

    row = pg.execute(
        "SELECT actor_id::text AS actor_id, actor_role, resource_type, resource_id, details, host(ip_address) AS ip,"
        " user_agent FROM audit_logs WHERE action = 'POLICY_PUBLISHED' AND resource_id = '1.1'"
    ).fetchone()
    assert (row["actor_id"], row["actor_role"], row["resource_type"]) == (
        people["admin"].id,
        "admin",
        "terms_of_service",
    )
    assert row["details"]["kind"] == "terms" and row["details"]["in_force"] is True
    assert (row["ip"], row["user_agent"]) == (SOURCE_IP, USER_AGENT)


def test_a_scheduled_version_waits_for_its_time(pg, people) -> None:
    before = pg.execute("SELECT privacy_version_in_force() AS v").fetchone()["v"]
    later = datetime.now(UTC) + timedelta(days=30)
    status, _, published = call(admin, "POST", POLICIES, people["admin"], publication("privacy", "5.0", later))
    assert status == 201 and published["in_force"] is False, published
    assert published["effective_at"] == zulu(later)
    assert pg.execute("SELECT privacy_version_in_force() AS v").fetchone()["v"] == before
    assert [r["version"] for r in pg.execute("SELECT version FROM privacy_policies WHERE is_active")] == [before]
    assert call(compliance, "GET", "/api/compliance/privacy-policy/")[2]["upcoming"]["version"] == "5.0"

    # A newer version cannot take effect before the scheduled one (the order of versions holds).
    sooner = publication("privacy", "6.0", datetime.now(UTC) + timedelta(days=1))
    status, _, answer = call(admin, "POST", POLICIES, people["admin"], sooner)
    assert status == 409 and error_code(answer) == "effective_before_latest", answer


@pytest.mark.parametrize(("version", "code"), [
    ("1.0", "version_exists"),
    ("1", "version_exists"),  # 1 is 1.0
    ("1.0.0", "version_exists"),
    ("0.9", "version_not_newer"),
    ("0.10", "version_not_newer"),
])  # fmt: skip
def test_a_version_not_newer_than_every_other_is_409(pg, people, version, code) -> None:
    kind_table = "privacy_policies"
    before = table_dump(pg, kind_table)
    published = audit_count(pg, "POLICY_PUBLISHED")
    status, _, answer = call(admin, "POST", POLICIES, people["admin"], publication("privacy", version))
    assert status == 409 and error_code(answer) == code, answer
    assert table_dump(pg, kind_table) == before and audit_count(pg, "POLICY_PUBLISHED") == published


def test_versions_compare_as_numbers(pg, people) -> None:
    for version in ("1.9", "1.10"):  # 1.10 is newer than 1.9 (as text it would not be)
        status, _, answer = call(admin, "POST", POLICIES, people["admin"], publication("terms", version))
        assert status == 201, answer
    status, _, answer = call(admin, "POST", POLICIES, people["admin"], publication("terms", "1.2"))
    assert status == 409 and answer["error"]["details"] == [{"field": "body.version", "latest": "1.10"}]


@pytest.mark.parametrize("changes", [
    {"kind": "cookies"},
    {"version": "v2"},
    {"version": "2.0-beta"},
    {"version": ""},
    {"content": "   "},
    {"content": ""},
    {"summary": "\n"},
    {"effective_at": "2099-01-01T00:00:00"},  # no time zone
    {"effective_at": "tomorrow"},
    {"effective_at": "2020-01-01T00:00:00Z"},  # in the past
    {"effective_at": "9999-12-31T23:00:00-12:00"},  # after the year 9999 in UTC: no database time
    {"effective_at": "2205-01-01T00:00:00Z"},  # a typo in the year: it would block every later version
    {"content": "The text\u0000with a NUL"},  # PostgreSQL text cannot hold NUL
    {"summary": "What\u0000changed"},
    {"published_by": "00000000-0000-4000-8000-000000000000"},
    {"is_active": True},
])  # fmt: skip
def test_a_malformed_publication_is_422_and_writes_nothing(pg, people, changes) -> None:
    before = {t: table_dump(pg, t) for t in ("privacy_policies", "terms_of_service")}
    published = audit_count(pg, "POLICY_PUBLISHED")
    status, _, answer = call(admin, "POST", POLICIES, people["admin"], {**publication("terms", "40.0"), **changes})
    assert status == 422 and error_code(answer) == "validation_error", answer
    assert {t: table_dump(pg, t) for t in before} == before and audit_count(pg, "POLICY_PUBLISHED") == published


def test_a_few_minutes_of_clock_skew_count_as_now(pg, people) -> None:
    body = publication("terms", "30.0", datetime.now(UTC) - timedelta(minutes=2))
    status, _, published = call(admin, "POST", POLICIES, people["admin"], body)
    assert status == 201 and published["in_force"] is True, published
    # Stored as now: a version published "now" never takes effect before the one it replaces.
    assert datetime.fromisoformat(published["effective_at"]) > datetime.fromisoformat(body["effective_at"])


def test_a_version_may_be_scheduled_at_most_366_days_ahead(pg, people) -> None:
    before = table_dump(pg, "privacy_policies")
    published = audit_count(pg, "POLICY_PUBLISHED")
    too_far = publication("privacy", "8.0", datetime.now(UTC) + timedelta(days=366, hours=1))
    status, _, answer = call(admin, "POST", POLICIES, people["admin"], too_far)
    assert status == 422 and error_code(answer) == "validation_error", answer
    (detail,) = answer["error"]["details"]
    assert (detail["field"], detail["code"], detail["max_days_ahead"]) == ("body.effective_at", "too_far_ahead", 366)
    assert "366 days" in answer["error"]["message"]
    assert table_dump(pg, "privacy_policies") == before and audit_count(pg, "POLICY_PUBLISHED") == published
    # Within the bound it is a scheduled version like any other.
    within = publication("privacy", "7.0", datetime.now(UTC) + timedelta(days=365))
    status, _, answer = call(admin, "POST", POLICIES, people["admin"], within)
    assert status == 201 and answer["in_force"] is False, answer


# --- the audit trail --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trail(pg) -> dict[str, Any]:
    """Rows written through ``apranova.audit``: many in one transaction (one occurred_at, the id
    breaks the tie) and some at other times, by two actors about two subjects."""
    actors = [str(uuid.uuid4()) for _ in range(2)]
    subjects = [str(uuid.uuid4()) for _ in range(2)]
    with pg.transaction(), pg.cursor() as cur:
        for n in range(7):
            audit.record(
                cur,
                "LOGIN" if n % 2 else "LOGOUT",
                actor=Caller(actors[n % 2], frozenset({"students"})),
                subject_id=subjects[n % 2],
                resource_type="user",
                resource_id=subjects[n % 2],
                details={"n": n},
                ip_address="192.0.2.1",
                user_agent="trail/1.0",
            )
    base = datetime(2030, 6, 1, tzinfo=UTC)
    for n in range(5):  # at times of their own (occurred_at is always now() through the writer)
        pg.execute(
            "INSERT INTO audit_logs (occurred_at, action, actor_id, subject_id, resource_type, resource_id)"
            " VALUES (%s, 'ROLE_CHANGE', %s, %s, 'user', %s)",
            (base + timedelta(days=n), actors[0], subjects[1], f"dated-{n}"),
        )
    return {"actors": actors, "subjects": subjects, "base": base}


def walk(who: Person, query: dict[str, str], limit: int = 3) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(200):
        page_query = {**query, "limit": str(limit), **({"cursor": cursor} if cursor else {})}
        status, headers, page = call(admin, "GET", AUDIT, who, query=page_query)
        assert status == 200 and headers["cache-control"] == "no-store", page
        assert len(page["items"]) <= limit
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("the pages never ended")


def expected_ids(pg, where: str = "true", params: tuple[Any, ...] = ()) -> list[int]:
    rows = pg.execute(
        f"SELECT id FROM audit_logs WHERE {where} ORDER BY occurred_at DESC, id DESC",  # noqa: S608 - the test's
        params,
    ).fetchall()
    return [r["id"] for r in rows]


def test_the_whole_trail_in_keyset_pages_without_duplicates_or_gaps(pg, people, trail) -> None:
    expected = expected_ids(pg)
    seen = [item["id"] for item in walk(people["admin"], {})]
    assert seen == expected and len(set(seen)) == len(seen)


def test_an_entry_has_every_field(pg, people, trail) -> None:
    query = {"action": "LOGOUT", "limit": "1", "subject_id": trail["subjects"][0]}
    (item,) = call(admin, "GET", AUDIT, people["admin"], query=query)[2]["items"]
    assert item["action"] == "LOGOUT" and item["details"] == {"n": 6}
    assert (item["actor_id"], item["actor_role"], item["subject_id"]) == (
        trail["actors"][0],
        "student",
        trail["subjects"][0],
    )
    assert (item["resource_type"], item["resource_id"]) == ("user", trail["subjects"][0])
    assert (item["ip_address"], item["user_agent"], item["request_id"]) == ("192.0.2.1", "trail/1.0", None)
    assert set(item) == {
        "id", "occurred_at", "action", "actor_id", "actor_role", "subject_id", "resource_type", "resource_id",
        "details", "ip_address", "user_agent", "request_id",
    }  # fmt: skip


def test_filters(pg, people, trail) -> None:
    actor, other = trail["actors"]
    subject = trail["subjects"][1]
    base = trail["base"]
    cases = [
        ({"actor_id": actor}, "actor_id = %s", (actor,)),
        ({"subject_id": subject}, "subject_id = %s", (subject,)),
        ({"action": "LOGIN"}, "action = %s", ("LOGIN",)),
        ({"action": "ROLE_CHANGE", "actor_id": actor}, "action = %s AND actor_id = %s", ("ROLE_CHANGE", actor)),
        ({"resource_type": "user", "resource_id": "dated-2"}, "resource_type = 'user' AND resource_id = 'dated-2'", ()),
        ({"from": zulu(base + timedelta(days=1)), "to": zulu(base + timedelta(days=3))},
         "occurred_at >= %s AND occurred_at < %s", (base + timedelta(days=1), base + timedelta(days=3))),
        ({"from": zulu(base + timedelta(days=4))}, "occurred_at >= %s", (base + timedelta(days=4),)),
        ({"to": zulu(base + timedelta(days=1))}, "occurred_at < %s", (base + timedelta(days=1),)),
        ({"actor_id": other, "action": "ROLE_CHANGE"}, "false", ()),
    ]  # fmt: skip
    for query, where, params in cases:
        expected = expected_ids(pg, where, params)
        assert [item["id"] for item in walk(people["admin"], query, limit=2)] == expected, query
    dated = walk(people["admin"], {"from": zulu(base), "to": zulu(base + timedelta(days=10))})
    assert [item["resource_id"] for item in dated] == [f"dated-{n}" for n in (4, 3, 2, 1, 0)]


@pytest.mark.parametrize("query", [
    {"actor_id": "not-a-uuid"},
    {"subject_id": "1234"},
    {"action": "login"},
    {"action": "LOGIN; DROP TABLE users"},
    {"resource_type": "User"},
    {"from": "yesterday"},
    {"from": "2030-01-01T00:00:00"},  # no time zone
    {"from": "2030-01-02T00:00:00Z", "to": "2030-01-01T00:00:00Z"},
    {"from": "2030-01-01T00:00:00Z", "to": "2030-01-01T00:00:00Z"},
    {"limit": "0"},
    {"limit": "101"},
    {"cursor": "garbage"},
    {"cursor": "WyJub3QgYSB0aW1lIiwgMV0"},  # ["not a time", 1]
    {"resource_id": "user\u0000id"},  # PostgreSQL text cannot hold NUL
])  # fmt: skip
def test_bad_filters_are_422(people, query) -> None:
    status, _, answer = call(admin, "GET", AUDIT, people["admin"], query=query)
    assert status == 422, (query, answer)


# --- retention policies ---------------------------------------------------------------------------------------


def test_retention_policies_are_listed(pg, people) -> None:
    status, headers, body = call(admin, "GET", RETENTION, people["admin"])
    assert status == 200 and headers["cache-control"] == "no-store", body
    rows = pg.execute("SELECT * FROM data_retention_policies ORDER BY resource_type").fetchall()
    assert [p["resource_type"] for p in body["items"]] == [r["resource_type"] for r in rows]
    assert body["next_cursor"] is None
    payment = next(p for p in body["items"] if p["resource_type"] == "PAYMENT_DATA")
    assert (payment["legal_requirement"], payment["legal_minimum_days"]) == (True, 2555)
    assert set(payment) == {
        "resource_type", "retention_days", "legal_minimum_days", "legal_requirement", "is_active", "description",
        "updated_at",
    }  # fmt: skip


def retention(pg) -> dict[str, dict[str, Any]]:
    return {r["resource_type"]: r for r in table_dump(pg, "data_retention_policies")}


def test_changing_retention_applies_every_change_and_audits_each(pg, people) -> None:
    before = retention(pg)
    changes = [
        {"resource_type": "AUDIT_LOGS", "retention_days": 400},
        {"resource_type": "EXPORTS", "retention_days": before["EXPORTS"]["retention_days"], "is_active": False},
        {"resource_type": "PAYMENT_DATA", "retention_days": 3000},  # longer than the legal minimum is fine
        {"resource_type": "LOGS", "retention_days": before["LOGS"]["retention_days"]},  # unchanged: not audited
    ]
    status, _, body = call(admin, "PUT", RETENTION, people["admin"], changes)
    assert status == 200, body
    after = retention(pg)
    assert after["AUDIT_LOGS"]["retention_days"] == 400 and after["EXPORTS"]["is_active"] is False
    assert after["PAYMENT_DATA"]["retention_days"] == 3000 and after["LOGS"] == before["LOGS"]
    assert {p["resource_type"]: p["retention_days"] for p in body["items"]} == {
        k: v["retention_days"] for k, v in after.items()
    }
    rows = pg.execute(
        "SELECT resource_id, actor_id::text AS actor_id, details, host(ip_address) AS ip, user_agent FROM audit_logs"
        " WHERE action = 'RETENTION_POLICY_CHANGED' ORDER BY id"
    ).fetchall()
    assert [r["resource_id"] for r in rows] == ["AUDIT_LOGS", "EXPORTS", "PAYMENT_DATA"]
    assert rows[0]["details"] == {
        "from": {"retention_days": before["AUDIT_LOGS"]["retention_days"], "is_active": True},
        "to": {"retention_days": 400, "is_active": True},
    }
    assert {(r["actor_id"], r["ip"], r["user_agent"]) for r in rows} == {(people["admin"].id, SOURCE_IP, USER_AGENT)}
    # Sending the same values again changes and audits nothing.
    assert call(admin, "PUT", RETENTION, people["admin"], changes)[0] == 200
    assert retention(pg) == after and audit_count(pg, "RETENTION_POLICY_CHANGED") == 3


@pytest.mark.parametrize(("changes", "field", "code"), [
    ([{"resource_type": "AUDIT_LOGS", "retention_days": 500}, {"resource_type": "PAYMENT_DATA", "retention_days": 30}],
     "body.1.retention_days", "below_legal_minimum"),
    ([{"resource_type": "AUDIT_LOGS", "retention_days": 500}, {"resource_type": "CHAT_LOGS", "retention_days": 30}],
     "body.1.resource_type", "unknown_resource_type"),
    ([{"resource_type": "LOGS", "retention_days": 10}, {"resource_type": "LOGS", "retention_days": 20}],
     "body.1.resource_type", "duplicate"),
    ([], "body", "empty"),
])  # fmt: skip
def test_a_bad_change_is_422_and_nothing_changes(pg, people, changes, field, code) -> None:
    before = retention(pg)
    audited = audit_count(pg, "RETENTION_POLICY_CHANGED")
    status, _, answer = call(admin, "PUT", RETENTION, people["admin"], changes)
    assert status == 422 and error_code(answer) == "validation_error", answer
    assert [(d["field"], d["code"]) for d in answer["error"]["details"]] == [(field, code)]
    if code == "below_legal_minimum":
        assert answer["error"]["details"][0]["legal_minimum_days"] == 2555
        assert "2555" in answer["error"]["message"]
    assert retention(pg) == before and audit_count(pg, "RETENTION_POLICY_CHANGED") == audited


@pytest.mark.parametrize("body", [
    {"resource_type": "LOGS", "retention_days": 10},  # not a list
    [{"resource_type": "LOGS"}],
    [{"resource_type": "LOGS", "retention_days": 0}],
    [{"resource_type": "LOGS", "retention_days": -5}],
    [{"resource_type": "LOGS", "retention_days": "ten"}],
    [{"resource_type": "logs", "retention_days": 10}],
    [{"resource_type": "LOGS", "retention_days": 10, "legal_requirement": False}],
    [{"resource_type": "LOGS", "retention_days": 10, "is_active": "maybe"}],
])  # fmt: skip
def test_a_malformed_change_is_422(pg, people, body) -> None:
    before = retention(pg)
    status, _, answer = call(admin, "PUT", RETENTION, people["admin"], body)
    assert status == 422 and error_code(answer) == "validation_error", (body, answer)
    assert retention(pg) == before


@pytest.mark.parametrize(("change", "code", "bound"), [
    ({"resource_type": "USER_DATA", "retention_days": 91}, "above_maximum", ("maximum_days", 90)),
    ({"resource_type": "USER_DATA", "retention_days": 36_500}, "above_maximum", ("maximum_days", 90)),
    ({"resource_type": "ABANDONED_CHECKOUTS", "retention_days": 29}, "below_minimum", ("minimum_days", 30)),
])  # fmt: skip
def test_a_period_outside_what_the_system_needs_is_422_and_nothing_changes(pg, people, change, code, bound) -> None:
    """USER_DATA is the deletion grace period: capped, so erasure cannot be postponed indefinitely.
    An abandoned checkout's email is needed as long as a delayed payment can still complete."""
    before = retention(pg)
    audited = audit_count(pg, "RETENTION_POLICY_CHANGED")
    status, _, answer = call(admin, "PUT", RETENTION, people["admin"], [{"resource_type": "LOGS", "retention_days": 45},
                                                                          change])  # fmt: skip
    assert status == 422 and error_code(answer) == "validation_error", answer
    (detail,) = answer["error"]["details"]
    assert (detail["field"], detail["code"], detail[bound[0]]) == ("body.1.retention_days", code, bound[1])
    assert str(bound[1]) in answer["error"]["message"]
    assert retention(pg) == before and audit_count(pg, "RETENTION_POLICY_CHANGED") == audited


def test_periods_within_the_bounds_are_accepted(pg, people) -> None:
    before = retention(pg)
    changes = [
        {"resource_type": "USER_DATA", "retention_days": 90},
        {"resource_type": "ABANDONED_CHECKOUTS", "retention_days": 30, "is_active": False},
    ]
    try:
        status, _, body = call(admin, "PUT", RETENTION, people["admin"], changes)
        assert status == 200, body
        after = retention(pg)
        assert after["USER_DATA"]["retention_days"] == 90 and after["ABANDONED_CHECKOUTS"]["is_active"] is False
    finally:
        restore = [{k: before[c["resource_type"]][k] for k in ("resource_type", "retention_days", "is_active")}
                   for c in changes]  # fmt: skip
        assert call(admin, "PUT", RETENTION, people["admin"], restore)[0] == 200


def test_a_minimum_on_a_policy_without_a_legal_requirement_is_422_too(pg, people) -> None:
    """The table's CHECK holds every row to its legal_minimum_days: the route must say 422, not 500."""
    pg.execute("UPDATE data_retention_policies SET legal_minimum_days = 30 WHERE resource_type = 'LOGS'")
    try:
        before = retention(pg)
        audited = audit_count(pg, "RETENTION_POLICY_CHANGED")
        change = [{"resource_type": "LOGS", "retention_days": 10}]
        status, _, answer = call(admin, "PUT", RETENTION, people["admin"], change)
        assert status == 422 and error_code(answer) == "validation_error", answer
        assert [(d["field"], d["code"]) for d in answer["error"]["details"]] == [
            ("body.0.retention_days", "below_legal_minimum")
        ]
        assert retention(pg) == before and audit_count(pg, "RETENTION_POLICY_CHANGED") == audited
    finally:
        pg.execute("UPDATE data_retention_policies SET legal_minimum_days = NULL WHERE resource_type = 'LOGS'")
