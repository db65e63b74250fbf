"""The admin's additive series read daily rollups kept by triggers (issue 18, migration 0020): after
every kind of write the route's series equal a direct computation from the facts.

Through the real handler on a fresh database of this test's own. The reference is the series'
former queries, which aggregated the facts themselves (kept here as the definition of what each
series counts). Writes are made with SQL as every writer makes them: single rows and bulk
statements, updates that move a row to another day or status, refunds that change an old day's
numbers, a purge's cascade, a rolled-back transaction, and rows of today (a partial day).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
import pytest

from tests.integration import test_admin_users as admin_tests
from tests.integration.test_admin_users import World, call

module_url, stats_world = admin_tests.module_url, admin_tests.stats_world

STATS = "/api/admin/stats/"
MONDAY = datetime(2030, 3, 4, 23, 30, tzinfo=UTC)  # a Monday, half an hour before midnight UTC
SERIES = ("revenue", "enrollments", "provisioning", "refunds")

# The former live queries: what each series counts, straight from the facts.
DIRECT = {
    "revenue": """
        SELECT (date_trunc(%(bucket)s, succeeded_at AT TIME ZONE 'UTC'))::date AS bucket, track,
               currency::text AS currency, count(*) AS payments, sum(amount_cents)::bigint AS gross_cents,
               sum(refunded_amount_cents)::bigint AS refunded_cents
        FROM payments
        WHERE succeeded_at >= %(start)s AND succeeded_at < %(end)s
          AND status IN ('SUCCEEDED', 'PARTIALLY_REFUNDED', 'REFUNDED', 'DISPUTED')
        GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
    """,
    "enrollments": """
        SELECT (date_trunc(%(bucket)s, u.enrolled_at AT TIME ZONE 'UTC'))::date AS bucket, t.code AS track,
               count(*) AS enrollments
        FROM users u JOIN tracks t ON t.id = u.track_id
        WHERE u.enrolled_at >= %(start)s AND u.enrolled_at < %(end)s AND u.role = 'student'
        GROUP BY 1, 2 ORDER BY 1, 2
    """,
    "provisioning": """
        SELECT (date_trunc(%(bucket)s, updated_at AT TIME ZONE 'UTC'))::date AS bucket, tool, status, count(*) AS count
        FROM tool_provisioning
        WHERE updated_at >= %(start)s AND updated_at < %(end)s
        GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
    """,
    "refunds": """
        SELECT (date_trunc(%(bucket)s, r.created_at AT TIME ZONE 'UTC'))::date AS bucket, p.currency::text AS currency,
               count(*) AS requested,
               count(*) FILTER (WHERE r.status = 'APPROVED') AS approved,
               count(*) FILTER (WHERE r.status = 'REJECTED') AS rejected,
               count(*) FILTER (WHERE r.status = 'PENDING') AS pending,
               count(*) FILTER (WHERE r.status = 'FAILED') AS failed,
               sum(r.amount_cents)::bigint AS requested_cents,
               coalesce(sum(r.amount_cents) FILTER (WHERE r.status = 'APPROVED'), 0)::bigint AS approved_cents
        FROM refund_requests r JOIN payments p ON p.id = r.payment_id
        WHERE r.created_at >= %(start)s AND r.created_at < %(end)s
        GROUP BY 1, 2 ORDER BY 1, 2
    """,
}


def at(days: float, hours: float = 0) -> datetime:
    return MONDAY + timedelta(days=days, hours=hours)


def direct(conn: psycopg.Connection, first: date, last: date, bucket: str) -> dict[str, list[dict[str, Any]]]:
    window = {
        "start": datetime.combine(first, datetime.min.time(), UTC),
        "end": datetime.combine(last + timedelta(days=1), datetime.min.time(), UTC),
        "bucket": bucket,
    }
    found = {}
    for name, query in DIRECT.items():
        rows = conn.execute(query, window).fetchall()
        found[name] = [{**r, "bucket": r["bucket"].isoformat()} for r in rows]
    return found


def assert_series_match(w: World, admin: dict[str, Any], first: date, last: date) -> dict[str, Any]:
    """Both buckets: what the route answers is what the facts say (and not trivially empty)."""
    answered = {}
    for bucket in ("day", "week"):
        status, body = call("GET", STATS, admin, query={"from": first.isoformat(), "to": last.isoformat(),
                                                          "bucket": bucket})  # fmt: skip
        assert status == 200, body
        expected = direct(w.conn, first, last, bucket)
        for name in SERIES:
            assert body["series"][name] == expected[name], (bucket, name)
        answered[bucket] = body["series"]
    return answered


def _tool(w: World, student: dict[str, Any], tool: str, status: str, when: datetime) -> None:
    w.conn.execute(
        "INSERT INTO tool_provisioning (user_id, tool, status, created_at, updated_at) VALUES (%s, %s, %s, %s, %s)",
        (student["id"], tool, status, when, when),
    )


def _paid(w: World, student: dict[str, Any], track: str, amount: int, currency: str, when: datetime) -> str:
    return w.conn.execute(
        "INSERT INTO payments (user_id, track, amount_cents, currency, status, succeeded_at, created_at)"
        " VALUES (%s, %s, %s, %s, 'SUCCEEDED', %s, %s) RETURNING id::text AS id",
        (student["id"], track, amount, currency, when, when),
    ).fetchone()["id"]


def test_the_rolled_up_series_follow_every_write_exactly(stats_world: World) -> None:
    w = stats_world
    admin = w.user("admin", None, "PENDING_PAYMENT")
    first, last = date(2030, 3, 1), date(2030, 3, 20)
    empty = assert_series_match(w, admin, first, last)
    assert all(empty["day"][name] == [] for name in SERIES)

    # Students enrolled either side of midnight UTC, and in the next ISO week.
    students = [w.user("student", track, "ENROLLED") for track in ("DP", "DP", "FSD", "DP")]
    for student, when in zip(students, (at(0), at(0, 1), at(0, 1), at(7)), strict=True):
        w.conn.execute("UPDATE users SET enrolled_at = %s WHERE id = %s", (when, student["id"]))
    # Payments the same way, in two currencies; a payment that never succeeded counts nowhere.
    payments = [
        _paid(w, students[0], "DP", 49900, "USD", at(0)),
        _paid(w, students[1], "DP", 45000, "EUR", at(0, 1)),
        _paid(w, students[2], "FSD", 59900, "USD", at(0, 2)),
    ]
    w.conn.execute(
        "INSERT INTO payments (user_id, track, amount_cents, currency, status, created_at)"
        " VALUES (%s, 'DP', 49900, 'USD', 'FAILED', %s)",
        (students[3]["id"], at(7)),
    )
    for student, tool, status, when in (
        (students[0], "STUDENT_DATABASE", "IN_PROGRESS", at(0)),
        (students[1], "STUDENT_DATABASE", "SUCCEEDED", at(0, 1)),
        (students[2], "WORKSPACE", "FAILED", at(0, 2)),
    ):
        _tool(w, student, tool, status, when)
    w.conn.execute(
        "INSERT INTO refund_requests (payment_id, user_id, amount_cents, created_at)"
        " VALUES (%s, %s, 49900, %s), (%s, %s, 45000, %s)",
        (payments[0], students[0]["id"], at(1), payments[1], students[1]["id"], at(1, 1)),
    )
    before = assert_series_match(w, admin, first, last)
    assert [(r["bucket"], r["track"], r["enrollments"]) for r in before["day"]["enrollments"]] == [
        ("2030-03-04", "DP", 1),
        ("2030-03-05", "DP", 1),
        ("2030-03-05", "FSD", 1),
        ("2030-03-11", "DP", 1),
    ]
    assert [(r["bucket"], r["enrollments"]) for r in before["week"]["enrollments"]] == [
        ("2030-03-04", 2),
        ("2030-03-04", 1),
        ("2030-03-11", 1),
    ]

    # An old day's numbers change: a refund (partial, then full), requests decided, a tool that
    # finished (it moves to the day of its change, and to its new status), a payment disputed.
    w.conn.execute("UPDATE payments SET refunded_amount_cents = 9900, status = 'PARTIALLY_REFUNDED' WHERE id = %s",
                   (payments[0],))  # fmt: skip
    w.conn.execute(
        "UPDATE refund_requests SET status = 'APPROVED', decided_at = %s WHERE payment_id = %s", (at(2), payments[0])
    )
    w.conn.execute(
        "UPDATE refund_requests SET status = 'REJECTED', decided_at = %s WHERE payment_id = %s", (at(2), payments[1])
    )
    w.conn.execute("UPDATE payments SET refunded_amount_cents = 49900, status = 'REFUNDED' WHERE id = %s",
                   (payments[0],))  # fmt: skip
    w.conn.execute(
        "UPDATE tool_provisioning SET status = 'SUCCEEDED', updated_at = %s WHERE user_id = %s",
        (at(2), students[0]["id"]),
    )
    w.conn.execute("UPDATE payments SET disputed = true, dispute_status = 'OPEN', status = 'DISPUTED' WHERE id = %s",
                   (payments[2],))  # fmt: skip
    # Writes that change nothing a series counts leave them as they are.
    w.conn.execute("UPDATE users SET name = 'Renamed' WHERE id = %s", (students[0]["id"],))
    after = assert_series_match(w, admin, first, last)
    revenue = {(r["bucket"], r["currency"]): r for r in after["day"]["revenue"]}
    assert revenue[("2030-03-04", "USD")]["refunded_cents"] == 49900
    refunds = {r["currency"]: r for r in after["day"]["refunds"]}
    assert (refunds["USD"]["approved"], refunds["USD"]["approved_cents"], refunds["EUR"]["rejected"]) == (1, 49900, 1)
    # The tool's change is dated now (its updated_at trigger): it left March 4 for today.
    assert [(r["bucket"], r["status"]) for r in after["day"]["provisioning"] if r["tool"] == "STUDENT_DATABASE"] == [
        ("2030-03-05", "SUCCEEDED")
    ]

    # A bulk statement (as a seed or a migration writes), then a rolled-back one: counted once, and
    # not at all.
    bulk = [w.user("student", "FSD", "ENROLLED") for _ in range(5)]
    w.conn.execute(
        "UPDATE users SET enrolled_at = %s + (row_number * interval '7 hours')"
        " FROM (SELECT id, row_number() OVER (ORDER BY id) FROM users WHERE id = ANY(%s::uuid[])) n"
        " WHERE users.id = n.id",
        (at(3), [s["id"] for s in bulk]),
    )
    with pytest.raises(psycopg.errors.RaiseException), w.conn.transaction():
        w.conn.execute("UPDATE users SET enrolled_at = %s WHERE id = %s", (at(4), bulk[0]["id"]))
        w.conn.execute("DO $$ BEGIN RAISE EXCEPTION 'rolled back'; END $$")
    # A purge's cascade: the person and their tool records go, and leave the series.
    _tool(w, bulk[1], "WORKSPACE", "SUCCEEDED", at(3, 9))
    assert_series_match(w, admin, first, last)
    w.conn.execute("DELETE FROM users WHERE id = %s", (bulk[1]["id"],))
    assert_series_match(w, admin, first, last)

    # Today: a partial day counts what is there now.
    today = datetime.now(UTC)
    student = w.user("student", "DP", "ENROLLED")
    w.conn.execute("UPDATE users SET enrolled_at = %s WHERE id = %s", (today, student["id"]))
    _tool(w, student, "JUPYTER", "SUCCEEDED", today)
    now = assert_series_match(w, admin, today.date() - timedelta(days=2), today.date())
    assert [r["enrollments"] for r in now["day"]["enrollments"] if r["bucket"] == today.date().isoformat()] == [1]


def test_payments_of_one_track_and_day_do_not_queue_on_one_rollup_row(stats_world: World) -> None:
    """Migration 0022: a rollup row is locked from the write that moves its count until the commit,
    so with one row per day and key every payment of a track on one day waited for the one before
    (the 50-payer burst queued its webhooks). The rows are sharded by the fact's id: a payment
    recorded while another of its track and day is still uncommitted does not wait, and the series
    stay exact once both commit."""
    w = stats_world
    admin = w.user("admin", None, "PENDING_PAYMENT")

    def pending() -> tuple[str, int]:
        student = w.user("student", "DP", "PENDING_PAYMENT")
        row = w.conn.execute(
            "INSERT INTO payments (user_id, track, amount_cents, currency, status, created_at)"
            " VALUES (%s, 'DP', 49900, 'USD', 'PENDING', %s)"
            " RETURNING id::text AS id, hashtext(id::text) & 15 AS shard",
            (student["id"], at(0)),
        ).fetchone()
        return row["id"], row["shard"]

    first, first_shard = pending()
    second, second_shard = pending()
    while second_shard == first_shard:  # two payments in two shards (1 in 16 share one)
        second, second_shard = pending()
    paid = "UPDATE payments SET status = 'SUCCEEDED', succeeded_at = %s WHERE id = %s"
    with psycopg.connect(w.conn.info.dsn) as one, psycopg.connect(w.conn.info.dsn) as other:
        one.execute(paid, (at(0, 1), first))  # uncommitted: its rollup row stays locked
        other.execute("SET lock_timeout = '2s'")
        other.execute(paid, (at(0, 2), second))  # LockNotAvailable if it waited on the same row
        other.commit()
        one.commit()
    answered = assert_series_match(w, admin, date(2030, 3, 1), date(2030, 3, 10))
    assert [(r["bucket"], r["track"], r["payments"], r["gross_cents"]) for r in answered["day"]["revenue"]] == [
        ("2030-03-05", "DP", 2, 99800)
    ]
