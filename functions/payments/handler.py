"""The payments API function: checkout, PaymentIntents, pay-first checkout, payment status,
refund requests and the admin refund decisions. (The webhook is its own function: webhook.py.)"""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Query

from apranova import mail
from apranova.api import caller, create_app, lambda_entry, request_info
from apranova.audit import RequestInfo
from apranova.fields import UUID_PATTERN
from apranova.query_params import known_query_only
from functions.payments import service, stripe_gateway
from functions.payments.config import settings
from functions.payments.models import (
    AdminPaymentPage,
    AnonymousCheckout,
    CheckoutSession,
    Payment,
    PaymentIntentCreated,
    PaymentPage,
    RefundApproval,
    RefundRejection,
    RefundRequest,
    RefundRequestCreate,
    RefundRequestPage,
    SessionStatus,
    TrackChoice,
)

app = create_app()
NO_STORE = {"Cache-Control": "no-store"}

Cursor = Annotated[str | None, Query(max_length=512, description="next_cursor of the previous page")]
Limit = Annotated[str | None, Query(max_length=4, description="1..100, default 20")]
PaymentStatusFilter = Annotated[
    str | None,
    Query(pattern="^(PENDING|SUCCEEDED|FAILED|EXPIRED|REFUNDED|PARTIALLY_REFUNDED|DISPUTED)$"),
]
RefundStatusFilter = Annotated[str | None, Query(pattern="^(PENDING|APPROVED|REJECTED|FAILED)$")]
UserFilter = Annotated[str | None, Query(pattern=UUID_PATTERN, description="only this person's requests")]


def _info() -> RequestInfo:
    return request_info(app)


def _json(status: int, body: object) -> Response:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body, headers=NO_STORE)


@app.post("/api/payments/create-checkout-session/", summary="Start a Stripe Checkout for a track")
def create_checkout_session(request: TrackChoice) -> Response[CheckoutSession]:
    created = service.create_checkout_session(stripe_gateway, caller(app), request.track, _info())
    return _json(201, CheckoutSession.model_validate(created))


@app.post("/api/payments/create-payment/", summary="Start a PaymentIntent for a track (Stripe Elements)")
def create_payment(request: TrackChoice) -> Response[PaymentIntentCreated]:
    created = service.create_payment_intent(stripe_gateway, caller(app), request.track, _info())
    return _json(201, PaymentIntentCreated.model_validate(created))


@app.post(
    "/api/payments/create-anonymous-checkout/",
    summary="Pay first: a Checkout for a track without an account (one is created or linked on payment)",
)
def create_anonymous_checkout(request: AnonymousCheckout) -> Response[CheckoutSession]:
    created = service.create_anonymous_checkout(stripe_gateway, request, _info())
    return _json(201, CheckoutSession.model_validate(created))


@app.get("/api/payments/verify-session/", summary="The state of a Checkout Session (statuses only, never tokens)")
def verify_session(
    session_id: Annotated[str, Query(min_length=1, max_length=255, pattern=r"^cs_[A-Za-z0-9_]+$")],
) -> Response[SessionStatus]:
    return _json(200, SessionStatus.model_validate(service.verify_session(session_id)))


@app.get("/api/payments/status/<id>/", summary="One of my payments")
def payment_status(id: str) -> Response[Payment]:
    return _json(200, Payment.model_validate(service.payment_status(caller(app), id)))


@app.get("/api/payments/my-payments/", summary="My payments, newest first")
def my_payments(cursor: Cursor = None, limit: Limit = None) -> Response[PaymentPage]:
    page = service.my_payments(caller(app), cursor, limit)
    return _json(200, PaymentPage.model_validate(page.model_dump()))


@app.post("/api/payments/request-refund/", summary="Ask for a refund (decided by an administrator)")
def request_refund(request: RefundRequestCreate) -> Response[RefundRequest]:
    created = service.request_refund(caller(app), request.payment_id, request.reason, settings(), _info(), mail.send)
    return _json(201, RefundRequest.model_validate(created))


@app.get("/api/payments/my-refund-requests/", summary="My refund requests, newest first")
def my_refund_requests(cursor: Cursor = None, limit: Limit = None) -> Response[RefundRequestPage]:
    page = service.my_refund_requests(caller(app), cursor, limit)
    return _json(200, RefundRequestPage.model_validate(page.model_dump()))


@app.get("/api/admin/payments/", summary="All payments, newest first (admin)", middlewares=[known_query_only])
def admin_payments(
    status: PaymentStatusFilter = None, cursor: Cursor = None, limit: Limit = None
) -> Response[AdminPaymentPage]:
    page = service.admin_payments(status, cursor, limit)
    return _json(200, AdminPaymentPage.model_validate(page.model_dump()))


@app.get("/api/admin/refund-requests/", summary="Refund requests, oldest first (admin)", middlewares=[known_query_only])
def refund_requests(
    status: RefundStatusFilter = None, user_id: UserFilter = None, cursor: Cursor = None, limit: Limit = None
) -> Response[RefundRequestPage]:
    page = service.refund_requests(status, cursor, limit, user_id=user_id)
    return _json(200, RefundRequestPage.model_validate(page.model_dump()))


@app.post("/api/admin/refund-requests/<id>/approve/", summary="Approve: refund through Stripe (admin)")
def approve_refund(id: str, request: RefundApproval | None = None) -> Response[RefundRequest]:
    note = request.note if request else None
    decided = service.approve_refund(stripe_gateway, caller(app), id, note, _info(), mail.send)
    return _json(200, RefundRequest.model_validate(decided))


@app.post("/api/admin/refund-requests/<id>/reject/", summary="Reject with a reason (admin)")
def reject_refund(id: str, request: RefundRejection) -> Response[RefundRequest]:
    return _json(
        200, RefundRequest.model_validate(service.reject_refund(caller(app), id, request.reason, _info(), mail.send))
    )


lambda_handler = lambda_entry(app)
