"""The DP student database provisioner on the real PostgreSQL, with SSM in moto (issues 5 and 15).

The students' admin database is a throwaway database of the test server; the admin connects to it
as the server's superuser (and, in one test, as a non-superuser that owns it and may create roles
and databases, as on RDS). Each student gets a database of their own beside it. Roles and
databases are cluster-wide, so every one a test creates is dropped when it ends.

Passwords: the local server authenticates loopback connections with ``trust``, so a login with
the SSM password cannot prove that the password is checked. The tests therefore also check the
role's stored SCRAM verifier against the SSM password with an independent SCRAM computation.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import socket
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import boto3
import psycopg
import pytest
from moto import mock_aws
from psycopg import errors, sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import dict_row

from functions.migrate.maintenance import close_maintenance_databases
from functions.provision.tools import Student, ToolFailed, ToolProvisioner, ToolStatus, ToolUnavailable
from functions.provision.tools.student_database import (
    _SPARE_REFILL_LOCK,
    SPARE_NAME,
    StudentDatabaseProvisioner,
    StudentDatabaseSettings,
    connector,
    names_for,
    spare_prefix,
)

PREFIX = "/apranova/test"
STATEMENT_TIMEOUT = "500ms"


def settings_for(url: str, kms_key_id: str | None = None) -> StudentDatabaseSettings:
    params = conninfo_to_dict(url)
    return StudentDatabaseSettings(
        students_db_name=params["dbname"],
        students_db_host=params.get("host") or "localhost",
        students_db_port=int(params.get("port") or 5432),
        ssm_prefix=PREFIX,
        students_db_kms_key_id=kms_key_id,
        students_db_statement_timeout=STATEMENT_TIMEOUT,
    )


@pytest.fixture(scope="module")
def students_db(make_database) -> str:
    return make_database("apranova_students")


@pytest.fixture
def admin(students_db: str) -> Iterator[psycopg.Connection[dict[str, Any]]]:
    """A superuser connection to the students' database, to look at what the provisioner made."""
    with psycopg.connect(students_db, autocommit=True, row_factory=dict_row) as connection:
        yield connection


@pytest.fixture(scope="module")
def ssm() -> Iterator[Any]:
    """One moto account for the module (clients are slow to make); every test uses new user ids."""
    with mock_aws():
        yield boto3.client("ssm", region_name="us-east-1")


@pytest.fixture(scope="module")
def kms_key_id(ssm) -> str:
    return boto3.client("kms", region_name="us-east-1").create_key()["KeyMetadata"]["KeyId"]


@pytest.fixture
def settings(students_db: str, kms_key_id: str) -> StudentDatabaseSettings:
    return settings_for(students_db, kms_key_id)


@pytest.fixture
def provisioner(students_db: str, ssm, settings: StudentDatabaseSettings) -> StudentDatabaseProvisioner:
    return StudentDatabaseProvisioner(connector(students_db), ssm, settings)


@dataclass
class Cleanup:
    user_ids: list[str] = field(default_factory=list)
    roles: list[str] = field(default_factory=list)
    databases: list[str] = field(default_factory=list)  # where the roles may own objects


def _drop_role(database_urls: list[str], role: str) -> None:
    with psycopg.connect(database_urls[0], autocommit=True) as su:
        su.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(role)))
    for url in database_urls:
        with psycopg.connect(url, autocommit=True) as su:
            if not su.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
                return
            su.execute("SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE usename = %s", (role,))
            su.execute(sql.SQL("REASSIGN OWNED BY {} TO CURRENT_USER").format(sql.Identifier(role)))  # databases too
            su.execute(sql.SQL("DROP OWNED BY {} CASCADE").format(sql.Identifier(role)))
    with psycopg.connect(database_urls[0], autocommit=True) as su:
        su.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


@pytest.fixture
def cleanup(students_db: str, conn) -> Iterator[Cleanup]:
    """Drops every role the test made (student roles by their derived name) and its user rows."""
    made = Cleanup(databases=[students_db])
    yield made
    roles = [names_for(user_id, PREFIX).role for user_id in made.user_ids] + made.roles
    for role in roles:
        _drop_role(made.databases, role)
    conn.execute("DELETE FROM users WHERE id = ANY(%s::uuid[])", (made.user_ids,))


@pytest.fixture
def new_student(conn, cleanup: Cleanup) -> Callable[[], Student]:
    """A DP student row in the application database (the credentials row's foreign key)."""

    def make() -> Student:
        user_id = str(uuid.uuid4())
        email = f"student-{user_id[:8]}@example.com"
        conn.execute("INSERT INTO users (id, email) VALUES (%s, %s)", (user_id, email))
        cleanup.user_ids.append(user_id)
        return Student(user_id=user_id, email=email, track="DP")

    return make


def password_of(ssm, parameter: str) -> str:
    return ssm.get_parameter(Name=parameter, WithDecryption=True)["Parameter"]["Value"]


