"""The DP student database: a database, a login role and a schema of their own per student.

Isolation (docs/principles.md §8 rule 6, issue 15):
- each student has a database of their own (``s_`` + 32 hex), owned by the provisioner's admin
  role: the catalogs a student can read (``pg_views``, ``pg_proc``, ``pg_class``, comments,
  statistics) describe that database only, so nobody sees another student's SQL. What stays
  server-wide is the list of database and role names (hashes, not user ids);
- CONNECT on it is revoked from PUBLIC and granted to that student's role alone, and the
  maintenance databases (``postgres``, ``template1``) are closed to PUBLIC by the migrate function;
- in it the student owns one schema (their ``search_path``); ``public`` is closed to PUBLIC and the
  student may not create schemas;
- the role has a connection limit and no privileged attribute (NOSUPERUSER NOCREATEDB NOCREATEROLE
  NOINHERIT NOREPLICATION NOBYPASSRLS);
- time limit: the role's ``statement_timeout`` is only a default, which a role may lift for itself
  (``SET``, ``ALTER ROLE CURRENT_USER SET``); the watchdog (``enforce_limits``, run every minute by
  a schedule) terminates student sessions whose statement has run past the limit and puts back any
  role setting a student changed;
- password: PostgreSQL lets every role change its own password and offers no hook without a
  server extension. In AWS the students' instance sets ``rds.restrict_password_commands`` so only
  the provisioner may; elsewhere a student who changes it locks out only their own tools, and the
  next provision run notices (a login with the SSM password fails) and sets it back.

Names are derived from the user id (a salted hash, so the catalogs do not list user ids) and always
quoted with ``psycopg.sql.Identifier``. The password exists only in SSM (SecureString, with the
configured KMS key); the server only ever receives its SCRAM verifier, computed here by libpq. The
credentials row on the application database holds the names and the parameter *name*.

A provision run, each step safe to repeat:
 1. the user must be a live row of the application database (else ``ToolFailed``);
 2. a per-student advisory lock on the admin database (held by another run: ``ToolUnavailable``);
 3. a new password is needed when the role or the parameter is missing; a parameter left over
    without its role is deleted first, so the parameter never holds a password the role lacks;
 4. the role (one transaction), its database and the database's grants, then its schema (the
    database is a spare renamed when the watchdog made some ahead, see ``refill_spares``);
 5. the new password, if any, written to SSM;
 6. the credentials row upserted.
A failure after 4 leaves a role without a parameter, which the next run repairs by resetting the
password; when the role and the parameter both exist, both are kept.

The admin connection comes from ``connector``: a fixed conninfo locally, the RDS master secret in
AWS, read at use and re-read when the server refuses its password (a rotation).
"""

from __future__ import annotations

import hashlib
import random
import secrets
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from botocore.exceptions import BotoCoreError, ClientError
from psycopg import sql
from psycopg.conninfo import make_conninfo
from psycopg.rows import dict_row
from pydantic import Field

from apranova.observability import logger
from apranova.secrets import postgres_password_rejected, use_with_rotation
from apranova.settings import BaseSettings
from functions.provision import repository
from functions.provision.tools import Student, ToolFailed, ToolResult, ToolStatus, ToolUnavailable, student_secrets
from functions.provision.tools.aws_errors import aws_error

