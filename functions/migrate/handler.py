"""The deploy-time Lambda a CDK Trigger runs before new API code goes live: migrate, seed, dataset.

In AWS it signs in to the instance as the master user whose credentials are in Secrets Manager
(``DB_SECRET_ARN``), makes sure the API's IAM-authenticated role (``DB_APP_USER``) exists with the
grants it needs, and uploads the course datasets to ``DATASETS_BUCKET``. Elsewhere it uses
``DATABASE_URL`` like every function. Any failure raises, which fails the deployment.

The students' server: the admin database ``STUDENTS_DB_NAME`` exists and the maintenance databases
are closed to PUBLIC there. That is the application's instance when the stage shares it, else the
students' own instance, reached as its master user (``STUDENTS_DB_SECRET_ARN``), with TLS verified.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import psycopg

from apranova import secrets, tls
from apranova.db import connect
from apranova.observability import entry, logger
from apranova.settings import DatabaseSettings, load
from functions.migrate.dataset import upload_dataset
from functions.migrate.maintenance import close_maintenance_databases
from functions.migrate.runner import grant_app_role, migrate
from functions.migrate.seed import seed_database
from functions.migrate.tool_accounts import ensure_tool_database, publish_admin_credentials

# Migrations may run longer than an API request may; the Lambda timeout bounds them.
STATEMENT_TIMEOUT_MS = 240_000
# Seconds between logins while the master password is refused: a rotation moves the secret's current
# version seconds after it changes the password on the server.
PASSWORD_RETRY_DELAYS = (1, 2, 4, 8, 15)


def _secret_settings(secret_arn: str, dbname: str | None, force: bool) -> DatabaseSettings:
    """An RDS master secret, read now (``force``: not from the cache), as settings over TLS verified
    against the RDS CA bundle the layer ships."""
    from psycopg.conninfo import make_conninfo

    secret = secrets.secrets_manager_json(secret_arn, force=force)
    url = make_conninfo(
        host=secret["host"],
        port=secret.get("port", 5432),
        dbname=dbname or secret.get("dbname"),
        user=secret["username"],
        password=secret["password"],
        **tls.verified(),
    )
    return DatabaseSettings(database_url=url, db_statement_timeout_ms=STATEMENT_TIMEOUT_MS)


def _settings(force: bool = False) -> DatabaseSettings:
    """``DATABASE_URL`` locally; in AWS the application instance's master secret."""
    secret_arn = os.environ.get("DB_SECRET_ARN")
    if not secret_arn:
        return load(DatabaseSettings).model_copy(update={"db_statement_timeout_ms": STATEMENT_TIMEOUT_MS})
    return _secret_settings(secret_arn, os.environ.get("DB_NAME"), force)


def _connect(settings: Callable[[bool], DatabaseSettings] = _settings, key: str = "db-master") -> Any:
    """The master secret may rotate between the read and the login (first deploy, scheduled
    rotation): a refused password is read again at once, and while a rotation is in progress (the
    server has the new password, the secret's current version does not yet) a few times more."""
    for delay in (*PASSWORD_RETRY_DELAYS, None):
        try:
            return secrets.use_with_rotation(key, settings, connect, rejected=secrets.postgres_password_rejected)
        except psycopg.OperationalError as error:
            if delay is None or not secrets.postgres_password_rejected(error):
                raise
            logger.warning("the master password was refused: reading the secret again shortly", extra={"delay": delay})
            time.sleep(delay)
    raise AssertionError("unreachable")


def ensure_database(conn: Any, name: str) -> bool:
    """Creates database ``name`` on the connection's server if missing; True when it was created.

    The students' database (one role and schema per DP student) lives beside the application's.
    ``conn`` must be in autocommit: CREATE DATABASE cannot run in a transaction.
    """
    from psycopg import errors, sql

    if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None:
        return False
    try:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except errors.DuplicateDatabase:  # a concurrent deploy made it
        return False
    return True


def prepare_students_server(secret_arn: str, name: str) -> list[str]:
    """The students' own instance: its admin database ``name`` exists (RDS makes it with the
    instance; a restore or a hand-made instance may lack it) and its maintenance databases are
    closed to PUBLIC. Signs in to ``name``, or to ``postgres`` while ``name`` does not exist yet.
    Returns the maintenance databases still open."""

    def into(dbname: str) -> Callable[[bool], DatabaseSettings]:
        return lambda force: _secret_settings(secret_arn, dbname, force)

    try:
        conn = _connect(into(name), "students-db-master")
    except psycopg.OperationalError as error:
        if f'database "{name}" does not exist' not in str(error):
            raise
        conn = _connect(into("postgres"), "students-db-master")
    with conn:
        ensure_database(conn, name)
        return close_maintenance_databases(conn)


def prepare_tool_databases(conn: Any) -> list[str]:
    """Each built tool's role and database (``TOOL_DATABASES``: tool → secret ARN); their names."""
    import json

    made = []
    for tool, secret_arn in json.loads(os.environ.get("TOOL_DATABASES") or "{}").items():
        secret = secrets.secrets_manager_json(secret_arn, force=True)
        ensure_tool_database(conn, role=secret["username"], password=secret["password"], database=secret["dbname"])
        made.append(f"{tool}:{secret['dbname']}")
    return made


def publish_tool_credentials() -> list[str]:
    """The built tools' admin credentials into the SSM parameters the provisioning steps read."""
    import json

    admin = json.loads(os.environ.get("TOOL_ADMIN_SECRETS") or "{}")
    if not admin:
        return []
    import boto3

    ssm = boto3.client("ssm")
    names = []
    for tool, secret_arn in admin.items():
        secret = secrets.secrets_manager_json(secret_arn, force=True)
        names += publish_admin_credentials(ssm, os.environ["SSM_PREFIX"], tool, secret)
    return names


@entry
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    students = os.environ.get("STUDENTS_DB_NAME")
    students_secret = os.environ.get("STUDENTS_DB_SECRET_ARN")
    with _connect() as conn:
        if students and not students_secret:  # the students share the application's instance
            ensure_database(conn, students)
        # Closed on the application's instance in either case: nobody but us should sign in there.
        still_open = close_maintenance_databases(conn)
        if students and students_secret:
            still_open += [f"students:{db}" for db in prepare_students_server(students_secret, students)]
        if still_open:
            logger.warning("maintenance databases still open to PUBLIC", extra={"databases": still_open})
        applied = migrate(conn)
        app_user = os.environ.get("DB_APP_USER")
        if app_user:
            grant_app_role(conn, app_user)
        seeded = seed_database(conn)
        tools = prepare_tool_databases(conn)
    bucket = os.environ.get("DATASETS_BUCKET")
    dataset_key = None
    if bucket:
        import boto3

        dataset_key = upload_dataset(boto3.client("s3"), bucket)
    published = publish_tool_credentials()
    result = {
        "applied": applied,
        "seeded": seeded,
        "dataset_key": dataset_key,
        "open_to_public": still_open,
        "tool_databases": tools,
        "tool_parameters": published,
    }
    logger.info("migrations, seed and datasets done", extra=result)
    return result
