"""What AWS does, the local stack does (docs/principles.md §11): the functions reach PostgreSQL through a
PgBouncer that refuses what RDS Proxy refuses, and one function serves requests at once, each in an
environment with its own connection, as Lambda does.

Overlap is shown by events, never by timing: a test holds a lock on a table the function reads,
and watches PostgreSQL until both requests wait on that lock at the same time, each in a server
session of its own; then it lets go and both answer.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
import requests
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import dict_row

from apranova import db
from local import moto_stack
from local.pooler import PgBouncer
from local.server import LocalApi, serve

# Only a safety net for a broken build: the assertions are about events, not time.
WAIT_LIMIT = 8.0


def test_the_pooler_refuses_a_startup_options_parameter(app_database_url: str) -> None:
    with pytest.raises(psycopg.OperationalError, match="unsupported startup parameter: options"):
        psycopg.connect(app_database_url, options="-c statement_timeout=1000")
    with psycopg.connect(app_database_url, autocommit=True) as accepted:
        assert accepted.execute("SELECT 1").fetchone() == (1,)


def test_the_functions_connect_through_the_pooler_with_the_role_default_timeout(
    pooler: PgBouncer, database_url: str
) -> None:
    db.reset()
    with db.function_slot("fidelity-timeout"):
        connection = db.connection()
        assert connection.info.port == pooler.port
        # No startup option any more: the 10 s comes from the role's default in this database.
        assert connection.execute("SHOW statement_timeout").fetchone()["statement_timeout"] == "10s"
        assert (
            connection.execute("SELECT current_database() AS name").fetchone()["name"]
            == (conninfo_to_dict(database_url)["dbname"])
        )
    db.release("fidelity-timeout")


# --- Lambda concurrency ---------------------------------------------------------------------------


def _waiting_on_tracks(conn: psycopg.Connection[Any], dbname: str) -> list[int]:
    """Server sessions of the functions ("apranova") waiting for a lock in ``dbname``."""
    rows = conn.execute(
        """
        SELECT pid FROM pg_stat_activity
        WHERE datname = %s AND application_name = 'apranova' AND wait_event_type = 'Lock'
        """,
        (dbname,),
    ).fetchall()
    return [r["pid"] for r in rows]


def _overlap_while_tracks_are_locked(database_url: str, start_two: Callable[[], Callable[[], list[Any]]]) -> list[Any]:
    """Locks ``tracks``, starts two calls that read it, waits until both wait on the lock at once
    (two server sessions), lets go, and returns what the calls answered."""
    dbname = conninfo_to_dict(database_url)["dbname"]
    with psycopg.connect(database_url, autocommit=True, row_factory=dict_row) as holder:
        with holder.transaction():
            holder.execute("LOCK TABLE tracks IN ACCESS EXCLUSIVE MODE")
            finish = start_two()
            with psycopg.connect(database_url, autocommit=True, row_factory=dict_row) as watcher:
                deadline = time.monotonic() + WAIT_LIMIT
                waiting: list[int] = []
                while len(waiting) < 2 and time.monotonic() < deadline:
                    waiting = _waiting_on_tracks(watcher, dbname)
                    time.sleep(0.02)
        # The lock is released here: both calls go on.
        assert len(set(waiting)) == 2, f"the two calls never waited at the same time: {waiting}"
        return finish()


@pytest.fixture
def api(database_url: str) -> Iterator[tuple[LocalApi, str]]:
    app = LocalApi(jwt_check=None, openapi=lambda: {}, mailbox=lambda: [])
    server = serve(app, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield app, f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def test_two_slow_requests_to_one_function_run_at_once_each_with_its_own_connection(
    api: tuple[LocalApi, str], database_url: str
) -> None:
    app, url = api
    answers: list[requests.Response] = []

    def start_two() -> Callable[[], list[Any]]:
        def get() -> None:
            answers.append(requests.get(f"{url}/api/curriculum/tracks/", timeout=30))

        threads = [threading.Thread(target=get) for _ in range(2)]
        for thread in threads:
            thread.start()

        def finish() -> list[Any]:
            for thread in threads:
                thread.join(30)
            return answers

        return finish

    answered = _overlap_while_tracks_are_locked(database_url, start_two)
    assert [a.status_code for a in answered] == [200, 200]
    assert all({t["code"] for t in a.json()["items"]} >= {"DP", "FSD"} for a in answered)
    assert app.environments.peak["curriculum"] == 2
    # After the burst the function is back to its one warm environment, which still serves.
    assert requests.get(f"{url}/api/curriculum/tracks/", timeout=10).status_code == 200


def read_tracks(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """A step that reads the tracks through the functions' connection (waits while they are locked)."""
    rows = db.connection().execute("SELECT code FROM tracks ORDER BY code").fetchall()
    return {"tracks": [r["code"] for r in rows], "run": event["run"]}


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    server = moto_stack.MotoServer()
    server.start()
    yield server.url
    server.stop()