def login(
    settings: StudentDatabaseSettings, role: str, password: str, dbname: str | None = None
) -> psycopg.Connection[Any]:
    """Connect as a student does: the endpoint from the settings, their database (named as their
    role), the role and the SSM password."""
    return psycopg.connect(
        host=settings.students_db_host,
        port=settings.students_db_port,
        dbname=dbname or role,
        user=role,
        password=password,
        autocommit=True,
        connect_timeout=5,
    )


def scram_verifier_matches(admin: psycopg.Connection[Any], role: str, password: str) -> bool:
    """RFC 5802/7677: the role's stored SCRAM-SHA-256 keys are those of this password."""
    row = admin.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (role,)).fetchone()
    method, iterations_salt, keys = row["rolpassword"].split("$")
    assert method == "SCRAM-SHA-256"
    iterations, salt = iterations_salt.split(":")
    stored_key, server_key = (base64.b64decode(part) for part in keys.split(":"))
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(salt), int(iterations))
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    return (
        hashlib.sha256(client_key).digest() == stored_key
        and hmac.new(salted, b"Server Key", "sha256").digest() == server_key
    )


def parameters_of(ssm, user_id: str) -> list[dict[str, Any]]:
    return ssm.get_parameters_by_path(Path=f"{PREFIX}/students/{user_id}", Recursive=True)["Parameters"]


def credentials_rows(conn, user_id: str) -> list[dict[str, Any]]:
    return conn.execute("SELECT * FROM student_database_credentials WHERE user_id = %s", (user_id,)).fetchall()


def role_count(admin, role: str) -> int:
    return admin.execute("SELECT count(*) AS n FROM pg_roles WHERE rolname = %s", (role,)).fetchone()["n"]


