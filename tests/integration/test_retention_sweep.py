"""The daily retention sweep (functions/compliance/retention/handler.py) on the real database with S3 in moto
(in-process): each resource a retention policy governs is deleted once past its period and kept
within it, what the law keeps is never deleted, inactive policies sweep nothing, the statements are
batched, and a second run finds nothing to do."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from functions.compliance import settings as erasure_config
from functions.compliance.retention import handler as retention
from local.events import LambdaContext

UPLOADS = "retention-uploads"
EXPORTS = "retention-exports"


class LongContext(LambdaContext):
    def get_remaining_time_in_millis(self) -> int:
        return 15 * 60 * 1000


@pytest.fixture(scope="module", autouse=True)
def s3(database_url: str) -> Iterator[Any]:
    try:
        with pytest.MonkeyPatch.context() as mp, mock_aws():
            mp.setenv("UPLOADS_BUCKET", UPLOADS)
            mp.setenv("EXPORTS_BUCKET", EXPORTS)
            client = boto3.client("s3", region_name="us-east-1")
            client.create_bucket(Bucket=UPLOADS)
            client.put_bucket_versioning(Bucket=UPLOADS, VersioningConfiguration={"Status": "Enabled"})
            client.create_bucket(Bucket=EXPORTS)
            erasure_config.reset()
            yield client
    finally:
        erasure_config.reset()


@pytest.fixture(autouse=True)
def fresh_settings() -> Iterator[None]:
    erasure_config.reset()
    yield
    erasure_config.reset()


def sweep() -> dict[str, Any]:
    return retention.lambda_handler({}, LongContext("apranova-compliance-retention"))


def keys(s3: Any, bucket: str, prefix: str) -> list[str]:
    """Every version and delete marker under ``prefix``."""
    page = s3.list_object_versions(Bucket=bucket, Prefix=prefix)
    return [v["Key"] for v in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]]


@pytest.fixture
def student(conn) -> Iterator[str]:
    user_id = str(uuid.uuid4())
    conn.execute(
        "INSERT INTO users (id, email, name, track_id, enrollment_status, enrolled_at)"
        " VALUES (%s, %s, 'Rita Retention', (SELECT id FROM tracks WHERE code = 'DP'), 'ENROLLED', now())",
        (user_id, f"retention-{user_id[:8]}@example.com"),
    )
    yield user_id
    conn.execute("DELETE FROM users WHERE id = %s", (user_id,))


@pytest.fixture
def policy(conn) -> Iterator[Any]:
    """Changes a policy for one test; puts every policy back afterwards."""
    saved = conn.execute("SELECT resource_type, retention_days, is_active FROM data_retention_policies").fetchall()

    def change(resource_type: str, **values: Any) -> None:
        for column, value in values.items():
            assert column in ("retention_days", "is_active")
            conn.execute(
                f"UPDATE data_retention_policies SET {column} = %s WHERE resource_type = %s",  # noqa: S608
                (value, resource_type),
            )

    yield change
    for row in saved:
        conn.execute(
            "UPDATE data_retention_policies SET retention_days = %s, is_active = %s WHERE resource_type = %s",
            (row["retention_days"], row["is_active"], row["resource_type"]),
        )


# --- EXPORTS -------------------------------------------------------------------------------------------


def _export(conn, s3, user_id: str, status: str, *, expires: str | None, completed: str | None) -> tuple[str, str]:
    export_id = str(uuid.uuid4())
    key = f"exports/{user_id}/{export_id}.zip"
    if status == "READY":
        s3.put_object(Bucket=EXPORTS, Key=key, Body=b"PK zip")
    conn.execute(
        """
        INSERT INTO data_export_requests (id, user_id, status, s3_key, requested_at, completed_at, expires_at)
        VALUES (%s, %s, %s, %s, now() - interval '30 days',
                now() - %s::interval, now() - %s::interval)
        """,
        (export_id, user_id, status, key, completed or "0 days", expires or "0 days"),
    )
    if expires is None:
        conn.execute("UPDATE data_export_requests SET expires_at = NULL WHERE id = %s", (export_id,))
    return export_id, key


def _export_status(conn, export_id: str) -> str | None:
    row = conn.execute("SELECT status FROM data_export_requests WHERE id = %s", (export_id,)).fetchone()
    return row["status"] if row else None


def test_exports_past_their_expiry_lose_their_archive_and_expire(conn, s3, student):
    expired, expired_key = _export(conn, s3, student, "READY", expires="1 hour", completed="7 days 1 hour")
    valid, valid_key = _export(conn, s3, student, "READY", expires="-6 days", completed="1 day")
    # Past the EXPORTS period (7 days) even though its link claims a longer life.
    too_old, too_old_key = _export(conn, s3, student, "READY", expires="-30 days", completed="8 days")
    report = sweep()
    assert report["exports_expired"] >= 2
    assert (_export_status(conn, expired), _export_status(conn, too_old)) == ("EXPIRED", "EXPIRED")
    assert keys(s3, EXPORTS, expired_key) == [] and keys(s3, EXPORTS, too_old_key) == []
    assert _export_status(conn, valid) == "READY"
    assert keys(s3, EXPORTS, valid_key) == [valid_key]


def test_ended_export_records_are_deleted_a_period_after_they_ended(conn, s3, student):
    old_expired, _ = _export(conn, s3, student, "EXPIRED", expires="8 days", completed="15 days")
    recent_expired, _ = _export(conn, s3, student, "EXPIRED", expires="6 days", completed="13 days")
    old_failed, _ = _export(conn, s3, student, "FAILED", expires=None, completed="8 days")
    recent_failed, _ = _export(conn, s3, student, "FAILED", expires=None, completed="1 day")
    sweep()
    assert (_export_status(conn, old_expired), _export_status(conn, old_failed)) == (None, None)
    assert (_export_status(conn, recent_expired), _export_status(conn, recent_failed)) == ("EXPIRED", "FAILED")


# --- LOGS ----------------------------------------------------------------------------------------------


def _event(conn, age: str, *, processed: bool = True) -> str:
    event_id = f"evt_{uuid.uuid4().hex}"
    conn.execute(
        "INSERT INTO stripe_events (event_id, type, received_at, processed_at)"
        " VALUES (%s, 'checkout.session.completed', now() - %s::interval,"
        " CASE WHEN %s THEN now() - %s::interval END)",
        (event_id, age, processed, age),
    )
    return event_id


def _events_left(conn, ids: list[str]) -> set[str]:
    rows = conn.execute("SELECT event_id FROM stripe_events WHERE event_id = ANY (%s)", (ids,)).fetchall()
    return {r["event_id"] for r in rows}


def test_processed_stripe_events_are_deleted_after_the_logs_period(conn):
    old, recent, unprocessed = (
        _event(conn, "91 days"),
        _event(conn, "89 days"),
        _event(conn, "200 days", processed=False),
    )
    assert sweep()["stripe_events_deleted"] >= 1
    assert _events_left(conn, [old, recent, unprocessed]) == {recent, unprocessed}


def test_the_sweep_is_batched_and_a_capped_run_is_continued_by_the_next(conn, monkeypatch):
    old = [_event(conn, "100 days") for _ in range(5)]
    monkeypatch.setenv("RETENTION_BATCH_SIZE", "2")
    monkeypatch.setenv("RETENTION_MAX_BATCHES", "1")
    erasure_config.reset()
    assert sweep()["stripe_events_deleted"] == 2
    assert len(_events_left(conn, old)) == 3
    monkeypatch.setenv("RETENTION_MAX_BATCHES", "10")
    erasure_config.reset()
    assert sweep()["stripe_events_deleted"] == 3  # three batches: 2, 1 (short: done)
    assert _events_left(conn, old) == set()


def test_an_inactive_policy_sweeps_nothing(conn, policy):
    old = _event(conn, "400 days")
    policy("LOGS", is_active=False)
    report = sweep()
    assert "stripe_events_deleted" not in report
    assert _events_left(conn, [old]) == {old}


def test_a_changed_period_is_the_one_applied(conn, policy):
    event = _event(conn, "40 days")
    policy("LOGS", retention_days=30)
    sweep()
    assert _events_left(conn, [event]) == set()


# --- AUDIT_LOGS ----------------------------------------------------------------------------------------


def _audit(conn, action: str, age: str) -> int:
    return conn.execute(
        "INSERT INTO audit_logs (action, occurred_at, details) VALUES (%s, now() - %s::interval, '{}') RETURNING id",
        (action, age),
    ).fetchone()["id"]


def _audits_left(conn, ids: list[int]) -> set[int]:
    rows = conn.execute("SELECT id FROM audit_logs WHERE id = ANY (%s)", (ids,)).fetchall()
    return {r["id"] for r in rows}


def test_audit_rows_past_the_period_are_deleted_those_about_money_kept_as_long_as_payments(conn, policy):
    old = _audit(conn, "LOGIN", "366 days")
    recent = _audit(conn, "LOGIN", "364 days")
    money = _audit(conn, "PAYMENT", "400 days")
    refund = _audit(conn, "REFUND_DECIDED", "2000 days")
    ancient_money = _audit(conn, "PAYMENT", "2556 days")
    report = sweep()
    assert report["audit_rows_deleted"] >= 2
    assert _audits_left(conn, [old, recent, money, refund, ancient_money]) == {recent, money, refund}
    # Switching the PAYMENT_DATA row off does not switch off the law.
    policy("PAYMENT_DATA", is_active=False)
    sweep()
    assert _audits_left(conn, [money, refund]) == {money, refund}
    # The sweep records what it did, with counts only.
    row = conn.execute("SELECT * FROM audit_logs WHERE action = 'RETENTION_SWEEP' ORDER BY id DESC LIMIT 1").fetchone()
    assert row["details"]["audit_rows_deleted"] >= 2
    assert (row["actor_id"], row["subject_id"]) == (None, None)


def _deletion_request(conn, status: str, age: str) -> str:
    return str(
        conn.execute(
            """
            INSERT INTO deletion_requests (subject_ref, status, requested_at, scheduled_for, cancelled_at, completed_at)
            VALUES ('erased-test', %(status)s, now() - %(age)s::interval - interval '31 days',
                    now() - %(age)s::interval - interval '1 day',
                    CASE WHEN %(status)s = 'CANCELLED' THEN now() - %(age)s::interval END,
                    CASE WHEN %(status)s = 'COMPLETED' THEN now() - %(age)s::interval END)
            RETURNING id
            """,
            {"status": status, "age": age},
        ).fetchone()["id"]
    )


def test_cancelled_deletion_requests_are_deleted_after_the_audit_period_completed_ones_kept(conn):
    old_done = _deletion_request(conn, "COMPLETED", "366 days")
    old_cancelled = _deletion_request(conn, "CANCELLED", "366 days")
    recent_done = _deletion_request(conn, "COMPLETED", "10 days")
    recent_cancelled = _deletion_request(conn, "CANCELLED", "10 days")
    sweep()
    rows = conn.execute(
        "SELECT id::text FROM deletion_requests WHERE id = ANY (%s::uuid[])",
        ([old_done, old_cancelled, recent_done, recent_cancelled],),
    ).fetchall()
    assert {r["id"] for r in rows} == {old_done, recent_done, recent_cancelled}


# --- SUBMISSIONS ---------------------------------------------------------------------------------------


def _submission(conn, s3, student: str, status: str, age: str, number: int) -> tuple[str, str]:
    project = conn.execute(
        "SELECT p.id FROM projects p JOIN tracks t ON t.id = p.track_id WHERE t.code = 'DP' AND p.number = 1"
    ).fetchone()["id"]
    deliverable = conn.execute(
        "SELECT id FROM deliverables WHERE project_id = %s AND deliverable_type = 'FILE'", (project,)
    ).fetchone()["id"]
    conn.execute(
        "INSERT INTO student_progress (student_id, project_id, status, unlocked_at, started_at)"
        " VALUES (%s, %s, 'IN_PROGRESS', now(), now()) ON CONFLICT DO NOTHING",
        (student, project),
    )
    key = f"submissions/{student}/{deliverable}/{uuid.uuid4()}/report.pdf"
    s3.put_object(Bucket=UPLOADS, Key=key, Body=b"%PDF v1")
    s3.put_object(Bucket=UPLOADS, Key=key, Body=b"%PDF v2")
    submission = conn.execute(
        """
        INSERT INTO submissions (student_id, project_id, deliverable_id, attempt, file_key, file_size,
                                 file_content_type, status, feedback, reviewed_at, submitted_at)
        VALUES (%s, %s, %s, %s, %s, 7, 'application/pdf', %s,
                CASE WHEN %s = 'CHANGES_REQUESTED' THEN 'more please' END,
                CASE WHEN %s <> 'PENDING' THEN now() - %s::interval END, now() - %s::interval)
        RETURNING id::text
        """,
        (student, project, deliverable, number, key, status, status, status, age, age),
    ).fetchone()["id"]
    return submission, key


def test_decided_submissions_and_their_files_are_deleted_after_the_period(conn, s3, student):
    old, old_key = _submission(conn, s3, student, "CHANGES_REQUESTED", "731 days", 1)
    pending, pending_key = _submission(conn, s3, student, "PENDING", "800 days", 2)
    recent, recent_key = _submission(conn, s3, student, "SUPERSEDED", "100 days", 3)
    assert sweep()["submissions_deleted"] >= 1
    rows = conn.execute(
        "SELECT id::text FROM submissions WHERE id = ANY (%s::uuid[])", ([old, pending, recent],)
    ).fetchall()
    assert {r["id"] for r in rows} == {pending, recent}
    assert keys(s3, UPLOADS, old_key) == []  # every version
    assert len(keys(s3, UPLOADS, pending_key)) == 2 and len(keys(s3, UPLOADS, recent_key)) == 2


def test_a_file_a_newer_attempt_still_submits_is_kept_until_that_one_is_past_the_period_too(conn, s3, student):
    """The same upload can be submitted again (the submit route only checks it is the student's): the
    old attempt goes, the file it shares with a newer attempt within the period stays."""
    old, key = _submission(conn, s3, student, "CHANGES_REQUESTED", "731 days", 1)
    newer = conn.execute(
        """
        INSERT INTO submissions (student_id, project_id, deliverable_id, attempt, file_key, file_size,
                                 file_content_type, status, submitted_at)
        SELECT student_id, project_id, deliverable_id, 2, file_key, file_size, file_content_type, 'PENDING',
               now() - interval '1 day'
        FROM submissions WHERE id = %s
        RETURNING id::text
        """,
        (old,),
    ).fetchone()["id"]
    sweep()
    rows = conn.execute("SELECT id::text FROM submissions WHERE id = ANY (%s::uuid[])", ([old, newer],)).fetchall()
    assert {r["id"] for r in rows} == {newer}
    assert len(keys(s3, UPLOADS, key)) == 2  # the pending attempt's file, every version
    # Once the newer attempt is decided and past the period as well, the file goes with it.
    conn.execute(
        "UPDATE submissions SET status = 'APPROVED', reviewed_at = now() - interval '731 days',"
        " submitted_at = now() - interval '732 days' WHERE id = %s",
        (newer,),
    )
    sweep()
    assert conn.execute("SELECT 1 FROM submissions WHERE id = %s", (newer,)).fetchone() is None
    assert keys(s3, UPLOADS, key) == []


def _age_object(bucket: str, key: str, days: int) -> None:
    """Moves the object's (every version's) LastModified back ``days``: moto stamps now on a put."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    for version in s3_backends[DEFAULT_ACCOUNT_ID]["aws"].buckets[bucket].keys.getlist(key):
        version.last_modified = version.last_modified - timedelta(days=days)


