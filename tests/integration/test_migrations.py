"""The migration runner and the schema's own rules, on real PostgreSQL databases."""

from __future__ import annotations

import shutil
import threading
import uuid
from pathlib import Path

import psycopg
import pytest
from psycopg import errors
from psycopg.rows import dict_row

from functions.migrate.runner import MIGRATIONS_DIR, MigrationError, discover, grant_app_role, migrate
from functions.migrate.seed import seed_database

ALL = [m.name for m in discover()]
TABLES = {
    "schema_migrations",
    "tracks",
    "projects",
    "project_steps",
    "deliverables",
    "users",
    "payments",
    "stripe_events",
    "stripe_customers",
    "refund_requests",
    "privacy_policies",
    "terms_of_service",
    "user_consents",
    "audit_logs",
    "data_retention_policies",
    "data_export_requests",
    "deletion_requests",
    "student_database_credentials",
    "tool_provisioning",
    "trainer_profiles",
    "trainer_assignments",
    "student_progress",
    "step_completions",
    "submissions",
    "payment_outbox",
    "progress_high_water",
    "stats_revenue_daily",
    "stats_enrollments_daily",
    "stats_provisioning_daily",
    "stats_refunds_daily",
    "stats_submission_hist",
    "stats_students",
}


def _connect(url: str) -> psycopg.Connection:
    return psycopg.connect(url, autocommit=True, row_factory=dict_row)


@pytest.fixture
def migrations_copy(tmp_path) -> Path:
    target = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, target)
    return target


@pytest.fixture(scope="module")
def db(make_database):
    """A migrated and seeded database of this module's own: payments can never be deleted, so the
    rows these tests write stay out of the shared session database."""
    url = make_database("apranova_schema")
    with _connect(url) as conn:
        migrate(conn)
        seed_database(conn)
    return url


@pytest.fixture
def conn(db):
    with _connect(db) as connection:
        yield connection


def _user(conn, role="student", track=None, status="PENDING_PAYMENT") -> str:
    user_id = str(uuid.uuid4())
    conn.execute(
        "INSERT INTO users (id, email, name, role, track_id, enrollment_status)"
        " VALUES (%s, %s, 'Test User', %s, (SELECT id FROM tracks WHERE code = %s), %s)",
        (user_id, f"user-{user_id[:8]}@example.com", role, track, status),
    )
    return user_id


def _payment(conn, user_id, track="DP", status="PENDING", **extra) -> str:
    columns = {"user_id": user_id, "track": track, "amount_cents": 49900, "currency": "USD", "status": status, **extra}
    names = ", ".join(columns)
    marks = ", ".join(["%s"] * len(columns))
    return str(
        conn.execute(
            f"INSERT INTO payments ({names}) VALUES ({marks}) RETURNING id", list(columns.values())
        ).fetchone()["id"]
    )


# --- the runner ---------------------------------------------------------------------------------


def test_migrations_apply_to_an_empty_database_and_a_second_run_is_a_no_op(make_database):
    url = make_database()
    with _connect(url) as conn:
        assert migrate(conn) == ALL
        assert migrate(conn) == []
        rows = conn.execute("SELECT name, checksum FROM schema_migrations ORDER BY name").fetchall()
        assert [r["name"] for r in rows] == ALL
        assert all(len(r["checksum"]) == 64 for r in rows)
        tables = {
            r["table_name"]
            for r in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
            ).fetchall()
        }
        assert tables == TABLES
        # The runner left the session as it found it: no lock held, timeout restored.
        assert conn.execute("SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory'").fetchone()["n"] == 0


def test_files_are_applied_in_numeric_order_and_named_strictly():
    numbers = [int(name[:4]) for name in ALL]
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)


def test_every_migration_starts_with_a_comment_saying_what_it_creates():
    for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
        assert path.read_text().startswith(f"-- {path.name[:4]}:"), path.name


def test_an_edited_applied_file_is_refused_by_name(make_database, migrations_copy):
    url = make_database()
    with _connect(url) as conn:
        migrate(conn, directory=migrations_copy)
        edited = migrations_copy / ALL[1]
        edited.write_text(edited.read_text() + "\n-- an innocent-looking edit\n")
        with pytest.raises(MigrationError, match=ALL[1]):
            migrate(conn, directory=migrations_copy)


