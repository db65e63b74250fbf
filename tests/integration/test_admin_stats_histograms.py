"""The admin stats route reads what triggers keep (issue 18, migration 0021): the review turnaround
and waiting percentiles from log-scale histograms, the totals from counters, rollups and small
partial indexes. After every kind of write, the route's numbers are those computed from the facts:
counts exactly, percentiles within the documented bound (1 % of the value, or half a second).

Through the real handler on a fresh database of this test's own. The reference is the route's
former queries, which aggregated the facts themselves with ``percentile_cont`` (kept here as the
definition). The data is generated (seeded): turnarounds and waits from under a second to a month,
decisions made on another day or week than the submission, bulk and single-row writes.
"""

from __future__ import annotations

import math
import random
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
import pytest

from functions.admin import durations
from tests.integration import test_admin_users as admin_tests
from tests.integration.test_admin_users import World, call

module_url, stats_world = admin_tests.module_url, admin_tests.stats_world

STATS = "/api/admin/stats/"
# In the past (a pending submission waits until now), half an hour before a Monday's midnight UTC.
SUNDAY = datetime(2026, 3, 1, 23, 30, tzinfo=UTC)
FIRST, LAST = date(2026, 2, 25), date(2026, 4, 2)  # starts and ends in the middle of a week

DIRECT_SERIES = {
    "reviews": """
        SELECT (date_trunc(%(bucket)s, reviewed_at AT TIME ZONE 'UTC'))::date AS bucket, count(*) AS decided,
               count(*) FILTER (WHERE status = 'APPROVED') AS approved,
               count(*) FILTER (WHERE status = 'CHANGES_REQUESTED') AS changes_requested,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM reviewed_at - submitted_at))
                   AS median_turnaround_seconds,
               percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM reviewed_at - submitted_at))
                   AS p90_turnaround_seconds
        FROM submissions
        WHERE reviewed_at >= %(start)s AND reviewed_at < %(end)s AND status IN ('APPROVED', 'CHANGES_REQUESTED')
        GROUP BY 1 ORDER BY 1
    """,
    "waiting": """
        SELECT (date_trunc(%(bucket)s, submitted_at AT TIME ZONE 'UTC'))::date AS bucket, count(*) AS submitted,
               count(*) FILTER (WHERE status = 'PENDING') AS pending,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM (
                   CASE status WHEN 'PENDING' THEN now() WHEN 'SUPERSEDED' THEN updated_at ELSE reviewed_at END
               ) - submitted_at)) AS median_wait_seconds,
               max(extract(epoch FROM now() - submitted_at)) FILTER (WHERE status = 'PENDING')
                   AS longest_pending_seconds
        FROM submissions
        WHERE submitted_at >= %(start)s AND submitted_at < %(end)s
        GROUP BY 1 ORDER BY 1
    """,
}

DIRECT_TOTALS = {
    "enrollments": """
        SELECT t.code AS track, u.enrollment_status AS status, count(*) AS count
        FROM users u LEFT JOIN tracks t ON t.id = u.track_id
        WHERE u.role = 'student' AND u.deleted_at IS NULL
        GROUP BY t.code, u.enrollment_status
        ORDER BY t.code NULLS FIRST, u.enrollment_status
    """,
    "revenue": """
        SELECT track, currency::text AS currency, count(*) AS payments, sum(amount_cents)::bigint AS gross_cents,
               sum(refunded_amount_cents)::bigint AS refunded_cents,
               (sum(amount_cents) - sum(refunded_amount_cents))::bigint AS net_cents
        FROM payments WHERE status IN ('SUCCEEDED', 'PARTIALLY_REFUNDED', 'REFUNDED', 'DISPUTED')
        GROUP BY track, currency
        ORDER BY track, currency
    """,
    "review_turnaround": """
        SELECT count(*) AS decided,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM reviewed_at - submitted_at))
                   AS median_seconds,
               percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM reviewed_at - submitted_at))
                   AS p90_seconds
        FROM submissions
        WHERE status IN ('APPROVED', 'CHANGES_REQUESTED') AND reviewed_at IS NOT NULL
    """,
    "queue": """
        SELECT count(*) AS review_queue, min(submitted_at) AS oldest_pending_at,
               (SELECT count(*) FROM users u
                 WHERE u.role = 'student' AND u.enrollment_status = 'ENROLLED' AND u.deleted_at IS NULL
                   AND NOT EXISTS (SELECT 1 FROM trainer_assignments a WHERE a.student_id = u.id))
                   AS students_without_trainer
        FROM submissions WHERE status = 'PENDING'
    """,
}

