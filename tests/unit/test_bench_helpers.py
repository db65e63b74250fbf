"""The bench's own helpers: statistics, module classification, statement counting, results file.

No timing is asserted here: the bench is a report (``make bench``), not a test.
"""

from __future__ import annotations

import json

import psycopg
import pytest

from bench import enrollment, report, webhook
from bench.modules import is_stdlib, third_party, unexpected_heavy
from bench.sqlcount import StatementCounter
from bench.stats import median, percentile, summary


def test_percentile_interpolates_between_ranks():
    values = [10.0, 1.0, 4.0, 3.0, 2.0]  # unsorted on purpose
    assert percentile(values, 0) == 1.0
    assert percentile(values, 100) == 10.0
    assert percentile(values, 50) == median(values) == 3.0
    assert percentile(values, 95) == pytest.approx(4.0 + (10.0 - 4.0) * 0.8)
    assert percentile([7.0], 99) == 7.0
    assert median([1.0, 2.0, 3.0, 4.0]) == 2.5


def test_percentile_refuses_nonsense():
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)
    with pytest.raises(ValueError, match="outside"):
        percentile([1.0], 101)


def test_summary_of_1_to_100():
    stats = summary([float(v) for v in range(1, 101)])
    assert (stats["min"], stats["max"], stats["mean"]) == (1.0, 100.0, 50.5)
    assert stats["p50"] == pytest.approx(50.5)
    assert stats["p99"] == pytest.approx(99.01)


def test_third_party_leaves_out_stdlib_our_own_and_cython_runtime_in_import_order():
    names = [
        "json",
        "email.utils",
        "pydantic",
        "apranova.db",
        "functions.health.handler",
        "psycopg.rows",
        "_sysconfigdata__linux_x86_64-linux-gnu",
        "cython_runtime",
        "_cython_3_3_1",
        "_decimal",
    ]
    assert third_party(names, {"apranova", "functions"}) == ["pydantic", "psycopg.rows"]
    assert is_stdlib("collections.abc") and not is_stdlib("boto3")


def test_heavy_packages_are_flagged_unless_allowed_and_a_bare_botocore_is_tolerated():
    heavy = ("stripe", "boto3", "botocore", "aws_xray_sdk")
    assert unexpected_heavy(["pydantic", "botocore"], heavy) == []
    assert unexpected_heavy(["botocore", "botocore.session"], heavy) == ["botocore"]
    assert unexpected_heavy(["stripe", "stripe._client", "aws_xray_sdk.core"], heavy) == ["stripe", "aws_xray_sdk"]
    assert unexpected_heavy(["boto3", "botocore.client"], heavy, allowed={"boto3", "botocore"}) == []


def test_the_counting_cursor_counts_every_statement_whichever_way_it_is_sent(pg_server):
    counter = StatementCounter()
    with psycopg.connect(pg_server.admin_url, autocommit=True, cursor_factory=counter.cursor_class()) as conn:
        conn.execute("SELECT 1").fetchone()  # Connection.execute makes its cursor through the factory
        assert counter.count == 1
        with conn.cursor() as cur:
            cur.execute("SELECT %s::int", (2,))
            assert cur.fetchone() == (2,)
            cur.executemany("SELECT %s::int", [(1,), (2,), (3,)])
            assert list(cur.stream("SELECT generate_series(1, 3)")) == [(1,), (2,), (3,)]
        assert counter.count == 1 + 1 + 3 + 1
        counter.reset()
        assert counter.count == 0


def test_results_are_written_as_json_with_their_units(tmp_path):
    results = {
        "timestamp_utc": report.timestamp(),
        "machine": report.machine(),
        "python": report.python(),
        "warm_latency": {"public track list": {"latency_ms": {"p95": 1.25}, "target_p95_ms": 5.0}},
    }
    path = report.write_results(results, tmp_path / "bench" / "results.json")
    assert json.loads(path.read_text()) == results
    assert results["timestamp_utc"].endswith("Z")
    assert not list(path.parent.glob("*.tmp"))


def test_table_is_fixed_width_with_numbers_right_aligned():
    text = report.table(["route", "p95 ms", "result"], [["tracks", "1.25", "PASS"], ["health", "10.50", None]])
    lines = text.splitlines()
    assert len({len(line.rstrip()) for line in lines[:2]}) == 1  # header and rule are as wide
    assert lines[2].index("1.25") + len("1.25") == lines[3].index("10.50") + len("10.50")
    assert lines[3].rstrip().endswith("-")
    assert report.verdict(True) == "PASS" and report.verdict(False) == "FAIL" and report.verdict(None) == "info"


