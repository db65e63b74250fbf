"""GDPR operations at a realistic size (issue 7): the admin audit list, the retention sweep and the
export worker, on a bench database of their own.

A fresh bench database (migrated and seeded, as bench/warm.py makes them) gets 10,000 students in
bulk (bench/scale.py's seed: enrolled, consents, trainers, progress, submissions) and an
``audit_logs`` table of ``config.GDPR_AUDIT_ROWS`` rows spread evenly over two years, oldest first (the trail is
append-only, so ids follow time), inserted with one ``INSERT ... SELECT`` over ``generate_series``
with the table's indexes live. Each row's action is drawn with the weights of ``CATALOGUE`` (every
action the trail knows, from logins to the handful of retention policy changes) and its subject
among the 10,000 students; who acted (the student, their trainer, an admin, or the system) and what
resource it names follow the action. One more student, in moto's Cognito as well, owns the export:
enrolled, three projects (two approved, one in progress), 7 submissions of which 3 are uploaded
files of 1 MiB in moto's S3, and ~200 audit rows by or about them. Then ``VACUUM (ANALYZE)`` and a
checkpoint.

1. *Audit list*: ``GET /api/admin/audit-logs/`` through the admin function's real ``lambda_handler``
   (bench/warm.py's ``measure``: API Gateway events, the shared connection counting statements),
   for each filter the route offers and for the 50th page of the unfiltered list (its cursor found
   by walking the 49 pages before it, outside the clock). Each statement is EXPLAINed with its
   parameters (bench/scale.py) and the plan's nodes are printed.
2. *Retention sweep*: the AUDIT_LOGS period is set so that ~``config.GDPR_SWEEP_SHARE`` of the table
   is past it, and the sweep's real ``lambda_handler`` runs once (its other policies find little or
   nothing). Every audit batch (``delete_audit_rows``: its own transaction, BEGIN to COMMIT, which
   is as long as its rows stay locked) is timed by wrapping the repository function for the run.
3. *Export*: the export worker's real ``lambda_handler`` builds that student's archive (database
   snapshot, Cognito, the three files from S3, upload with SSE-KMS, audit, email through SES), a
   new PENDING request per run; wall time and ZIP size. The last archive is read back from S3: its
   entries, the Cognito record found, the audit rows in it.

AWS is moto's server in this process (local/moto_stack.py), as the integration tests run it.
"""

from __future__ import annotations

import math
import os
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from bench import config, report, scale
from bench.config import BenchRoute
from bench.sqlcount import StatementCounter
from bench.stats import summary

PATH = "/api/admin/audit-logs/"
STUDENTS = 10_000  # the audit rows' subjects (bench/scale.py's students 1..STUDENTS)
SPAN_DAYS = 730  # the audit rows are spread evenly over this many days, up to now
# The export's student: scale profile 19 (projects 1 and 2 approved at the first attempt, project
# 3 in progress), outside 1..STUDENTS, so with no rows of the bulk load.
EXPORT_STUDENT = 10_039
EXPORT_AUDIT_ROWS = 200
EXPORT_FILE_BYTES = 2**20
SEED = 0.42  # setseed(): the same table every run

SENDER, OPS = "privacy@apranova.bench", "ops@apranova.bench"


@dataclass(frozen=True)
class AuditKind:
    """An action of the trail as the load writes it: how often (a relative weight, about rows per
    million), who acts (``self``: the subject; ``trainer``; ``admin``; ``system``: no actor), what
    resource it names, and whether it is about a person (else no subject: a policy published)."""

    action: str
    weight: float
    actor: str
    resource_type: str | None
    about_person: bool = True