def test_a_missing_applied_file_is_refused_by_name(make_database, migrations_copy):
    url = make_database()
    with _connect(url) as conn:
        migrate(conn, directory=migrations_copy)
        (migrations_copy / ALL[-1]).unlink()
        with pytest.raises(MigrationError, match=ALL[-1]):
            migrate(conn, directory=migrations_copy)


@pytest.mark.parametrize("name", ["1_short.sql", "0099_Upper.sql", "0099-dash.sql", "0099_space name.sql"])
def test_badly_named_files_are_refused(make_database, migrations_copy, name):
    (migrations_copy / name).write_text("SELECT 1;")
    with _connect(make_database()) as conn, pytest.raises(MigrationError, match=name):
        migrate(conn, directory=migrations_copy)


def test_a_duplicate_number_is_refused(migrations_copy):
    (migrations_copy / "0001_again.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match="0001"):
        discover(migrations_copy)


def test_a_file_numbered_before_an_applied_one_is_refused(make_database, migrations_copy):
    url = make_database()
    (migrations_copy / "0100_late.sql").write_text("SELECT 1;")
    with _connect(url) as conn:
        migrate(conn, directory=migrations_copy)
        (migrations_copy / "0050_forgotten.sql").write_text("SELECT 1;")
        with pytest.raises(MigrationError, match="0050_forgotten.sql"):
            migrate(conn, directory=migrations_copy)


def test_a_failing_migration_rolls_back_entirely_and_names_the_file(make_database, migrations_copy):
    url = make_database()
    (migrations_copy / "0900_broken.sql").write_text(
        "CREATE TABLE half_done (id int);\nINSERT INTO half_done VALUES (1);\nSELECT 1 / 0;\n"
    )
    with _connect(url) as conn:
        with pytest.raises(MigrationError, match="0900_broken.sql") as raised:
            migrate(conn, directory=migrations_copy)
        assert "division by zero" in str(raised.value)
        assert conn.execute("SELECT to_regclass('half_done') AS t").fetchone()["t"] is None
        names = [r["name"] for r in conn.execute("SELECT name FROM schema_migrations ORDER BY name")]
        assert names == ALL  # the good files before it stay applied, the broken one left no row
        # Fixed, it applies on the next run.
        (migrations_copy / "0900_broken.sql").write_text("CREATE TABLE half_done (id int);\n")
        assert migrate(conn, directory=migrations_copy) == ["0900_broken.sql"]


def test_concurrent_runners_apply_each_file_once(make_database, migrations_copy):
    url = make_database()
    # A slow file makes the runs overlap for certain.
    (migrations_copy / "0500_slow.sql").write_text("SELECT pg_sleep(0.3);\nCREATE TABLE ran_once (id int);\n")
    barrier = threading.Barrier(2)
    results: list[list[str]] = []
    failures: list[BaseException] = []

    def run() -> None:
        try:
            with psycopg.connect(url, autocommit=True) as conn:
                barrier.wait()
                results.append(migrate(conn, directory=migrations_copy))
        except BaseException as error:  # noqa: BLE001 - reported below
            failures.append(error)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures
    assert sorted(results, key=len) == [[], [*ALL, "0500_slow.sql"]]
    with _connect(url) as conn:
        assert conn.execute("SELECT count(*) AS n FROM schema_migrations").fetchone()["n"] == len(ALL) + 1


def test_the_runner_needs_an_autocommit_connection(make_database):
    with psycopg.connect(make_database()) as conn, pytest.raises(MigrationError, match="autocommit"):
        migrate(conn)


def test_the_app_role_gets_data_access_but_no_ddl(db):
    role = f"apranova_app_test_{uuid.uuid4().hex[:8]}"
    with _connect(db) as conn:
        try:
            grant_app_role(conn, role, rds_iam=False)
            grant_app_role(conn, role, rds_iam=False)  # idempotent
            check = "SELECT has_table_privilege(%s, %s, %s) AS ok"
            assert conn.execute(check, (role, "payments", "INSERT")).fetchone()["ok"]
            assert conn.execute(check, (role, "submissions", "DELETE")).fetchone()["ok"]
            assert not conn.execute(check, (role, "payments", "TRUNCATE")).fetchone()["ok"]
            assert conn.execute(check, (role, "schema_migrations", "SELECT")).fetchone()["ok"]
            assert not conn.execute(check, (role, "schema_migrations", "INSERT")).fetchone()["ok"]
            create = "SELECT has_schema_privilege(%s, 'public', 'CREATE') AS ok"
            owner_can_create = conn.execute(
                "SELECT has_schema_privilege('pg_database_owner', 'public', 'CREATE') AS ok"
            ).fetchone()["ok"]
            assert owner_can_create and not conn.execute(create, (role,)).fetchone()["ok"]
        finally:
            conn.execute(f'DROP OWNED BY "{role}"')
            conn.execute(f'DROP ROLE "{role}"')


# --- payments -----------------------------------------------------------------------------------


def test_payments_cannot_be_deleted_or_truncated(conn):
    payment = _payment(conn, _user(conn))
    with pytest.raises(errors.RestrictViolation, match="DELETE"):
        conn.execute("DELETE FROM payments WHERE id = %s", (payment,))
    with pytest.raises(errors.RestrictViolation, match="TRUNCATE"):
        conn.execute("TRUNCATE payments CASCADE")
    assert conn.execute("SELECT count(*) AS n FROM payments WHERE id = %s", (payment,)).fetchone()["n"] == 1


@pytest.mark.parametrize(
    "change",
    [
        "amount_cents = 100",
        "currency = 'EUR'",
        "track = 'FSD'",
        "kind = 'MANUAL'",
        "created_at = now() - interval '1 day'",
    ],
)
def test_payment_money_fields_are_immutable(conn, change):
    payment = _payment(conn, _user(conn))
    with pytest.raises(errors.RestrictViolation):
        conn.execute(f"UPDATE payments SET {change} WHERE id = %s", (payment,))


@pytest.mark.parametrize(
    "column", ["stripe_checkout_session_id", "stripe_payment_intent_id", "stripe_customer_id", "stripe_charge_id"]
)
def test_a_stripe_id_can_be_set_once_and_never_changed(conn, column):
    payment = _payment(conn, _user(conn))
    first = f"id_{uuid.uuid4().hex}"
    conn.execute(f"UPDATE payments SET {column} = %s WHERE id = %s", (first, payment))
    conn.execute(f"UPDATE payments SET {column} = %s WHERE id = %s", (first, payment))  # same value: fine
    with pytest.raises(errors.RestrictViolation, match="Stripe id"):
        conn.execute(f"UPDATE payments SET {column} = %s WHERE id = %s", (f"id_{uuid.uuid4().hex}", payment))
    with pytest.raises(errors.RestrictViolation, match="Stripe id"):
        conn.execute(f"UPDATE payments SET {column} = NULL WHERE id = %s", (payment,))


def test_status_refund_and_dispute_changes_are_allowed_but_refunds_only_grow(conn):
    payment = _payment(conn, _user(conn))
    before = conn.execute("SELECT updated_at FROM payments WHERE id = %s", (payment,)).fetchone()["updated_at"]
    conn.execute("UPDATE payments SET status = 'SUCCEEDED', succeeded_at = now() WHERE id = %s", (payment,))
    conn.execute(
        "UPDATE payments SET status = 'PARTIALLY_REFUNDED', refunded_amount_cents = 10000 WHERE id = %s", (payment,)
    )
    conn.execute("UPDATE payments SET disputed = true, dispute_status = 'OPEN' WHERE id = %s", (payment,))
    conn.execute(
        "UPDATE payments SET status = 'REFUNDED', refunded_amount_cents = 49900, refunded_at = now() WHERE id = %s",
        (payment,),
    )
    row = conn.execute("SELECT * FROM payments WHERE id = %s", (payment,)).fetchone()
    assert (row["status"], row["refunded_amount_cents"], row["disputed"]) == ("REFUNDED", 49900, True)
    assert row["updated_at"] > before
    with pytest.raises(errors.RestrictViolation, match="cannot decrease"):
        conn.execute("UPDATE payments SET refunded_amount_cents = 0 WHERE id = %s", (payment,))
    with pytest.raises(errors.CheckViolation):
        _payment(conn, _user(conn), refunded_amount_cents=50000)


def test_paying_twice_for_the_same_track_is_a_unique_violation(conn):
    user = _user(conn)
    first = _payment(conn, user)
    with pytest.raises(errors.UniqueViolation):
        _payment(conn, user)
    _payment(conn, user, track="FSD")  # another track is another purchase
    conn.execute("UPDATE payments SET status = 'EXPIRED' WHERE id = %s", (first,))
    second = _payment(conn, user)  # an expired checkout does not block a new one
    conn.execute("UPDATE payments SET status = 'SUCCEEDED' WHERE id = %s", (second,))
    with pytest.raises(errors.UniqueViolation):
        _payment(conn, user)


def test_deleting_a_user_never_cascades_into_payments(conn):
    user = _user(conn, track="DP", status="ENROLLED")
    payment = _payment(conn, user, status="SUCCEEDED")
    _payment(conn, user, track="FSD", status="REFUNDED", refunded_amount_cents=49900)
    conn.execute(
        "INSERT INTO student_progress (student_id, project_id, unlocked_at)"
        " SELECT %s, id, now() FROM projects WHERE number = 1 AND track_id = (SELECT id FROM tracks WHERE code = 'DP')",
        (user,),
    )
    with pytest.raises(errors.ForeignKeyViolation):
        conn.execute("DELETE FROM users WHERE id = %s", (user,))
    # The purge's way: swap the reference for an opaque one, then delete the person.
    with conn.transaction():
        conn.execute(
            "UPDATE payments SET user_id = NULL, subject_ref = %s, customer_email = NULL, customer_name = NULL"
            " WHERE user_id = %s",
            (f"erased-{uuid.uuid4().hex}", user),
        )
        conn.execute("DELETE FROM users WHERE id = %s", (user,))
    row = conn.execute("SELECT user_id, subject_ref, amount_cents FROM payments WHERE id = %s", (payment,)).fetchone()
    assert row["user_id"] is None and row["subject_ref"].startswith("erased-") and row["amount_cents"] == 49900
    refs = conn.execute("SELECT count(*) AS n FROM payments WHERE subject_ref = %s", (row["subject_ref"],)).fetchone()
    assert refs["n"] == 2  # both of the person's payments carry the same opaque reference
    assert (
        conn.execute("SELECT count(*) AS n FROM student_progress WHERE student_id = %s", (user,)).fetchone()["n"] == 0
    )


# --- audit log ----------------------------------------------------------------------------------


def _audit(conn, subject) -> int:
    return conn.execute(
        "INSERT INTO audit_logs (action, actor_id, subject_id, details, ip_address)"
        " VALUES ('LOGIN', %s, %s, '{\"email\": \"someone@example.com\"}', '203.0.113.9') RETURNING id",
        (subject, subject),
    ).fetchone()["id"]


def test_audit_logs_are_append_only(conn):
    entry = _audit(conn, str(uuid.uuid4()))
    with pytest.raises(errors.RestrictViolation, match="append-only"):
        conn.execute("UPDATE audit_logs SET action = 'LOGOUT' WHERE id = %s", (entry,))
    with pytest.raises(errors.RestrictViolation, match="append-only"):
        conn.execute("UPDATE audit_logs SET subject_id = NULL WHERE id = %s", (entry,))
    with pytest.raises(errors.RestrictViolation, match="append-only"):
        conn.execute("DELETE FROM audit_logs WHERE id = %s", (entry,))
    with pytest.raises(errors.RestrictViolation):
        conn.execute("TRUNCATE audit_logs")
    # A setting outside a transaction's SET LOCAL does not leak: still refused afterwards.
    with conn.transaction():
        conn.execute("SET LOCAL apranova.retention_sweep = 'on'")
    with pytest.raises(errors.RestrictViolation):
        conn.execute("DELETE FROM audit_logs WHERE id = %s", (entry,))


def test_the_sweep_may_anonymise_and_delete_audit_rows_but_not_rewrite_history(conn):
    subject = str(uuid.uuid4())
    entry = _audit(conn, subject)
    with conn.transaction():
        conn.execute("SET LOCAL apranova.retention_sweep = 'on'")
        conn.execute(
            "UPDATE audit_logs SET actor_id = NULL, subject_id = NULL, details = '{}', ip_address = NULL WHERE id = %s",
            (entry,),
        )
    row = conn.execute("SELECT * FROM audit_logs WHERE id = %s", (entry,)).fetchone()
    assert (row["actor_id"], row["subject_id"], row["details"], row["action"]) == (None, None, {}, "LOGIN")
    with pytest.raises(errors.RestrictViolation, match="anonymised"), conn.transaction():
        conn.execute("SET LOCAL apranova.retention_sweep = 'on'")
        conn.execute("UPDATE audit_logs SET action = 'LOGOUT' WHERE id = %s", (entry,))
    with pytest.raises(errors.RestrictViolation, match="anonymised"), conn.transaction():
        conn.execute("SET LOCAL apranova.retention_sweep = 'on'")
        conn.execute("UPDATE audit_logs SET occurred_at = now() - interval '1 year' WHERE id = %s", (entry,))
    with conn.transaction():
        conn.execute("SET LOCAL apranova.retention_sweep = 'on'")
        conn.execute("DELETE FROM audit_logs WHERE id = %s", (entry,))
    assert conn.execute("SELECT count(*) AS n FROM audit_logs WHERE id = %s", (entry,)).fetchone()["n"] == 0


# --- other rules the API relies on --------------------------------------------------------------


def test_email_is_unique_case_insensitively(conn):
    user = _user(conn)
    email = conn.execute("SELECT email FROM users WHERE id = %s", (user,)).fetchone()["email"]
    with pytest.raises(errors.UniqueViolation):
        conn.execute("INSERT INTO users (id, email) VALUES (%s, %s)", (str(uuid.uuid4()), email.upper()))
    assert conn.execute("SELECT id FROM users WHERE email = %s", (email.upper(),)).fetchone()["id"] == uuid.UUID(user)


def test_role_and_status_values_are_checked(conn):
    with pytest.raises(errors.CheckViolation):
        conn.execute("INSERT INTO users (id, email, role) VALUES (%s, 'x1@example.com', 'superuser')", (uuid.uuid4(),))
    with pytest.raises(errors.CheckViolation):  # enrolled without a track
        conn.execute(
            "INSERT INTO users (id, email, enrollment_status) VALUES (%s, 'x2@example.com', 'ENROLLED')",
            (uuid.uuid4(),),
        )


def test_only_one_policy_version_is_active(conn):
    with pytest.raises(errors.UniqueViolation):
        conn.execute(
            "INSERT INTO privacy_policies (version, content, effective_at, is_active) VALUES ('9.9', 'x', now(), true)"
        )


def test_credentials_table_has_no_place_for_a_password(conn):
    columns = {
        r["column_name"]
        for r in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'student_database_credentials'"
        )
    }
    assert "password_parameter_name" in columns
    assert not {c for c in columns if ("password" in c and c != "password_parameter_name") or "connection" in c}
    user_columns = {
        r["column_name"]
        for r in conn.execute("SELECT column_name FROM information_schema.columns WHERE table_name = 'users'")
    }
    assert not {c for c in user_columns if "password" in c or c.endswith("_url")}