def test_webhook_outcomes_are_status_and_outcome_and_any_other_answer_is_a_failure():
    assert webhook.outcome_key({"statusCode": 200, "body": '{"received": true, "outcome": "duplicate"}'}) == (
        "200 duplicate"
    )
    error = {"statusCode": 400, "body": '{"error": {"code": "invalid_signature", "message": "..."}}'}
    assert webhook.outcome_key(error) == "400 invalid_signature"
    assert webhook.outcome_key({"statusCode": 502, "body": "not json"}) == "502 no outcome"

    row = webhook.WebhookResult("new", "200 enrollment_started", p95_ms=30.0)
    assert row.passed is False  # nothing measured is not a pass
    for ms in (10.0, 12.0, 20.0):
        row.add("200 enrollment_started", ms, 7)
    row.finish()
    assert (row.requests, row.failures, row.passed) == (3, 0, True)
    assert row.statements == {"min": 7, "max": 7, "mean": 7.0}
    row.add("400 invalid_signature", 1.0, 0)
    assert (row.failures, row.passed) == (1, False)
    info = webhook.WebhookResult("again", "200 duplicate")
    info.add("200 duplicate", 2.0, 2)
    info.finish()
    assert info.passed is None and info.as_json()["latency_ms"]["p95"] == 2.0


def test_webhook_fixtures_are_pending_payments_of_their_own_users_named_by_the_event(database_url):
    pending = webhook.insert_pending(database_url, 3)
    assert len({p.user_id for p in pending}) == 3
    with psycopg.connect(database_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT p.id::text, p.user_id::text, p.status, p.track, p.amount_cents, p.stripe_checkout_session_id,"
            " u.email_verified FROM payments p JOIN users u ON u.id = p.user_id WHERE p.id = ANY(%s::uuid[])",
            ([p.payment_id for p in pending],),
        ).fetchall()
    assert sorted(rows) == sorted(
        (p.payment_id, p.user_id, "PENDING", "DP", 49900, p.session_id, True) for p in pending
    )
    event = json.loads(webhook.checkout_completed(pending[0]))
    session = event["data"]["object"]
    assert event["type"] == "checkout.session.completed" and event["id"].startswith("evt_")
    assert (session["id"], session["payment_status"]) == (pending[0].session_id, "paid")
    assert session["metadata"] == {"payment_id": pending[0].payment_id, "user_id": pending[0].user_id, "track": "DP"}


def test_the_stack_gets_the_callers_environment_without_the_benchs_or_another_stacks_settings(tmp_path):
    base = {
        "PATH": "/usr/bin",
        "HOME": "/home/dev",
        "AWS_ACCESS_KEY_ID": "bench",
        "MOTO_PORT": "5000",
        "POWERTOOLS_SERVICE_NAME": "bench",
        "STAGE": "bench",
        "DATABASE_URL": "postgresql://elsewhere/db",
        "COGNITO_USER_POOL_ID": "pool",
        "STRIPE_PORT": "12111",
        "PORT": "3000",
    }
    env = enrollment.stack_environment(base, state_dir=tmp_path, port=4321, database_url="postgresql://here/db")
    assert env == {
        "PATH": "/usr/bin",
        "HOME": "/home/dev",
        "PORT": "4321",
        "LOCAL_STATE_DIR": str(tmp_path),
        "DATABASE_URL": "postgresql://here/db",
    }


def test_a_profile_is_enrolled_only_with_tools_and_failed_provisioning_ends_the_wait():
    state = enrollment.enrollment_state
    assert state({"enrollment_status": "ENROLLED", "tools_provisioned": True}) == "enrolled"
    assert state({"enrollment_status": "ENROLLED", "tools_provisioned": False}) == "pending"
    assert state({"enrollment_status": "PENDING", "tools_provisioned": True}) == "pending"
    assert state({"enrollment_status": "ENROLLED", "tools_provisioned": False, "provisioning_status": "FAILED"}) == (
        "failed"
    )
    assert state({}) == "pending"


