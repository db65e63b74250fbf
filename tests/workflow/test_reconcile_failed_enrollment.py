"""The reconcile job and a paid enrollment whose run FAILED (issue 13), through the webhook's own code
and the enrollment state machine CDK synthesizes (moto, the real step handlers, the run's
PostgreSQL and the tools).

The workflow's failure path (RecordProvisioningFailure → AlertOps → Fail) records and alerts but
refunds nothing: the student paid and is not enrolled. The job restarts the run under a new
deterministic name (``enroll-<payment>-r<n>``), at most ``MAX_ENROLLMENT_RESTARTS`` times, then
leaves the payment to an operator and alerts.
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Iterator
from typing import Any

import pytest

from apranova import workflows
from functions.payments import outbox, reconcile_service, webhook_service
from local.lambda_dispatch import inject
from local.moto_stack import mailbox
from local.workflows import FUNCTION_PREFIX
from tests.workflow.conftest import OPS, WorkflowStack
from tests.workflow.test_payment_faults import _completed, _deps, _pending_checkout

# The job's first sweep asks Stripe for paid events it never received: here Stripe has none.
NO_EVENTS = types.SimpleNamespace(list_events=lambda *_args: types.SimpleNamespace(data=[], has_more=False))
# The other sweeps (paid payments that started nothing, the outbox) leave every payment of the
# session alone: older than any payment here. The failed-run sweep has no age, and other tests of the
# session leave failed runs of their own, so the assertions are about this test's payment.
MIN_AGE = 100 * 365 * 24 * 3600


@pytest.fixture
def chain(wf: WorkflowStack) -> Iterator[WorkflowStack]:
    workflows.reset()
    yield wf
    workflows.reset()


def _job(wf: WorkflowStack) -> dict[str, Any]:
    return reconcile_service.run(dataclasses.replace(_deps(wf), gateway=NO_EVENTS), min_age_seconds=MIN_AGE)


def _arn(wf: WorkflowStack, payment_id: str, restart: int = 0) -> str:
    return workflows.execution_arn(wf.arns["enrollment"], outbox.enrollment_name(payment_id, restart))


def _runs(wf: WorkflowStack, payment_id: str) -> list[str]:
    found = wf.sfn().list_executions(stateMachineArn=wf.arns["enrollment"], maxResults=1000)["executions"]
    return sorted(e["name"] for e in found if e["name"].startswith(f"enroll-{payment_id}"))


def _paid_and_failed(wf: WorkflowStack, failures: int) -> tuple[dict[str, str], str]:
    """A student pays (FSD); the workspace step fails for good in the first ``failures`` runs."""
    student, payment_id, session = _pending_checkout(wf, "FSD")
    inject(FUNCTION_PREFIX + "provision-workspace", "ToolFailed", times=failures)
    assert webhook_service.process(_completed(payment_id, session, student), _deps(wf)) == "enrollment_started"
    assert wf.wait(_arn(wf, payment_id), timeout=180)["status"] == "FAILED"
    user = wf.row("SELECT enrollment_status, provisioning_status FROM users WHERE id = %s", student["id"])
    assert user["provisioning_status"] == "FAILED"
    return student, payment_id


def _ops_alerts(payment_id: str) -> list[dict[str, Any]]:
    return [
        m
        for m in mailbox()
        if OPS in m["to"]
        and m["subject"].endswith(reconcile_service.ALERT)
        and payment_id in (m["body_text"] or m["body_html"] or "")
    ]


def test_a_paid_enrollment_whose_run_failed_is_started_again_and_enrolls_the_student(chain: WorkflowStack) -> None:
    student, payment_id = _paid_and_failed(chain, failures=1)

    found = _job(chain)
    assert found["failed_enrollments_restarted"] >= 1 and payment_id not in found["failed_enrollments_given_up"]
    result = chain.wait(_arn(chain, payment_id, 1), timeout=180)
    assert result["status"] == "SUCCEEDED", chain.history(result["executionArn"])[-3:]
    assert _runs(chain, payment_id) == [f"enroll-{payment_id}", f"enroll-{payment_id}-r1"]
    user = chain.row(
        "SELECT u.enrollment_status, u.provisioning_status, u.enrollment_payment_id::text AS paid_by, t.code"
        " FROM users u JOIN tracks t ON t.id = u.track_id WHERE u.id = %s",
        student["id"],
    )
    assert user == {"enrollment_status": "ENROLLED", "provisioning_status": "SUCCEEDED", "paid_by": payment_id,
                    "code": "FSD"}  # fmt: skip
    payment = chain.row("SELECT status, enrollment_execution FROM payments WHERE id = %s", payment_id)
    assert payment == {"status": "SUCCEEDED", "enrollment_execution": _arn(chain, payment_id, 1)}
    (audited,) = chain.rows(
        "SELECT details FROM audit_logs WHERE resource_id = %s AND details->>'step' = 'enrollment_restarted'",
        payment_id,
    )
    assert audited["details"] == {
        "step": "enrollment_restarted",
        "previous_execution": _arn(chain, payment_id),
        "previous_status": "FAILED",
        "restart": 1,
    }
    assert (
        chain.row("SELECT count(*) AS n FROM payment_outbox WHERE payment_id = %s AND done_at IS NULL", payment_id)["n"]
        == 0
    )

    # Enrolled now: the next runs find nothing to restart.
    again = _job(chain)
    assert payment_id not in again["failed_enrollments_given_up"]
    assert len(_runs(chain, payment_id)) == 2


def test_a_run_that_keeps_failing_is_restarted_a_bounded_number_of_times_then_left_to_an_operator(
    chain: WorkflowStack,
) -> None:
    limit = reconcile_service.MAX_ENROLLMENT_RESTARTS
    student, payment_id = _paid_and_failed(chain, failures=limit + 1)
    for restart in range(1, limit + 1):
        found = _job(chain)
        assert found["failed_enrollments_restarted"] >= 1, (restart, found)
        assert chain.wait(_arn(chain, payment_id, restart), timeout=180)["status"] == "FAILED"

    found = _job(chain)
    assert payment_id in found["failed_enrollments_given_up"]
    assert _runs(chain, payment_id) == sorted(
        [f"enroll-{payment_id}", *(f"enroll-{payment_id}-r{n}" for n in range(1, limit + 1))]
    )
    assert _ops_alerts(payment_id), "the operators are told which payment is left to them"
    user = chain.row("SELECT provisioning_status FROM users WHERE id = %s", student["id"])
    assert user["provisioning_status"] == "FAILED"


def test_a_failed_run_of_a_payment_refunded_since_is_not_started_again(chain: WorkflowStack) -> None:
    _, payment_id = _paid_and_failed(chain, failures=1)
    chain.row(
        "UPDATE payments SET refunded_amount_cents = amount_cents, status = 'REFUNDED', refunded_at = now()"
        " WHERE id = %s RETURNING id",
        payment_id,
    )
    found = _job(chain)
    assert payment_id not in found["failed_enrollments_given_up"]
    assert _runs(chain, payment_id) == [f"enroll-{payment_id}"]