def test_uploads_never_submitted_are_deleted_after_the_submissions_period(conn, s3, student):
    """The register promises uploads are kept at most the SUBMISSIONS period, also those never submitted."""
    stale = f"submissions/{student}/3/{uuid.uuid4()}/draft.pdf"
    s3.put_object(Bucket=UPLOADS, Key=stale, Body=b"draft v1")
    s3.put_object(Bucket=UPLOADS, Key=stale, Body=b"draft v2")
    _age_object(UPLOADS, stale, 731)
    fresh = f"submissions/{student}/3/{uuid.uuid4()}/today.pdf"
    s3.put_object(Bucket=UPLOADS, Key=fresh, Body=b"uploaded today")
    # Uploaded long ago but submitted recently: the submission's period decides.
    pending, submitted = _submission(conn, s3, student, "PENDING", "1 day", 1)
    _age_object(UPLOADS, submitted, 800)
    report = sweep()
    assert report["unsubmitted_uploads_deleted"] >= 2  # both versions
    assert keys(s3, UPLOADS, stale) == []
    assert keys(s3, UPLOADS, fresh) == [fresh]
    assert len(keys(s3, UPLOADS, submitted)) == 2
    assert conn.execute("SELECT 1 FROM submissions WHERE id = %s", (pending,)).fetchone() is not None


