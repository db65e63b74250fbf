"""The right of access: the export routes through the real compliance handler, and the export worker
run the way AWS runs it.

moto runs as a server in this process; the route's ``lambda:Invoke`` (InvocationType=Event) reaches
moto's Lambda API, which local.lambda_dispatch hands to the real worker handler in a thread, as
Lambda would run it. The worker reads the real database, Cognito, S3 (KMS-encrypted objects) and
sends through SES, all in moto; the archive is downloaded through the presigned link the route
signs. People are arranged with SQL as the other flows leave them, with a row in every table of
the register, and the export is checked against the register itself (THE BAR).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import psycopg
import pytest
import requests
from psycopg import sql
from psycopg.types.json import Jsonb

from apranova import alerts, cognito, db, mail
from functions.compliance import register
from functions.compliance import settings as config
from functions.compliance.export import service as export_service
from functions.compliance.export import worker as export_worker
from functions.compliance.export.archive import json_value
from functions.compliance.export.service import ExportFailed
from functions.compliance.handler import lambda_handler
from local import moto_stack
from local.cognito import is_code_email
from local.events import LambdaContext, http_api_event
from tests.integration.github_fake import closed_port_url

UPLOADS = "apranova-export-test-uploads"
EXPORTS = "apranova-export-test-exports"
WORKER = "apranova-export-test-worker"
SENDER = "privacy@apranova.test"
OPS = "ops@apranova.test"
SPA = "http://spa.export.test"
EXPORT = "/api/compliance/export-data/"
PDF = b"%PDF-1.4\n% Ada's insights report\n%%EOF\n"
NOTES = b"notes Ada uploaded but never submitted\n"


def exports_path(export_id: str) -> str:
    return f"/api/compliance/exports/{export_id}/"


@dataclass
class Person:
    user_id: str
    email: str
    name: str
    groups: str = "[students]"

    @property
    def claims(self) -> dict[str, Any]:
        return {"sub": self.user_id, "token_use": "access", "cognito:groups": self.groups, "email": self.email}


@dataclass
class Answer:
    status: int
    body: Any
    headers: dict[str, str]


def call(method: str, path: str, who: Person | None, *, source_ip: str = "203.0.113.7", **kwargs: Any) -> Answer:
    event = http_api_event(
        method,
        path,
        claims=who.claims if who else None,
        source_ip=source_ip,
        headers={"user-agent": f"export-tests/{source_ip}"},
        **kwargs,
    )
    response = lambda_handler(event, LambdaContext("compliance"))
    body = json.loads(response["body"]) if response.get("body") else None
    return Answer(response["statusCode"], body, {k.lower(): v for k, v in (response.get("headers") or {}).items()})


@dataclass
class Aws:
    url: str
    s3: Any
    cognito: Any
    pool_id: str
    kms_key_id: str


def _reset_settings() -> None:
    config.reset()
    mail.reset()
    alerts.reset()


@contextmanager
def environment(**values: str) -> Iterator[None]:
    """``values`` in the environment (and the settings read again) until the block ends."""
    try:
        with pytest.MonkeyPatch.context() as mp:
            for key, value in values.items():
                mp.setenv(key, value)
            _reset_settings()
            yield
    finally:
        _reset_settings()


@pytest.fixture(scope="module")
def aws(database_url: str) -> Iterator[Aws]:
    server = moto_stack.MotoServer()
    server.start()
    url = server.url
    s3 = moto_stack.client("s3", url)
    for bucket in (UPLOADS, EXPORTS):
        s3.create_bucket(Bucket=bucket)
    moto_stack.client("ses", url).verify_email_identity(EmailAddress=SENDER)
    kms_key_id = moto_stack.client("kms", url).create_key(Description="exports")["KeyMetadata"]["KeyId"]
    cognito = moto_stack.client("cognito-idp", url)
    pool_id = cognito.create_user_pool(
        PoolName=f"export-{uuid.uuid4().hex[:6]}", UsernameAttributes=["email"], AutoVerifiedAttributes=["email"]
    )["UserPool"]["Id"]
    for group in ("students", "trainers", "admins"):
        cognito.create_group(UserPoolId=pool_id, GroupName=group)
    moto_stack.register_function(url, WORKER, "functions.compliance.export.worker.lambda_handler")
    try:
        with environment(
            AWS_ENDPOINT_URL=url,
            UPLOADS_BUCKET=UPLOADS,
            EXPORTS_BUCKET=EXPORTS,
            EXPORTS_KMS_KEY_ID=kms_key_id,
            EXPORT_FUNCTION_NAME=WORKER,
            COGNITO_USER_POOL_ID=pool_id,
            EMAIL_SENDER=SENDER,
            OPS_EMAIL=OPS,
            SPA_ORIGIN=SPA,
        ):
            yield Aws(url, s3, cognito, pool_id, kms_key_id)
    finally:
        server.stop()


@pytest.fixture
def people(aws: Aws, database_url: str) -> Iterator[Callable[..., Person]]:
    """A Cognito user and its users row (as sign-up leaves them: consent recorded)."""
    made: list[str] = []

    def make(role: str = "student", track: str | None = "DP") -> Person:
        email = f"export-{uuid.uuid4().hex[:10]}@example.com"
        name = f"{role.title()} {uuid.uuid4().hex[:4]}"
        created = aws.cognito.admin_create_user(
            UserPoolId=aws.pool_id,
            Username=email,
            UserAttributes=[
                {"Name": "email", "Value": email},
                {"Name": "email_verified", "Value": "true"},
                {"Name": "name", "Value": name},
            ],
            MessageAction="SUPPRESS",
        )["User"]
        sub = next(a["Value"] for a in created["Attributes"] if a["Name"] == "sub")
        aws.cognito.admin_add_user_to_group(UserPoolId=aws.pool_id, Username=email, GroupName=f"{role}s")
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO users (id, email, name, role, track_id, enrollment_status, enrolled_at, email_verified)"
                " VALUES (%s, %s, %s, %s, (SELECT id FROM tracks WHERE code = %s),"
                " CASE WHEN %s::text IS NULL THEN 'PENDING_PAYMENT' ELSE 'ENROLLED' END, now(), true)",
                (sub, email, name, role, track, track),
            )
            conn.execute(
                "INSERT INTO user_consents (user_id, privacy_policy_version, terms_version, ip_address, user_agent,"
                " source) VALUES (%s, (SELECT version FROM privacy_policies WHERE is_active),"
                " (SELECT version FROM terms_of_service WHERE is_active), '198.51.100.4', 'SignupBrowser/1.0',"
                " 'SIGNUP')",
                (sub,),
            )
        made.append(sub)
        return Person(sub, email, name, f"[{role}s]")

    yield make
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("DELETE FROM privacy_policies WHERE published_by = ANY(%s::uuid[])", (made,))
        conn.execute("DELETE FROM terms_of_service WHERE published_by = ANY(%s::uuid[])", (made,))
        # Payments are never deleted (a trigger), so their people stay; the others go.
        conn.execute(
            "DELETE FROM users u WHERE u.id = ANY(%s::uuid[]) AND NOT EXISTS"
            " (SELECT 1 FROM payments p WHERE p.user_id = u.id)"
            " AND NOT EXISTS (SELECT 1 FROM refund_requests r WHERE r.user_id = u.id)",
            (made,),
        )


# --- helpers -------------------------------------------------------------------------------------------


def wait_for(who: Person, export_id: str, timeout: float = 30) -> Answer:
    """Polls the export until the worker has finished with it."""
    deadline = time.monotonic() + timeout
    while True:
        answer = call("GET", exports_path(export_id), who)
        assert answer.status == 200, answer.body
        if answer.body["status"] != "PENDING" or time.monotonic() > deadline:
            return answer
        time.sleep(0.1)


def start_export(who: Person) -> dict[str, Any]:
    answer = call("POST", EXPORT, who)
    assert answer.status == 202, answer.body
    return answer.body


def download(url: str) -> zipfile.ZipFile:
    response = requests.get(url, timeout=10)
    assert response.status_code == 200, response.text
    return zipfile.ZipFile(io.BytesIO(response.content))


def export_row(conn, export_id: str) -> dict[str, Any]:
    return conn.execute("SELECT * FROM data_export_requests WHERE id = %s", (export_id,)).fetchone()


def audits(conn, who: Person, stage: str | None = None) -> list[dict[str, Any]]:
    return conn.execute(
        "SELECT action, actor_id::text AS actor_id, subject_id::text AS subject_id, resource_type, resource_id,"
        " details, host(ip_address) AS ip, user_agent FROM audit_logs"
        " WHERE action = 'DATA_EXPORT' AND subject_id = %s AND (%s::text IS NULL OR details->>'stage' = %s)"
        " ORDER BY id",
        (who.user_id, stage, stage),
    ).fetchall()


def emails_to(who: Person, at_least: int = 0, timeout: float = 10) -> list[dict[str, Any]]:
    """The emails SES accepted for ``who`` (waiting for ``at_least``: the worker emails after its commit)."""
    deadline = time.monotonic() + timeout
    while True:
        found = [m for m in moto_stack.mailbox() if who.email in m["to"] and not is_code_email(m)]
        if len(found) >= at_least or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def normalise(row: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(row, default=json_value))


def rows_in_database(conn, table: register.Table, who: Person) -> list[dict[str, Any]]:
    """The person's rows as the table holds them (no column withheld)."""
    query = sql.SQL("SELECT {columns} FROM {table} t WHERE {selector}").format(
        columns=sql.SQL(", ").join(sql.SQL("t.{}").format(sql.Identifier(c)) for c in table.column_names),
        table=sql.Identifier(table.name),
        selector=sql.SQL(table.selector),
    )
    return [normalise(row) for row in conn.execute(query, {"user_id": who.user_id, "email": who.email})]