def schema_count(admin, schema: str) -> int:
    """The schema in the admin database and in the student's own database (named as the schema)."""
    found = admin.execute("SELECT count(*) AS n FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone()["n"]
    if database_exists(admin, schema):
        with psycopg.connect(make_conninfo(admin.info.dsn, dbname=schema), autocommit=True) as own:
            found += own.execute("SELECT count(*) FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone()[0]
    return found


def database_exists(admin, name: str) -> bool:
    return admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None


def in_own_database(admin, names) -> psycopg.Connection[dict[str, Any]]:
    """A superuser connection to the student's own database."""
    return psycopg.connect(make_conninfo(admin.info.dsn, dbname=names.database), autocommit=True, row_factory=dict_row)


def nothing_left(admin, ssm, conn, student: Student) -> None:
    names = names_for(student.user_id, PREFIX)
    assert role_count(admin, names.role) == 0
    assert not database_exists(admin, names.database)
    assert schema_count(admin, names.schema) == 0
    assert parameters_of(ssm, student.user_id) == []
    assert credentials_rows(conn, student.user_id) == []


# -- provision ----------------------------------------------------------------------------------


def test_provision_makes_a_role_a_schema_a_secure_parameter_and_a_row_without_the_password(
    provisioner, new_student, admin, ssm, conn, settings, kms_key_id
) -> None:
    assert isinstance(provisioner, ToolProvisioner)
    student = new_student()
    names = names_for(student.user_id, PREFIX)

    result = provisioner.provision(student)

    assert (result.tool, result.status) == ("STUDENT_DATABASE", ToolStatus.PROVISIONED)
    assert result.details == {
        "host": settings.students_db_host,
        "port": settings.students_db_port,
        "dbname": names.database,
        "user": names.role,
        "schema": names.schema,
        "password_parameter": names.parameter,
    }
    assert names.database != settings.students_db_name
    role = admin.execute(
        "SELECT rolcanlogin, rolsuper, rolcreatedb, rolcreaterole, rolinherit, rolreplication, rolbypassrls,"
        " rolconnlimit, rolconfig FROM pg_roles WHERE rolname = %s",
        (names.role,),
    ).fetchone()
    assert role == {
        "rolcanlogin": True,
        "rolsuper": False,
        "rolcreatedb": False,
        "rolcreaterole": False,
        "rolinherit": False,
        "rolreplication": False,
        "rolbypassrls": False,
        "rolconnlimit": 5,
        "rolconfig": [f"statement_timeout={STATEMENT_TIMEOUT}", f"search_path={names.schema}"],
    }
    with in_own_database(admin, names) as own:
        owner = own.execute(
            "SELECT pg_get_userbyid(nspowner) AS owner FROM pg_namespace WHERE nspname = %s", (names.schema,)
        ).fetchone()
    assert owner == {"owner": names.role}
    database = admin.execute(
        "SELECT pg_get_userbyid(datdba) AS owner, has_database_privilege('public', datname, 'CONNECT') AS public"
        " FROM pg_database WHERE datname = %s",
        (names.database,),
    ).fetchone()
    assert database == {"owner": "postgres", "public": False}  # the provisioner's, closed to PUBLIC

    assert [p["Name"] for p in parameters_of(ssm, student.user_id)] == [names.parameter]
    [parameter] = ssm.describe_parameters(ParameterFilters=[{"Key": "Name", "Values": [names.parameter]}])["Parameters"]
    assert (parameter["Type"], parameter["KeyId"]) == ("SecureString", kms_key_id)
    password = password_of(ssm, names.parameter)
    assert len(password) >= 40

    [row] = credentials_rows(conn, student.user_id)
    assert {k: row[k] for k in ("database_name", "schema_name", "role_name", "password_parameter_name")} == {
        "database_name": names.database,
        "schema_name": names.schema,
        "role_name": names.role,
        "password_parameter_name": names.parameter,
    }
    assert not any(password in str(value) for value in row.values())

    assert scram_verifier_matches(admin, names.role, password)
    with login(settings, names.role, password) as student_conn:
        assert student_conn.execute("SELECT current_user, current_schema()").fetchone() == (names.role, names.schema)
    assert provisioner.status(student) == ToolStatus.PROVISIONED


def test_provision_twice_yields_one_of_each_and_keeps_the_password(
    provisioner, new_student, admin, ssm, conn, settings
) -> None:
    student = new_student()
    names = names_for(student.user_id, PREFIX)
    provisioner.provision(student)
    password = password_of(ssm, names.parameter)

    provisioner.provision(student)

    assert role_count(admin, names.role) == 1
    assert schema_count(admin, names.schema) == 1
    [parameter] = parameters_of(ssm, student.user_id)
    assert parameter["Version"] == 1
    assert len(credentials_rows(conn, student.user_id)) == 1
    assert scram_verifier_matches(admin, names.role, password)
    with login(settings, names.role, password) as student_conn:
        assert student_conn.execute("SELECT 1").fetchone() == (1,)


def test_every_run_closes_the_admin_database_again_when_public_was_given_access(
    provisioner, new_student, admin, settings
) -> None:
    """The admin database's hardening is checked on every run and written only when needed (a
    REVOKE that changes nothing still rewrites the catalog row): opened again by hand, it is closed
    by the next provisioning."""
    database = sql.Identifier(settings.students_db_name)
    admin.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO PUBLIC").format(database))
    admin.execute("GRANT USAGE ON SCHEMA public TO PUBLIC")
    opened = (
        "SELECT has_database_privilege('public', %s, 'CONNECT') AS db,"
        " has_schema_privilege('public', 'public', 'USAGE') AS schema"
    )
    assert admin.execute(opened, (settings.students_db_name,)).fetchone() == {"db": True, "schema": True}

    provisioner.provision(new_student())

    assert admin.execute(opened, (settings.students_db_name,)).fetchone() == {"db": False, "schema": False}
    before = admin.execute(
        "SELECT xmin::text AS version FROM pg_database WHERE datname = %s", (settings.students_db_name,)
    ).fetchone()
    provisioner.provision(new_student())  # already closed: the catalog row is not written again
    after = admin.execute(
        "SELECT xmin::text AS version FROM pg_database WHERE datname = %s", (settings.students_db_name,)
    ).fetchone()
    assert after == before


def test_runs_for_different_students_do_not_queue_on_the_acl_lock_unless_the_admin_database_was_opened(
    provisioner, new_student, admin, settings, students_db
) -> None:
    """Only a change of the admin database's ACL takes the lock that serialises such changes: a
    student's role, database and schema are written while another run (a deprovision's DROP OWNED,
    a hardening) holds it, and a run that must close the database again waits for it."""
    import threading

    from functions.provision.tools.student_database import _DATABASE_ACL_LOCK

    provisioner.provision(new_student())  # the admin database closed before the lock is taken
    with psycopg.connect(students_db, autocommit=True) as other_run:
        other_run.execute("SELECT pg_advisory_lock(%s::bigint)", (_DATABASE_ACL_LOCK,))
        # Held for as long as this block runs: a run waiting for it would fail after its 10 s
        # lock_timeout, so finishing at all shows it never waited.
        student = new_student()
        assert provisioner.provision(student).status == ToolStatus.PROVISIONED
        assert provisioner.status(student) == ToolStatus.PROVISIONED

        admin.execute(
            sql.SQL("GRANT CONNECT ON DATABASE {} TO PUBLIC").format(sql.Identifier(settings.students_db_name))
        )
        closing = new_student()
        outcome: dict[str, Any] = {}
        run = threading.Thread(target=lambda: outcome.update(result=provisioner.provision(closing)))
        run.start()
        waiting = (
            "SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            " AND ((classid::bigint << 32) | objid::bigint) = %s"
        )
        for _ in range(100):  # until it waits for the lock (seen in pg_locks), at most 10 s
            if admin.execute(waiting, (_DATABASE_ACL_LOCK,)).fetchone()["n"] == 1:
                break
            run.join(0.1)
        assert admin.execute(waiting, (_DATABASE_ACL_LOCK,)).fetchone()["n"] == 1 and "result" not in outcome
        other_run.execute("SELECT pg_advisory_unlock(%s::bigint)", (_DATABASE_ACL_LOCK,))
        run.join(30)
    assert outcome["result"].status == ToolStatus.PROVISIONED
    assert admin.execute(
        "SELECT has_database_privilege('public', %s, 'CONNECT') AS db", (settings.students_db_name,)
    ).fetchone() == {"db": False}


def test_a_rerun_without_the_parameter_resets_the_password(provisioner, new_student, admin, ssm) -> None:
    student = new_student()
    names = names_for(student.user_id, PREFIX)
    provisioner.provision(student)
    old = password_of(ssm, names.parameter)
    ssm.delete_parameter(Name=names.parameter)  # e.g. the run failed between the role and the parameter
    assert provisioner.status(student) == ToolStatus.PARTIAL

    provisioner.provision(student)

    new = password_of(ssm, names.parameter)
    assert new != old
    assert scram_verifier_matches(admin, names.role, new)
    assert role_count(admin, names.role) == 1
    assert provisioner.status(student) == ToolStatus.PROVISIONED


def test_a_rerun_with_a_parameter_but_no_role_makes_a_role_with_a_fresh_password(
    provisioner, new_student, admin, ssm
) -> None:
    student = new_student()
    names = names_for(student.user_id, PREFIX)
    provisioner.provision(student)
    old = password_of(ssm, names.parameter)
    with in_own_database(admin, names) as own:
        own.execute(sql.SQL("DROP OWNED BY {0}").format(sql.Identifier(names.role)))
    admin.execute(sql.SQL("DROP OWNED BY {0}; DROP ROLE {0}").format(sql.Identifier(names.role)))
    assert provisioner.status(student) == ToolStatus.PARTIAL

    provisioner.provision(student)

    new = password_of(ssm, names.parameter)
    assert new != old
    assert scram_verifier_matches(admin, names.role, new)
    assert len(parameters_of(ssm, student.user_id)) == 1
    assert provisioner.status(student) == ToolStatus.PROVISIONED


def test_a_run_while_another_holds_the_students_lock_is_transient(provisioner, new_student, students_db) -> None:
    student = new_student()
    names = names_for(student.user_id, PREFIX)
    with psycopg.connect(students_db, autocommit=True) as other_run:
        other_run.execute("SELECT pg_advisory_lock(%s::bigint)", (names.lock_key,))
        with pytest.raises(ToolUnavailable):
            provisioner.provision(student)
    assert provisioner.provision(student).status == ToolStatus.PROVISIONED


# -- bad input and faults -----------------------------------------------------------------------


def test_the_students_database_refusing_connections_is_transient(new_student, ssm, conn, settings) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    closed = connector(f"postgresql://postgres@127.0.0.1:{port}/{settings.students_db_name}", connect_timeout=2)
    provisioner = StudentDatabaseProvisioner(closed, ssm, settings)
    student = new_student()

    for call in (provisioner.provision, provisioner.deprovision, provisioner.status):
        with pytest.raises(ToolUnavailable, match="database unavailable"):
            call(student)
    assert parameters_of(ssm, student.user_id) == []
    assert credentials_rows(conn, student.user_id) == []


def test_permanent_failures_create_nothing(provisioner, new_student, admin, ssm, settings, database_url) -> None:
    student = new_student()
    stranger = Student(user_id=str(uuid.uuid4()), email="nobody@example.com", track="DP")
    for bad in (
        Student(user_id="not-a-uuid", email=student.email, track="DP"),
        Student(user_id=student.user_id, email=student.email, track="FSD"),
        stranger,  # no users row
    ):
        with pytest.raises(ToolFailed):
            provisioner.provision(bad)
    wrong_database = StudentDatabaseProvisioner(connector(database_url), ssm, settings)  # the app DB
    with pytest.raises(ToolFailed, match="students' database"):
        wrong_database.provision(student)

    for user_id in (student.user_id, stranger.user_id):
        assert role_count(admin, names_for(user_id, PREFIX).role) == 0
        assert parameters_of(ssm, user_id) == []


# -- deprovision --------------------------------------------------------------------------------


def test_deprovision_removes_everything_and_ends_the_students_sessions(
    provisioner, new_student, admin, ssm, conn, settings
) -> None:
    student = new_student()
    names = names_for(student.user_id, PREFIX)
    provisioner.provision(student)
    password = password_of(ssm, names.parameter)
    session = login(settings, names.role, password)
    session.execute("CREATE TABLE work (id int)")
    session.execute("BEGIN")
    session.execute("LOCK TABLE work IN ACCESS EXCLUSIVE MODE")  # an open transaction holding a lock

    provisioner.deprovision(student)

    nothing_left(admin, ssm, conn, student)
    assert provisioner.status(student) == ToolStatus.NOT_PROVISIONED
    with pytest.raises(psycopg.OperationalError):
        session.execute("SELECT 1")
    session.close()
    with pytest.raises(psycopg.OperationalError):
        login(settings, names.role, password)


def test_deprovision_of_a_never_provisioned_student_succeeds(provisioner, new_student, admin, ssm, conn) -> None:
    student = new_student()
    provisioner.deprovision(student)
    provisioner.deprovision(student)
    nothing_left(admin, ssm, conn, student)
    assert provisioner.status(student) == ToolStatus.NOT_PROVISIONED


def test_a_non_superuser_database_owner_with_createrole_can_provision_and_deprovision(
    make_database, ssm, new_student, cleanup, conn
) -> None:
    """As on RDS, where the admin is not a superuser."""
    url = make_database("apranova_students")
    owner = "p_" + uuid.uuid4().hex
    cleanup.roles.append(owner)
    cleanup.databases.insert(0, url)
    with psycopg.connect(url, autocommit=True) as su:
        su.execute(sql.SQL("CREATE ROLE {} LOGIN CREATEROLE CREATEDB NOSUPERUSER").format(sql.Identifier(owner)))
        su.execute(
            sql.SQL("ALTER DATABASE {} OWNER TO {}").format(
                sql.Identifier(conninfo_to_dict(url)["dbname"]), sql.Identifier(owner)
            )
        )
    settings = settings_for(url)
    provisioner = StudentDatabaseProvisioner(connector(make_conninfo(url, user=owner)), ssm, settings)
    student = new_student()
    names = names_for(student.user_id, PREFIX)

    provisioner.provision(student)
    provisioner.provision(student)

    with login(settings, names.role, password_of(ssm, names.parameter)) as session:
        session.execute("CREATE TABLE notes (body text)")
        with pytest.raises(errors.InsufficientPrivilege):
            session.execute("CREATE TABLE public.notes (body text)")
        session.execute("ALTER ROLE CURRENT_USER SET statement_timeout = 0")
    # The watchdog as this admin: its own students only (other tests' roles are not its to touch).
    assert provisioner.enforce_limits()["roles"] == [names.role]
    provisioner.deprovision(student)
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as su:
        nothing_left(su, ssm, conn, student)


# -- isolation (issue 5 bar) --------------------------------------------------------------------


@dataclass
class Pair:
    settings: StudentDatabaseSettings
    a_role: str
    a_password: str
    b_role: str
    b_password: str

    def a(self) -> psycopg.Connection[Any]:
        return login(self.settings, self.a_role, self.a_password)

    def b(self) -> psycopg.Connection[Any]:
        return login(self.settings, self.b_role, self.b_password)


@pytest.fixture
def pair(provisioner, new_student, ssm, settings) -> Pair:
    students = [new_student(), new_student()]
    names = [names_for(s.user_id, PREFIX) for s in students]
    for student in students:
        provisioner.provision(student)
    a, b = names
    return Pair(settings, a.role, password_of(ssm, a.parameter), b.role, password_of(ssm, b.parameter))


def test_a_student_cannot_reach_another_students_database_or_schema(pair: Pair) -> None:
    with pair.b() as b:
        b.execute("CREATE TABLE secrets (body text)")
        b.execute("INSERT INTO secrets VALUES ('b only')")
    # Not their database: the server refuses the connection.
    with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
        login(pair.settings, pair.a_role, pair.a_password, dbname=pair.b_role)
    other = sql.Identifier(pair.b_role)
    with pair.a() as a:
        # In their own database another student's schema does not exist, and cannot be made.
        for statement in (
            sql.SQL("SELECT * FROM {}.secrets").format(other),
            sql.SQL("INSERT INTO {}.secrets VALUES ('a was here')").format(other),
            sql.SQL("CREATE TABLE {}.planted (id int)").format(other),
            sql.SQL("CREATE SCHEMA {}").format(other),
        ):
            with pytest.raises((errors.InsufficientPrivilege, errors.UndefinedTable, errors.InvalidSchemaName)):
                a.execute(statement)
    with pair.b() as b:
        assert b.execute("SELECT body FROM secrets").fetchall() == [("b only",)]


def test_the_catalogs_show_a_student_nothing_of_another_students_work(pair: Pair) -> None:
    """Graded deliverables are SQL: view definitions, function bodies, names, comments, statistics."""
    with pair.b() as b:
        b.execute("CREATE TABLE answer_table (answer_column int)")
        b.execute("INSERT INTO answer_table SELECT generate_series(1, 50)")
        b.execute("ANALYZE answer_table")
        b.execute("COMMENT ON TABLE answer_table IS 'b_comment_marker'")
        b.execute("CREATE VIEW answer_view AS SELECT answer_column AS b_view_marker FROM answer_table")
        b.execute("CREATE FUNCTION answer_fn() RETURNS int LANGUAGE sql AS 'SELECT 42 /* b_function_marker */'")
    with pair.a() as a:
        seen = a.execute(
            """
            SELECT
              (SELECT count(*) FROM pg_views WHERE definition LIKE '%%b_view_marker%%'),
              (SELECT count(*) FROM pg_proc WHERE prosrc LIKE '%%b_function_marker%%'),
              (SELECT count(*) FROM pg_class WHERE relname IN ('answer_table', 'answer_view')),
              (SELECT count(*) FROM pg_attribute WHERE attname = 'answer_column'),
              (SELECT count(*) FROM pg_description WHERE description = 'b_comment_marker'),
              (SELECT count(*) FROM pg_stat_all_tables WHERE relname = 'answer_table'),
              (SELECT count(*) FROM pg_namespace WHERE nspname = %s),
              (SELECT count(*) FROM information_schema.routines WHERE routine_name = 'answer_fn')
            """,
            (pair.b_role,),
        ).fetchone()
    assert seen == (0, 0, 0, 0, 0, 0, 0, 0)


def test_a_student_cannot_connect_to_the_maintenance_databases(pair: Pair, admin) -> None:
    # What the migrate function (and the local stack) do on every deploy to the students' server.
    assert close_maintenance_databases(admin) == []
    for maintenance in ("postgres", "template1"):
        with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
            login(pair.settings, pair.a_role, pair.a_password, dbname=maintenance)
    assert close_maintenance_databases(admin) == []  # again: nothing changes, nothing fails


def test_a_student_cannot_read_write_or_create_in_public(pair: Pair, admin) -> None:
    with psycopg.connect(make_conninfo(admin.info.dsn, dbname=pair.a_role), autocommit=True) as own:
        own.execute("CREATE TABLE IF NOT EXISTS public.shared (body text)")
    with pair.a() as a:
        for statement in (
            "SELECT * FROM public.shared",
            "INSERT INTO public.shared VALUES ('a')",
            "CREATE TABLE public.mine (id int)",
            "CREATE VIEW public.mine AS SELECT 1",
            "CREATE FUNCTION public.f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
        ):
            with pytest.raises(errors.InsufficientPrivilege):
                a.execute(statement)
        with pytest.raises(errors.InsufficientPrivilege):
            a.execute("CREATE SCHEMA elsewhere")  # no CREATE on the database either


def test_a_student_works_in_their_own_schema_by_unqualified_names(pair: Pair) -> None:
    with pair.a() as a:
        assert a.execute("SHOW search_path").fetchone() == (pair.a_role,)
        a.execute("CREATE TABLE notes (id int PRIMARY KEY, body text)")
        a.execute("INSERT INTO notes VALUES (1, 'mine')")
        assert a.execute("SELECT body FROM notes").fetchall() == [("mine",)]
        assert a.execute(
            "SELECT schemaname, tableowner FROM pg_tables WHERE tablename = 'notes' AND schemaname = current_schema()"
        ).fetchone() == (pair.a_role, pair.a_role)
        a.execute("CREATE VIEW notes_view AS SELECT body FROM notes")
        a.execute("DROP VIEW notes_view")


def test_a_student_cannot_exceed_the_connection_limit(pair: Pair) -> None:
    with ExitStack() as open_connections:
        for _ in range(pair.settings.students_db_connection_limit):
            open_connections.enter_context(pair.a())
        with pytest.raises(psycopg.OperationalError, match="too many connections for role"):
            pair.a()
        with pair.b() as b:  # another student's limit is their own
            assert b.execute("SELECT 1").fetchone() == (1,)


def test_a_student_cannot_escalate(pair: Pair, settings) -> None:
    other = sql.Identifier(pair.b_role)
    with pair.b() as b_session, pair.a() as a:
        b_pid = b_session.info.backend_pid
        for statement, params in (
            ("CREATE ROLE sneaky LOGIN", None),
            ("ALTER ROLE CURRENT_USER SUPERUSER", None),
            ("ALTER ROLE CURRENT_USER CREATEDB", None),
            ("ALTER ROLE CURRENT_USER CREATEROLE", None),
            ("ALTER ROLE CURRENT_USER BYPASSRLS", None),
            ("ALTER ROLE CURRENT_USER CONNECTION LIMIT -1", None),
            (sql.SQL("ALTER ROLE {} PASSWORD 'taken'").format(other), None),
            (sql.SQL("ALTER ROLE {} SET search_path = public").format(other), None),
            (sql.SQL("GRANT {} TO CURRENT_USER").format(other), None),
            (sql.SQL("SET ROLE {}").format(other), None),
            (sql.SQL("SET SESSION AUTHORIZATION {}").format(other), None),
            ("SELECT set_config('role', %s, false)", (pair.b_role,)),
            ("SELECT set_config('session_authorization', %s, false)", (pair.b_role,)),
            ("SET ROLE postgres", None),
            (sql.SQL("CREATE DATABASE {}").format(sql.Identifier(f"{pair.a_role}_db")), None),
            ("SELECT pg_terminate_backend(%s)", (b_pid,)),
            ("SELECT pg_read_file('postgresql.conf')", None),
            ("COPY (SELECT 1) TO PROGRAM 'true'", None),
        ):
            with pytest.raises(errors.InsufficientPrivilege):
                a.execute(statement, params)
        assert a.execute("SELECT current_user, session_user").fetchone() == (pair.a_role, pair.a_role)
        assert b_session.execute("SELECT 1").fetchone() == (1,)


def test_the_statement_timeout_applies_to_the_students_sessions(pair: Pair) -> None:
    with pair.a() as a:
        assert a.execute("SHOW statement_timeout").fetchone() == (STATEMENT_TIMEOUT,)
        with pytest.raises(errors.QueryCanceled, match="statement timeout"):
            a.execute("SELECT pg_sleep(30)")


def test_only_provisioned_students_may_connect_to_the_students_database(pair: Pair, cleanup, admin, settings) -> None:
    outsider = "o_" + uuid.uuid4().hex
    cleanup.roles.append(outsider)
    admin.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(outsider)))
    for database in (settings.students_db_name, pair.a_role):  # the admin database, a student's
        with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
            login(settings, outsider, "anything", dbname=database)
    with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
        login(settings, pair.a_role, pair.a_password, dbname=settings.students_db_name)
    with pair.a() as a:
        assert a.execute("SELECT has_database_privilege('public', current_database(), 'CONNECT')").fetchone() == (
            False,
        )


