"""Scale: the student, trainer and admin GET routes at 1,000 and at 100,000 students (issue 6,
docs/principles.md §7: student routes flat within 1.5x, at most 3 statements, index-backed).

Fresh bench databases (migrated and seeded, as bench/warm.py makes them) get students in bulk with
SQL (``generate_series``, one ``INSERT ... SELECT`` per table, foreign keys and indexes live):
enrolled students, DP and FSD alternating, each with a consent to the policies in force, a trainer
of their track, progress, step completions and submissions by a fixed profile (``PROFILES``, one
per ``i % 20``). Student ``i`` is the same person with the same history whatever the size, so the
per-student work measured at both sizes is the same. One database holds students 1..1,000; the
other is seeded with the same 1..1,000 and then grown to 100,000. After seeding, ``VACUUM
(ANALYZE)`` gives the planner its statistics (and the visibility map a steady-state database has),
and a checkpoint keeps the load's background writing out of the timed calls.

The routes are called through bench/warm.py's ``measure``: the real handler, an API Gateway event
with the caller's claims, the shared connection counting statements. The timed calls are paired,
one at each size in turn (each database on its own connection), so that other work on the machine
weighs on both sizes alike (a ratio of two runs minutes apart on a shared machine measures the
neighbours' load as much as the database's size). Every statement a route
sends is captured once at the largest size and EXPLAINed with the same parameters: a sequential
scan of a table that grows with the students is reported. A route whose handler is not there yet
is reported ``missing``.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from bench import config, report
from bench.config import BenchRoute
from bench.sqlcount import StatementCounter
from bench.stats import summary

TRAINERS_PER_TRACK = 5  # trainers 0..4 are DP's, 5..9 FSD's
NEW_TRAINER = 2 * TRAINERS_PER_TRACK  # a DP trainer with no students yet
# A DP trainer whose students have nothing pending: the DP students of every tenth block of 20
# whose profile has no submitted project (the others of those blocks keep their block's trainer).
CAUGHT_UP_TRAINER = NEW_TRAINER + 1
# The measured student: DP, project 1 approved after a change request, project 2 in progress.
MEASURED_STUDENT = 17
# Tables whose size follows the number of students: no route may scan one of them sequentially.
SCALED_TABLES = frozenset(
    {"users", "user_consents", "trainer_assignments", "student_progress", "step_completions", "submissions"}
)
DONE = ("SUBMITTED", "CHANGES_REQUESTED", "APPROVED")  # all steps completed, attempts submitted

# Student i follows PROFILES[i % 20]: the statuses of their projects 1, 2, ... (no entry: LOCKED).
# 30 % have project 1 unlocked, 30 % in progress (half its steps done), 15 % submitted (a PENDING
# attempt per required deliverable: the review queue), 5 % with changes requested; 20 % have
# project 1 approved (every other one after a change request: two attempts) and are on project 2
# or 3. A fifth of the students have pending submissions.
PROFILES: tuple[tuple[str, ...], ...] = (
    *[("UNLOCKED",)] * 6,
    *[("IN_PROGRESS",)] * 6,
    *[("SUBMITTED",)] * 3,
    ("CHANGES_REQUESTED",),
    *[("APPROVED", "IN_PROGRESS")] * 2,
    ("APPROVED", "SUBMITTED"),
    ("APPROVED", "APPROVED", "IN_PROGRESS"),
)


# ---- pure helpers (tests/unit/test_bench_helpers.py) --------------------------------------------


def _md5_uuid(text: str) -> str:
    """``md5(text)::uuid`` as PostgreSQL computes it (the seed's ids are made in SQL)."""
    return str(uuid.UUID(hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()))


def student_uuid(i: int) -> str:
    return _md5_uuid(f"apranova-bench-scale-student-{i}")


def trainer_uuid(k: int) -> str:
    return _md5_uuid(f"apranova-bench-scale-trainer-{k}")


ADMIN_ID = _md5_uuid("apranova-bench-scale-admin")


def track_of(i: int) -> str:
    return "DP" if i % 2 == 1 else "FSD"


def trainer_of(i: int, per_track: int = TRAINERS_PER_TRACK) -> int:
    """The trainer index of student ``i``: by block of ``len(PROFILES)`` students, so that every
    trainer has students of every profile. DP trainers are 0..per_track-1, FSD ones follow; see
    also ``CAUGHT_UP_TRAINER``."""
    block = i // len(PROFILES)
    if track_of(i) == "DP" and block % 10 == 9 and "SUBMITTED" not in profile_of(i):
        return 2 * per_track + 1
    return block % per_track + (0 if track_of(i) == "DP" else per_track)


def profile_of(i: int) -> tuple[str, ...]:
    return PROFILES[i % len(PROFILES)]


def attempts_of(i: int, status: str) -> int:
    """Attempts per required deliverable of a project in ``status``: approved projects of every
    other block of 20 students took a change request first."""
    if status == "APPROVED":
        return 2 if (i // len(PROFILES)) % 2 == 0 else 1
    return 1 if status in DONE else 0


def students_per_trainer(students: int, per_track: int = TRAINERS_PER_TRACK) -> dict[int, int]:
    counts: dict[int, int] = {}
    for i in range(1, students + 1):
        counts[trainer_of(i, per_track)] = counts.get(trainer_of(i, per_track), 0) + 1
    return counts


def plan_nodes(plan: Mapping[str, Any]) -> list[str]:
    """Every node of an EXPLAIN (FORMAT JSON) plan that reads a relation, as ``"<node> on <table>
    [using <index>]"``, depth first."""
    found: list[str] = []

    def walk(node: Mapping[str, Any]) -> None:
        relation, index = node.get("Relation Name"), node.get("Index Name")
        if relation or index:
            text = f"{node['Node Type']} on {relation or '?'}"
            found.append(f"{text} using {index}" if index else text)
        for child in node.get("Plans", ()):
            walk(child)

    walk(plan)
    return found


def scaled_seq_scans(nodes: Iterable[str], tables: Iterable[str] = SCALED_TABLES) -> list[str]:
    """The nodes that read a student-scaled table sequentially."""
    wanted = {f"Seq Scan on {t}" for t in tables}
    return [n for n in nodes if n in wanted]


def flat_ratio(p95_small: float | None, p95_large: float | None) -> float | None:
    if not p95_small or p95_large is None:
        return None
    return p95_large / p95_small


def student_route_passed(
    ratio: float | None, max_statements: int | None, all_ok: bool, seq_scans: int | None = 0
) -> bool:
    """Flat within config.SCALE_FLAT_RATIO, at most config.STUDENT_GET_STATEMENTS statements, every
    request 200 at both sizes, and no sequential scan of a student-scaled table."""
    return (
        all_ok
        and ratio is not None
        and ratio <= config.SCALE_FLAT_RATIO
        and max_statements is not None
        and max_statements <= config.STUDENT_GET_STATEMENTS
        and seq_scans == 0
    )


# ---- seeding ------------------------------------------------------------------------------------

_SETUP = [
    # Temporary tables for one batch of students and their projects (dropped at commit).
    """
    CREATE TEMP TABLE scale_profiles (bucket int, number int, status text) ON COMMIT DROP
    """,
    """
    CREATE TEMP TABLE scale_batch (
        i int, id uuid, track text, track_id int, trainer_id uuid, created_at timestamptz
    ) ON COMMIT DROP
    """,
    """
    CREATE TEMP TABLE scale_progress (
        i int, student_id uuid, trainer_id uuid, project_id int, number int, status text,
        attempts int, unlocked_at timestamptz
    ) ON COMMIT DROP
    """,
]

_STAFF = """
INSERT INTO users (id, email, name, role, track_id, email_verified, created_at, updated_at)
SELECT md5('apranova-bench-scale-trainer-' || k)::uuid, 'scale.trainer.' || k || '@example.com',
       'Scale Trainer ' || k, 'trainer',
       (SELECT id FROM tracks WHERE code = CASE WHEN k < %(per)s OR k >= 2 * %(per)s THEN 'DP' ELSE 'FSD' END),
       true, %(t0)s, %(t0)s
FROM generate_series(0, 2 * %(per)s + 1) k
UNION ALL
SELECT %(admin)s::uuid, 'scale.admin@example.com', 'Scale Admin', 'admin', NULL, true, %(t0)s, %(t0)s
"""

_PROFILES = "INSERT INTO scale_profiles SELECT * FROM unnest(%s::int[], %s::int[], %s::text[])"

_BATCH = """
INSERT INTO scale_batch
SELECT i, md5('apranova-bench-scale-student-' || i)::uuid, t.code, t.id,
       md5('apranova-bench-scale-trainer-' || CASE
           WHEN t.code = 'DP' AND mod(i / %(buckets)s, 10) = 9
                AND mod(i, %(buckets)s) NOT IN (SELECT bucket FROM scale_profiles WHERE status = 'SUBMITTED')
           THEN 2 * %(per)s + 1
           ELSE mod(i / %(buckets)s, %(per)s) + CASE WHEN t.code = 'DP' THEN 0 ELSE %(per)s END
       END)::uuid,
       %(t0)s::timestamptz + i * interval '1 minute'
FROM generate_series(%(lo)s::int, %(hi)s::int) i
JOIN tracks t ON t.code = CASE WHEN mod(i, 2) = 1 THEN 'DP' ELSE 'FSD' END
"""

_PROGRESS_BATCH = """
INSERT INTO scale_progress
SELECT b.i, b.id, b.trainer_id, p.id, p.number, pr.status,
       CASE WHEN pr.status = 'APPROVED' THEN 2 - mod(b.i / %(buckets)s, 2)
            WHEN pr.status IN ('SUBMITTED', 'CHANGES_REQUESTED') THEN 1 ELSE 0 END,
       b.created_at + interval '1 hour' + (p.number - 1) * interval '10 days'
FROM scale_batch b
JOIN scale_profiles pr ON pr.bucket = mod(b.i, %(buckets)s)
JOIN projects p ON p.track_id = b.track_id AND p.number = pr.number AND p.is_active
"""

_SEED = {
    "users": """
        INSERT INTO users (id, email, name, role, track_id, enrollment_status, email_verified, tools_provisioned,
                           provisioning_status, provisioned_at, enrolled_at, created_at, updated_at)
        SELECT id, 'scale.student.' || i || '@example.com', 'Scale Student ' || i, 'student', track_id, 'ENROLLED',
               true, true, 'SUCCEEDED', created_at + interval '2 hours', created_at + interval '1 hour',
               created_at, created_at
        FROM scale_batch
    """,
    "user_consents": """
        INSERT INTO user_consents (user_id, privacy_policy_version, terms_version, accepted_at, source)
        SELECT b.id, pp.version, tos.version, b.created_at, 'SIGNUP'
        FROM scale_batch b,
             (SELECT privacy_version_in_force() AS version) pp,
             (SELECT terms_version_in_force() AS version) tos
    """,
    "trainer_assignments": """
        INSERT INTO trainer_assignments (student_id, trainer_id, track, assigned_at, assigned_by)
        SELECT id, trainer_id, track, created_at + interval '3 hours', %(admin)s FROM scale_batch
    """,
    "student_progress": """
        INSERT INTO student_progress (student_id, project_id, status, unlocked_at, started_at, submitted_at,
                                      approved_at, created_at, updated_at)
        SELECT student_id, project_id, status, unlocked_at,
               CASE WHEN status <> 'UNLOCKED' THEN unlocked_at + interval '1 hour' END,
               CASE WHEN attempts > 0 THEN unlocked_at + (2 + 2 * attempts) * interval '1 day' END,
               CASE WHEN status = 'APPROVED' THEN unlocked_at + (3 + 2 * attempts) * interval '1 day' END,
               unlocked_at, unlocked_at
        FROM scale_progress
    """,
    # Every active step of a project submitted or beyond; the first half of them when in progress.
    "step_completions": """
        INSERT INTO step_completions (student_id, project_id, step_id, completed_at)
        SELECT sp.student_id, sp.project_id, s.id, sp.unlocked_at + interval '1 hour' + s.number * interval '3 hours'
        FROM scale_progress sp
        JOIN project_steps s ON s.project_id = sp.project_id AND s.is_active
        JOIN (SELECT project_id, count(*) AS n FROM project_steps WHERE is_active GROUP BY project_id) c
            ON c.project_id = sp.project_id
        WHERE sp.status <> 'UNLOCKED' AND (sp.status <> 'IN_PROGRESS' OR 2 * s.number <= c.n)
    """,
    # One row per attempt per required deliverable; earlier attempts had changes requested. The
    # content follows the deliverable's type, as the submissions route stores it.
    "submissions": """
        INSERT INTO submissions (student_id, project_id, deliverable_id, attempt, submission_url, commit_sha,
                                 submission_text, file_key, file_size, file_content_type, status, feedback,
                                 reviewed_by, reviewed_at, submitted_at, updated_at)
        SELECT sp.student_id, sp.project_id, d.id, a,
               CASE d.deliverable_type
                   WHEN 'LINK' THEN 'https://example.com/scale/' || sp.i || '/' || d.id
                   WHEN 'GITHUB' THEN 'https://github.com/scale-student-' || sp.i || '/project-' || sp.number
               END,
               CASE WHEN d.deliverable_type = 'GITHUB' THEN md5(sp.student_id::text || d.id || '-' || a) END,
               CASE WHEN d.deliverable_type = 'TEXT' THEN 'Write-up, attempt ' || a END,
               CASE WHEN d.deliverable_type = 'FILE' THEN 'submissions/' || sp.student_id || '/' || d.id || '/'
                   || md5(sp.student_id::text || d.id || '-' || a)::uuid || '/work' END,
               CASE WHEN d.deliverable_type = 'FILE' THEN 204800 END,
               CASE WHEN d.deliverable_type = 'FILE' THEN d.accepted_content_types[1] END,
               x.status,
               CASE WHEN x.status = 'CHANGES_REQUESTED' THEN 'Please address the review comments.' END,
               CASE WHEN x.status <> 'PENDING' THEN sp.trainer_id END,
               CASE WHEN x.status <> 'PENDING' THEN sp.unlocked_at + (3 + 2 * a) * interval '1 day' END,
               sp.unlocked_at + (2 + 2 * a) * interval '1 day',
               sp.unlocked_at + (2 + 2 * a) * interval '1 day'
        FROM scale_progress sp
        JOIN deliverables d ON d.project_id = sp.project_id AND d.is_active AND d.is_required
        CROSS JOIN LATERAL generate_series(1, sp.attempts) a
        CROSS JOIN LATERAL (
            SELECT CASE WHEN a < sp.attempts THEN 'CHANGES_REQUESTED'
                        WHEN sp.status = 'SUBMITTED' THEN 'PENDING' ELSE sp.status END AS status
        ) x
        WHERE sp.attempts > 0
    """,
}

_COUNTS = """
SELECT (SELECT count(*) FROM users WHERE role = 'student') AS students,
       (SELECT count(*) FROM student_progress) AS student_progress,
       (SELECT count(*) FROM step_completions) AS step_completions,
       (SELECT count(*) FROM submissions) AS submissions,
       (SELECT count(*) FROM submissions WHERE status = 'PENDING') AS pending_submissions,
       (SELECT count(*) FROM trainer_assignments) AS trainer_assignments
"""


def _profile_rows() -> tuple[list[int], list[int], list[str]]:
    buckets, numbers, statuses = [], [], []
    for bucket, profile in enumerate(PROFILES):
        for number, status in enumerate(profile, start=1):
            buckets.append(bucket)
            numbers.append(number)
            statuses.append(status)
    return buckets, numbers, statuses


def seed_students(conn: Any, lo: int, hi: int, t0: datetime, *, staff: bool) -> dict[str, int]:
    """Students ``lo..hi`` with everything they own, in one transaction; rows inserted per table."""
    params = {
        "lo": lo,
        "hi": hi,
        "t0": t0,
        "per": TRAINERS_PER_TRACK,
        "admin": ADMIN_ID,
        "buckets": len(PROFILES),
    }
    inserted: dict[str, int] = {}
    with conn.transaction(), conn.cursor() as cur:
        # A bulk load of 99,000 students outlasts the roles' 10 s default (migration 0014): this
        # transaction's own limit, never the role's.
        cur.execute("SET LOCAL statement_timeout = '10min'")
        for statement in _SETUP:
            cur.execute(statement)
        if staff:
            cur.execute(_STAFF, params)
            inserted["staff"] = cur.rowcount
        cur.execute(_PROFILES, _profile_rows())
        cur.execute(_BATCH, params)
        cur.execute(_PROGRESS_BATCH, params)
        for table, statement in _SEED.items():
            cur.execute(statement, params)
            inserted[table] = cur.rowcount
    return inserted


def counts(conn: Any) -> dict[str, int]:
    from psycopg.rows import dict_row

    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(_COUNTS).fetchone()
    return {name: int(value) for name, value in row.items()} if row else {}


# ---- routes -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScaleRoute:
    name: str
    caller: str  # student | trainer | new trainer | caught-up trainer | admin (see ``claims``)
    path: str
    query: dict[str, str] = field(default_factory=dict)
    target_p95_ms: float | None = None  # at the larger size (staff routes with a bar of their own)

    @property
    def kind(self) -> str:
        return "student" if self.caller == "student" else "staff"

    @property
    def request(self) -> str:
        query = "&".join(f"{k}={v}" for k, v in self.query.items())
        return f"GET {self.path}{'?' + query if query else ''}"


def claims(caller: str) -> dict[str, Any]:
    """The caller of a route: the measured student, their trainer, a trainer with no students yet, a
    trainer whose students have nothing pending, or the admin."""
    trainer = trainer_of(MEASURED_STUDENT)
    sub, email, group = {
        "student": (student_uuid(MEASURED_STUDENT), f"scale.student.{MEASURED_STUDENT}@example.com", "students"),
        "trainer": (trainer_uuid(trainer), f"scale.trainer.{trainer}@example.com", "trainers"),
        "new trainer": (trainer_uuid(NEW_TRAINER), f"scale.trainer.{NEW_TRAINER}@example.com", "trainers"),
        "caught-up trainer": (
            trainer_uuid(CAUGHT_UP_TRAINER),
            f"scale.trainer.{CAUGHT_UP_TRAINER}@example.com",
            "trainers",
        ),
        "admin": (ADMIN_ID, "scale.admin@example.com", "admins"),
    }[caller]
    return {"sub": sub, "email": email, "token_use": "access", "cognito:groups": f"[{group}]"}


def scale_routes(project_id: int, next_project_id: int | None = None) -> tuple[ScaleRoute, ...]:
    """``project_id``: project 1 of the measured student's track (approved, two attempts each);
    ``next_project_id``: its project 2 (the queue filtered to it)."""
    staff = config.STAFF_P95_MS
    track = track_of(MEASURED_STUDENT)
    project_filter = {"track": track, "project": str(next_project_id or project_id)}
    # The seeded students enrolled from 200 days ago (``t0``), one a minute: 69 days of them.
    first = (datetime.now(UTC) - timedelta(days=200)).date()
    stats_days = {"from": first.isoformat(), "to": (first + timedelta(days=89)).isoformat(), "bucket": "day"}
    stats_weeks = {"from": first.isoformat(), "to": (first + timedelta(days=364)).isoformat(), "bucket": "week"}
    return (
        ScaleRoute("my-progress", "student", "/api/curriculum/my-progress/"),
        ScaleRoute("projects", "student", "/api/curriculum/projects/"),
        ScaleRoute("project detail", "student", f"/api/curriculum/projects/{project_id}/"),
        ScaleRoute("trainer queue", "trainer", "/api/trainer/submissions/", target_p95_ms=staff),
        ScaleRoute(
            f"trainer queue ({track}, project 2)", "trainer", "/api/trainer/submissions/", project_filter, staff
        ),
        ScaleRoute("trainer queue (no students)", "new trainer", "/api/trainer/submissions/", target_p95_ms=staff),
        ScaleRoute(
            "trainer queue (none pending)", "caught-up trainer", "/api/trainer/submissions/", target_p95_ms=staff
        ),
        ScaleRoute("trainer students", "trainer", "/api/trainer/students/", target_p95_ms=staff),
        ScaleRoute("admin users", "admin", "/api/admin/users/"),
        ScaleRoute("admin users (DP, ENROLLED)", "admin", "/api/admin/users/", {"track": "DP", "status": "ENROLLED"}),
        ScaleRoute("admin users (email starts)", "admin", "/api/admin/users/", {"q": "SCALE.STUDENT.4242"}, staff),
        ScaleRoute("admin users (name starts)", "admin", "/api/admin/users/", {"q": "scale student 4242"}, staff),
        ScaleRoute("admin stats", "admin", "/api/admin/stats/"),
        ScaleRoute("admin stats (90 days by day)", "admin", "/api/admin/stats/", stats_days, staff),
        ScaleRoute("admin stats (a year by week)", "admin", "/api/admin/stats/", stats_weeks, staff),
    )


@dataclass
class StatementPlan:
    sql: str
    nodes: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def seq_scans(self) -> list[str]:
        return scaled_seq_scans(self.nodes)

    def as_json(self) -> dict[str, Any]:
        return {"sql": self.sql, "plan_nodes": self.nodes, "scaled_seq_scans": self.seq_scans, "error": self.error}


@dataclass
class Samples:
    """One route at one size, pooled over the rounds."""

    times_ms: list[float] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def add(self, times_ms: list[float], counts: list[int], statuses: Mapping[str, int], error: str | None) -> None:
        self.times_ms += times_ms
        self.counts += counts
        for status, n in statuses.items():
            self.statuses[status] = self.statuses.get(status, 0) + n
        if error and error not in self.errors:
            self.errors.append(error)

    @property
    def latency_ms(self) -> dict[str, float]:
        return summary(self.times_ms) if self.times_ms else {}

    @property
    def max_statements(self) -> int | None:
        return max(self.counts) if self.counts else None

    @property
    def ok(self) -> bool:
        return bool(self.times_ms) and not self.errors and set(self.statuses) == {"200"}

    def as_json(self) -> dict[str, Any]:
        counts = self.counts
        return {
            "requests": len(self.times_ms),
            "latency_ms": {k: round(v, 4) for k, v in self.latency_ms.items()},
            "statements_per_request": (
                {"min": min(counts), "max": max(counts), "mean": round(sum(counts) / len(counts), 3)} if counts else {}
            ),
            "statuses": self.statuses,
            "errors": self.errors,
        }


@dataclass
class RouteResult:
    route: ScaleRoute
    missing: str | None = None
    at: dict[int, Samples] = field(default_factory=dict)  # students → samples
    probe_ms: dict[int, float] = field(default_factory=dict)
    plans: list[StatementPlan] = field(default_factory=list)

    def p(self, size: int, key: str) -> float | None:
        samples = self.at.get(size)
        return samples.latency_ms.get(key) if samples is not None else None

    def ratio(self, key: str = "p95") -> float | None:
        sizes = sorted(self.at)
        return flat_ratio(self.p(sizes[0], key), self.p(sizes[-1], key)) if len(sizes) > 1 else None

    @property
    def max_statements(self) -> int | None:
        counts = [s.max_statements for s in self.at.values() if s.max_statements is not None]
        return max(counts) if counts else None

    @property
    def all_ok(self) -> bool:
        return bool(self.at) and all(s.ok for s in self.at.values())

    @property
    def seq_scans(self) -> list[str]:
        return [scan for plan in self.plans for scan in plan.seq_scans]

    @property
    def plans_ok(self) -> bool | None:
        if not self.plans:
            return None
        return not self.seq_scans and not any(p.error for p in self.plans)

    @property
    def passed(self) -> bool | None:
        """Student routes: the bar of docs/principles.md §7. Trainer and admin routes: their p95 bar at the larger
        size where they have one (issue 18), else reported (None); failed either way when a request
        failed or a plan scans a student-scaled table."""
        if self.missing:
            return False
        if self.route.kind == "student":
            return student_route_passed(self.ratio(), self.max_statements, self.all_ok, len(self.seq_scans))
        if not self.all_ok or self.plans_ok is False:
            return False
        if self.route.target_p95_ms is not None:
            p95 = self.p(max(self.at), "p95") if self.at else None
            return p95 is not None and p95 <= self.route.target_p95_ms
        return None

    def as_json(self) -> dict[str, Any]:
        p95, p50 = self.ratio("p95"), self.ratio("p50")
        return {
            "request": self.route.request,
            "caller": self.route.caller,
            "target_p95_ms": self.route.target_p95_ms,
            "missing": self.missing,
            "at": {str(size): samples.as_json() for size, samples in sorted(self.at.items())},
            "p95_ratio": None if p95 is None else round(p95, 3),
            "p50_ratio": None if p50 is None else round(p50, 3),
            "max_statements": self.max_statements,
            "explain": [plan.as_json() for plan in self.plans],
            "scaled_seq_scans": self.seq_scans,
            "pass": self.passed,
        }


class _Recorder:
    """A cursor class that keeps what it executes (query and parameters), for EXPLAIN."""

    def __init__(self) -> None:
        self.statements: list[tuple[Any, Any]] = []

    def cursor_class(self) -> type:
        import psycopg

        recorder = self

        class RecordingCursor(psycopg.Cursor[Any]):
            def execute(self, query: Any, params: Any = None, **kwargs: Any) -> RecordingCursor:
                recorder.statements.append((query, params))
                return super().execute(query, params, **kwargs)

        return RecordingCursor


def _handler(route: ScaleRoute) -> tuple[Any, str] | str:
    """The route's ``lambda_handler`` and function, or why it is missing."""
    from apranova import routes

    table_route, _ = routes.match("GET", route.path)
    if table_route is None:
        return "not in the route table"
    try:
        module = importlib.import_module(routes.handler_module(table_route.function))
        return module.lambda_handler, table_route.function
    except Exception as error:  # noqa: BLE001 - a handler being written may not import yet
        return f"{table_route.function} does not import ({type(error).__name__}: {error})"


def probe(route: ScaleRoute, record: bool = False) -> tuple[str | None, float, list[tuple[Any, Any]]]:
    """Two calls: why the route is missing (None when it answered), the second call's duration in
    ms, and what the first executed when ``record``."""
    from apranova import db
    from local.events import LambdaContext, http_api_event

    found = _handler(route)
    if isinstance(found, str):
        return found, 0.0, []
    handler, function = found
    recorder, connection = _Recorder(), db.connection()
    previous = connection.cursor_factory
    if record:
        connection.cursor_factory = recorder.cursor_class()
    event = http_api_event("GET", route.path, claims=claims(route.caller), query=route.query or None)
    try:
        response = handler(event, LambdaContext(function))
        db.connection().cursor_factory = previous
        started = time.perf_counter()
        handler(event, LambdaContext(function))
        elapsed_ms = (time.perf_counter() - started) * 1000
    except Exception as error:  # noqa: BLE001 - reported, the section goes on
        return f"raised {type(error).__name__}: {error}", 0.0, []
    finally:
        db.connection().cursor_factory = previous
    try:
        body = json.loads(response.get("body") or "{}")
    except ValueError:
        body = {}
    message = (body.get("error") or {}).get("message") if isinstance(body, dict) else None
    if response.get("statusCode") in (404, 405) and message in ("No route matches this request.", None):
        return "the function does not serve this route yet", elapsed_ms, []
    # Any other answer is measured (and a non-200 reported as a failure).
    return None, elapsed_ms, recorder.statements


def explain(url: str, statements: list[tuple[Any, Any]]) -> list[StatementPlan]:
    """EXPLAIN of each statement with its parameters (the app sends no prepared statements, so
    this is the plan its requests get)."""
    import psycopg
    from psycopg import sql

    plans = []
    with psycopg.connect(url, autocommit=True) as conn:
        for query, params in statements:
            text = query.as_string(conn) if isinstance(query, sql.Composable) else str(query)
            shown = " ".join(text.split())
            plan = StatementPlan(shown)
            if not shown.upper().startswith(("SELECT", "WITH")):
                plan.error = f"not explained ({shown.split(' ', 1)[0]})"
            else:
                try:
                    row = conn.execute("EXPLAIN (FORMAT JSON) " + text, params).fetchone()
                    plan.nodes = plan_nodes(row[0][0]["Plan"]) if row else []
                except psycopg.Error as error:
                    plan.error = f"{type(error).__name__}: {error}".strip()
            plans.append(plan)
    return plans


def timed_calls(timed: int, probe_ms: float, budget_s: float) -> int:
    """Timed calls per size: ``timed``, fewer for a route so slow that they would take more than
    ``budget_s`` (``probe_ms``: one call at each size, summed), and never fewer than 20."""
    if probe_ms <= 0:
        return timed
    return max(min(timed, 20), min(timed, int(budget_s * 1000 / probe_ms)))


def _use(slots: dict[int, str], urls: dict[int, str], counter: StatementCounter) -> None:
    """A connection per size, each in its own ``db.function_slot`` (as the local stack gives each
    function its own), counting statements."""
    import os

    from apranova import db, settings

    db.reset()
    for size, slot in slots.items():
        os.environ["DATABASE_URL"] = urls[size]
        settings.database_settings.cache_clear()
        with db.function_slot(slot):
            db.connection().cursor_factory = counter.cursor_class()


def measure(
    results: list[RouteResult], urls: dict[int, str], counter: StatementCounter, warmup: int, timed: int
) -> None:
    """Probe every route at every size (and EXPLAIN what it sends at the largest), then time it with
    the calls paired: one at each size, in turn (small, large, large, small, ...), each database on
    its own connection. Whatever else the machine does then weighs on both sizes alike; runs
    minutes apart would compare the neighbours' load as much as the database's size."""
    from apranova import db
    from bench import warm

    sizes = sorted(urls)
    slots = {size: f"scale-{size}" for size in sizes}
    _use(slots, urls, counter)
    for size in sizes:
        with db.function_slot(slots[size]):
            for result in results:
                if result.missing:
                    continue
                missing, elapsed_ms, statements = probe(result.route, record=size == sizes[-1])
                result.missing, result.probe_ms[size] = missing, elapsed_ms
                if not missing and size == sizes[-1]:
                    result.plans = explain(urls[size], statements)
    for result in results:
        if result.missing:
            continue
        r = result.route
        route = BenchRoute(r.name, "GET", r.path, claims=claims(r.caller), query=r.query)
        calls = timed_calls(timed, sum(result.probe_ms.values()), config.SCALE_ROUTE_BUDGET_S)
        # warm.measure for one timed call at a time: its event, handler and counting, unchanged.
        for size in sizes:
            with db.function_slot(slots[size]):
                warm.measure(route, counter, max(0, warmup - 1), 1)
        for n in range(calls):
            for size in sizes if n % 2 == 0 else sizes[::-1]:
                samples = result.at.setdefault(size, Samples())
                with db.function_slot(slots[size]):
                    try:
                        lat = warm.measure(route, counter, 0, 1)
                    except Exception as error:  # noqa: BLE001 - reported, the section goes on
                        samples.add([], [], {}, f"raised {type(error).__name__}: {error}")
                        continue
                samples.add(lat.times_ms, lat.counts, lat.statuses, lat.error)
    db.reset()


@contextmanager
def _quiet() -> Iterator[None]:
    from bench.webhook import _logs_discarded

    with _logs_discarded():
        yield


def _seed(url: str, sizes: Iterable[tuple[int, int]], t0: datetime) -> dict[str, Any]:
    """Students in the given ranges, in order (each range one transaction), then ``VACUUM
    (ANALYZE)`` and a checkpoint, so no background writing falls into the timed calls."""
    import psycopg

    report_: dict[str, Any] = {"batches": []}
    with psycopg.connect(url, autocommit=True) as conn:
        for lo, hi in sizes:
            started = time.perf_counter()
            inserted = seed_students(conn, lo, hi, t0, staff=lo == 1)
            elapsed = time.perf_counter() - started
            report_["batches"].append({"students": [lo, hi], "inserted": inserted, "insert_s": round(elapsed, 2)})
            print(f"  seeded students {lo:,}..{hi:,} in {elapsed:.1f} s", flush=True)
        started = time.perf_counter()
        # VACUUM cannot run in a transaction (no SET LOCAL): this seeding session's own limit.
        conn.execute("SET statement_timeout = '10min'")
        conn.execute("VACUUM (ANALYZE)")
        conn.execute("CHECKPOINT")
        report_["vacuum_analyze_checkpoint_s"] = round(time.perf_counter() - started, 2)
        report_["totals"] = counts(conn)
        report_["database_mib"] = round(
            conn.execute("SELECT pg_database_size(current_database())").fetchone()[0] / 2**20, 1
        )
    print(
        f"    VACUUM (ANALYZE) + CHECKPOINT {report_['vacuum_analyze_checkpoint_s']:.1f} s; "
        + ", ".join(f"{k} {v:,}" for k, v in report_["totals"].items())
        + f"; {report_['database_mib']:,} MiB",
        flush=True,
    )
    return report_


def run(warmup: int, timed: int) -> dict[str, Any]:
    """The section: seeds, measures, prints its table; returns what results.json keeps."""
    import psycopg

    from bench import warm

    small, large = config.SCALE_STUDENTS
    started = time.perf_counter()
    out: dict[str, Any] = {
        "students": [small, large],
        "trainers": CAUGHT_UP_TRAINER + 1,
        "measured_student": {"index": MEASURED_STUDENT, "track": track_of(MEASURED_STUDENT)},
        "profiles": [list(p) for p in PROFILES],
        "warmup_calls": warmup,
        "timed_calls": timed,
        "target_p95_ratio_max": config.SCALE_FLAT_RATIO,
        "target_student_max_statements": config.STUDENT_GET_STATEMENTS,
        "scaled_tables": sorted(SCALED_TABLES),
    }
    print(
        f"\nSCALE  student, trainer and admin GET routes at {small:,} and {large:,} students: in-process, a "
        f"database of each size, {warmup} warm-up + {timed} timed calls per route and size, paired (one at "
        "each size in turn)"
    )
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(days=200)
    counter = StatementCounter()
    with warm.bench_database() as small_url, warm.bench_database() as large_url, _quiet():
        # The same students 1..small in both; the large one then grows (same t0: the same people).
        out["seed"] = {
            str(small): _seed(small_url, [(1, small)], t0),
            str(large): _seed(large_url, [(1, small), (small + 1, large)], t0),
        }
        with psycopg.connect(large_url, autocommit=True) as conn:
            project_id, next_project_id = conn.execute(
                "SELECT min(p.id) FILTER (WHERE p.number = 1), min(p.id) FILTER (WHERE p.number = 2)"
                " FROM projects p JOIN tracks t ON t.id = p.track_id WHERE t.code = %s",
                (track_of(MEASURED_STUDENT),),
            ).fetchone()
        results = [RouteResult(route) for route in scale_routes(project_id, next_project_id)]
        measuring = time.perf_counter()
        measure(results, {small: small_url, large: large_url}, counter, warmup, timed)
        print(f"  measured in {time.perf_counter() - measuring:.1f} s")
    out["measured_student"]["project_id"] = project_id
    trainer = trainer_of(MEASURED_STUDENT)
    out["trainer_students"] = {str(n): students_per_trainer(n)[trainer] for n in (small, large)}
    out["caught_up_trainer_students"] = {str(n): students_per_trainer(n)[CAUGHT_UP_TRAINER] for n in (small, large)}
    out["routes"] = {r.route.name: r.as_json() for r in results}
    out["missing"] = [r.route.name for r in results if r.missing]
    student = [r.passed for r in results if r.route.kind == "student"]
    out["student_routes_pass"] = all(student) if student else False
    out["duration_s"] = round(time.perf_counter() - started, 1)
    _print(results, small, large, out)
    return out


def _fmt(value: float | None, digits: int = 2) -> str | None:
    return None if value is None else f"{value:.{digits}f}"


def _statuses(r: RouteResult) -> str:
    merged: dict[str, int] = {}
    for samples in r.at.values():
        for status, n in samples.statuses.items():
            merged[status] = merged.get(status, 0) + n
    errors = [e for samples in r.at.values() for e in samples.errors]
    return ", ".join([f"{k}: {v}" for k, v in sorted(merged.items())] + errors)


def _print(results: list[RouteResult], small: int, large: int, out: dict[str, Any]) -> None:
    rows = []
    k_large = f"{large // 1000}k"
    for r in results:
        a, b = r.at.get(small), r.at.get(large)
        ratio = r.ratio()
        target = None
        if r.route.kind == "student":
            target = f"<= {config.SCALE_FLAT_RATIO:g}x, <= {config.STUDENT_GET_STATEMENTS} SQL"
        elif r.route.target_p95_ms is not None:
            target = f"p95 {k_large} <= {r.route.target_p95_ms:g} ms"
        plan = None if not r.plans else ("index-backed" if r.plans_ok else f"{len(r.seq_scans)} seq scan(s)")
        rows.append(
            [
                r.route.name,
                _fmt(r.p(small, "p50")),
                _fmt(r.p(small, "p95")),
                _fmt(r.p(large, "p50")),
                _fmt(r.p(large, "p95")),
                None if ratio is None else f"{ratio:.2f}x",
                "/".join("-" if s is None else str(s.max_statements) for s in (a, b)),
                "/".join("-" if s is None else str(len(s.times_ms)) for s in (a, b)),
                target,
                plan,
                "missing" if r.missing else report.verdict(r.passed),
                r.missing or _statuses(r),
            ]
        )
    k = f"{small // 1000}k", f"{large // 1000}k"
    headers = ["route", f"p50 {k[0]}", f"p95 {k[0]}", f"p50 {k[1]}", f"p95 {k[1]}", "p95 ratio", "SQL/req", "n"]
    headers += ["target", f"plan at {k[1]}", "result", "statuses / why"]
    print(report.table(headers, rows))
    assigned = " / ".join(f"{v:,}" for v in out.get("trainer_students", {}).values())
    caught_up = " / ".join(f"{v:,}" for v in out.get("caught_up_trainer_students", {}).values())
    print(
        f"  latencies in ms; SQL/req: the most statements a request sent, n: timed requests, at {small:,} / "
        f"{large:,} students\n"
        f"  callers: student {MEASURED_STUDENT} ({track_of(MEASURED_STUDENT)}: project 1 approved after a change "
        f"request, project 2 in progress); their trainer ({assigned} students); a trainer with none; a trainer "
        f"whose {caught_up} students have nothing pending; an admin"
    )
    print(f"  plans at {large:,} students (EXPLAIN of each statement a route sent, with its parameters):")
    for r in results:
        for n, plan in enumerate(r.plans, start=1):
            nodes = ", ".join(dict.fromkeys(plan.nodes)) or plan.error or "no table read"
            print(f"    {r.route.name} [{n}]: {nodes}")
    if out.get("missing"):
        print(f"  missing: {', '.join(out['missing'])}")