def test_a_track_passes_on_its_p95_and_fails_on_any_failed_journey_or_none():
    def journey(seconds, outcome="enrolled"):
        return enrollment.Journey("DP", outcome, webhook_s=0.2, enrolled_s=seconds if outcome == "enrolled" else None)

    fast = enrollment.TrackResult("DP", 3.0, [journey(s) for s in (1.0, 1.5, 2.0, 2.5, 2.9)])
    assert fast.passed is True and fast.failures == 0
    assert fast.enrolled_s == {"p50": 2.0, "p95": 2.82, "max": 2.9, "min": 1.0}
    slow = enrollment.TrackResult("DP", 3.0, [journey(s) for s in (1.0, 1.5, 2.0, 2.5, 3.5)])
    assert slow.enrolled_s["p95"] == 3.3 and slow.passed is False
    one_lost = enrollment.TrackResult("DP", 3.0, [journey(1.0), journey(None, "timeout")])
    assert one_lost.passed is False and one_lost.failures == 1
    assert one_lost.enrolled_s["max"] == 1.0  # the times are of the journeys that got there
    assert one_lost.outcomes() == {"enrolled": 1, "timeout": 1}
    assert enrollment.TrackResult("DP").passed is False  # nothing ran
    assert enrollment.TrackResult("FSD", error="StackFailed: no stack.json").passed is False
    data = json.loads(json.dumps(one_lost.as_json()))
    assert (data["journeys"], data["failures"], data["pass"], data["target_p95_s"]) == (2, 1, False, 3.0)
    assert data["runs"][1] == {
        "outcome": "timeout",
        "webhook_answered_s": 0.2,
        "webhook_to_enrolled_s": None,
        "profile_polls": 0,
    }


# ---- the scale section (bench/scale.py) ---------------------------------------------------------------


def test_scale_plan_nodes_name_each_relation_read_and_flag_seq_scans_of_student_tables_only():
    from bench import scale

    plan = {
        "Node Type": "Nested Loop",
        "Plans": [
            {"Node Type": "Seq Scan", "Relation Name": "projects"},
            {
                "Node Type": "Hash Join",
                "Plans": [
                    {"Node Type": "Index Scan", "Relation Name": "users", "Index Name": "users_pkey"},
                    {"Node Type": "Hash", "Plans": [{"Node Type": "Seq Scan", "Relation Name": "submissions"}]},
                ],
            },
        ],
    }
    nodes = scale.plan_nodes(plan)
    assert nodes == ["Seq Scan on projects", "Index Scan on users using users_pkey", "Seq Scan on submissions"]
    assert scale.scaled_seq_scans(nodes) == ["Seq Scan on submissions"]  # the catalogue may be scanned


def test_scale_verdicts_for_student_routes_and_staff_routes():
    from bench import scale
    from bench.config import SCALE_FLAT_RATIO, STUDENT_GET_STATEMENTS

    assert scale.flat_ratio(2.0, 3.0) == 1.5 and scale.flat_ratio(None, 3.0) is None and scale.flat_ratio(0, 1) is None
    assert scale.student_route_passed(SCALE_FLAT_RATIO, STUDENT_GET_STATEMENTS, all_ok=True) is True
    assert scale.student_route_passed(SCALE_FLAT_RATIO + 0.01, 2, all_ok=True) is False
    assert scale.student_route_passed(1.0, STUDENT_GET_STATEMENTS + 1, all_ok=True) is False
    assert scale.student_route_passed(1.0, 2, all_ok=False) is False  # a non-200 at either size
    assert scale.student_route_passed(1.0, 2, all_ok=True, seq_scans=1) is False
    assert scale.student_route_passed(None, 2, all_ok=True) is False  # measured at one size only

    def result(caller, p95s, statements=2, statuses=None, scans=()):
        r = scale.RouteResult(scale.ScaleRoute("r", caller, "/api/x/"))
        for size, p95 in p95s.items():
            r.at[size] = scale.Samples()
            r.at[size].add([p95] * 10, [statements] * 10, statuses or {"200": 10}, None)
        r.plans = [scale.StatementPlan("SELECT 1", nodes=list(scans))]
        return r

    assert result("student", {1000: 2.0, 100000: 2.5}).passed is True
    assert result("student", {1000: 2.0, 100000: 3.2}).passed is False
    assert result("student", {1000: 2.0, 100000: 2.0}, statements=4).passed is False
    assert result("trainer", {1000: 2.0, 100000: 40.0}).passed is None  # staff routes: reported
    assert result("admin", {1000: 2.0, 100000: 2.0}, scans=["Seq Scan on users"]).passed is False
    assert result("admin", {1000: 2.0, 100000: 2.0}, statuses={"200": 9, "500": 1}).passed is False
    nowhere = scale.ScaleRoute("r", "student", "/api/no-such-route/")
    assert scale.probe(nowhere) == ("not in the route table", 0.0, [])  # reported, not raised
    missing = scale.RouteResult(nowhere, missing="not in the route table")
    assert missing.passed is False and missing.as_json()["missing"] == "not in the route table"
    data = json.loads(json.dumps(result("student", {1000: 2.0, 100000: 2.5}).as_json()))
    assert (data["p95_ratio"], data["max_statements"], data["pass"]) == (1.25, 2, True)
    assert data["at"]["100000"]["requests"] == 10


