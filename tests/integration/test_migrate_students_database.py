"""The deploy-time migration also makes the students' database beside the application's."""

from __future__ import annotations

import uuid

import psycopg

from functions.migrate.handler import ensure_database


def test_the_students_database_is_created_once(pg_server, database_url: str) -> None:
    name = f"apranova_students_{uuid.uuid4().hex[:8]}"
    try:
        with psycopg.connect(database_url, autocommit=True) as conn:
            assert ensure_database(conn, name) is True
            assert ensure_database(conn, name) is False
            assert conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() == (1,)
    finally:
        pg_server.drop_database(name)
