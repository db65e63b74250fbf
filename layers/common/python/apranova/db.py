"""One lazily opened PostgreSQL connection per warm Lambda environment.

No pool: a Lambda environment serves one request at a time, and RDS Proxy does the pooling.
Nothing here may pin the proxy's connection to this client or be refused by it: no startup
``options`` (RDS Proxy refuses the parameter; the statement timeout is the login role's default,
set by migration 0014), ``prepare_threshold=None`` keeps psycopg from server-side prepared
statements, and no session state is set (only ``SET LOCAL`` and transaction-scoped locks, inside a
transaction). The connection runs in autocommit mode: single reads need no transaction, and every
use case that writes opens one explicitly with ``transaction()``.

The local stack runs every function in one process, several requests at once: each of its
environments (local/environments.py) has its own connection with ``function_slot(name)``, as each
Lambda environment has its own, and connects through PgBouncer, which refuses what the proxy does.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import psycopg
from psycopg.rows import dict_row

from apranova import tls
from apranova.settings import DatabaseSettings, database_settings

_connections: dict[str, psycopg.Connection[dict[str, Any]]] = {}
_slot: ContextVar[str] = ContextVar("apranova_db_slot", default="")


def _conninfo(settings: DatabaseSettings) -> dict[str, Any]:
    if settings.database_url:
        return {"conninfo": settings.database_url}
    import boto3  # only in AWS, where the proxy wants an IAM token instead of a password

    token = boto3.client("rds", region_name=settings.aws_region).generate_db_auth_token(
        DBHostname=settings.db_host, Port=settings.db_port, DBUsername=settings.db_user
    )
    return {
        "host": settings.db_host,
        "port": settings.db_port,
        "dbname": settings.db_name,
        "user": settings.db_user,
        "password": token,
        **tls.verified(),  # verify-full against the RDS CA bundle the layer ships
    }


def connect(settings: DatabaseSettings | None = None) -> psycopg.Connection[dict[str, Any]]:
    settings = settings or database_settings()
    return psycopg.connect(
        **_conninfo(settings),
        autocommit=True,
        prepare_threshold=None,
        row_factory=dict_row,
        connect_timeout=settings.db_connect_timeout,
        application_name="apranova",
    )


def connection() -> psycopg.Connection[dict[str, Any]]:
    """The environment's connection, reopened when it was closed or broke on the last request."""
    key = _slot.get()
    current = _connections.get(key)
    if current is None or current.closed or current.broken:
        if current is not None:
            current.close()
        current = _connections[key] = connect()
    return current


def release(slot: str) -> None:
    """Close one environment's connection (a local environment that is retired)."""
    current = _connections.pop(slot, None)
    if current is not None:
        current.close()


def reset() -> None:
    """Close the environment's connections (tests and settings changes)."""
    while _connections:
        _connections.popitem()[1].close()


@contextmanager
def function_slot(name: str) -> Iterator[None]:
    """Within this block (and the thread running it) ``connection()`` is ``name``'s own."""
    token = _slot.set(name)
    try:
        yield
    finally:
        _slot.reset(token)


@contextmanager
def transaction() -> Iterator[psycopg.Cursor[dict[str, Any]]]:
    """A cursor inside one transaction: committed on success, rolled back on any exception."""
    conn = connection()
    with conn.transaction(), conn.cursor() as cur:
        yield cur


def one(cur: psycopg.Cursor[Any]) -> dict[str, Any]:
    """The row of a statement that always returns exactly one (``INSERT ... RETURNING``, an
    aggregate, a ``SELECT`` of functions): ``fetchone()`` typed as such. No row is a programming
    error, not a 404."""
    row = cur.fetchone()
    if row is None:
        raise LookupError("the statement returned no row")
    return row
