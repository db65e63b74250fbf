"""SQL of the admin domain. Writes take the caller's cursor (one transaction per use case)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from psycopg import Cursor, sql

from apranova import db
from functions.admin import durations


def lock_user(cur: Cursor[Any], user_id: str) -> dict[str, Any] | None:
    return cur.execute(
        "SELECT id::text AS id, email::text AS email, role FROM users WHERE id = %s AND deleted_at IS NULL FOR UPDATE",
        (user_id,),
    ).fetchone()


def lock_admins(cur: Cursor[Any]) -> list[str]:
    """The active admins, locked so two concurrent demotions cannot both see "another admin"."""
    rows = cur.execute(
        "SELECT id::text AS id FROM users WHERE role = 'admin' AND is_active AND deleted_at IS NULL FOR UPDATE"
    ).fetchall()
    return [row["id"] for row in rows]


def set_role(cur: Cursor[Any], user_id: str, role: str) -> None:
    cur.execute("UPDATE users SET role = %s WHERE id = %s", (role, user_id))


def lock_enrollment(cur: Cursor[Any], user_id: str) -> dict[str, Any] | None:
    """The user's enrollment state, locked so two admins cannot start two enrollments at once."""
    return cur.execute(
        """
        SELECT u.id::text AS id, u.role, u.enrollment_status, u.provisioning_status, t.code AS track
        FROM users u LEFT JOIN tracks t ON t.id = u.track_id
        WHERE u.id = %s AND u.deleted_at IS NULL
        FOR UPDATE OF u
        """,
        (user_id,),
    ).fetchone()


def track_is_active(cur: Cursor[Any], code: str) -> bool | None:
    """True/False for an existing track, None for an unknown one."""
    row = cur.execute("SELECT is_active FROM tracks WHERE code = %s", (code,)).fetchone()
    return None if row is None else bool(row["is_active"])


def mark_provisioning_started(cur: Cursor[Any], user_id: str) -> None:
    cur.execute(
        "UPDATE users SET provisioning_status = 'IN_PROGRESS', provisioning_error = NULL WHERE id = %s", (user_id,)
    )


# --- users list and detail ------------------------------------------------------------------------

_USER = sql.SQL(
    "u.id::text AS id, u.email::text AS email, u.name, u.role, t.code AS track, u.enrollment_status,"
    " u.provisioning_status, u.created_at, u.last_login_at"
)


