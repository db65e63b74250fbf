"""The DP student database: one login role and one schema per student in the students' database.

Isolation (design §8 rule 6): the role owns its schema and nothing else; ``public`` is closed to
PUBLIC and CONNECT on the database is revoked from PUBLIC and granted per role (both done by every
run, idempotently); the role has a connection limit, a role-level ``statement_timeout`` and a
``search_path`` of its own schema, and no privileged attribute (NOSUPERUSER NOCREATEDB NOCREATEROLE
NOINHERIT NOREPLICATION NOBYPASSRLS). Names are derived from the user id (``s_`` + 32 hex of a
hash, so the catalog, which every role can read, does not list other students' user ids) and
always quoted with ``psycopg.sql.Identifier``.

The password exists only in SSM (SecureString, with the configured KMS key). The server only ever
receives its SCRAM verifier, computed here by libpq, so the clear password cannot reach the
server's statement log. The credentials row on the application database holds the names and the
parameter *name*.

A provision run, each step safe to repeat:
 1. the user must be a live row of the application database (else ``ToolFailed``);
 2. a per-student advisory lock on the students' database (held by another run: ``ToolUnavailable``);
 3. a new password is needed when the role or the parameter is missing; a parameter left over
    without its role is deleted first, so the parameter never holds a password the role lacks;
 4. one transaction on the students' database: hardening, role, schema, CONNECT grant;
 5. the new password, if any, written to SSM;
 6. the credentials row upserted.
A failure after 4 leaves a role without a parameter, which the next run repairs by resetting the
password; when the role and the parameter both exist, both are kept.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as AwsConnectionError
from psycopg import sql
from psycopg.rows import dict_row
from pydantic import Field

from apranova.observability import logger
from apranova.settings import BaseSettings
from functions.provision import repository
from functions.provision.tools import Student, ToolFailed, ToolResult, ToolStatus, ToolUnavailable, student_secrets

TOOL = "STUDENT_DATABASE"
_Cursor = psycopg.Cursor[dict[str, Any]]
IDENTIFIER = r"^[a-z_][a-z0-9_]{0,62}$"
_NAME_SALT = b"apranova/student-database/v1:"
# Serialises database-level ACL changes (hardening, GRANT CONNECT, DROP OWNED) across students:
# concurrent GRANT/REVOKE on one database row can fail with "tuple concurrently updated".
_DATABASE_ACL_LOCK = 0x5D_0000_0000_0001
_LOCK_TIMEOUT = "10s"
_TERMINATE_WAIT_MS = 5000
_TRANSIENT_AWS_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "TooManyUpdates",
        "InternalServerError",
        "InternalFailure",
        "ServiceUnavailable",
        "RequestTimeout",
        "KMSInternalException",
    }
)
# The attributes a student role must have, with the ALTER ROLE keyword for true / false.
_ROLE_ATTRIBUTES = {
    "rolcanlogin": (True, "LOGIN", "NOLOGIN"),
    "rolsuper": (False, "SUPERUSER", "NOSUPERUSER"),
    "rolcreatedb": (False, "CREATEDB", "NOCREATEDB"),
    "rolcreaterole": (False, "CREATEROLE", "NOCREATEROLE"),
    "rolinherit": (False, "INHERIT", "NOINHERIT"),
    "rolreplication": (False, "REPLICATION", "NOREPLICATION"),
    "rolbypassrls": (False, "BYPASSRLS", "NOBYPASSRLS"),
}


class StudentDatabaseSettings(BaseSettings):
    """Where students connect, and the limits of their roles (environment: upper-cased names)."""

    students_db_name: str = Field(pattern=IDENTIFIER)  # the students' database, not the app's
    students_db_host: str = Field(min_length=1)  # as students connect (the endpoint they are given)
    students_db_port: int = Field(5432, ge=1, le=65535)
    ssm_prefix: str = Field(pattern=r"^/[A-Za-z0-9_.\-/]*[A-Za-z0-9_.\-]$")
    students_db_kms_key_id: str | None = None  # None: SSM's default key (aws/ssm)
    students_db_connection_limit: int = Field(5, ge=1, le=1000)
    students_db_statement_timeout: str = Field("30s", pattern=r"^[1-9][0-9]{0,8}(us|ms|s|min|h|d)?$")


@dataclass(frozen=True)
class StudentDatabaseNames:
    user_id: str  # canonical uuid text
    role: str
    schema: str
    parameter: str
    lock_key: int  # a bigint advisory lock key for this student


def names_for(user_id: str, ssm_prefix: str) -> StudentDatabaseNames:
    """Deterministic names for a user id; anything but a uuid is refused (``ToolFailed``)."""
    try:
        uid = uuid.UUID(str(user_id))
    except ValueError:
        raise ToolFailed("the user id is not a uuid") from None
    digest = hashlib.sha256(_NAME_SALT + uid.bytes).digest()
    name = "s_" + digest[:16].hex()
    return StudentDatabaseNames(
        user_id=str(uid),
        role=name,
        schema=name,
        parameter=f"{ssm_prefix}/students/{uid}/db-password",
        lock_key=int.from_bytes(digest[16:24], "big", signed=True),
    )


def connector(conninfo: str, *, connect_timeout: int = 5) -> Callable[[], psycopg.Connection[Any]]:
    """An admin connection factory for the students' database (autocommit, no prepared statements)."""

    def connect() -> psycopg.Connection[Any]:
        return psycopg.connect(
            conninfo,
            autocommit=True,
            prepare_threshold=None,
            connect_timeout=connect_timeout,
            application_name="apranova-provision",
        )

    return connect


