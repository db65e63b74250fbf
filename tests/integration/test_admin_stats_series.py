"""The admin console's time series (issue 18): ``GET /api/admin/stats/?from&to&bucket=day|week``.

Through the real handler on a fresh database of this test's own (the series cover everything in
it): rows are arranged at known times with SQL, as the payments, enrollment, provisioning, review
and refund code leaves them, and the series read back through the route are what a person would
count by hand.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from functions.admin.handler import lambda_handler
from local.events import LambdaContext, http_api_event
from tests.integration import test_admin_users as admin_tests
from tests.integration.test_admin_users import World, anonymous, call

# The admin tests' fixtures: a database of the module's own (its connection, ``pg``, is the
# conftest's), and a fresh one per stats test.
module_url, world, stats_world = admin_tests.module_url, admin_tests.world, admin_tests.stats_world

STATS = "/api/admin/stats/"
MONDAY = datetime(2030, 1, 7, 9, 0, tzinfo=UTC)  # a Monday


def at(days: float, hours: float = 0) -> datetime:
    return MONDAY + timedelta(days=days, hours=hours)


def stats(admin: dict[str, Any], **query: str) -> dict[str, Any]:
    status, body = call("GET", STATS, admin, query=query)
    assert status == 200, body
    return body["series"]


def arrange(w: World) -> dict[str, Any]:
    admin = w.user("admin", None, "PENDING_PAYMENT")
    dp = [w.user("student", "DP", "ENROLLED") for _ in range(3)]
    fsd = w.user("student", "FSD", "ENROLLED")
    for student, day in zip((*dp, fsd), (0, 0, 1, 8), strict=True):
        w.conn.execute("UPDATE users SET enrolled_at = %s WHERE id = %s", (at(day), student["id"]))
    # Money: two DP payments on Monday (one USD partly refunded since, one EUR), FSD the next week.
    paid = [
        (dp[0], "DP", 49900, "USD", "PARTIALLY_REFUNDED", 9900, at(0)),
        (dp[1], "DP", 45000, "EUR", "SUCCEEDED", 0, at(0, 3)),
        (dp[2], "DP", 49900, "USD", "SUCCEEDED", 0, at(1)),
        (fsd, "FSD", 59900, "USD", "SUCCEEDED", 0, at(8)),
    ]
    payments = []
    for student, track, amount, currency, status, refunded, when in paid:
        payments.append(
            w.conn.execute(
                "INSERT INTO payments (user_id, track, amount_cents, currency, status, refunded_amount_cents,"
                " succeeded_at, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id::text AS id",
                (student["id"], track, amount, currency, status, refunded, when, when),
            ).fetchone()["id"]
        )
    w.conn.execute(  # a payment that never succeeded is no revenue
        "INSERT INTO payments (user_id, track, amount_cents, currency, status, created_at)"
        " VALUES (%s, 'DP', 49900, 'USD', 'FAILED', %s)",
        (dp[2]["id"], at(0)),
    )
    # Tools: on Monday two succeeded and one failed; a week later one more succeeded.
    for student, tool, status, when in (
        (dp[0], "STUDENT_DATABASE", "SUCCEEDED", at(0)),
        (dp[1], "STUDENT_DATABASE", "SUCCEEDED", at(0)),
        (dp[2], "STUDENT_DATABASE", "FAILED", at(0, 1)),
        (fsd, "WORKSPACE", "SUCCEEDED", at(8)),
    ):
        w.conn.execute(
            "INSERT INTO tool_provisioning (user_id, tool, status, created_at, updated_at) VALUES (%s, %s, %s, %s, %s)",
            (student["id"], tool, status, when, when),
        )
    # Reviews: submitted Monday; decided after 1 h and 3 h on Monday, one still pending.
    project = w.project("DP", 1)["id"]
    deliverables = w.deliverables(project)
    for student in dp:
        w.progress(student, project)
    w.submission(dp[0], project, deliverables[0], status="APPROVED", submitted_at=at(0), reviewed_at=at(0, 1),
                 reviewer=admin["id"])  # fmt: skip
    w.submission(dp[1], project, deliverables[0], status="CHANGES_REQUESTED", submitted_at=at(0),
                 reviewed_at=at(0, 3), reviewer=admin["id"])  # fmt: skip
    w.submission(dp[2], project, deliverables[0], submitted_at=at(1))
    # Refunds: one approved (USD, Monday), one rejected (EUR, Tuesday).
    w.conn.execute(
        "INSERT INTO refund_requests (payment_id, user_id, amount_cents, status, decided_at, created_at)"
        " VALUES (%s, %s, 9900, 'APPROVED', %s, %s), (%s, %s, 45000, 'REJECTED', %s, %s)",
        (payments[0], dp[0]["id"], at(0, 5), at(0, 4), payments[1], dp[1]["id"], at(1, 5), at(1, 4)),
    )
    return {"admin": admin}


def test_series_by_day_and_by_week(stats_world: World) -> None:
    made = arrange(stats_world)
    admin = made["admin"]

    daily = stats(admin, **{"from": "2030-01-07", "to": "2030-01-15"}, bucket="day")
    assert daily["from"] == "2030-01-07" and daily["to"] == "2030-01-15" and daily["bucket"] == "day"
    assert daily["buckets"] == [(date(2030, 1, 7) + timedelta(days=n)).isoformat() for n in range(9)]
    assert daily["enrollments"] == [
        {"bucket": "2030-01-07", "track": "DP", "enrollments": 2},
        {"bucket": "2030-01-08", "track": "DP", "enrollments": 1},
        {"bucket": "2030-01-15", "track": "FSD", "enrollments": 1},
    ]
    assert daily["revenue"] == [
        {"bucket": "2030-01-07", "track": "DP", "currency": "EUR", "payments": 1, "gross_cents": 45000,
         "refunded_cents": 0},
        {"bucket": "2030-01-07", "track": "DP", "currency": "USD", "payments": 1, "gross_cents": 49900,
         "refunded_cents": 9900},
        {"bucket": "2030-01-08", "track": "DP", "currency": "USD", "payments": 1, "gross_cents": 49900,
         "refunded_cents": 0},
        {"bucket": "2030-01-15", "track": "FSD", "currency": "USD", "payments": 1, "gross_cents": 59900,
         "refunded_cents": 0},
    ]  # fmt: skip
    assert daily["provisioning"] == [
        {"bucket": "2030-01-07", "tool": "STUDENT_DATABASE", "status": "FAILED", "count": 1},
        {"bucket": "2030-01-07", "tool": "STUDENT_DATABASE", "status": "SUCCEEDED", "count": 2},
        {"bucket": "2030-01-15", "tool": "WORKSPACE", "status": "SUCCEEDED", "count": 1},
    ]
    assert daily["reviews"] == [
        {"bucket": "2030-01-07", "decided": 2, "approved": 1, "changes_requested": 1,
         "median_turnaround_seconds": pytest.approx(7200.0, rel=0.01),
         "p90_turnaround_seconds": pytest.approx(3600 + 0.9 * 7200, rel=0.01)},
    ]  # fmt: skip
    monday, tuesday = daily["waiting"]
    assert monday == {"bucket": "2030-01-07", "submitted": 2, "pending": 0,
                      "median_wait_seconds": pytest.approx(7200.0, rel=0.01),
                      "longest_pending_seconds": None}  # fmt: skip
    assert tuesday["bucket"] == "2030-01-08" and tuesday["submitted"] == 1 and tuesday["pending"] == 1
    waited = (datetime.now(UTC) - at(1)).total_seconds()  # still pending: until now (a date ahead here)
    assert tuesday["longest_pending_seconds"] == pytest.approx(waited, abs=60)
    assert tuesday["median_wait_seconds"] == pytest.approx(waited, rel=0.01)  # a histogram's bound (0021)
    assert daily["refunds"] == [
        {"bucket": "2030-01-07", "currency": "USD", "requested": 1, "approved": 1, "rejected": 0, "pending": 0,
         "failed": 0, "requested_cents": 9900, "approved_cents": 9900},
        {"bucket": "2030-01-08", "currency": "EUR", "requested": 1, "approved": 0, "rejected": 1, "pending": 0,
         "failed": 0, "requested_cents": 45000, "approved_cents": 0},
    ]  # fmt: skip

    # By ISO week: Monday's and Tuesday's rows together, the next week's apart; a range starting on
    # a Wednesday still buckets by the Monday of its week.
    weekly = stats(admin, **{"from": "2030-01-09", "to": "2030-01-20"}, bucket="week")
    assert weekly["buckets"] == ["2030-01-07", "2030-01-14"]
    assert weekly["enrollments"] == [{"bucket": "2030-01-14", "track": "FSD", "enrollments": 1}]
    weekly = stats(admin, **{"from": "2030-01-07", "to": "2030-01-20"}, bucket="week")
    assert weekly["enrollments"] == [
        {"bucket": "2030-01-07", "track": "DP", "enrollments": 3},
        {"bucket": "2030-01-14", "track": "FSD", "enrollments": 1},
    ]
    assert [(r["bucket"], r["decided"]) for r in weekly["reviews"]] == [("2030-01-07", 2)]
    assert [(r["bucket"], r["submitted"], r["pending"]) for r in weekly["waiting"]] == [("2030-01-07", 3, 1)]

    # Outside the range: nothing.
    empty = stats(admin, **{"from": "2030-03-01", "to": "2030-03-31"})
    assert empty["bucket"] == "day" and len(empty["buckets"]) == 31
    assert all(empty[k] == [] for k in ("revenue", "enrollments", "provisioning", "reviews", "waiting", "refunds"))


def test_defaults_and_no_series_without_parameters(admin_in_module) -> None:
    status, body = call("GET", STATS, admin_in_module)
    assert status == 200 and body["series"] is None
    series = stats(admin_in_module, bucket="day")
    today = datetime.now(UTC).date()
    assert series["to"] == today.isoformat() and series["from"] == (today - timedelta(days=29)).isoformat()
    assert len(series["buckets"]) == 30
    weekly = stats(admin_in_module, bucket="week")
    assert weekly["from"] == (today - timedelta(days=26 * 7 - 1)).isoformat()
    assert stats(admin_in_module, to="2030-12-31")["from"] == "2030-12-02"
    # The longest ranges each bucket allows.
    assert len(stats(admin_in_module, **{"from": "2030-01-01", "to": "2030-12-31"}, bucket="day")["buckets"]) == 365
    assert stats(admin_in_module, **{"from": "2028-01-01", "to": "2028-12-31"}, bucket="day")["to"] == "2028-12-31"


@pytest.fixture
def admin_in_module(world: World) -> dict[str, Any]:
    return world.user("admin", None, "PENDING_PAYMENT")


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"from": "2030-02-30"}, "query.from"),  # no such day
        ({"to": "2030-13-01"}, "query.to"),
        ({"from": "30-01-2030"}, "query.from"),  # not ISO
        ({"from": "2030-01-01T00:00:00Z"}, "query.from"),  # a date, not a time
        ({"from": "2030-01-10", "to": "2030-01-09"}, "query.from"),  # from after to
        ({"from": "2030-01-01", "to": "2031-01-02", "bucket": "day"}, "query.to"),  # 367 days by day
        ({"to": "2031-01-02", "from": "2030-01-01"}, "query.to"),  # day is the default bucket
        ({"from": "2020-01-01", "to": "2030-01-01", "bucket": "week"}, "query.to"),  # ten years of weeks
        ({"bucket": "month"}, "query.bucket"),
        ({"bucket": "DAY"}, "query.bucket"),
        ({"since": "2030-01-01"}, "query.since"),  # not a parameter of the route
    ],
)
def test_bad_ranges_are_422_naming_the_parameter(admin_in_module, query: dict[str, str], field: str) -> None:
    status, body = call("GET", STATS, admin_in_module, query=query)
    assert status == 422, body
    assert field in [d["field"] for d in body["error"]["details"]], body


def test_only_admins_read_the_series(world: World) -> None:
    query = {"from": "2030-01-01", "to": "2030-01-31", "bucket": "day"}
    event = http_api_event("GET", STATS, query=query)
    assert lambda_handler(event, LambdaContext("apranova-admin"))["statusCode"] == 401
    assert anonymous("GET", STATS) == 401
    for role, group in (("trainer", "trainers"), ("student", "students")):
        status, body = call("GET", STATS, world.user(role, "DP"), query=query, group=group)
        assert status == 403 and body["error"]["code"] == "permission_denied"
