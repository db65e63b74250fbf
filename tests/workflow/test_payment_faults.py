"""The money chain under faults, end to end through the webhook's own code and the enrollment state
machine CDK synthesizes (run in moto with the real step handlers, the run's PostgreSQL and the
tools): each fault ends with the student enrolled exactly once.

- the webhook's commit delayed after StartExecution was requested (the defect this chain had:
  RecordPayment read the payment before the commit and failed for good);
- StartExecution failing after the commit, then Stripe's redelivery;
- duplicate, concurrent and late deliveries of the same payment;
- the database dropping every connection while the chain runs.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest

from apranova import alerts, db, mail, workflows
from apranova.workflow_inputs import EnrollmentInput
from functions.payments import outbox, repository, stripe_gateway, webhook_service
from tests.workflow.conftest import WorkflowStack


@pytest.fixture
def chain(wf: WorkflowStack) -> Iterator[WorkflowStack]:
    workflows.reset()
    yield wf
    workflows.reset()


def _deps(wf: WorkflowStack, start_workflow: Any = None) -> webhook_service.Deps:
    return webhook_service.Deps(
        start_workflow=start_workflow or workflows.start,
        enrollment_state_machine_arn=wf.arns["enrollment"],
        deprovision_state_machine_arn=wf.arns["deprovision"],
        cognito=None,  # signed-in payments only: no pay-first account to create
        user_pool_id="",
        client_id="",
        send=mail.send,
        alert=alerts.alert,
        spa_origin="http://spa.test",
        gateway=stripe_gateway,  # never called: nothing here is refunded or expired
    )


def _pending_checkout(wf: WorkflowStack, track: str = "FSD") -> tuple[dict[str, str], str, str]:
    """A signed-in student's open checkout, as the checkout route leaves it: (student, payment, session)."""
    wf.trainer(track)
    student = wf.student()
    session = f"cs_test_{uuid.uuid4().hex}"
    with psycopg.connect(wf.database_url, autocommit=True) as conn:
        (payment_id,) = conn.execute(
            """
            INSERT INTO payments (user_id, track, amount_cents, currency, kind, idempotency_key,
                                  stripe_checkout_session_id)
            SELECT %s, code, price_cents, currency, 'CHECKOUT', %s, %s FROM tracks WHERE code = %s
            RETURNING id::text
            """,
            (student["id"], f"fault-{uuid.uuid4()}", session, track),
        ).fetchone()
    return student, payment_id, session


def _completed(payment_id: str, session: str, student: dict[str, str], track: str = "FSD") -> dict[str, Any]:
    return {
        "id": f"evt_{uuid.uuid4().hex[:24]}",
        "object": "event",
        "created": int(time.time()),
        "type": "checkout.session.completed",
        "data": {
            "object": {
                "id": session,
                "object": "checkout.session",
                "status": "complete",
                "payment_status": "paid",
                "payment_intent": f"pi_{uuid.uuid4().hex[:20]}",
                "metadata": {"payment_id": payment_id, "user_id": student["id"], "track": track},
            }
        },
    }


def _execution(wf: WorkflowStack, payment_id: str) -> str:
    return workflows.execution_arn(wf.arns["enrollment"], outbox.enrollment_name(payment_id))


def _executions(wf: WorkflowStack, payment_id: str) -> list[dict[str, Any]]:
    found = wf.sfn().list_executions(stateMachineArn=wf.arns["enrollment"])["executions"]
    return [e for e in found if e["name"] == outbox.enrollment_name(payment_id)]


def _enrolled_once(wf: WorkflowStack, student: dict[str, str], payment_id: str, track: str = "FSD") -> None:
    result = wf.wait(_execution(wf, payment_id), timeout=180)
    assert result["status"] == "SUCCEEDED", wf.history(result["executionArn"])[-3:]
    assert len(_executions(wf, payment_id)) == 1
    user = wf.row(
        "SELECT u.enrollment_status, u.provisioning_status, t.code FROM users u JOIN tracks t ON t.id = u.track_id"
        " WHERE u.id = %s",
        student["id"],
    )
    assert (user["enrollment_status"], user["provisioning_status"], user["code"]) == ("ENROLLED", "SUCCEEDED", track)
    payment = wf.row("SELECT status, enrollment_execution FROM payments WHERE id = %s", payment_id)
    assert payment == {"status": "SUCCEEDED", "enrollment_execution": _execution(wf, payment_id)}
    assert (
        wf.row("SELECT count(*) AS n FROM payment_outbox WHERE payment_id = %s AND done_at IS NULL", payment_id)["n"]
        == 0
    )


