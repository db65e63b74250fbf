"""Enroll: the student is ENROLLED in the track (once; a re-run finds it done)."""

from __future__ import annotations

from typing import Any

from apranova import audit, db
from apranova.observability import BusinessMetric, business_metric, entry
from functions.provision import workflow_repository as repository
from functions.provision.errors import InvalidInput, PaymentNotValid, UserNotFound
from functions.provision.steps import enrollment_input

# A payment enrolls a student who has not been enrolled (or was refunded and paid again); an
# administrator may also re-enroll a suspended student.
ALLOWED_FROM = {
    "stripe": ("PENDING_PAYMENT", "REFUNDED"),
    "admin": ("PENDING_PAYMENT", "REFUNDED", "SUSPENDED"),
}


@entry
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    state = enrollment_input(event)
    if not repository.track_exists(state.track):
        raise InvalidInput(f"unknown track {state.track}")
    user = repository.user(state.user_id)
    if user is None:
        raise UserNotFound(f"user {state.user_id} does not exist")
    if user["role"] != "student":
        raise InvalidInput(f"user {state.user_id} is a {user['role']}, not a student")
    if state.source == "reprovision":
        # Re-running the tools of an enrollment: the enrollment itself must already be there.
        if user["track"] != state.track or user["enrollment_status"] not in ("ENROLLED", "COMPLETED"):
            raise PaymentNotValid(f"user {state.user_id} is not enrolled in {state.track}")
        return event
    with db.transaction() as cur:
        already = user["enrollment_status"] == "ENROLLED" and user["track"] == state.track
        # A paid enrollment remembers its payment: a refund of that payment, and of no other, takes it back.
        payment_id = state.payment_id if state.source == "stripe" else None
        if not repository.enroll(cur, state.user_id, state.track, ALLOWED_FROM.get(state.source, ()), payment_id):
            raise PaymentNotValid(
                f"user {state.user_id} is {user['enrollment_status']}"
                + (f" in {user['track']}" if user["track"] else "")
                + f" and cannot be enrolled in {state.track} by {state.source}"
            )
        if not already:
            audit.record(
                cur,
                "ENROLLMENT",
                subject_id=state.user_id,
                resource_type="user",
                resource_id=state.user_id,
                details={
                    "step": "enrolled",
                    "track": state.track,
                    "source": state.source,
                    "payment_id": state.payment_id,
                },
            )
    if not already:  # counted once the enrollment is committed
        business_metric(BusinessMetric.ENROLLMENT_COMPLETED)
    return event
