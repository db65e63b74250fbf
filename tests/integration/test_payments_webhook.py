"""The webhook on its own: signatures, bad bodies, unknown payments, out-of-order and concurrent
deliveries. Events are signed as Stripe signs them and posted over HTTP (or, for the concurrency
test, handed to the real handler in 21 separate processes, as 21 Lambda environments would be)."""

from __future__ import annotations

import copy
import json
import multiprocessing
import os
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.metrics_support import metric_counts
from tests.integration.payments_support import OPS, PaymentsStack, start_stack


@pytest.fixture(scope="module")
def stack(database_url: str) -> Iterator[PaymentsStack]:
    yield from start_stack(database_url)


def _events(stack: PaymentsStack) -> int:
    return stack.row("SELECT count(*) AS n FROM stripe_events")["n"]


def _pending_checkout(stack: PaymentsStack) -> tuple[dict[str, str], dict[str, str]]:
    student = stack.student()
    created = stack.call("POST", "/api/payments/create-checkout-session/", student, json={"track": "DP"})
    assert created.status_code == 201, created.text
    return student, created.json()


def _event(type: str, obj: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": f"evt_{uuid.uuid4().hex[:24]}",
        "object": "event",
        "api_version": "2025-08-27.basil",
        "created": int(time.time()),
        "type": type,
        "data": {"object": obj},
    }


def _completed(created: dict[str, str], user_id: str, intent: str) -> dict[str, Any]:
    return _event(
        "checkout.session.completed",
        {
            "id": created["session_id"],
            "object": "checkout.session",
            "payment_status": "paid",
            "status": "complete",
            "payment_intent": intent,
            "metadata": {"payment_id": created["payment_id"], "user_id": user_id, "track": "DP"},
        },
    )


def _refunded(created: dict[str, str], intent: str, charge: str, amount_refunded: int) -> dict[str, Any]:
    return _event(
        "charge.refunded",
        {
            "id": charge,
            "object": "charge",
            "payment_intent": intent,
            "amount": 49900,
            "amount_refunded": amount_refunded,
            "refunded": amount_refunded >= 49900,
            "metadata": {"payment_id": created["payment_id"], "track": "DP"},
        },
    )


# --- signatures and bodies ------------------------------------------------------------------------


def test_bad_signatures_are_refused_and_nothing_is_stored(stack: PaymentsStack) -> None:
    event = _event("payment_intent.succeeded", {"id": "pi_x", "object": "payment_intent", "metadata": {}})
    payload = json.dumps(event)
    before = _events(stack)
    from local.stripe_emulator.app import sign_payload

    good = sign_payload(payload, "whsec_" + "s" * 32)
    tampered = json.dumps({**event, "type": "charge.refunded"})
    cases = {
        "no signature": stack.deliver(payload, signature=""),
        "garbage": stack.deliver(payload, signature="nonsense"),
        "tampered body": stack.deliver(tampered, signature=good),
        "stale": stack.deliver(payload, timestamp=int(time.time()) - 301),
        "wrong secret": stack.deliver(payload, secret="whsec_" + "w" * 32),
        "v0 only": stack.deliver(payload, signature=good.replace("v1=", "v0=")),
    }
    for name, answer in cases.items():
        assert answer.status_code == 400, name
        assert answer.json()["error"]["code"] == "invalid_signature", name
    assert _events(stack) == before
    assert stack.deliver(payload).status_code == 200  # the same event, signed properly


def test_signed_bodies_that_are_not_events_are_refused(stack: PaymentsStack) -> None:
    before = _events(stack)
    not_json = stack.deliver("this is not json")
    assert not_json.status_code == 400 and not_json.json()["error"]["code"] == "invalid_json"
    not_event = stack.deliver(json.dumps({"hello": "world"}))
    assert not_event.status_code == 400 and not_event.json()["error"]["code"] == "invalid_event"
    assert _events(stack) == before


