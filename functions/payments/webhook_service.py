"""What a verified Stripe event does to our records.

One transaction per event: the event id is claimed (a concurrent delivery of the same event waits
on that row, then finds it processed), the payment row is locked, its new state is *derived* from
the facts recorded so far (paid, refunded amount, dispute), and a workflow the change calls for is
started by a name derived from the payment — inside the transaction, so a failed start rolls the
event back and Stripe's retry does it all again, while a repeated start is the same execution.
Emails and alerts go after the commit and never fail the event.

Deriving the state rather than stepping a state machine is what makes out-of-order events land
right: a refund that arrives before the completion, or a completion that arrives twice, end in
the same state as the ordered sequence.
"""

from __future__ import annotations

import secrets
import string
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg

from apranova import audit, db, mail
from apranova.cognito import GROUP_BY_ROLE, error_code
from apranova.observability import logger
from functions.payments import emails, repository

PAID_STATES = ("SUCCEEDED", "PARTIALLY_REFUNDED", "DISPUTED")

SUCCESS_EVENTS = ("checkout.session.completed", "checkout.session.async_payment_succeeded", "payment_intent.succeeded")
FAILURE_EVENTS = ("payment_intent.payment_failed", "checkout.session.async_payment_failed")
HANDLED_EVENTS = (
    *SUCCESS_EVENTS,
    *FAILURE_EVENTS,
    "checkout.session.expired",
    "charge.refunded",
    "charge.dispute.created",
    "charge.dispute.closed",
)


@dataclass(frozen=True)
class Deps:
    """What processing an event reaches beyond the database."""

    start_workflow: Callable[[str, str, dict[str, Any]], tuple[str, bool]]  # (arn, name, input)
    enrollment_state_machine_arn: str | None
    deprovision_state_machine_arn: str | None
    cognito: Any  # boto3 cognito-idp client
    user_pool_id: str
    client_id: str
    send: Callable[[mail.Email], Any]
    alert: Callable[[str, dict[str, Any]], None]
    spa_origin: str


@dataclass
class Outcome:
    result: str
    payment_id: str | None = None
    after_commit: list[Callable[[], None]] = field(default_factory=list)


class WorkflowNotConfigured(RuntimeError):
    """No state machine ARN: the event is not recorded, so Stripe retries it once one is configured."""


def derived_status(payment: dict[str, Any]) -> str:
    if payment["refunded_amount_cents"] >= payment["amount_cents"] or payment["dispute_status"] == "LOST":
        return "REFUNDED"
    if payment["dispute_status"] == "OPEN":
        return "DISPUTED"
    if payment["refunded_amount_cents"] > 0:
        return "PARTIALLY_REFUNDED"
    if payment["succeeded_at"] is not None:
        return "SUCCEEDED"
    return payment["status"]  # PENDING, FAILED or EXPIRED: not paid


def process(event: dict[str, Any], deps: Deps) -> str:
    """Applies ``event`` once; returns its outcome (``duplicate`` for an event already processed)."""
    with db.transaction() as cur:
        claimed = repository.claim_event(cur, event["id"], event["type"], event.get("created"))
        if claimed["processed_at"] is not None:
            return "duplicate"
        outcome = _apply(cur, event, deps)
        repository.finish_event(cur, event["id"], outcome.result, outcome.payment_id)
    for action in outcome.after_commit:
        try:
            action()
        except Exception:  # noqa: BLE001 - a notification must not fail an event already recorded
            logger.exception("after-commit action failed", extra={"event_id": event["id"]})
    return outcome.result


