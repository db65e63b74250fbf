"""Payment use cases of the API function: checkout, the PaymentIntent variant, pay-first checkout,
status, refund requests and their admin decision.

Dependencies are passed in: ``gateway`` is Stripe (functions/payments/stripe_gateway.py), ``send``
sends an email. Price and currency always come from the track row (docs/principles.md §8 rule 2).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import stripe

from apranova import db, mail
from apranova.audit import RequestInfo
from apranova.errors import (
    AppError,
    BadGateway,
    Conflict,
    Forbidden,
    NotFound,
    ValidationFailed,
)
from apranova.fields import canonical_uuid, is_uuid
from apranova.identity import Caller
from apranova.observability import logger
from apranova.pagination import Page, build_page, parse_limit, timestamp_uuid_keyset
from functions.payments import emails, repository
from functions.payments.config import PaymentSettings
from functions.payments.gateway import StripeGateway
from functions.payments.models import AnonymousCheckout

LIVE = ("PENDING", "SUCCEEDED", "PARTIALLY_REFUNDED", "DISPUTED")
REFUNDABLE = ("SUCCEEDED", "PARTIALLY_REFUNDED")


Send = Callable[[mail.Email], Any]


def _provider_error(error: stripe.StripeError) -> AppError:
    # The class and Stripe's request id identify the failure; the message may echo our params.
    logger.warning(
        "stripe call failed",
        extra={"stripe_error": type(error).__name__, "stripe_request_id": getattr(error, "request_id", None)},
    )
    return BadGateway("The payment provider could not be reached; try again shortly.", code="payment_provider_error")


def _unknown_track(track: str, reason: str) -> ValidationFailed:
    return ValidationFailed(
        f"Track {track!r} is {reason}.",
        details=[{"field": "body.track", "code": f"{reason.replace(' ', '_')}_track", "message": reason}],
    )


def _track_on_sale(row: dict[str, Any] | None, track: str) -> dict[str, Any]:
    if row is None or row.get("track_name") is None:
        raise _unknown_track(track, "unknown")
    if not row["is_active"]:
        raise _unknown_track(track, "not available")
    return row


def _send_quietly(send: Send, email: mail.Email) -> None:
    """An email that fails is logged, never undoes the change it reports."""
    try:
        send(email)
    except Exception:  # noqa: BLE001
        logger.exception("email not sent", extra={"subject": email.subject})


# --- signed-in checkout --------------------------------------------------------------------------


def _check_buyer(caller: Caller, track: str) -> dict[str, Any]:
    buyer = repository.buyer(caller.user_id, track)
    if buyer is None:
        raise Forbidden("This account cannot make payments.", code="account_unavailable")
    _track_on_sale(buyer, track)
    if not buyer["email_verified"]:
        raise Forbidden("Verify your email address before paying.", code="email_not_verified")
    if not buyer["consent_current"]:
        versions = repository.active_versions()
        raise Forbidden(
            "Accept the current privacy policy and terms before paying.",
            code="consent_required",
            details=[
                {"privacy_version": versions.get("privacy_version"), "terms_version": versions.get("terms_version")}
            ],
        )
    # One account, one track at a time: nobody pays for what they cannot get (docs/principles.md §8 rule 14).
    if buyer["enrollment_status"] in ("ENROLLED", "COMPLETED", "SUSPENDED"):
        raise Conflict(f"You are already enrolled in {buyer['enrolled_track']}.", code="already_enrolled")
    if buyer["paid_track"]:
        raise Conflict(
            f"You have already paid for {buyer['paid_track']}; your enrollment is on its way.", code="already_paid"
        )
    return buyer


def _customer(gateway: StripeGateway, buyer: dict[str, Any]) -> str:
    if buyer["stripe_customer_id"]:
        return buyer["stripe_customer_id"]
    try:
        created = gateway.create_customer(buyer["user_id"], buyer["email"], buyer["name"])
    except stripe.StripeError as error:
        raise _provider_error(error) from None
    return repository.save_stripe_customer(buyer["user_id"], created)


def _metadata(payment: dict[str, Any]) -> dict[str, str]:
    meta = {"payment_id": payment["id"], "track": payment["track"]}
    if payment["user_id"]:
        meta["user_id"] = payment["user_id"]
    else:
        meta["checkout"] = "anonymous"
    return meta


def _open_payment(cur: Any, caller: Caller, buyer: dict[str, Any], kind: str, customer: str) -> dict[str, Any]:
    """The user's pending payment of this kind for the track, or a new attempt (409 when paid)."""
    live = repository.live_payment(cur, caller.user_id, buyer["track"])
    if live is not None:
        if live["status"] != "PENDING":
            raise Conflict(f"You have already paid for {buyer['track']}.", code="already_paid")
        if live["kind"] != kind:
            raise Conflict(
                "Another payment for this track is in progress; complete it or wait for it to expire.",
                code="payment_in_progress",
            )
        return live
    attempt = repository.attempts(cur, caller.user_id, buyer["track"]) + 1
    try:
        with cur.connection.transaction():  # a savepoint: a concurrent twin's insert is a 409, not a 500
            return repository.insert_payment(
                cur,
                user_id=caller.user_id,
                track=buyer["track"],
                amount_cents=buyer["price_cents"],
                currency=buyer["currency"],
                kind=kind,
                idempotency_key=f"{kind.lower()}-{caller.user_id}-{buyer['track']}-{attempt}",
                stripe_customer_id=customer,
            )
    except psycopg.errors.UniqueViolation:
        raise Conflict("A payment for this track is already in progress.", code="payment_in_progress") from None