def like_prefix(text: str) -> str:
    """``text%`` for LIKE, with LIKE's own characters taken literally."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def users(
    role: str | None,
    track: str | None,
    status: str | None,
    prefix: str | None,
    after: list[Any] | None,
    limit: int,
    provisioning: str | None = None,
) -> list[dict[str, Any]]:
    """Newest first, keyset on (created_at, id): each filter has its (filter, created_at, id) index;
    ``prefix`` is the start of the email or of the name, in any case (users_email_prefix and
    users_name_prefix, lower(...) text_pattern_ops: LIKE 'x%' is a range of the index)."""
    clauses, params = [sql.SQL("u.deleted_at IS NULL")], []
    if role:
        clauses.append(sql.SQL("u.role = %s"))
        params.append(role)
    if track:
        clauses.append(sql.SQL("u.track_id = (SELECT id FROM tracks WHERE code = %s)"))
        params.append(track)
    if status:
        clauses.append(sql.SQL("u.enrollment_status = %s"))
        params.append(status)
    if provisioning:
        clauses.append(sql.SQL("u.provisioning_status = %s"))
        params.append(provisioning)
    if prefix:
        clauses.append(sql.SQL("(lower(u.email::text) LIKE %s OR lower(u.name) LIKE %s)"))
        params.extend([like_prefix(prefix.lower())] * 2)
    if after is not None:
        clauses.append(sql.SQL("(u.created_at, u.id) < (%s, %s)"))
        params.extend(after)
    query = sql.SQL(
        "SELECT {columns} FROM users u LEFT JOIN tracks t ON t.id = u.track_id WHERE {where}"
        " ORDER BY u.created_at DESC, u.id DESC LIMIT %s"
    ).format(columns=_USER, where=sql.SQL(" AND ").join(clauses))
    return db.connection().execute(query, (*params, limit + 1)).fetchall()


def profile(cur: Cursor[Any], user_id: str) -> dict[str, Any] | None:
    return cur.execute(
        sql.SQL(
            "SELECT {columns}, u.track_id, u.email_verified, u.is_active, u.tools_provisioned, u.provisioning_error,"
            " u.provisioned_at, u.enrolled_at, u.completed_at, u.updated_at"
            " FROM users u LEFT JOIN tracks t ON t.id = u.track_id WHERE u.id = %s AND u.deleted_at IS NULL"
        ).format(columns=_USER),
        (user_id,),
    ).fetchone()


# Paid: every status a payment reaches only after its money arrived.
PAID = ("SUCCEEDED", "PARTIALLY_REFUNDED", "REFUNDED", "DISPUTED")


def payments_summary(cur: Cursor[Any], user_id: str) -> dict[str, Any]:
    totals = cur.execute(
        """
        SELECT currency::text AS currency, sum(amount_cents)::bigint AS paid_cents,
               sum(refunded_amount_cents)::bigint AS refunded_cents,
               (sum(amount_cents) - sum(refunded_amount_cents))::bigint AS net_cents
        FROM payments WHERE user_id = %s AND status = ANY(%s) GROUP BY currency ORDER BY currency
        """,
        (user_id, list(PAID)),
    ).fetchall()
    recent = cur.execute(
        """
        SELECT id::text AS id, track, amount_cents, currency::text AS currency, status, refunded_amount_cents,
               created_at, succeeded_at, count(*) OVER () AS total
        FROM payments WHERE user_id = %s ORDER BY created_at DESC, id DESC LIMIT 5
        """,
        (user_id,),
    ).fetchall()
    return {"count": recent[0]["total"] if recent else 0, "totals": totals, "recent": recent}


def progress(cur: Cursor[Any], user_id: str, track_id: int) -> list[dict[str, Any]]:
    """Every active project of the track in order; no progress row is LOCKED."""
    return cur.execute(
        """
        SELECT p.id AS project_id, p.number, p.title, coalesce(sp.status, 'LOCKED') AS status,
               sp.unlocked_at, sp.started_at, sp.submitted_at, sp.approved_at,
               (SELECT count(*) FROM project_steps s WHERE s.project_id = p.id AND s.is_active) AS steps_total,
               (SELECT count(*) FROM step_completions c JOIN project_steps s ON s.id = c.step_id
                 WHERE c.student_id = %(user)s AND c.project_id = p.id AND s.is_active) AS steps_completed,
               (SELECT count(*) FROM submissions x
                 WHERE x.student_id = %(user)s AND x.project_id = p.id AND x.status = 'PENDING') AS pending_submissions
        FROM projects p
        LEFT JOIN student_progress sp ON sp.project_id = p.id AND sp.student_id = %(user)s
        WHERE p.track_id = %(track)s AND p.is_active
        ORDER BY p.number
        """,
        {"user": user_id, "track": track_id},
    ).fetchall()


def assigned_trainer(cur: Cursor[Any], student_id: str) -> dict[str, Any] | None:
    return cur.execute(
        """
        SELECT u.id::text AS id, u.email::text AS email, u.name, a.assigned_at, a.assigned_by::text AS assigned_by
        FROM trainer_assignments a JOIN users u ON u.id = a.trainer_id
        WHERE a.student_id = %s
        """,
        (student_id,),
    ).fetchone()


def tools(cur: Cursor[Any], user_id: str) -> list[dict[str, Any]]:
    return cur.execute(
        """
        SELECT tool, status, access_url, error, attempts, provisioned_at, deprovisioned_at, last_activity_at,
               updated_at
        FROM tool_provisioning WHERE user_id = %s ORDER BY tool
        """,
        (user_id,),
    ).fetchall()


# --- trainer assignment ---------------------------------------------------------------------------


def lock_student(cur: Cursor[Any], user_id: str) -> dict[str, Any] | None:
    """The student's row, locked so two admins assigning at once are serialised."""
    return cur.execute(
        """
        SELECT u.id::text AS id, u.role, u.enrollment_status, u.track_id, t.code AS track
        FROM users u LEFT JOIN tracks t ON t.id = u.track_id
        WHERE u.id = %s AND u.deleted_at IS NULL
        FOR UPDATE OF u
        """,
        (user_id,),
    ).fetchone()