def _ids(event: dict[str, Any]) -> dict[str, str | None]:
    obj = event["data"]["object"]
    kind = obj.get("object")
    meta = obj.get("metadata") or {}
    payment_id = meta.get("payment_id")
    try:
        payment_id = str(uuid.UUID(str(payment_id))) if payment_id else None
    except ValueError:
        payment_id = None
    ids: dict[str, str | None] = {"payment_id": payment_id, "session": None, "intent": None, "charge": None}
    if kind == "checkout.session":
        ids.update(session=obj.get("id"), intent=obj.get("payment_intent"))
    elif kind == "payment_intent":
        ids.update(intent=obj.get("id"), charge=obj.get("latest_charge"))
    elif kind == "charge":
        ids.update(charge=obj.get("id"), intent=obj.get("payment_intent"))
    elif kind == "dispute":
        ids.update(charge=obj.get("charge"), intent=obj.get("payment_intent"))
    return {key: value if isinstance(value, str) or value is None else None for key, value in ids.items()}


def _apply(cur: Any, event: dict[str, Any], deps: Deps) -> Outcome:
    kind = event["type"]
    if kind not in HANDLED_EVENTS:
        return Outcome("ignored")
    ids = _ids(event)
    payment = repository.find_payment_for_update(
        cur,
        payment_id=ids["payment_id"],
        checkout_session_id=ids["session"],
        payment_intent_id=ids["intent"],
        charge_id=ids["charge"],
    )
    if payment is None:
        details = {"event_id": event["id"], "type": kind, **{k: v for k, v in ids.items() if v}}
        return Outcome(
            "unknown_payment", after_commit=[lambda: deps.alert("Stripe event for an unknown payment", details)]
        )
    obj = event["data"]["object"]
    before = dict(payment)
    changes: dict[str, Any] = {}
    # Stripe ids the event reveals are recorded the first time they appear (they never change).
    for column, value in (
        ("stripe_checkout_session_id", ids["session"]),
        ("stripe_payment_intent_id", ids["intent"]),
        ("stripe_charge_id", ids["charge"]),
    ):
        if value and not payment[column]:
            changes[column] = value
    outcome = Outcome("recorded", payment["id"])
    now = datetime.now(UTC)

    if kind in SUCCESS_EVENTS:
        if kind == "checkout.session.completed" and obj.get("payment_status") != "paid":
            outcome.result = "awaiting_async_payment"
        elif payment["succeeded_at"] is None:
            changes["succeeded_at"] = now
            changes["failure_message"] = None
    elif kind in FAILURE_EVENTS:
        if payment["succeeded_at"] is None and payment["status"] in ("PENDING", "FAILED"):
            error = obj.get("last_payment_error") or {}
            changes["status"] = "FAILED"
            changes["failure_message"] = str(error.get("message") or "The payment failed.")[:500]
    elif kind == "checkout.session.expired":
        if payment["succeeded_at"] is None and payment["status"] == "PENDING":
            changes["status"] = "EXPIRED"
    elif kind == "charge.refunded":
        refunded = int(obj.get("amount_refunded") or 0)
        if refunded > payment["refunded_amount_cents"]:
            changes["refunded_amount_cents"] = min(refunded, payment["amount_cents"])
        if payment["succeeded_at"] is None:  # a refunded charge was paid, whatever arrived first
            changes["succeeded_at"] = now
    elif kind == "charge.dispute.created":
        changes.update(disputed=True, dispute_status="OPEN")
        outcome.after_commit.append(
            lambda: deps.alert(
                "Chargeback opened",
                {"payment_id": payment["id"], "dispute": obj.get("id"), "reason": obj.get("reason")},
            )
        )
    elif kind == "charge.dispute.closed":
        status = obj.get("status")
        changes.update(disputed=True, dispute_status="LOST" if status == "lost" else "WON")
        if payment["succeeded_at"] is None:
            changes["succeeded_at"] = now

    merged = {**payment, **changes}
    if "status" not in changes:
        changes["status"] = derived_status(merged)
        merged["status"] = changes["status"]
    if merged["status"] == "REFUNDED" and payment["refunded_at"] is None:
        changes["refunded_at"] = now
    changes = {k: v for k, v in changes.items() if payment.get(k) != v}
    if changes:
        payment = _update(cur, payment, changes, outcome, deps)
        if payment is None:  # could not take this state: recorded, and alerted after the commit
            outcome.result = "conflict"
            return outcome
        audit.record(
            cur,
            "PAYMENT",
            subject_id=payment["user_id"],
            resource_type="payment",
            resource_id=payment["id"],
            details={"event": kind, "event_id": event["id"], "from": before["status"], "to": payment["status"]},
        )
        outcome.result = "updated"

    if payment["status"] in PAID_STATES:
        if payment["user_id"] is None:
            payment = _link_account(cur, payment, outcome, deps)
        if payment["user_id"] is not None and payment["enrollment_execution"] is None:
            _start_enrollment(cur, payment, deps)
            outcome.result = "enrollment_started"
    elif payment["status"] == "FAILED" and before["status"] != "FAILED":
        outcome.after_commit.append(lambda: _email_failure(payment, deps))
    elif payment["status"] == "REFUNDED" and before["status"] != "REFUNDED":
        if payment["enrollment_execution"] is not None and payment["user_id"] is not None:
            _withdraw(cur, payment, deps)
            outcome.result = "deprovision_started"
    return outcome