def _expire_declined_sessions(gateway: StripeGateway, cur: Any, user_id: str, track: str) -> None:
    """A new attempt closes the sessions of declined ones, so the student cannot pay twice."""
    for session_id in repository.declined_open_sessions(cur, user_id, track):
        try:
            gateway.expire_checkout_session(session_id)
        except stripe.InvalidRequestError:
            pass  # already expired or complete: nothing left to close (a completion arrives by webhook)


def _new_session(
    gateway: StripeGateway,
    cur: Any,
    payment: dict[str, Any],
    track_name: str,
    *,
    customer: str | None = None,
    customer_email: str | None = None,
    client_reference_id: str | None = None,
) -> Any:
    """A Checkout Session for ``payment`` (its amount, currency and idempotency key), recorded on it."""
    session = gateway.create_checkout_session(
        idempotency_key=payment["idempotency_key"],
        amount_cents=payment["amount_cents"],
        currency=payment["currency"],
        product_name=f"ApraNova — {track_name}",
        metadata=_metadata(payment),
        customer=customer,
        customer_email=customer_email,
        client_reference_id=client_reference_id,
    )
    repository.set_stripe_ids(cur, payment["id"], checkout_session_id=session.id)
    return session


def create_checkout_session(gateway: StripeGateway, caller: Caller, track: str, info: RequestInfo) -> dict[str, str]:
    buyer = _check_buyer(caller, track)
    customer = _customer(gateway, buyer)
    try:
        with db.transaction() as cur:
            payment = _open_payment(cur, caller, buyer, "CHECKOUT", customer)
            if payment["stripe_checkout_session_id"]:
                session = gateway.retrieve_checkout_session(payment["stripe_checkout_session_id"])
                if session.status == "open":
                    return {"checkout_url": session.url, "session_id": session.id, "payment_id": payment["id"]}
                if session.status == "complete":
                    raise Conflict("Your payment is being confirmed.", code="payment_in_progress")
                # Expired before its webhook arrived: this attempt is over, start the next one.
                repository.mark_expired(cur, payment["id"])
                payment = _open_payment(cur, caller, buyer, "CHECKOUT", customer)
            _expire_declined_sessions(gateway, cur, caller.user_id, track)
            session = _new_session(
                gateway, cur, payment, buyer["track_name"], customer=customer, client_reference_id=caller.user_id
            )
            info.audit(
                cur,
                "PAYMENT",
                actor=caller,
                subject_id=caller.user_id,
                resource_type="payment",
                resource_id=payment["id"],
                details={"step": "checkout_created", "track": track, "amount_cents": payment["amount_cents"]},
            )
    except stripe.StripeError as error:
        raise _provider_error(error) from None
    return {"checkout_url": session.url, "session_id": session.id, "payment_id": payment["id"]}