# Roughly what two years of 10,000 students leave: sessions and tools dominate; a policy is
# published a few times, a retention policy changed fewer.
CATALOGUE: tuple[AuditKind, ...] = (
    AuditKind("SIGNUP", 12_000, "self", "user"),
    AuditKind("EMAIL_VERIFIED", 11_500, "self", "user"),
    AuditKind("LOGIN", 300_000, "self", "user"),
    AuditKind("LOGIN_FAILED", 25_000, "system", "user"),
    AuditKind("LOGOUT", 90_000, "self", "user"),
    AuditKind("PASSWORD_CHANGE", 6_000, "self", "user"),
    AuditKind("PASSWORD_RESET", 8_000, "self", "user"),
    AuditKind("PROFILE_UPDATE", 15_000, "self", "user"),
    AuditKind("CONSENT_ACCEPTED", 22_000, "self", "user_consent"),
    AuditKind("DATA_EXPORT", 6_000, "self", "data_export"),
    AuditKind("DELETION_REQUESTED", 500, "self", "deletion_request"),
    AuditKind("DELETION_CANCELLED", 150, "self", "deletion_request"),
    AuditKind("ACCOUNT_PURGED", 300, "system", "deletion_request", about_person=False),
    AuditKind("POLICY_PUBLISHED", 8, "admin", "privacy_policy", about_person=False),
    AuditKind("RETENTION_POLICY_CHANGED", 6, "admin", "data_retention_policy", about_person=False),
    AuditKind("RETENTION_SWEEP", 730, "system", "retention", about_person=False),
    AuditKind("PAYMENT", 24_000, "system", "payment"),
    AuditKind("REFUND_REQUESTED", 400, "self", "refund_request"),
    AuditKind("REFUND_DECIDED", 400, "admin", "refund_request"),
    AuditKind("ENROLLMENT", 11_000, "system", "user"),
    AuditKind("ADMIN_ENROLL", 250, "admin", "user"),
    AuditKind("PROVISIONING", 22_000, "system", "tool_account"),
    AuditKind("REPROVISION_REQUESTED", 200, "admin", "tool_account"),
    AuditKind("TOOLS_DEPROVISIONED", 300, "system", "tool_account"),
    AuditKind("CREDENTIALS_VIEWED", 60_000, "self", "tool_account"),
    AuditKind("WORKSPACE_STARTED", 80_000, "self", "workspace"),
    AuditKind("WORKSPACE_STOPPED", 80_000, "system", "workspace"),
    AuditKind("WELCOME_EMAIL_SENT", 11_000, "system", "user"),
    AuditKind("PROJECT_STARTED", 25_000, "self", "project"),
    AuditKind("PROJECT_UNLOCKED", 25_000, "system", "project"),
    AuditKind("SUBMISSION", 60_000, "self", "submission"),
    AuditKind("REVIEW", 50_000, "trainer", "submission"),
    AuditKind("ROLE_CHANGE", 60, "admin", "user"),
    AuditKind("TRAINER_ASSIGNED", 11_000, "admin", "trainer_assignment"),
)

# The measured lists: the subject, actor and resource named here are rows of the load.
MEASURED_SUBJECT = 4_321
MEASURED_TRAINER = 3


# ---- pure helpers (tests/unit/test_bench_helpers.py) --------------------------------------------


def thresholds(weights: Sequence[float]) -> list[float]:
    """The lower bounds in [0, 1) of each weight's share: ``width_bucket(random(), bounds)`` is then
    the 1-based index of the kind drawn."""
    total = float(sum(weights))
    if total <= 0 or any(w < 0 for w in weights):
        raise ValueError("weights must be non-negative with a positive sum")
    bounds, running = [], 0.0
    for weight in weights:
        bounds.append(running / total)
        running += weight
    return bounds


def retention_days_for(rows: int, span_days: float, expired: int) -> int:
    """The retention period (days) leaving about ``expired`` of ``rows`` spread evenly over the last
    ``span_days`` past it (rounded up: never more than asked)."""
    if not 0 <= expired <= rows or rows <= 0:
        raise ValueError("expired must be within 0..rows")
    return max(1, math.ceil(span_days * (1 - expired / rows)))


# ---- seeding ------------------------------------------------------------------------------------

_CATALOGUE_TABLE = """
CREATE TEMP TABLE gdpr_catalogue ON COMMIT DROP AS
SELECT n::int, action, actor, resource_type, about_person
FROM unnest(%s::text[], %s::text[], %s::text[], %s::boolean[]) WITH ORDINALITY
     AS c(action, actor, resource_type, about_person, n)
"""

# One row per i, oldest first; kind and subject drawn with random() after setseed().
_AUDIT_LOAD = """
INSERT INTO audit_logs (occurred_at, action, actor_id, actor_role, subject_id, resource_type, resource_id,
                        details, ip_address, user_agent, request_id)
SELECT %(start)s::timestamptz + (g.i - 1) * %(step)s::interval,
       c.action,
       CASE c.actor WHEN 'self' THEN s.id
                    WHEN 'trainer' THEN md5('apranova-bench-scale-trainer-' || mod(g.k, %(trainers)s))::uuid
                    WHEN 'admin' THEN %(admin)s::uuid END,
       CASE c.actor WHEN 'self' THEN 'student' WHEN 'system' THEN NULL ELSE c.actor END,
       CASE WHEN c.about_person THEN s.id END,
       c.resource_type,
       CASE WHEN c.resource_type = 'user' THEN s.id::text
            WHEN c.about_person THEN md5(c.resource_type || ':' || g.k || ':' || mod(g.i, 5))::uuid::text END,
       jsonb_build_object('source', 'bench', 'n', mod(g.i, 1000)),
       CASE WHEN c.actor <> 'system' THEN ('10.' || mod(g.k, 250) || '.' || mod(g.i, 250) || '.7')::inet END,
       CASE WHEN c.actor <> 'system' THEN 'Mozilla/5.0 (X11; Linux x86_64) bench/' || mod(g.k, 7) END,
       md5(g.i::text)
FROM (SELECT i, width_bucket(random(), %(bounds)s::float8[]) AS kind, 1 + floor(random() * %(subjects)s)::int AS k
      FROM generate_series(1, %(rows)s) i) g
JOIN gdpr_catalogue c ON c.n = g.kind
CROSS JOIN LATERAL (SELECT md5('apranova-bench-scale-student-' || g.k)::uuid AS id) s
ORDER BY g.i
"""