def _update(
    cur: Any, payment: dict[str, Any], changes: dict[str, Any], outcome: Outcome, deps: Deps
) -> dict[str, Any] | None:
    try:
        with cur.connection.transaction():
            return repository.update_payment(cur, payment["id"], changes)
    except psycopg.errors.UniqueViolation:
        # Money arrived for a payment whose user has another live payment for the same track (an
        # abandoned session paid after a new one was opened): record the facts, keep the status,
        # and have a person refund one of them.
        facts = {k: v for k, v in changes.items() if k not in ("status", "refunded_at")}
        if facts:
            repository.update_payment(cur, payment["id"], facts)
        details = {"payment_id": payment["id"], "track": payment["track"], "user_id": payment["user_id"]}
        outcome.after_commit.append(
            lambda: deps.alert("Second payment for a track that is already paid: refund one of them", details)
        )
        return None


def _start_enrollment(cur: Any, payment: dict[str, Any], deps: Deps) -> None:
    if not deps.enrollment_state_machine_arn:
        raise WorkflowNotConfigured("ENROLLMENT_STATE_MACHINE_ARN is not configured")
    name = f"enroll-{payment['id']}"
    arn, _ = deps.start_workflow(
        deps.enrollment_state_machine_arn,
        name,
        {"payment_id": payment["id"], "user_id": payment["user_id"], "track": payment["track"], "source": "stripe"},
    )
    repository.update_payment(cur, payment["id"], {"enrollment_execution": arn})
    payment["enrollment_execution"] = arn


def _withdraw(cur: Any, payment: dict[str, Any], deps: Deps) -> None:
    """A full refund or a lost dispute: the enrollment ends and the tools are taken back."""
    if not deps.deprovision_state_machine_arn:
        raise WorkflowNotConfigured("DEPROVISION_STATE_MACHINE_ARN is not configured")
    withdrawn = repository.withdraw_enrollment(cur, payment["user_id"], payment["track"])
    deps.start_workflow(
        deps.deprovision_state_machine_arn,
        f"deprovision-{payment['id']}",
        {"payment_id": payment["id"], "user_id": payment["user_id"], "track": payment["track"], "reason": "refund"},
    )
    audit.record(
        cur,
        "ENROLLMENT",
        subject_id=payment["user_id"],
        resource_type="payment",
        resource_id=payment["id"],
        details={"step": "withdrawn", "reason": "dispute_lost" if payment["dispute_status"] == "LOST" else "refund",
                 "was_enrolled": withdrawn},
    )  # fmt: skip


def _email_failure(payment: dict[str, Any], deps: Deps) -> None:
    contact = repository.user_contact(payment["user_id"]) if payment["user_id"] else None
    if contact is None and payment["customer_email"]:
        contact = {"email": payment["customer_email"], "name": payment["customer_name"]}
    if contact:
        deps.send(emails.payment_failed(contact, payment, deps.spa_origin))