def create_payment_intent(gateway: StripeGateway, caller: Caller, track: str, info: RequestInfo) -> dict[str, str]:
    buyer = _check_buyer(caller, track)
    customer = _customer(gateway, buyer)
    try:
        with db.transaction() as cur:
            payment = _open_payment(cur, caller, buyer, "PAYMENT_INTENT", customer)
            intent = gateway.create_payment_intent(
                idempotency_key=payment["idempotency_key"],
                amount_cents=payment["amount_cents"],
                currency=payment["currency"],
                metadata=_metadata(payment),
                customer=customer,
                description=f"ApraNova — {buyer['track_name']}",
            )
            if not payment["stripe_payment_intent_id"]:
                repository.set_stripe_ids(cur, payment["id"], payment_intent_id=intent.id)
                info.audit(
                    cur,
                    "PAYMENT",
                    actor=caller,
                    subject_id=caller.user_id,
                    resource_type="payment",
                    resource_id=payment["id"],
                    details={"step": "payment_intent_created", "track": track, "amount_cents": payment["amount_cents"]},
                )
    except stripe.StripeError as error:
        raise _provider_error(error) from None
    return {"client_secret": intent.client_secret, "payment_id": payment["id"]}


# --- pay first -----------------------------------------------------------------------------------


def create_anonymous_checkout(gateway: StripeGateway, request: AnonymousCheckout, info: RequestInfo) -> dict[str, str]:
    track = _track_on_sale(repository.track(request.track), request.track)
    active = repository.active_versions()
    if (request.privacy_version, request.terms_version) != (active.get("privacy_version"), active.get("terms_version")):
        raise Conflict(
            "The privacy policy or terms you accepted are not the current ones.",
            code="consent_outdated",
            details=[
                {"field": "body.privacy_version", "current": active.get("privacy_version")},
                {"field": "body.terms_version", "current": active.get("terms_version")},
            ],
        )
    # Pay first is for new addresses only: the owner of an account signs in to buy, so a payment is
    # never linked to an account its payer did not sign in to (docs/principles.md §8 rule 14).
    if repository.account_exists(request.email):
        raise Conflict("An account exists for this email address: sign in to buy.", code="account_exists")
    try:
        with db.transaction() as cur:
            payment = repository.insert_payment(
                cur,
                user_id=None,
                track=track["track"],
                amount_cents=track["price_cents"],
                currency=track["currency"],
                kind="CHECKOUT",
                idempotency_key=f"anonymous-{uuid.uuid4()}",
                customer_email=request.email,
                customer_name=request.name,
            )
            repository.insert_checkout_consent(
                cur,
                payment_id=payment["id"],
                privacy_version=request.privacy_version,
                terms_version=request.terms_version,
                ip_address=info.ip_address,
                user_agent=info.user_agent,
            )
            session = _new_session(gateway, cur, payment, track["track_name"], customer_email=request.email)
            info.audit(
                cur,
                "PAYMENT",
                resource_type="payment",
                resource_id=payment["id"],
                details={"step": "anonymous_checkout_created", "track": track["track"]},
            )
    except stripe.StripeError as error:
        raise _provider_error(error) from None
    return {"checkout_url": session.url, "session_id": session.id, "payment_id": payment["id"]}


def verify_session(session_id: str) -> dict[str, Any]:
    row = repository.session_status(session_id)
    if row is None:
        raise NotFound("No checkout session with this id.")
    return {
        "payment_status": row["status"],
        "enrolled": bool(row["enrolled"]),
        "account_created": row["account_created"],
    }


# --- reading payments ----------------------------------------------------------------------------