def trainer_candidate(cur: Cursor[Any], trainer_id: str) -> dict[str, Any] | None:
    return cur.execute(
        "SELECT id::text AS id, role, track_id, is_active FROM users WHERE id = %s AND deleted_at IS NULL",
        (trainer_id,),
    ).fetchone()


def current_assignment(cur: Cursor[Any], student_id: str) -> dict[str, Any] | None:
    return cur.execute(
        "SELECT trainer_id::text AS trainer_id, track, assigned_at, assigned_by::text AS assigned_by"
        " FROM trainer_assignments WHERE student_id = %s",
        (student_id,),
    ).fetchone()


def upsert_assignment(
    cur: Cursor[Any], student_id: str, trainer_id: str, track: str, assigned_by: str
) -> dict[str, Any]:
    return db.one(
        cur.execute(
            """
            INSERT INTO trainer_assignments (student_id, trainer_id, track, assigned_by) VALUES (%s, %s, %s, %s)
            ON CONFLICT (student_id) DO UPDATE
                SET trainer_id = EXCLUDED.trainer_id, track = EXCLUDED.track,
                    assigned_by = EXCLUDED.assigned_by, assigned_at = now()
            RETURNING assigned_at, assigned_by::text AS assigned_by
            """,
            (student_id, trainer_id, track, assigned_by),
        )
    )


# --- submissions ----------------------------------------------------------------------------------

_SUBMISSION = sql.SQL(
    "s.id::text AS id, s.student_id::text AS student_id, u.email::text AS student_email, t.code AS track,"
    " s.project_id, p.number AS project_number, p.title AS project_title, s.deliverable_id,"
    " d.title AS deliverable_title, d.deliverable_type, s.attempt, s.status, s.submitted_at, s.reviewed_at,"
    " s.reviewed_by::text AS reviewed_by, a.trainer_id::text AS trainer_id"
)


def submissions(
    status: str | None, track: str | None, trainer_id: str | None, after: list[Any] | None, limit: int
) -> list[dict[str, Any]]:
    """Newest first, keyset on (submitted_at, id) (indexes submissions_submitted / _status_submitted)."""
    clauses, params = [sql.SQL("true")], []
    if status:
        clauses.append(sql.SQL("s.status = %s"))
        params.append(status)
    if track:
        clauses.append(sql.SQL("p.track_id = (SELECT id FROM tracks WHERE code = %s)"))
        params.append(track)
    if trainer_id:
        clauses.append(sql.SQL("a.trainer_id = %s"))
        params.append(trainer_id)
    if after is not None:
        clauses.append(sql.SQL("(s.submitted_at, s.id) < (%s, %s)"))
        params.extend(after)
    query = sql.SQL(
        """
        SELECT {columns}
        FROM submissions s
        JOIN users u ON u.id = s.student_id
        JOIN projects p ON p.id = s.project_id
        JOIN tracks t ON t.id = p.track_id
        JOIN deliverables d ON d.id = s.deliverable_id
        LEFT JOIN trainer_assignments a ON a.student_id = s.student_id
        WHERE {where}
        ORDER BY s.submitted_at DESC, s.id DESC
        LIMIT %s
        """
    ).format(columns=_SUBMISSION, where=sql.SQL(" AND ").join(clauses))
    return db.connection().execute(query, (*params, limit + 1)).fetchall()


# --- stats ----------------------------------------------------------------------------------------


# The totals read what triggers keep (migrations 0020, 0021) and small partial indexes, never the
# student-scaled facts: students per track and status from stats_students, revenue from the daily
# revenue rollup, the all-time turnaround from its histogram, the queue from the pending entries.