def test_steps_and_submissions_need_a_started_project_of_the_same_project(conn):
    user = _user(conn, track="DP", status="ENROLLED")
    dp1, dp2 = (
        r["id"]
        for r in conn.execute(
            "SELECT p.id FROM projects p JOIN tracks t ON t.id = p.track_id WHERE t.code = 'DP' AND p.number IN (1, 2)"
            " ORDER BY p.number"
        )
    )
    step = conn.execute("SELECT id FROM project_steps WHERE project_id = %s AND number = 1", (dp1,)).fetchone()["id"]
    deliverable = conn.execute("SELECT id FROM deliverables WHERE project_id = %s AND number = 1", (dp1,)).fetchone()[
        "id"
    ]
    with pytest.raises(errors.ForeignKeyViolation):  # no progress row: project not unlocked
        conn.execute(
            "INSERT INTO step_completions (student_id, project_id, step_id) VALUES (%s, %s, %s)", (user, dp1, step)
        )
    conn.execute(
        "INSERT INTO student_progress (student_id, project_id, unlocked_at) VALUES (%s, %s, now())", (user, dp1)
    )
    conn.execute(
        "INSERT INTO student_progress (student_id, project_id, unlocked_at) VALUES (%s, %s, now())", (user, dp2)
    )
    with pytest.raises(errors.ForeignKeyViolation):  # step of project 1 claimed under project 2
        conn.execute(
            "INSERT INTO step_completions (student_id, project_id, step_id) VALUES (%s, %s, %s)", (user, dp2, step)
        )
    conn.execute(
        "INSERT INTO step_completions (student_id, project_id, step_id) VALUES (%s, %s, %s)", (user, dp1, step)
    )
    submit = (
        "INSERT INTO submissions (student_id, project_id, deliverable_id, attempt, submission_url)"
        " VALUES (%s, %s, %s, %s, 'https://example.com/dash')"
    )
    with pytest.raises(errors.ForeignKeyViolation):  # deliverable of project 1 under project 2
        conn.execute(submit, (user, dp2, deliverable, 1))
    conn.execute(submit, (user, dp1, deliverable, 1))
    with pytest.raises(errors.UniqueViolation):  # a second pending attempt
        conn.execute(submit, (user, dp1, deliverable, 2))
    with pytest.raises(errors.CheckViolation):  # changes requested without feedback
        conn.execute(
            "UPDATE submissions SET status = 'CHANGES_REQUESTED', reviewed_at = now() WHERE student_id = %s", (user,)
        )