def payment_status(caller: Caller, payment_id: str) -> dict[str, Any]:
    # Someone else's payment and no payment look the same: 404.
    row = repository.payment_of(caller.user_id, payment_id) if is_uuid(payment_id) else None
    if row is None:
        raise NotFound("No payment with this id.")
    return row


def my_payments(caller: Caller, cursor: str | None, limit: str | None) -> Page[dict[str, Any]]:
    size = parse_limit(limit)
    rows = repository.payments_of(caller.user_id, timestamp_uuid_keyset(cursor), size)
    return build_page(rows, size, lambda r: (r["created_at"].isoformat(), r["id"]))


def admin_payments(status: str | None, cursor: str | None, limit: str | None) -> Page[dict[str, Any]]:
    size = parse_limit(limit)
    rows = repository.all_payments(status, timestamp_uuid_keyset(cursor), size)
    return build_page(rows, size, lambda r: (r["created_at"].isoformat(), r["id"]))


# --- refunds -------------------------------------------------------------------------------------


def request_refund(
    caller: Caller, payment_id: str, reason: str, config: PaymentSettings, info: RequestInfo, send: Send
) -> dict[str, Any]:
    payment_id = canonical_uuid(payment_id) or ""  # the model checked the form; one spelling in the rows
    if not payment_id:
        raise NotFound("No payment with this id.")
    try:
        with db.transaction() as cur:
            payment = repository.payment_for_update(cur, payment_id)
            if payment is None or payment["user_id"] != caller.user_id:
                raise NotFound("No payment with this id.")
            if payment["status"] not in REFUNDABLE:
                raise Conflict(f"A payment that is {payment['status']} cannot be refunded.", code="not_refundable")
            paid_at = payment["succeeded_at"] or payment["created_at"]
            if datetime.now(UTC) - paid_at > timedelta(days=config.refund_window_days):
                raise ValidationFailed(
                    f"Refunds can be requested within {config.refund_window_days} days of payment.",
                    code="refund_window_passed",
                    details=[{"rule": "refund_window_days", "limit": config.refund_window_days}],
                )
            # From facts that only grow: the most steps ever completed at once (unticking lowers
            # today's count, never this) and any submitted work.
            facts = repository.refund_progress_facts(caller.user_id, payment["track"])
            progress = 100.0 * facts["most_done"] / facts["total"] if facts["total"] else 0.0
            if progress >= config.refund_max_progress_percent:
                raise ValidationFailed(
                    f"Refunds are available while less than {config.refund_max_progress_percent}% of the "
                    "course's steps have been completed.",
                    code="refund_progress_exceeded",
                    details=[
                        {
                            "rule": "refund_max_progress_percent",
                            "limit": config.refund_max_progress_percent,
                            "progress_percent": round(progress, 1),
                        }
                    ],
                )
            if facts["submissions"]:
                raise ValidationFailed(
                    "Refunds are available until the first piece of work is submitted.",
                    code="refund_work_submitted",
                    details=[{"rule": "no_submissions", "submissions": facts["submissions"]}],
                )
            with cur.connection.transaction():
                request = repository.insert_refund_request(
                    cur,
                    payment_id=payment_id,
                    user_id=caller.user_id,
                    reason=reason,
                    amount_cents=payment["amount_cents"] - payment["refunded_amount_cents"],
                )
            info.audit(
                cur,
                "REFUND_REQUESTED",
                actor=caller,
                subject_id=caller.user_id,
                resource_type="refund_request",
                resource_id=request["id"],
                details={"payment_id": payment_id, "amount_cents": request["amount_cents"]},
            )
    except psycopg.errors.UniqueViolation:
        raise Conflict(
            "A refund has already been requested for this payment.", code="refund_already_requested"
        ) from None
    contact = repository.user_contact(caller.user_id)
    if contact:
        _send_quietly(send, emails.refund_requested(contact, request))
    return request


