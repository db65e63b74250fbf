"""The bench's own helpers: statistics, module classification, statement counting, results file.

No timing is asserted here: the bench is a report (``make bench``), not a test.
"""

from __future__ import annotations

import json

import psycopg
import pytest

from bench import report, webhook
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
