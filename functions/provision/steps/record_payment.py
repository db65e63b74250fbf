"""RecordPayment: the enrollment is paid for (or an admin decided it) and provisioning starts."""

from __future__ import annotations

from typing import Any

from apranova.observability import logger
from functions.provision import workflow_repository as repository
from functions.provision.errors import PaymentNotValid, UserNotFound
from functions.provision.steps import workflow_input

PAID = ("SUCCEEDED", "PARTIALLY_REFUNDED")


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    state = workflow_input(event)
    if repository.user(state.user_id) is None:
        raise UserNotFound(f"user {state.user_id} does not exist")
    if state.source == "stripe":
        if not state.payment_id:
            raise PaymentNotValid("a paid enrollment needs its payment id")
        payment = repository.payment(state.payment_id)
        if payment is None or payment["user_id"] != state.user_id or payment["track"] != state.track:
            raise PaymentNotValid(f"payment {state.payment_id} does not pay for this user and track")
        if payment["status"] not in PAID:
            raise PaymentNotValid(f"payment {state.payment_id} is {payment['status']}")
    repository.mark_provisioning(state.user_id, "IN_PROGRESS")
    logger.info("provisioning started", extra={"user_id": state.user_id, "track": state.track, "source": state.source})
    return event