# -- limits a student cannot lift (issue 15) ------------------------------------------------------


def test_the_watchdog_terminates_a_statement_past_the_limit_that_the_student_lifted(pair: Pair, provisioner) -> None:
    import threading
    import time

    outcome: dict[str, BaseException | None] = {}
    a = pair.a()
    a.execute("SET statement_timeout = 0")  # the role's default is only a default

    def sleep() -> None:
        try:
            a.execute("SELECT pg_sleep(60)")
            outcome["error"] = None
        except BaseException as error:  # noqa: BLE001 - recorded for the assertion
            outcome["error"] = error

    worker = threading.Thread(target=sleep)
    worker.start()
    with pair.b() as b:  # another student's idle session is left alone
        deadline = time.monotonic() + 20
        while worker.is_alive() and time.monotonic() < deadline:
            time.sleep(0.3)
            provisioner.enforce_limits()
        worker.join(5)
        assert not worker.is_alive()
        assert isinstance(outcome["error"], psycopg.OperationalError)
        assert b.execute("SELECT 1").fetchone() == (1,)
    a.close()
    with pair.a() as again:  # the student may work on in a new session
        assert again.execute("SELECT 1").fetchone() == (1,)


def test_the_watchdog_puts_back_role_settings_the_student_changed(pair: Pair, provisioner, admin) -> None:
    with pair.a() as a:
        a.execute("ALTER ROLE CURRENT_USER SET statement_timeout = 0")  # PostgreSQL allows this
        a.execute(sql.SQL("ALTER ROLE CURRENT_USER IN DATABASE {} SET work_mem = '1GB'").format(
            sql.Identifier(pair.a_role)
        ))  # fmt: skip

    summary = provisioner.enforce_limits()

    assert pair.a_role in summary["roles"]
    settings = admin.execute(
        "SELECT s.setdatabase <> 0 AS per_database, s.setconfig FROM pg_db_role_setting s"
        " JOIN pg_roles r ON r.oid = s.setrole WHERE r.rolname = %s",
        (pair.a_role,),
    ).fetchall()
    assert settings == [
        {"per_database": False, "setconfig": [f"statement_timeout={STATEMENT_TIMEOUT}", f"search_path={pair.a_role}"]}
    ]
    with pair.a() as a:
        assert a.execute("SHOW statement_timeout").fetchone() == (STATEMENT_TIMEOUT,)
    assert provisioner.enforce_limits()["settings_restored"] == 0  # nothing left to put back


