"""The Stripe webhook function: ``POST /api/payments/webhook/`` (no authorizer; Stripe signs).

The signature is checked over the raw body exactly as it arrived (base64-decoded when API
Gateway says so) with a 5-minute tolerance, before the body is parsed. Without a configured
secret every request is refused (fail closed). Nothing is stored for a request that fails here.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import stripe
from aws_lambda_powertools.event_handler import Response, content_types

from apranova.api import create_app, lambda_entry
from apranova.errors import AppError, InvalidJson, InvalidRequest, ServiceUnavailable
from apranova.observability import logger
from apranova.secrets import use_with_rotation
from functions.payments import webhook_service
from functions.payments.config import settings
from functions.payments.event_deps import event_deps
from functions.payments.secrets import secret

TOLERANCE_SECONDS = 300
# Anyone can send a bad signature: such failures re-read the secret at most this often.
WEBHOOK_SECRET_REREAD_SECONDS = 5.0

app = create_app()


class InvalidSignature(AppError):
    status, code = 400, "invalid_signature"


def _raw_body() -> bytes:
    event = app.current_event.raw_event
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        return base64.b64decode(body)
    return body.encode("utf-8")


def _webhook_secret(force: bool = False) -> str:
    name = settings().stripe_webhook_secret_param
    if not name:
        logger.error("STRIPE_WEBHOOK_SECRET_PARAM is not configured: refusing every webhook")
        raise ServiceUnavailable("The webhook is not configured.", code="webhook_not_configured")
    try:
        return secret(name, force=force)
    except Exception:  # noqa: BLE001 - missing parameter, no permission, SSM down: refuse, Stripe retries
        logger.exception("webhook secret unavailable")
        raise ServiceUnavailable("The webhook is not configured.", code="webhook_not_configured") from None


def verified_event(payload: bytes, signature: str | None, webhook_secret: str) -> dict[str, Any]:
    if not signature:
        raise InvalidSignature("The Stripe-Signature header is missing.")
    try:
        stripe.WebhookSignature.verify_header(payload, signature, webhook_secret, tolerance=TOLERANCE_SECONDS)
    except (stripe.SignatureVerificationError, UnicodeDecodeError):
        # Stripe signs UTF-8 text: bytes that are not cannot carry its signature.
        raise InvalidSignature("The Stripe signature is not valid for this body.") from None
    try:
        event = json.loads(payload)
    except ValueError:
        raise InvalidJson("The event body is not valid JSON.") from None
    if (
        not isinstance(event, dict)
        or not isinstance(event.get("id"), str)
        or not isinstance(event.get("type"), str)
        or not isinstance((event.get("data") or {}).get("object"), dict)
    ):
        raise InvalidRequest("The body is not a Stripe event.", code="invalid_event")
    return event


_deps = event_deps  # one factory for both event processors


@app.post("/api/payments/webhook/", summary="Stripe events (signed by Stripe; no token)", include_in_schema=True)
def stripe_webhook() -> Response[dict]:
    payload = _raw_body()
    signature = app.current_event.headers.get("stripe-signature")
    # A signature that fails with the cached secret is checked once more with a fresh read: the
    # secret may have been rotated (apranova.secrets spaces such re-reads out).
    event = use_with_rotation(
        "stripe-webhook-secret",
        _webhook_secret,
        lambda webhook_secret: verified_event(payload, signature, webhook_secret),
        rejected=lambda error: isinstance(error, InvalidSignature) and bool(signature),
        reread_interval=WEBHOOK_SECRET_REREAD_SECONDS,
    )
    try:
        outcome = webhook_service.process(event, _deps())
    except webhook_service.WorkflowNotConfigured as error:
        logger.error("webhook cannot start a workflow", extra={"problem": str(error)})
        raise ServiceUnavailable("The webhook is not configured.", code="webhook_not_configured") from None
    except webhook_service.OutboxPending as error:
        # Recorded; what it calls for is left in the outbox. Stripe's redelivery (and the reconcile
        # job) carry it out.
        logger.warning("webhook follow-up pending", extra={"event_id": event["id"], "problem": str(error)})
        raise ServiceUnavailable(
            "The event is recorded; its follow-up will be retried.", code="follow_up_pending"
        ) from None
    logger.info("stripe event", extra={"event_id": event["id"], "type": event["type"], "outcome": outcome})
    return Response(
        status_code=200, content_type=content_types.APPLICATION_JSON, body={"received": True, "outcome": outcome}
    )


lambda_handler = lambda_entry(app)