# The export's student's trail: their own actions and their trainer's reviews, over their 200 days.
_EXPORT_AUDIT = """
INSERT INTO audit_logs (occurred_at, action, actor_id, actor_role, subject_id, resource_type, resource_id,
                        details, ip_address, user_agent, request_id)
SELECT now() - interval '200 days' + i * interval '23 hours',
       a.action,
       CASE WHEN a.action = 'REVIEW' THEN %(trainer)s::uuid ELSE %(id)s::uuid END,
       CASE WHEN a.action = 'REVIEW' THEN 'trainer' ELSE 'student' END,
       %(id)s::uuid, a.resource_type,
       CASE WHEN a.resource_type = 'user' THEN %(id)s::text ELSE md5(a.resource_type || i)::uuid::text END,
       jsonb_build_object('source', 'bench'), '198.51.100.7', 'Mozilla/5.0 (bench export student)', md5(i::text)
FROM generate_series(1, %(rows)s) i
CROSS JOIN LATERAL (SELECT (ARRAY['LOGIN', 'LOGOUT', 'CREDENTIALS_VIEWED', 'WORKSPACE_STARTED', 'SUBMISSION',
                                  'REVIEW', 'PROJECT_STARTED', 'LOGIN'])[1 + mod(i, 8)] AS action) x
CROSS JOIN LATERAL (SELECT x.action,
                           CASE x.action WHEN 'CREDENTIALS_VIEWED' THEN 'tool_account'
                                         WHEN 'WORKSPACE_STARTED' THEN 'workspace'
                                         WHEN 'SUBMISSION' THEN 'submission' WHEN 'REVIEW' THEN 'submission'
                                         WHEN 'PROJECT_STARTED' THEN 'project' ELSE 'user' END AS resource_type) a
"""


def load_audit_rows(conn: Any, rows: int, start: datetime, span: timedelta) -> int:
    """``rows`` audit rows from ``start`` over ``span``, in one transaction; rows inserted."""
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("SELECT setseed(%s)", (SEED,))
        cur.execute(
            _CATALOGUE_TABLE,
            (
                [k.action for k in CATALOGUE],
                [k.actor for k in CATALOGUE],
                [k.resource_type for k in CATALOGUE],
                [k.about_person for k in CATALOGUE],
            ),
        )
        cur.execute(
            _AUDIT_LOAD,
            {
                "start": start,
                "step": span / rows,
                "trainers": 2 * scale.TRAINERS_PER_TRACK,
                "admin": scale.ADMIN_ID,
                "bounds": thresholds([k.weight for k in CATALOGUE]),
                "subjects": STUDENTS,
                "rows": rows,
            },
        )
        return cur.rowcount


def seed_export_student(conn: Any, user_id: str, t0: datetime) -> dict[str, Any]:
    """Scale student ``EXPORT_STUDENT``'s history under ``user_id`` (their Cognito sub), with
    bench/scale.py's statements, and their audit rows; the FILE submissions (key, content type)."""
    i = EXPORT_STUDENT
    params = {
        "per": scale.TRAINERS_PER_TRACK,
        "admin": scale.ADMIN_ID,
        "buckets": len(scale.PROFILES),
        "i": i,
        "id": user_id,
        "track": scale.track_of(i),
        "trainer": scale.trainer_uuid(scale.trainer_of(i)),
        "created": t0 + timedelta(minutes=i),
        "rows": EXPORT_AUDIT_ROWS,
    }
    from psycopg.rows import tuple_row

    with conn.transaction(), conn.cursor(row_factory=tuple_row) as cur:
        # scale.py's temporary tables and per-table statements, for one student of our choosing.
        for statement in scale._SETUP:
            cur.execute(statement)
        cur.execute(scale._PROFILES, scale._profile_rows())
        cur.execute(
            "INSERT INTO scale_batch SELECT %(i)s, %(id)s::uuid, t.code, t.id, %(trainer)s::uuid, %(created)s"
            " FROM tracks t WHERE t.code = %(track)s",
            params,
        )
        cur.execute(scale._PROGRESS_BATCH, params)
        for statement in scale._SEED.values():
            cur.execute(statement, params)
        cur.execute(_EXPORT_AUDIT, params)
        files = cur.execute(
            "SELECT file_key, file_content_type FROM submissions WHERE student_id = %s AND file_key IS NOT NULL"
            " ORDER BY submitted_at",
            (user_id,),
        ).fetchall()
        submissions = cur.execute("SELECT count(*) FROM submissions WHERE student_id = %s", (user_id,)).fetchone()[0]
        projects = cur.execute("SELECT count(*) FROM student_progress WHERE student_id = %s", (user_id,)).fetchone()[0]
        audit = cur.execute(
            "SELECT count(*) FROM audit_logs WHERE actor_id = %s OR subject_id = %s", (user_id, user_id)
        ).fetchone()[0]
    return {
        "files": [(key, content_type) for key, content_type in files],
        "submissions": int(submissions),
        "projects": int(projects),
        "audit_rows": int(audit),
    }


# ---- the audit list -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ListCase:
    name: str
    query: dict[str, str] = field(default_factory=dict)