def test_a_password_the_student_set_is_replaced_by_the_ssm_one_on_the_next_run(
    provisioner, new_student, admin, ssm
) -> None:
    student = new_student()
    names = names_for(student.user_id, PREFIX)
    provisioner.provision(student)
    password = password_of(ssm, names.parameter)
    settings = provisioner._settings
    with login(settings, names.role, password) as session:
        session.execute("ALTER ROLE CURRENT_USER PASSWORD 'chosen-by-the-student'")  # PostgreSQL allows it
    assert not scram_verifier_matches(admin, names.role, password)

    provisioner.provision(student)

    assert scram_verifier_matches(admin, names.role, password)
    assert password_of(ssm, names.parameter) == password


def run_watchdog_function(students_db: str, monkeypatch, **settings: str) -> dict[str, Any]:
    """One run of the function the schedule runs (local stack: ``/_local/jobs/student-db-watchdog``),
    configured as deployed for this students' database, with ``settings`` on top."""
    from functions.provision import student_database_watchdog
    from functions.provision.tools import registry
    from local.events import LambdaContext

    params = conninfo_to_dict(students_db)
    for key, value in {
        "STUDENTS_DB_ADMIN_URL": students_db,
        "STUDENTS_DB_NAME": params["dbname"],
        "STUDENTS_DB_HOST": params.get("host") or "localhost",
        "SSM_PREFIX": PREFIX,
        **settings,
    }.items():
        monkeypatch.setenv(key, value)
    registry.reset()
    try:
        return student_database_watchdog.lambda_handler({}, LambdaContext("apranova-student-database-watchdog"))
    finally:
        registry.reset()


