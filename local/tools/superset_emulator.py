"""An in-memory emulator of the slice of Apache Superset's REST API the provisioner uses.

Superset 4.x with ``FAB_ADD_SECURITY_API = True`` (docs/decisions.md says why an emulator and not
the real server). What it speaks, with Superset's request and response shapes and status codes:

- ``POST /api/v1/security/login`` ``{username, password, provider, refresh}`` → ``{access_token,
  refresh_token}``; ``POST /api/v1/security/refresh``; ``GET /api/v1/security/csrf_token/``
  (sets the session cookie the token is bound to). Bearer JWTs (HS256) are checked the way
  flask-jwt-extended answers: 401 ``{"msg"}`` without a header or with an expired token, 422
  ``{"msg"}`` for a token it cannot verify. Every mutating call but login/refresh needs the
  ``X-CSRFToken`` header of the session (else 400, as Superset's CSRF handler answers).
- Flask-AppBuilder's security API: ``/api/v1/security/roles/`` (list, show, post, put, delete,
  ``/{id}/permissions`` GET and POST, the latter replacing the role's permission set and skipping
  unknown ids as FAB does), ``/users/`` (list, show, post, put, delete; password complexity as
  ``FAB_PASSWORD_COMPLEXITY_ENABLED``), ``/permissions/``, ``/resources/``,
  ``/permissions-resources/``. List endpoints take FAB's rison ``q`` (``filters`` with ``eq``,
  ``neq``, ``sw``, ``ew``, ``ct``, ``gt``, ``lt``, ``rel_o_m``, ``rel_m_m``; ``order_column``,
  ``order_direction``, ``page``, ``page_size`` up to 100). Unique names answer 422 with the
  metadata database's integrity error, as FAB does.
- ``/api/v1/database/`` (list, show, post, put, delete). Creating or renaming a connection
  validates the URI (sqlite refused, as ``PREVENT_UNSAFE_DB_CONNECTIONS``), answers 422
  ``{"message": {"database_name": [...]}}`` for a duplicate name, tests the connection through an
  optional ``connection_tester`` (a failure answers 400 ``{"errors": [...]}`` with Superset's
  ``CONNECTION_*`` error types), and keeps the ``database_access`` permission on
  ``[name].(id:N)`` (plus ``schema_access`` per schema the tester lists) in step with the
  connection, as Superset's model hooks do. Passwords in URIs come back masked (``XXXXXXXXXX``);
  a masked password sent back on update keeps the stored one.
- Authorization as FAB's ``protect()``: the caller's roles must hold the endpoint's permission
  (403 ``{"message": "Forbidden"}``); a non-admin lists only the databases it has
  ``database_access`` (or ``all_database_access``) to.

Test helpers (not Superset API): ``inject_fault`` (a status or a delay for matching requests),
``database_uri`` (a stored URI, unmasked), ``check_password``, ``snapshot``; ``save``/``load``
keep the state in a JSON file across restarts of the local stack.
"""

from __future__ import annotations

import copy
import json
import os
import re
import secrets
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import jwt
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.security import check_password_hash, generate_password_hash
from werkzeug.wrappers import Request, Response

PASSWORD_MASK = "X" * 10
MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20
ACCESS_TOKEN_TTL = 15 * 60
REFRESH_TOKEN_TTL = 30 * 24 * 3600
_COMPLEXITY_MESSAGE = (
    "Must have at least two capital letters, one special character, two digits, three lower case letters and a "
    "minimal length of 10."
)
_URI = re.compile(
    r"^(?P<backend>[\w+.\-]+)://"
    r"(?:(?P<username>[^:@/]*)(?::(?P<password>[^@/]*))?@)?"
    r"(?P<host>\[[^\]]+\]|[^:/?]*)?(?::(?P<port>\d*))?"
    r"(?:/(?P<database>[^?]*))?(?:\?(?P<query>.*))?$"
)

# Permission-view pairs a fresh ``superset init`` has (a representative subset of Superset 4.x).
SQLLAB_PERMISSIONS = [
    ("can_read", "SavedQuery"),
    ("can_write", "SavedQuery"),
    ("can_export", "SavedQuery"),
    ("can_read", "Query"),
    ("can_export_csv", "Query"),
    ("can_get_results", "SQLLab"),
    ("can_execute_sql_query", "SQLLab"),
    ("can_estimate_query_cost", "SQL Lab"),
    ("can_export_csv", "SQLLab"),
    ("can_read", "SQLLab"),
    ("can_sqllab_history", "Superset"),
    ("can_sqllab", "Superset"),
    ("can_activate", "TabStateView"),
    ("can_get", "TabStateView"),
    ("can_delete_query", "TabStateView"),
    ("can_post", "TabStateView"),
    ("can_delete", "TabStateView"),
    ("can_put", "TabStateView"),
    ("can_migrate_query", "TabStateView"),
    ("menu_access", "SQL Lab"),
    ("menu_access", "SQL Editor"),
    ("menu_access", "Saved Queries"),
    ("menu_access", "Query Search"),
]
GAMMA_PERMISSIONS = [
    ("can_read", "Database"),
    ("can_read", "Dataset"),
    ("can_read", "Chart"),
    ("can_read", "Dashboard"),
    ("can_write", "Chart"),
    ("can_write", "Dashboard"),
    ("can_userinfo", "UserDBModelView"),
    ("resetmypassword", "UserDBModelView"),
    ("menu_access", "Dashboards"),
    ("menu_access", "Charts"),
]
ADMIN_ONLY_PERMISSIONS = [
    ("can_write", "Database"),
    ("can_write", "Dataset"),
    ("can_read", "Security"),
    ("all_database_access", "all_database_access"),
    ("all_datasource_access", "all_datasource_access"),
    ("all_query_access", "all_query_access"),
    *[(f"can_{verb}", "Role") for verb in ("get", "post", "put", "delete", "info")],
    ("can_list_role_permissions", "Role"),
    ("can_add_role_permissions", "Role"),
    *[(f"can_{verb}", "User") for verb in ("get", "post", "put", "delete", "info")],
    ("can_get", "Permission"),
    ("can_get", "ViewMenu"),
    ("can_get", "PermissionViewMenu"),
    ("menu_access", "List Users"),
    ("menu_access", "List Roles"),
    ("menu_access", "Databases"),
]


class ApiError(Exception):
    """An error answered as JSON with a status."""

    def __init__(self, status: int, body: dict[str, Any]):
        super().__init__(status)
        self.status = status
        self.body = body


def _message(status: int, message: Any) -> ApiError:
    return ApiError(status, {"message": message})


class ConnectionTestError(Exception):
    """Raised by a connection tester: what Superset's ``test_connection`` would report."""

    def __init__(self, error_type: str, message: str, extra: dict[str, Any] | None = None):
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.extra = extra or {}


@dataclass
class Fault:
    method: str | None
    path_prefix: str
    status: int | None
    delay: float
    remaining: int
    body: Any = None


# -- rison (the ``q`` parameter of FAB's list endpoints) ---------------------------------------------

