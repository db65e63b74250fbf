"""The Stripe emulator over real HTTP, driven by the real stripe SDK."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import stripe
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from local.stripe_emulator import StripeEmulator

SECRET = "whsec_test_" + "a" * 24


class WebhookReceiver:
    """A tiny endpoint that records deliveries and can be told to fail the first N."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.received: list[tuple[str, str]] = []  # (signature header, raw body)
        self.fail_next = 0

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        with self.lock:
            self.received.append((request.headers.get("Stripe-Signature", ""), request.get_data(as_text=True)))
            fail = self.fail_next > 0
            self.fail_next -= 1 if fail else 0
        return Response("boom" if fail else "ok", status=500 if fail else 200)(environ, start_response)

    def events(self, type: str | None = None) -> list[stripe.Event]:
        """Every delivered body, verified with the SDK exactly as our webhook will."""
        with self.lock:
            received = list(self.received)
        out = [stripe.Webhook.construct_event(body, sig, SECRET) for sig, body in received]
        return [e for e in out if type in (None, e.type)]


def _serve(app: Any) -> tuple[Any, str]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}"


@pytest.fixture(scope="module")
def stack() -> Iterator[tuple[StripeEmulator, str, WebhookReceiver]]:
    receiver = WebhookReceiver()
    hook_server, hook_url = _serve(receiver)
    emulator = StripeEmulator(webhook_url=hook_url + "/hook", webhook_secret=SECRET, retry_delays=(0.02, 0.04, 0.08))
    server, base = _serve(emulator)
    yield emulator, base, receiver
    server.shutdown()
    hook_server.shutdown()


@pytest.fixture
def base(stack: tuple[StripeEmulator, str, WebhookReceiver]) -> str:
    return stack[1]


@pytest.fixture
def receiver(stack: tuple[StripeEmulator, str, WebhookReceiver]) -> WebhookReceiver:
    stack[0].flush()
    with stack[2].lock:
        stack[2].received.clear()
        stack[2].fail_next = 0
    return stack[2]


@pytest.fixture
def client(base: str) -> stripe.StripeClient:
    return stripe.StripeClient(
        "sk_test_emulator", base_addresses={"api": base}, http_client=stripe.RequestsClient(), max_network_retries=0
    )


def _session_params(**extra: Any) -> dict[str, Any]:
    return {
        "mode": "payment",
        "line_items": [
            {
                "price_data": {"currency": "inr", "unit_amount": 499900, "product_data": {"name": "Data Professional"}},
                "quantity": 1,
            }
        ],
        "customer_email": "student@example.com",
        "client_reference_id": "user-1",
        "metadata": {"user_id": "user-1", "track": "DP"},
        "payment_intent_data": {"metadata": {"user_id": "user-1", "track": "DP"}},
        "success_url": "http://app.test/success?session_id={CHECKOUT_SESSION_ID}",
        "cancel_url": "http://app.test/cancel",
        **extra,
    }


def _pay(base: str, session_id: str, card: str = "4242424242424242") -> requests.Response:
    return requests.post(f"{base}/_test/checkout/sessions/{session_id}/pay", json={"card": card}, timeout=10)


def test_checkout_session_create_retrieve_expire(client: stripe.StripeClient, base: str, receiver) -> None:
    session = client.v1.checkout.sessions.create(params=_session_params())
    assert session.id.startswith("cs_test_")
    assert (session.object, session.status, session.payment_status) == ("checkout.session", "open", "unpaid")
    assert session.amount_total == 499900 and session.currency == "inr" and session.livemode is False
    assert session.url == f"{base}/pay/{session.id}"
    assert session.metadata.to_dict() == {"user_id": "user-1", "track": "DP"}
    assert session.client_reference_id == "user-1"

    again = client.v1.checkout.sessions.retrieve(session.id)
    assert again.id == session.id and again.created == session.created

    expired = client.v1.checkout.sessions.expire(session.id)
    assert expired.status == "expired"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.checkout.sessions.expire(session.id)
    stack_events = client.v1.events.list(params={"type": "checkout.session.expired"})
    assert stack_events.data[0].data.object["id"] == session.id


def test_errors_use_stripe_shapes(client: stripe.StripeClient, base: str) -> None:
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.checkout.sessions.retrieve("cs_test_nope")
    assert missing.value.code == "resource_missing" and missing.value.http_status == 404
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        client.v1.checkout.sessions.create(params={**_session_params(), "amount": 1})  # type: ignore[typeddict-unknown-key]
    assert unknown.value.code == "parameter_unknown"

    no_key = requests.get(f"{base}/v1/events", timeout=5)
    assert no_key.status_code == 401 and no_key.json()["error"]["type"] == "invalid_request_error"
    bad = stripe.StripeClient("sk_live_nope", base_addresses={"api": base}, http_client=stripe.RequestsClient())
    with pytest.raises(stripe.AuthenticationError):
        bad.v1.events.list()