def test_one_open_refund_request_and_one_open_deletion_request(conn):
    user = _user(conn)
    payment = _payment(conn, user, status="SUCCEEDED")
    ask = "INSERT INTO refund_requests (payment_id, user_id, reason, amount_cents) VALUES (%s, %s, 'x', 100)"
    conn.execute(ask, (payment, user))
    with pytest.raises(errors.UniqueViolation):
        conn.execute(ask, (payment, user))
    schedule = "INSERT INTO deletion_requests (user_id, scheduled_for) VALUES (%s, now() + interval '30 days')"
    conn.execute(schedule, (user,))
    with pytest.raises(errors.UniqueViolation):
        conn.execute(schedule, (user,))
    conn.execute("UPDATE deletion_requests SET status = 'CANCELLED', cancelled_at = now() WHERE user_id = %s", (user,))
    conn.execute(schedule, (user,))  # after a cancel, a new request is allowed


def test_list_queries_use_their_indexes(conn):
    """The hot list queries of the later issues are index scans even on a small table."""
    # On tiny tables the planner may prefer a sort anyway: forbid the alternatives, so a Sort or a
    # Seq Scan in the plan means no index can serve the query.
    for setting in ("enable_seqscan", "enable_sort", "enable_bitmapscan"):
        conn.execute(f"SET {setting} = off")
    try:
        someone = "'7a1d0c53-8f2e-4b5e-9a31-2f7c6d4e8b90'::uuid"
        newest = "ORDER BY created_at DESC, id DESC LIMIT 20"
        plans = {
            "my payments": f"SELECT * FROM payments WHERE user_id = {someone} {newest}",
            "admin payments by status": f"SELECT * FROM payments WHERE status = 'SUCCEEDED' {newest}",
            "review queue": "SELECT * FROM submissions WHERE status = 'PENDING' ORDER BY submitted_at, id LIMIT 20",
            "my submissions": f"SELECT * FROM submissions WHERE student_id = {someone}"
            " ORDER BY submitted_at DESC, id DESC LIMIT 20",
            "admin users": f"SELECT * FROM users WHERE (created_at, id) < (now(), {someone}) {newest}",
            "admin users by role": f"SELECT * FROM users WHERE role = 'student'"
            f" AND (created_at, id) < (now(), {someone}) {newest}",
            "admin users by track": f"SELECT * FROM users WHERE track_id = 1 {newest}",
            "admin users by status": f"SELECT * FROM users WHERE enrollment_status = 'ENROLLED' {newest}",
            "audit by subject": f"SELECT * FROM audit_logs WHERE subject_id = {someone}"
            " ORDER BY occurred_at DESC, id DESC LIMIT 20",
            "audit by actor": f"SELECT * FROM audit_logs WHERE actor_id = {someone}"
            " ORDER BY occurred_at DESC, id DESC LIMIT 20",
            "audit by action": "SELECT * FROM audit_logs WHERE action = 'LOGIN'"
            " ORDER BY occurred_at DESC, id DESC LIMIT 20",
            "trainer's students": f"SELECT * FROM trainer_assignments WHERE trainer_id = {someone}"
            " ORDER BY assigned_at, student_id LIMIT 20",
            "refund requests by status": "SELECT * FROM refund_requests WHERE status = 'PENDING'"
            " ORDER BY created_at, id LIMIT 20",
            "deletions due": "SELECT * FROM deletion_requests WHERE status IN ('SCHEDULED', 'IN_PROGRESS')"
            " AND scheduled_for <= now()",
            "my exports": f"SELECT * FROM data_export_requests WHERE user_id = {someone}"
            " ORDER BY requested_at DESC LIMIT 1",
            "expired exports": "SELECT * FROM data_export_requests WHERE status = 'READY' AND expires_at < now()",
            "my consents": f"SELECT * FROM user_consents WHERE user_id = {someone} ORDER BY accepted_at DESC",
        }
        for name, query in plans.items():
            plan = "\n".join(r["QUERY PLAN"] for r in conn.execute(f"EXPLAIN {query}"))
            assert "Index" in plan and "Sort" not in plan and "Seq Scan" not in plan, f"{name}:\n{plan}"
    finally:
        conn.execute("RESET ALL")
