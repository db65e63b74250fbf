"""What a verified Stripe event does to our records.

One transaction per event: the event id is claimed (a concurrent delivery of the same event waits
on that row, then finds it processed), the payment row is locked, its new state is *derived* from
the facts recorded so far (paid, refunded amount, dispute), and what the change calls for outside
the database (start the enrollment or deprovision workflow, refund a payment that cannot be
fulfilled, expire the person's other open checkouts) is written to the payments outbox in that same
transaction. Only after the commit is the outbox carried out (functions/payments/outbox.py), so a
workflow never reads a payment that is not committed yet. If that fails, the event is still
recorded and the answer is 503: Stripe's redelivery finds the event processed and carries out what
is left, and so does the reconcile job. Emails and alerts go after the commit and never fail the event.

Deriving the state rather than stepping a state machine is what makes out-of-order events land
right: a refund that arrives before the completion, or a completion that arrives twice, end in
the same state as the ordered sequence.

Money that cannot be fulfilled is never kept: a payment for an account that is already enrolled or
has paid for a track, or a pay-first payment whose email already has an account (its owner did not
sign in to pay), is refunded at once, the payer is told why and the operators are alerted; the
existing enrollment is never touched.
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

from apranova import audit, db, mail, workflows
from apranova.cognito import GROUP_BY_ROLE, error_code
from apranova.observability import BusinessMetric, business_metric, logger
from functions.payments import emails, outbox, repository
from functions.payments.gateway import StripeGateway

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

    start_workflow: Callable[[str, str, Any], tuple[str, bool]]  # (arn, name, the machine's input contract)
    enrollment_state_machine_arn: str | None
    deprovision_state_machine_arn: str | None
    cognito: Any  # boto3 cognito-idp client
    user_pool_id: str
    client_id: str
    send: Callable[[mail.Email], Any]
    alert: Callable[[str, dict[str, Any]], None]
    spa_origin: str
    gateway: StripeGateway  # functions/payments/stripe_gateway (refunds, expiring sessions)

    def runner(self) -> outbox.Runner:
        return outbox.Runner(
            start_workflow=self.start_workflow,
            enrollment_state_machine_arn=self.enrollment_state_machine_arn,
            deprovision_state_machine_arn=self.deprovision_state_machine_arn,
            gateway=self.gateway,
        )


@dataclass
class Outcome:
    result: str
    payment_id: str | None = None
    after_commit: list[Callable[[], None]] = field(default_factory=list)
    # Outbox rows this event wrote (besides its own payment's, which are carried out anyway).
    outbox_rows: list[int] = field(default_factory=list)

    def enqueue(self, cur: Any, key: str, action: str, payment_id: str, **extra: Any) -> bool:
        row_id = repository.enqueue(cur, key, action, payment_id, **extra)
        if row_id is not None:
            self.outbox_rows.append(row_id)
        return row_id is not None


class WorkflowNotConfigured(RuntimeError):
    """No state machine ARN: the event is not recorded, so Stripe retries it once one is configured."""


class OutboxPending(RuntimeError):
    """The event is recorded, but what it calls for could not be carried out yet (503: Stripe redelivers)."""


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
    """Applies ``event`` once; returns its outcome (``duplicate`` for an event already processed).

    Raises ``OutboxPending`` when the event is recorded but its follow-up failed after the commit.
    """
    with db.transaction() as cur:
        claimed = repository.claim_event(cur, event["id"], event["type"], event.get("created"))
        if claimed["processed_at"] is not None:
            outcome = Outcome("duplicate", claimed["payment_id"])
        else:
            outcome = _apply(cur, event, deps)
            repository.finish_event(cur, event["id"], outcome.result, outcome.payment_id)
    # After the commit: what the change called for (and whatever an earlier delivery left undone).
    pending = repository.outbox_rows_of(outcome.payment_id) if outcome.payment_id else []
    drained = outbox.drain(deps.runner(), sorted({*pending, *outcome.outbox_rows}))
    for action in outcome.after_commit:
        try:
            action()
        except Exception:  # noqa: BLE001 - a notification must not fail an event already recorded
            logger.exception("after-commit action failed", extra={"event_id": event["id"]})
    if drained["failed"]:
        raise OutboxPending(f"{drained['failed']} follow-up action(s) of payment {outcome.payment_id} failed")
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
    if kind in SUCCESS_EVENTS and payment["user_id"] is not None and payment["enrollment_execution"] is None:
        # A payment this event may settle: its account is locked before anything of the payment is
        # written, so two payments of one person (two tracks paid at once) take their locks in one
        # order. Written first, a payment held its row against the other's outbox rows (their
        # foreign key) while waiting for the account the other held: a deadlock, seen when both
        # webhooks arrived together. (A settled payment's later events leave the account alone:
        # its enrollment's first steps write that row.)
        repository.lock_user(cur, payment["user_id"])
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
        payment_id = payment["id"]
        outcome.after_commit.append(
            lambda: deps.alert(
                "Chargeback opened",
                {"payment_id": payment_id, "dispute": obj.get("id"), "reason": obj.get("reason")},
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
        outcome.after_commit.extend(_counted(before, payment))

    if payment["status"] in PAID_STATES:
        if payment["enrollment_execution"] is None:
            settle_paid(cur, payment, outcome, deps)
    elif payment["status"] == "FAILED" and before["status"] != "FAILED":
        outcome.after_commit.append(lambda: _email_failure(payment, deps))
    elif payment["status"] == "REFUNDED" and before["status"] != "REFUNDED":
        if payment["enrollment_execution"] is not None and payment["user_id"] is not None:
            _withdraw(cur, payment, outcome, deps)
            outcome.result = "deprovision_started"
    return outcome


def _counted(before: dict[str, Any], after: dict[str, Any]) -> list[Callable[[], None]]:
    """The business metrics a change of the payment makes true, counted once it is committed: the
    payment paid (its first ``succeeded_at``), money returned (a larger refunded amount)."""
    counted: list[Callable[[], None]] = []
    if before["succeeded_at"] is None and after["succeeded_at"] is not None:
        counted.append(lambda: business_metric(BusinessMetric.PAYMENT_SUCCEEDED))
    if after["refunded_amount_cents"] > before["refunded_amount_cents"]:
        counted.append(lambda: business_metric(BusinessMetric.REFUND))
    return counted


def _update(
    cur: Any, payment: dict[str, Any], changes: dict[str, Any], outcome: Outcome, deps: Deps
) -> dict[str, Any] | None:
    try:
        with cur.connection.transaction():
            return repository.update_payment(cur, payment["id"], changes)
    except psycopg.errors.UniqueViolation:
        # Money arrived for a payment whose user has another live payment for the same track (an
        # abandoned session paid after a new one was opened): record the facts, keep the status,
        # and refund this one at once.
        facts = {k: v for k, v in changes.items() if k not in ("status", "refunded_at")}
        current = repository.update_payment(cur, payment["id"], facts) if facts else payment
        if current["succeeded_at"] is not None and current["refunded_amount_cents"] < current["amount_cents"]:
            _refuse(cur, current, "already_paid", outcome, deps)
        else:
            details = {"payment_id": payment["id"], "track": payment["track"], "user_id": payment["user_id"]}
            outcome.after_commit.append(
                lambda: deps.alert("A payment could not take its new state (another live payment)", details)
            )
        return None


ENROLLED_STATES = ("ENROLLED", "COMPLETED", "SUSPENDED")


def settle_paid(cur: Any, payment: dict[str, Any], outcome: Outcome, deps: Deps) -> None:
    """A paid payment that started nothing yet: it enrolls its account, or it is refunded at once
    when it cannot be fulfilled. The account row is locked first, so two payments of one person
    (two tracks paid at once) are decided one after the other: the second sees the first."""
    if repository.refund_queued(cur, payment["id"]):
        return  # found unfulfillable before: it is being refunded, whatever happened since
    if payment["user_id"] is None:
        payment = _link_account(cur, payment, outcome, deps)
        if payment["user_id"] is None:
            return
    user = repository.lock_user(cur, payment["user_id"])
    if user is None:
        _refuse(cur, payment, "account_unavailable", outcome, deps)
    elif user["enrollment_status"] in ENROLLED_STATES:
        _refuse(cur, payment, "already_enrolled", outcome, deps, enrolled_track=user["track"])
    elif (other := repository.other_paid_payment(cur, payment["user_id"], payment["id"])) is not None:
        _refuse(cur, payment, "already_paid", outcome, deps, other_payment=other["id"])
    else:
        _start_enrollment(cur, payment, outcome, deps)
        outcome.result = "enrollment_started"
        # The person's other checkouts must not be paid any more: expired at Stripe after the commit
        # (one paid in the meantime arrives here and is refunded).
        for other_session in repository.other_open_sessions(cur, payment["user_id"], payment["id"]):
            outcome.enqueue(
                cur,
                f"expire:{other_session['session_id']}",
                "EXPIRE_SESSION",
                other_session["payment_id"],
                target=other_session["session_id"],
                reason=f"payment {payment['id']} succeeded",
            )


def _refuse(cur: Any, payment: dict[str, Any], reason: str, outcome: Outcome, deps: Deps, **facts: Any) -> None:
    """Money that cannot be fulfilled: refunded at once (after the commit), the payer told why, the
    operators alerted. Nothing about the account or its enrollment changes."""
    if not outcome.enqueue(cur, f"refund:{payment['id']}", "REFUND", payment["id"], reason=reason):
        return  # decided before (a redelivery): refunded, told and alerted once
    audit.record(
        cur,
        "PAYMENT",
        subject_id=payment["user_id"],
        resource_type="payment",
        resource_id=payment["id"],
        details={"step": "refund_unfulfillable", "reason": reason, "amount_cents": payment["amount_cents"]},
    )
    outcome.result = "refund_started"
    details = {"payment_id": payment["id"], "user_id": payment["user_id"], "track": payment["track"],
               "reason": reason, **facts}  # fmt: skip
    outcome.after_commit.append(lambda: deps.alert("Payment refunded at once: it cannot be fulfilled", details))

    def tell_payer() -> None:
        # The account's own address when the payment is the account's; the checkout's address for a
        # pay-first payment that was never linked (no name: its owner may not be the payer).
        contact = repository.user_contact(payment["user_id"]) if payment["user_id"] else None
        address = contact["email"] if contact else payment["customer_email"]
        if address:
            deps.send(emails.payment_refunded_unfulfillable(address, payment, reason, deps.spa_origin))

    outcome.after_commit.append(tell_payer)


def _start_enrollment(cur: Any, payment: dict[str, Any], outcome: Outcome, deps: Deps) -> None:
    """Written to the outbox; started after the commit under the payment's execution name."""
    if not deps.enrollment_state_machine_arn:
        raise WorkflowNotConfigured("ENROLLMENT_STATE_MACHINE_ARN is not configured")
    outcome.enqueue(cur, f"enroll:{payment['id']}", "START_ENROLLMENT", payment["id"])
    arn = workflows.execution_arn(deps.enrollment_state_machine_arn, outbox.enrollment_name(payment["id"]))
    repository.update_payment(cur, payment["id"], {"enrollment_execution": arn})
    payment["enrollment_execution"] = arn


