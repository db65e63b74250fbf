"""RecordPayment: the enrollment is paid for (or an admin decided it) and provisioning starts.

A payment that is not visible yet, or still PENDING, is not a reason to give up: its webhook may
not have committed yet (a start that raced the commit, a redelivery, the reconcile job). That is
``PaymentNotYetSettled``, which the state machine retries with backoff; only a payment that cannot
pay for this enrollment (someone else's, another track, failed, expired, refunded) is permanent.
"""

from __future__ import annotations

from typing import Any

from apranova.observability import entry, logger
from functions.provision import workflow_repository as repository
from functions.provision.errors import PaymentNotValid, UserNotFound
from functions.provision.steps import workflow_input

PAID = ("SUCCEEDED", "PARTIALLY_REFUNDED")


class PaymentNotYetSettled(Exception):
    """Transient: the payment is not committed yet or still PENDING (retried by the state machine)."""


@entry
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    state = workflow_input(event)
    if state.source == "stripe":
        if not state.payment_id:
            raise PaymentNotValid("a paid enrollment needs its payment id")
        payment = repository.payment(state.payment_id)
        if payment is None:
            raise PaymentNotYetSettled(f"payment {state.payment_id} is not visible yet")
        if payment["user_id"] != state.user_id or payment["track"] != state.track:
            raise PaymentNotValid(f"payment {state.payment_id} does not pay for this user and track")
        if payment["status"] == "PENDING":
            raise PaymentNotYetSettled(f"payment {state.payment_id} is still PENDING")
        if payment["status"] not in PAID:
            raise PaymentNotValid(f"payment {state.payment_id} is {payment['status']}")
    if repository.user(state.user_id) is None:
        raise UserNotFound(f"user {state.user_id} does not exist")
    repository.mark_provisioning(state.user_id, "IN_PROGRESS")
    logger.info("provisioning started", extra={"user_id": state.user_id, "track": state.track, "source": state.source})
    return event