@dataclass
class ListResult:
    case: ListCase
    rows: int | None = None  # rows on the page
    error: str | None = None
    latency_ms: dict[str, float] = field(default_factory=dict)
    statements: dict[str, float] = field(default_factory=dict)
    statuses: dict[str, int] = field(default_factory=dict)
    plans: list[scale.StatementPlan] = field(default_factory=list)

    @property
    def seq_scans(self) -> list[str]:
        return [n for plan in self.plans for n in plan.nodes if n == "Seq Scan on audit_logs"]

    @property
    def passed(self) -> bool:
        if self.error or set(self.statuses) != {"200"} or not self.latency_ms:
            return False
        return (
            self.latency_ms["p95"] <= config.GDPR_AUDIT_P95_MS
            and self.statements["max"] <= config.GDPR_AUDIT_STATEMENTS
            and not self.seq_scans
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "query": self.case.query,
            "rows_on_page": self.rows,
            "timed_calls": sum(self.statuses.values()),
            "error": self.error,
            "latency_ms": {k: round(v, 4) for k, v in self.latency_ms.items()},
            "statements_per_request": self.statements,
            "statuses": self.statuses,
            "explain": [plan.as_json() for plan in self.plans],
            "target_p95_ms": config.GDPR_AUDIT_P95_MS,
            "target_max_statements": config.GDPR_AUDIT_STATEMENTS,
            "pass": self.passed,
        }


def list_cases(start: datetime, cursor: str | None) -> list[ListCase]:
    """``start``: the oldest row's time; ``cursor``: next_cursor of the 49th unfiltered page."""
    week_from = start + timedelta(days=SPAN_DAYS // 2)

    def iso(moment: datetime) -> str:
        return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")

    cases = [
        ListCase("no filter"),
        ListCase("by subject_id", {"subject_id": scale.student_uuid(MEASURED_SUBJECT)}),
        ListCase("by actor_id (a trainer)", {"actor_id": scale.trainer_uuid(MEASURED_TRAINER)}),
        ListCase("by action (REVIEW)", {"action": "REVIEW"}),
        ListCase(
            "by resource_type + resource_id",
            {"resource_type": "user", "resource_id": scale.student_uuid(MEASURED_SUBJECT)},
        ),
        ListCase("by resource_type (refund_request)", {"resource_type": "refund_request"}),
        ListCase("by resource_type (data_retention_policy)", {"resource_type": "data_retention_policy"}),
        ListCase("by time range (one week)", {"from": iso(week_from), "to": iso(week_from + timedelta(days=7))}),
    ]
    if cursor is not None:
        cases.append(ListCase("page 50 (keyset cursor)", {"cursor": cursor}))
    return cases


def _call(query: dict[str, str]) -> dict[str, Any]:
    import json

    from functions.admin.handler import lambda_handler
    from local.events import LambdaContext, http_api_event

    event = http_api_event("GET", PATH, claims=scale.claims("admin"), query=query or None)
    response = lambda_handler(event, LambdaContext("admin"))
    body = json.loads(response.get("body") or "{}")
    if response["statusCode"] != 200:
        raise RuntimeError(f"{response['statusCode']}: {body}")
    return body


def fiftieth_page_cursor(page: int = 50) -> str | None:
    """next_cursor after walking ``page - 1`` unfiltered pages (the cursor of page ``page``)."""
    cursor = None
    for _ in range(page - 1):
        body = _call({"cursor": cursor} if cursor else {})
        cursor = body.get("next_cursor")
        if cursor is None:
            return None
    return cursor


def measure_list(url: str, case: ListCase, counter: StatementCounter, warmup: int, timed: int) -> ListResult:
    from bench import warm

    result = ListResult(case)
    try:
        result.rows = len(_call(case.query).get("items") or [])
        missing, probe_ms, statements = scale.probe(scale.ScaleRoute(case.name, "admin", PATH, case.query), record=True)
        if missing:
            result.error = missing
            return result
        result.plans = scale.explain(url, statements)
        route = BenchRoute(case.name, "GET", PATH, claims=scale.claims("admin"), query=case.query)
        # A slow case gets fewer calls (column n), so that the section stays within minutes.
        calls = scale.timed_calls(timed, probe_ms, config.GDPR_CASE_BUDGET_S)
        lat = warm.measure(route, counter, warmup if calls == timed else min(warmup, 5), calls)
    except Exception as error:  # noqa: BLE001 - reported, the section goes on
        result.error = f"{type(error).__name__}: {error}"
        return result
    result.error, result.latency_ms, result.statements, result.statuses = (
        lat.error,
        lat.latency_ms,
        lat.statements,
        lat.statuses,
    )
    return result


# ---- the retention sweep ------------------------------------------------------------------------


@dataclass
class SweepResult:
    retention_days: int | None = None
    expired_before: int | None = None  # audit rows past the period (money rows kept longer excluded)
    expired_after: int | None = None
    run_s: float | None = None
    batches_ms: list[float] = field(default_factory=list)
    batch_rows: list[int] = field(default_factory=list)
    report: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def deleted(self) -> int:
        return sum(self.batch_rows)

    @property
    def longest_ms(self) -> float | None:
        return max(self.batches_ms) if self.batches_ms else None

    @property
    def passed(self) -> bool:
        if self.error or self.run_s is None or self.longest_ms is None:
            return False
        return (
            self.longest_ms <= config.GDPR_SWEEP_BATCH_MAX_MS
            and self.run_s <= config.GDPR_SWEEP_RUN_MAX_S
            and self.report.get("audit_rows_deleted") == self.deleted
        )

    def as_json(self) -> dict[str, Any]:
        batches = summary(self.batches_ms) if self.batches_ms else {}
        return {
            "audit_retention_days": self.retention_days,
            "expired_audit_rows_before": self.expired_before,
            "expired_audit_rows_after": self.expired_after,
            "audit_rows_deleted": self.deleted,
            "batches": len(self.batches_ms),
            "batch_ms": {k: round(v, 3) for k, v in batches.items()},
            "first_batches_ms": [round(v, 3) for v in self.batches_ms[:5]],
            "last_batches_ms": [round(v, 3) for v in self.batches_ms[-5:]],
            "run_s": None if self.run_s is None else round(self.run_s, 3),
            "sweep_report": self.report,
            "error": self.error,
            "target_longest_batch_ms": config.GDPR_SWEEP_BATCH_MAX_MS,
            "target_run_s": config.GDPR_SWEEP_RUN_MAX_S,
            "pass": self.passed,
        }


_EXPIRED = """
SELECT count(*) FROM audit_logs
WHERE occurred_at <= now() - make_interval(days => %(days)s)
  AND (action <> ALL (%(financial)s) OR occurred_at <= now() - make_interval(days => %(financial_days)s))
"""


@contextmanager
def _timed_audit_batches(result: SweepResult) -> Iterator[None]:
    """Times each ``delete_audit_rows`` call of the sweep (one transaction each) for the run."""
    from functions.compliance.retention import repository as retention_repository

    original = retention_repository.delete_audit_rows

    def timed(days: int, financial_days: int, limit: int) -> int:
        started = time.perf_counter()
        deleted = original(days, financial_days, limit)
        result.batches_ms.append((time.perf_counter() - started) * 1000)
        result.batch_rows.append(deleted)
        return deleted

    retention_repository.delete_audit_rows = timed
    try:
        yield
    finally:
        retention_repository.delete_audit_rows = original


def measure_sweep(url: str, rows: int) -> SweepResult:
    import psycopg

    from apranova import db
    from functions.compliance import settings as erasure_config
    from functions.compliance.retention import handler as retention
    from functions.compliance.retention.repository import FINANCIAL_ACTIONS
    from local.events import LambdaContext

    result = SweepResult(retention_days=retention_days_for(rows, SPAN_DAYS, round(rows * config.GDPR_SWEEP_SHARE)))
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                "UPDATE data_retention_policies SET retention_days = %s, is_active = true"
                " WHERE resource_type = 'AUDIT_LOGS'",
                (result.retention_days,),
            )
            financial_days = conn.execute(
                "SELECT greatest(retention_days, coalesce(legal_minimum_days, 0)) FROM data_retention_policies"
                " WHERE resource_type = 'PAYMENT_DATA'"
            ).fetchone()[0]
            expired = {"days": result.retention_days, "financial": list(FINANCIAL_ACTIONS)}
            expired["financial_days"] = max(result.retention_days, financial_days)
            result.expired_before = conn.execute(_EXPIRED, expired).fetchone()[0]
            erasure_config.reset()
            with db.function_slot("gdpr-retention"), _timed_audit_batches(result):
                started = time.perf_counter()
                result.report = retention.lambda_handler({}, LambdaContext("retention", timeout_seconds=900))
                result.run_s = time.perf_counter() - started
            result.expired_after = conn.execute(_EXPIRED, expired).fetchone()[0]
    except Exception as error:  # noqa: BLE001 - reported, the section goes on
        result.error = f"{type(error).__name__}: {error}"
    return result