PERCENTILES = ("median_turnaround_seconds", "p90_turnaround_seconds", "median_wait_seconds")


def within_bound(answered: float | None, exact: Any) -> bool:
    """The documented bound: 1 % of the exact value, or half a second (plus float rounding and the
    few milliseconds between the route's now() and the reference's)."""
    if exact is None or answered is None:
        return answered is None and exact is None
    exact = float(exact)
    return abs(answered - exact) <= durations.RELATIVE_ERROR * abs(exact) + durations.ABSOLUTE_ERROR_SECONDS + 1e-6


def assert_matches_the_facts(w: World, admin: dict[str, Any], first: date = FIRST, last: date = LAST) -> dict[str, Any]:
    """Totals and both buckets' review and waiting series against the facts; returns the series."""
    status, body = call("GET", STATS, admin)
    assert status == 200, body
    for name in ("enrollments", "revenue"):
        assert body[name] == w.conn.execute(DIRECT_TOTALS[name]).fetchall(), name
    exact = w.conn.execute(DIRECT_TOTALS["review_turnaround"]).fetchone()
    assert body["review_turnaround"]["decided"] == exact["decided"]
    for key in ("median_seconds", "p90_seconds"):
        assert within_bound(body["review_turnaround"][key], exact[key]), (key, body["review_turnaround"], exact)
    queue = w.conn.execute(DIRECT_TOTALS["queue"]).fetchone()
    assert body["review_queue"] == queue["review_queue"]
    assert body["students_without_trainer"] == queue["students_without_trainer"]
    oldest = body["oldest_pending_at"] and datetime.fromisoformat(body["oldest_pending_at"])
    assert oldest == queue["oldest_pending_at"]

    answered: dict[str, Any] = {}
    for bucket in ("day", "week"):
        query = {"from": first.isoformat(), "to": last.isoformat(), "bucket": bucket}
        status, body = call("GET", STATS, admin, query=query)
        assert status == 200, body
        window = {
            "start": datetime.combine(first, datetime.min.time(), UTC),
            "end": datetime.combine(last + timedelta(days=1), datetime.min.time(), UTC),
            "bucket": bucket,
        }
        for name, sql in DIRECT_SERIES.items():
            expected = w.conn.execute(sql, window).fetchall()
            got = body["series"][name]
            assert [r["bucket"] for r in got] == [r["bucket"].isoformat() for r in expected], (bucket, name)
            for row, want in zip(got, expected, strict=True):
                for key, value in want.items():
                    if key == "bucket":
                        continue
                    if key in PERCENTILES:
                        assert within_bound(row[key], value), (bucket, name, row, want)
                    elif key == "longest_pending_seconds":
                        assert (row[key] is None) == (value is None) and (
                            value is None or row[key] == pytest.approx(float(value), abs=5)
                        ), (bucket, name, row, want)
                    else:
                        assert row[key] == value, (bucket, name, key, row, want)
        answered[bucket] = body["series"]
    return answered


def _students(w: World, count: int, track: str = "DP") -> tuple[list[dict[str, Any]], int, list[int]]:
    project = w.project(track, 1)["id"]
    students = [w.user("student", track, "ENROLLED") for _ in range(count)]
    for student in students:
        w.progress(student, project)
    return students, project, w.deliverables(project)


