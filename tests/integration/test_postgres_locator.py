"""PostgreSQL is found the same way by the tests and the local stack, down to a private server."""

from __future__ import annotations

import psycopg
import pytest

from functions.migrate.runner import migrate
from functions.migrate.seed import seed_database
from local import postgres


def test_database_url_wins(monkeypatch, tmp_path):
    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/whatever")
    server = postgres.find_server(tmp_path / "pg")
    assert server.origin == "DATABASE_URL"
    assert psycopg.conninfo.conninfo_to_dict(server.admin_url)["dbname"] == "postgres"


@pytest.mark.slow
def test_without_a_server_an_embedded_postgres_is_started_and_carries_the_whole_schema(monkeypatch, tmp_path):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setattr(postgres, "LOCAL_SERVER", "postgresql://postgres@127.0.0.1:9/postgres")
    server = postgres.find_server(tmp_path / "pg")
    assert server.origin == "embedded"
    url = server.create_database("apranova_embedded")
    with psycopg.connect(url, autocommit=True) as conn:
        assert migrate(conn)
        seed_database(conn)
        assert conn.execute("SELECT count(*) FROM projects").fetchone()[0] == 6
        assert migrate(conn) == []