# ---- the export ---------------------------------------------------------------------------------


@dataclass
class ExportResult:
    runs_s: list[float] = field(default_factory=list)
    zip_bytes: int | None = None
    outcomes: dict[str, int] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    student: dict[str, Any] = field(default_factory=dict)
    archive: dict[str, Any] = field(default_factory=dict)  # what the last archive holds
    error: str | None = None

    @property
    def p50_s(self) -> float | None:
        return summary(self.runs_s)["p50"] if self.runs_s else None

    @property
    def passed(self) -> bool:
        if self.error or not self.runs_s or set(self.outcomes) != {"ready"}:
            return False
        files = len(self.student.get("files", []))
        if self.archive.get("files") != files or not self.archive.get("cognito_found"):
            return False
        return self.p50_s is not None and self.p50_s <= config.GDPR_EXPORT_P50_S

    def as_json(self) -> dict[str, Any]:
        return {
            "runs_s": [round(v, 4) for v in self.runs_s],
            "wall_s": {k: round(v, 4) for k, v in summary(self.runs_s).items()} if self.runs_s else {},
            "zip_bytes": self.zip_bytes,
            "outcomes": self.outcomes,
            "rows_exported": self.counts,
            "student": {k: v for k, v in self.student.items() if k != "files"},
            "last_archive": self.archive,
            "error": self.error,
            "target_p50_s": config.GDPR_EXPORT_P50_S,
            "pass": self.passed,
        }


