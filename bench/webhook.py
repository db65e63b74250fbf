"""Warm in-process latency of the Stripe webhook (docs/principles.md §7: p95 ≤ 30 ms for verify, record, start).

The real ``lambda_handler`` of ``functions.payments.webhook`` is called as Lambda calls it, on the
shared connection whose cursors count statements. Every timed request is a new signed
``checkout.session.completed`` event for a new PENDING payment of its own user, so each one takes
the whole path: verify the signature, claim the event, lock and update the payment, lock the
account, write the outbox row, audit, commit, then carry out the outbox row: StartExecution of the
enrollment workflow (moto's Step Functions on loopback, the bench's moto server). A second row
re-delivers the same events: the duplicate path (claim, find it processed).
A third times the same StartExecution call alone, to show how much of the first is moto's.

The users and PENDING payments are inserted with SQL before the clock starts; events are built and
signed outside the timed region. moto is told not to *run* the executions during the section (it
would run each in a thread of this process, competing with the timed requests, which a Lambda
environment never sees); StartExecution itself is the same call either way.
"""

from __future__ import annotations

import json
import os
import secrets
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from bench import config
from bench.sqlcount import StatementCounter
from bench.stats import summary

METHOD, PATH = "POST", "/api/payments/webhook/"
FUNCTION = "apranova-payments-webhook"
TRACK, AMOUNT_CENTS = "DP", 49900
SENDER, OPS = "no-reply@apranova.bench", "ops@apranova.bench"
# The services the webhook reaches, pointed at the bench's moto server by their own endpoint
# variables (whatever the global AWS_ENDPOINT_URL says).
SERVICE_ENDPOINTS = ("SSM", "SFN", "SES", "SESV2")


@dataclass
class WebhookResult:
    name: str
    expected: str  # what every request must answer: "<status> <outcome>"
    p95_ms: float | None = None  # None: reported, no target
    error: str | None = None
    latency_ms: dict[str, float] = field(default_factory=dict)
    statements: dict[str, float] = field(default_factory=dict)
    outcomes: dict[str, int] = field(default_factory=dict)  # "200 enrollment_started": n
    times_ms: list[float] = field(default_factory=list, repr=False)
    counts: list[int] = field(default_factory=list, repr=False)

    def add(self, outcome: str, elapsed_ms: float, statements: int | None) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
        self.times_ms.append(elapsed_ms)
        if statements is not None:
            self.counts.append(statements)

    def finish(self) -> None:
        if self.times_ms:
            self.latency_ms = summary(self.times_ms)
        if self.counts:
            mean = round(sum(self.counts) / len(self.counts), 3)
            self.statements = {"min": min(self.counts), "max": max(self.counts), "mean": mean}

    @property
    def requests(self) -> int:
        return len(self.times_ms)

    @property
    def failures(self) -> int:
        return sum(n for key, n in self.outcomes.items() if key != self.expected)

    @property
    def passed(self) -> bool | None:
        """None when the row has no target and every request answered as expected."""
        if self.error or self.failures or not self.requests:
            return False
        if self.p95_ms is None:
            return None
        return self.latency_ms["p95"] <= self.p95_ms

    def as_json(self) -> dict[str, Any]:
        return {
            "expected": self.expected,
            "requests": self.requests,
            "failures": self.failures,
            "error": self.error,
            "latency_ms": {k: round(v, 4) for k, v in self.latency_ms.items()},
            "statements_per_request": self.statements or None,
            "outcomes": self.outcomes,
            "target_p95_ms": self.p95_ms,
            "pass": self.passed,
        }


@dataclass(frozen=True)
class Pending:
    payment_id: str
    user_id: str
    session_id: str


def checkout_completed(pending: Pending) -> str:
    """The body of a paid ``checkout.session.completed`` event for ``pending``, as Stripe sends it."""
    event = {
        "id": f"evt_{uuid.uuid4().hex[:24]}",
        "object": "event",
        "api_version": "2025-08-27.basil",
        "created": int(time.time()),
        "type": "checkout.session.completed",
        "data": {
            "object": {
                "id": pending.session_id,
                "object": "checkout.session",
                "payment_status": "paid",
                "status": "complete",
                "payment_intent": f"pi_{uuid.uuid4().hex[:24]}",
                "metadata": {"payment_id": pending.payment_id, "user_id": pending.user_id, "track": TRACK},
            }
        },
    }
    return json.dumps(event)


