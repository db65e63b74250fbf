"""Stripe, as the payments functions use it: the SDK's ``StripeClient`` with the API key from SSM.

``STRIPE_API_BASE`` points the SDK elsewhere (the local stack's emulator); nothing else here knows
whether it talks to Stripe. Every call that creates something carries an idempotency key.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import stripe

from functions.payments.config import PaymentSettings, settings
from functions.payments.secrets import secret

# One pinned API version: the object shapes our code reads are those of this version.
STRIPE_API_VERSION = "2025-08-27.basil"


@cache
def client() -> stripe.StripeClient:
    config: PaymentSettings = settings()
    if not config.stripe_api_key_param:
        raise stripe.AuthenticationError("STRIPE_API_KEY_PARAM is not configured")
    options: dict[str, Any] = {"stripe_version": STRIPE_API_VERSION, "max_network_retries": 2}
    if config.stripe_api_base:
        options["base_addresses"] = {"api": config.stripe_api_base}
    return stripe.StripeClient(secret(config.stripe_api_key_param), **options)


def reset() -> None:
    client.cache_clear()


def create_customer(user_id: str, email: str, name: str) -> str:
    # Keyed by user: concurrent first payments of one user make one Stripe customer.
    customer = client().v1.customers.create(
        params={"email": email, "name": name, "metadata": {"user_id": user_id}},
        options={"idempotency_key": f"customer-{user_id}"},
    )
    return customer.id


def create_checkout_session(
    *,
    idempotency_key: str,
    amount_cents: int,
    currency: str,
    product_name: str,
    metadata: dict[str, str],
    customer: str | None,
    customer_email: str | None,
    client_reference_id: str | None,
) -> Any:
    config = settings()
    params: dict[str, Any] = {
        "mode": "payment",
        "line_items": [
            {
                "quantity": 1,
                "price_data": {
                    "currency": currency.lower(),
                    "unit_amount": amount_cents,
                    "product_data": {"name": product_name},
                },
            }
        ],
        "metadata": metadata,
        "payment_intent_data": {"metadata": metadata},
        "success_url": config.checkout_success_url,
        "cancel_url": config.checkout_cancel_url,
    }
    if customer:
        params["customer"] = customer
    elif customer_email:
        params["customer_email"] = customer_email
    if client_reference_id:
        params["client_reference_id"] = client_reference_id
    return client().v1.checkout.sessions.create(params=params, options={"idempotency_key": idempotency_key})


def retrieve_checkout_session(session_id: str) -> Any:
    return client().v1.checkout.sessions.retrieve(session_id)


def expire_checkout_session(session_id: str) -> Any:
    return client().v1.checkout.sessions.expire(session_id)


def create_payment_intent(
    *, idempotency_key: str, amount_cents: int, currency: str, metadata: dict[str, str], customer: str, description: str
) -> Any:
    return client().v1.payment_intents.create(
        params={
            "amount": amount_cents,
            "currency": currency.lower(),
            "customer": customer,
            "metadata": metadata,
            "description": description,
            "payment_method_types": ["card"],
        },
        options={"idempotency_key": idempotency_key},
    )


def refund(*, idempotency_key: str, payment_intent: str, amount_cents: int, metadata: dict[str, str]) -> Any:
    return client().v1.refunds.create(
        params={
            "payment_intent": payment_intent,
            "amount": amount_cents,
            "reason": "requested_by_customer",
            "metadata": metadata,
        },
        options={"idempotency_key": idempotency_key},
    )