def same_row(table: register.Table, expected: dict[str, Any], exported: dict[str, Any]) -> bool:
    for column in table.columns:
        value = exported[column.name]
        if value != expected[column.name] and not (column.only_when and value is None):
            return False
    return True


def project(conn, track: str, number: int) -> dict[str, Any]:
    return conn.execute(
        "SELECT p.id, (SELECT min(s.id) FROM project_steps s WHERE s.project_id = p.id) AS step_id"
        " FROM projects p JOIN tracks t ON t.id = p.track_id WHERE t.code = %s AND p.number = %s",
        (track, number),
    ).fetchone()


def deliverable_id(conn, project_id: int, number: int) -> int:
    return conn.execute(
        "SELECT id FROM deliverables WHERE project_id = %s AND number = %s", (project_id, number)
    ).fetchone()["id"]


@dataclass
class Seeded:
    files: dict[str, bytes]  # key → content, Ada's uploads
    payment_id: str
    old_export_id: str


def seed_everything(conn, aws: Aws, ada: Person, tom: Person, bob: Person) -> Seeded:
    """Ada (a student) with a row in every table of the register, and Tom (an admin who trains) with
    the rows of his work about her; Bob's upload must never reach Ada's export."""
    hex_ = uuid.uuid4().hex
    payment_id = conn.execute(
        """
        INSERT INTO payments (user_id, customer_email, customer_name, track, amount_cents, currency, status, kind,
                              stripe_checkout_session_id, stripe_payment_intent_id, stripe_customer_id,
                              stripe_charge_id, idempotency_key, succeeded_at, enrollment_execution)
        VALUES (%s, %s, %s, 'DP', 49900, 'USD', 'SUCCEEDED', 'CHECKOUT', %s, %s, %s, %s, %s, now(), %s)
        RETURNING id::text AS id
        """,
        (ada.user_id, ada.email, ada.name, f"cs_test_{hex_}", f"pi_{hex_}", f"cus_{hex_[:14]}", f"ch_{hex_}",
         f"idem-{hex_}", f"enrollment-{hex_}"),
    ).fetchone()["id"]  # fmt: skip
    # A pay-first checkout with her email that no account was linked to (found by email).
    conn.execute(
        "INSERT INTO payments (customer_email, customer_name, track, amount_cents, currency, status, kind)"
        " VALUES (%s, %s, 'FSD', 59900, 'USD', 'EXPIRED', 'CHECKOUT')",
        (ada.email.upper(), ada.name),
    )
    conn.execute(
        "INSERT INTO stripe_events (event_id, type, received_at, processed_at, payment_id, outcome)"
        " VALUES (%s, 'checkout.session.completed', now(), now(), %s, 'processed')",
        (f"evt_{hex_}", payment_id),
    )
    conn.execute(
        "INSERT INTO stripe_customers (user_id, stripe_customer_id) VALUES (%s, %s)", (ada.user_id, f"cus_{hex_[:14]}")
    )
    conn.execute(
        "INSERT INTO payment_outbox (key, action, payment_id, done_at) VALUES (%s, 'START_ENROLLMENT', %s, now())",
        (f"enroll:{payment_id}", payment_id),
    )
    conn.execute(
        "INSERT INTO refund_requests (payment_id, user_id, reason, amount_cents, status, decided_by, decided_at,"
        " decision_reason) VALUES (%s, %s, 'The course is not for me', 1000, 'REJECTED', %s, now(),"
        " 'Outside the refund window')",
        (payment_id, ada.user_id, tom.user_id),
    )
    version = f"0.{int(hex_[:6], 16)}"
    for table in ("privacy_policies", "terms_of_service"):
        conn.execute(
            sql.SQL(
                "INSERT INTO {} (version, content, summary, effective_at, is_active, published_by)"
                " VALUES (%s, 'An early draft.', 'Draft', '2000-01-01T00:00:00Z', false, %s)"
            ).format(sql.Identifier(table)),
            (version, tom.user_id),
        )
    conn.execute(
        "INSERT INTO audit_logs (action, actor_id, actor_role, subject_id, resource_type, resource_id, details,"
        " ip_address, user_agent) VALUES ('TRAINER_ASSIGNED', %s, 'admin', %s, 'user', %s, %s, '192.0.2.50',"
        " 'AdminBrowser/2.0')",
        (tom.user_id, ada.user_id, ada.user_id, Jsonb({"trainer_id": tom.user_id})),
    )
    old_export_id = conn.execute(
        "INSERT INTO data_export_requests (user_id, status, s3_key, size_bytes, requested_at, completed_at,"
        " expires_at) VALUES (%s, 'EXPIRED', %s, 1234, now() - interval '10 days', now() - interval '10 days',"
        " now() - interval '3 days') RETURNING id::text AS id",
        (ada.user_id, f"exports/{ada.user_id}/old.zip"),
    ).fetchone()["id"]
    conn.execute(
        "INSERT INTO deletion_requests (user_id, status, reason, requested_at, scheduled_for, cancelled_at)"
        " VALUES (%s, 'CANCELLED', 'Taking a break', now() - interval '5 days', now() + interval '25 days',"
        " now() - interval '4 days')",
        (ada.user_id,),
    )
    schema = "s_" + hex_[:16]
    conn.execute(
        "INSERT INTO student_database_credentials (user_id, database_name, schema_name, role_name,"
        " password_parameter_name) VALUES (%s, 'students', %s, %s, %s)",
        (ada.user_id, schema, schema, f"/apranova/test/students/{ada.user_id}/db-password"),
    )
    conn.execute(
        "INSERT INTO tool_provisioning (user_id, tool, status, external_id, details, attempts, provisioned_at)"
        " VALUES (%s, 'STUDENT_DATABASE', 'SUCCEEDED', %s, %s, 1, now())",
        (ada.user_id, schema, Jsonb({"schema": schema, "role": schema})),
    )
    conn.execute("INSERT INTO trainer_profiles (user_id, max_students) VALUES (%s, 12)", (tom.user_id,))
    conn.execute(
        "INSERT INTO trainer_assignments (student_id, trainer_id, track, assigned_by) VALUES (%s, %s, 'DP', %s)",
        (ada.user_id, tom.user_id, tom.user_id),
    )
    first = project(conn, "DP", 1)
    conn.execute(
        "INSERT INTO student_progress (student_id, project_id, status, unlocked_at, started_at, submitted_at)"
        " VALUES (%s, %s, 'SUBMITTED', now(), now(), now())",
        (ada.user_id, first["id"]),
    )
    conn.execute(
        "INSERT INTO step_completions (student_id, project_id, step_id) VALUES (%s, %s, %s)",
        (ada.user_id, first["id"], first["step_id"]),
    )
    link, report = deliverable_id(conn, first["id"], 1), deliverable_id(conn, first["id"], 3)
    conn.execute(
        "INSERT INTO submissions (student_id, project_id, deliverable_id, attempt, submission_url, status, feedback,"
        " reviewed_by, reviewed_at) VALUES (%s, %s, %s, 1, 'https://bi.example.com/ada', 'CHANGES_REQUESTED',"
        " 'Add the revenue KPI.', %s, now())",
        (ada.user_id, first["id"], link, tom.user_id),
    )
    report_key = f"submissions/{ada.user_id}/{report}/{uuid.uuid4()}/report.pdf"
    notes_key = f"submissions/{ada.user_id}/{report}/{uuid.uuid4()}/notes.txt"
    files = {report_key: PDF, notes_key: NOTES}
    for key, body in files.items():
        aws.s3.put_object(Bucket=UPLOADS, Key=key, Body=body)
    aws.s3.put_object(Bucket=UPLOADS, Key=f"submissions/{bob.user_id}/{report}/{uuid.uuid4()}/bob.pdf", Body=b"bob")
    conn.execute(
        "INSERT INTO submissions (student_id, project_id, deliverable_id, attempt, file_key, file_size,"
        " file_content_type) VALUES (%s, %s, %s, 1, %s, %s, 'application/pdf')",
        (ada.user_id, first["id"], report, report_key, len(PDF)),
    )
    return Seeded(files, payment_id, old_export_id)