def totals(cur: Cursor[Any]) -> dict[str, Any]:
    """The platform's totals, in one statement: students (not deleted) per track and enrollment
    status (stats_students); money received less money refunded per track and currency, never summed
    across currencies (the daily revenue rollup, and any paid payment without succeeded_at:
    payments_paid_undated); all decisions and their turnaround percentiles (the all-time histogram,
    within 1 % or half a second); PENDING submissions (their all-time count), the oldest one (the
    first pending entry of submissions_status_submitted) and ENROLLED students without a trainer
    (users_enrolled_without_trainer)."""
    row = db.one(
        cur.execute(
            """
            SELECT
                (SELECT coalesce(json_agg(json_build_object('track', track, 'status', status, 'count', count)
                                          ORDER BY track NULLS FIRST, status), '[]')
                 FROM (SELECT t.code AS track, s.status, sum(s.count)::bigint AS count
                       FROM stats_students s LEFT JOIN tracks t ON t.id = s.track_id
                       GROUP BY t.code, s.status HAVING sum(s.count) <> 0) e) AS enrollments,
                (SELECT coalesce(json_agg(json_build_object(
                            'track', track, 'currency', currency, 'payments', payments, 'gross_cents', gross_cents,
                            'refunded_cents', refunded_cents, 'net_cents', gross_cents - refunded_cents)
                        ORDER BY track, currency), '[]')
                 FROM (SELECT track, currency, sum(payments)::bigint AS payments,
                              sum(gross_cents)::bigint AS gross_cents, sum(refunded_cents)::bigint AS refunded_cents
                       FROM (SELECT track, currency, payments, gross_cents, refunded_cents FROM stats_revenue_daily
                             UNION ALL
                             SELECT track, currency::text, 1, amount_cents, refunded_amount_cents FROM payments
                             WHERE succeeded_at IS NULL
                               AND status IN ('SUCCEEDED', 'PARTIALLY_REFUNDED', 'REFUNDED', 'DISPUTED')) r
                       GROUP BY track, currency HAVING sum(payments) <> 0) m) AS revenue,
                (SELECT coalesce(json_object_agg(bin, count), '{}')
                 FROM (SELECT bin, sum(count)::bigint AS count FROM stats_submission_hist
                       WHERE series = 'review' AND grain = 'all' AND period = '-infinity'
                       GROUP BY bin HAVING sum(count) <> 0) h) AS turnaround,
                (SELECT coalesce(sum(count), 0)::bigint FROM stats_submission_hist
                 WHERE series = 'wait' AND grain = 'all' AND period = '-infinity' AND status = 'PENDING')
                    AS review_queue,
                (SELECT min(submitted_at) FROM submissions WHERE status = 'PENDING') AS oldest_pending_at,
                (SELECT count(*) FROM users
                 WHERE role = 'student' AND enrollment_status = 'ENROLLED' AND deleted_at IS NULL
                   AND NOT has_trainer) AS students_without_trainer
            """
        )
    )
    counts = {int(k): n for k, n in row["turnaround"].items()}
    return {
        "enrollments": row["enrollments"],
        "revenue": row["revenue"],
        "review_turnaround": {
            "decided": sum(counts.values()),
            "median_seconds": durations.percentile(counts, 0.5),
            "p90_seconds": durations.percentile(counts, 0.9),
        },
        "review_queue": row["review_queue"],
        "oldest_pending_at": row["oldest_pending_at"],
        "students_without_trainer": row["students_without_trainer"],
    }


# --- stats: time series (issue 18) ---------------------------------------------------------------
# Each series is one statement over [from, to), grouped by UTC day or ISO week (Monday); buckets
# without rows are left out (the service lists every bucket for the axis). The additive series
# (revenue, enrollments, provisioning, refunds) read daily rollups (migration 0020); the two with
# percentiles (reviews, waiting) read duration histograms (migration 0021), and the waiting series
# adds the pending submissions from the queue's index (their wait runs until now).

_BUCKET = "(date_trunc(%(bucket)s, {column} AT TIME ZONE 'UTC'))::date"


