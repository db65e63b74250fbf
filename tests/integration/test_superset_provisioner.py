"""The Superset provisioner against the Superset emulator over HTTP, SSM in moto, the real PostgreSQL.

The student's database is made by the real ``StudentDatabaseProvisioner`` in a throwaway students'
database, so the credentials row, the role, the schema and the SSM password are the real ones; the
emulator tests every connection it is given against that server, as Superset does on create.
"""

from __future__ import annotations

import io
import json
import logging
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import psycopg
import pytest
import requests
from moto import mock_aws
from psycopg.conninfo import conninfo_to_dict

from apranova.observability import logger as app_logger
from functions.provision.tools import Student, ToolFailed, ToolProvisioner, ToolStatus, ToolUnavailable
from functions.provision.tools.student_database import StudentDatabaseProvisioner, StudentDatabaseSettings, connector
from functions.provision.tools.superset import (
    BASELINE_PERMISSIONS,
    SupersetProvisioner,
    SupersetSettings,
    names_for,
)
from local.tools.superset import SupersetHandle, bootstrap_superset, start
from local.tools.superset_emulator import parse_uri

PREFIX = "/apranova/test"


@pytest.fixture(scope="module")
def ssm() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("ssm", region_name="us-east-1")


@pytest.fixture(scope="module")
def students_db(make_database) -> str:
    return make_database("apranova_students")


@pytest.fixture(scope="module")
def db_endpoint(students_db: str) -> dict[str, Any]:
    params = conninfo_to_dict(students_db)
    return {
        "host": params.get("host") or "localhost",
        "port": int(params.get("port") or 5432),
        "dbname": params["dbname"],
    }


@pytest.fixture(scope="module")
def superset(ssm) -> Iterator[SupersetHandle]:
    handle = start(None, port=0)
    bootstrap_superset(ssm, PREFIX, handle)
    yield handle
    handle.stop()


@pytest.fixture(autouse=True)
def _no_faults(superset: SupersetHandle) -> Iterator[None]:
    yield
    superset.emulator.clear_faults()


@pytest.fixture(scope="module")
def student_databases(students_db: str, ssm, db_endpoint: dict[str, Any]) -> StudentDatabaseProvisioner:
    settings = StudentDatabaseSettings(
        students_db_name=db_endpoint["dbname"],
        students_db_host=db_endpoint["host"],
        students_db_port=db_endpoint["port"],
        ssm_prefix=PREFIX,
    )
    return StudentDatabaseProvisioner(connector(students_db), ssm, settings)


def settings_for(endpoint: dict[str, Any], prefix: str = PREFIX, **overrides: Any) -> SupersetSettings:
    return SupersetSettings(
        ssm_prefix=prefix, students_db_host=endpoint["host"], students_db_port=endpoint["port"], **overrides
    )


@pytest.fixture
def provisioner(database_url: str, ssm, superset: SupersetHandle, db_endpoint) -> SupersetProvisioner:
    return SupersetProvisioner(ssm, settings_for(db_endpoint))


@pytest.fixture
def new_student(conn, student_databases: StudentDatabaseProvisioner) -> Iterator[Callable[..., Student]]:
    """A DP student row; with ``database=True`` (default) its student database too."""
    made: list[Student] = []

    def make(*, database: bool = True, track: str = "DP") -> Student:
        user_id = str(uuid.uuid4())
        student = Student(user_id=user_id, email=f"student-{user_id[:8]}@example.com", track=track)
        conn.execute("INSERT INTO users (id, email) VALUES (%s, %s)", (user_id, student.email))
        made.append(student)
        if database:
            student_databases.provision(student)
        return student

    yield make
    for student in made:
        student_databases.deprovision(student)  # drops the cluster-wide role
    conn.execute("DELETE FROM users WHERE id = ANY(%s::uuid[])", ([s.user_id for s in made],))


def secret(ssm, name: str) -> str:
    return ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]


