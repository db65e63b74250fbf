"""The database master password rotates without a redeploy, over TLS that is really verified
(issue 14 items 3 and 6; docs/principles.md §8 rule 17).

A throwaway PostgreSQL that checks passwords (SCRAM) and serves TLS with a certificate for
127.0.0.1 plays the RDS instance; its admin role's password lives in moto's Secrets Manager, as the
RDS master secret does. Between two provisioning runs the password is changed on the server and in
the secret: the second run succeeds with the new one. The migrate function does the same.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import psycopg
import pytest
from moto import mock_aws
from psycopg import sql

from apranova import secrets, tls
from functions.provision.tools import Student, ToolStatus, ToolUnavailable, registry
from functions.provision.tools.student_database import names_for
from tests import password_postgres

pytestmark = pytest.mark.skipif(not password_postgres.available(), reason="no initdb on this machine")

ADMIN = "students_admin"
ADMIN_DB = "apranova_students"
PREFIX = "/apranova/rotation-test"


@pytest.fixture(scope="module")
def server() -> Iterator[password_postgres.PasswordServer]:
    with password_postgres.password_server() as server:
        with psycopg.connect(server.url(), autocommit=True) as su:
            su.execute(sql.SQL("CREATE ROLE {} LOGIN CREATEROLE CREATEDB PASSWORD 'first-password'").format(
                sql.Identifier(ADMIN)
            ))  # fmt: skip
            su.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(ADMIN_DB), sql.Identifier(ADMIN)))
        yield server


@pytest.fixture
def aws(server, monkeypatch) -> Iterator[dict[str, Any]]:
    with psycopg.connect(server.url(), autocommit=True) as su:  # a previous test may have rotated it
        su.execute(sql.SQL("ALTER ROLE {} PASSWORD 'first-password'").format(sql.Identifier(ADMIN)))
    with mock_aws():
        manager = boto3.client("secretsmanager", region_name="us-east-1")
        arn = manager.create_secret(
            Name=f"rotation-{uuid.uuid4().hex[:8]}",
            SecretString=json.dumps(
                {"username": ADMIN, "password": "first-password", "host": "127.0.0.1", "port": server.port}
            ),
        )["ARN"]
        monkeypatch.delenv("STUDENTS_DB_ADMIN_URL", raising=False)
        for key, value in {
            "STUDENTS_DB_ADMIN_SECRET_ARN": arn,
            "STUDENTS_DB_ADMIN_HOST": "127.0.0.1",
            "STUDENTS_DB_NAME": ADMIN_DB,
            "STUDENTS_DB_HOST": "127.0.0.1",
            "STUDENTS_DB_PORT": str(server.port),
            "SSM_PREFIX": PREFIX,
            "DB_CA_BUNDLE": server.ca_file,  # the throwaway server's CA in place of the RDS bundle
        }.items():
            monkeypatch.setenv(key, value)
        secrets.reset()
        registry.reset()
        try:
            yield {"secretsmanager": manager, "arn": arn, "ssm": boto3.client("ssm", region_name="us-east-1")}
        finally:
            secrets.reset()
            registry.reset()


def rotate(server, aws, password: str) -> None:
    with psycopg.connect(server.url(), autocommit=True) as su:
        su.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(ADMIN), sql.Literal(password)))
    secret = json.loads(aws["secretsmanager"].get_secret_value(SecretId=aws["arn"])["SecretString"])
    aws["secretsmanager"].put_secret_value(
        SecretId=aws["arn"], SecretString=json.dumps({**secret, "password": password})
    )


@pytest.fixture
def students(conn) -> Iterator[list[Student]]:
    made: list[Student] = []

    def make() -> Student:
        user_id = str(uuid.uuid4())
        conn.execute("INSERT INTO users (id, email) VALUES (%s, %s)", (user_id, f"rot-{user_id[:8]}@example.com"))
        made.append(Student(user_id=user_id, email=f"rot-{user_id[:8]}@example.com", track="DP"))
        return made[-1]

    yield make  # type: ignore[misc]
    conn.execute("DELETE FROM users WHERE id = ANY(%s::uuid[])", ([s.user_id for s in made],))


def test_the_provisioner_re_reads_the_master_password_after_a_rotation(server, aws, students) -> None:
    provisioner = registry.provisioner("STUDENT_DATABASE")
    first, second = students(), students()
    assert provisioner.provision(first).status == ToolStatus.PROVISIONED  # the password is now cached

    rotate(server, aws, "second-password-" + uuid.uuid4().hex)

    assert provisioner.provision(second).status == ToolStatus.PROVISIONED
    names = names_for(second.user_id, PREFIX)
    password = aws["ssm"].get_parameter(Name=names.parameter, WithDecryption=True)["Parameter"]["Value"]
    # The student signs in with the SSM password, checked by the server, over verified TLS.
    with psycopg.connect(server.url(names.database, user=names.role, password=password)) as student:
        assert student.execute("SELECT current_user, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone() == (
            names.role,
            True,
        )
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(server.url(names.database, user=names.role, password="wrong"))
    for student in (first, second):
        provisioner.deprovision(student)
        assert provisioner.status(student) == ToolStatus.NOT_PROVISIONED


def test_a_server_whose_certificate_the_rds_bundle_does_not_sign_is_refused(server, aws, students, monkeypatch) -> None:
    monkeypatch.delenv("DB_CA_BUNDLE")  # back to the shipped RDS bundle: this server is not RDS
    provisioner = registry.provisioner("STUDENT_DATABASE")
    with pytest.raises(ToolUnavailable, match="certificate verify failed"):
        provisioner.provision(students())
    assert tls.verified()["sslrootcert"] == str(tls.RDS_CA_BUNDLE)


def test_the_migrate_function_re_reads_the_master_password_after_a_rotation(server, aws, monkeypatch) -> None:
    from functions.migrate import handler

    app_db = "apranova_app_" + uuid.uuid4().hex[:8]
    with psycopg.connect(server.url(), autocommit=True) as su:
        su.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(app_db), sql.Identifier(ADMIN)))
    monkeypatch.setenv("DB_SECRET_ARN", aws["arn"])
    monkeypatch.setenv("DB_NAME", app_db)
    with handler._connect() as conn:  # caches the secret
        assert conn.execute("SELECT current_user AS name").fetchone()["name"] == ADMIN

    rotate(server, aws, "third-password-" + uuid.uuid4().hex)

    with handler._connect() as conn:
        assert conn.execute("SELECT current_database() AS name").fetchone()["name"] == app_db
        assert conn.pgconn.ssl_in_use


def test_the_migrate_function_waits_out_a_rotation_in_progress(server, aws, monkeypatch) -> None:
    """Rotation changes the password on the server, then (seconds later) the secret's current
    version: a deploy that signs in between the two still succeeds."""
    import threading

    from functions.migrate import handler

    monkeypatch.setenv("DB_SECRET_ARN", aws["arn"])
    monkeypatch.setenv("DB_NAME", "postgres")
    new_password = "rotating-" + uuid.uuid4().hex
    with psycopg.connect(server.url(), autocommit=True) as su:
        su.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(ADMIN), sql.Literal(new_password)))
    secret = json.loads(aws["secretsmanager"].get_secret_value(SecretId=aws["arn"])["SecretString"])
    finish = threading.Timer(
        1.5,
        lambda: aws["secretsmanager"].put_secret_value(
            SecretId=aws["arn"], SecretString=json.dumps({**secret, "password": new_password})
        ),
    )
    finish.start()
    try:
        with handler._connect() as conn:
            assert conn.execute("SELECT current_user AS name").fetchone()["name"] == ADMIN
    finally:
        finish.join()