# --- USER_DATA -----------------------------------------------------------------------------------------


def test_files_of_accounts_that_no_longer_exist_are_deleted(conn, s3, student):
    gone = str(uuid.uuid4())
    s3.put_object(Bucket=UPLOADS, Key=f"submissions/{gone}/3/{uuid.uuid4()}/late.pdf", Body=b"late upload")
    s3.put_object(Bucket=EXPORTS, Key=f"exports/{gone}/{uuid.uuid4()}.zip", Body=b"PK late export")
    live = f"submissions/{student}/3/{uuid.uuid4()}/mine.pdf"
    s3.put_object(Bucket=UPLOADS, Key=live, Body=b"mine")
    other = "submissions/not-a-user/readme.txt"
    s3.put_object(Bucket=UPLOADS, Key=other, Body=b"not a person's folder")
    assert sweep()["orphaned_files_deleted"] >= 2
    assert keys(s3, UPLOADS, f"submissions/{gone}/") == [] and keys(s3, EXPORTS, f"exports/{gone}/") == []
    assert keys(s3, UPLOADS, live) == [live]
    assert keys(s3, UPLOADS, other) == [other]


# --- ABANDONED_CHECKOUTS -------------------------------------------------------------------------------


def _checkout(
    conn,
    status: str = "EXPIRED",
    age: str = "31 days",
    *,
    user_id: str | None = None,
    created: str | None = None,
    succeeded: bool = False,
    refunded: int = 0,
    disputed: bool = False,
) -> str:
    """What POST /api/payments/create-anonymous-checkout/ writes (the payment with the buyer's email
    and name, the ANONYMOUS_CHECKOUT consent with IP and user agent, the PAYMENT audit row with the
    request's origin), last changed ``age`` ago; then whatever the webhook made of it."""
    payment = conn.execute(
        """
        INSERT INTO payments (user_id, customer_email, customer_name, track, amount_cents, currency, status, kind,
                              idempotency_key, stripe_checkout_session_id, refunded_amount_cents, disputed,
                              dispute_status, succeeded_at, created_at, updated_at)
        VALUES (%(user)s, %(email)s, 'Abe Andoned', 'DP', 49900, 'USD', %(status)s, 'CHECKOUT',
                'anonymous-' || gen_random_uuid(), 'cs_test_' || md5(random()::text), %(refunded)s, %(disputed)s,
                CASE WHEN %(disputed)s THEN 'OPEN' END,
                CASE WHEN %(succeeded)s THEN now() - %(age)s::interval END,
                now() - coalesce(%(created)s, %(age)s)::interval, now() - %(age)s::interval)
        RETURNING id::text
        """,
        {"user": user_id, "email": f"abandoned-{uuid.uuid4().hex[:8]}@example.com", "status": status, "age": age,
         "created": created, "succeeded": succeeded, "refunded": refunded, "disputed": disputed},
    ).fetchone()["id"]  # fmt: skip
    conn.execute(
        """
        INSERT INTO user_consents (user_id, payment_id, privacy_policy_version, terms_version, accepted_at,
                                   ip_address, user_agent, source)
        VALUES (%s, %s, privacy_version_in_force(), terms_version_in_force(), now() - %s::interval,
                '203.0.113.9', 'Mozilla/5.0 (buyer)', 'ANONYMOUS_CHECKOUT')
        """,
        (user_id, payment, age),
    )
    conn.execute(
        """
        INSERT INTO audit_logs (action, resource_type, resource_id, details, ip_address, user_agent, occurred_at)
        VALUES ('PAYMENT', 'payment', %s, '{"step": "anonymous_checkout_created", "track": "DP"}',
                '203.0.113.9', 'Mozilla/5.0 (buyer)', now() - %s::interval)
        """,
        (payment, age),
    )
    return payment


