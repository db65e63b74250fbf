"""The forward-only migration runner.

Files ``migrations/NNNN_name.sql`` are applied in the order of their number, each in its own
transaction together with its ``schema_migrations`` row, under a PostgreSQL advisory lock so that
concurrent runners (two deploys, a deploy and a developer) serialise. Applied files are immutable:
a changed checksum or a missing file stops the run before anything is applied.

A migration file runs inside a transaction, so it must not use statements that cannot
(``CREATE INDEX CONCURRENTLY``, ``VACUUM``); tables here are small enough not to need them.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.rows import tuple_row

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"
NAME_PATTERN = re.compile(r"^\d{4}_[a-z0-9_]+\.sql$")
# pg_advisory_lock key: the bytes of "apranova" as a signed 64-bit integer.
LOCK_KEY = int.from_bytes(b"apranova", "big")

_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    name       text        PRIMARY KEY,
    checksum   text        NOT NULL CHECK (checksum ~ '^[0-9a-f]{64}$'),
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


class MigrationError(RuntimeError):
    """A migration cannot be applied; the message names the file."""


@dataclass(frozen=True)
class Migration:
    number: int
    name: str
    content: bytes  # read once: what is checksummed is what runs

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


def discover(directory: Path | None = None) -> list[Migration]:
    """The migration files of ``directory``, sorted by number; refuses bad or duplicate numbers."""
    directory = directory or MIGRATIONS_DIR
    if not directory.is_dir():
        raise MigrationError(f"no migrations directory at {directory}")
    found: dict[int, Migration] = {}
    for path in directory.iterdir():
        if not path.name.endswith(".sql"):
            continue  # READMEs and the like
        if not path.is_file() or not NAME_PATTERN.match(path.name):
            raise MigrationError(f"{path.name}: migration file names must match {NAME_PATTERN.pattern}")
        number = int(path.name[:4])
        if number in found:
            raise MigrationError(f"{path.name}: number {number:04d} is also used by {found[number].name}")
        found[number] = Migration(number, path.name, path.read_bytes())
    return [found[number] for number in sorted(found)]


def migrate(conn: psycopg.Connection, directory: Path | None = None) -> list[str]:
    """Apply the pending migrations of ``directory`` (the repository's by default); return their names.

    ``conn`` must be in autocommit mode: each file gets its own transaction, and the advisory lock
    is held by the session for the whole run.
    """
    if not conn.autocommit:
        raise MigrationError("migrate() needs a connection in autocommit mode")
    migrations = discover(directory)
    with conn.cursor(row_factory=tuple_row) as cur:
        # Migrations may take longer than the application's statement timeout, and waiting for the
        # lock must not time out either; the Lambda's own timeout bounds the run.
        cur.execute("SELECT current_setting('statement_timeout')")
        (previous_timeout,) = cur.fetchone() or ("0",)
        cur.execute("SET statement_timeout = 0")
        cur.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        try:
            cur.execute(_CREATE_TABLE)
            return _apply_pending(conn, cur, migrations)
        finally:
            if not conn.broken:
                cur.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
                cur.execute("SELECT set_config('statement_timeout', %s, false)", (previous_timeout,))


def _apply_pending(conn: psycopg.Connection, cur: psycopg.Cursor, migrations: list[Migration]) -> list[str]:
    cur.execute("SELECT name, checksum FROM schema_migrations")
    applied: dict[str, str] = dict(cur.fetchall())
    on_disk = {m.name: m for m in migrations}

    missing = sorted(set(applied) - set(on_disk))
    if missing:
        raise MigrationError(f"{missing[0]}: applied to this database but missing from the migrations directory")
    for name, checksum in applied.items():
        if on_disk[name].checksum != checksum:
            raise MigrationError(f"{name}: changed after it was applied (migrations are forward-only; add a new file)")

    pending = [m for m in migrations if m.name not in applied]
    last_applied = max((on_disk[name].number for name in applied), default=0)
    for migration in pending:
        if migration.number < last_applied:
            raise MigrationError(
                f"{migration.name}: numbered before a migration that is already applied;"
                f" renumber it after {last_applied:04d}"
            )

    done: list[str] = []
    for migration in pending:
        try:
            with conn.transaction():
                cur.execute(migration.content)
                cur.execute(
                    "INSERT INTO schema_migrations (name, checksum) VALUES (%s, %s)",
                    (migration.name, migration.checksum),
                )
        except psycopg.Error as error:
            raise MigrationError(f"{migration.name}: {type(error).__name__}: {error}".rstrip()) from error
        done.append(migration.name)
    return done


def grant_app_role(conn: psycopg.Connection, role: str, *, rds_iam: bool = True) -> None:
    """Create the API functions' login role if needed and grant it what the application does.

    In AWS the functions sign in through RDS Proxy with IAM tokens, so the role has no password and
    is a member of ``rds_iam``. It gets data access only: no DDL, no TRUNCATE, and read-only access
    to ``schema_migrations``. The payments and audit triggers still apply to it.
    """
    ident = sql.Identifier(role)
    with conn.transaction(), conn.cursor(row_factory=tuple_row) as cur:
        cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,))
        if cur.fetchone() is None:
            cur.execute(sql.SQL("CREATE ROLE {} LOGIN").format(ident))
        if rds_iam:
            cur.execute(sql.SQL("GRANT rds_iam TO {}").format(ident))
        cur.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(conn.info.dbname), ident))
        cur.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(ident))
        cur.execute(sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {}").format(ident))
        cur.execute(sql.SQL("REVOKE INSERT, UPDATE, DELETE ON schema_migrations FROM {}").format(ident))
        cur.execute(sql.SQL("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {}").format(ident))