def _generated(
    rng: random.Random, students: list[dict[str, Any]], project: int, deliverables: list[int]
) -> list[tuple]:
    """Each student x deliverable: decided attempts (turnarounds from under a second to a month,
    log-uniform), a superseded one, and a last attempt pending for every other pair."""
    rows = []
    for s, student in enumerate(students):
        for d, deliverable in enumerate(deliverables):
            attempts = rng.randint(2, 6)
            for attempt in range(1, attempts + 1):
                submitted = SUNDAY + timedelta(seconds=rng.uniform(-5 * 86400, 20 * 86400))
                last = attempt == attempts
                if last and (s + d) % 2 == 0:
                    rows.append((student["id"], project, deliverable, attempt, "PENDING", None, submitted))
                    continue
                if not last and attempt == 1 and d == 0:
                    # superseded: its wait ends at updated_at (now, set by the trigger)
                    rows.append((student["id"], project, deliverable, attempt, "SUPERSEDED", None, submitted))
                    continue
                if rng.random() < 0.05:
                    seconds = rng.uniform(0, 1)
                else:
                    seconds = 10 ** rng.uniform(0, 6.4)  # 1 s .. about a month
                status = "APPROVED" if last else "CHANGES_REQUESTED"
                rows.append(
                    (student["id"], project, deliverable, attempt, status, submitted + timedelta(seconds=seconds),
                     submitted)
                )  # fmt: skip
    return rows


def _insert(conn: psycopg.Connection, rows: list[tuple], reviewer: str) -> None:
    """One bulk statement, as a seed or a migration writes."""
    columns = list(zip(*rows, strict=True))
    conn.execute(
        """
        INSERT INTO submissions (student_id, project_id, deliverable_id, attempt, submission_url, status, feedback,
                                 reviewed_by, reviewed_at, submitted_at)
        SELECT s, p, d, a, 'https://example.com/work', st,
               CASE WHEN st = 'CHANGES_REQUESTED' THEN 'Please fix' END,
               CASE WHEN r IS NOT NULL THEN %s::uuid END, r, sub
        FROM unnest(%s::uuid[], %s::int[], %s::int[], %s::int[], %s::text[], %s::timestamptz[], %s::timestamptz[])
            AS x (s, p, d, a, st, r, sub)
        """,
        (reviewer, *[list(c) for c in columns]),
    )