def _buyer_data(conn, payment: str) -> dict[str, Any]:
    row = conn.execute(
        "SELECT customer_email::text AS email, customer_name AS name, amount_cents, status, track,"
        " stripe_checkout_session_id IS NOT NULL AS has_session FROM payments WHERE id = %s",
        (payment,),
    ).fetchone()
    consents = conn.execute("SELECT count(*) AS n FROM user_consents WHERE payment_id = %s", (payment,)).fetchone()
    origins = conn.execute(
        "SELECT count(*) AS n FROM audit_logs WHERE resource_type = 'payment' AND resource_id = %s"
        " AND (ip_address IS NOT NULL OR user_agent IS NOT NULL)",
        (payment,),
    ).fetchone()
    return {**row, "consents": consents["n"], "origins": origins["n"]}


def _untouched(data: dict[str, Any]) -> bool:
    return data["email"] is not None and data["name"] == "Abe Andoned" and (data["consents"], data["origins"]) == (1, 1)


def test_abandoned_checkouts_lose_the_buyer_and_the_consent_after_the_period(conn):
    abandoned = {status: _checkout(conn, status) for status in ("EXPIRED", "FAILED", "PENDING")}
    recent = _checkout(conn, "EXPIRED", "29 days")
    # Created long ago, but a webhook changed it recently (a delayed payment still settling).
    recently_changed = _checkout(conn, "PENDING", "3 days", created="60 days")
    report = sweep()
    assert report["abandoned_checkouts_anonymised"] >= 3
    for status, payment in abandoned.items():
        data = _buyer_data(conn, payment)
        assert (data["email"], data["name"], data["consents"], data["origins"]) == (None, None, 0, 0), status
        # The row stays, with what the payments trigger protects.
        assert (data["amount_cents"], data["status"], data["track"], data["has_session"]) == (49900, status, "DP", True)
    assert _untouched(_buyer_data(conn, recent)) and _untouched(_buyer_data(conn, recently_changed))
    # The checkout's audit row is kept: only the request's origin is gone.
    row = conn.execute(
        "SELECT details FROM audit_logs WHERE resource_type = 'payment' AND resource_id = %s", (abandoned["EXPIRED"],)
    ).fetchone()
    assert row["details"]["step"] == "anonymous_checkout_created"
    assert sweep()["abandoned_checkouts_anonymised"] == 0


