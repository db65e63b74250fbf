"""The Stripe emulator takes only parameters Stripe itself takes at the API version our SDK pins (its
typed request parameters): a parameter Stripe renamed or dropped is refused locally too, as Stripe
would refuse it, instead of passing every local test and failing in production."""

from __future__ import annotations

import pytest
import stripe
from stripe.params import (
    CustomerCreateParams,
    PaymentIntentConfirmParams,
    PaymentIntentCreateParams,
    RefundCreateParams,
)
from stripe.params.checkout import SessionCreateParams

from local.stripe_emulator import app


def _keys(params: type) -> set[str]:
    """The parameter names of a typed request (its own and its bases' annotations, unresolved)."""
    return {name for cls in params.__mro__ for name in getattr(cls, "__annotations__", {})}


@pytest.mark.parametrize(
    ("emulated", "sdk"),
    [
        (app.SESSION_CREATE_PARAMS, SessionCreateParams),
        (app.PAYMENT_INTENT_CREATE_PARAMS, PaymentIntentCreateParams),
        (app.PAYMENT_INTENT_CONFIRM_PARAMS, PaymentIntentConfirmParams),
        (app.CUSTOMER_CREATE_PARAMS, CustomerCreateParams),
        (app.REFUND_CREATE_PARAMS, RefundCreateParams),
    ],
    ids=[
        "checkout.sessions.create",
        "payment_intents.create",
        "payment_intents.confirm",
        "customers.create",
        "refunds.create",
    ],  # fmt: skip
)
def test_the_emulator_takes_only_what_stripe_takes(emulated: frozenset[str], sdk: type) -> None:
    assert emulated <= _keys(sdk), f"not Stripe parameters at API version {stripe.api_version}"


def test_a_renamed_parameter_is_refused_as_stripe_refuses_it() -> None:
    """At this API version a PaymentIntent's methods are ``allowed_payment_method_types``."""
    assert "payment_method_types" not in _keys(PaymentIntentCreateParams)
    with pytest.raises(app.StripeError) as refused:
        app._check_unknown({"amount": 100, "payment_method_types": ["card"]}, app.PAYMENT_INTENT_CREATE_PARAMS)
    assert refused.value.status == 400