def test_the_histograms_and_counters_follow_every_write(stats_world: World) -> None:
    w = stats_world
    rng = random.Random(18)
    admin = w.user("admin", None, "PENDING_PAYMENT")
    trainer = w.user("trainer", "DP")

    # Empty: no rows, no percentiles, nothing pending.
    empty = assert_matches_the_facts(w, admin)
    assert empty["day"]["reviews"] == [] and empty["week"]["waiting"] == []

    students, project, deliverables = _students(w, 8)
    others = [w.user("student", "FSD", "ENROLLED"), w.user("student", None, "PENDING_PAYMENT")]
    for student in students[:5]:
        w.assign(student, trainer)
    _insert(w.conn, _generated(rng, students, project, deliverables), admin["id"])
    day = assert_matches_the_facts(w, admin)["day"]
    assert sum(r["decided"] for r in day["reviews"]) > 100 and any(r["pending"] for r in day["waiting"])
    assert others  # counted in the enrollments totals

    # A decision of a pending submission (single row), days later: its wait ends, a review appears.
    pending = w.conn.execute(
        "SELECT id, submitted_at FROM submissions WHERE status = 'PENDING' ORDER BY submitted_at LIMIT 3"
    ).fetchall()
    w.conn.execute(
        "UPDATE submissions SET status = 'APPROVED', reviewed_by = %s, reviewed_at = %s WHERE id = %s",
        (trainer["id"], pending[0]["submitted_at"] + timedelta(days=9, seconds=7), pending[0]["id"]),
    )
    # One sent back for changes and one superseded, in one statement.
    w.conn.execute(
        """
        UPDATE submissions SET
            status = CASE WHEN id = %(a)s THEN 'CHANGES_REQUESTED' ELSE 'SUPERSEDED' END,
            feedback = CASE WHEN id = %(a)s THEN 'Please fix' END,
            reviewed_by = CASE WHEN id = %(a)s THEN %(t)s::uuid END,
            reviewed_at = CASE WHEN id = %(a)s THEN submitted_at + interval '0.4 seconds' END
        WHERE id IN (%(a)s, %(b)s)
        """,
        {"a": pending[1]["id"], "b": pending[2]["id"], "t": trainer["id"]},
    )
    assert_matches_the_facts(w, admin)

    # A decision moved to another day and week (a correction), and every turnaround of one student
    # doubled (bulk): rows move between bins and buckets.
    w.conn.execute(
        "UPDATE submissions SET reviewed_at = reviewed_at + interval '8 days' WHERE id = ("
        " SELECT id FROM submissions WHERE status = 'APPROVED' ORDER BY reviewed_at LIMIT 1)"
    )
    w.conn.execute(
        "UPDATE submissions SET reviewed_at = reviewed_at + (reviewed_at - submitted_at)"
        " WHERE student_id = %s AND reviewed_at IS NOT NULL",
        (students[3]["id"],),
    )
    assert_matches_the_facts(w, admin)

    # A rolled-back transaction leaves nothing behind.
    with pytest.raises(RuntimeError), w.conn.transaction():
        w.conn.execute(
            "UPDATE submissions SET reviewed_at = reviewed_at + interval '1 day' WHERE reviewed_at IS NOT NULL"
        )
        w.conn.execute("DELETE FROM trainer_assignments")
        w.conn.execute(
            "UPDATE users SET enrollment_status = 'COMPLETED' WHERE role = 'student' AND track_id IS NOT NULL"
        )
        raise RuntimeError("rolled back")
    assert_matches_the_facts(w, admin)

    # Trainers: assigned, reassigned, ended; a student completing, one withdrawn.
    other_trainer = w.user("trainer", "DP")
    w.assign(students[6], trainer)
    w.conn.execute(
        "UPDATE trainer_assignments SET trainer_id = %s WHERE student_id = %s", (other_trainer["id"], students[0]["id"])
    )
    w.conn.execute(
        "UPDATE trainer_assignments SET student_id = %s WHERE student_id = %s", (students[7]["id"], students[1]["id"])
    )
    w.conn.execute("DELETE FROM trainer_assignments WHERE student_id = %s", (students[2]["id"],))
    w.conn.execute("UPDATE users SET enrollment_status = 'COMPLETED' WHERE id = %s", (students[4]["id"],))
    w.conn.execute("UPDATE users SET enrollment_status = 'REFUNDED' WHERE id = %s", (students[5]["id"],))
    assert w.conn.execute(
        "SELECT count(*) AS n FROM users WHERE has_trainer <> EXISTS ("
        " SELECT 1 FROM trainer_assignments a WHERE a.student_id = users.id)"
    ).fetchone()["n"] == 0  # fmt: skip
    # Money: a paid payment without succeeded_at (a dispute of one never marked paid) still counts.
    w.payment(students[0], "DP", 49900, "SUCCEEDED")
    w.payment(students[1], "DP", 49900, "DISPUTED")
    w.payment(others[0], "FSD", 59900, "PARTIALLY_REFUNDED", currency="EUR", refunded=900)
    assert_matches_the_facts(w, admin)

    # A purge: the person, their submissions (cascade), their assignment; a soft-deleted account.
    w.conn.execute("DELETE FROM users WHERE id = %s", (students[3]["id"],))
    w.conn.execute("UPDATE users SET deleted_at = now() WHERE id = %s", (students[6]["id"],))
    assert_matches_the_facts(w, admin)

    # Every submission gone: empty again, and the totals with them.
    w.conn.execute("DELETE FROM submissions")
    day = assert_matches_the_facts(w, admin)["day"]
    assert day["reviews"] == [] and day["waiting"] == []