_NOT_ID = set(" '!:(),*@$")
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")


class _Rison:
    def __init__(self, text: str):
        self.text = text
        self.i = 0

    def parse(self) -> Any:
        value = self._value()
        if self.i != len(self.text):
            raise ValueError("extra characters after the value")
        return value

    def _next(self) -> str:
        if self.i >= len(self.text):
            raise ValueError("unexpected end")
        ch = self.text[self.i]
        self.i += 1
        return ch

    def _peek(self) -> str:
        return self.text[self.i] if self.i < len(self.text) else ""

    def _value(self) -> Any:
        ch = self._peek()
        if ch == "(":
            self.i += 1
            obj: dict[str, Any] = {}
            if self._peek() == ")":
                self.i += 1
                return obj
            while True:
                key = self._value()
                if not isinstance(key, str) or self._next() != ":":
                    raise ValueError("bad object")
                obj[key] = self._value()
                sep = self._next()
                if sep == ")":
                    return obj
                if sep != ",":
                    raise ValueError("bad object")
        if ch == "!":
            self.i += 1
            kind = self._next()
            if kind == "(":
                items: list[Any] = []
                if self._peek() == ")":
                    self.i += 1
                    return items
                while True:
                    items.append(self._value())
                    sep = self._next()
                    if sep == ")":
                        return items
                    if sep != ",":
                        raise ValueError("bad array")
            constants = {"t": True, "f": False, "n": None}
            if kind not in constants:
                raise ValueError("bad ! constant")
            return constants[kind]
        if ch == "'":
            self.i += 1
            out: list[str] = []
            while True:
                c = self._next()
                if c == "'":
                    return "".join(out)
                if c == "!":
                    c = self._next()
                    if c not in "!'":
                        raise ValueError("bad string escape")
                out.append(c)
        if ch == "-" or ch.isdigit():
            match = _NUMBER.match(self.text, self.i)
            if not match:
                raise ValueError("bad number")
            self.i = match.end()
            text = match.group()
            return float(text) if any(c in text for c in ".eE") else int(text)
        start = self.i
        while self.i < len(self.text) and self.text[self.i] not in _NOT_ID:
            self.i += 1
        if self.i == start:
            raise ValueError("unexpected character")
        return self.text[start : self.i]


def parse_rison(text: str) -> Any:
    return _Rison(text).parse()


# -- URIs --------------------------------------------------------------------------------------------


def parse_uri(uri: str) -> dict[str, Any] | None:
    match = _URI.match(uri or "")
    if not match:
        return None
    parts = match.groupdict()
    if parts["port"] == "":
        return None
    query: dict[str, str] = {}
    for pair in (parts["query"] or "").split("&"):
        if pair:
            key, _, value = pair.partition("=")
            query[unquote(key)] = unquote(value)
    return {
        "backend": parts["backend"],
        "username": unquote(parts["username"]) if parts["username"] is not None else None,
        "password": unquote(parts["password"]) if parts["password"] is not None else None,
        "host": parts["host"] or None,
        "port": int(parts["port"]) if parts["port"] else None,
        "database": unquote(parts["database"]) if parts["database"] else None,
        "query": query,
    }


def mask_uri(uri: str) -> str:
    match = _URI.match(uri or "")
    if not match or match.group("password") is None:
        return uri
    start, end = match.span("password")
    return uri[:start] + PASSWORD_MASK + uri[end:]


def _unmask(new_uri: str, old_uri: str) -> str:
    """Superset keeps the stored password when an update sends the masked one back."""
    new, old = _URI.match(new_uri or ""), _URI.match(old_uri or "")
    if new and old and new.group("password") == PASSWORD_MASK and old.group("password") is not None:
        start, end = new.span("password")
        return new_uri[:start] + old.group("password") + new_uri[end:]
    return new_uri


def psycopg_connection_tester(uri: str, server_cert: str | None = None) -> list[str]:
    """Test a PostgreSQL URI the way Superset does on create: connect with it, list its schemas.

    ``server_cert`` as Superset's PostgreSQL engine spec uses it: written to a file that becomes
    ``sslrootcert``, with ``sslmode`` verify-full unless the connection names another.
    Errors are reported with the error types Superset's PostgreSQL engine spec extracts.
    """
    if server_cert:
        with tempfile.NamedTemporaryFile("w", suffix=".crt", delete=False) as cert_file:
            cert_file.write(server_cert)
        try:
            return _test_postgres(uri, {"sslmode": "verify-full", "sslrootcert": cert_file.name})
        finally:
            os.unlink(cert_file.name)
    return _test_postgres(uri, {})


def _test_postgres(uri: str, tls: dict[str, str]) -> list[str]:
    import psycopg

    parts = parse_uri(uri)
    if not parts or not parts["backend"].startswith("postgres"):
        raise ConnectionTestError("GENERIC_DB_ENGINE_ERROR", "This emulator only tests PostgreSQL connections.")
    kwargs: dict[str, Any] = {
        "host": parts["host"] or "localhost",
        "port": parts["port"] or 5432,
        "dbname": parts["database"],
        "user": parts["username"],
        "password": parts["password"],
        "connect_timeout": 3,
        **tls,
    }
    for key in ("options", "sslmode", "application_name", "host", "port"):
        if key in parts["query"]:
            kwargs[key] = parts["query"][key]
    try:
        with psycopg.connect(**{k: v for k, v in kwargs.items() if v is not None}) as conn:
            rows = conn.execute("SELECT schema_name FROM information_schema.schemata ORDER BY 1").fetchall()
    except psycopg.Error as exc:
        text = str(exc)
        host, port = kwargs["host"], kwargs["port"]
        if "password authentication failed" in text:
            raise ConnectionTestError(
                "CONNECTION_INVALID_PASSWORD_ERROR",
                f'The password provided for username "{parts["username"]}" is incorrect.',
            ) from None
        if re.search(r'role ".*" does not exist', text):
            raise ConnectionTestError(
                "CONNECTION_INVALID_USERNAME_ERROR", f'The username "{parts["username"]}" does not exist.'
            ) from None
        if re.search(r'database ".*" does not exist', text):
            raise ConnectionTestError(
                "CONNECTION_UNKNOWN_DATABASE_ERROR", f'Unable to connect to database "{parts["database"]}".'
            ) from None
        if "Connection refused" in text:
            raise ConnectionTestError(
                "CONNECTION_PORT_CLOSED_ERROR", f'Port {port} on hostname "{host}" refused the connection.'
            ) from None
        if "timeout" in text.lower() or "could not translate host name" in text:
            raise ConnectionTestError(
                "CONNECTION_HOST_DOWN_ERROR",
                f'The host "{host}" might be down, and can\'t be reached on port {port}.',
            ) from None
        raise ConnectionTestError("GENERIC_DB_ENGINE_ERROR", text.splitlines()[0] if text else "error") from None
    return [row[0] for row in rows]


