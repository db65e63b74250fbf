"""The payments secrets rotate without a redeploy (docs/principles.md §8 rule 17, issue 14 item 3).

Each test rotates a secret in moto's SSM and at the Stripe emulator between two calls of the running
API; the second call succeeds although the first one cached the old value, and the old value is
refused from then on.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import boto3
import pytest
import requests
import stripe

from tests.integration.payments_support import WEBHOOK_SECRET, PaymentsStack, start_stack


@pytest.fixture(scope="module")
def stack(database_url: str) -> Iterator[PaymentsStack]:
    yield from start_stack(database_url)


@pytest.fixture
def ssm(stack: PaymentsStack):
    return boto3.client("ssm", endpoint_url=stack.moto, region_name="us-east-1")


def _checkout(stack: PaymentsStack, who: dict[str, str]) -> requests.Response:
    return stack.call("POST", "/api/payments/create-checkout-session/", who, json={"track": "DP"})


def test_the_stripe_key_is_re_read_when_stripe_refuses_the_rotated_one(stack: PaymentsStack, ssm) -> None:
    first, second = stack.student(), stack.student()
    before = _checkout(stack, first)
    assert before.status_code == 201, before.text  # the old key is now cached in the function
    new_key = "sk_test_" + secrets.token_hex(12)
    ssm.put_parameter(Name=stack.env["STRIPE_API_KEY_PARAM"], Value=new_key, Type="SecureString", Overwrite=True)
    stack.emulator.roll_api_key(new_key)
    old_client = stack.stripe()  # a client with the old key is refused, as by Stripe
    with pytest.raises(stripe.AuthenticationError):
        old_client.v1.checkout.sessions.retrieve(before.json()["session_id"])

    after = _checkout(stack, second)

    assert after.status_code == 201, after.text
    session = stripe.StripeClient(
        new_key, base_addresses={"api": stack.stripe_url}, http_client=stripe.RequestsClient()
    ).v1.checkout.sessions.retrieve(after.json()["session_id"])
    assert session.client_reference_id == second["id"]
    paid = stack.pay(after.json()["session_id"])
    assert all(d["status"] == 200 for d in paid["deliveries"]), paid["deliveries"]
    assert stack.row("SELECT status FROM payments WHERE id = %s", after.json()["payment_id"]) == {"status": "SUCCEEDED"}


def test_the_webhook_secret_is_re_read_when_a_signature_fails_with_the_cached_one(stack: PaymentsStack, ssm) -> None:
    first, second = stack.student(), stack.student()
    before = _checkout(stack, first).json()
    paid = stack.pay(before["session_id"])  # verified with the secret the function now caches
    assert all(d["status"] == 200 for d in paid["deliveries"]), paid["deliveries"]
    new_secret = "whsec_" + secrets.token_hex(24)
    ssm.put_parameter(
        Name=stack.env["STRIPE_WEBHOOK_SECRET_PARAM"], Value=new_secret, Type="SecureString", Overwrite=True
    )
    stack.emulator.webhook_secret = new_secret  # Stripe signs with the rolled secret from now on
    try:
        after = _checkout(stack, second).json()

        paid = stack.pay(after["session_id"])

        assert [d["status"] for d in paid["deliveries"]] and all(d["status"] == 200 for d in paid["deliveries"])
        assert stack.row("SELECT status FROM payments WHERE id = %s", after["payment_id"]) == {"status": "SUCCEEDED"}
        old_signed = stack.deliver(
            {"id": "evt_" + secrets.token_hex(8), "type": "ping", "data": {"object": {}}}, secret=WEBHOOK_SECRET
        )
        assert old_signed.status_code == 400
        assert old_signed.json()["error"]["code"] == "invalid_signature"
    finally:
        ssm.put_parameter(
            Name=stack.env["STRIPE_WEBHOOK_SECRET_PARAM"], Value=WEBHOOK_SECRET, Type="SecureString", Overwrite=True
        )
        stack.emulator.webhook_secret = WEBHOOK_SECRET