def test_unknown_types_are_acknowledged_and_ignored(stack: PaymentsStack) -> None:
    event = _event("customer.updated", {"id": "cus_x", "object": "customer"})
    answer = stack.deliver(event)
    assert answer.status_code == 200 and answer.json()["outcome"] == "ignored"
    assert stack.row("SELECT outcome FROM stripe_events WHERE event_id = %s", event["id"])["outcome"] == "ignored"


def test_an_event_for_an_unknown_payment_is_recorded_and_alerted(stack: PaymentsStack) -> None:
    event = _event(
        "payment_intent.succeeded",
        {
            "id": f"pi_{uuid.uuid4().hex[:12]}",
            "object": "payment_intent",
            "metadata": {"payment_id": str(uuid.uuid4())},
        },
    )
    answer = stack.deliver(event)
    assert answer.status_code == 200 and answer.json()["outcome"] == "unknown_payment"
    row = stack.row("SELECT outcome, processed_at FROM stripe_events WHERE event_id = %s", event["id"])
    assert row["outcome"] == "unknown_payment" and row["processed_at"] is not None
    alerts = [m for m in stack.mail_to(OPS) if m["subject"].endswith("Stripe event for an unknown payment")]
    assert any(event["id"] in (m["body_text"] or m["body_html"] or "") for m in alerts)


def test_a_duplicate_delivery_is_not_processed_again(stack: PaymentsStack) -> None:
    student, created = _pending_checkout(stack)
    event = _completed(created, student["id"], f"pi_{uuid.uuid4().hex[:12]}")
    assert stack.deliver(event).json()["outcome"] == "enrollment_started"
    assert stack.deliver(event).json()["outcome"] == "duplicate"
    assert len(stack.executions(stack.enrollment_arn, f"enroll-{created['payment_id']}")) == 1


def test_without_a_configured_secret_every_delivery_is_refused(stack: PaymentsStack) -> None:
    from tests.integration.payments_support import reset_caches

    event = _event("customer.updated", {"id": "cus_x", "object": "customer"})
    saved = os.environ.pop("STRIPE_WEBHOOK_SECRET_PARAM")
    reset_caches()
    try:
        answer = stack.deliver(event)
    finally:
        os.environ["STRIPE_WEBHOOK_SECRET_PARAM"] = saved
        reset_caches()
    assert answer.status_code == 503 and answer.json()["error"]["code"] == "webhook_not_configured"
    assert stack.row("SELECT 1 AS x FROM stripe_events WHERE event_id = %s", event["id"]) is None


def test_base64_bodies_from_api_gateway_are_verified_on_the_decoded_bytes(stack: PaymentsStack) -> None:
    import base64

    from functions.payments import webhook
    from local.events import LambdaContext, http_api_event
    from local.stripe_emulator.app import sign_payload

    event = _event("customer.updated", {"id": "cus_x", "object": "customer", "name": "Zoë"})
    payload = json.dumps(event, ensure_ascii=False)
    request = http_api_event(
        "POST",
        "/api/payments/webhook/",
        body=base64.b64encode(payload.encode()).decode(),
        headers={"stripe-signature": sign_payload(payload, "whsec_" + "s" * 32), "content-type": "application/json"},
    )
    request["isBase64Encoded"] = True
    answer = webhook.lambda_handler(request, LambdaContext("apranova-payments-webhook"))
    assert answer["statusCode"] == 200, answer


# --- out of order ---------------------------------------------------------------------------------


def test_refund_before_completion_ends_refunded_without_enrollment(stack: PaymentsStack) -> None:
    student, created = _pending_checkout(stack)
    intent, charge = f"pi_{uuid.uuid4().hex[:12]}", f"ch_{uuid.uuid4().hex[:12]}"
    assert stack.deliver(_refunded(created, intent, charge, 49900)).status_code == 200
    assert stack.deliver(_completed(created, student["id"], intent)).status_code == 200
    assert stack.deliver(_completed(created, student["id"], intent)).status_code == 200  # a second completion
    payment = stack.row("SELECT * FROM payments WHERE id = %s", created["payment_id"])
    assert (payment["status"], payment["refunded_amount_cents"]) == ("REFUNDED", 49900)
    assert payment["stripe_charge_id"] == charge and payment["stripe_payment_intent_id"] == intent
    assert stack.executions(stack.enrollment_arn, f"enroll-{created['payment_id']}") == []
    assert stack.executions(stack.deprovision_arn, f"deprovision-{created['payment_id']}") == []