# --- THE BAR: the export holds every row the register lists -------------------------------------------


def test_export_holds_every_registered_row_files_and_readme(aws: Aws, people, conn) -> None:
    ada, tom, bob = people(), people(role="admin", track=None), people()
    seeded = seed_everything(conn, aws, ada, tom, bob)
    exported = register.exported_tables()
    before = {who.user_id: {t.name: rows_in_database(conn, t, who) for t in exported} for who in (ada, tom)}
    # Between them, Ada and Tom have rows in every table the export covers.
    empty = [t.name for t in exported if not before[ada.user_id][t.name] and not before[tom.user_id][t.name]]
    assert not empty, f"seed rows for {empty}"

    started = start_export(ada)
    assert started["status"] == "PENDING" and started["download_url"] is None and started["expires_at"] is None
    uuid.UUID(started["id"])
    (requested,) = audits(conn, ada, "requested")
    assert (requested["actor_id"], requested["resource_type"], requested["resource_id"]) == (
        ada.user_id, "data_export", started["id"])  # fmt: skip
    assert requested["ip"] == "203.0.113.7" and requested["user_agent"] == "export-tests/203.0.113.7"

    ready = wait_for(ada, started["id"])
    assert ready.status == 200 and ready.body["status"] == "READY", ready.body
    assert ready.headers["cache-control"] == "no-store"
    row = export_row(conn, started["id"])
    assert row["s3_key"] == f"exports/{ada.user_id}/{started['id']}.zip"
    assert row["expires_at"] - row["completed_at"] == dt.timedelta(days=7)
    assert ready.body["expires_at"] is not None and ready.body["download_expires_in"] == 300
    assert ready.body["size_bytes"] == row["size_bytes"] > 0

    head = aws.s3.head_object(Bucket=EXPORTS, Key=row["s3_key"])
    assert head["ServerSideEncryption"] == "aws:kms"
    assert aws.kms_key_id in head["SSEKMSKeyId"]
    assert head["ContentLength"] == row["size_bytes"]

    archive = download(ready.body["download_url"])
    names = set(archive.namelist())
    assert {"data.json", "README.md"} <= names
    prefix = f"submissions/{ada.user_id}/"
    for key, body in seeded.files.items():
        assert archive.read("files/" + key[len(prefix) :]) == body
    assert not any("bob" in name for name in names)
    assert len([n for n in names if n.startswith("files/")]) == len(seeded.files)

    data = json.loads(archive.read("data.json"))
    assert data["export"]["id"] == started["id"] and data["export"]["user_id"] == ada.user_id
    readme = archive.read("README.md").decode()
    _check_against_register(ada, data, before[ada.user_id], readme)
    assert {f["key"] for f in data["files"]} == set(seeded.files)
    assert [e["id"] for e in data["data_export_requests"] if e["id"] == started["id"]]
    assert seeded.old_export_id in {e["id"] for e in data["data_export_requests"]}
    assert any(p["user_id"] is None and p["track"] == "FSD" for p in data["payments"])  # found by email

    (cognito,) = data["cognito"]
    assert cognito["found"] and cognito["attributes"]["sub"] == ada.user_id
    assert cognito["attributes"]["email"] == ada.email and cognito["attributes"]["name"] == ada.name
    assert cognito["groups"] == ["students"]

    # Another person's data in Ada's rows is withheld: Tom's IP on the audit row about her.
    by_tom = [a for a in data["audit_logs"] if a["actor_id"] == tom.user_id]
    assert by_tom and all(a["ip_address"] is None and a["user_agent"] is None for a in by_tom)
    mine = [a for a in data["audit_logs"] if a["actor_id"] == ada.user_id]
    assert any(a["ip_address"] == "203.0.113.7" for a in mine)
    assert {r["reason"] for r in data["refund_requests"]} == {"The course is not for me"}

    (email,) = emails_to(ada, at_least=1)
    assert email["subject"] == "Your ApraNova data export is ready"
    body = email["body_text"] or email["body_html"] or ""
    assert f"{SPA}/account/privacy" in body
    assert "X-Amz" not in body and EXPORTS not in body and "exports/" not in body
    (built,) = audits(conn, ada, "ready")
    assert built["actor_id"] is None and built["details"]["size_bytes"] == row["size_bytes"]

    # Tom's export: his own rows, and in the rows of his work about Ada none of her content.
    tom_started = start_export(tom)
    tom_ready = wait_for(tom, tom_started["id"])
    assert tom_ready.body["status"] == "READY", tom_ready.body
    tom_data = json.loads(download(tom_ready.body["download_url"]).read("data.json"))
    _check_against_register(tom, tom_data, before[tom.user_id], None)
    (reviewed,) = tom_data["submissions"]
    assert reviewed["feedback"] == "Add the revenue KPI." and reviewed["submission_url"] is None
    (decided,) = tom_data["refund_requests"]
    assert decided["decision_reason"] == "Outside the refund window" and decided["reason"] is None
    assert any(a["ip_address"] == "192.0.2.50" for a in tom_data["audit_logs"])
    assert tom_data["cognito"][0]["groups"] == ["admins"] and tom_data["files"] == []