def test_scale_slow_routes_get_fewer_calls_within_their_budget():
    from bench.scale import timed_calls

    assert timed_calls(500, probe_ms=6.0, budget_s=15.0) == 500
    assert timed_calls(500, probe_ms=150.0, budget_s=15.0) == 100  # 15 s / 150 ms per pair of calls
    assert timed_calls(500, probe_ms=5000.0, budget_s=15.0) == 20  # never fewer than 20
    assert timed_calls(10, probe_ms=5000.0, budget_s=15.0) == 10  # nor more than asked
    assert timed_calls(500, probe_ms=0.0, budget_s=15.0) == 500


def test_scale_profiles_spread_every_profile_over_every_block_trainer():
    from bench import scale

    assert len(scale.PROFILES) == 20
    pending = sum(1 for p in scale.PROFILES if "SUBMITTED" in p) / len(scale.PROFILES)
    assert pending == 0.2
    per_trainer = scale.students_per_trainer(100_000)
    regular = [per_trainer[k] for k in range(2 * scale.TRAINERS_PER_TRACK) if k != 4]
    assert set(regular) == {10_000}
    assert scale.NEW_TRAINER not in per_trainer and per_trainer[scale.CAUGHT_UP_TRAINER] == 4_500
    profiles_of = {}
    for i in range(1, 2001):
        profiles_of.setdefault(scale.trainer_of(i), set()).add(scale.profile_of(i))
    for k in range(scale.TRAINERS_PER_TRACK):  # each DP trainer has every DP profile
        assert profiles_of[k] == {scale.profile_of(i) for i in range(1, 21, 2)}
    assert all("SUBMITTED" not in p for p in profiles_of[scale.CAUGHT_UP_TRAINER])
    assert scale.trainer_of(scale.MEASURED_STUDENT) == 0
    assert scale.track_of(scale.MEASURED_STUDENT) == "DP"
    assert scale.profile_of(scale.MEASURED_STUDENT) == ("APPROVED", "IN_PROGRESS")
    assert scale.attempts_of(scale.MEASURED_STUDENT, "APPROVED") == 2