@contextmanager
def _translated(action: str) -> Iterator[None]:
    """Transient database/AWS failures become ``ToolUnavailable``, the rest ``ToolFailed``."""
    try:
        yield
    except (ToolFailed, ToolUnavailable):
        raise
    except psycopg.OperationalError as exc:  # refused/lost connections, lock and statement timeouts, limits
        raise ToolUnavailable(f"{action}: database unavailable: {_first_line(exc)}") from exc
    except psycopg.Error as exc:
        raise ToolFailed(f"{action}: database error {exc.sqlstate or type(exc).__name__}: {_first_line(exc)}") from exc
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in _TRANSIENT_AWS_CODES:
            raise ToolUnavailable(f"{action}: SSM unavailable: {code}") from exc
        raise ToolFailed(f"{action}: SSM refused: {code}") from exc
    except (AwsConnectionError, HTTPClientError) as exc:
        raise ToolUnavailable(f"{action}: SSM unreachable: {type(exc).__name__}") from exc
    except BotoCoreError as exc:
        raise ToolFailed(f"{action}: SSM client error: {type(exc).__name__}") from exc


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class StudentDatabaseProvisioner:
    """``ToolProvisioner`` for the DP student database.

    ``connect_admin`` returns a new connection to the students' database as a role that may create
    roles and owns the database (a superuser locally; the RDS master user or a CREATEROLE owner in
    AWS); the provisioner closes it. ``ssm_client`` is a boto3 SSM client. The application database
    is reached through the shared layer (``apranova.db``).
    """

    name = TOOL

    def __init__(
        self,
        connect_admin: Callable[[], psycopg.Connection[Any]],
        ssm_client: Any,
        settings: StudentDatabaseSettings,
    ) -> None:
        self._connect_admin = connect_admin
        self._ssm = ssm_client
        self._settings = settings

    def names(self, student: Student) -> StudentDatabaseNames:
        return names_for(student.user_id, self._settings.ssm_prefix)

    # -- the interface ----------------------------------------------------------------------------

    def provision(self, student: Student) -> ToolResult:
        if student.track != "DP":
            raise ToolFailed(f"the student database is a DP tool, not one of track {student.track!r}")
        names = self.names(student)
        with _translated("provision student database"):
            if not repository.active_user_exists(names.user_id):
                raise ToolFailed("the user does not exist or is being deleted")
            with self._admin() as cur:
                self._lock_student(cur, names)
                role_exists = self._role(cur, names.role) is not None
                parameter_exists = self._parameter_exists(names.parameter)
                password = None
                if not (role_exists and parameter_exists):
                    password = secrets.token_urlsafe(32)
                    if parameter_exists:  # left without its role: it must not outlive the old password
                        self._delete_parameter(names.parameter)
                verifier = self._verifier(cur.connection, names.role, password) if password else None
                with cur.connection.transaction():
                    self._lock_database_acl(cur)
                    self._harden_database(cur)
                    self._ensure_role(cur, names, verifier)
                    self._ensure_schema(cur, names)
                    cur.execute(
                        sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
                            sql.Identifier(self._settings.students_db_name), sql.Identifier(names.role)
                        )
                    )
                if password:
                    self._put_parameter(names.parameter, password)
            repository.upsert_student_database_credentials(
                user_id=names.user_id,
                database_name=self._settings.students_db_name,
                schema_name=names.schema,
                role_name=names.role,
                password_parameter_name=names.parameter,
            )
        logger.info(
            "student database provisioned",
            extra={"user_id": names.user_id, "role": names.role, "password_set": password is not None},
        )
        return ToolResult(tool=TOOL, status=ToolStatus.PROVISIONED, details=self._details(names))

    def deprovision(self, student: Student) -> None:
        names = self.names(student)
        with _translated("deprovision student database"):
            with self._admin() as cur:
                self._lock_student(cur, names)
                role = sql.Identifier(names.role)
                if self._role(cur, names.role) is not None:
                    # No new sessions, then end the open ones (their locks would block DROP OWNED).
                    cur.execute(sql.SQL("ALTER ROLE {} NOLOGIN").format(role))
                    cur.execute(
                        "SELECT pg_terminate_backend(pid, %s::bigint) FROM pg_stat_activity"
                        " WHERE usename = %s AND pid <> pg_backend_pid()",
                        (_TERMINATE_WAIT_MS, names.role),
                    )
                with cur.connection.transaction():
                    self._lock_database_acl(cur)
                    if self._role(cur, names.role) is not None:
                        cur.execute(sql.SQL("DROP OWNED BY {}").format(role))  # its schema, objects, grants
                    cur.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(names.schema)))
                    cur.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(role))
                self._delete_parameter(names.parameter)
            repository.delete_student_database_credentials(names.user_id)
        logger.info("student database deprovisioned", extra={"user_id": names.user_id, "role": names.role})

    def status(self, student: Student) -> ToolStatus:
        names = self.names(student)
        with _translated("student database status"):
            with self._admin() as cur:
                row = cur.execute(
                    "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = %s) AS role,"
                    " EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = %s) AS schema",
                    (names.role, names.schema),
                ).fetchone()
            parts = [
                bool(row and row["role"]),
                bool(row and row["schema"]),
                self._parameter_exists(names.parameter),
                repository.student_database_credentials(names.user_id) is not None,
            ]
        if all(parts):
            return ToolStatus.PROVISIONED
        return ToolStatus.PARTIAL if any(parts) else ToolStatus.NOT_PROVISIONED

    # -- students' database -----------------------------------------------------------------------

    @contextmanager
    def _admin(self) -> Iterator[_Cursor]:
        """A dict-row cursor on a new admin connection (autocommit), closed on the way out."""
        conn = self._connect_admin()
        try:
            if not conn.autocommit:
                conn.rollback()
                conn.autocommit = True
            with conn.cursor(row_factory=dict_row) as cur:
                row = cur.execute("SELECT current_database() AS name").fetchone()
                if not row or row["name"] != self._settings.students_db_name:
                    raise ToolFailed("the admin connection does not reach the configured students' database")
                yield cur
        finally:
            conn.close()  # also releases the per-student session lock

    @staticmethod
    def _lock_student(cur: _Cursor, names: StudentDatabaseNames) -> None:
        row = cur.execute("SELECT pg_try_advisory_lock(%s::bigint) AS held", (names.lock_key,)).fetchone()
        if not (row and row["held"]):
            raise ToolUnavailable("another provisioning run for this student is in progress")

    @staticmethod
    def _lock_database_acl(cur: _Cursor) -> None:
        cur.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(_LOCK_TIMEOUT)))
        cur.execute("SELECT pg_advisory_xact_lock(%s::bigint)", (_DATABASE_ACL_LOCK,))

    @staticmethod
    def _role(cur: _Cursor, role: str) -> dict[str, Any] | None:
        return cur.execute(
            "SELECT rolcanlogin, rolsuper, rolcreatedb, rolcreaterole, rolinherit, rolreplication,"
            " rolbypassrls, rolconnlimit FROM pg_roles WHERE rolname = %s",
            (role,),
        ).fetchone()

    @staticmethod
    def _verifier(conn: psycopg.Connection[Any], role: str, password: str) -> str:
        """The SCRAM-SHA-256 verifier of the password, computed client-side by libpq."""
        return conn.pgconn.encrypt_password(password.encode(), role.encode(), b"scram-sha-256").decode()

    def _harden_database(self, cur: _Cursor) -> None:
        """One-time hardening, repeated harmlessly: only granted roles connect; ``public`` is closed."""
        cur.execute(
            sql.SQL("REVOKE CONNECT ON DATABASE {} FROM PUBLIC").format(sql.Identifier(self._settings.students_db_name))
        )
        if cur.execute("SELECT 1 FROM pg_namespace WHERE nspname = 'public'").fetchone():
            cur.execute("REVOKE ALL ON SCHEMA public FROM PUBLIC")

    def _ensure_role(self, cur: _Cursor, names: StudentDatabaseNames, verifier: str | None) -> None:
        role = sql.Identifier(names.role)
        limit = self._settings.students_db_connection_limit
        current = self._role(cur, names.role)
        if current is None:
            options = [sql.SQL(spec[1] if spec[0] else spec[2]) for spec in _ROLE_ATTRIBUTES.values()]
            options.append(sql.SQL("CONNECTION LIMIT {}").format(sql.Literal(limit)))
            options.append(sql.SQL("PASSWORD {}").format(sql.Literal(verifier)))
            cur.execute(sql.SQL("CREATE ROLE {} WITH {}").format(role, sql.SQL(" ").join(options)))
        else:
            # Only what differs: a non-superuser admin may not even restate NOSUPERUSER.
            options = [
                sql.SQL(want_kw if wanted else not_kw)
                for column, (wanted, want_kw, not_kw) in _ROLE_ATTRIBUTES.items()
                if current[column] != wanted
            ]
            if current["rolconnlimit"] != limit:
                options.append(sql.SQL("CONNECTION LIMIT {}").format(sql.Literal(limit)))
            if verifier is not None:
                options.append(sql.SQL("PASSWORD {}").format(sql.Literal(verifier)))
            if options:
                cur.execute(sql.SQL("ALTER ROLE {} WITH {}").format(role, sql.SQL(" ").join(options)))
        cur.execute(
            sql.SQL("ALTER ROLE {} SET statement_timeout = {}").format(
                role, sql.Literal(self._settings.students_db_statement_timeout)
            )
        )
        cur.execute(sql.SQL("ALTER ROLE {} SET search_path = {}").format(role, sql.Identifier(names.schema)))
        # A non-superuser admin (RDS) needs membership to give the role its schema, drop what it owns
        # and end its sessions; a superuser needs none.
        is_superuser = cur.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()
        if not (is_superuser and is_superuser["rolsuper"]):
            cur.execute(sql.SQL("GRANT {} TO CURRENT_USER").format(role))

    @staticmethod
    def _ensure_schema(cur: _Cursor, names: StudentDatabaseNames) -> None:
        schema, role = sql.Identifier(names.schema), sql.Identifier(names.role)
        row = cur.execute(
            "SELECT pg_get_userbyid(nspowner) AS owner FROM pg_namespace WHERE nspname = %s", (names.schema,)
        ).fetchone()
        if row is None:
            cur.execute(sql.SQL("CREATE SCHEMA {} AUTHORIZATION {}").format(schema, role))
        elif row["owner"] != names.role:
            cur.execute(sql.SQL("ALTER SCHEMA {} OWNER TO {}").format(schema, role))

    # -- SSM --------------------------------------------------------------------------------------

    def _parameter_exists(self, name: str) -> bool:
        return student_secrets.exists(self._ssm, name)

    def _put_parameter(self, name: str, password: str) -> None:
        student_secrets.put(
            self._ssm,
            name,
            password,
            description="ApraNova student database password",
            kms_key_id=self._settings.students_db_kms_key_id,
        )

    def _delete_parameter(self, name: str) -> None:
        student_secrets.delete(self._ssm, name)

    def _details(self, names: StudentDatabaseNames) -> dict[str, Any]:
        return {
            "host": self._settings.students_db_host,
            "port": self._settings.students_db_port,
            "dbname": self._settings.students_db_name,
            "user": names.role,
            "schema": names.schema,
            "password_parameter": names.parameter,
        }