def measure_export(url: str, aws: Aws, user_id: str, runs: int) -> ExportResult:
    """``runs`` builds, each of a new PENDING request of the student (inserted before the clock)."""
    import psycopg

    from apranova import db
    from functions.compliance.export import worker as export_worker
    from local.events import LambdaContext

    result = ExportResult()
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            for _ in range(runs):
                export_id = conn.execute(
                    "INSERT INTO data_export_requests (user_id) VALUES (%s) RETURNING id::text", (user_id,)
                ).fetchone()[0]
                with db.function_slot("gdpr-export-worker"):
                    started = time.perf_counter()
                    outcome = export_worker.lambda_handler({"export_id": export_id}, LambdaContext("export-worker"))
                    elapsed = time.perf_counter() - started
                key = str(outcome.get("outcome"))
                result.outcomes[key] = result.outcomes.get(key, 0) + 1
                result.runs_s.append(elapsed)
                result.zip_bytes = outcome.get("size_bytes", result.zip_bytes)
                result.counts = outcome.get("counts") or result.counts
            s3_key = conn.execute("SELECT s3_key FROM data_export_requests WHERE id = %s", (export_id,)).fetchone()[0]
        result.archive = archive_contents(aws, s3_key, user_id)
    except Exception as error:  # noqa: BLE001 - reported, the section goes on
        result.error = f"{type(error).__name__}: {error}"
    return result


def archive_contents(aws: Aws, key: str | None, user_id: str) -> dict[str, Any]:
    """What the archive at ``key`` holds: entries, uploaded files, the Cognito record, audit rows."""
    import io
    import json
    import zipfile

    if key is None:
        return {"error": "no archive"}
    body = aws.s3.get_object(Bucket=aws.exports, Key=key)["Body"].read()
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        names = archive.namelist()
        data = json.loads(archive.read("data.json"))
    files = [n for n in names if n not in ("data.json", "README.md")]
    return {
        "entries": len(names),
        "files": len(files),
        "cognito_found": bool((data.get("cognito") or [{}])[0].get("found")),
        "audit_rows": len(data.get("audit_logs") or []),
        "user_id_matches": (data.get("export") or {}).get("user_id") == user_id,
    }


# ---- moto ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Aws:
    url: str
    s3: Any
    cognito: Any
    pool_id: str
    uploads: str
    exports: str


@contextmanager
def aws_stack() -> Iterator[Aws]:
    """moto's server in this process with the buckets, a KMS key, a user pool and a verified
    sender; the compliance functions' settings pointed at them for the section, put back after."""
    import logging

    from apranova import alerts, mail
    from functions.compliance import settings as compliance_config
    from functions.compliance import settings as erasure_config
    from local import moto_stack

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's per-request lines
    server = moto_stack.MotoServer()
    server.start()
    suffix = uuid.uuid4().hex[:6]
    uploads, exports = f"apranova-bench-uploads-{suffix}", f"apranova-bench-exports-{suffix}"
    env: dict[str, str] = {}
    saved: dict[str, str | None] = {}

    def reset() -> None:
        compliance_config.reset()
        erasure_config.reset()
        mail.reset()
        alerts.reset()

    try:
        s3 = moto_stack.client("s3", server.url)
        for bucket in (uploads, exports):
            s3.create_bucket(Bucket=bucket)
        moto_stack.client("ses", server.url).verify_email_identity(EmailAddress=SENDER)
        kms_key = moto_stack.client("kms", server.url).create_key(Description="exports")["KeyMetadata"]["KeyId"]
        cognito = moto_stack.client("cognito-idp", server.url)
        pool_id = cognito.create_user_pool(
            PoolName=f"bench-gdpr-{suffix}", UsernameAttributes=["email"], AutoVerifiedAttributes=["email"]
        )["UserPool"]["Id"]
        cognito.create_group(UserPoolId=pool_id, GroupName="students")
        env = {
            "AWS_ENDPOINT_URL": server.url,
            "UPLOADS_BUCKET": uploads,
            "EXPORTS_BUCKET": exports,
            "EXPORTS_KMS_KEY_ID": kms_key,
            "COGNITO_USER_POOL_ID": pool_id,
            "EMAIL_SENDER": SENDER,
            "OPS_EMAIL": OPS,
            "SPA_ORIGIN": "http://localhost:5173",
        }
        saved = {key: os.environ.get(key) for key in env}
        os.environ.update(env)
        reset()
        yield Aws(server.url, s3, cognito, pool_id, uploads, exports)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        reset()
        server.stop()


def cognito_student(aws: Aws, email: str) -> str:
    """The export's student in the user pool (as sign-up leaves them); their ``sub``."""
    created = aws.cognito.admin_create_user(
        UserPoolId=aws.pool_id,
        Username=email,
        UserAttributes=[
            {"Name": "email", "Value": email},
            {"Name": "email_verified", "Value": "true"},
            {"Name": "name", "Value": f"Scale Student {EXPORT_STUDENT}"},
        ],
        MessageAction="SUPPRESS",
    )["User"]
    aws.cognito.admin_add_user_to_group(UserPoolId=aws.pool_id, Username=email, GroupName="students")
    return next(a["Value"] for a in created["Attributes"] if a["Name"] == "sub")