def _check_against_register(
    who: Person, data: dict[str, Any], before: dict[str, list[dict[str, Any]]], readme: str | None
) -> None:
    """Every table the register exports is in data.json with every registered column, and every row the
    person had when they asked is there, value for value (a withheld value only where the register says)."""
    grown = {"audit_logs", "data_export_requests"}  # the request itself adds rows to these
    for table in register.exported_tables():
        assert table.name in data, table.name
        rows = data[table.name]
        for row in rows:
            assert set(row) == set(table.column_names), table.name
        for expected in before[table.name]:
            assert any(same_row(table, expected, row) for row in rows), (who.name, table.name, expected)
        if table.name not in grown:
            assert len(rows) == len(before[table.name]), table.name
        if readme is not None:
            assert f"`{table.name}`" in readme, table.name
    if readme is not None:
        for store in register.STORES:
            assert store.location in readme


# --- links ---------------------------------------------------------------------------------------------


def test_each_call_signs_a_new_short_link_and_is_audited(aws: Aws, people, conn) -> None:
    ada = people()
    started = start_export(ada)
    first = wait_for(ada, started["id"])
    assert first.body["status"] == "READY", first.body
    time.sleep(1.1)  # a signature covers the signing second
    second = call("GET", exports_path(started["id"]), ada)
    assert second.status == 200
    one, two = (parse_qs(urlsplit(a.body["download_url"]).query) for a in (first, second))
    assert one["X-Amz-Signature"] != two["X-Amz-Signature"] and one["X-Amz-Date"] != two["X-Amz-Date"]
    assert one["X-Amz-Expires"] == two["X-Amz-Expires"] == ["300"]
    assert urlsplit(first.body["download_url"]).path.endswith(f"/exports/{ada.user_id}/{started['id']}.zip")
    assert download(first.body["download_url"]).testzip() is None
    assert download(second.body["download_url"]).testzip() is None
    issued = audits(conn, ada, "link_issued")
    assert len(issued) == 2 and all(a["actor_id"] == ada.user_id and a["ip"] == "203.0.113.7" for a in issued)

    # A link never outlives the export.
    conn.execute(
        "UPDATE data_export_requests SET expires_at = now() + interval '40 seconds' WHERE id = %s", (started["id"],)
    )
    near = call("GET", exports_path(started["id"]), ada)
    assert near.body["status"] == "READY" and 30 <= near.body["download_expires_in"] <= 40