def test_partial_refund_keeps_the_student_and_a_full_one_withdraws(stack: PaymentsStack) -> None:
    student, created = _pending_checkout(stack)
    intent, charge = f"pi_{uuid.uuid4().hex[:12]}", f"ch_{uuid.uuid4().hex[:12]}"
    stack.deliver(_completed(created, student["id"], intent))
    stack.row(
        "UPDATE users SET enrollment_status = 'ENROLLED', track_id = 1, enrollment_payment_id = %s WHERE id = %s"
        " RETURNING id",
        created["payment_id"],
        student["id"],
    )
    stack.deliver(_refunded(created, intent, charge, 10000))
    payment = stack.row("SELECT status, refunded_amount_cents FROM payments WHERE id = %s", created["payment_id"])
    assert (payment["status"], payment["refunded_amount_cents"]) == ("PARTIALLY_REFUNDED", 10000)
    assert stack.executions(stack.deprovision_arn, f"deprovision-{created['payment_id']}") == []
    # An older refund event arriving late changes nothing (amounts only grow).
    stack.deliver(_refunded(created, intent, charge, 5000))
    assert (
        stack.row("SELECT refunded_amount_cents AS n FROM payments WHERE id = %s", created["payment_id"])["n"] == 10000
    )
    stack.deliver(_refunded(created, intent, charge, 49900))
    payment = stack.row("SELECT status, refunded_at FROM payments WHERE id = %s", created["payment_id"])
    assert payment["status"] == "REFUNDED" and payment["refunded_at"] is not None
    assert (
        stack.row("SELECT enrollment_status FROM users WHERE id = %s", student["id"])["enrollment_status"] == "REFUNDED"
    )
    runs = stack.executions(stack.deprovision_arn, f"deprovision-{created['payment_id']}")
    assert len(runs) == 1
    assert stack.execution_input(runs[0]["executionArn"])["user_id"] == student["id"]


def test_a_full_refund_withdraws_only_the_enrollment_that_payment_made(stack: PaymentsStack) -> None:
    """Payment X started an enrollment that did not take; an admin then enrolled the student in the
    same track (an enrollment no payment made: ``enrollment_payment_id`` NULL). X's full refund
    takes back what X provisioned (its payment-scoped deprovision) and leaves the admin's
    enrollment as it is: withdrawn by payment, never by track (issue 13)."""
    student, created = _pending_checkout(stack)
    intent, charge = f"pi_{uuid.uuid4().hex[:12]}", f"ch_{uuid.uuid4().hex[:12]}"
    stack.deliver(_completed(created, student["id"], intent))
    assert stack.row("SELECT enrollment_execution FROM payments WHERE id = %s", created["payment_id"])[
        "enrollment_execution"
    ]
    stack.row(
        "UPDATE users SET enrollment_status = 'ENROLLED', track_id = (SELECT id FROM tracks WHERE code = 'DP'),"
        " enrollment_payment_id = NULL WHERE id = %s RETURNING id",
        student["id"],
    )
    assert stack.deliver(_refunded(created, intent, charge, 49900)).status_code == 200
    assert stack.row("SELECT status FROM payments WHERE id = %s", created["payment_id"])["status"] == "REFUNDED"
    user = stack.row("SELECT enrollment_status, enrollment_payment_id FROM users WHERE id = %s", student["id"])
    assert (user["enrollment_status"], user["enrollment_payment_id"]) == ("ENROLLED", None)
    withdrawn = stack.row(
        "SELECT details FROM audit_logs WHERE resource_id = %s AND details->>'step' = 'withdrawn'",
        created["payment_id"],
    )
    assert withdrawn is not None and withdrawn["details"]["was_enrolled"] is False
    # What X provisioned (nothing here) is still taken back: its deprovision was started.
    assert len(stack.executions(stack.deprovision_arn, f"deprovision-{created['payment_id']}")) == 1