def test_scale_seed_is_a_state_the_app_could_reach_and_the_same_people_whatever_the_size(make_database):
    """The bulk SQL against a real schema: ids and trainers as the Python mirror says, each stored
    project status the one learning.derive_status gives from the latest attempts, consent current."""
    from datetime import UTC, datetime, timedelta

    from psycopg.rows import dict_row

    from apranova.learning import derive_status, learner
    from bench import scale
    from functions.migrate.runner import migrate
    from functions.migrate.seed import seed_database

    url = make_database()
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(days=200)
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        migrate(conn)
        seed_database(conn)
        first = scale.seed_students(conn, 1, 40, t0, staff=True)
        grown = scale.seed_students(conn, 41, 120, t0, staff=False)
        assert first["users"] == 40 and grown["users"] == 80 and first["staff"] == scale.CAUGHT_UP_TRAINER + 2
        assert scale.counts(conn)["students"] == 120
        students = conn.execute(
            "SELECT u.id::text AS id, u.email::text AS email, t.code AS track, a.trainer_id::text AS trainer"
            " FROM users u JOIN tracks t ON t.id = u.track_id JOIN trainer_assignments a ON a.student_id = u.id"
            " WHERE u.role = 'student'"
        ).fetchall()
        by_id = {s["id"]: s for s in students}
        for i in range(1, 121):
            row = by_id[scale.student_uuid(i)]
            assert row["email"] == f"scale.student.{i}@example.com" and row["track"] == scale.track_of(i)
            assert row["trainer"] == scale.trainer_uuid(scale.trainer_of(i))
        progress = conn.execute(
            "SELECT sp.student_id::text AS student, p.number, sp.status,"
            " array(SELECT (SELECT s.status FROM submissions s WHERE s.student_id = sp.student_id"
            "               AND s.deliverable_id = d.id ORDER BY s.attempt DESC LIMIT 1)"
            "       FROM deliverables d WHERE d.project_id = p.id AND d.is_required AND d.is_active) AS latest,"
            " (SELECT max(attempt) FROM submissions s WHERE s.student_id = sp.student_id"
            "  AND s.project_id = p.id) AS attempts"
            " FROM student_progress sp JOIN projects p ON p.id = sp.project_id"
        ).fetchall()
        assert len(progress) == sum(len(scale.profile_of(i)) for i in range(1, 121))
        index = {scale.student_uuid(i): i for i in range(1, 121)}
        for row in progress:
            i = index[row["student"]]
            assert row["status"] == scale.profile_of(i)[row["number"] - 1]
            assert derive_status(row["status"], row["latest"]) == row["status"]
            assert (row["attempts"] or 0) == scale.attempts_of(i, row["status"])
        assert learner(conn, scale.student_uuid(scale.MEASURED_STUDENT)).track == "DP"  # enrolled, consent current


def test_gdpr_kinds_are_drawn_by_their_weights_and_the_period_leaves_the_share_asked_past_it():
    from bench import gdpr

    assert gdpr.thresholds([1, 1, 2]) == [0.0, 0.25, 0.5]
    assert gdpr.thresholds([5]) == [0.0]
    for bad in ([], [0, 0], [1, -1]):
        with pytest.raises(ValueError, match="weights"):
            gdpr.thresholds(bad)
    # 10 % of rows spread evenly over 730 days are older than 657 days; rounded up, never more.
    assert gdpr.retention_days_for(1_000_000, 730, 100_000) == 657
    assert gdpr.retention_days_for(1_000, 730, 333) == 487  # 730 * 0.667 = 486.9
    assert gdpr.retention_days_for(10, 730, 10) == 1 and gdpr.retention_days_for(10, 730, 0) == 730
    with pytest.raises(ValueError, match="within"):
        gdpr.retention_days_for(10, 730, 11)


def test_gdpr_catalogue_writes_only_what_the_trail_and_the_audit_list_know():
    import re

    from apranova.audit import AuditAction
    from bench import gdpr

    actions = [k.action for k in gdpr.CATALOGUE]
    assert len(actions) == len(set(actions)) and set(actions) <= {a.value for a in AuditAction}
    assert all(k.actor in ("self", "trainer", "admin", "system") and k.weight > 0 for k in gdpr.CATALOGUE)
    # The admin list filters resource_type by this pattern: every type written can be asked for.
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", k.resource_type or "") for k in gdpr.CATALOGUE)
    # Only an action of a person can be "self": a row about no one has no student acting.
    assert all(k.about_person for k in gdpr.CATALOGUE if k.actor == "self")
    assert max(gdpr.CATALOGUE, key=lambda k: k.weight).action == "LOGIN"