TOOL = "STUDENT_DATABASE"
_Cursor = psycopg.Cursor[dict[str, Any]]
# connect_admin(dbname=None): a new admin connection to the admin database, or to ``dbname``.
AdminConnector = Callable[..., psycopg.Connection[Any]]
STUDENT_NAME = r"^s_[0-9a-f]{32}$"
IDENTIFIER = r"^[a-z_][a-z0-9_]{0,62}$"
_NAME_SALT = b"apranova/student-database/v1:"
# Serialises changes of the admin database's ACL (its hardening, DROP OWNED) across students:
# concurrent GRANT/REVOKE on one database row can fail with "tuple concurrently updated".
_DATABASE_ACL_LOCK = 0x5D_0000_0000_0001
# Held (session-level, try-only) by the one run that refills the spare databases.
_SPARE_REFILL_LOCK = 0x5D_0000_0000_0002
SPARE_NAME = r"^p_[0-9a-f]{12}_[0-9a-f]{16}$"
# The spares deployed stacks and ``make dev`` keep: a burst of this many DP enrollments within the
# watchdog's minute takes spares; any more create their databases themselves.
SPARE_DATABASES = 25
_LOCK_TIMEOUT = "10s"
_TERMINATE_WAIT_MS = 5000
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

    # The admin database of the students' server: where the provisioner signs in and takes its
    # locks. Each student's own database is beside it; no student may connect to it.
    students_db_name: str = Field(pattern=IDENTIFIER)
    students_db_host: str = Field(min_length=1)  # as students connect (the endpoint they are given)
    students_db_port: int = Field(5432, ge=1, le=65535)
    ssm_prefix: str = Field(pattern=r"^/[A-Za-z0-9_.\-/]*[A-Za-z0-9_.\-]$")
    students_db_kms_key_id: str | None = None  # None: SSM's default key (aws/ssm)
    students_db_connection_limit: int = Field(5, ge=1, le=1000)
    students_db_statement_timeout: str = Field("30s", pattern=r"^[1-9][0-9]{0,8}(us|ms|s|min|h|d)?$")
    # Empty databases kept ready for DP enrollments (``refill_spares``, run by the watchdog): 0, none.
    students_db_spare_databases: int = Field(0, ge=0, le=100)


@dataclass(frozen=True)
class StudentDatabaseNames:
    user_id: str  # canonical uuid text
    role: str
    database: str
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
        database=name,
        schema=name,
        parameter=f"{ssm_prefix}/students/{uid}/db-password",
        lock_key=int.from_bytes(digest[16:24], "big", signed=True),
    )


def spare_prefix(students_db_name: str) -> str:
    """The names of the spare databases of the students' admin database ``students_db_name`` begin
    with it (several local stacks may share one server; a students' server in AWS has one)."""
    digest = hashlib.sha256(_NAME_SALT + b"spare:" + students_db_name.encode()).hexdigest()
    return f"p_{digest[:12]}_"


def connector(conninfo: str | Callable[[bool], str], *, connect_timeout: int = 5) -> AdminConnector:
    """An admin connection factory for the students' server (autocommit, no prepared statements).

    ``conninfo`` is fixed, or read at use: ``conninfo(force)`` returns the current one (``force``:
    re-read the secret now). A refused password is re-read once, as after a rotation.
    """

    def read(force: bool) -> str:
        return conninfo if isinstance(conninfo, str) else conninfo(force)

    def connect(dbname: str | None = None) -> psycopg.Connection[Any]:
        def open_with(info: str) -> psycopg.Connection[Any]:
            return psycopg.connect(
                make_conninfo(info, dbname=dbname) if dbname else info,
                autocommit=True,
                prepare_threshold=None,
                connect_timeout=connect_timeout,
                application_name="apranova-provision",
            )

        return use_with_rotation("students-db-admin", read, open_with, rejected=postgres_password_rejected)

    return connect