def test_idempotency_replays_and_conflicts(client: stripe.StripeClient) -> None:
    key = str(uuid.uuid4())
    first = client.v1.checkout.sessions.create(params=_session_params(), options={"idempotency_key": key})
    second = client.v1.checkout.sessions.create(params=_session_params(), options={"idempotency_key": key})
    assert first.id == second.id
    assert second.last_response.headers.get("Idempotent-Replayed") == "true"
    with pytest.raises(stripe.IdempotencyError) as conflict:
        client.v1.checkout.sessions.create(
            params=_session_params(client_reference_id="user-2"), options={"idempotency_key": key}
        )
    assert conflict.value.http_status == 400


def test_pay_delivers_signed_events_before_answering(
    client: stripe.StripeClient, base: str, receiver: WebhookReceiver
) -> None:
    session = client.v1.checkout.sessions.create(params=_session_params())
    answer = _pay(base, session.id)
    assert answer.status_code == 200, answer.text

    # Delivered synchronously: already here, and verified with the real SDK.
    completed = receiver.events("checkout.session.completed")
    assert len(completed) == 1
    obj = completed[0].data.object.to_dict()
    assert obj["id"] == session.id and obj["payment_status"] == "paid" and obj["status"] == "complete"
    assert obj["metadata"] == {"user_id": "user-1", "track": "DP"}
    types = {e.type for e in receiver.events()}
    assert {"payment_intent.succeeded", "charge.succeeded"} <= types

    paid = client.v1.checkout.sessions.retrieve(session.id)
    pi = client.v1.payment_intents.retrieve(paid.payment_intent)
    assert pi.id.startswith("pi_") and pi.status == "succeeded" and pi.amount_received == 499900
    assert pi.metadata.to_dict() == {"user_id": "user-1", "track": "DP"}
    charge = client.v1.charges.retrieve(pi.latest_charge)
    assert charge.id.startswith("ch_") and charge.paid and charge.metadata.to_dict() == pi.metadata.to_dict()
    assert _pay(base, session.id).status_code == 400  # not open any more


def test_declined_card_leaves_session_open(client: stripe.StripeClient, base: str, receiver: WebhookReceiver) -> None:
    session = client.v1.checkout.sessions.create(params=_session_params())
    assert _pay(base, session.id, "4000000000000002").status_code == 200
    failed = receiver.events("payment_intent.payment_failed")
    assert len(failed) == 1
    assert failed[0].data.object["status"] == "requires_payment_method"
    assert failed[0].data.object["last_payment_error"]["code"] == "card_declined"
    assert not receiver.events("checkout.session.completed")
    assert client.v1.checkout.sessions.retrieve(session.id).status == "open"


def test_delivery_retries_on_non_2xx(client: stripe.StripeClient, base: str, receiver: WebhookReceiver) -> None:
    receiver.fail_next = 2
    session = client.v1.checkout.sessions.create(params=_session_params())
    deliveries = _pay(base, session.id).json()["deliveries"]
    first = deliveries[0]
    attempts = [d for d in deliveries if d["event_id"] == first["event_id"]]
    assert [d["status"] for d in attempts] == [500, 500, 200]
    # Each attempt carries a valid signature; the event arrived three times.
    assert len([e for e in receiver.events() if e.id == first["event_id"]]) == 3
    log = requests.get(f"{base}/_test/deliveries", timeout=5).json()["data"]
    assert [d["attempt"] for d in log if d["event_id"] == first["event_id"]] == [1, 2, 3]


def test_pay_page_for_a_person(client: stripe.StripeClient, base: str, receiver: WebhookReceiver) -> None:
    session = client.v1.checkout.sessions.create(params=_session_params())
    page = requests.get(session.url, timeout=5)
    assert page.status_code == 200 and "Data Professional" in page.text and "4999.00 INR" in page.text
    assert f'action="/pay/{session.id}"' in page.text

    declined = requests.post(session.url, data={"card": "4000000000000002"}, allow_redirects=False, timeout=5)
    assert declined.status_code == 402 and "declined" in declined.text

    paid = requests.post(session.url, data={"card": "4242 4242 4242 4242"}, allow_redirects=False, timeout=5)
    assert paid.status_code == 303
    assert paid.headers["Location"] == f"http://app.test/success?session_id={session.id}"
    assert len(receiver.events("checkout.session.completed")) == 1


def test_the_pay_page_names_the_signed_in_buyer(client: stripe.StripeClient, receiver: WebhookReceiver) -> None:
    # A signed-in student's session is made for their Customer (no customer_email), as ours are.
    customer = client.v1.customers.create(params={"email": "ada@example.com", "name": "Ada Lovelace"})
    params = _session_params(customer=customer.id)
    del params["customer_email"]
    session = client.v1.checkout.sessions.create(params=params)
    page = requests.get(session.url, timeout=5)
    assert "Paying as ada@example.com" in page.text and "guest" not in page.text
    paid = requests.post(session.url, data={"card": "4242424242424242"}, allow_redirects=False, timeout=5)
    assert paid.status_code == 303
    (completed,) = receiver.events("checkout.session.completed")
    assert completed.data.object.customer_details.email == "ada@example.com"
    # Without an email or a customer, the page says so.
    anonymous = _session_params()
    del anonymous["customer_email"]
    assert "Paying as guest" in requests.get(client.v1.checkout.sessions.create(params=anonymous).url, timeout=5).text