def _parses_as_certificate(text: str) -> bool:
    """Superset's ``server_cert`` check: the text's first PEM certificate parses."""
    from cryptography import x509

    try:
        x509.load_pem_x509_certificate(text.encode())
    except ValueError:
        return False
    return True


# -- the emulator ------------------------------------------------------------------------------------


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())


def _hash(password: str) -> str:
    # A salted PBKDF2 with few rounds: an emulator's store, kept cheap (FAB uses scrypt, on Superset's
    # own server). Here it shares the local stack's CPU: at 20,000 rounds each new student's account
    # cost the stack 10 ms, a 25th of the 50-payer burst's stack time (issue 13).
    return generate_password_hash(password, method="pbkdf2:sha256:1000")


def _complex_enough(password: str) -> bool:
    return (
        len(password) >= 10
        and len(re.findall(r"[A-Z]", password)) >= 2
        and len(re.findall(r"[a-z]", password)) >= 3
        and len(re.findall(r"[0-9]", password)) >= 2
        and re.search(r"[!@#$&*]", password) is not None
    )


def _integrity(table: str, column: str, value: Any) -> ApiError:
    return _message(
        422,
        f'duplicate key value violates unique constraint "{table}_{column}_key"\n'
        f"DETAIL:  Key ({column})=({value}) already exists.\n",
    )


_DATABASE_FIELDS = {
    "database_name": str,
    "sqlalchemy_uri": str,
    "cache_timeout": int,
    "expose_in_sqllab": bool,
    "allow_run_async": bool,
    "allow_file_upload": bool,
    "allow_ctas": bool,
    "allow_cvas": bool,
    "allow_dml": bool,
    "force_ctas_schema": str,
    "impersonate_user": bool,
    "extra": str,
    "masked_encrypted_extra": str,
    "server_cert": str,
    "configuration_method": str,
    "is_managed_externally": bool,
    "external_url": str,
    "uuid": str,
    "engine": str,
    "driver": str,
}
_DATABASE_DEFAULTS: dict[str, Any] = {
    "cache_timeout": None,
    "expose_in_sqllab": True,
    "allow_run_async": False,
    "allow_file_upload": False,
    "allow_ctas": False,
    "allow_cvas": False,
    "allow_dml": False,
    "force_ctas_schema": None,
    "impersonate_user": False,
    "extra": "{}",
    "server_cert": None,
    "configuration_method": "sqlalchemy_form",
    "is_managed_externally": False,
    "external_url": None,
}
_DATABASE_LIST_COLUMNS = [
    "allow_file_upload",
    "allow_ctas",
    "allow_cvas",
    "allow_dml",
    "allow_run_async",
    "backend",
    "changed_on",
    "database_name",
    "expose_in_sqllab",
    "extra",
    "force_ctas_schema",
    "id",
    "uuid",
]
_DATABASE_SHOW_COLUMNS = [
    "id",
    "uuid",
    "database_name",
    "cache_timeout",
    "expose_in_sqllab",
    "allow_run_async",
    "allow_file_upload",
    "configuration_method",
    "allow_ctas",
    "allow_cvas",
    "allow_dml",
    "backend",
    "driver",
    "force_ctas_schema",
    "impersonate_user",
    "is_managed_externally",
    "extra",
    "server_cert",
    "sqlalchemy_uri",
]
_USER_FIELDS = {"active", "email", "first_name", "last_name", "password", "roles", "username"}
_USER_COLUMNS = [
    "id",
    "roles.id",
    "roles.name",
    "first_name",
    "last_name",
    "username",
    "active",
    "email",
    "last_login",
    "login_count",
    "fail_login_count",
    "created_on",
    "changed_on",
    "created_by.id",
    "changed_by.id",
]


