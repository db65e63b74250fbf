"""The reconcile job: no paid student left behind (run by a schedule; ``POST /_local/jobs/reconcile``).

Three sweeps, each idempotent, in this order:

1. **Lost webhooks.** Stripe is asked for the paid-checkout and succeeded-payment events of the
   last days (Stripe retries a delivery for three days); an event we never processed is processed
   now, by the webhook's own code, exactly as if it had arrived.
2. **Paid, nothing started.** A paid payment that neither started its enrollment nor was found
   unfulfillable (its event was recorded, but the decision was lost, or came from an older version)
   is decided now: enrolled, or refunded at once.
3. **The outbox.** Rows a webhook could not carry out after its commit (Step Functions or Stripe
   down) are carried out now.
4. **Paid, and the enrollment run failed.** The enrollment workflow's failure path records the
   failure and alerts (RecordProvisioningFailure → AlertOps → Fail); it refunds nothing, so a paid
   student is left unenrolled (or enrolled without their tools). Its steps are idempotent, so the
   run is started again under a new deterministic name (``enroll-<payment>-r<n>``), at most
   ``MAX_ENROLLMENT_RESTARTS`` times; after that the payment is left to an operator (reprovision or
   refund) and alerted on every run until they do. Only a run that Step Functions says FAILED or
   TIMED_OUT is restarted (never one an operator ABORTED, nor a refunded or disputed payment).

Everything it finds is audited and alerted (the alert is logged at ERROR, which a CloudWatch metric
filter counts and an alarm watches, and emailed to the operators): on a healthy system it finds
nothing.
"""

from __future__ import annotations

import time
from typing import Any

from apranova import audit, db, workflows
from apranova.observability import logger
from functions.payments import outbox, repository, webhook_service

# The events that say money arrived (checkout sessions, async payments, PaymentIntents).
PAID_EVENT_TYPES = (
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
    "payment_intent.succeeded",
)
LOOKBACK_SECONDS = 3 * 24 * 3600
MAX_EVENT_PAGES = 20
BATCH = 200
# Restarts of a paid enrollment whose run failed, before it is left to an operator.
MAX_ENROLLMENT_RESTARTS = 3
RESTARTABLE = ("FAILED", "TIMED_OUT")
# The alert's subject: a metric filter counts its log line and an alarm watches it (cdk/stacks).
ALERT = "Reconcile found payments left behind"


def _lost_events(deps: webhook_service.Deps, since: int) -> tuple[int, int]:
    """(events processed now, events that failed)."""
    found = failed = 0
    for event_type in PAID_EVENT_TYPES:
        starting_after = None
        for _ in range(MAX_EVENT_PAGES):
            page = deps.gateway.list_events(event_type, since, starting_after)
            events = list(page.data)
            for event in events:
                if int(event.created) <= since or repository.event_processed(event.id):
                    continue
                found += 1
                try:
                    outcome = webhook_service.process(event.to_dict(), deps)
                    logger.warning("lost webhook processed", extra={"event_id": event.id, "outcome": outcome})
                except webhook_service.OutboxPending:
                    pass  # recorded; the outbox sweep below tries again
                except Exception:  # noqa: BLE001 - one bad event must not stop the sweep
                    failed += 1
                    logger.exception("lost webhook could not be processed", extra={"event_id": event.id})
            if not page.has_more or not events or int(events[-1].created) <= since:
                break
            starting_after = events[-1].id
    return found, failed


def _settle(deps: webhook_service.Deps, payment_id: str) -> str | None:
    """Decides one paid payment that started nothing; returns what it became (None if it had moved on)."""
    with db.transaction() as cur:
        payment = repository.payment_for_update(cur, payment_id)
        if (
            payment is None
            or payment["status"] not in webhook_service.PAID_STATES
            or payment["enrollment_execution"] is not None
        ):
            return None
        outcome = webhook_service.Outcome("reconciled", payment_id)
        webhook_service.settle_paid(cur, payment, outcome, deps)
        audit.record(
            cur,
            "PAYMENT",
            subject_id=payment["user_id"],
            resource_type="payment",
            resource_id=payment_id,
            details={"step": "reconciled", "outcome": outcome.result},
        )
    outbox.drain(deps.runner(), sorted({*repository.outbox_rows_of(payment_id), *outcome.outbox_rows}))
    for action in outcome.after_commit:
        try:
            action()
        except Exception:  # noqa: BLE001 - a notification must not undo the decision
            logger.exception("after-commit action failed", extra={"payment_id": payment_id})
    return outcome.result