def parameter_exists(ssm, name: str) -> bool:
    try:
        ssm.get_parameter(Name=name)
    except ssm.exceptions.ParameterNotFound:
        return False
    return True


class AdminApi:
    """Superset's API as an operator uses it, to arrange and inspect state."""

    def __init__(self, handle: SupersetHandle, username: str | None = None, password: str | None = None):
        self.url = handle.url
        self.http = requests.Session()
        answer = self.http.post(
            f"{self.url}/api/v1/security/login",
            json={
                "username": username or handle.admin_username,
                "password": password or handle.admin_password,
                "provider": "db",
                "refresh": True,
            },
            timeout=5,
        )
        assert answer.status_code == 200, answer.text
        self.http.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"

    def csrf(self) -> None:
        answer = self.http.get(f"{self.url}/api/v1/security/csrf_token/", timeout=5)
        assert answer.status_code == 200, answer.text
        self.http.headers["X-CSRFToken"] = answer.json()["result"]

    def get(self, path: str, **params: Any) -> requests.Response:
        return self.http.get(self.url + path, params=params, timeout=5)

    def send(self, method: str, path: str, body: Any = None) -> requests.Response:
        return self.http.request(method, self.url + path, json=body, timeout=5)


def expected_permissions(names, database_id: int) -> list[tuple[str, str]]:
    return sorted([("database_access", f"[{names.database}].(id:{database_id})"), *BASELINE_PERMISSIONS])


# -- provisioning -----------------------------------------------------------------------------------


def credentials_row(conn, student: Student) -> dict[str, Any]:
    return conn.execute(
        "SELECT database_name, schema_name, role_name, password_parameter_name"
        " FROM student_database_credentials WHERE user_id = %s",
        (student.user_id,),
    ).fetchone()


def test_provision_makes_a_user_a_role_and_a_connection_to_the_students_own_schema(
    provisioner, new_student, ssm, superset, conn
) -> None:
    assert isinstance(provisioner, ToolProvisioner)
    student = new_student()
    names = names_for(student.user_id, PREFIX)
    credentials = credentials_row(conn, student)

    result = provisioner.provision(student)

    state = superset.emulator.snapshot()
    database = state["databases"][names.database]
    user = state["users"][names.username]
    assert result.tool == "SUPERSET" and result.status == ToolStatus.PROVISIONED
    assert result.details["external_id"] == str(user["id"])
    assert result.details["access_url"] == superset.url + "/"
    assert result.details["database_id"] == database["id"]
    assert result.details["password_parameter"] == names.parameter
    # The role: database access to its own connection and the explicit SQL Lab baseline, no more.
    assert state["roles"][names.role]["permissions"] == expected_permissions(names, database["id"])
    # The user: active, the student's email, that role alone, the password kept only in SSM.
    assert (user["email"], user["active"], user["roles"]) == (student.email, True, [names.role])
    parameter = ssm.get_parameter(Name=names.parameter, WithDecryption=True)["Parameter"]
    assert parameter["Type"] == "SecureString"
    assert superset.emulator.check_password(names.username, parameter["Value"])
    # The connection: the student's own role and password, the students' database, the schema.
    uri = parse_uri(superset.emulator.database_uri(names.database))
    assert uri["backend"] == "postgresql+psycopg2"
    assert (uri["username"], uri["database"]) == (credentials["role_name"], credentials["database_name"])
    assert uri["password"] == secret(ssm, credentials["password_parameter_name"])
    assert uri["query"]["options"] == f"-csearch_path={credentials['schema_name']}"
    assert "XXXXXXXXXX" in database["sqlalchemy_uri"]  # Superset shows it masked
    assert json.loads(database["extra"])["schemas_allowed_for_file_upload"] == [credentials["schema_name"]]
    assert database["force_ctas_schema"] == credentials["schema_name"]
    assert database["expose_in_sqllab"] is True
    assert provisioner.status(student) == ToolStatus.PROVISIONED
    # Connecting with exactly that URI lands as the student's role in the student's schema.
    with psycopg.connect(
        host=uri["host"],
        port=uri["port"],
        dbname=uri["database"],
        user=uri["username"],
        password=uri["password"],
        options=uri["query"]["options"],
    ) as student_conn:
        current = student_conn.execute("SELECT current_user, current_schema()").fetchone()
    assert current == (credentials["role_name"], credentials["schema_name"])


