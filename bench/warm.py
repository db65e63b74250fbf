"""Warm in-process latency of the routes, against a real, migrated and seeded PostgreSQL database.

Each route's handler is called exactly as Lambda calls it (an API Gateway HTTP API 2.0 event and a
context) in this process, on the shared layer's own connection, whose cursors count statements.
"""

from __future__ import annotations

import importlib
import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import config
from bench.config import BenchRoute
from bench.sqlcount import StatementCounter
from bench.stats import summary

ROOT = Path(__file__).resolve().parent.parent


def missing_pieces() -> str | None:
    """Why the database sections cannot run (the migration runner or seed is not there), or None."""
    try:
        importlib.import_module("functions.migrate.runner")
        importlib.import_module("functions.migrate.seed")
    except ImportError as error:
        return f"the migration runner or seed is missing ({error})"
    return None


@contextmanager
def bench_database() -> Iterator[str]:
    """A fresh database on the local server (found as the tests find it), migrated and seeded; dropped after."""
    import psycopg

    from functions.migrate.runner import migrate
    from functions.migrate.seed import seed_database
    from local.postgres import find_server

    server = find_server(ROOT / ".local" / "bench-postgres")
    name = f"apranova_bench_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    url = server.create_database(name, exist_ok=False)
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            migrate(conn)
            seed_database(conn)
        yield url
    finally:
        from apranova import db

        db.reset()
        server.drop_database(name)


def use_database(url: str, counter: StatementCounter) -> None:
    """Point the shared layer at ``url`` and make its connection count statements."""
    from apranova import db, settings

    os.environ["DATABASE_URL"] = url
    settings.database_settings.cache_clear()
    db.reset()
    db.connection().cursor_factory = counter.cursor_class()


@dataclass
class LatencyResult:
    route: BenchRoute
    function: str | None = None
    error: str | None = None
    latency_ms: dict[str, float] = field(default_factory=dict)
    statements: dict[str, float] = field(default_factory=dict)
    statuses: dict[str, int] = field(default_factory=dict)
    # The raw samples, for callers that pool several runs (bench/scale.py); not in the JSON.
    times_ms: list[float] = field(default_factory=list, repr=False)
    counts: list[int] = field(default_factory=list, repr=False)

    @property
    def passed(self) -> bool | None:
        """None when the route has no target (reported only)."""
        if self.error or set(self.statuses) != {"200"}:
            return False
        if self.route.p95_ms is None and self.route.max_statements is None:
            return None
        fast = self.route.p95_ms is None or self.latency_ms["p95"] <= self.route.p95_ms
        lean = self.route.max_statements is None or self.statements["max"] <= self.route.max_statements
        return fast and lean

    def as_json(self) -> dict[str, Any]:
        return {
            "method": self.route.method,
            "path": self.route.path,
            "function": self.function,
            "authenticated": self.route.claims is not None,
            "error": self.error,
            "latency_ms": {k: round(v, 4) for k, v in self.latency_ms.items()},
            "statements_per_request": self.statements,
            "statuses": self.statuses,
            "target_p95_ms": self.route.p95_ms,
            "target_max_statements": self.route.max_statements,
            "pass": self.passed,
        }


def measure(
    route: BenchRoute, counter: StatementCounter, warmup: int = config.WARMUP_CALLS, timed: int = config.TIMED_CALLS
) -> LatencyResult:
    from apranova import db, routes
    from local.events import LambdaContext, http_api_event

    result = LatencyResult(route)
    table_route, _ = routes.match(route.method, route.path)
    if table_route is None:
        result.error = "not in the route table"
        return result
    result.function = table_route.function
    handler = importlib.import_module(routes.handler_module(table_route.function)).lambda_handler
    connection = db.connection()

    # Events are built before the clock starts: building them is API Gateway's work, not ours.
    def events(n: int) -> list[tuple[dict[str, Any], LambdaContext]]:
        return [
            (
                http_api_event(
                    route.method, route.path, claims=route.claims, query=route.query or None, body=route.body
                ),
                LambdaContext(table_route.function),
            )
            for _ in range(n)
        ]

    for event, context in events(warmup):
        handler(event, context)
    times: list[float] = []
    counts: list[int] = []
    for event, context in events(timed):
        counter.reset()
        started = time.perf_counter_ns()
        response = handler(event, context)
        elapsed = time.perf_counter_ns() - started
        times.append(elapsed / 1e6)
        counts.append(counter.count)
        status = str(response["statusCode"])
        result.statuses[status] = result.statuses.get(status, 0) + 1
    if db.connection() is not connection:
        result.error = "the connection was reopened during the run (a database error?)"
    result.times_ms, result.counts = times, counts
    result.latency_ms = summary(times)
    result.statements = {"min": min(counts), "max": max(counts), "mean": round(sum(counts) / len(counts), 3)}
    return result