# --- pay first: the account -----------------------------------------------------------------------


def _link_account(cur: Any, payment: dict[str, Any], outcome: Outcome, deps: Deps) -> dict[str, Any]:
    """Links a paid pay-first checkout to the account of its email, creating the account if none.

    Nobody is logged in: a new account gets a set-password email (Cognito sends the code).
    """
    email, name = payment["customer_email"], payment["customer_name"] or ""
    if not email:
        outcome.after_commit.append(
            lambda: deps.alert("Paid anonymous checkout without an email", {"payment_id": payment["id"]})
        )
        return payment
    existing = repository.user_by_email(cur, email)
    created = existing is None
    user_id = _create_cognito_user(deps, email, name) if created else existing["id"]
    if created:
        repository.insert_pay_first_user(cur, user_id=user_id, email=email, name=name)
        audit.record(
            cur, "SIGNUP", subject_id=user_id, actor_id=user_id, resource_type="user", resource_id=user_id,
            details={"source": "anonymous_checkout", "payment_id": payment["id"]},
        )  # fmt: skip
    repository.attach_checkout_consent(cur, payment["id"], user_id)
    try:
        with cur.connection.transaction():
            linked = repository.update_payment(cur, payment["id"], {"user_id": user_id, "account_created": created})
    except psycopg.errors.UniqueViolation:
        details = {"payment_id": payment["id"], "user_id": user_id, "track": payment["track"]}
        outcome.after_commit.append(
            lambda: deps.alert("Pay-first payment for an account that already paid for this track", details)
        )
        return payment
    if existing is not None and existing["enrollment_status"] in ("ENROLLED", "COMPLETED"):
        details = {"payment_id": payment["id"], "user_id": user_id}
        outcome.after_commit.append(lambda: deps.alert("Pay-first payment for an already enrolled account", details))
    if created:
        outcome.after_commit.append(lambda: _send_set_password(deps, linked))
    return linked


def _random_password() -> str:
    """Never stored or shown: it only makes the user CONFIRMED so that forgot-password works."""
    alphabet = string.ascii_letters + string.digits
    core = "".join(secrets.choice(alphabet) for _ in range(40))
    return core + "aA1!"


def _create_cognito_user(deps: Deps, email: str, name: str) -> str:
    from botocore.exceptions import ClientError

    try:
        created = deps.cognito.admin_create_user(
            UserPoolId=deps.user_pool_id,
            Username=email,
            UserAttributes=[
                {"Name": "email", "Value": email},
                {"Name": "email_verified", "Value": "true"},
                {"Name": "name", "Value": name},
            ],
            MessageAction="SUPPRESS",
        )
        attributes = created["User"]["Attributes"]
    except ClientError as error:
        if error_code(error) != "UsernameExistsException":
            raise
        # A retried event (or a Cognito user whose database row was lost): use that user.
        attributes = deps.cognito.admin_get_user(UserPoolId=deps.user_pool_id, Username=email)["UserAttributes"]
    user_id = next(a["Value"] for a in attributes if a["Name"] == "sub")
    deps.cognito.admin_set_user_password(
        UserPoolId=deps.user_pool_id, Username=email, Password=_random_password(), Permanent=True
    )
    deps.cognito.admin_add_user_to_group(
        UserPoolId=deps.user_pool_id, Username=email, GroupName=GROUP_BY_ROLE["student"]
    )
    return user_id


def _send_set_password(deps: Deps, payment: dict[str, Any]) -> None:
    # Cognito emails the code (the forgot-password flow); our email says what to do with it.
    deps.cognito.forgot_password(ClientId=deps.client_id, Username=payment["customer_email"])
    contact = {"email": payment["customer_email"], "name": payment["customer_name"]}
    deps.send(emails.set_password(contact, payment, deps.spa_origin))