def test_the_scheduled_watchdog_function_restores_a_lifted_limit(pair: Pair, students_db, monkeypatch) -> None:
    with pair.a() as a:
        a.execute("ALTER ROLE CURRENT_USER SET statement_timeout = 0")
    summary = run_watchdog_function(
        students_db, monkeypatch, STUDENTS_DB_STATEMENT_TIMEOUT=STATEMENT_TIMEOUT, STUDENTS_DB_SPARE_DATABASES="0"
    )
    assert pair.a_role in summary["roles"]
    with pair.a() as a:
        assert a.execute("SHOW statement_timeout").fetchone() == (STATEMENT_TIMEOUT,)


# -- spare databases ----------------------------------------------------------------------------


def spares_of(admin, settings: StudentDatabaseSettings) -> dict[str, dict[str, Any]]:
    """This admin database's spares: name → oid, whether connections are allowed and its ACL."""
    rows = admin.execute(
        "SELECT datname, oid, datallowconn, datacl::text[] AS acl FROM pg_database WHERE starts_with(datname, %s)",
        (spare_prefix(settings.students_db_name),),
    ).fetchall()
    return {row["datname"]: row for row in rows}


@pytest.fixture
def with_spares(students_db: str, ssm, settings: StudentDatabaseSettings, admin) -> Iterator[Callable[[int], Any]]:
    """``make(n)``: a provisioner that keeps ``n`` spares; every spare is dropped afterwards."""

    def make(count: int) -> StudentDatabaseProvisioner:
        wanted = settings.model_copy(update={"students_db_spare_databases": count})
        return StudentDatabaseProvisioner(connector(students_db), ssm, wanted)

    yield make
    for name in spares_of(admin, settings):
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def test_refill_makes_sealed_spares_up_to_the_target_and_drops_extras(with_spares, admin, settings) -> None:
    assert with_spares(3).refill_spares() == {
        "spares_target": 3,
        "spares_created": 3,
        "spares_dropped": 0,
        "spares_busy": False,
    }
    spares = spares_of(admin, settings)
    assert len(spares) == 3
    for name, spare in spares.items():
        assert re.fullmatch(SPARE_NAME, name)
        # Sealed: nobody may connect, and PUBLIC holds nothing (the default would give it CONNECT).
        assert spare["datallowconn"] is False
        assert not any(entry.startswith("=") for entry in spare["acl"])
        with pytest.raises(psycopg.OperationalError, match="not currently accepting connections"):
            psycopg.connect(make_conninfo(admin.info.dsn, dbname=name), connect_timeout=5).close()
    assert with_spares(3).refill_spares()["spares_created"] == 0
    assert with_spares(1).refill_spares()["spares_dropped"] == 2
    assert len(spares_of(admin, settings)) == 1