def test_past_its_expiry_an_export_is_expired_and_no_link_is_signed(aws: Aws, people, conn) -> None:
    ada = people()
    started = start_export(ada)
    assert wait_for(ada, started["id"]).body["status"] == "READY"
    conn.execute(
        "UPDATE data_export_requests SET expires_at = now() - interval '1 second' WHERE id = %s", (started["id"],)
    )
    issued_before = len(audits(conn, ada, "link_issued"))
    answer = call("GET", exports_path(started["id"]), ada)
    assert answer.status == 200 and answer.headers["cache-control"] == "no-store"
    assert answer.body["status"] == "EXPIRED" and answer.body["download_url"] is None
    assert answer.body["expires_at"] is not None
    assert len(audits(conn, ada, "link_issued")) == issued_before
    # As the retention sweep leaves it: the row EXPIRED (and the object deleted).
    conn.execute("UPDATE data_export_requests SET status = 'EXPIRED' WHERE id = %s", (started["id"],))
    answer = call("GET", exports_path(started["id"]), ada)
    assert answer.body["status"] == "EXPIRED" and answer.body["download_url"] is None


# --- refusals ------------------------------------------------------------------------------------------


def test_one_export_per_24_hours_else_429_with_the_next_allowed_time(aws: Aws, people, conn) -> None:
    ada = people()
    started = start_export(ada)
    assert wait_for(ada, started["id"]).body["status"] == "READY"
    requested_at = export_row(conn, started["id"])["requested_at"]

    again = call("POST", EXPORT, ada)
    assert again.status == 429 and again.body["error"]["code"] == "export_rate_limited"
    (detail,) = again.body["error"]["details"]
    next_allowed = dt.datetime.fromisoformat(detail["next_allowed_at"])
    assert next_allowed == requested_at + dt.timedelta(hours=24)
    assert detail["next_allowed_at"] in again.body["detail"]
    assert 86_000 < int(again.headers["retry-after"]) <= 86_400 and detail["retry_after_seconds"] > 86_000
    count = conn.execute("SELECT count(*) AS n FROM data_export_requests WHERE user_id = %s", (ada.user_id,))
    assert count.fetchone()["n"] == 1 and len(audits(conn, ada, "requested")) == 1

    # A failed export does not count; one older than 24 hours neither.
    conn.execute("UPDATE data_export_requests SET status = 'FAILED', error = 'x' WHERE id = %s", (started["id"],))
    retried = start_export(ada)
    assert wait_for(ada, retried["id"]).body["status"] == "READY"
    conn.execute(
        "UPDATE data_export_requests SET requested_at = requested_at - interval '24 hours 1 second' WHERE id = %s",
        (retried["id"],),
    )
    third = start_export(ada)
    assert wait_for(ada, third["id"]).body["status"] == "READY"