def outcome_key(response: dict[str, Any]) -> str:
    """``"<status> <outcome>"`` of a handler response (``"<status> <error code>"`` for an error)."""
    status = response.get("statusCode")
    try:
        body = json.loads(response.get("body") or "{}")
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    detail = body.get("outcome") or (body.get("error") or {}).get("code") or "no outcome"
    return f"{status} {detail}"


def insert_pending(database_url: str, n: int) -> list[Pending]:
    """``n`` verified students, each with one PENDING checkout for the track (one live payment per
    user and track is allowed, so each payment needs its own user)."""
    import psycopg

    run = uuid.uuid4().hex[:8]
    rows = [Pending(str(uuid.uuid4()), str(uuid.uuid4()), f"cs_bench_{run}_{i:05d}") for i in range(n)]
    with psycopg.connect(database_url, autocommit=True) as conn, conn.transaction(), conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO users (id, email, name, email_verified) VALUES (%s, %s, %s, true)",
            [(p.user_id, f"bench.payer.{run}.{i}@example.com", f"Bench Payer {i}") for i, p in enumerate(rows)],
        )
        cur.executemany(
            "INSERT INTO payments (id, user_id, track, amount_cents, currency, kind, idempotency_key,"
            " stripe_checkout_session_id) VALUES (%s, %s, %s, %s, 'USD', 'CHECKOUT', %s, %s)",
            [
                (p.payment_id, p.user_id, TRACK, AMOUNT_CENTS, f"bench-{run}-{i}", p.session_id)
                for i, p in enumerate(rows)
            ],
        )
    return rows


def _reset_caches() -> None:
    from aws_lambda_powertools.utilities import parameters

    from apranova import alerts, cognito, mail, workflows
    from functions.payments import config as payment_config
    from functions.payments import webhook

    payment_config.settings.cache_clear()
    parameters.clear_caches()
    mail.reset()
    alerts.reset()
    workflows.reset()
    cognito.reset()
    webhook._deps.cache_clear()


@contextmanager
def webhook_stack(moto_url: str) -> Iterator[str]:
    """The webhook's settings for the run, yielding its signing secret (kept in moto's SSM) with
    an enrollment state machine in moto's Step Functions; environment, caches and moto's
    configuration put back afterwards."""
    import pytest
    from moto.core.config import default_user_config

    from local import moto_stack

    secret = "whsec_" + secrets.token_hex(16)
    name = f"/apranova/bench-{uuid.uuid4().hex[:6]}/stripe/webhook-secret"
    moto_stack.client("ssm", moto_url).put_parameter(Name=name, Value=secret, Type="SecureString", Overwrite=True)
    moto_stack.client("ses", moto_url).verify_email_identity(EmailAddress=SENDER)
    env = {
        "STRIPE_WEBHOOK_SECRET_PARAM": name,
        "EMAIL_SENDER": SENDER,
        "OPS_EMAIL": OPS,
        **{f"AWS_ENDPOINT_URL_{service}": moto_url for service in SERVICE_ENDPOINTS},
    }
    try:
        with pytest.MonkeyPatch.context() as mp:
            # StartExecution against moto's plain backend (executions recorded, not run); the state
            # machines must be created in the backend the calls will use, so after the switch. The
            # server runs in this process (bench/identity.py): its configuration is this process's.
            mp.setitem(default_user_config, "stepfunctions", {"execute_state_machine": False})
            sfn = moto_stack.client("stepfunctions", moto_url)
            role = f"arn:aws:iam::{moto_stack.ACCOUNT_ID}:role/apranova-bench-states"
            definition = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}})
            suffix = uuid.uuid4().hex[:6]
            for kind in ("ENROLLMENT", "DEPROVISION"):
                created = sfn.create_state_machine(
                    name=f"bench-{kind.lower()}-{suffix}", definition=definition, roleArn=role
                )
                env[f"{kind}_STATE_MACHINE_ARN"] = created["stateMachineArn"]
            for key, value in env.items():
                mp.setenv(key, value)
            _reset_caches()
            yield secret
    finally:
        _reset_caches()


@contextmanager
def _logs_discarded() -> Iterator[None]:
    """The function's log lines (one per event) are still formatted and written, to /dev/null
    rather than over the bench's table."""
    import logging

    from apranova.observability import logger

    handler = logger.registered_handler
    if not isinstance(handler, logging.StreamHandler):
        yield
        return
    with open(os.devnull, "w") as devnull:
        previous = handler.setStream(devnull)
        try:
            yield
        finally:
            handler.setStream(previous)


