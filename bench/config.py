"""What the bench measures and the targets of docs/principles.md §7. Later issues add their routes to ``ROUTES``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Fresh interpreters per measured import, and the in-process request counts.
IMPORT_RUNS = 7
WARMUP_CALLS = 50
TIMED_CALLS = 500
MEMORY_REQUESTS = 200

# Targets (docs/principles.md §7).
IMPORT_RATIO_MAX = 1.2  # handler import / import of the third-party modules it pulls in
PEAK_RSS_MAX_MIB = 80.0
PUBLIC_LIST_P95_MS, PUBLIC_LIST_STATEMENTS = 5.0, 1
STUDENT_GET_P95_MS, STUDENT_GET_STATEMENTS = 10.0, 3
WEBHOOK_P95_MS = 30.0  # verify, record, start the enrollment execution
ENROLLMENT_P95_S = 3.0  # webhook → enrolled with tools, in the local stack
# The scale section (bench/scale.py): the same callers at both sizes; student routes flat between them.
SCALE_STUDENTS = (1_000, 100_000)
SCALE_FLAT_RATIO = 1.5  # p95 at the larger size / p95 at the smaller
# Issue 18: a busy trainer's review queue (10,000 students of 100,000) and the staff reads the
# trainer desk and the admin console page through: p95 at the larger size.
STAFF_P95_MS = 10.0
SCALE_ROUTE_BUDGET_S = 15.0  # per route: a slow route gets fewer timed calls (at least 20 per size)

# The webhook section: every request is a new payment with a StartExecution against moto, and is
# then delivered again (the duplicate path), so fewer calls than the GET routes.
WEBHOOK_WARMUP_CALLS = 20
WEBHOOK_TIMED_CALLS = 300

# The enrollment section (bench/enrollment.py): journeys per track through a local stack of its own.
ENROLLMENT_JOURNEYS = 5
ENROLLMENT_QUICK_JOURNEYS = 2
ENROLLMENT_POLL_S = 0.05  # GET /api/auth/user/ until enrolled
ENROLLMENT_TIMEOUT_S = 60.0  # a journey not enrolled by then is a failure
STACK_START_TIMEOUT_S = 180.0  # the first start after a change to the workflows synthesizes them (~20 s)

# Our own top-level packages: everything else a handler pulls in is stdlib or third-party.
OWN_PACKAGES = frozenset({"apranova", "functions"})

# Heavy packages that no API function should import unless it calls the service. ``botocore`` as a
# bare package is tolerated: Powertools imports it (and nothing under it) to register its user agent.
HEAVY_PACKAGES = ("stripe", "boto3", "botocore", "s3transfer", "aws_xray_sdk")
HEAVY_ALLOWED: dict[str, frozenset[str]] = {
    "migrate": frozenset({"boto3", "botocore", "s3transfer"}),  # uploads the dataset to S3
    # Every auth route calls Cognito: its error classes at import, boto3 itself on first call.
    "auth": frozenset({"boto3", "botocore", "s3transfer"}),
    "admin": frozenset({"boto3", "botocore", "s3transfer"}),  # the role route moves Cognito groups
    # The Stripe integration: every webhook delivery verifies its signature with the SDK, reads the
    # signing secret from SSM and starts a workflow; the payments API's checkout, payment, verify
    # and refund routes call Stripe and read its key from SSM.
    "payments": frozenset({"stripe", "boto3", "botocore", "s3transfer"}),
    "payments-webhook": frozenset({"stripe", "boto3", "botocore", "s3transfer"}),
    # Five of its seven routes read a password from SSM or start/stop a task in ECS; it shares the
    # workspace provisioner, whose error handling names botocore's exception classes.
    "tools": frozenset({"botocore"}),
}

# A signed-in student, as the API Gateway JWT authorizer passes the claims (for student routes).
STUDENT_CLAIMS: dict[str, Any] = {
    "sub": "00000000-0000-4000-8000-00000000b001",
    "email": "bench.student@example.com",
    "token_use": "access",
    "cognito:groups": "[students]",
}


@dataclass(frozen=True)
class BenchRoute:
    name: str
    method: str
    path: str
    claims: dict[str, Any] | None = None
    p95_ms: float | None = None  # None: reported, no target
    max_statements: int | None = None
    query: dict[str, str] = field(default_factory=dict)
    # A JSON body; ``{email}``, ``{password}`` and ``{refresh}`` are filled with the bench
    # student's (see bench/identity.py) before the run.
    body: str | None = None


ROUTES: tuple[BenchRoute, ...] = (
    BenchRoute("health", "GET", "/api/health/"),
    BenchRoute(
        "public track list",
        "GET",
        "/api/curriculum/tracks/",
        p95_ms=PUBLIC_LIST_P95_MS,
        max_statements=PUBLIC_LIST_STATEMENTS,
    ),
    # Login and refresh are round trips to Cognito (moto on loopback here): the numbers include it.
    BenchRoute("login", "POST", "/api/auth/login/", body='{{"email": "{email}", "password": "{password}"}}'),
    BenchRoute("token refresh", "POST", "/api/auth/token/refresh/", body='{{"refresh": "{refresh}"}}'),
    BenchRoute(
        "profile (GET /api/auth/user/)",
        "GET",
        "/api/auth/user/",
        claims=STUDENT_CLAIMS,
        p95_ms=STUDENT_GET_P95_MS,
        max_statements=STUDENT_GET_STATEMENTS,
    ),
)

# The GDPR section (bench/gdpr.py): the admin audit list on a large trail, the retention sweep on
# it, and one student's export.
GDPR_AUDIT_ROWS = 1_000_000  # over two years, 10,000 subjects
GDPR_QUICK_AUDIT_ROWS = 200_000
GDPR_AUDIT_P95_MS = 20.0  # every filter and any page of GET /api/admin/audit-logs/
# The list's one statement, plus the guard's session read (the caller's row by primary key: issue 15).
GDPR_AUDIT_STATEMENTS = 2
GDPR_CASE_BUDGET_S = 5.0  # per list case: a slow one gets fewer timed calls (at least 20)
GDPR_SWEEP_SHARE = 0.1  # of the audit rows past the AUDIT_LOGS period for the sweep's run
GDPR_SWEEP_BATCH_MAX_MS = 100.0  # one batch's transaction: how long its rows stay locked
GDPR_SWEEP_RUN_MAX_S = 60.0  # the whole run (every policy); the Lambda's timeout is 15 minutes
GDPR_EXPORT_RUNS = 5
GDPR_QUICK_EXPORT_RUNS = 2
GDPR_EXPORT_P50_S = 10.0  # the worker's timeout is 5 minutes