def test_someone_elses_or_a_malformed_id_is_404_and_anonymous_is_401(aws: Aws, people, conn) -> None:
    ada, bob = people(), people()
    started = start_export(ada)
    assert wait_for(ada, started["id"]).body["status"] == "READY"
    for who, export_id in (
        (bob, started["id"]),
        (ada, str(uuid.uuid4())),
        (ada, "not-a-uuid"),
        (ada, started["id"].replace("-", "")),
        (ada, "' OR '1'='1"),
        (ada, started["id"].upper() + "0"),
        # 32 hex digits and 4 hyphens, but not where PostgreSQL's uuid input allows them.
        (ada, started["id"].replace("-", "")[:7] + "-" + started["id"].replace("-", "")[7:8] + started["id"][9:]),
    ):
        answer = call("GET", exports_path(export_id), who)
        assert (answer.status, answer.body["error"]["code"]) == (404, "not_found"), (export_id, answer.body)
        assert answer.body.get("download_url") is None
    assert audits(conn, bob) == []

    assert call("POST", EXPORT, None).status == 401
    assert call("GET", exports_path(started["id"]), None).status == 401
    id_token = {**ada.claims, "token_use": "id"}
    event = http_api_event("POST", EXPORT, claims=id_token)
    assert lambda_handler(event, LambdaContext("compliance"))["statusCode"] == 401
    assert call("POST", EXPORT, ada, body="{not json").status == 400
    assert conn.execute(
        "SELECT count(*) AS n FROM data_export_requests WHERE user_id = %s", (ada.user_id,)
    ).fetchone()["n"] == 1  # fmt: skip