def _series(cur: Cursor[Any], query: str, column: str, window: dict[str, Any]) -> list[dict[str, Any]]:
    text = query.replace("{bucket}", _BUCKET.format(column=column))
    return cur.execute(text, window).fetchall()


# The additive series read their daily rollups (migration 0020: kept by triggers in the facts'
# transactions, so exact and current); a week is the sum of its days. Keys whose counts fell to zero
# are skipped, as a bucket without facts is.

_ROLLUP_BUCKET = "(date_trunc(%(bucket)s, day::timestamp))::date"


def _rollup(cur: Cursor[Any], query: str, window: dict[str, Any]) -> list[dict[str, Any]]:
    text = query.replace("{bucket}", _ROLLUP_BUCKET)
    return cur.execute(text, {**window, "first": window["start"].date(), "last": window["end"].date()}).fetchall()


def revenue_series(cur: Cursor[Any], window: dict[str, Any]) -> list[dict[str, Any]]:
    """Payments received, by the day they succeeded, per track and currency (stats_revenue_daily)."""
    return _rollup(
        cur,
        """
        SELECT {bucket} AS bucket, track, currency, sum(payments)::bigint AS payments,
               sum(gross_cents)::bigint AS gross_cents, sum(refunded_cents)::bigint AS refunded_cents
        FROM stats_revenue_daily
        WHERE day >= %(first)s AND day < %(last)s
        GROUP BY 1, 2, 3 HAVING sum(payments) <> 0 ORDER BY 1, 2, 3
        """,
        window,
    )


def enrollment_series(cur: Cursor[Any], window: dict[str, Any]) -> list[dict[str, Any]]:
    """Students by the day they were enrolled, per track (stats_enrollments_daily)."""
    return _rollup(
        cur,
        """
        SELECT {bucket} AS bucket, t.code AS track, sum(e.enrollments)::bigint AS enrollments
        FROM stats_enrollments_daily e JOIN tracks t ON t.id = e.track_id
        WHERE e.day >= %(first)s AND e.day < %(last)s
        GROUP BY 1, 2 HAVING sum(e.enrollments) <> 0 ORDER BY 1, 2
        """,
        window,
    )


def provisioning_series(cur: Cursor[Any], window: dict[str, Any]) -> list[dict[str, Any]]:
    """Each tool's state by the day it last changed (stats_provisioning_daily)."""
    return _rollup(
        cur,
        """
        SELECT {bucket} AS bucket, tool, status, sum(count)::bigint AS count
        FROM stats_provisioning_daily
        WHERE day >= %(first)s AND day < %(last)s
        GROUP BY 1, 2, 3 HAVING sum(count) <> 0 ORDER BY 1, 2, 3
        """,
        window,
    )


# The review and waiting series read the duration histograms (migration 0021): a day bucket its day
# rows, a week bucket its week row when the range covers the whole week, else the days it covers.

_HIST_RANGE = """
    series = %(series)s AND count <> 0
    AND ((grain = 'week' AND period >= %(full_first)s AND period < %(full_end)s)
      OR (grain = 'day' AND period >= %(first)s AND period < %(full_first)s)
      OR (grain = 'day' AND period >= %(full_end)s AND period <= %(last)s))
"""


def _hist_range(series: str, window: dict[str, Any]) -> dict[str, Any]:
    first, last = window["start"].date(), window["end"].date() - timedelta(days=1)
    after = last + timedelta(days=1)
    full_first = full_end = after
    if window["bucket"] == "week":
        monday = first + timedelta(days=-first.weekday() % 7)  # the first Monday on or after first
        end_monday = after - timedelta(days=after.weekday())  # the last Monday on or before to + 1
        if monday < end_monday:
            full_first, full_end = monday, end_monday
    return {**window, "series": series, "first": first, "last": last, "full_first": full_first, "full_end": full_end}


