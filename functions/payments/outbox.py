"""Carrying out the payments outbox (migrations/0012): what a committed payment change calls for.

A row is written in the transaction of the change that decides it, so nothing here ever runs
before that change is visible. Carrying a row out is idempotent, so the webhook (right after its
commit, and again on Stripe's redelivery) and the reconcile job (for whatever is left) may both try:

- START_ENROLLMENT / START_DEPROVISION: StartExecution with the name derived from the payment; a
  name that already exists is the same execution, so it counts as done.
- REFUND: a full refund of what is left, with an idempotency key per payment.
- EXPIRE_SESSION: a Checkout Session that is no longer open needs nothing more.

A row is locked while it is carried out (``SKIP LOCKED``: a second environment leaves it alone),
and a failure leaves it pending with the error, for the next attempt.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from apranova import db
from apranova.observability import logger
from apranova.workflow_inputs import DeprovisionInput, EnrollmentInput
from functions.payments import repository
from functions.payments.gateway import StripeGateway

ENROLLMENT, DEPROVISION = "enrollment", "deprovision"


@dataclass(frozen=True)
class Runner:
    """What carrying out a row reaches: Step Functions (by ARN) and Stripe (the gateway module)."""

    start_workflow: Callable[[str, str, Any], tuple[str, bool]]  # (arn, name, the machine's input contract)
    enrollment_state_machine_arn: str | None
    deprovision_state_machine_arn: str | None
    gateway: StripeGateway


def enrollment_name(payment_id: str, restart: int = 0) -> str:
    """The payment's enrollment execution; ``restart`` n > 0 names the reconcile job's n-th restart of
    an enrollment whose execution failed (``enroll-<payment>-r<n>``: two runs deciding the same
    restart start one execution)."""
    return f"enroll-{payment_id}" if restart == 0 else f"enroll-{payment_id}-r{restart}"


def restart_of(execution_name: str) -> int:
    """Which restart an enrollment execution name is (0: the payment's first run)."""
    head, _, tail = execution_name.rpartition("-r")  # a payment id (hex and dashes) holds no "-r"
    return int(tail) if head and tail.isdigit() else 0


def deprovision_name(payment_id: str) -> str:
    return f"deprovision-{payment_id}"


def _payment(row: dict[str, Any]) -> dict[str, Any]:
    return {"id": row["payment_id"], "user_id": row["user_id"], "track": row["track"],
            "dispute_status": row.get("dispute_status")}  # fmt: skip


def enrollment_input(row: dict[str, Any]) -> EnrollmentInput:
    return EnrollmentInput.paid(_payment(row))


def deprovision_input(row: dict[str, Any]) -> DeprovisionInput:
    return DeprovisionInput.withdrawal(_payment(row))


class NotConfigured(RuntimeError):
    """No state machine ARN for a start: the row stays pending until one is configured."""


def _start(runner: Runner, row: dict[str, Any]) -> str:
    payload: EnrollmentInput | DeprovisionInput
    if row["action"] == "START_ENROLLMENT":
        # A restart's row names its execution (target); the payment's first run is its own name.
        arn, name = runner.enrollment_state_machine_arn, row["target"] or enrollment_name(row["payment_id"])
        if row["status"] not in ("SUCCEEDED", "PARTIALLY_REFUNDED", "DISPUTED"):
            return f"skipped: the payment is {row['status']}"  # refunded before the start: nothing to enroll
        payload = enrollment_input(row)
    else:
        arn, name = runner.deprovision_state_machine_arn, deprovision_name(row["payment_id"])
        payload = deprovision_input(row)
    if not arn:
        raise NotConfigured(f"no state machine for {row['action']}")
    _, started = runner.start_workflow(arn, name, payload)
    return "started" if started else "already started"


def _refund(runner: Runner, row: dict[str, Any]) -> str:
    import stripe

    if not row["stripe_payment_intent_id"]:
        raise RuntimeError("the payment's PaymentIntent is not known yet")
    remaining = row["amount_cents"] - row["refunded_amount_cents"]
    if remaining <= 0:
        return "already refunded"
    try:
        runner.gateway.refund(
            idempotency_key=f"unfulfillable-{row['payment_id']}",
            payment_intent=row["stripe_payment_intent_id"],
            amount_cents=remaining,
            metadata={"payment_id": row["payment_id"], "reason": row["reason"] or "unfulfillable"},
        )
    except stripe.InvalidRequestError as error:
        if getattr(error, "code", None) == "charge_already_refunded":
            return "already refunded"
        raise
    return "refunded"


def _expire(runner: Runner, row: dict[str, Any]) -> str:
    import stripe

    try:
        runner.gateway.expire_checkout_session(row["target"])
    except stripe.InvalidRequestError:
        return "not open"  # complete or expired already: a completion arrives by webhook
    return "expired"


ACTIONS: dict[str, Callable[[Runner, dict[str, Any]], str]] = {
    "START_ENROLLMENT": _start,
    "START_DEPROVISION": _start,
    "REFUND": _refund,
    "EXPIRE_SESSION": _expire,
}


def carry_out(runner: Runner, row_id: int) -> str:
    """Carries out one row: ``done``, ``busy`` (done already, or another environment has it) or ``failed``."""
    with db.transaction() as cur:
        row = repository.claim_outbox_row(cur, row_id)
        if row is None:
            return "busy"
        try:
            result = ACTIONS[row["action"]](runner, row)
        except Exception as error:  # noqa: BLE001 - kept pending with its error; the next attempt retries
            logger.warning(
                "outbox action failed",
                extra={"outbox_id": row_id, "action": row["action"], "error": type(error).__name__},
            )
            repository.outbox_failed(cur, row_id, f"{type(error).__name__}: {error}")
            return "failed"
        repository.outbox_done(cur, row_id)
    logger.info("outbox action done", extra={"outbox_id": row_id, "action": row["action"], "result": result})
    return "done"


def drain(runner: Runner, row_ids: list[int]) -> dict[str, int]:
    counts = {"done": 0, "busy": 0, "failed": 0}
    for row_id in row_ids:
        counts[carry_out(runner, row_id)] += 1
    return counts
