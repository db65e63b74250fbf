"""What the payments services need from Stripe, as a type: the real gateway is the
functions/payments/stripe_gateway.py module (a module satisfies a Protocol), and the services take it
as a parameter so a test can hand them the real module pointed at the local emulator. The answers
are Stripe's objects (attribute access, ``.get``), typed ``Any`` as the SDK's own are loose."""

from __future__ import annotations

from typing import Any, Protocol


class StripeGateway(Protocol):
    def create_customer(self, user_id: str, email: str, name: str) -> str: ...

    def create_checkout_session(
        self,
        *,
        idempotency_key: str,
        amount_cents: int,
        currency: str,
        product_name: str,
        metadata: dict[str, str],
        customer: str | None,
        customer_email: str | None,
        client_reference_id: str | None,
    ) -> Any: ...

    def retrieve_checkout_session(self, session_id: str) -> Any: ...

    def expire_checkout_session(self, session_id: str) -> Any: ...

    def create_payment_intent(
        self,
        *,
        idempotency_key: str,
        amount_cents: int,
        currency: str,
        metadata: dict[str, str],
        customer: str,
        description: str,
    ) -> Any: ...

    def refund(
        self, *, idempotency_key: str, payment_intent: str, amount_cents: int, metadata: dict[str, str]
    ) -> Any: ...

    def list_events(self, event_type: str, created_after: int, starting_after: str | None = None) -> Any: ...