def review_series(cur: Cursor[Any], window: dict[str, Any]) -> list[dict[str, Any]]:
    """Decisions by the day they were made: how many, and how long each submission had waited for
    its decision (turnaround percentiles from the histogram, within 1 % or half a second)."""
    buckets: dict[Any, dict[str, Any]] = {}
    rows = cur.execute(
        "SELECT (date_trunc(%(bucket)s, period::timestamp))::date AS bucket, status, bin, sum(count)::bigint AS count"
        " FROM stats_submission_hist WHERE {range} GROUP BY 1, 2, 3".replace("{range}", _HIST_RANGE),
        _hist_range("review", window),
    ).fetchall()
    for row in rows:
        found = buckets.setdefault(row["bucket"], {"approved": 0, "changes_requested": 0, "bins": {}})
        found["approved" if row["status"] == "APPROVED" else "changes_requested"] += row["count"]
        found["bins"][row["bin"]] = found["bins"].get(row["bin"], 0) + row["count"]
    return [
        {
            "bucket": bucket,
            "decided": found["approved"] + found["changes_requested"],
            "approved": found["approved"],
            "changes_requested": found["changes_requested"],
            "median_turnaround_seconds": durations.percentile(found["bins"], 0.5),
            "p90_turnaround_seconds": durations.percentile(found["bins"], 0.9),
        }
        for bucket, found in sorted(buckets.items())
        if found["approved"] + found["changes_requested"]
    ]


# A pending submission waits until now. The histogram counts pending submissions per hour they came
# in: those pending for more than EXACT_PENDING_HOURS are taken at the middle of their hour (off by at
# most half an hour, 0.34 % of 150 hours) and binned finer (PENDING_GROWTH: 0.5 %), within 0.84 % of
# their wait; the younger ones, few, are read from the queue's index (status, submitted_at) and binned
# as the histogram bins (1 %).
EXACT_PENDING_HOURS = 150
PENDING_GROWTH = 201 / 199
# The hour (UTC) before which a pending submission has waited more than EXACT_PENDING_HOURS.
_CUTOFF = "date_trunc('hour', now() AT TIME ZONE 'UTC' - make_interval(hours => %(hours)s))"


def waiting_series(cur: Cursor[Any], window: dict[str, Any]) -> list[dict[str, Any]]:
    """Submissions by the day they came in: how many, how many still wait, and how long they waited
    (until decided or superseded, or until now while pending; the median within 1 % or half a
    second). The longest pending wait is exact (the first pending entry of each bucket). One
    statement: the histogram's rows (kind h), the younger pending ones (x) and each bucket's oldest
    pending (l)."""
    rows = cur.execute(
        """
        WITH h AS (
            SELECT bucket, status, bin, sum(count)::bigint AS count
            FROM (
                SELECT (date_trunc(%(bucket)s, period::timestamp))::date AS bucket, status,
                       CASE WHEN status <> 'PENDING' THEN bin::integer
                            WHEN period::timestamp + bin * interval '1 hour' < {cutoff} THEN
                                1 + floor(ln(extract(epoch FROM now() AT TIME ZONE 'UTC' - period::timestamp
                                                     - (bin + 0.5) * interval '1 hour')::double precision)
                                          / ln(%(growth)s::double precision))::integer
                       END AS bin,
                       count
                FROM stats_submission_hist WHERE {range}
            ) d
            GROUP BY 1, 2, 3
        )
        SELECT 'h' AS kind, bucket, status, bin, count, NULL::numeric AS longest FROM h
        UNION ALL
        SELECT 'x', {bucket}, 'PENDING', stats_seconds_bin(extract(epoch FROM now() - submitted_at)::double precision),
               count(*), NULL
        FROM submissions
        WHERE status = 'PENDING' AND submitted_at >= greatest(%(start)s, {cutoff} AT TIME ZONE 'UTC')
          AND submitted_at < %(end)s
        GROUP BY 2, 4
        UNION ALL
        SELECT 'l', b.bucket, NULL, NULL, NULL, extract(epoch FROM now() - (
            SELECT min(submitted_at) FROM submissions
            WHERE status = 'PENDING'
              AND submitted_at >= greatest(%(start)s, b.bucket::timestamp AT TIME ZONE 'UTC')
              AND submitted_at < least(%(end)s, (b.bucket + %(step)s)::timestamp AT TIME ZONE 'UTC')))
        FROM (SELECT DISTINCT bucket FROM h WHERE status = 'PENDING') b
        """.replace("{range}", _HIST_RANGE)
        .replace("{cutoff}", _CUTOFF)
        .replace("{bucket}", _BUCKET.format(column="submitted_at")),
        {
            **_hist_range("wait", window),
            "hours": EXACT_PENDING_HOURS,
            "growth": PENDING_GROWTH,
            "step": 7 if window["bucket"] == "week" else 1,
        },
    ).fetchall()
    buckets: dict[Any, dict[str, Any]] = {}
    longest: dict[Any, float | None] = {}
    for row in rows:
        if row["kind"] == "l":
            longest[row["bucket"]] = None if row["longest"] is None else float(row["longest"])
            continue
        found = buckets.setdefault(row["bucket"], {"submitted": 0, "pending": 0, "values": {}})
        if row["kind"] == "x":
            value = durations.bin_value(row["bin"])  # pending for less than EXACT_PENDING_HOURS
        else:
            found["submitted"] += row["count"]
            if row["status"] == "PENDING":
                found["pending"] += row["count"]
                if row["bin"] is None:
                    continue  # pending for less than EXACT_PENDING_HOURS: kind x
                value = 2 * PENDING_GROWTH ** row["bin"] / (1 + PENDING_GROWTH)
            elif row["bin"] == -1:
                continue
            else:
                value = durations.bin_value(row["bin"])
        found["values"][value] = found["values"].get(value, 0) + row["count"]
    return [
        {
            "bucket": bucket,
            "submitted": found["submitted"],
            "pending": found["pending"],
            "median_wait_seconds": durations.percentile_of_values(found["values"], 0.5),
            "longest_pending_seconds": longest.get(bucket),
        }
        for bucket, found in sorted(buckets.items())
        if found["submitted"]
    ]


