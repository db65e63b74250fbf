"""One lazily opened PostgreSQL connection per warm Lambda environment.

No pool: a Lambda environment serves one request at a time, and RDS Proxy does the pooling.
``prepare_threshold=None`` keeps psycopg from server-side prepared statements, which would pin
the proxy's connection. The connection runs in autocommit mode: single reads need no transaction,
and every use case that writes opens one explicitly with ``transaction()``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.rows import dict_row

from apranova.settings import DatabaseSettings, database_settings

_connection: psycopg.Connection[dict[str, Any]] | None = None


def _conninfo(settings: DatabaseSettings) -> dict[str, Any]:
    options = f"-c statement_timeout={settings.db_statement_timeout_ms}"
    if settings.database_url:
        return {"conninfo": settings.database_url, "options": options}
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
        "sslmode": "require",
        "options": options,
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
    global _connection
    if _connection is None or _connection.closed or _connection.broken:
        if _connection is not None:
            _connection.close()
        _connection = connect()
    return _connection


def reset() -> None:
    """Close the environment's connection (tests and settings changes)."""
    global _connection
    if _connection is not None:
        _connection.close()
    _connection = None


@contextmanager
def transaction() -> Iterator[psycopg.Cursor[dict[str, Any]]]:
    """A cursor inside one transaction: committed on success, rolled back on any exception."""
    conn = connection()
    with conn.transaction(), conn.cursor() as cur:
        yield cur