def _restart_failed(deps: webhook_service.Deps, payment_id: str) -> str | None:
    """Restarts one paid payment's failed enrollment run: ``restarted``, ``given_up`` (restarted
    ``MAX_ENROLLMENT_RESTARTS`` times already), or None (it is running, succeeded, was aborted, or
    the payment moved on)."""
    machine = deps.enrollment_state_machine_arn
    if not machine:
        return None
    row_id = None
    with db.transaction() as cur:
        payment = repository.payment_for_update(cur, payment_id)
        if payment is None or payment["status"] not in ("SUCCEEDED", "PARTIALLY_REFUNDED"):
            return None
        previous = payment["enrollment_execution"]
        status = workflows.execution_status(previous) if previous else None
        if status not in RESTARTABLE:
            return None
        done = outbox.restart_of(previous.rsplit(":", 1)[-1])
        if done >= MAX_ENROLLMENT_RESTARTS:
            return "given_up"
        name = outbox.enrollment_name(payment_id, done + 1)
        row_id = repository.enqueue(
            cur, f"enroll:{payment_id}:r{done + 1}", "START_ENROLLMENT", payment_id, target=name, reason=status
        )
        repository.update_payment(cur, payment_id, {"enrollment_execution": workflows.execution_arn(machine, name)})
        audit.record(
            cur,
            "PAYMENT",
            subject_id=payment["user_id"],
            resource_type="payment",
            resource_id=payment_id,
            details={"step": "enrollment_restarted", "previous_execution": previous, "previous_status": status,
                     "restart": done + 1},
        )  # fmt: skip
    outbox.drain(deps.runner(), [row_id] if row_id is not None else [])
    return "restarted"


def _failed_enrollments(deps: webhook_service.Deps) -> tuple[int, list[str]]:
    """(runs restarted, payments left to an operator)."""
    restarted, given_up = 0, list[str]()
    if not deps.enrollment_state_machine_arn:
        return restarted, given_up
    for payment in repository.failed_paid_enrollments(BATCH):
        try:
            result = _restart_failed(deps, payment["id"])
        except Exception:  # noqa: BLE001 - one payment must not stop the sweep; the next run tries again
            logger.exception("failed enrollment could not be restarted", extra={"payment_id": payment["id"]})
            continue
        if result == "restarted":
            restarted += 1
        elif result == "given_up":
            given_up.append(payment["id"])
    return restarted, given_up


def run(deps: webhook_service.Deps, *, min_age_seconds: int = 60, now: float | None = None) -> dict[str, Any]:
    """One sweep. ``min_age_seconds``: how old a payment or outbox row must be to count as left
    behind (younger ones are still in their webhook's hands)."""
    since = int((now or time.time()) - LOOKBACK_SECONDS)
    found: dict[str, Any] = {}
    found["lost_events"], found["lost_events_failed"] = _lost_events(deps, since)

    settled: dict[str, int] = {}
    for payment in repository.paid_without_outcome(BATCH, min_age_seconds):
        result = _settle(deps, payment["id"])
        if result is not None:
            settled[result] = settled.get(result, 0) + 1
    found["paid_without_outcome"] = sum(settled.values())
    found["settled"] = settled

    drained = outbox.drain(deps.runner(), repository.pending_outbox(min_age_seconds, BATCH))
    found["outbox_done"], found["outbox_failed"] = drained["done"], drained["failed"]

    found["failed_enrollments_restarted"], found["failed_enrollments_given_up"] = _failed_enrollments(deps)

    anything = (
        found["lost_events"]
        or found["paid_without_outcome"]
        or found["outbox_done"]
        or found["outbox_failed"]
        or found["failed_enrollments_restarted"]
        or found["failed_enrollments_given_up"]
    )
    if anything or found["lost_events_failed"]:
        with db.transaction() as cur:
            audit.record(cur, "PAYMENT", resource_type="reconcile", details={"step": "reconcile", **found})
        deps.alert(ALERT, found)
    logger.info("reconcile done", extra={"reconcile": found})
    return found