def test_a_student_reaches_their_own_connection_and_nothing_else(provisioner, new_student, ssm, superset) -> None:
    first, second = new_student(), new_student()
    provisioner.provision(first)
    provisioner.provision(second)
    a, b = names_for(first.user_id, PREFIX), names_for(second.user_id, PREFIX)
    state = superset.emulator.snapshot()

    granted = [p for p in state["roles"][a.role]["permissions"] if p[0].endswith("database_access")]
    assert granted == [("database_access", state["databases"][a.database]["perm"])]
    as_student = AdminApi(superset, a.username, secret(ssm, a.parameter))
    listed = as_student.get("/api/v1/database/").json()
    assert [row["database_name"] for row in listed["result"]] == [a.database]
    assert as_student.get(f"/api/v1/database/{state['databases'][b.database]['id']}").status_code == 404
    assert as_student.get("/api/v1/security/users/").status_code == 403
    assert as_student.get("/api/v1/security/roles/").status_code == 403


def test_provision_twice_makes_exactly_one_of_each_and_keeps_the_password(provisioner, new_student, ssm, superset):
    student = new_student()
    names = names_for(student.user_id, PREFIX)
    first = provisioner.provision(student)
    password = secret(ssm, names.parameter)
    version = ssm.get_parameter(Name=names.parameter)["Parameter"]["Version"]

    second = SupersetProvisioner(ssm, provisioner.settings).provision(student)  # a fresh instance too

    state = superset.emulator.snapshot()
    assert second == first
    assert [n for n in state["roles"] if n == names.role] == [names.role]
    assert [n for n in state["users"] if n == names.username] == [names.username]
    assert [n for n in state["databases"] if n == names.database] == [names.database]
    assert ssm.get_parameter(Name=names.parameter)["Parameter"]["Version"] == version
    assert superset.emulator.check_password(names.username, password)


def test_superset_answering_already_exists_is_success(provisioner, new_student, superset) -> None:
    """A concurrent run made each piece between our look-up and our create: Superset's 422s."""
    student = new_student()
    names = names_for(student.user_id, PREFIX)
    provisioner.provision(student)
    empty = {"count": 0, "ids": [], "result": []}
    for path in ("/api/v1/security/roles/", "/api/v1/database/", "/api/v1/security/users/"):
        superset.emulator.inject_fault(status=200, body=empty, path_prefix=path, method="GET", times=1)

    result = provisioner.provision(student)

    assert result.status == ToolStatus.PROVISIONED
    state = superset.emulator.snapshot()
    assert state["roles"][names.role]["permissions"] == expected_permissions(
        names, state["databases"][names.database]["id"]
    )
    assert provisioner.status(student) == ToolStatus.PROVISIONED


def test_provision_takes_over_pieces_made_by_hand_and_narrows_them(provisioner, new_student, superset) -> None:
    student = new_student()
    names = names_for(student.user_id, PREFIX)
    admin = AdminApi(superset)
    admin.csrf()
    role_id = admin.send("POST", "/api/v1/security/roles/", {"name": names.role}).json()["id"]
    pvms = admin.get("/api/v1/security/permissions-resources/", q="(page_size:100)").json()["result"]
    everything = [row["id"] for row in pvms if row["permission"]["name"] == "all_database_access"]
    admin.send("POST", f"/api/v1/security/roles/{role_id}/permissions", {"permission_view_menu_ids": everything})
    gamma = [r["id"] for r in admin.get("/api/v1/security/roles/").json()["result"] if r["name"] == "Gamma"]
    made = admin.send(
        "POST",
        "/api/v1/security/users/",
        {
            "username": names.username,
            "first_name": "x",
            "last_name": "y",
            "email": "someone-else@example.com",
            "active": False,
            "roles": [role_id, *gamma],
            "password": "Hand-Made-Pass-12!",
        },
    )
    assert made.status_code == 201

    provisioner.provision(student)

    state = superset.emulator.snapshot()
    assert state["roles"][names.role]["id"] == role_id
    assert state["roles"][names.role]["permissions"] == expected_permissions(
        names, state["databases"][names.database]["id"]
    )
    user = state["users"][names.username]
    assert (user["email"], user["active"], user["roles"]) == (student.email, True, [names.role])
    assert not superset.emulator.check_password(names.username, "Hand-Made-Pass-12!")  # reset: no parameter held it


