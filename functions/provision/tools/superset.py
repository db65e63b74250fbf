"""Superset for DP students: a user, a role of their own and a connection to their own schema.

Through Superset's documented REST API (Flask-AppBuilder's security API, ``FAB_ADD_SECURITY_API =
True``, and ``/api/v1/database/``), logged in as an admin whose URL and credentials are SSM
parameters (``{SSM_PREFIX}/tools/superset/url``, ``.../admin-username``, ``.../admin-password``).

Per student, all named ``student_<short id>`` (16 hex of a salted hash of the user id, so no user
id appears in Superset):
- a database connection to the students' database as the student's own login role (its password
  read from the SSM parameter the credentials row names), ``options=-csearch_path=<schema>``,
  CTAS/CVAS forced into the schema and uploads limited to it in ``extra``;
- a role holding ``database_access`` on that connection alone, plus an explicit baseline of SQL Lab
  permissions (``BASELINE_PERMISSIONS``), set as the role's whole permission set on every run;
- an active user with that role only, the student's email, and a random password that exists
  only in SSM SecureString ``{SSM_PREFIX}/students/<user_id>/superset-password``.

The student's database must be provisioned first (the DP tools run in parallel): without its
credentials row this raises ``ToolUnavailable`` so the workflow retries. Each run repeats every
step safely: a piece that exists is found by name and brought in line, and an "already exists"
answer makes the run look again. A new password is set when the user or the parameter is missing;
the parameter is deleted before the change and written after it, so it never holds a password the
user lacks. Errors are ``ToolUnavailable`` (refused connections, timeouts, 5xx, 429, Superset
failing to reach the student's database) or ``ToolFailed`` (admin credentials refused, other 4xx,
missing baseline permissions); their messages carry no secret and no Superset response text beyond
status codes, field names and error types. The HTTP side (the admin session, rison, error summaries)
is ``superset_client.py``; AWS failures are translated by ``aws_errors.py``.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import string
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import psycopg
import requests
from aws_lambda_powertools.utilities.parameters import SSMProvider
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import Field

from apranova import tls
from apranova.observability import logger
from apranova.settings import BaseSettings
from functions.provision import repository
from functions.provision.tools import (
    Student,
    ToolFailed,
    ToolNotConfigured,
    ToolResult,
    ToolStatus,
    ToolUnavailable,
    student_secrets,
)
from functions.provision.tools.aws_errors import aws_error
from functions.provision.tools.superset_client import Answer, SupersetClient, describe, result_list

TOOL = "SUPERSET"
_NAME_SALT = b"apranova/superset/v1:"
_CACHE_SECONDS = 300
_PASSWORD_SPECIALS = "!@#$&*"  # noqa: S105 - the special characters FAB's password complexity counts
_PASSWORD_ALPHABET = string.ascii_letters + string.digits + _PASSWORD_SPECIALS
# What a SQL Lab user needs besides access to its database (Superset 4.x's sql_lab role, less the
# CSV exports and cost estimates, plus reading the database list it is filtered to).
BASELINE_PERMISSIONS: tuple[tuple[str, str], ...] = (
    ("can_sqllab", "Superset"),
    ("can_sqllab_history", "Superset"),
    ("can_read", "SQLLab"),
    ("can_execute_sql_query", "SQLLab"),
    ("can_get_results", "SQLLab"),
    ("can_activate", "TabStateView"),
    ("can_get", "TabStateView"),
    ("can_post", "TabStateView"),
    ("can_put", "TabStateView"),
    ("can_delete", "TabStateView"),
    ("can_delete_query", "TabStateView"),
    ("can_migrate_query", "TabStateView"),
    ("can_read", "Query"),
    ("can_read", "SavedQuery"),
    ("can_write", "SavedQuery"),
    ("can_read", "Database"),
    ("menu_access", "SQL Lab"),
    ("menu_access", "SQL Editor"),
    ("menu_access", "Saved Queries"),
    ("menu_access", "Query Search"),
)


class SupersetSettings(BaseSettings):
    """Environment (upper-cased names). The URL and admin credentials are SSM parameters."""

    ssm_prefix: str = Field(pattern=r"^/[A-Za-z0-9_.\-/]*[A-Za-z0-9_.\-]$")
    students_db_host: str = Field(min_length=1)  # the students' database, as students connect
    students_db_port: int = Field(5432, ge=1, le=65535)
    superset_students_db_host: str | None = None  # where Superset reaches it, when not the same
    superset_students_db_port: int | None = Field(None, ge=1, le=65535)
    superset_db_driver: str = Field("postgresql+psycopg2", pattern=r"^[a-z0-9]+(\+[a-z0-9_]+)?$")
    # verify-ca/verify-full: the connection also carries the CA bundle the layer ships (Superset's
    # ``server_cert``: its PostgreSQL engine writes it to a file and passes it as ``sslrootcert``).
    superset_db_sslmode: str | None = Field(None, pattern=r"^(disable|allow|prefer|require|verify-ca|verify-full)$")
    superset_kms_key_id: str | None = None  # None: SSM's default key (aws/ssm)
    superset_connect_timeout: float = Field(3.0, gt=0, le=60)
    superset_read_timeout: float = Field(10.0, gt=0, le=120)


@dataclass(frozen=True)
class SupersetNames:
    user_id: str  # canonical uuid text
    short_id: str
    username: str
    role: str
    database: str  # the connection's database_name in Superset
    parameter: str  # the student's Superset password in SSM


def names_for(user_id: str, ssm_prefix: str) -> SupersetNames:
    """Deterministic names for a user id; anything but a uuid is refused (``ToolFailed``)."""
    try:
        uid = uuid.UUID(str(user_id))
    except ValueError:
        raise ToolFailed("the user id is not a uuid") from None
    short_id = hashlib.sha256(_NAME_SALT + uid.bytes).hexdigest()[:16]
    name = f"student_{short_id}"
    return SupersetNames(
        user_id=str(uid),
        short_id=short_id,
        username=name,
        role=name,
        database=name,
        parameter=f"{ssm_prefix}/students/{uid}/superset-password",
    )


def new_password() -> str:
    """32 random characters that pass FAB's default password complexity check."""
    while True:
        password = "".join(secrets.choice(_PASSWORD_ALPHABET) for _ in range(32))
        if (
            sum(c.isupper() for c in password) >= 2
            and sum(c.islower() for c in password) >= 3
            and sum(c.isdigit() for c in password) >= 2
            and any(c in _PASSWORD_SPECIALS for c in password)
        ):
            return password