def refund_series(cur: Cursor[Any], window: dict[str, Any]) -> list[dict[str, Any]]:
    """Refund requests by the day they were made and where they stand now, per currency (amounts are
    never summed across currencies; stats_refunds_daily)."""
    return _rollup(
        cur,
        """
        SELECT {bucket} AS bucket, currency, sum(requested)::bigint AS requested,
               sum(approved)::bigint AS approved, sum(rejected)::bigint AS rejected,
               sum(pending)::bigint AS pending, sum(failed)::bigint AS failed,
               sum(requested_cents)::bigint AS requested_cents, sum(approved_cents)::bigint AS approved_cents
        FROM stats_refunds_daily
        WHERE day >= %(first)s AND day < %(last)s
        GROUP BY 1, 2 HAVING sum(requested) <> 0 ORDER BY 1, 2
        """,
        window,
    )


def read_only_snapshot(cur: Cursor[Any]) -> None:
    """The transaction's reads all see one snapshot (a report's numbers agree with each other)."""
    cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")


# --- policies (issue 7) ---------------------------------------------------------------------------

# kind -> (table, function giving its version in force, audit resource type): constants of ours.
POLICY_TABLES = {
    "privacy": ("privacy_policies", "privacy_version_in_force", "privacy_policy"),
    "terms": ("terms_of_service", "terms_version_in_force", "terms_of_service"),
}


def lock_policies(cur: Cursor[Any], kind: str) -> None:
    """Serialises publications of one kind (the version order is checked, then written)."""
    cur.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"apranova.policies.{kind}",))


def database_now(cur: Cursor[Any]) -> Any:
    """The database's clock: the one the versions in force follow."""
    return db.one(cur.execute("SELECT now() AS now"))["now"]


def policy_versions(cur: Cursor[Any], kind: str) -> list[dict[str, Any]]:
    table = sql.Identifier(POLICY_TABLES[kind][0])
    return cur.execute(sql.SQL("SELECT version, effective_at FROM {} ORDER BY id").format(table)).fetchall()