def test_provision_repairs_a_lost_password_and_follows_a_reset_database_password(
    provisioner, new_student, ssm, superset, student_databases, conn
) -> None:
    student = new_student()
    names = names_for(student.user_id, PREFIX)
    provisioner.provision(student)
    old_password = secret(ssm, names.parameter)
    ssm.delete_parameter(Name=names.parameter)
    db_parameter = credentials_row(conn, student)["password_parameter_name"]
    ssm.delete_parameter(Name=db_parameter)
    student_databases.provision(student)  # resets the role's password (its parameter was gone)

    provisioner.provision(student)

    new_password = secret(ssm, names.parameter)
    assert new_password != old_password
    assert superset.emulator.check_password(names.username, new_password)
    assert not superset.emulator.check_password(names.username, old_password)
    assert parse_uri(superset.emulator.database_uri(names.database))["password"] == secret(ssm, db_parameter)


def test_superset_waits_for_the_students_database(provisioner, new_student, superset) -> None:
    student = new_student(database=False)
    names = names_for(student.user_id, PREFIX)

    with pytest.raises(ToolUnavailable, match="database is not provisioned yet"):
        provisioner.provision(student)

    state = superset.emulator.snapshot()
    assert names.role not in state["roles"] and names.username not in state["users"]
    assert provisioner.status(student) == ToolStatus.NOT_PROVISIONED


def test_bad_input_is_refused(provisioner, new_student) -> None:
    with pytest.raises(ToolFailed, match="DP tool"):
        provisioner.provision(new_student(database=False, track="FSD"))
    with pytest.raises(ToolFailed, match="not a uuid"):
        provisioner.provision(Student(user_id="nope", email="x@example.com", track="DP"))
    with pytest.raises(ToolFailed, match="does not exist"):
        provisioner.provision(Student(user_id=str(uuid.uuid4()), email="x@example.com", track="DP"))


# -- deprovisioning and status -----------------------------------------------------------------------


def test_deprovision_leaves_nothing(provisioner, new_student, ssm, superset) -> None:
    student = new_student()
    names = names_for(student.user_id, PREFIX)
    database_id = provisioner.provision(student).details["database_id"]

    provisioner.deprovision(student)

    state = superset.emulator.snapshot()
    assert names.role not in state["roles"]
    assert names.username not in state["users"]
    assert names.database not in state["databases"]
    assert not [p for p in state["pvms"] if f"[{names.database}]" in p[1]]
    assert not [p for p in state["pvms"] if p[1].endswith(f"(id:{database_id})")]
    assert not parameter_exists(ssm, names.parameter)
    assert provisioner.status(student) == ToolStatus.NOT_PROVISIONED
    provisioner.deprovision(student)  # again: nothing to do


def test_deprovision_of_a_never_provisioned_student_is_fine(provisioner, new_student) -> None:
    student = new_student(database=False)
    provisioner.deprovision(student)
    assert provisioner.status(student) == ToolStatus.NOT_PROVISIONED