class SupersetEmulator:
    """A WSGI app; the state lives in memory behind one lock (and optionally in a JSON file)."""

    def __init__(
        self,
        *,
        admin_username: str = "admin",
        admin_password: str | None = None,
        admin_email: str = "admin@superset.local",
        connection_tester: Callable[[str], list[str] | None] | None = None,
        password_complexity: bool = True,
        secret_key: str | None = None,
    ):
        self.admin_username = admin_username
        self.admin_password = admin_password or secrets.token_urlsafe(18) + "Aa1!"
        self.connection_tester = connection_tester
        self.password_complexity = password_complexity
        self._lock = threading.RLock()
        self._faults: list[Fault] = []
        self._state = self._fresh_state(secret_key or secrets.token_hex(32))
        self._seed(admin_email)
        self._url_map = Map(
            [
                Rule("/health", endpoint="health", methods=["GET"]),
                Rule("/api/v1/security/login", endpoint="login", methods=["POST"]),
                Rule("/api/v1/security/refresh", endpoint="refresh", methods=["POST"]),
                Rule("/api/v1/security/csrf_token/", endpoint="csrf_token", methods=["GET"]),
                Rule("/api/v1/security/roles/", endpoint="roles", methods=["GET", "POST"]),
                Rule("/api/v1/security/roles/<int:pk>", endpoint="role", methods=["GET", "PUT", "DELETE"]),
                Rule("/api/v1/security/roles/<int:pk>/permissions", endpoint="role_perms", methods=["GET", "POST"]),
                Rule("/api/v1/security/users/", endpoint="users", methods=["GET", "POST"]),
                Rule("/api/v1/security/users/<int:pk>", endpoint="user", methods=["GET", "PUT", "DELETE"]),
                Rule("/api/v1/security/permissions/", endpoint="permissions", methods=["GET"]),
                Rule("/api/v1/security/resources/", endpoint="resources", methods=["GET"]),
                Rule("/api/v1/security/permissions-resources/", endpoint="pvms", methods=["GET"]),
                Rule("/api/v1/database/", endpoint="databases", methods=["GET", "POST"]),
                Rule("/api/v1/database/<int:pk>", endpoint="database", methods=["GET", "PUT", "DELETE"]),
            ]
        )

    # -- state -------------------------------------------------------------------------------------

    @staticmethod
    def _fresh_state(secret_key: str) -> dict[str, Any]:
        tables = ("permissions", "view_menus", "pvms", "roles", "users", "databases")
        return {
            "secret_key": secret_key,
            "next_id": dict.fromkeys(tables, 1),
            **{table: {} for table in tables},
            "sessions": {},  # session cookie -> csrf token
        }

    def _new_id(self, table: str) -> int:
        value = self._state["next_id"][table]
        self._state["next_id"][table] = value + 1
        return value

    def _seed(self, admin_email: str) -> None:
        all_pvms = [*SQLLAB_PERMISSIONS, *GAMMA_PERMISSIONS, *ADMIN_ONLY_PERMISSIONS]
        for permission, view_menu in all_pvms:
            self._add_pvm(permission, view_menu)
        self._add_permission("database_access")
        self._add_permission("schema_access")
        ids = {self._find_pvm(p, v) for p, v in all_pvms}
        self._add_role("Admin", ids)
        self._add_role("Alpha", {self._find_pvm(p, v) for p, v in [*SQLLAB_PERMISSIONS, *GAMMA_PERMISSIONS]})
        self._add_role("Gamma", {self._find_pvm(p, v) for p, v in GAMMA_PERMISSIONS})
        self._add_role("sql_lab", {self._find_pvm(p, v) for p, v in SQLLAB_PERMISSIONS})
        self._add_role("Public", set())
        admin_role = next(pk for pk, role in self._state["roles"].items() if role["name"] == "Admin")
        self._insert_user(
            {
                "username": self.admin_username,
                "first_name": "Superset",
                "last_name": "Admin",
                "email": admin_email,
                "active": True,
                "roles": [admin_role],
                "password": self.admin_password,
            },
            created_by=None,
        )

    def _add_permission(self, name: str) -> int:
        for pk, row in self._state["permissions"].items():
            if row["name"] == name:
                return pk
        pk = self._new_id("permissions")
        self._state["permissions"][pk] = {"name": name}
        return pk

    def _add_view_menu(self, name: str) -> int:
        for pk, row in self._state["view_menus"].items():
            if row["name"] == name:
                return pk
        pk = self._new_id("view_menus")
        self._state["view_menus"][pk] = {"name": name}
        return pk

    def _add_pvm(self, permission: str, view_menu: str) -> int:
        perm_id, vm_id = self._add_permission(permission), self._add_view_menu(view_menu)
        for pk, row in self._state["pvms"].items():
            if row["permission_id"] == perm_id and row["view_menu_id"] == vm_id:
                return pk
        pk = self._new_id("pvms")
        self._state["pvms"][pk] = {"permission_id": perm_id, "view_menu_id": vm_id}
        return pk

    def _find_pvm(self, permission: str, view_menu: str) -> int:
        for pk, row in self._state["pvms"].items():
            if (
                self._state["permissions"][row["permission_id"]]["name"] == permission
                and self._state["view_menus"][row["view_menu_id"]]["name"] == view_menu
            ):
                return pk
        raise KeyError((permission, view_menu))

    def _remove_view_menu(self, name: str) -> None:
        """Drop a view menu with its permission-view pairs, also out of every role."""
        vm_ids = [pk for pk, row in self._state["view_menus"].items() if row["name"] == name]
        for vm_id in vm_ids:
            gone = {pk for pk, row in self._state["pvms"].items() if row["view_menu_id"] == vm_id}
            for pk in gone:
                del self._state["pvms"][pk]
            for role in self._state["roles"].values():
                role["permissions"] = [pk for pk in role["permissions"] if pk not in gone]
            del self._state["view_menus"][vm_id]

    def _add_role(self, name: str, permissions: set[int]) -> int:
        pk = self._new_id("roles")
        self._state["roles"][pk] = {"name": name, "permissions": sorted(permissions)}
        return pk

    def _insert_user(self, item: dict[str, Any], created_by: int | None) -> int:
        pk = self._new_id("users")
        now = _now()
        self._state["users"][pk] = {
            "username": item["username"],
            "first_name": item["first_name"],
            "last_name": item["last_name"],
            "email": item["email"],
            "active": bool(item.get("active", False)),
            "password": _hash(item["password"]),
            "roles": [r for r in item["roles"] if r in self._state["roles"]],
            "last_login": None,
            "login_count": 0,
            "fail_login_count": 0,
            "created_on": now,
            "changed_on": now,
            "created_by": created_by,
            "changed_by": created_by,
        }
        return pk

    # -- test helpers ------------------------------------------------------------------------------

    def inject_fault(
        self,
        *,
        status: int | None = 500,
        delay: float = 0.0,
        path_prefix: str = "/api/",
        method: str | None = None,
        times: int = 1_000_000,
        body: Any = None,
    ) -> None:
        """Answer matching requests with ``status`` and ``body`` (after ``delay`` seconds), or only
        delay them (``status=None``). The body defaults to ``{"message": "Internal Server Error"}``."""
        with self._lock:
            self._faults.append(Fault(method, path_prefix, status, delay, times, body))

    def restart(self) -> None:
        """What a Superset restart with a new ``SECRET_KEY`` does to clients: tokens and CSRF
        sessions stop being accepted; the data stays."""
        with self._lock:
            self._state["secret_key"] = secrets.token_hex(32)
            self._state["sessions"].clear()

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def database_uri(self, database_name: str) -> str | None:
        """The stored URI of a connection, password included (Superset itself never shows it)."""
        with self._lock:
            for row in self._state["databases"].values():
                if row["database_name"] == database_name:
                    return row["sqlalchemy_uri"]
        return None

    def check_password(self, username: str, password: str) -> bool:
        with self._lock:
            for row in self._state["users"].values():
                if row["username"] == username:
                    return check_password_hash(row["password"], password)
        return False

    def snapshot(self) -> dict[str, Any]:
        """A copy of the state with names resolved (no password hashes, URIs masked)."""
        with self._lock:
            state = self._state
            pvm_names = {pk: self._pvm_names(pk) for pk in state["pvms"]}
            return {
                "roles": {
                    role["name"]: {"id": pk, "permissions": sorted(pvm_names[p] for p in role["permissions"])}
                    for pk, role in state["roles"].items()
                },
                "users": {
                    user["username"]: {
                        "id": pk,
                        "email": user["email"],
                        "active": user["active"],
                        "roles": sorted(state["roles"][r]["name"] for r in user["roles"]),
                    }
                    for pk, user in state["users"].items()
                },
                "databases": {
                    db["database_name"]: {
                        "id": pk,
                        "perm": self._database_perm(pk),
                        "sqlalchemy_uri": mask_uri(db["sqlalchemy_uri"]),
                        "extra": db["extra"],
                        "expose_in_sqllab": db["expose_in_sqllab"],
                        "allow_dml": db["allow_dml"],
                        "force_ctas_schema": db["force_ctas_schema"],
                        "server_cert": db.get("server_cert"),
                    }
                    for pk, db in state["databases"].items()
                },
                "pvms": sorted(pvm_names.values()),
            }

    def save(self, path: Path) -> None:
        with self._lock:
            data = json.dumps(self._state, default=list)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        with os.fdopen(fd, "w") as out:
            out.write(data)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)

    def load(self, path: Path) -> bool:
        """Restore a saved state (the admin account's password is reset to this instance's)."""
        if not path.exists():
            return False
        raw = json.loads(path.read_text())
        state = self._fresh_state(raw["secret_key"])
        state["next_id"] = raw["next_id"]
        for table in ("permissions", "view_menus", "pvms", "roles", "users", "databases"):
            state[table] = {int(pk): row for pk, row in raw[table].items()}
        state["sessions"] = raw.get("sessions", {})
        with self._lock:
            self._state = state
            for row in state["users"].values():
                if row["username"] == self.admin_username:
                    row["password"] = _hash(self.admin_password)
                    row["active"] = True
        return True

    # -- WSGI --------------------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        return self._respond(request)(environ, start_response)

    def _respond(self, request: Request) -> Response:
        fault = self._take_fault(request)
        if fault is not None:
            if fault.delay:
                time.sleep(fault.delay)
            if fault.status is not None:
                return _json(
                    fault.status, fault.body if fault.body is not None else {"message": "Internal Server Error"}
                )
        adapter = self._url_map.bind_to_environ(request.environ)
        try:
            endpoint, args = adapter.match()
        except HTTPException as exc:
            if exc.code in (301, 308):
                return exc.get_response(request.environ)  # type: ignore[return-value]
            return _json(exc.code or 404, {"message": "Not found" if exc.code == 404 else exc.name})
        try:
            with self._lock:
                return getattr(self, f"_ep_{endpoint}")(request, **args)
        except ApiError as exc:
            return _json(exc.status, exc.body)

    def _take_fault(self, request: Request) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.remaining > 0 and request.path.startswith(fault.path_prefix):
                    if fault.method is None or fault.method == request.method:
                        fault.remaining -= 1
                        return fault
        return None

    # -- authentication and authorization ----------------------------------------------------------

    def _tokens(self, user_id: int, refresh: bool) -> dict[str, str]:
        now = int(time.time())
        claims = {"fresh": True, "iat": now, "nbf": now, "sub": str(user_id)}
        out = {
            "access_token": jwt.encode(
                {**claims, "jti": str(uuid.uuid4()), "type": "access", "exp": now + ACCESS_TOKEN_TTL},
                self._state["secret_key"],
                algorithm="HS256",
            )
        }
        if refresh:
            out["refresh_token"] = jwt.encode(
                {**claims, "fresh": False, "jti": str(uuid.uuid4()), "type": "refresh", "exp": now + REFRESH_TOKEN_TTL},
                self._state["secret_key"],
                algorithm="HS256",
            )
        return out

    def _jwt_user(self, request: Request, kind: str = "access") -> int:
        header = request.headers.get("Authorization")
        if not header:
            raise ApiError(401, {"msg": "Missing Authorization Header"})
        scheme, _, token = header.partition(" ")
        if scheme != "Bearer" or not token:
            raise ApiError(
                422, {"msg": "Missing 'Bearer' type in 'Authorization' header. Expected 'Authorization: Bearer <JWT>'"}
            )
        try:
            claims = jwt.decode(token.strip(), self._state["secret_key"], algorithms=["HS256"])
        except jwt.ExpiredSignatureError:
            raise ApiError(401, {"msg": "Token has expired"}) from None
        except jwt.InvalidSignatureError:
            raise ApiError(422, {"msg": "Signature verification failed"}) from None
        except jwt.PyJWTError as exc:
            raise ApiError(422, {"msg": str(exc) or "Invalid token"}) from None
        if claims.get("type") != kind:
            wanted = "refresh" if kind == "refresh" else "non-refresh"
            raise ApiError(422, {"msg": f"Only {wanted} tokens are allowed"})
        try:
            user_id = int(claims["sub"])
        except (KeyError, TypeError, ValueError):
            raise ApiError(422, {"msg": "Invalid token"}) from None
        user = self._state["users"].get(user_id)
        if user is None or not user["active"]:
            raise ApiError(401, {"msg": f"Error loading the user {user_id}"})
        return user_id

    def _pvms_of(self, user_id: int) -> set[tuple[str, str]]:
        out = set()
        for role_id in self._state["users"][user_id]["roles"]:
            for pk in self._state["roles"].get(role_id, {}).get("permissions", []):
                if pk in self._state["pvms"]:
                    out.add(self._pvm_names(pk))
        return out

    def _pvm_names(self, pk: int) -> tuple[str, str]:
        row = self._state["pvms"][pk]
        return (
            self._state["permissions"][row["permission_id"]]["name"],
            self._state["view_menus"][row["view_menu_id"]]["name"],
        )

    def _protect(self, request: Request, permission: str, view_menu: str) -> int:
        """CSRF (mutating calls), then the bearer token, then the permission: FAB's order."""
        if request.method in ("POST", "PUT", "PATCH", "DELETE"):
            self._check_csrf(request)
        user_id = self._jwt_user(request)
        if (permission, view_menu) not in self._pvms_of(user_id):
            raise _message(403, "Forbidden")
        return user_id

    def _check_csrf(self, request: Request) -> None:
        token = request.headers.get("X-CSRFToken") or request.headers.get("X-CSRF-Token")
        if not token:
            raise _csrf_error("The CSRF token is missing.")
        session = request.cookies.get("session")
        expected = self._state["sessions"].get(session) if session else None
        if expected is None:
            raise _csrf_error("The CSRF session token is missing.")
        if not secrets.compare_digest(token, expected):
            raise _csrf_error("The CSRF tokens do not match.")

    @staticmethod
    def _json_body(request: Request) -> dict[str, Any]:
        if not request.is_json:
            raise _message(400, "Request is not JSON")
        try:
            body = json.loads(request.get_data(as_text=True) or "null")
        except ValueError:
            raise _message(400, "Request is not JSON") from None
        if not isinstance(body, dict):
            raise _message(400, {"_schema": ["Invalid input type."]})
        return body

    # -- security API ------------------------------------------------------------------------------

    def _ep_health(self, request: Request) -> Response:
        return Response("OK", mimetype="text/plain")

    def _ep_login(self, request: Request) -> Response:
        if not request.is_json:
            raise _message(400, "Request payload is not JSON")
        try:
            body = json.loads(request.get_data(as_text=True) or "null")
        except ValueError:
            raise _message(400, "Request payload is not JSON") from None
        if not isinstance(body, dict):
            raise _message(400, "Request payload is not JSON")
        username, password = body.get("username"), body.get("password")
        provider, refresh = body.get("provider", "db"), body.get("refresh", False)
        if not username or not password or not provider:
            raise _message(400, "Missing required parameter")
        if provider != "db":
            raise _message(400, f"Provider {provider} not supported")
        match = next(
            (
                (pk, row)
                for pk, row in self._state["users"].items()
                if row["username"] == username or row["email"] == username
            ),
            None,
        )
        if match is None or not match[1]["active"] or not check_password_hash(match[1]["password"], str(password)):
            if match is not None:
                match[1]["fail_login_count"] += 1
            raise _message(401, "Not authorized")
        pk, user = match
        user["login_count"] += 1
        user["fail_login_count"] = 0
        user["last_login"] = _now()
        return _json(200, self._tokens(pk, bool(refresh)))

    def _ep_refresh(self, request: Request) -> Response:
        user_id = self._jwt_user(request, kind="refresh")
        return _json(200, {"access_token": self._tokens(user_id, False)["access_token"]})

    def _ep_csrf_token(self, request: Request) -> Response:
        self._protect(request, "can_read", "Security")
        session = request.cookies.get("session")
        token = self._state["sessions"].get(session) if session else None
        if session is None or token is None:
            session, token = secrets.token_urlsafe(24), secrets.token_hex(20)
            self._state["sessions"][session] = token
        response = _json(200, {"result": token})
        response.set_cookie("session", session, httponly=True, samesite="Lax", path="/")
        return response

    def _ep_roles(self, request: Request) -> Response:
        if request.method == "GET":
            self._protect(request, "can_get", "Role")
            rows = [{"id": pk, "name": row["name"]} for pk, row in self._state["roles"].items()]
            return _json(200, _list(request, rows, ["id", "name"], {"id": "eq", "name": "eq"}, "List Role"))
        self._protect(request, "can_post", "Role")
        body = self._json_body(request)
        _unknown_fields(body, {"name"})
        name = body.get("name")
        if not isinstance(name, str) or not name:
            raise _message(400, {"name": ["Missing data for required field."]})
        if len(name) > 64:
            raise _message(400, {"name": ["Longer than maximum length 64."]})
        if any(row["name"] == name for row in self._state["roles"].values()):
            raise _integrity("ab_role", "name", name)
        pk = self._add_role(name, set())
        return _json(201, {"id": pk, "result": {"name": name}})

    def _role(self, pk: int) -> dict[str, Any]:
        role = self._state["roles"].get(pk)
        if role is None:
            raise _message(404, "Not found")
        return role

    def _ep_role(self, request: Request, pk: int) -> Response:
        if request.method == "GET":
            self._protect(request, "can_get", "Role")
            role = self._role(pk)
            return _json(200, {"id": pk, "result": {"id": pk, "name": role["name"]}, "show_columns": ["id", "name"]})
        if request.method == "PUT":
            self._protect(request, "can_put", "Role")
            role = self._role(pk)
            body = self._json_body(request)
            _unknown_fields(body, {"name"})
            name = body.get("name", role["name"])
            if any(row["name"] == name and other != pk for other, row in self._state["roles"].items()):
                raise _integrity("ab_role", "name", name)
            role["name"] = name
            return _json(200, {"id": pk, "result": {"name": name}})
        self._protect(request, "can_delete", "Role")
        self._role(pk)
        del self._state["roles"][pk]
        for user in self._state["users"].values():
            user["roles"] = [r for r in user["roles"] if r != pk]
        return _json(200, {"message": "OK"})

    def _ep_role_perms(self, request: Request, pk: int) -> Response:
        if request.method == "GET":
            self._protect(request, "can_list_role_permissions", "Role")
            role = self._role(pk)
            result = [
                {"id": p, "permission_name": self._pvm_names(p)[0], "view_menu_name": self._pvm_names(p)[1]}
                for p in role["permissions"]
                if p in self._state["pvms"]
            ]
            return _json(200, {"result": result})
        self._protect(request, "can_add_role_permissions", "Role")
        body = self._json_body(request)
        ids = body.get("permission_view_menu_ids")
        if "permission_view_menu_ids" not in body:
            raise _message(400, {"permission_view_menu_ids": ["Missing data for required field."]})
        if not isinstance(ids, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
            raise _message(400, {"permission_view_menu_ids": ["Not a valid list."]})
        role = self._role(pk)
        role["permissions"] = sorted({i for i in ids if i in self._state["pvms"]})  # unknown ids skipped, as FAB
        return _json(200, {"result": {"permission_view_menu_ids": ids}})

    def _user_row(self, pk: int) -> dict[str, Any]:
        user = self._state["users"][pk]
        roles = [{"id": r, "name": self._state["roles"][r]["name"]} for r in user["roles"] if r in self._state["roles"]]
        return {
            "id": pk,
            "roles": roles,
            "first_name": user["first_name"],
            "last_name": user["last_name"],
            "username": user["username"],
            "active": user["active"],
            "email": user["email"],
            "last_login": user["last_login"],
            "login_count": user["login_count"],
            "fail_login_count": user["fail_login_count"],
            "created_on": user["created_on"],
            "changed_on": user["changed_on"],
            "created_by": {"id": user["created_by"]} if user["created_by"] else None,
            "changed_by": {"id": user["changed_by"]} if user["changed_by"] else None,
        }

    def _validate_user(self, body: dict[str, Any], *, partial: bool, pk: int | None = None) -> dict[str, Any]:
        _unknown_fields(body, _USER_FIELDS)
        errors: dict[str, list[str]] = {}
        if not partial:
            for name in ("email", "first_name", "last_name", "password", "roles", "username"):
                if name not in body:
                    errors[name] = ["Missing data for required field."]
        for name in ("email", "first_name", "last_name", "password", "username"):
            if name in body and not isinstance(body[name], str):
                errors[name] = ["Not a valid string."]
        if "active" in body and not isinstance(body["active"], bool):
            errors["active"] = ["Not a valid boolean."]
        if "roles" in body:
            roles = body["roles"]
            if not isinstance(roles, list) or not all(isinstance(r, int) and not isinstance(r, bool) for r in roles):
                errors["roles"] = ["Not a valid list."]
            elif not roles:
                errors["roles"] = ["Shorter than minimum length 1."]
        if isinstance(body.get("username"), str) and not 1 <= len(body["username"]) <= 250:
            errors["username"] = ["Length must be between 1 and 250."]
        if isinstance(body.get("password"), str) and self.password_complexity and not _complex_enough(body["password"]):
            errors["password"] = [_COMPLEXITY_MESSAGE]
        if errors:
            raise _message(400, errors)
        for column in ("username", "email"):
            if column in body:
                for other, row in self._state["users"].items():
                    if row[column] == body[column] and other != pk:
                        raise _integrity("ab_user", column, body[column])
        return body

    def _ep_users(self, request: Request) -> Response:
        if request.method == "GET":
            self._protect(request, "can_get", "User")
            rows = [self._user_row(pk) for pk in self._state["users"]]
            searchable = {c: "eq" for c in ("id", "username", "email", "first_name", "last_name", "active")}
            searchable["roles"] = "rel_m_m"
            return _json(200, _list(request, rows, _USER_COLUMNS, searchable, "List Users"))
        caller = self._protect(request, "can_post", "User")
        item = self._validate_user(self._json_body(request), partial=False)
        pk = self._insert_user(item, created_by=caller)
        return _json(201, {"id": pk})

    def _ep_user(self, request: Request, pk: int) -> Response:
        if request.method == "GET":
            self._protect(request, "can_get", "User")
            if pk not in self._state["users"]:
                raise _message(404, "Not found")
            return _json(200, {"id": pk, "result": self._user_row(pk), "show_columns": _USER_COLUMNS})
        if request.method == "PUT":
            caller = self._protect(request, "can_put", "User")
            if pk not in self._state["users"]:
                raise _message(404, "Not found")
            item = self._validate_user(self._json_body(request), partial=True, pk=pk)
            user = self._state["users"][pk]
            for key, value in item.items():
                if key == "password":
                    user["password"] = _hash(value)
                elif key == "roles":
                    user["roles"] = [r for r in value if r in self._state["roles"]]
                else:
                    user[key] = value
            user["changed_on"], user["changed_by"] = _now(), caller
            return _json(200, {"result": {k: v for k, v in item.items() if k != "password"}})
        self._protect(request, "can_delete", "User")
        if pk not in self._state["users"]:
            raise _message(404, "Not found")
        del self._state["users"][pk]
        return _json(200, {"message": "OK"})

    def _ep_permissions(self, request: Request) -> Response:
        self._protect(request, "can_get", "Permission")
        rows = [{"id": pk, "name": row["name"]} for pk, row in self._state["permissions"].items()]
        return _json(200, _list(request, rows, ["id", "name"], {"id": "eq", "name": "eq"}, "List Permission"))

    def _ep_resources(self, request: Request) -> Response:
        self._protect(request, "can_get", "ViewMenu")
        rows = [{"id": pk, "name": row["name"]} for pk, row in self._state["view_menus"].items()]
        return _json(200, _list(request, rows, ["id", "name"], {"id": "eq", "name": "eq"}, "List View Menu"))

    def _ep_pvms(self, request: Request) -> Response:
        self._protect(request, "can_get", "PermissionViewMenu")
        rows = []
        for pk, row in self._state["pvms"].items():
            permission, view_menu = self._pvm_names(pk)
            rows.append(
                {
                    "id": pk,
                    "permission": {"name": permission},
                    "view_menu": {"name": view_menu},
                    "_rel": {"permission": row["permission_id"], "view_menu": row["view_menu_id"]},
                }
            )
        searchable = {"id": "eq", "permission": "rel_o_m", "view_menu": "rel_o_m"}
        columns = ["id", "permission.name", "view_menu.name"]
        return _json(200, _list(request, rows, columns, searchable, "List Permission View Menu"))

    # -- databases ---------------------------------------------------------------------------------

    def _database_perm(self, pk: int) -> str:
        return f"[{self._state['databases'][pk]['database_name']}].(id:{pk})"

    def _database_row(self, pk: int, columns: list[str]) -> dict[str, Any]:
        db = self._state["databases"][pk]
        parts = parse_uri(db["sqlalchemy_uri"]) or {"backend": ""}
        backend, _, driver = parts["backend"].partition("+")
        full = {
            **db,
            "id": pk,
            "backend": "postgresql" if backend == "postgres" else backend,
            "driver": driver or None,
            "sqlalchemy_uri": mask_uri(db["sqlalchemy_uri"]),
        }
        return {column: full.get(column) for column in columns}

    def _can_access_database(self, user_id: int, pk: int) -> bool:
        pvms = self._pvms_of(user_id)
        return ("all_database_access", "all_database_access") in pvms or (
            "database_access",
            self._database_perm(pk),
        ) in pvms

    def _validate_database(self, body: dict[str, Any], *, partial: bool) -> dict[str, Any]:
        errors: dict[str, list[str]] = {}
        for key, value in body.items():
            kind = _DATABASE_FIELDS.get(key)
            if kind is None:
                errors[key] = ["Unknown field."]
            elif value is not None and not (isinstance(value, kind) and not (kind is int and isinstance(value, bool))):
                errors[key] = [f"Not a valid {kind.__name__.replace('str', 'string').replace('bool', 'boolean')}."]
        if not partial and "database_name" not in body:
            errors["database_name"] = ["Missing data for required field."]
        name = body.get("database_name")
        if isinstance(name, str) and not 1 <= len(name) <= 250:
            errors["database_name"] = ["Length must be between 1 and 250."]
        uri = body.get("sqlalchemy_uri")
        if isinstance(uri, str):
            parts = parse_uri(uri)
            if parts is None:
                errors["sqlalchemy_uri"] = [
                    "Invalid connection string, a valid string usually follows: "
                    "backend+driver://user:password@database-host/database-name"
                ]
            elif parts["backend"].startswith("sqlite"):
                errors["sqlalchemy_uri"] = [
                    "SQLiteDialect_pysqlite cannot be used as a data source for security reasons."
                ]
        cert = body.get("server_cert")
        if isinstance(cert, str) and cert and not _parses_as_certificate(cert):
            errors["server_cert"] = ["Invalid certificate"]
        extra = body.get("extra")
        if isinstance(extra, str) and extra:
            try:
                decoded = json.loads(extra)
            except ValueError:
                decoded = None
                errors["extra"] = ["Field cannot be decoded by JSON. Expecting value: line 1 column 1 (char 0)"]
            if decoded is not None and not isinstance(decoded, dict):
                errors["extra"] = ["Field cannot be decoded by JSON."]
            elif isinstance(decoded, dict):
                allowed = decoded.get("schemas_allowed_for_file_upload")
                if allowed is not None and not (isinstance(allowed, list) and all(isinstance(s, str) for s in allowed)):
                    errors["extra"] = ["schemas_allowed_for_file_upload must be a list of strings."]
        if errors:
            raise _message(400, errors)
        return body

    def _test_connection(self, uri: str, server_cert: str | None = None) -> list[str]:
        if self.connection_tester is None:
            return []
        try:
            if server_cert:
                return list(self.connection_tester(uri, server_cert=server_cert) or [])  # type: ignore[call-arg]
            return list(self.connection_tester(uri) or [])
        except ConnectionTestError as exc:
            raise ApiError(400, {"errors": [_superset_error(exc.error_type, exc.message, exc.extra)]}) from None
        except Exception:  # noqa: BLE001 - any other failure is Superset's DatabaseConnectionFailedError
            raise _message(422, "Connection failed, please check your connection settings") from None

    def _sync_database_permissions(self, pk: int, schemas: list[str], old_name: str | None = None) -> None:
        name = self._state["databases"][pk]["database_name"]
        if old_name is not None and old_name != name:
            for vm in self._state["view_menus"].values():
                if vm["name"] == f"[{old_name}].(id:{pk})":
                    vm["name"] = f"[{name}].(id:{pk})"
                elif vm["name"].startswith(f"[{old_name}].["):
                    vm["name"] = f"[{name}]." + vm["name"][len(f"[{old_name}].") :]
        self._add_pvm("database_access", self._database_perm(pk))
        for schema in schemas:
            self._add_pvm("schema_access", f"[{name}].[{schema}]")

    def _ep_databases(self, request: Request) -> Response:
        if request.method == "GET":
            caller = self._protect(request, "can_read", "Database")
            rows = [
                self._database_row(pk, _DATABASE_LIST_COLUMNS)
                for pk in self._state["databases"]
                if self._can_access_database(caller, pk)
            ]
            columns = ("id", "uuid", "database_name", "expose_in_sqllab", "allow_dml", "allow_run_async")
            searchable = dict.fromkeys((*columns, "allow_file_upload"), "eq")
            return _json(200, _list(request, rows, _DATABASE_LIST_COLUMNS, searchable, "List Database"))
        self._protect(request, "can_write", "Database")
        item = self._validate_database(self._json_body(request), partial=False)
        errors: dict[str, list[str]] = {}
        if not item.get("sqlalchemy_uri"):
            errors["sqlalchemy_uri"] = ["Field is required"]
        if any(row["database_name"] == item["database_name"] for row in self._state["databases"].values()):
            errors["database_name"] = ["A database with the same name already exists."]
        if errors:
            raise _message(422, errors)
        schemas = self._test_connection(item["sqlalchemy_uri"], item.get("server_cert"))
        pk = self._new_id("databases")
        row = {**_DATABASE_DEFAULTS, **item, "uuid": item.get("uuid") or str(uuid.uuid4()), "changed_on": _now()}
        row.pop("masked_encrypted_extra", None)
        row.pop("engine", None)
        row.pop("driver", None)
        self._state["databases"][pk] = row
        self._sync_database_permissions(pk, schemas)
        result = {**item, "sqlalchemy_uri": mask_uri(row["sqlalchemy_uri"]), "uuid": row["uuid"]}
        result["expose_in_sqllab"] = row["expose_in_sqllab"]
        return _json(201, {"id": pk, "result": result})

    def _ep_database(self, request: Request, pk: int) -> Response:
        if request.method == "GET":
            caller = self._protect(request, "can_read", "Database")
            if pk not in self._state["databases"] or not self._can_access_database(caller, pk):
                raise _message(404, "Not found")
            return _json(200, {"id": pk, "result": self._database_row(pk, _DATABASE_SHOW_COLUMNS)})
        self._protect(request, "can_write", "Database")
        if pk not in self._state["databases"]:
            raise _message(404, "Not found")
        row = self._state["databases"][pk]
        if request.method == "DELETE":
            name = row["database_name"]
            del self._state["databases"][pk]
            self._remove_view_menu(f"[{name}].(id:{pk})")
            for vm_name in [vm["name"] for vm in self._state["view_menus"].values()]:
                if vm_name.startswith(f"[{name}].["):
                    self._remove_view_menu(vm_name)
            return _json(200, {"message": "OK"})
        item = self._validate_database(self._json_body(request), partial=True)
        name = item.get("database_name", row["database_name"])
        taken = (
            other["database_name"] == name and other_pk != pk for other_pk, other in self._state["databases"].items()
        )
        if any(taken):
            raise _message(422, {"database_name": ["A database with the same name already exists."]})
        if "sqlalchemy_uri" in item:
            item["sqlalchemy_uri"] = _unmask(item["sqlalchemy_uri"], row["sqlalchemy_uri"])
        schemas = self._test_connection(
            item.get("sqlalchemy_uri", row["sqlalchemy_uri"]), item.get("server_cert", row.get("server_cert"))
        )
        old_name = row["database_name"]
        for key, value in item.items():
            if key not in ("masked_encrypted_extra", "engine", "driver", "uuid"):
                row[key] = value
        row["changed_on"] = _now()
        self._sync_database_permissions(pk, schemas, old_name=old_name)
        result = {**item}
        if "sqlalchemy_uri" in result:
            result["sqlalchemy_uri"] = mask_uri(result["sqlalchemy_uri"])
        return _json(200, {"id": pk, "result": result})


# -- helpers -----------------------------------------------------------------------------------------


def _json(status: int, body: Any) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")


def _csrf_error(reason: str) -> ApiError:
    return ApiError(400, {"errors": [_superset_error("GENERIC_BACKEND_ERROR", f"400 Bad Request: {reason}", {})]})


def _superset_error(error_type: str, message: str, extra: dict[str, Any]) -> dict[str, Any]:
    return {"message": message, "error_type": error_type, "level": "error", "extra": {"engine_name": None, **extra}}


def _unknown_fields(body: dict[str, Any], allowed: set[str]) -> None:
    unknown = {key: ["Unknown field."] for key in body if key not in allowed}
    if unknown:
        raise _message(400, unknown)


def _matches(row: dict[str, Any], column: str, operator: str, value: Any) -> bool:
    if operator in ("rel_o_m", "nrel_o_m"):
        related = row.get("_rel", {}).get(column)
        hit = str(related) == str(value)
        return hit if operator == "rel_o_m" else not hit
    if operator == "rel_m_m":
        return any(str(item.get("id")) == str(value) for item in row.get(column) or [])
    current = row.get(column)
    if operator == "eq":
        return current == value or (isinstance(current, int | bool) and str(current) == str(value))
    if operator == "neq":
        return current != value
    if current is None:
        return False
    text, wanted = str(current).lower(), str(value).lower()
    if operator == "sw":
        return text.startswith(wanted)
    if operator == "ew":
        return text.endswith(wanted)
    if operator == "ct":
        return wanted in text
    if operator == "gt":
        return current > value
    if operator == "lt":
        return current < value
    return False


_OPERATORS = {
    "eq": {"eq", "neq", "sw", "ew", "ct", "gt", "lt"},
    "rel_o_m": {"rel_o_m", "nrel_o_m"},
    "rel_m_m": {"rel_m_m"},
}


def _list(
    request: Request, rows: list[dict[str, Any]], columns: list[str], searchable: dict[str, str], title: str
) -> dict[str, Any]:
    """FAB's list endpoint: rison ``q`` with filters, order and paging; dotted columns nested."""
    args: dict[str, Any] = {}
    if request.args.get("q"):
        try:
            args = parse_rison(request.args["q"])
        except ValueError:
            raise _message(400, "Not a valid rison argument") from None
        if not isinstance(args, dict):
            raise _message(400, "Not a valid rison argument")
    for spec in args.get("filters") or []:
        if not isinstance(spec, dict) or {"col", "opr", "value"} - spec.keys():
            raise _message(400, {"filters": {"0": {"_schema": ["Invalid filter."]}}})
        column, operator = spec["col"], spec["opr"]
        kind = searchable.get(column)
        if kind is None or operator not in _OPERATORS[kind]:
            raise _message(400, f"Filter column: {column} not allowed to filter")
        rows = [row for row in rows if _matches(row, column, operator, spec["value"])]
    order_column = args.get("order_column")
    if order_column is not None:
        if order_column not in searchable or searchable[order_column] != "eq":
            raise _message(400, f"Cannot order by column: {order_column}")
        reverse = args.get("order_direction", "asc") == "desc"
        rows = sorted(rows, key=lambda r: (r.get(order_column) is None, r.get(order_column)), reverse=reverse)
    count = len(rows)
    page, page_size = args.get("page"), args.get("page_size")
    size = DEFAULT_PAGE_SIZE if page_size is None else int(page_size)
    if size < 0 or size > MAX_PAGE_SIZE:
        size = MAX_PAGE_SIZE
    start = int(page or 0) * size
    rows = rows[start : start + size]
    result = [_select(row, columns) for row in rows]
    return {
        "count": count,
        "ids": [row["id"] for row in rows],
        "result": result,
        "list_columns": columns,
        "list_title": title,
        "order_columns": [c for c, kind in searchable.items() if kind == "eq"],
    }


def _select(row: dict[str, Any], columns: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for column in columns:
        head, _, tail = column.partition(".")
        value = row.get(head)
        if not tail:
            out[head] = copy.deepcopy(value)
        elif isinstance(value, list):
            existing = out.setdefault(head, [{} for _ in value])
            for target, item in zip(existing, value, strict=True):
                target[tail] = item.get(tail)
        elif isinstance(value, dict):
            out.setdefault(head, {})[tail] = value.get(tail)
        else:
            out[head] = None
    return out