def test_payment_intents_customers_refunds_and_disputes(
    stack: tuple[StripeEmulator, str, WebhookReceiver], client: stripe.StripeClient, base: str, receiver
) -> None:
    customer = client.v1.customers.create(params={"email": "s@example.com", "metadata": {"user_id": "u"}})
    assert customer.id.startswith("cus_")
    assert client.v1.customers.retrieve(customer.id).email == "s@example.com"

    pi = client.v1.payment_intents.create(
        params={"amount": 1000, "currency": "inr", "customer": customer.id, "metadata": {"track": "DP"}}
    )
    assert pi.status == "requires_payment_method" and pi.client_secret.startswith(pi.id + "_secret_")
    with pytest.raises(stripe.CardError):
        client.v1.payment_intents.confirm(pi.id, params={"payment_method": "pm_card_chargeDeclined"})
    ok = client.v1.payment_intents.confirm(pi.id, params={"payment_method": "pm_card_visa"})
    assert ok.status == "succeeded"

    partial = client.v1.refunds.create(params={"payment_intent": pi.id, "amount": 300})
    assert partial.id.startswith("re_") and partial.amount == 300
    with pytest.raises(stripe.InvalidRequestError) as too_much:
        client.v1.refunds.create(params={"charge": ok.latest_charge, "amount": 800})
    assert too_much.value.code == "amount_too_large"
    rest = client.v1.refunds.create(params={"charge": ok.latest_charge})
    assert rest.amount == 700
    stack[0].flush()
    refunded = [e.data.object for e in receiver.events("charge.refunded")]
    assert [(c["amount_refunded"], c["refunded"]) for c in refunded] == [(300, False), (1000, True)]

    pi2 = client.v1.payment_intents.create(params={"amount": 500, "currency": "inr", "payment_method": "pm_card_visa"})
    charge = client.v1.payment_intents.confirm(pi2.id).latest_charge
    dispute = requests.post(f"{base}/_test/charges/{charge}/dispute", json={}, timeout=5).json()["dispute"]
    assert dispute["id"].startswith("du_") and dispute["charge"] == charge
    created = receiver.events("charge.dispute.created")
    assert created and created[-1].data.object["id"] == dispute["id"]

    event = client.v1.events.retrieve(created[-1].id)
    assert event.type == "charge.dispute.created"
    assert json.loads(json.dumps(event.data.object.to_dict()))["amount"] == 500


def test_an_endpoint_receives_only_the_event_types_it_subscribed_to(
    stack: tuple[StripeEmulator, str, WebhookReceiver], receiver: WebhookReceiver
) -> None:
    """As a Stripe webhook endpoint's ``enabled_events``: other events are created (the events API
    lists them) but never sent, and nothing waits on them."""
    emulator = StripeEmulator(
        webhook_url=stack[0].webhook_url,
        webhook_secret=SECRET,
        enabled_events=("checkout.session.completed", "payment_intent.succeeded"),
    )
    server, own_base = _serve(emulator)
    try:
        own = stripe.StripeClient(
            "sk_test_emulator",
            base_addresses={"api": own_base},
            http_client=stripe.RequestsClient(),
            max_network_retries=0,
        )
        session = own.v1.checkout.sessions.create(params=_session_params())
        answer = _pay(own_base, session.id).json()
        sent = [d["type"] for d in answer["deliveries"]]
        assert sorted(sent) == ["checkout.session.completed", "payment_intent.succeeded"]
        assert sorted(e.type for e in receiver.events()) == sorted(sent)
        created = {e.type: e for e in own.v1.events.list(params={"limit": 10}).data}
        assert "charge.succeeded" in created and created["charge.succeeded"].pending_webhooks == 0
        assert created["payment_intent.succeeded"].pending_webhooks == 0  # delivered
    finally:
        server.shutdown()


def test_operators_register_the_event_types_the_webhook_handles() -> None:
    """docs/operations.md has operators select these types in the Stripe Dashboard, and the local
    stack's endpoint subscribes to the webhook's handled types: the two lists agree."""
    import re
    from pathlib import Path

    from functions.payments.webhook_service import HANDLED_EVENTS

    doc = (Path(__file__).resolve().parents[2] / "docs" / "operations.md").read_text(encoding="utf-8")
    section = doc[doc.index("**Register the webhook.**") :]
    section = section[: section.index("\n\n")]
    registered = set(re.findall(r"`([a-z_]+(?:\.[a-z_]+)+)`", section))
    assert registered == set(HANDLED_EVENTS)