def test_a_refill_while_another_refills_does_nothing(with_spares, students_db, admin, settings) -> None:
    with psycopg.connect(students_db, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s::bigint)", (_SPARE_REFILL_LOCK,))
        assert with_spares(2).refill_spares()["spares_busy"] is True
        assert spares_of(admin, settings) == {}
    assert with_spares(2).refill_spares()["spares_created"] == 2


def test_a_student_gets_a_spare_renamed_and_opened_to_them_alone(
    with_spares, new_student, admin, ssm, settings
) -> None:
    provisioner = with_spares(2)
    provisioner.refill_spares()
    oids = {spare["oid"] for spare in spares_of(admin, settings).values()}
    student = new_student()
    provisioner.provision(student)
    names = names_for(student.user_id, PREFIX)
    database = admin.execute(
        "SELECT oid, datallowconn, datacl::text[] AS acl FROM pg_database WHERE datname = %s", (names.database,)
    ).fetchone()
    assert database["oid"] in oids  # no CREATE DATABASE: one of the spares, under the student's name
    assert len(spares_of(admin, settings)) == 1
    assert database["datallowconn"] is True
    assert not any(entry.startswith("=") for entry in database["acl"])  # nothing for PUBLIC
    assert any(entry.startswith(f"{names.role}=") and "c" in entry.split("=")[1] for entry in database["acl"])
    with login(settings, names.role, password_of(ssm, names.parameter)) as own:
        own.execute("CREATE TABLE mine (x int)")
        assert own.execute("SELECT current_schema()").fetchone() == (names.schema,)
    # Deprovision drops it as any student's database.
    provisioner.deprovision(student)
    assert not database_exists(admin, names.database)


def test_students_provisioned_at_once_never_share_a_spare(with_spares, new_student, admin, settings) -> None:
    provisioner = with_spares(1)
    provisioner.refill_spares()
    (spare_oid,) = [spare["oid"] for spare in spares_of(admin, settings).values()]
    students = [new_student() for _ in range(4)]
    with ThreadPoolExecutor(len(students)) as pool:
        list(pool.map(provisioner.provision, students))
    rows = admin.execute(
        "SELECT oid FROM pg_database WHERE datname = ANY(%s)",
        ([names_for(s.user_id, PREFIX).database for s in students],),
    ).fetchall()
    assert len({row["oid"] for row in rows}) == 4
    assert [row["oid"] for row in rows].count(spare_oid) == 1  # one of them took it, the others made theirs
    assert spares_of(admin, settings) == {}


def test_the_scheduled_watchdog_function_keeps_the_spares(
    with_spares, students_db, admin, settings, monkeypatch
) -> None:
    summary = run_watchdog_function(students_db, monkeypatch, STUDENTS_DB_SPARE_DATABASES="2")
    assert summary["spares_created"] == 2
    assert len(spares_of(admin, settings)) == 2