def _withdraw(cur: Any, payment: dict[str, Any], outcome: Outcome, deps: Deps) -> None:
    """A full refund or a lost dispute: the enrollment ends and the tools are taken back."""
    if not deps.deprovision_state_machine_arn:
        raise WorkflowNotConfigured("DEPROVISION_STATE_MACHINE_ARN is not configured")
    withdrawn = repository.withdraw_enrollment(cur, payment["user_id"], payment["id"])
    outcome.enqueue(cur, f"deprovision:{payment['id']}", "START_DEPROVISION", payment["id"])
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
    """Creates the account of a paid pay-first checkout's email and links the payment to it.

    Nobody is logged in: a new account gets a set-password email (Cognito sends the code). An email
    that already has an account is refused (refunded): a payment is never linked to an account its
    payer did not sign in to.
    """
    email, name = payment["customer_email"], payment["customer_name"] or ""
    if not email:
        outcome.after_commit.append(
            lambda: deps.alert("Paid anonymous checkout without an email", {"payment_id": payment["id"]})
        )
        return payment
    existing = repository.user_by_email(cur, email)
    if existing is not None:
        # Its owner did not sign in to pay (the checkout refuses such an email; the account may have
        # appeared since): never linked, no consent attached, the money refunded at once.
        _refuse(cur, payment, "account_exists", outcome, deps)
        return payment
    user_id = _create_cognito_user(deps, email, name)
    repository.insert_pay_first_user(cur, user_id=user_id, email=email, name=name)
    audit.record(
        cur, "SIGNUP", subject_id=user_id, actor_id=user_id, resource_type="user", resource_id=user_id,
        details={"source": "anonymous_checkout", "payment_id": payment["id"]},
    )  # fmt: skip
    repository.attach_checkout_consent(cur, payment["id"], user_id)
    linked = repository.update_payment(cur, payment["id"], {"user_id": user_id, "account_created": True})
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