def test_percentiles_from_bins_are_within_the_bound_of_the_exact_ones() -> None:
    """The pure half: durations spread over many orders of magnitude, and small samples (where the
    interpolation between two values matters), against percentile_cont computed exactly."""
    rng = random.Random(21)
    for size in (1, 2, 3, 5, 10, 101, 2000):
        for _ in range(20):
            values = [10 ** rng.uniform(-1, 7) * rng.choice((1, 1, 1, -1)) for _ in range(size)]
            counts: dict[int, int] = {}
            for value in values:
                counts[durations.bin_of(value)] = counts.get(durations.bin_of(value), 0) + 1
            for p in (0.0, 0.1, 0.5, 0.9, 1.0):
                exact = admin_tests.percentile_cont(values, p)
                # The two values interpolated between (of one sign in practice; the larger size when
                # a negative duration, clock skew, meets a positive one).
                ordered, rank = sorted(values), p * (len(values) - 1)
                around = max(abs(ordered[math.floor(rank)]), abs(ordered[math.ceil(rank)]))
                bound = durations.RELATIVE_ERROR * around + durations.ABSOLUTE_ERROR_SECONDS + 1e-9
                assert abs(durations.percentile(counts, p) - exact) <= bound, (values, p)
    assert durations.percentile({}, 0.5) is None and durations.percentile({-1: 4}, 0.5) is None


def test_the_database_bins_durations_as_the_reader_expects(stats_world: World) -> None:
    """stats_seconds_bin (SQL) and durations.bin_of (Python) agree, bin edges included."""
    edges = [durations.GROWTH**k for k in (1, 2, 50, 500, 900)]
    values = [0.0, 0.2, 0.999999, 1.0, 1.5, 59.0, 3600.0, 86400.0, 2.6e6, 3.2e7, -0.3, -1.0, -7200.0]
    values += [e * f for e in edges for f in (0.999999, 1.000001)]
    rows = stats_world.conn.execute(
        "SELECT v, stats_seconds_bin(v) AS bin FROM unnest(%s::float8[]) v", (values,)
    ).fetchall()
    assert [r["bin"] for r in rows] == [durations.bin_of(v) for v in values]
    assert stats_world.conn.execute("SELECT stats_seconds_bin(NULL) AS bin").fetchone()["bin"] == -1


def test_the_wait_of_submissions_pending_now(stats_world: World) -> None:
    """Pending for more than 150 hours: taken at the middle of the hour they came in; younger: read
    from the queue's index. Either side of that line, and as time passes, within the bound."""
    w = stats_world
    admin = w.user("admin", None, "PENDING_PAYMENT")
    students, project, deliverables = _students(w, 3)
    now = w.conn.execute("SELECT now() AS now").fetchone()["now"]
    ages = [0.01, 2, 30, 149.2, 149.9, 150.1, 151, 152.5, 200, 280]  # hours
    rows = []
    for n, hours in enumerate(ages):
        student, deliverable = students[n % 3], deliverables[n // 3]
        rows.append((student["id"], project, deliverable, 1, "PENDING", None, now - timedelta(hours=hours)))
    for n, hours in enumerate((1, 60, 90)):  # and some decided, a day after they came in
        submitted = now - timedelta(hours=hours + 24)
        rows.append(
            (students[n]["id"], project, deliverables[-1], 2, "APPROVED", submitted + timedelta(hours=24), submitted)
        )
    _insert(w.conn, rows, admin["id"])
    today = now.astimezone(UTC).date()
    for first in (today - timedelta(days=12), today - timedelta(days=2), today):
        series = assert_matches_the_facts(w, admin, first, today)
        assert sum(r["pending"] for r in series["day"]["waiting"]) == sum(
            1 for hours in ages if now - timedelta(hours=hours) >= datetime.combine(first, datetime.min.time(), UTC)
        )