def upload_files(aws: Aws, files: list[tuple[str, str]]) -> int:
    """An object of ``EXPORT_FILE_BYTES`` random (incompressible, as PDFs and images are) bytes
    at each submission's file key; bytes uploaded."""
    for key, content_type in files:
        aws.s3.put_object(Bucket=aws.uploads, Key=key, Body=os.urandom(EXPORT_FILE_BYTES), ContentType=content_type)
    return len(files) * EXPORT_FILE_BYTES


# ---- the section --------------------------------------------------------------------------------


def _timed(label: str, work: Callable[[], Any], timings: dict[str, float]) -> Any:
    started = time.perf_counter()
    value = work()
    timings[label] = round(time.perf_counter() - started, 2)
    return value


def _prepare(url: str, aws: Aws, rows: int, t0: datetime, start: datetime) -> dict[str, Any]:
    import psycopg

    timings: dict[str, float] = {}
    out: dict[str, Any] = {"timings_s": timings}
    with psycopg.connect(url, autocommit=True) as conn:
        # A direct seeding session (not through the pooler): its own limit above the role's 10 s default,
        # which a million-row load and VACUUM outlast.
        conn.execute("SET statement_timeout = '10min'")
        out["students"] = _timed("students", lambda: scale.seed_students(conn, 1, STUDENTS, t0, staff=True), timings)
        user_id = cognito_student(aws, f"scale.student.{EXPORT_STUDENT}@example.com")
        student = _timed("export student", lambda: seed_export_student(conn, user_id, t0), timings)
        student["user_id"] = user_id
        student["file_bytes"] = upload_files(aws, student["files"])
        out["export_student"] = student
        out["audit_rows"] = _timed(
            "audit rows", lambda: load_audit_rows(conn, rows, start, timedelta(days=SPAN_DAYS)), timings
        )
        _timed(
            "vacuum analyze + checkpoint",
            lambda: (conn.execute("VACUUM (ANALYZE)"), conn.execute("CHECKPOINT")),
            timings,
        )
        out["audit_table_mib"] = round(
            conn.execute("SELECT pg_total_relation_size('audit_logs')").fetchone()[0] / 2**20, 1
        )
        out["indexes"] = [
            r[0]
            for r in conn.execute(
                "SELECT indexdef FROM pg_indexes WHERE tablename = 'audit_logs' ORDER BY indexname"
            ).fetchall()
        ]
    print(
        f"  seeded {STUDENTS:,} students in {timings['students']:.1f} s; {out['audit_rows']:,} audit rows in "
        f"{timings['audit rows']:.1f} s ({out['audit_table_mib']:,} MiB with indexes); VACUUM (ANALYZE) + "
        f"CHECKPOINT {timings['vacuum analyze + checkpoint']:.1f} s",
        flush=True,
    )
    return out


def run(warmup: int, timed: int, quick: bool = False) -> dict[str, Any]:
    """The section: seeds, measures, prints its tables; returns what results.json keeps."""
    from bench import warm

    rows = config.GDPR_QUICK_AUDIT_ROWS if quick else config.GDPR_AUDIT_ROWS
    export_runs = config.GDPR_QUICK_EXPORT_RUNS if quick else config.GDPR_EXPORT_RUNS
    started = time.perf_counter()
    out: dict[str, Any] = {
        "audit_rows": rows,
        "span_days": SPAN_DAYS,
        "subjects": STUDENTS,
        "actions": len(CATALOGUE),
        "warmup_calls": warmup,
        "timed_calls": timed,
        "export_runs": export_runs,
    }
    print(
        f"\nGDPR  admin audit list, retention sweep and export worker on {rows:,} audit rows over {SPAN_DAYS} days "
        f"({STUDENTS:,} subjects, {len(CATALOGUE)} actions): in-process, PostgreSQL + moto (S3, KMS, Cognito, SES)"
    )
    now = datetime.now(UTC).replace(microsecond=0)
    t0, start = now - timedelta(days=200), now - timedelta(days=SPAN_DAYS)
    counter = StatementCounter()
    with warm.bench_database() as url, aws_stack() as aws, scale._quiet():
        out["seed"] = _prepare(url, aws, rows, t0, start)
        warm.use_database(url, counter)
        try:
            cursor, why = fiftieth_page_cursor(), "the list has fewer than 50 pages"
        except Exception as error:  # noqa: BLE001 - reported in the row, the section goes on
            cursor, why = None, f"walking to page 50: {type(error).__name__}: {error}"
        lists = [measure_list(url, case, counter, warmup, timed) for case in list_cases(start, cursor)]
        if cursor is None:
            lists.append(ListResult(ListCase("page 50 (keyset cursor)"), error=why))
        out["audit_list"] = {r.case.name: r.as_json() for r in lists}
        export = measure_export(url, aws, out["seed"]["export_student"]["user_id"], export_runs)
        export.student = out["seed"]["export_student"]
        out["export"] = export.as_json()
        # Last: it deletes the oldest rows.
        sweep = measure_sweep(url, rows)
        out["retention_sweep"] = sweep.as_json()
    out["pass"] = all(r.passed for r in lists) and sweep.passed and export.passed
    out["duration_s"] = round(time.perf_counter() - started, 1)
    _print(lists, sweep, export, out)
    return out