@contextmanager
def _translated(action: str) -> Iterator[None]:
    """Transient database/AWS failures become ``ToolUnavailable``, the rest ``ToolFailed`` (the AWS
    side is ``aws_errors.aws_error``)."""
    try:
        yield
    except (ToolFailed, ToolUnavailable):
        raise
    except psycopg.OperationalError as exc:  # refused/lost connections, lock and statement timeouts, limits
        raise ToolUnavailable(f"{action}: database unavailable: {_first_line(exc)}") from exc
    except psycopg.Error as exc:
        raise ToolFailed(f"{action}: database error {exc.sqlstate or type(exc).__name__}: {_first_line(exc)}") from exc
    except (ClientError, BotoCoreError) as exc:
        raise aws_error(action, exc, "SSM") from exc


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class StudentDatabaseProvisioner:
    """``ToolProvisioner`` for the DP student database.

    ``connect_admin(dbname=None)`` returns a new connection to the admin database (or to ``dbname``)
    of the students' server as a role that may create roles and databases (a superuser locally; the
    RDS master user in AWS); the provisioner closes it. ``ssm_client`` is a boto3 SSM client. The
    application database is reached through the shared layer (``apranova.db``).
    """

    name = TOOL

    def __init__(self, connect_admin: AdminConnector, ssm_client: Any, settings: StudentDatabaseSettings) -> None:
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
                # A new role gets a new password, written over any parameter left without its role:
                # SSM is asked whether one is there only when the role is.
                parameter_exists = role_exists and self._parameter_exists(names.parameter)
                new_password = None if parameter_exists else secrets.token_urlsafe(32)
                # Every run sets the role's password to SSM's: one a student set for themselves
                # (PostgreSQL lets any role) does not outlive the next run.
                password = new_password or self._stored_password(names.parameter)
                verifier = self._verifier(cur.connection, names.role, password)
                with cur.connection.transaction():
                    self._harden_admin_database(cur)  # takes the ACL lock only when it must write
                    self._ensure_role(cur, names, verifier)
                self._ensure_database(cur, names)
                with self._admin(names.database) as own:
                    self._harden_student_database(own, names)
                if new_password:
                    self._put_parameter(names.parameter, new_password)
            repository.upsert_student_database_credentials(
                user_id=names.user_id,
                database_name=names.database,
                schema_name=names.schema,
                role_name=names.role,
                password_parameter_name=names.parameter,
            )
        logger.info(
            "student database provisioned",
            extra={"user_id": names.user_id, "role": names.role, "new_password": new_password is not None},
        )
        return ToolResult(tool=TOOL, status=ToolStatus.PROVISIONED, details=self._details(names))

    def deprovision(self, student: Student) -> None:
        names = self.names(student)
        with _translated("deprovision student database"):
            with self._admin() as cur:
                self._lock_student(cur, names)
                role = sql.Identifier(names.role)
                if self._role(cur, names.role) is not None:
                    # No new sessions, then end the open ones (their locks would block the drops).
                    cur.execute(sql.SQL("ALTER ROLE {} NOLOGIN").format(role))
                    self._terminate_sessions(cur, names.role)
                cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(names.database)))
                with cur.connection.transaction():
                    self._lock_database_acl(cur)
                    if self._role(cur, names.role) is not None:
                        # Grants and objects in the admin database (a schema there is from before
                        # each student had a database of their own).
                        cur.execute(sql.SQL("DROP OWNED BY {}").format(role))
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
                    " EXISTS (SELECT 1 FROM pg_database WHERE datname = %s) AS database",
                    (names.role, names.database),
                ).fetchone()
            parts = [
                bool(row and row["role"]),
                bool(row and row["database"]),
                self._parameter_exists(names.parameter),
                repository.student_database_credentials(names.user_id) is not None,
            ]
        if all(parts):
            return ToolStatus.PROVISIONED
        return ToolStatus.PARTIAL if any(parts) else ToolStatus.NOT_PROVISIONED

    # -- the watchdog -----------------------------------------------------------------------------

    def enforce_limits(self) -> dict[str, Any]:
        """Terminates student sessions whose statement (or open transaction's statement) has run
        longer than the time limit, and puts back the role settings a student changed.

        A role's ``statement_timeout`` is a default the role itself may lift; this is the limit it
        cannot. Terminate, not cancel: PL/pgSQL can catch a cancel (``EXCEPTION WHEN
        query_canceled``). Run every minute by a schedule; safe to run at any time. Only the
        student roles the admin administers (a member of each, as the provisioner makes it; a
        superuser of all) are looked at.
        """
        limit = self._settings.students_db_statement_timeout
        with _translated("student database watchdog"), self._admin() as cur:
            terminated = cur.execute(
                """
                WITH overdue AS MATERIALIZED (
                    SELECT a.pid, r.rolname AS role
                    FROM pg_stat_activity a JOIN pg_roles r ON r.oid = a.usesysid
                    WHERE r.rolname ~ %(pattern)s AND NOT r.rolsuper AND pg_has_role(r.oid, 'MEMBER')
                      AND a.state IN ('active', 'fastpath function call')
                      AND a.query_start < now() - %(limit)s::interval
                )
                SELECT pid, role FROM overdue WHERE pg_terminate_backend(pid)
                """,
                {"pattern": STUDENT_NAME, "limit": _interval(limit)},
            ).fetchall()
            drifted = cur.execute(
                """
                SELECT r.rolname FROM pg_roles r
                WHERE r.rolname ~ %s AND NOT r.rolsuper AND r.rolcanlogin AND pg_has_role(r.oid, 'MEMBER')
                  AND (EXISTS (SELECT 1 FROM pg_db_role_setting s WHERE s.setrole = r.oid AND s.setdatabase <> 0)
                       OR (SELECT s.setconfig FROM pg_db_role_setting s
                           WHERE s.setrole = r.oid AND s.setdatabase = 0)
                          IS DISTINCT FROM ARRAY[%s, 'search_path=' || r.rolname])
                """,
                (STUDENT_NAME, f"statement_timeout={limit}"),
            ).fetchall()
            for row in drifted:
                self._reset_role_settings(cur, row["rolname"])
        summary = {
            "terminated": len(terminated),
            "settings_restored": len(drifted),
            "roles": sorted({row["role"] for row in terminated} | {row["rolname"] for row in drifted}),
        }
        if terminated or drifted:
            logger.warning("student database limits enforced", extra=summary)
        return summary

    # -- students' server -------------------------------------------------------------------------

    @contextmanager
    def _admin(self, dbname: str | None = None) -> Iterator[_Cursor]:
        """A dict-row cursor on a new admin connection (autocommit), closed on the way out."""
        conn = self._connect_admin(dbname) if dbname else self._connect_admin()
        try:
            if not conn.autocommit:
                conn.rollback()
                conn.autocommit = True
            with conn.cursor(row_factory=dict_row) as cur:
                row = cur.execute("SELECT current_database() AS name").fetchone()
                if not row or row["name"] != (dbname or self._settings.students_db_name):
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
    def _terminate_sessions(cur: _Cursor, role: str) -> None:
        cur.execute(
            "SELECT pg_terminate_backend(pid, %s::bigint) FROM pg_stat_activity"
            " WHERE usename = %s AND pid <> pg_backend_pid()",
            (_TERMINATE_WAIT_MS, role),
        )

    @staticmethod
    def _verifier(conn: psycopg.Connection[Any], role: str, password: str) -> str:
        """The SCRAM-SHA-256 verifier of the password, computed client-side by libpq."""
        return conn.pgconn.encrypt_password(password.encode(), role.encode(), b"scram-sha-256").decode()

    def _harden_admin_database(self, cur: _Cursor) -> None:
        """Checked on every run: no student connects to the admin database; ``public`` is closed.

        A REVOKE is issued only while PUBLIC still holds the privilege: PostgreSQL rewrites the
        catalog row even when a REVOKE changes nothing, and every session on the server then reloads
        its caches (each DP provisioning did it twice, under the ACL lock). Only then is the ACL lock
        taken, and the privileges read again under it: the role's own writes (its row, settings and
        membership) touch no database's ACL, so runs for different students no longer queue on one
        lock for them (25 DP students at once waited up to seconds for it, issue 13).
        """
        if not any(self._public_access(cur).values()):
            return
        self._lock_database_acl(cur)
        opened = self._public_access(cur)
        if opened["database_open"]:
            cur.execute(
                sql.SQL("REVOKE CONNECT ON DATABASE {} FROM PUBLIC").format(
                    sql.Identifier(self._settings.students_db_name)
                )
            )
        if opened["schema_open"]:
            cur.execute("REVOKE ALL ON SCHEMA public FROM PUBLIC")

    def _public_access(self, cur: _Cursor) -> dict[str, bool]:
        """What PUBLIC holds on the admin database: CONNECT, and anything on its ``public`` schema."""
        row = cur.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_database d, aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a"
            "               WHERE d.datname = %s AND a.grantee = 0 AND a.privilege_type = 'CONNECT') AS database_open,"
            " EXISTS (SELECT 1 FROM pg_namespace n, aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a"
            "         WHERE n.nspname = 'public' AND a.grantee = 0) AS schema_open",
            (self._settings.students_db_name,),
        ).fetchone()
        if row is None:  # the query always answers one row; as if open, so the REVOKEs run
            return {"database_open": True, "schema_open": True}
        return {"database_open": bool(row["database_open"]), "schema_open": bool(row["schema_open"])}

    def _ensure_role(self, cur: _Cursor, names: StudentDatabaseNames, verifier: str | None) -> None:
        role = sql.Identifier(names.role)
        limit = self._settings.students_db_connection_limit
        current = self._role(cur, names.role)
        if current is None:
            options: list[sql.Composable] = [
                sql.SQL(spec[1] if spec[0] else spec[2]) for spec in _ROLE_ATTRIBUTES.values()
            ]
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
        self._reset_role_settings(cur, names.role)
        # A non-superuser admin (RDS) needs membership to give the role its schema, drop what it owns
        # and end its sessions; a superuser needs none.
        is_superuser = cur.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()
        if not (is_superuser and is_superuser["rolsuper"]):
            cur.execute(sql.SQL("GRANT {} TO CURRENT_USER").format(role))

    def _reset_role_settings(self, cur: _Cursor, role_name: str) -> None:
        """Exactly the role's two settings (a student may have added or changed some, also for one
        database with ``ALTER ROLE CURRENT_USER IN DATABASE ... SET``)."""
        role = sql.Identifier(role_name)
        per_database = cur.execute(
            "SELECT d.datname FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole"
            " JOIN pg_database d ON d.oid = s.setdatabase WHERE r.rolname = %s",
            (role_name,),
        ).fetchall()
        for row in per_database:
            cur.execute(sql.SQL("ALTER ROLE {} IN DATABASE {} RESET ALL").format(role, sql.Identifier(row["datname"])))
        cur.execute(sql.SQL("ALTER ROLE {} RESET ALL").format(role))
        cur.execute(
            sql.SQL("ALTER ROLE {} SET statement_timeout = {}").format(
                role, sql.Literal(self._settings.students_db_statement_timeout)
            )
        )
        cur.execute(sql.SQL("ALTER ROLE {} SET search_path = {}").format(role, sql.Identifier(role_name)))

    def _ensure_database(self, cur: _Cursor, names: StudentDatabaseNames) -> None:
        """The student's own database, owned by the admin role; CONNECT and TEMP for the student only.
        A spare one is taken when there is one; else it is created here."""
        database, role = sql.Identifier(names.database), sql.Identifier(names.role)
        if cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (names.database,)).fetchone() is None:
            if self._claim_spare(cur, names):
                return
            cur.execute(sql.SQL("CREATE DATABASE {}").format(database))  # not in a transaction
        with cur.connection.transaction():
            cur.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(database))
            cur.execute(sql.SQL("GRANT CONNECT, TEMPORARY ON DATABASE {} TO {}").format(database, role))

    # -- spare databases --------------------------------------------------------------------------
    #
    # CREATE DATABASE copies the whole template (about 7 MB of catalogs, written to the WAL page by
    # page): 0.1 s alone, but 25 DP enrollments at once made 110 MB of WAL and waited up to a second
    # each for it, on the enrollment's critical path (issue 13). Spares are made ahead, between
    # bursts, by the watchdog; an enrollment renames one. A spare is sealed from the start
    # (ALLOW_CONNECTIONS false and no privilege for PUBLIC), so nobody can have been in it, and it
    # is renamed and opened to its student alone in one transaction.

    @property
    def spare_prefix(self) -> str:
        return spare_prefix(self._settings.students_db_name)

    def _spares(self, cur: _Cursor) -> list[str]:
        rows = cur.execute(
            "SELECT datname FROM pg_database WHERE starts_with(datname, %s) AND datname ~ %s AND NOT datallowconn"
            " ORDER BY datname",
            (self.spare_prefix, SPARE_NAME),
        ).fetchall()
        return [row["datname"] for row in rows]

    def _claim_spare(self, cur: _Cursor, names: StudentDatabaseNames) -> bool:
        """Renames a spare to the student's database and opens it to them (one transaction). A
        spare another run took first (it no longer exists under its name) or that is locked is
        passed over; False when none could be taken."""
        spares = self._spares(cur)
        candidates = random.sample(spares, min(3, len(spares)))  # concurrent runs mostly pick different ones
        database, role = sql.Identifier(names.database), sql.Identifier(names.role)
        for name in candidates:
            spare = sql.Identifier(name)
            try:
                with cur.connection.transaction():
                    cur.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(_LOCK_TIMEOUT)))
                    cur.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(spare, database))
                    cur.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(database))
                    cur.execute(sql.SQL("GRANT CONNECT, TEMPORARY ON DATABASE {} TO {}").format(database, role))
                    cur.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(database))
            except (
                psycopg.errors.InvalidCatalogName,
                psycopg.errors.ObjectInUse,
                psycopg.errors.LockNotAvailable,
            ) as error:
                # Taken by another run meanwhile (or held by it): the next one.
                logger.debug("spare database passed over", extra={"spare": name, "reason": type(error).__name__})
                continue
            return True
        logger.info("no spare database to take", extra={"user_id": names.user_id, "spares_tried": len(candidates)})
        return False

    def refill_spares(self) -> dict[str, Any]:
        """Makes (or drops) spare databases until there are ``students_db_spare_databases``. One
        run at a time: a run that finds another refilling does nothing. Safe to run at any time."""
        target = self._settings.students_db_spare_databases
        with _translated("student database spares"), self._admin() as cur:
            row = cur.execute("SELECT pg_try_advisory_lock(%s::bigint) AS held", (_SPARE_REFILL_LOCK,)).fetchone()
            if not (row and row["held"]):
                return {"spares_target": target, "spares_created": 0, "spares_dropped": 0, "spares_busy": True}
            spares = self._spares(cur)
            created = dropped = 0
            for _ in range(target - len(spares)):
                spare = sql.Identifier(self.spare_prefix + secrets.token_hex(8))
                cur.execute(sql.SQL("CREATE DATABASE {} ALLOW_CONNECTIONS false").format(spare))
                cur.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(spare))
                created += 1
            for name in spares[target:]:  # fewer wanted now
                cur.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
                dropped += 1
        summary = {"spares_target": target, "spares_created": created, "spares_dropped": dropped, "spares_busy": False}
        if created or dropped:
            logger.info("student database spares refilled", extra=summary)
        return summary

    @staticmethod
    def _harden_student_database(cur: _Cursor, names: StudentDatabaseNames) -> None:
        """In the student's database: ``public`` closed, the student's schema owned by the student."""
        schema, role = sql.Identifier(names.schema), sql.Identifier(names.role)
        with cur.connection.transaction():
            if cur.execute("SELECT 1 FROM pg_namespace WHERE nspname = 'public'").fetchone():
                cur.execute("REVOKE ALL ON SCHEMA public FROM PUBLIC")
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

    def _stored_password(self, name: str) -> str:
        return str(self._ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"])

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
            "dbname": names.database,
            "user": names.role,
            "schema": names.schema,
            "password_parameter": names.parameter,
        }


def _interval(timeout: str) -> str:
    """A ``statement_timeout`` value (``30s``, ``500ms``, ``2min``, bare milliseconds) as an interval."""
    units = {"us": "microseconds", "ms": "milliseconds", "s": "seconds", "min": "minutes", "h": "hours", "d": "days"}
    number = timeout.rstrip("abcdefghijklmnopqrstuvwxyz")
    unit = timeout[len(number) :] or "ms"
    return f"{number} {units[unit]}"