class SupersetProvisioner:
    """``ToolProvisioner`` for Superset (see the module docstring).

    ``ssm_client`` is a boto3 SSM client (admin parameters are read through a Powertools
    ``SSMProvider`` on it, cached 5 minutes); ``session`` a ``requests.Session`` of its own.
    """

    name = TOOL

    def __init__(self, ssm_client: Any, settings: SupersetSettings, session: requests.Session | None = None) -> None:
        self.settings = settings
        self.session = session or requests.Session()
        self._ssm = ssm_client
        self._parameters = SSMProvider(boto3_client=ssm_client)
        self._api = SupersetClient(
            self.session,
            base_url=self.base_url,
            admin_credentials=self.admin_credentials,
            timeouts=(settings.superset_connect_timeout, settings.superset_read_timeout),
        )
        self._baseline: tuple[float, list[int]] | None = None

    def names(self, student: Student) -> SupersetNames:
        return names_for(student.user_id, self.settings.ssm_prefix)

    # -- configuration ----------------------------------------------------------------------------

    def _tool_parameter(self, leaf: str, *, decrypt: bool = False, force_fetch: bool = False) -> str:
        """A Superset parameter; a missing ``url`` means Superset is not configured here."""
        name = f"{self.settings.ssm_prefix}/tools/superset/{leaf}"
        try:
            value = self._parameters.get(name, max_age=_CACHE_SECONDS, decrypt=decrypt, force_fetch=force_fetch)
        except Exception as exc:  # noqa: BLE001 - Powertools re-raises every SSM failure as GetParameterError
            inner = exc.__cause__ or exc.__context__
            cause = inner if isinstance(inner, Exception) else exc
            if isinstance(cause, ClientError) and cause.response.get("Error", {}).get("Code") == "ParameterNotFound":
                if leaf == "url":
                    raise ToolNotConfigured(
                        f"the SSM parameter {name} is missing: Superset is not configured"
                    ) from None
                raise ToolFailed(f"the SSM parameter {name} is missing") from None
            raise aws_error(f"read {name}", cause, "SSM") from None
        if not isinstance(value, str) or not value:
            raise ToolFailed(f"the SSM parameter {name} is empty")
        return value

    def base_url(self) -> str:
        url = self._tool_parameter("url").rstrip("/")
        if not re.match(r"^https?://[^\s/?#]+(/[^\s?#]*)?$", url):
            raise ToolFailed("the Superset URL parameter is not an http(s) URL")
        return url

    def admin_credentials(self, *, force_fetch: bool = False) -> tuple[str, str]:
        username = self._tool_parameter("admin-username", decrypt=True, force_fetch=force_fetch)
        password = self._tool_parameter("admin-password", decrypt=True, force_fetch=force_fetch)
        return username, password

    # -- the interface ----------------------------------------------------------------------------

    def provision(self, student: Student) -> ToolResult:
        if student.track != "DP":
            raise ToolFailed(f"Superset is a DP tool, not one of track {student.track!r}")
        names = self.names(student)
        with _aws_and_database("provision Superset"):
            if not repository.active_user_exists(names.user_id):
                raise ToolFailed("the user does not exist or is being deleted")
            credentials = repository.student_database_credentials(names.user_id)
            if credentials is None:
                raise ToolUnavailable("the student's database is not provisioned yet; Superset waits for it")
            db_password = self._student_db_password(credentials["password_parameter_name"])
            base_url = self.base_url()
            role_id = self._ensure_role(names)
            database_id = self._ensure_database(names, credentials, db_password)
            permission_ids = [self._database_access_id(names, database_id), *self._baseline_ids()]
            self._set_role_permissions(role_id, permission_ids)
            user_id, password_set = self._ensure_user(names, student.email, role_id)
        logger.info(
            "superset provisioned",
            extra={"user_id": names.user_id, "username": names.username, "password_set": password_set},
        )
        return ToolResult(
            tool=TOOL,
            status=ToolStatus.PROVISIONED,
            details={
                "external_id": str(user_id),
                "access_url": base_url + "/",
                "username": names.username,
                "role": names.role,
                "database_connection": names.database,
                "database_id": database_id,
                "schema": credentials["schema_name"],
                "password_parameter": names.parameter,
            },
        )

    def deprovision(self, student: Student) -> None:
        names = self.names(student)
        with _aws_and_database("deprovision Superset"):
            removed = []
            database = self._api.find("/api/v1/database/", "database_name", names.database)
            if database is not None:
                self._delete(f"/api/v1/database/{database['id']}")
                removed.append("database")
            user = self._api.find("/api/v1/security/users/", "username", names.username)
            if user is not None:
                self._delete(f"/api/v1/security/users/{user['id']}")
                removed.append("user")
            role = self._api.find("/api/v1/security/roles/", "name", names.role)
            if role is not None:
                self._delete(f"/api/v1/security/roles/{role['id']}")
                removed.append("role")
            if self._delete_parameter(names.parameter):
                removed.append("parameter")
        logger.info("superset deprovisioned", extra={"user_id": names.user_id, "removed": removed})

    def status(self, student: Student) -> ToolStatus:
        names = self.names(student)
        with _aws_and_database("Superset status"):
            role = self._api.find("/api/v1/security/roles/", "name", names.role)
            user = self._api.find("/api/v1/security/users/", "username", names.username)
            database = self._api.find("/api/v1/database/", "database_name", names.database)
            parts = [role is not None, user is not None, database is not None, self._parameter_exists(names.parameter)]
            if role is not None and database is not None:
                granted = self._api.call("GET", f"/api/v1/security/roles/{role['id']}/permissions")
                rows = result_list(granted, "GET role permissions")
                perm = _database_perm(names.database, database["id"])
                parts.append(
                    any(r.get("permission_name") == "database_access" and r.get("view_menu_name") == perm for r in rows)
                )
            if role is not None and user is not None:
                parts.append([r.get("id") for r in user.get("roles") or []] == [role["id"]])
        if all(parts):
            return ToolStatus.PROVISIONED
        return ToolStatus.PARTIAL if any(parts) else ToolStatus.NOT_PROVISIONED

    # -- pieces -----------------------------------------------------------------------------------

    def _ensure_role(self, names: SupersetNames) -> int:
        role = self._api.find("/api/v1/security/roles/", "name", names.role)
        if role is not None:
            return int(role["id"])
        answer = self._api.call("POST", "/api/v1/security/roles/", json_body={"name": names.role})
        if answer.status == 201:
            return int(answer.body["id"])
        role = self._api.find("/api/v1/security/roles/", "name", names.role) if answer.status == 422 else None
        if role is None:  # 422 without the role: not a duplicate
            raise ToolFailed(f"Superset answered {answer.status} to creating the role{describe(answer.body)}")
        return int(role["id"])

    def _database_payload(self, credentials: dict[str, Any], db_password: str) -> dict[str, Any]:
        schema = credentials["schema_name"]
        host = self.settings.superset_students_db_host or self.settings.students_db_host
        port = self.settings.superset_students_db_port or self.settings.students_db_port
        query = "options=" + quote(f"-csearch_path={schema}", safe="")
        if self.settings.superset_db_sslmode:
            query += f"&sslmode={self.settings.superset_db_sslmode}"
        address = f"{host}:{port}"
        if host.startswith("/"):  # a Unix socket directory (a local server): libpq's host/port arguments
            address, query = "", f"{query}&host={quote(host, safe='')}&port={port}"
        uri = (
            f"{self.settings.superset_db_driver}://{quote(credentials['role_name'], safe='')}:"
            f"{quote(db_password, safe='')}@{address}/{quote(credentials['database_name'], safe='')}?{query}"
        )
        extra = {
            "metadata_params": {},
            "engine_params": {},
            "metadata_cache_timeout": {},
            "schemas_allowed_for_file_upload": [schema],
        }
        verified = {}
        if self.settings.superset_db_sslmode in ("verify-ca", "verify-full"):
            # The region's RDS root CAs (AWS_REGION, which Lambda sets), else the whole bundle.
            verified["server_cert"] = tls.ca_bundle_pem(self.settings.aws_region)
        return {
            **verified,
            "sqlalchemy_uri": uri,
            "expose_in_sqllab": True,
            "allow_run_async": False,
            "allow_ctas": True,
            "allow_cvas": True,
            "allow_dml": True,
            "force_ctas_schema": schema,
            "allow_file_upload": False,
            "impersonate_user": False,
            "extra": json.dumps(extra),
        }

    def _ensure_database(self, names: SupersetNames, credentials: dict[str, Any], db_password: str) -> int:
        """Create the connection, or restate an existing one (the password may have been reset)."""
        payload = self._database_payload(credentials, db_password)
        existing = self._api.find("/api/v1/database/", "database_name", names.database)
        if existing is None:
            answer = self._api.call("POST", "/api/v1/database/", json_body={"database_name": names.database, **payload})
            if answer.status == 201:
                return int(answer.body["id"])
            if not _is_duplicate_name(answer):
                raise self._database_error("creating", answer)
            existing = self._api.find("/api/v1/database/", "database_name", names.database)
            if existing is None:
                raise ToolUnavailable("Superset reported the connection as existing but does not list it")
        database_id = int(existing["id"])
        answer = self._api.call("PUT", f"/api/v1/database/{database_id}", json_body=payload)
        if answer.status == 404:
            raise ToolUnavailable("the Superset connection disappeared while it was being updated")
        if answer.status != 200:
            raise self._database_error("updating", answer)
        return database_id

    def _database_error(self, action: str, answer: Answer) -> Exception:
        summary = describe(answer.body)
        errors = answer.body.get("errors") if isinstance(answer.body, dict) else None
        if isinstance(errors, list) and any(str(e.get("error_type", "")).startswith("CONNECTION_") for e in errors):
            return ToolUnavailable(f"Superset could not connect to the student's database while {action}{summary}")
        return ToolFailed(f"Superset answered {answer.status} to {action} the connection{summary}")

    def _database_access_id(self, names: SupersetNames, database_id: int) -> int:
        perm = _database_perm(names.database, database_id)
        view_menu = self._api.find("/api/v1/security/resources/", "name", perm)
        if view_menu is not None:
            q = {"filters": [{"col": "view_menu", "opr": "rel_o_m", "value": int(view_menu["id"])}]}
            for row in self._api.pages("/api/v1/security/permissions-resources/", q):
                if (row.get("permission") or {}).get("name") == "database_access":
                    return int(row["id"])
        raise ToolFailed(f"Superset has no database_access permission on {perm}")

    def _baseline_ids(self) -> list[int]:
        """The ids of ``BASELINE_PERMISSIONS`` (made by ``superset init``, so among the first ones)."""
        if self._baseline and time.monotonic() - self._baseline[0] < _CACHE_SECONDS:
            return self._baseline[1]
        wanted = set(BASELINE_PERMISSIONS)
        found: dict[tuple[str | None, str | None], int] = {}
        q = {"order_column": "id", "order_direction": "asc"}
        for row in self._api.pages("/api/v1/security/permissions-resources/", q):
            key = ((row.get("permission") or {}).get("name"), (row.get("view_menu") or {}).get("name"))
            if key in wanted:
                found[key] = int(row["id"])
                if len(found) == len(wanted):
                    break
        missing = [f"{p} on {v}" for p, v in BASELINE_PERMISSIONS if (p, v) not in found]
        if missing:
            raise ToolFailed("Superset lacks baseline permissions: " + "; ".join(missing))
        ids = [found[key] for key in BASELINE_PERMISSIONS]
        self._baseline = (time.monotonic(), ids)
        return ids

    def _set_role_permissions(self, role_id: int, permission_ids: list[int]) -> None:
        answer = self._api.call(
            "POST",
            f"/api/v1/security/roles/{role_id}/permissions",
            json_body={"permission_view_menu_ids": sorted(set(permission_ids))},
        )
        if answer.status == 404:
            raise ToolUnavailable("the Superset role disappeared while its permissions were set")
        if answer.status != 200:
            summary = describe(answer.body)
            raise ToolFailed(f"Superset answered {answer.status} to setting the role's permissions{summary}")

    def _ensure_user(self, names: SupersetNames, email: str, role_id: int) -> tuple[int, bool]:
        user = self._api.find("/api/v1/security/users/", "username", names.username)
        password = None
        if user is None:
            # A parameter left without its user is written over with the new user's password below.
            password = new_password()
            body = {
                "username": names.username,
                "first_name": "Student",
                "last_name": names.short_id,
                "email": email,
                "active": True,
                "roles": [role_id],
                "password": password,
            }
            answer = self._api.call("POST", "/api/v1/security/users/", json_body=body)
            if answer.status == 201:
                user_id = int(answer.body["id"])
            elif answer.status == 422:
                user = self._api.find("/api/v1/security/users/", "username", names.username)
                if user is None:
                    raise ToolFailed("Superset refused the user: its email belongs to another Superset user")
                user_id = self._update_user(user, email, role_id, password)  # created by a concurrent run
            else:
                raise ToolFailed(f"Superset answered {answer.status} to creating the user{describe(answer.body)}")
        else:
            if not self._parameter_exists(names.parameter):
                password = new_password()
            user_id = self._update_user(user, email, role_id, password)
        if password is not None:
            self._put_parameter(names.parameter, password)
        return user_id, password is not None

    def _update_user(self, user: dict[str, Any], email: str, role_id: int, password: str | None) -> int:
        changes: dict[str, Any] = {}
        if user.get("email") != email:
            changes["email"] = email
        if [r.get("id") for r in user.get("roles") or []] != [role_id]:
            changes["roles"] = [role_id]
        if user.get("active") is not True:
            changes["active"] = True
        if password is not None:
            changes["password"] = password
        if changes:
            answer = self._api.call("PUT", f"/api/v1/security/users/{user['id']}", json_body=changes)
            if answer.status == 404:
                raise ToolUnavailable("the Superset user disappeared while it was being updated")
            if answer.status == 422:
                raise ToolFailed("Superset refused the user: its email belongs to another Superset user")
            if answer.status != 200:
                raise ToolFailed(f"Superset answered {answer.status} to updating the user{describe(answer.body)}")
        return int(user["id"])

    def _delete(self, path: str) -> None:
        answer = self._api.call("DELETE", path)
        if answer.status not in (200, 204, 404):
            raise ToolFailed(f"Superset answered {answer.status} to DELETE {path}{describe(answer.body)}")

    # -- SSM --------------------------------------------------------------------------------------

    def _student_db_password(self, parameter: str) -> str:
        try:
            value = self._ssm.get_parameter(Name=parameter, WithDecryption=True)["Parameter"]["Value"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ParameterNotFound":
                raise ToolUnavailable("the student's database password is not in SSM yet") from None
            raise
        return value

    def _parameter_exists(self, name: str) -> bool:
        return student_secrets.exists(self._ssm, name)

    def _put_parameter(self, name: str, password: str) -> None:
        student_secrets.put(
            self._ssm,
            name,
            password,
            description="ApraNova student Superset password",
            kms_key_id=self.settings.superset_kms_key_id,
        )

    def _delete_parameter(self, name: str) -> bool:
        return student_secrets.delete(self._ssm, name)


def _database_perm(database_name: str, database_id: int) -> str:
    """The view menu Superset names a connection's ``database_access`` after."""
    return f"[{database_name}].(id:{database_id})"


def _is_duplicate_name(answer: Answer) -> bool:
    message = answer.body.get("message") if isinstance(answer.body, dict) else None
    return answer.status == 422 and isinstance(message, dict) and "database_name" in message


@contextmanager
def _aws_and_database(action: str) -> Iterator[None]:
    """SSM and application-database failures as ``ToolUnavailable``/``ToolFailed`` (no secret in them)."""
    try:
        yield
    except (ToolFailed, ToolUnavailable):
        raise
    except psycopg.OperationalError as exc:
        raise ToolUnavailable(f"{action}: database unavailable: {type(exc).__name__}") from None
    except psycopg.Error as exc:
        raise ToolFailed(f"{action}: database error {exc.sqlstate or type(exc).__name__}") from None
    except (ClientError, BotoCoreError) as exc:
        raise aws_error(action, exc, "SSM") from None
