"""The students' own server (issue 15 item 3, AWS: ``studentsDatabase=dedicated``).

A throwaway PostgreSQL that checks passwords and serves TLS plays the students' RDS instance; its
master user (not a superuser, like RDS's) lives in moto's Secrets Manager as the instance's master
secret does. The migrate function prepares that server (the admin database, the maintenance
databases closed to PUBLIC) over verified TLS; Superset's connection to a student's database on it
is verify-full with the CA the provisioner hands it (Superset's ``server_cert``), and a server the
given CAs did not sign is refused.
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
from functions.provision.tools import Student, ToolFailed, ToolStatus, registry
from functions.provision.tools.superset import SupersetProvisioner, SupersetSettings
from functions.provision.tools.superset import names_for as superset_names
from local.tools.superset import SupersetHandle, bootstrap_superset, start
from local.tools.superset_emulator import parse_uri
from tests import password_postgres

pytestmark = pytest.mark.skipif(not password_postgres.available(), reason="no initdb on this machine")

MASTER = "apranova_students_admin"
ADMIN_DB = "apranova_students"
PREFIX = "/apranova/students-server-test"


@pytest.fixture(scope="module")
def server() -> Iterator[password_postgres.PasswordServer]:
    with password_postgres.password_server() as server:
        with psycopg.connect(server.url(), autocommit=True) as su:
            su.execute(sql.SQL("CREATE ROLE {} LOGIN CREATEROLE CREATEDB PASSWORD 'master-password'").format(
                sql.Identifier(MASTER)
            ))  # fmt: skip
            # Like RDS's master user, it owns the postgres database; template1 stays the superuser's.
            su.execute(sql.SQL("ALTER DATABASE postgres OWNER TO {}").format(sql.Identifier(MASTER)))
            su.execute("CREATE ROLE a_student LOGIN PASSWORD 'student-password'")
            # RDS makes the instance's database (database_name) with the instance.
            su.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(ADMIN_DB), sql.Identifier(MASTER)))
        yield server


@pytest.fixture
def aws(server, monkeypatch) -> Iterator[dict[str, Any]]:
    with mock_aws():
        manager = boto3.client("secretsmanager", region_name="us-east-1")
        arn = manager.create_secret(
            Name=f"students-master-{uuid.uuid4().hex[:8]}",
            SecretString=json.dumps(
                {"username": MASTER, "password": "master-password", "host": "127.0.0.1", "port": server.port}
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
            yield {"arn": arn, "ssm": boto3.client("ssm", region_name="us-east-1")}
        finally:
            secrets.reset()
            registry.reset()


def test_the_migration_prepares_the_students_own_server(server, aws) -> None:
    from functions.migrate.handler import prepare_students_server

    # An instance without its admin database (restored, made by hand): the function signs in to
    # postgres and makes it.
    restored = "students_" + uuid.uuid4().hex[:8]
    assert prepare_students_server(aws["arn"], restored) == ["template1"]  # not the master's to close
    with psycopg.connect(server.url(), autocommit=True) as su:
        owner = su.execute("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s", (restored,)).fetchone()
    assert owner == (MASTER,)
    # A student may no longer use the postgres database as a workspace.
    with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
        psycopg.connect(server.url("postgres", user="a_student", password="student-password"))
    # A second deploy signs in to the admin database itself and changes nothing.
    assert prepare_students_server(aws["arn"], restored) == ["template1"]


def test_the_migration_refuses_a_server_the_ca_bundle_does_not_sign(server, aws, monkeypatch) -> None:
    from functions.migrate.handler import prepare_students_server

    monkeypatch.delenv("DB_CA_BUNDLE")  # the shipped RDS bundle: this server is not RDS
    with pytest.raises(psycopg.OperationalError, match="certificate verify failed"):
        prepare_students_server(aws["arn"], ADMIN_DB)


# --- Superset's connection, verify-full ---------------------------------------------------------------


@pytest.fixture
def superset(aws) -> Iterator[SupersetHandle]:
    handle = start(None, port=0)  # tests every connection it is given, as Superset does on create
    bootstrap_superset(aws["ssm"], PREFIX, handle)
    yield handle
    handle.stop()


@pytest.fixture
def student(conn, server, aws) -> Iterator[Student]:
    """A DP student whose own database is on the students' server (the real provisioner)."""
    user_id = str(uuid.uuid4())
    made = Student(user_id=user_id, email=f"tls-{user_id[:8]}@example.com", track="DP")
    conn.execute("INSERT INTO users (id, email) VALUES (%s, %s)", (user_id, made.email))
    databases = registry.provisioner("STUDENT_DATABASE")
    assert databases.provision(made).status == ToolStatus.PROVISIONED
    yield made
    databases.deprovision(made)
    conn.execute("DELETE FROM users WHERE id = %s", (user_id,))


def superset_provisioner(aws, server) -> SupersetProvisioner:
    settings = SupersetSettings(
        ssm_prefix=PREFIX, students_db_host="127.0.0.1", students_db_port=server.port, superset_db_sslmode="verify-full"
    )
    return SupersetProvisioner(aws["ssm"], settings)


def test_superset_connects_to_the_students_server_with_verify_full(server, aws, superset, student) -> None:
    result = superset_provisioner(aws, server).provision(student)

    assert result.status == ToolStatus.PROVISIONED
    names = superset_names(student.user_id, PREFIX)
    database = superset.emulator.snapshot()["databases"][names.database]
    # The emulator connected as Superset does: sslmode verify-full, sslrootcert = the server_cert given.
    assert parse_uri(superset.emulator.database_uri(names.database))["query"]["sslmode"] == "verify-full"
    assert database["server_cert"] == tls.ca_bundle_pem("us-east-1") == open(server.ca_file).read()


def test_superset_given_cas_that_did_not_sign_the_server_cannot_connect(server, aws, superset, student, monkeypatch):
    # Superset's connection test fails on the certificate: a setting to fix, not an outage to wait out.
    with monkeypatch.context() as patched, pytest.raises(ToolFailed, match="GENERIC_DB_ENGINE_ERROR"):
        patched.delenv("DB_CA_BUNDLE")  # the region's RDS root CAs: this server is not RDS
        superset_provisioner(aws, server).provision(student)

    assert superset_names(student.user_id, PREFIX).database not in superset.emulator.snapshot()["databases"]


def test_the_provisioner_hands_superset_only_its_region_s_rds_root_cas() -> None:
    from cryptography import x509

    pem = tls.ca_bundle_pem("eu-west-1")
    names = [c.subject.rfc4514_string() for c in x509.load_pem_x509_certificates(pem.encode())]
    assert len(names) == 3 and all("Amazon RDS eu-west-1 Root CA" in n for n in names)
    assert tls.ca_bundle_pem(None) == tls.RDS_CA_BUNDLE.read_text()