# --- concurrency ----------------------------------------------------------------------------------


def _deliver_in_process(args: tuple[dict[str, Any], str, dict[str, str], Any]) -> int:
    """One Lambda environment: import the webhook and handle one delivery, after the barrier."""
    event, signature, environment, barrier = args
    os.environ.update(environment)
    from functions.payments import webhook
    from local.events import LambdaContext, http_api_event

    request = http_api_event(
        "POST",
        "/api/payments/webhook/",
        body=json.dumps(event),
        headers={"stripe-signature": signature, "content-type": "application/json"},
    )
    barrier.wait(timeout=60)
    return webhook.lambda_handler(request, LambdaContext("apranova-payments-webhook"))["statusCode"]


def test_concurrent_deliveries_change_the_payment_once_and_start_one_execution(stack: PaymentsStack) -> None:
    from local.stripe_emulator.app import sign_payload

    student, created = _pending_checkout(stack)
    intent = f"pi_{uuid.uuid4().hex[:12]}"
    completed = _completed(created, student["id"], intent)
    succeeded = _event(
        "payment_intent.succeeded",
        {"id": intent, "object": "payment_intent", "metadata": {"payment_id": created["payment_id"]}},
    )
    deliveries = [copy.deepcopy(completed) for _ in range(20)] + [succeeded]
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["functions.payments.webhook"])
    with context.Manager() as manager:
        barrier = manager.Barrier(len(deliveries))
        secret = "whsec_" + "s" * 32
        environment = {**stack.env, "DATABASE_URL": stack.database_url, "POWERTOOLS_LOG_LEVEL": "WARNING"}
        jobs = [(event, sign_payload(json.dumps(event), secret), environment, barrier) for event in deliveries]
        with context.Pool(len(deliveries)) as pool:
            statuses = pool.map(_deliver_in_process, jobs)
    assert statuses == [200] * len(deliveries)
    changes = stack.rows(
        "SELECT details FROM audit_logs WHERE action = 'PAYMENT' AND resource_id = %s AND details ? 'event'",
        created["payment_id"],
    )
    assert [c["details"]["to"] for c in changes] == ["SUCCEEDED"]
    assert len(stack.executions(stack.enrollment_arn, f"enroll-{created['payment_id']}")) == 1
    outcomes = stack.rows(
        "SELECT event_id, outcome FROM stripe_events WHERE payment_id = %s ORDER BY received_at", created["payment_id"]
    )
    assert len(outcomes) == 2
    assert stack.row("SELECT status FROM payments WHERE id = %s", created["payment_id"])["status"] == "SUCCEEDED"


# --- business metrics (issue 20, item 6) ------------------------------------------------------------


def test_a_payment_is_counted_paid_once_and_each_larger_refund_once(
    stack: PaymentsStack, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")  # the tests run with metrics off
    student, created = _pending_checkout(stack)
    intent, charge = f"pi_{uuid.uuid4().hex[:12]}", f"ch_{uuid.uuid4().hex[:12]}"
    capfd.readouterr()
    assert stack.deliver(_completed(created, student["id"], intent)).status_code == 200
    assert stack.deliver(_completed(created, student["id"], intent)).status_code == 200  # a second completion
    assert stack.deliver(_refunded(created, intent, charge, 10000)).status_code == 200
    assert stack.deliver(_refunded(created, intent, charge, 5000)).status_code == 200  # older: nothing new
    assert metric_counts(capfd.readouterr().out) == {"PaymentSucceeded": 1, "Refund": 1}
    assert stack.deliver(_refunded(created, intent, charge, 49900)).status_code == 200
    assert metric_counts(capfd.readouterr().out) == {"Refund": 1}