def measure(
    moto_url: str,
    database_url: str,
    counter: StatementCounter,
    warmup: int = config.WEBHOOK_WARMUP_CALLS,
    timed: int = config.WEBHOOK_TIMED_CALLS,
) -> list[WebhookResult]:
    """Rows: new events (the target), the same events again, and StartExecution on its own (how
    much of the first row is moto's side of the call)."""
    rows = [
        WebhookResult("new event: enrollment started", "200 enrollment_started", config.WEBHOOK_P95_MS),
        WebhookResult("same event again: duplicate", "200 duplicate"),
        WebhookResult("StartExecution alone (moto)", "started"),
    ]
    try:
        with webhook_stack(moto_url) as signing_secret, _logs_discarded():
            _measure(signing_secret, database_url, counter, warmup, timed, *rows)
    except Exception as error:  # noqa: BLE001 - a section that could not run says why; the bench goes on
        for row in rows:
            row.error = row.error or f"{type(error).__name__}: {error}"
    for row in rows:
        row.finish()
    return rows


def _measure(
    signing_secret: str,
    database_url: str,
    counter: StatementCounter,
    warmup: int,
    timed: int,
    fresh: WebhookResult,
    duplicate: WebhookResult,
    direct: WebhookResult,
) -> None:
    from apranova import db, workflows
    from apranova.workflow_inputs import EnrollmentInput
    from functions.payments import webhook
    from functions.payments.config import settings
    from local.events import LambdaContext, http_api_event
    from local.stripe_emulator.app import sign_payload

    pending = insert_pending(database_url, warmup + timed)
    payloads = [checkout_completed(p) for p in pending]
    connection = db.connection()

    def call(payload: str, result: WebhookResult | None) -> None:
        # The signed event is Stripe's and API Gateway's work: built before the clock starts.
        signature = sign_payload(payload, signing_secret)
        event = http_api_event(
            METHOD, PATH, body=payload, headers={"stripe-signature": signature, "content-type": "application/json"}
        )
        context = LambdaContext(FUNCTION)
        counter.reset()
        started = time.perf_counter_ns()
        try:
            response = webhook.lambda_handler(event, context)
        except Exception as error:  # noqa: BLE001 - counted as a failure, the run goes on
            outcome = f"raised {type(error).__name__}"
        else:
            outcome = outcome_key(response)
        elapsed = time.perf_counter_ns() - started
        if result is not None:
            result.add(outcome, elapsed / 1e6, counter.count)

    for payload in payloads[:warmup]:
        call(payload, None)
    for payload in payloads[warmup:]:
        call(payload, fresh)
    recorded = _started_enrollments(database_url, [p.payment_id for p in pending[warmup:]])
    if recorded != fresh.outcomes.get(fresh.expected, 0):
        fresh.error = f"{recorded} timed payments have an enrollment execution recorded"
    for payload in payloads[:warmup]:  # the duplicate path, warmed on the warm-up events
        call(payload, None)
    for payload in payloads[warmup:]:
        call(payload, duplicate)
    if db.connection() is not connection:
        fresh.error = duplicate.error = "the connection was reopened during the run (a database error?)"

    # The same StartExecution the handler makes (same client, the same input contract the webhook's
    # outbox builds), with nothing around it.
    arn = settings().enrollment_state_machine_arn
    assert arn  # set by webhook_stack
    for n in range(warmup + timed):
        p = pending[n]
        payload = EnrollmentInput.paid({"id": p.payment_id, "user_id": p.user_id, "track": TRACK})
        started_ns = time.perf_counter_ns()
        try:
            _, new = workflows.start(arn, f"bench-direct-{p.payment_id}", payload)
        except Exception as error:  # noqa: BLE001 - counted as a failure
            outcome = f"raised {type(error).__name__}"
        else:
            outcome = "started" if new else "already existed"
        elapsed = time.perf_counter_ns() - started_ns
        if n >= warmup:
            direct.add(outcome, elapsed / 1e6, None)


def _started_enrollments(database_url: str, payment_ids: list[str]) -> int:
    """Timed payments that ended SUCCEEDED with the execution StartExecution returned recorded."""
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM payments WHERE id = ANY(%s::uuid[]) AND status = 'SUCCEEDED'"
            " AND enrollment_execution IS NOT NULL",
            (payment_ids,),
        ).fetchone()
    return int(row[0]) if row else 0