def approve_refund(
    gateway: StripeGateway, admin: Caller, request_id: str, note: str | None, info: RequestInfo, send: Send
) -> dict[str, Any]:
    request_id = canonical_uuid(request_id) or ""  # one spelling: it is the refund's idempotency key
    if not request_id:
        raise NotFound("No refund request with this id.")
    try:
        with db.transaction() as cur:
            request = _pending_request(cur, request_id)
            payment = repository.payment_for_update(cur, request["payment_id"])
            if payment is None:  # the request's foreign key keeps its payment
                raise LookupError(f"the payment of refund request {request_id} is gone")
            if not payment["stripe_payment_intent_id"] or payment["status"] not in REFUNDABLE:
                raise Conflict(f"A payment that is {payment['status']} cannot be refunded.", code="not_refundable")
            # The request id is the idempotency key: approving twice (or retrying) refunds once.
            refund = gateway.refund(
                idempotency_key=f"refund-{request_id}",
                payment_intent=payment["stripe_payment_intent_id"],
                amount_cents=request["amount_cents"],
                metadata={"refund_request_id": request_id, "payment_id": payment["id"]},
            )
            decided = repository.decide_refund_request(
                cur, request_id, status="APPROVED", decided_by=admin.user_id, decision_reason=note,
                stripe_refund_id=refund.id,
            )  # fmt: skip
            info.audit(
                cur,
                "REFUND_DECIDED",
                actor=admin,
                subject_id=request["user_id"],
                resource_type="refund_request",
                resource_id=request_id,
                details={"decision": "APPROVED", "payment_id": payment["id"], "amount_cents": request["amount_cents"]},
            )
    except stripe.StripeError as error:
        raise _provider_error(error) from None
    _notify_decision(send, decided)
    return decided


def reject_refund(admin: Caller, request_id: str, reason: str, info: RequestInfo, send: Send) -> dict[str, Any]:
    """``reason`` (trimmed and never blank: ``RefundRejection``) is stored on the request, told to the
    student and kept in the audit row of the decision."""
    request_id = canonical_uuid(request_id) or ""  # one spelling: it is the refund's idempotency key
    if not request_id:
        raise NotFound("No refund request with this id.")
    with db.transaction() as cur:
        request = _pending_request(cur, request_id)
        decided = repository.decide_refund_request(
            cur, request_id, status="REJECTED", decided_by=admin.user_id, decision_reason=reason
        )
        info.audit(
            cur,
            "REFUND_DECIDED",
            actor=admin,
            subject_id=request["user_id"],
            resource_type="refund_request",
            resource_id=request_id,
            details={"decision": "REJECTED", "payment_id": request["payment_id"], "reason": reason},
        )
    _notify_decision(send, decided)
    return decided


def _pending_request(cur: Any, request_id: str) -> dict[str, Any]:
    request = repository.refund_request(cur, request_id, lock=True)
    if request is None:
        raise NotFound("No refund request with this id.")
    if request["status"] != "PENDING":
        raise Conflict(f"This refund request is already {request['status']}.", code="already_decided")
    return request


def _notify_decision(send: Send, request: dict[str, Any]) -> None:
    contact = repository.user_contact(request["user_id"]) if request["user_id"] else None
    if contact:
        _send_quietly(send, emails.refund_decided(contact, request))


def my_refund_requests(caller: Caller, cursor: str | None, limit: str | None) -> Page[dict[str, Any]]:
    """The caller's own refund requests, newest first (keyset-paged; one SQL statement)."""
    size = parse_limit(limit)
    rows = repository.refund_requests_of(caller.user_id, timestamp_uuid_keyset(cursor), size)
    return build_page(rows, size, lambda r: (r["created_at"].isoformat(), r["id"]))


def refund_requests(
    status: str | None, cursor: str | None, limit: str | None, *, user_id: str | None = None
) -> Page[dict[str, Any]]:
    size = parse_limit(limit)
    rows = repository.refund_requests(status, timestamp_uuid_keyset(cursor), size, user_id=user_id)
    return build_page(rows, size, lambda r: (r["created_at"].isoformat(), r["id"]))