def test_gdpr_seed_is_rows_the_schema_accepts_in_time_order_and_the_export_students_history(make_database):
    """The bulk audit load and the export's student against a real schema: ids follow time, who
    acted follows the kind, and the student's files sit under the prefix the export worker lists."""
    import uuid
    from datetime import UTC, datetime, timedelta

    from psycopg.rows import dict_row

    from bench import gdpr, scale
    from functions.compliance import register
    from functions.migrate.runner import migrate
    from functions.migrate.seed import seed_database

    url = make_database()
    now = datetime.now(UTC).replace(microsecond=0)
    start, span = now - timedelta(days=gdpr.SPAN_DAYS), timedelta(days=gdpr.SPAN_DAYS)
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        migrate(conn)
        seed_database(conn)
        scale.seed_students(conn, 1, 40, now - timedelta(days=200), staff=True)
        assert gdpr.load_audit_rows(conn, 5_000, start, span) == 5_000
        rows = conn.execute(
            "SELECT id, occurred_at, action, actor_id::text AS actor, actor_role, subject_id::text AS subject,"
            " resource_type, resource_id FROM audit_logs ORDER BY id"
        ).fetchall()
        assert [r["occurred_at"] for r in rows] == sorted(r["occurred_at"] for r in rows)
        assert rows[0]["occurred_at"] == start and rows[-1]["occurred_at"] > now - timedelta(days=1)
        kinds = {k.action: k for k in gdpr.CATALOGUE}
        subjects = {scale.student_uuid(i) for i in range(1, gdpr.STUDENTS + 1)}
        for row in rows:
            kind = kinds[row["action"]]
            assert (row["subject"] in subjects) if kind.about_person else row["subject"] is None
            assert row["resource_type"] == kind.resource_type
            if kind.actor == "self":
                assert row["actor"] == row["subject"] and row["actor_role"] == "student"
            elif kind.actor == "system":
                assert row["actor"] is None and row["actor_role"] is None
            if kind.resource_type == "user":
                assert row["resource_id"] == row["subject"]
        counts = {a: sum(1 for r in rows if r["action"] == a) for a in kinds}
        assert max(counts, key=counts.get) == "LOGIN" and 1_200 < counts["LOGIN"] < 1_800

        user_id = str(uuid.uuid4())
        student = gdpr.seed_export_student(conn, user_id, now - timedelta(days=200))
        assert (student["projects"], student["submissions"], student["audit_rows"]) == (3, 7, gdpr.EXPORT_AUDIT_ROWS)
        assert len(student["files"]) == 3
        assert all(key.startswith(register.uploads_prefix(user_id)) for key, _ in student["files"])
        user = conn.execute("SELECT email, enrollment_status FROM users WHERE id = %s", (user_id,)).fetchone()
        assert user == {"email": f"scale.student.{gdpr.EXPORT_STUDENT}@example.com", "enrollment_status": "ENROLLED"}


def test_concurrent_enrollment_is_judged_on_the_server_recorded_time_and_counts_an_unrecorded_one():
    def journey(server_s, seen_s, outcome="enrolled"):
        return enrollment.Journey("DP", outcome=outcome, enrolled_s=seen_s, server_s=server_s, paid_at=1.0)

    run = enrollment.ConcurrentRun(3, journeys=[journey(2.0, 6.0), journey(3.0, 6.5), journey(4.0, 7.0)])
    assert run.server_s["p95"] == pytest.approx(3.9) and run.enrolled_s["p95"] > run.target_p95_s
    assert run.passed is True  # the target applies to the server's record; the polls add up to 1.5 s
    late = enrollment.ConcurrentRun(3, journeys=[journey(2.0, 2.5), journey(3.0, 3.5), journey(6.0, 6.5)])
    assert late.passed is False
    unrecorded = enrollment.ConcurrentRun(2, journeys=[journey(2.0, 2.5), journey(None, 3.0)])
    assert unrecorded.failures == 1 and unrecorded.passed is False
    assert enrollment.ConcurrentRun(2, journeys=[journey(2.0, 2.5)]).failures == 1  # a payer never ran


def test_cpu_seconds_reads_the_process_and_sorts_its_children():
    import os
    import subprocess
    import sys
    import time

    # Two busy children: one whose command line names the Lambda workers' module, one other.
    busy = "import time; sum(range(3_000_000)); print('done', flush=True); time.sleep(30)"
    worker = subprocess.Popen([sys.executable, "-c", busy, "local.lambda_workers"], stdout=subprocess.PIPE)
    tool = subprocess.Popen([sys.executable, "-c", busy], stdout=subprocess.PIPE)
    try:
        for child in (worker, tool):  # both have burnt their CPU and sleep: their times no longer move
            assert child.stdout is not None and child.stdout.readline() == b"done\n"
        time.sleep(0.05)
        cpu = enrollment.cpu_seconds(os.getpid())
        assert cpu["stack"] > 0 and cpu["workers"] > 0 and cpu["other"] > 0
        assert cpu["workers"] == pytest.approx(enrollment.cpu_seconds(worker.pid)["stack"], abs=0.02)
    finally:
        for child in (worker, tool):
            child.kill()
            child.wait()
    assert enrollment.cpu_seconds(2**22 + 12345) == {}  # above any pid: no such process