def test_a_missing_piece_is_partial_and_provision_repairs_it(provisioner, new_student, superset) -> None:
    student = new_student()
    names = names_for(student.user_id, PREFIX)
    provisioner.provision(student)
    admin = AdminApi(superset)
    admin.csrf()
    assert admin.send("DELETE", f"/api/v1/security/users/{superset.emulator.snapshot()['users'][names.username]['id']}")

    assert provisioner.status(student) == ToolStatus.PARTIAL
    provisioner.provision(student)
    assert provisioner.status(student) == ToolStatus.PROVISIONED


# -- faults ------------------------------------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def other_deployment(ssm, prefix: str, url: str, username: str, password: str) -> None:
    base = f"{prefix}/tools/superset"
    ssm.put_parameter(Name=f"{base}/url", Value=url, Type="String", Overwrite=True)
    ssm.put_parameter(Name=f"{base}/admin-username", Value=username, Type="SecureString", Overwrite=True)
    ssm.put_parameter(Name=f"{base}/admin-password", Value=password, Type="SecureString", Overwrite=True)


def test_superset_answering_500_is_transient_and_a_retry_succeeds(provisioner, new_student, superset) -> None:
    student = new_student()
    superset.emulator.inject_fault(status=500)
    with pytest.raises(ToolUnavailable, match="500"):
        provisioner.provision(student)
    superset.emulator.clear_faults()
    assert provisioner.provision(student).status == ToolStatus.PROVISIONED


def test_superset_timing_out_is_transient(database_url, ssm, superset, new_student, db_endpoint) -> None:
    slow = SupersetProvisioner(ssm, settings_for(db_endpoint, superset_read_timeout=0.2))
    superset.emulator.inject_fault(status=None, delay=0.6, times=1)
    with pytest.raises(ToolUnavailable, match="timed out"):
        slow.provision(new_student())


def test_superset_refusing_connections_is_transient(database_url, ssm, new_student, db_endpoint) -> None:
    other_deployment(ssm, "/apranova/refused", f"http://127.0.0.1:{closed_port()}", "admin", "whatever-1A!")
    refused = SupersetProvisioner(ssm, settings_for(db_endpoint, "/apranova/refused"))
    with pytest.raises(ToolUnavailable, match="refused"):
        refused.provision(new_student())


def test_refused_admin_credentials_are_permanent(database_url, ssm, superset, new_student, db_endpoint) -> None:
    other_deployment(ssm, "/apranova/wrong", superset.url, superset.admin_username, "Wrong-Password-99!")
    wrong = SupersetProvisioner(ssm, settings_for(db_endpoint, "/apranova/wrong"))
    with pytest.raises(ToolFailed, match="admin credentials") as failure:
        wrong.provision(new_student())
    assert "Wrong-Password-99!" not in str(failure.value)


def test_superset_unable_to_reach_the_students_database_is_transient(
    database_url, ssm, superset, new_student, db_endpoint
) -> None:
    unreachable = SupersetProvisioner(ssm, settings_for(db_endpoint, superset_students_db_port=closed_port()))
    student = new_student()
    with pytest.raises(ToolUnavailable, match="CONNECTION_PORT_CLOSED_ERROR"):
        unreachable.provision(student)
    assert names_for(student.user_id, PREFIX).database not in superset.emulator.snapshot()["databases"]


def test_a_restarted_superset_is_logged_in_to_again(provisioner, new_student, superset) -> None:
    """New secret key: the kept token fails verification and the CSRF session is gone."""
    first, second = new_student(), new_student()
    provisioner.provision(first)
    superset.emulator.restart()
    assert provisioner.provision(second).status == ToolStatus.PROVISIONED


@contextmanager
def held_role_creation(superset: SupersetHandle, role: str) -> Iterator[tuple[threading.Event, threading.Event]]:
    """Superset holds its answer to creating ``role`` until ``release`` is set; ``held`` is set once
    the request has arrived."""
    held, release = threading.Event(), threading.Event()
    app = superset.server.app

    def holding(environ: dict[str, Any], start_response: Any) -> Any:
        if environ["REQUEST_METHOD"] == "POST" and environ["PATH_INFO"] == "/api/v1/security/roles/":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length)
            environ["wsgi.input"] = io.BytesIO(body)
            if json.loads(body or b"{}").get("name") == role:
                held.set()
                release.wait(30)
        return app(environ, start_response)

    superset.server.app = holding
    try:
        yield held, release
    finally:
        release.set()
        superset.server.app = app