def test_an_account_without_a_users_row_gets_401_and_nothing_is_written(aws: Aws, conn) -> None:
    ghost = Person(str(uuid.uuid4()), "ghost@example.com", "Ghost")
    answer = call("POST", EXPORT, ghost)
    assert answer.status == 401  # no account, no session (the guard)
    assert conn.execute(
        "SELECT count(*) AS n FROM audit_logs WHERE subject_id = %s", (ghost.user_id,)
    ).fetchone()["n"] == 0  # fmt: skip


def test_when_the_worker_cannot_be_invoked_the_export_fails_and_does_not_count(aws: Aws, people, conn) -> None:
    ada = people()
    # The Lambda service unreachable (its endpoint refuses connections).
    with environment(AWS_ENDPOINT_URL_LAMBDA=closed_port_url()):
        answer = call("POST", EXPORT, ada)
    assert answer.status == 503 and answer.headers["retry-after"] == "60"
    (row,) = conn.execute("SELECT * FROM data_export_requests WHERE user_id = %s", (ada.user_id,)).fetchall()
    assert row["status"] == "FAILED" and ada.email not in row["error"] and ada.name not in row["error"]
    started = start_export(ada)
    assert wait_for(ada, started["id"]).body["status"] == "READY"


# --- the worker ----------------------------------------------------------------------------------------


def run_worker(export_id: str) -> dict[str, Any]:
    with db.function_slot(WORKER):
        return export_worker.lambda_handler({"export_id": export_id}, LambdaContext(WORKER))


def test_the_worker_is_idempotent(aws: Aws, people, conn) -> None:
    ada = people()
    started = start_export(ada)
    assert wait_for(ada, started["id"]).body["status"] == "READY"
    row = export_row(conn, started["id"])
    head = aws.s3.head_object(Bucket=EXPORTS, Key=row["s3_key"])
    sent = len(emails_to(ada, at_least=1))

    assert run_worker(started["id"])["outcome"] == "already_built"
    assert export_row(conn, started["id"]) == row
    assert aws.s3.head_object(Bucket=EXPORTS, Key=row["s3_key"])["ETag"] == head["ETag"]
    assert len(emails_to(ada)) == sent and len(audits(conn, ada, "ready")) == 1
    assert run_worker("not-a-uuid")["outcome"] == "invalid_id"
    assert run_worker(str(uuid.uuid4()))["outcome"] == "gone"