def test_money_and_linked_checkouts_are_never_touched(conn, student):
    kept = [
        _checkout(conn, "SUCCEEDED", "400 days", succeeded=True),  # paid, the account link still to come
        _checkout(conn, "REFUNDED", "400 days", succeeded=True, refunded=49900),
        _checkout(conn, "PARTIALLY_REFUNDED", "400 days", succeeded=True, refunded=100),
        _checkout(conn, "DISPUTED", "400 days", succeeded=True, disputed=True),
        _checkout(conn, "PENDING", "400 days", disputed=True),  # a dispute is money, whatever the status says
    ]
    linked = _checkout(conn, "EXPIRED", "400 days", user_id=student)
    try:
        sweep()
        assert all(_untouched(_buyer_data(conn, payment)) for payment in kept)
        assert _untouched(_buyer_data(conn, linked))
    finally:  # detached as the purge would, so the student can be deleted
        conn.execute("UPDATE payments SET user_id = NULL, subject_ref = 'erased-test' WHERE id = %s", (linked,))


def test_abandoned_checkouts_follow_their_policy_never_below_its_floor(conn, policy):
    day_40 = _checkout(conn, "EXPIRED", "40 days")
    day_20 = _checkout(conn, "EXPIRED", "20 days")
    policy("ABANDONED_CHECKOUTS", is_active=False)
    assert "abandoned_checkouts_anonymised" not in sweep()
    assert _untouched(_buyer_data(conn, day_40))
    # A period shorter than the floor (a row set by hand; the admin route refuses it) applies the floor.
    policy("ABANDONED_CHECKOUTS", is_active=True, retention_days=10)
    sweep()
    assert _buyer_data(conn, day_40)["email"] is None
    assert _untouched(_buyer_data(conn, day_20))
    policy("ABANDONED_CHECKOUTS", retention_days=60)
    day_50 = _checkout(conn, "FAILED", "50 days")
    sweep()
    assert _untouched(_buyer_data(conn, day_50))