def _fmt(value: float | None, digits: int = 2) -> str | None:
    return None if value is None else f"{value:.{digits}f}"


def _print(lists: list[ListResult], sweep: SweepResult, export: ExportResult, out: dict[str, Any]) -> None:
    rows = []
    for r in lists:
        query = "&".join(f"{k}={v if len(v) <= 24 else v[:21] + '...'}" for k, v in r.case.query.items())
        rows.append(
            [
                r.case.name,
                query or "-",
                r.rows,
                _fmt(r.latency_ms.get("p50")),
                _fmt(r.latency_ms.get("p95")),
                _fmt(r.latency_ms.get("p99")),
                f"<= {config.GDPR_AUDIT_P95_MS:g}",
                r.statements.get("max"),
                f"<= {config.GDPR_AUDIT_STATEMENTS}",
                sum(r.statuses.values()),
                report.verdict(r.passed),
                r.error or ", ".join(f"{k}: {v}" for k, v in sorted(r.statuses.items())),
            ]
        )
    print(
        f"  GET {PATH} as an admin; {out['warmup_calls']} warm-up + {out['timed_calls']} timed calls per case "
        "(latencies in ms)"
    )
    headers = ["case", "query", "rows", "p50 ms", "p95 ms", "p99 ms", "target", "SQL/req", "target", "n", "result"]
    print(report.table([*headers, "statuses"], rows))
    print("  plans (EXPLAIN of the statement each case sent, with its parameters):")
    for r in lists:
        for plan in r.plans:
            print(f"    {r.case.name}: {', '.join(dict.fromkeys(plan.nodes)) or plan.error or 'no table read'}")

    batches = summary(sweep.batches_ms) if sweep.batches_ms else {}
    print(
        f"  retention sweep: AUDIT_LOGS period set to {sweep.retention_days} days; one run of the sweep's "
        "lambda_handler; a batch is one delete_audit_rows transaction (BEGIN to COMMIT: its rows' lock hold)"
    )
    if len(sweep.batches_ms) >= 20:
        first, last = sweep.batches_ms[:10], sweep.batches_ms[-10:]
        print(
            f"  batches of {max(sweep.batch_rows)} rows; mean of the first 10 {sum(first) / 10:.2f} ms, "
            f"of the last 10 {sum(last) / 10:.2f} ms (each walks past the rows the earlier ones deleted)"
        )
    print(
        report.table(
            [
                "expired before",
                "deleted",
                "left",
                "batches",
                "run s",
                "target",
                "batch p50 ms",
                "batch p95 ms",
                "longest ms",
                "target",
                "result",
                "error",
            ],
            [
                [
                    sweep.expired_before,
                    sweep.deleted,
                    sweep.expired_after,
                    len(sweep.batches_ms),
                    _fmt(sweep.run_s),
                    f"<= {config.GDPR_SWEEP_RUN_MAX_S:g}",
                    _fmt(batches.get("p50")),
                    _fmt(batches.get("p95")),
                    _fmt(sweep.longest_ms),
                    f"<= {config.GDPR_SWEEP_BATCH_MAX_MS:g}",
                    report.verdict(sweep.passed),
                    sweep.error or "-",
                ]
            ],
        )
    )
    student = export.student
    print(
        f"  export worker: one student with {student.get('projects')} projects, {student.get('submissions')} "
        f"submissions, {len(student.get('files', []))} files of {EXPORT_FILE_BYTES / 2**20:g} MiB in S3, "
        f"{student.get('audit_rows')} audit rows; a new request per run"
    )
    wall = summary(export.runs_s) if export.runs_s else {}
    print(
        report.table(
            ["runs", "p50 s", "max s", "target", "ZIP MiB", "entries", "rows exported", "result", "outcomes"],
            [
                [
                    len(export.runs_s),
                    _fmt(wall.get("p50")),
                    _fmt(wall.get("max")),
                    f"<= {config.GDPR_EXPORT_P50_S:g}",
                    None if export.zip_bytes is None else f"{export.zip_bytes / 2**20:.2f}",
                    export.archive.get("entries"),
                    sum(export.counts.values()) if export.counts else None,
                    report.verdict(export.passed),
                    export.error or ", ".join(f"{k}: {v}" for k, v in sorted(export.outcomes.items())),
                ]
            ],
        )
    )
    if export.archive:
        a = export.archive
        cognito = "found" if a.get("cognito_found") else "MISSING"
        print(
            f"  last archive: {a.get('files')} uploaded files, Cognito record {cognito}, "
            f"{a.get('audit_rows')} audit rows, rows exported by source: "
            + ", ".join(f"{k} {v}" for k, v in sorted(export.counts.items()) if v)
        )
    print(f"  section {out['duration_s']:.1f} s")