def test_a_commit_delayed_after_start_execution_was_requested_still_enrolls(
    chain: WorkflowStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

    # RecordPayment's backoff really waits here (the suite's no-sleep retrier would use up its
    # attempts in a millisecond): this test is about time.
    monkeypatch.setattr(retrier_decl, "time", time)
    student, payment_id, session = _pending_checkout(chain)
    finish_event = repository.finish_event
    requested = threading.Event()

    def slow_commit(cur: Any, *args: Any) -> None:
        finish_event(cur, *args)
        # The fault: StartExecution is requested while the payment's transaction is still open (what
        # the webhook used to do, and what a racing redelivery or reconcile run can still do), and the
        # commit is then held back for seconds.
        workflows.start(chain.arns["enrollment"], outbox.enrollment_name(payment_id),
                        EnrollmentInput.paid({"id": payment_id, "user_id": student["id"], "track": "FSD"}))  # fmt: skip
        requested.set()
        time.sleep(2.5)

    monkeypatch.setattr(repository, "finish_event", slow_commit)
    outcome = webhook_service.process(_completed(payment_id, session, student), _deps(chain))
    assert requested.is_set() and outcome == "enrollment_started"
    _enrolled_once(chain, student, payment_id)
    history = chain.history(_execution(chain, payment_id))
    waited = [
        e
        for e in history
        if e["type"] == "LambdaFunctionFailed"
        and e["lambdaFunctionFailedEventDetails"]["error"] == "PaymentNotYetSettled"
    ]
    assert waited, "RecordPayment ran before the commit and waited for it"


def test_start_execution_failing_after_the_commit_then_redelivery_enrolls_once(chain: WorkflowStack) -> None:
    from botocore.exceptions import ClientError

    student, payment_id, session = _pending_checkout(chain)
    failures = [ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "down"}}, "StartExecution")]

    def flaky_start(*args: Any) -> tuple[str, bool]:
        if failures:
            raise failures.pop()
        return workflows.start(*args)

    event = _completed(payment_id, session, student)
    with pytest.raises(webhook_service.OutboxPending):
        webhook_service.process(event, _deps(chain, flaky_start))
    # Committed: the payment is paid and its start waits in the outbox, with the error.
    assert chain.row("SELECT status FROM payments WHERE id = %s", payment_id)["status"] == "SUCCEEDED"
    row = chain.row("SELECT done_at, last_error FROM payment_outbox WHERE payment_id = %s", payment_id)
    assert row["done_at"] is None and "ServiceUnavailable" in row["last_error"]
    assert _executions(chain, payment_id) == []
    # Stripe redelivers the event it got a 503 for.
    assert webhook_service.process(event, _deps(chain, flaky_start)) == "duplicate"
    _enrolled_once(chain, student, payment_id)


def test_duplicate_concurrent_and_late_deliveries_enroll_exactly_once(chain: WorkflowStack) -> None:
    student, payment_id, session = _pending_checkout(chain)
    completed = _completed(payment_id, session, student)
    # The same event five times at once, and the same payment's success under other event ids.
    also = [{**_completed(payment_id, session, student), "type": kind}
            for kind in ("checkout.session.async_payment_succeeded", "checkout.session.completed")]  # fmt: skip
    events = [completed] * 5 + also

    def deliver(index: int) -> str:
        # Each delivery in its own environment (its own connection), as Lambda runs them.
        with db.function_slot(f"webhook-{index}"):
            try:
                return webhook_service.process(events[index], _deps(chain))
            finally:
                db.release(f"webhook-{index}")

    with ThreadPoolExecutor(len(events)) as pool:
        outcomes = list(pool.map(deliver, range(len(events))))
    assert outcomes.count("enrollment_started") == 1, outcomes
    # A late expiry of the session (Stripe may deliver in any order) changes nothing.
    late = {**_completed(payment_id, session, student), "type": "checkout.session.expired"}
    late["data"]["object"]["status"] = "expired"
    webhook_service.process(late, _deps(chain))
    _enrolled_once(chain, student, payment_id)


def test_the_database_dropping_every_connection_mid_chain_still_enrolls_once(chain: WorkflowStack) -> None:
    student, payment_id, session = _pending_checkout(chain)
    event = _completed(payment_id, session, student)
    assert webhook_service.process(event, _deps(chain)) == "enrollment_started"

    # A restart as the functions see it: every connection to the application database is cut,
    # again and again while the steps run; each step reconnects (OperationalError is retried).
    deadline = time.monotonic() + 1.5
    with psycopg.connect(chain.database_url, autocommit=True) as admin:
        while time.monotonic() < deadline:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
            )
            time.sleep(0.1)
    # Stripe redelivers what it may have seen fail meanwhile: the same outcome, once.
    for _ in range(2):
        try:
            webhook_service.process(event, _deps(chain))
            break
        except psycopg.OperationalError:
            continue  # this environment's connection was cut (the delivery failed): the next one reconnects
    _enrolled_once(chain, student, payment_id)