def insert_policy(
    cur: Cursor[Any], kind: str, *, version: str, content: str, summary: str, effective_at: Any, published_by: str
) -> dict[str, Any]:
    """Inserts the version, then keeps the informational ``is_active`` mirror on the version in
    force (off first, then on: the one-active index is checked row by row)."""
    table_name, in_force, _ = POLICY_TABLES[kind]
    table, function = sql.Identifier(table_name), sql.Identifier(in_force)
    row = cur.execute(
        sql.SQL(
            """
            INSERT INTO {table} (version, content, summary, effective_at, published_by)
            VALUES (%s, %s, %s, %s, (SELECT id FROM users WHERE id = %s))
            RETURNING version, summary, effective_at, created_at AS published_at, published_by::text AS published_by
            """
        ).format(table=table),
        (version, content, summary, effective_at, published_by),
    )
    inserted = db.one(row)
    cur.execute(
        sql.SQL("UPDATE {table} SET is_active = false WHERE is_active AND version IS DISTINCT FROM {fn}()").format(
            table=table, fn=function
        )
    )
    cur.execute(
        sql.SQL("UPDATE {table} SET is_active = true WHERE NOT is_active AND version = {fn}()").format(
            table=table, fn=function
        )
    )
    in_force_now = db.one(cur.execute(sql.SQL("SELECT {fn}() AS version").format(fn=function)))["version"]
    return {**inserted, "in_force": in_force_now == version}


# --- the audit trail ------------------------------------------------------------------------------

_AUDIT = sql.SQL(
    "id, occurred_at, action, actor_id::text AS actor_id, actor_role, subject_id::text AS subject_id, resource_type,"
    " resource_id, details, host(ip_address) AS ip_address, user_agent, request_id"
)


def audit_logs(filters: dict[str, Any], after: list[Any] | None, limit: int) -> list[dict[str, Any]]:
    """Newest first, keyset on (occurred_at, id): unfiltered, by actor, by subject and by action each
    walk their (…, occurred_at, id) index; by resource the (resource_type, resource_id) index."""
    clauses: list[sql.Composable] = [sql.SQL("true")]
    params: list[Any] = []
    for column in ("actor_id", "subject_id", "action", "resource_type", "resource_id"):
        if filters.get(column) is not None:
            clauses.append(sql.SQL("{} = %s").format(sql.Identifier(column)))
            params.append(filters[column])
    if filters.get("from") is not None:
        clauses.append(sql.SQL("occurred_at >= %s"))
        params.append(filters["from"])
    if filters.get("to") is not None:
        clauses.append(sql.SQL("occurred_at < %s"))
        params.append(filters["to"])
    if after is not None:
        clauses.append(sql.SQL("(occurred_at, id) < (%s, %s)"))
        params.extend(after)
    query = sql.SQL(
        "SELECT {columns} FROM audit_logs WHERE {where} ORDER BY occurred_at DESC, id DESC LIMIT %s"
    ).format(columns=_AUDIT, where=sql.SQL(" AND ").join(clauses))
    return db.connection().execute(query, (*params, limit + 1)).fetchall()


# --- retention policies ---------------------------------------------------------------------------

_RETENTION = (
    "SELECT resource_type, retention_days, legal_minimum_days, legal_requirement, is_active, description, updated_at"
    " FROM data_retention_policies"
)


def retention_policies(cur: Cursor[Any] | None = None) -> list[dict[str, Any]]:
    target = cur if cur is not None else db.connection()
    return target.execute(_RETENTION + " ORDER BY resource_type").fetchall()


def lock_retention_policies(cur: Cursor[Any], resource_types: list[str]) -> dict[str, dict[str, Any]]:
    rows = cur.execute(
        _RETENTION + " WHERE resource_type = ANY(%s) ORDER BY resource_type FOR UPDATE", (resource_types,)
    ).fetchall()
    return {row["resource_type"]: row for row in rows}


def update_retention_policy(cur: Cursor[Any], resource_type: str, retention_days: int, is_active: bool) -> None:
    cur.execute(
        "UPDATE data_retention_policies SET retention_days = %s, is_active = %s WHERE resource_type = %s",
        (retention_days, is_active, resource_type),
    )