def test_a_failed_build_is_recorded_alerted_raised_and_rebuilt_on_retry(aws: Aws, people, conn) -> None:
    ada = people()
    export_id = conn.execute(
        "INSERT INTO data_export_requests (user_id) VALUES (%s) RETURNING id::text AS id", (ada.user_id,)
    ).fetchone()["id"]
    ops_before = len([m for m in moto_stack.mailbox() if OPS in m["to"]])
    with environment(EXPORTS_BUCKET="apranova-export-test-missing"), pytest.raises(ExportFailed) as raised:
        run_worker(export_id)
    assert raised.value.stage == "upload"
    row = export_row(conn, export_id)
    assert row["status"] == "FAILED" and row["error"].startswith("export build failed at upload")
    assert ada.email not in row["error"] and ada.name not in row["error"] and ada.user_id not in row["error"]
    alerts_sent = [m for m in moto_stack.mailbox() if OPS in m["to"]]
    assert len(alerts_sent) == ops_before + 1 and "Data export failed" in alerts_sent[0]["subject"]
    assert ada.email not in (alerts_sent[0]["body_text"] or alerts_sent[0]["body_html"] or "")
    assert emails_to(ada) == [] and len(audits(conn, ada, "failed")) == 1

    # Lambda retries the event: the build runs again and succeeds.
    assert run_worker(export_id)["outcome"] == "ready"
    assert export_row(conn, export_id)["status"] == "READY" and len(emails_to(ada)) == 1

    # A failed export the person has since replaced is not rebuilt.
    older = conn.execute(
        "INSERT INTO data_export_requests (user_id, status, error, requested_at) VALUES"
        " (%s, 'FAILED', 'x', now() - interval '1 hour') RETURNING id::text AS id",
        (ada.user_id,),
    ).fetchone()["id"]
    assert run_worker(older)["outcome"] == "superseded"
    assert export_row(conn, older)["status"] == "FAILED"


def test_no_export_is_built_for_an_account_the_purge_is_erasing(aws: Aws, people, conn) -> None:
    """Once the purge has claimed the account (users.deleted_at), a build still queued (or retried by
    Lambda) must not write the person's data to S3 again, nor email them: the purge's files step may
    already have run, and the archive would outlive the erasure."""
    ada = people()
    queued = conn.execute(
        "INSERT INTO data_export_requests (user_id) VALUES (%s) RETURNING id::text AS id", (ada.user_id,)
    ).fetchone()["id"]
    conn.execute("UPDATE users SET deleted_at = now() WHERE id = %s", (ada.user_id,))
    assert run_worker(queued)["outcome"] == "gone"
    assert export_row(conn, queued)["status"] != "READY"
    assert aws.s3.list_objects_v2(Bucket=EXPORTS, Prefix=register.exports_prefix(ada.user_id)).get("KeyCount") == 0
    assert emails_to(ada) == [] and audits(conn, ada, "ready") == []


class _ClaimedDuringUpload:
    """The exports S3 client, with the purge claiming the account while the archive uploads."""

    def __init__(self, s3: Any, database_url: str, user_id: str) -> None:
        self._s3, self._url, self._user_id = s3, database_url, user_id

    def upload_fileobj(self, *args: Any, **kwargs: Any) -> Any:
        with psycopg.connect(self._url, autocommit=True) as other:
            other.execute("UPDATE users SET deleted_at = now() WHERE id = %s", (self._user_id,))
        return self._s3.upload_fileobj(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._s3, name)


def test_an_archive_finished_after_the_purge_claimed_the_account_is_deleted_not_offered(
    aws: Aws, people, conn, database_url: str
) -> None:
    ada = people()
    queued = conn.execute(
        "INSERT INTO data_export_requests (user_id) VALUES (%s) RETURNING id::text AS id", (ada.user_id,)
    ).fetchone()["id"]
    sent: list[mail.Email] = []
    deps = export_service.WorkerDeps(
        config=config.export_worker_settings(),
        s3=_ClaimedDuringUpload(config.s3(), database_url, ada.user_id),
        cognito=cognito.client(),
        send=sent.append,
        alert=lambda subject, details: None,
    )
    with db.function_slot(WORKER):
        assert export_service.build_export(queued, deps)["outcome"] == "gone"
    assert export_row(conn, queued)["status"] != "READY"
    assert aws.s3.list_objects_v2(Bucket=EXPORTS, Prefix=register.exports_prefix(ada.user_id)).get("KeyCount") == 0
    assert sent == [] and audits(conn, ada, "ready") == []