def test_one_slow_superset_answer_holds_up_no_other_students_provisioning(provisioner, new_student, superset) -> None:
    """Provisioners in one process share the admin session: a call waiting on Superset must not
    keep the others waiting (each Lambda environment in AWS calls Superset on its own)."""
    slow, other = new_student(), new_student()
    results: dict[str, Any] = {}
    with held_role_creation(superset, names_for(slow.user_id, PREFIX).role) as (held, release):
        thread = threading.Thread(target=lambda: results.update(slow=provisioner.provision(slow)))
        thread.start()
        assert held.wait(20), "the slow student's role request never reached Superset"
        assert provisioner.provision(other).status == ToolStatus.PROVISIONED
        assert thread.is_alive() and "slow" not in results  # still held while the other finished
        release.set()
        thread.join(30)
    assert results["slow"].status == ToolStatus.PROVISIONED
    assert provisioner.status(slow) == provisioner.status(other) == ToolStatus.PROVISIONED


def test_students_provisioned_at_once_across_a_superset_restart_all_get_their_accounts(
    provisioner, new_student, superset
) -> None:
    """Calls in flight when the admin session goes stale renew it once between them, and every
    student still ends with a working account."""
    students = [new_student() for _ in range(6)]
    provisioner.provision(students[0])  # the session exists; the restart below makes it stale
    errors: list[BaseException] = []

    def provision(student: Student) -> None:
        try:
            provisioner.provision(student)
        except BaseException as error:  # noqa: BLE001 - reported by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=provision, args=(s,)) for s in students[1:]]
    superset.emulator.restart()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert [provisioner.status(s) for s in students] == [ToolStatus.PROVISIONED] * len(students)


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.getMessage()} {record.__dict__!r}")


def test_no_password_reaches_a_result_a_log_line_or_an_error(
    provisioner, new_student, ssm, superset, conn, db_endpoint
) -> None:
    """Our log lines and the HTTP client's at DEBUG, the rest at INFO (botocore's DEBUG wire log
    prints every SSM value it carries, whoever calls it: Lambda never runs it at DEBUG)."""
    records = _Records()
    levels = {"": logging.INFO, app_logger.name: logging.DEBUG, "urllib3": logging.DEBUG, "werkzeug": logging.DEBUG}
    saved = {name: logging.getLogger(name).level for name in levels}
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)
    logging.getLogger().addHandler(records)
    texts: list[str] = []
    try:
        student = new_student()
        names = names_for(student.user_id, PREFIX)
        texts.append(repr(provisioner.provision(student)))
        texts.append(repr(provisioner.provision(student)))
        texts.append(repr(provisioner.status(student)))
        echoed = {"message": f"echo {superset.admin_password} {secret(ssm, names.parameter)}"}
        for fault in ({"status": 500, "body": echoed}, {"status": 422, "body": echoed}):
            superset.emulator.inject_fault(**fault)
            with pytest.raises((ToolUnavailable, ToolFailed)) as failure:
                provisioner.provision(student)
            superset.emulator.clear_faults()
            error: BaseException | None = failure.value
            while error is not None:
                texts.append(str(error))
                error = error.__cause__ or error.__context__
        unreachable = SupersetProvisioner(ssm, settings_for(db_endpoint, superset_students_db_port=closed_port()))
        with pytest.raises(ToolUnavailable) as failure:
            unreachable.provision(new_student())
        texts.append(str(failure.value))
        db_password = secret(ssm, credentials_row(conn, student)["password_parameter_name"])
        student_password = secret(ssm, names.parameter)
        provisioner.deprovision(student)
    finally:
        logging.getLogger().removeHandler(records)
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)
    everything = "\n".join(texts + records.lines)
    assert "answered 500" in everything and "answered 422" in everything  # the faults were reported
    assert "echo" not in everything  # with no text of Superset's
    assert "superset provisioned" in everything and "GET /api/v1/database/" in everything
    for value in (superset.admin_password, db_password, student_password):
        assert value not in everything