def test_the_steps_of_two_executions_run_at_once(moto_url: str, database_url: str) -> None:
    arn = moto_stack.register_function(moto_url, "test-read-tracks", f"{__name__}:read_tracks")
    sfn = moto_stack.client("stepfunctions", moto_url)
    machine = sfn.create_state_machine(
        name="read-tracks-twice",
        definition=json.dumps(
            {
                "StartAt": "Read",
                "States": {
                    "Read": {
                        "Type": "Task",
                        "Resource": "arn:aws:states:::lambda:invoke",
                        "Parameters": {"FunctionName": arn, "Payload.$": "$"},
                        "OutputPath": "$.Payload",
                        "End": True,
                    }
                },
            }
        ),
        roleArn=f"arn:aws:iam::{moto_stack.ACCOUNT_ID}:role/sfn",
    )["stateMachineArn"]

    def start_two() -> Callable[[], list[Any]]:
        executions = [
            sfn.start_execution(stateMachineArn=machine, name=f"run-{run}", input=json.dumps({"run": run}))[
                "executionArn"
            ]
            for run in (1, 2)
        ]

        def finish() -> list[Any]:
            deadline = time.monotonic() + 30
            results = []
            for execution in executions:
                while (described := sfn.describe_execution(executionArn=execution))["status"] == "RUNNING":
                    assert time.monotonic() < deadline, "the execution did not finish"
                    time.sleep(0.05)
                results.append(described)
            return results

        return finish

    results = _overlap_while_tracks_are_locked(database_url, start_two)
    assert [r["status"] for r in results] == ["SUCCEEDED", "SUCCEEDED"]
    outputs = [json.loads(r["output"]) for r in results]
    assert [o["run"] for o in outputs] == [1, 2]
    assert all({"DP", "FSD"} <= set(o["tracks"]) for o in outputs)


# --- nothing session-scoped ---------------------------------------------------------------------


def test_the_long_jobs_hold_a_lease_that_another_environment_sees_and_that_is_let_go(conn) -> None:
    """The purge's hold on a request and the export build's claim were session advisory locks, which
    leak through a transaction pooler; as leases on the row, two environments (two connections
    through the pooler) see each other's hold, and it is gone when the holder lets go."""
    from functions.compliance.erasure.purge import repository as purge_repository
    from functions.compliance.export import repository as export_repository

    user = conn.execute(
        "INSERT INTO users (id, email) VALUES (gen_random_uuid(), %s) RETURNING id::text AS id",
        (f"lease-{uuid.uuid4().hex[:8]}@example.test",),
    ).fetchone()["id"]
    deletion = conn.execute(
        "INSERT INTO deletion_requests (user_id, scheduled_for) VALUES (%s, now()) RETURNING id::text AS id", (user,)
    ).fetchone()["id"]
    export = conn.execute(
        "INSERT INTO data_export_requests (user_id) VALUES (%s) RETURNING id::text AS id", (user,)
    ).fetchone()["id"]
    try:
        with db.function_slot("fidelity-purge-a"), purge_repository.request_lock(deletion) as first:
            assert first
            with db.function_slot("fidelity-purge-b"), purge_repository.request_lock(deletion) as second:
                assert not second
        with db.function_slot("fidelity-purge-b"), purge_repository.request_lock(deletion) as again:
            assert again

        with db.function_slot("fidelity-export-a"):
            assert export_repository.try_claim(export)
            with db.function_slot("fidelity-export-b"):
                assert not export_repository.try_claim(export)
            export_repository.release(export)
        with db.function_slot("fidelity-export-b"):
            assert export_repository.try_claim(export)
            export_repository.release(export)
        leases = conn.execute(
            "SELECT (SELECT purge_lease_until FROM deletion_requests WHERE id = %s) AS purge,"
            " (SELECT build_lease_until FROM data_export_requests WHERE id = %s) AS build",
            (deletion, export),
        ).fetchone()
        assert leases == {"purge": None, "build": None}
    finally:
        for slot in ("fidelity-purge-a", "fidelity-purge-b", "fidelity-export-a", "fidelity-export-b"):
            db.release(slot)
        conn.execute("DELETE FROM deletion_requests WHERE id = %s", (deletion,))  # or the purge would find it
        conn.execute("DELETE FROM users WHERE id = %s", (user,))
