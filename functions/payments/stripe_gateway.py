"""Stripe, as the payments functions use it: the SDK's ``StripeClient`` with the API key from SSM,
read at use and re-read when Stripe refuses it (a rotation), through ``call``.

``STRIPE_API_BASE`` points the SDK elsewhere (the local stack's emulator); nothing else here knows
whether it talks to Stripe. Every call that creates something carries an idempotency key.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import stripe

from apranova.secrets import use_with_rotation
from functions.payments.config import PaymentSettings, settings
from functions.payments.secrets import secret

if TYPE_CHECKING:  # the SDK's typed request parameters, for the type checker only (no import cost)
    from stripe.params import EventListParams
    from stripe.params.checkout import SessionCreateParams

# One pinned API version: the object shapes our code reads are those of this version.
STRIPE_API_VERSION = "2025-08-27.basil"


T = TypeVar("T")
# One client per API key: a rotated key (read at use, apranova.secrets) gets a client of its own.
_clients: dict[str, stripe.StripeClient] = {}
_clients_lock = threading.Lock()


def _api_key(force: bool) -> str:
    config: PaymentSettings = settings()
    if not config.stripe_api_key_param:
        raise stripe.AuthenticationError("STRIPE_API_KEY_PARAM is not configured")
    return secret(config.stripe_api_key_param, force=force)


def _client_for(api_key: str) -> stripe.StripeClient:
    with _clients_lock:
        found = _clients.get(api_key)
        if found is None:
            config = settings()
            options: dict[str, Any] = {"stripe_version": STRIPE_API_VERSION, "max_network_retries": 2}
            if config.stripe_api_base:
                options["base_addresses"] = {"api": config.stripe_api_base}
            _clients.clear()  # the old key's client is of no further use
            found = _clients[api_key] = stripe.StripeClient(api_key, **options)
        return found


def client() -> stripe.StripeClient:
    """A client with the API key as currently cached (prefer ``call``, which survives a rotation)."""
    return _client_for(_api_key(False))


def call(action: Callable[[stripe.StripeClient], T]) -> T:
    """``action(client)``; when Stripe refuses the key (rotated), re-read it and try once more.

    Safe to repeat: Stripe answers 401 before doing anything, and every create carries an
    idempotency key.
    """
    return use_with_rotation(
        "stripe-api-key",
        _api_key,
        lambda api_key: action(_client_for(api_key)),
        rejected=lambda error: isinstance(error, stripe.AuthenticationError),
    )


def reset() -> None:
    with _clients_lock:
        _clients.clear()


def create_customer(user_id: str, email: str, name: str) -> str:
    # Keyed by user: concurrent first payments of one user make one Stripe customer.
    customer = call(
        lambda stripe_client: stripe_client.v1.customers.create(
            params={"email": email, "name": name, "metadata": {"user_id": user_id}},
            options={"idempotency_key": f"customer-{user_id}"},
        )
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
    params: SessionCreateParams = {
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
    return call(
        lambda stripe_client: stripe_client.v1.checkout.sessions.create(
            params=params, options={"idempotency_key": idempotency_key}
        )
    )


def retrieve_checkout_session(session_id: str) -> Any:
    return call(lambda stripe_client: stripe_client.v1.checkout.sessions.retrieve(session_id))


def expire_checkout_session(session_id: str) -> Any:
    return call(lambda stripe_client: stripe_client.v1.checkout.sessions.expire(session_id))


def create_payment_intent(
    *, idempotency_key: str, amount_cents: int, currency: str, metadata: dict[str, str], customer: str, description: str
) -> Any:
    return call(
        lambda stripe_client: stripe_client.v1.payment_intents.create(
            params={
                "amount": amount_cents,
                "currency": currency.lower(),
                "customer": customer,
                "metadata": metadata,
                "description": description,
                "allowed_payment_method_types": ["card"],
            },
            options={"idempotency_key": idempotency_key},
        )
    )


def refund(*, idempotency_key: str, payment_intent: str, amount_cents: int, metadata: dict[str, str]) -> Any:
    return call(
        lambda stripe_client: stripe_client.v1.refunds.create(
            params={
                "payment_intent": payment_intent,
                "amount": amount_cents,
                "reason": "requested_by_customer",
                "metadata": metadata,
            },
            options={"idempotency_key": idempotency_key},
        )
    )


def list_events(event_type: str, created_after: int, starting_after: str | None = None) -> Any:
    """One page (newest first) of the events of ``event_type`` created after ``created_after`` (the
    reconcile job looks for paid sessions whose webhook never reached us)."""
    params: EventListParams = {"type": event_type, "limit": 100, "created": {"gt": created_after}}
    if starting_after:
        params["starting_after"] = starting_after
    return call(lambda stripe_client: stripe_client.v1.events.list(params=params))