# -- the emulator's contract and the local stack's handle ---------------------------------------------


def test_the_emulator_answers_as_superset_does(superset: SupersetHandle) -> None:
    url = superset.url
    bad_login = requests.post(
        f"{url}/api/v1/security/login",
        json={"username": superset.admin_username, "password": "wrong", "provider": "db", "refresh": True},
        timeout=5,
    )
    assert (bad_login.status_code, bad_login.json()) == (401, {"message": "Not authorized"})
    no_token = requests.get(f"{url}/api/v1/security/roles/", timeout=5)
    assert (no_token.status_code, no_token.json()) == (401, {"msg": "Missing Authorization Header"})
    forged = requests.get(f"{url}/api/v1/security/roles/", headers={"Authorization": "Bearer a.b.c"}, timeout=5)
    assert forged.status_code == 422 and "msg" in forged.json()

    admin = AdminApi(superset)
    no_csrf = admin.send("POST", "/api/v1/security/roles/", {"name": "no-csrf"})
    assert no_csrf.status_code == 400 and "CSRF token is missing" in no_csrf.json()["errors"][0]["message"]
    admin.csrf()
    assert admin.send("POST", "/api/v1/security/roles/", {"name": "contract"}).status_code == 201
    duplicate = admin.send("POST", "/api/v1/security/roles/", {"name": "contract"})
    assert duplicate.status_code == 422 and "already exists" in duplicate.json()["message"]
    listed = admin.get("/api/v1/security/roles/", q="(filters:!((col:name,opr:eq,value:contract)))").json()
    assert listed["count"] == 1 and listed["result"][0]["name"] == "contract"
    assert admin.send("DELETE", f"/api/v1/security/roles/{listed['ids'][0]}").json() == {"message": "OK"}

    weak = {"username": "weak", "first_name": "a", "last_name": "b", "email": "weak@example.com", "roles": [1]}
    assert "password" in admin.send("POST", "/api/v1/security/users/", {**weak, "password": "short"}).json()["message"]

    database = {"database_name": "contract_db", "sqlalchemy_uri": "postgresql://u:p@127.0.0.1:1/x"}
    failed = admin.send("POST", "/api/v1/database/", database)
    assert failed.status_code == 400 and failed.json()["errors"][0]["error_type"].startswith("CONNECTION_")
    sqlite = admin.send("POST", "/api/v1/database/", {"database_name": "s", "sqlalchemy_uri": "sqlite:///x.db"})
    assert sqlite.status_code == 400 and "sqlalchemy_uri" in sqlite.json()["message"]


def test_the_local_handle_writes_its_parameters_and_keeps_state_across_restarts(ssm, tmp_path) -> None:
    first = start(tmp_path, port=0, test_connections=False)
    try:
        names = bootstrap_superset(ssm, "/apranova/local-test", first)
        assert secret(ssm, names["url"]) == first.url
        kinds = {ssm.get_parameter(Name=name)["Parameter"]["Type"] for name in names.values()}
        assert kinds == {"String", "SecureString"}
        admin = AdminApi(first)
        admin.csrf()
        assert admin.send("POST", "/api/v1/security/roles/", {"name": "kept"}).status_code == 201
    finally:
        first.stop()
    second = start(tmp_path, port=0, test_connections=False)
    try:
        assert second.admin_password != first.admin_password
        bootstrap_superset(ssm, "/apranova/local-test", second)
        assert "kept" in second.emulator.snapshot()["roles"]
        AdminApi(second)  # the new admin password works on the restored state
    finally:
        second.stop()