# --- PAYMENT_DATA --------------------------------------------------------------------------------------


def test_payments_are_never_deleted_even_past_their_period(conn, policy):
    payment = conn.execute(
        """
        INSERT INTO payments (subject_ref, track, amount_cents, currency, status, created_at, succeeded_at)
        VALUES ('erased-ancient', 'DP', 49900, 'USD', 'SUCCEEDED', now() - interval '8 years',
                now() - interval '8 years')
        RETURNING id::text
        """
    ).fetchone()["id"]
    refund = conn.execute(
        "INSERT INTO refund_requests (payment_id, amount_cents, status, decided_at, created_at)"
        " VALUES (%s, 100, 'REJECTED', now() - interval '8 years', now() - interval '8 years') RETURNING id::text",
        (payment,),
    ).fetchone()["id"]
    event = _event(conn, "8 years")
    conn.execute("UPDATE stripe_events SET payment_id = %s WHERE event_id = %s", (payment, event))
    policy("PAYMENT_DATA", is_active=False)
    report = sweep()
    assert report["payments_past_period_kept"] >= 1
    assert conn.execute("SELECT 1 FROM payments WHERE id = %s", (payment,)).fetchone() is not None
    assert conn.execute("SELECT 1 FROM refund_requests WHERE id = %s", (refund,)).fetchone() is not None
    assert _events_left(conn, [event]) == set()  # the event record is a log; the payment is not


# --- idempotency ---------------------------------------------------------------------------------------


def test_a_second_run_finds_nothing_to_do(conn, s3, student):
    _event(conn, "120 days")
    _audit(conn, "LOGIN", "500 days")
    _export(conn, s3, student, "READY", expires="1 day", completed="8 days")
    sweep()
    before = conn.execute("SELECT count(*) AS n FROM audit_logs WHERE action = 'RETENTION_SWEEP'").fetchone()["n"]
    report = sweep()
    deleted = {k: v for k, v in report.items() if not k.endswith("_kept")}
    assert set(deleted.values()) == {0}, report
    # Nothing deleted: no audit row for the empty run.
    assert (
        conn.execute("SELECT count(*) AS n FROM audit_logs WHERE action = 'RETENTION_SWEEP'").fetchone()["n"] == before
    )
