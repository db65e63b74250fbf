"""Nobody pays for nothing, and no paid student is left behind, over real HTTP: the API and its
webhook behind the local gateway, Stripe played by the emulator (the real SDK talks to it; it signs
and delivers events), moto for Cognito, SES and Step Functions, the run's PostgreSQL.

- A second track cannot be bought while one is paid or enrolled (409); paying one track expires the
  payer's other open checkout at Stripe; a second payment that still arrives is refunded at once,
  the payer told why and the operators alerted, and it changes nothing about the first.
- Pay first with an email that has an account is refused (409 ``account_exists``); an account that
  appears between checkout and payment is never linked: the money goes back.
- A start that fails after the commit stays in the outbox: Stripe's redelivery or the reconcile
  job carries it out. A webhook Stripe never delivered is found by the reconcile job.
- Refund eligibility reads facts that only grow: unticking steps does not reopen it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.integration.auth_support import active_consent_versions
from tests.integration.payments_support import OPS, PaymentsStack, reset_caches, start_stack

REFUNDED_SUBJECT = "Your ApraNova payment is being refunded"


@pytest.fixture(scope="module")
def stack(database_url: str) -> Iterator[PaymentsStack]:
    yield from start_stack(database_url)


def _checkout(stack: PaymentsStack, who: dict[str, str], track: str) -> dict[str, str]:
    created = stack.call("POST", "/api/payments/create-checkout-session/", who, json={"track": track})
    assert created.status_code == 201, created.text
    return created.json()


def _payment(stack: PaymentsStack, payment_id: str) -> dict[str, Any]:
    return stack.row("SELECT * FROM payments WHERE id = %s", payment_id)


def _ops_alerts(stack: PaymentsStack, subject: str) -> list[dict[str, Any]]:
    return [m for m in stack.mail_to(OPS) if m["subject"].endswith(subject)]


def _flush(stack: PaymentsStack) -> None:
    """Waits for the emulator's deliveries, and for those they caused (a refund made while a delivery
    was being handled is delivered after it)."""
    for _ in range(3):
        stack.emulator.flush()


def _body(mail: dict[str, Any]) -> str:
    return mail.get("body_text") or mail.get("body_html") or ""


# --- refusing before taking money ---------------------------------------------------------------------


def test_a_second_track_is_refused_while_one_is_paid_or_enrolled(stack: PaymentsStack) -> None:
    student = stack.student()
    created = _checkout(stack, student, "DP")
    stack.pay(created["session_id"])
    for path in ("/api/payments/create-checkout-session/", "/api/payments/create-payment/"):
        answer = stack.call("POST", path, student, json={"track": "FSD"})
        assert answer.status_code == 409 and answer.json()["error"]["code"] == "already_paid", (path, answer.text)
    assert stack.row("SELECT count(*) AS n FROM payments WHERE user_id = %s", student["id"])["n"] == 1

    enrolled = stack.student()
    stack.row(
        "UPDATE users SET enrollment_status = 'ENROLLED', track_id = (SELECT id FROM tracks WHERE code = 'DP')"
        " WHERE id = %s RETURNING id",
        enrolled["id"],
    )
    for path in ("/api/payments/create-checkout-session/", "/api/payments/create-payment/"):
        answer = stack.call("POST", path, enrolled, json={"track": "FSD"})
        assert answer.status_code == 409 and answer.json()["error"]["code"] == "already_enrolled", path
    assert stack.row("SELECT count(*) AS n FROM payments WHERE user_id = %s", enrolled["id"])["n"] == 0


def test_paying_one_track_expires_the_other_open_checkout_at_stripe(stack: PaymentsStack) -> None:
    student = stack.student()
    dp, fsd = _checkout(stack, student, "DP"), _checkout(stack, student, "FSD")
    stack.pay(dp["session_id"])
    _flush(stack)  # the expiry's own event (checkout.session.expired) comes back by webhook
    assert stack.stripe().v1.checkout.sessions.retrieve(fsd["session_id"]).status == "expired"
    assert _payment(stack, fsd["payment_id"])["status"] == "EXPIRED"
    assert _payment(stack, dp["payment_id"])["status"] == "SUCCEEDED"
    outbox = stack.rows("SELECT action, done_at FROM payment_outbox WHERE payment_id = %s", fsd["payment_id"])
    assert [r["action"] for r in outbox] == ["EXPIRE_SESSION"] and outbox[0]["done_at"] is not None
    # The expired page cannot be paid any more.
    refused = requests.post(
        f"{stack.stripe_url}/_test/checkout/sessions/{fsd['session_id']}/pay", json={"card": "4242424242424242"},
        timeout=30,
    )  # fmt: skip
    assert refused.status_code == 400


def test_a_second_track_paid_anyway_is_refunded_at_once_and_changes_nothing(stack: PaymentsStack) -> None:
    student = stack.student()
    dp = _checkout(stack, student, "DP")
    # A PaymentIntent opened for the other track before the first was paid (nothing to expire).
    intent = stack.call("POST", "/api/payments/create-payment/", student, json={"track": "FSD"})
    assert intent.status_code == 201, intent.text
    fsd_id = intent.json()["payment_id"]
    stack.pay(dp["session_id"])
    stack.row(  # what the enrollment workflow records (the test stack's machines do nothing)
        "UPDATE users SET enrollment_status = 'ENROLLED', track_id = (SELECT id FROM tracks WHERE code = 'DP')"
        " WHERE id = %s RETURNING id",
        student["id"],
    )

    stack.stripe().v1.payment_intents.confirm(
        _payment(stack, fsd_id)["stripe_payment_intent_id"], params={"payment_method": "pm_card_visa"}
    )
    _flush(stack)

    fsd = _payment(stack, fsd_id)
    assert (fsd["status"], fsd["refunded_amount_cents"], fsd["enrollment_execution"]) == ("REFUNDED", 59900, None)
    assert stack.executions(stack.enrollment_arn, f"enroll-{fsd_id}") == []
    assert stack.executions(stack.deprovision_arn, f"deprovision-{fsd_id}") == []
    charge = stack.stripe().v1.charges.retrieve(fsd["stripe_charge_id"])
    assert charge.refunded and charge.amount_refunded == 59900  # Stripe's own record of the refund
    # The first payment and the enrollment it paid for are untouched.
    user = stack.row(
        "SELECT u.enrollment_status, t.code FROM users u JOIN tracks t ON t.id = u.track_id WHERE u.id = %s",
        student["id"],
    )
    assert (user["enrollment_status"], user["code"]) == ("ENROLLED", "DP")
    assert _payment(stack, dp["payment_id"])["status"] == "SUCCEEDED"
    # The payer is told why, the operators are alerted, the decision is audited.
    told = [m for m in stack.mail_to(student["email"]) if m["subject"] == REFUNDED_SUBJECT]
    assert len(told) == 1 and "already enrolled" in _body(told[0])
    assert any(fsd_id in _body(m) for m in _ops_alerts(stack, "Payment refunded at once: it cannot be fulfilled"))
    audit = stack.rows(
        "SELECT details FROM audit_logs WHERE action = 'PAYMENT' AND resource_id = %s AND details->>'step' ="
        " 'refund_unfulfillable'",
        fsd_id,
    )
    assert [a["details"]["reason"] for a in audit] == ["already_enrolled"]


def test_two_tracks_paid_at_once_enroll_one_and_refund_the_other(stack: PaymentsStack) -> None:
    from concurrent.futures import ThreadPoolExecutor

    student = stack.student()
    dp, fsd = _checkout(stack, student, "DP"), _checkout(stack, student, "FSD")
    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda s: requests.post(f"{stack.stripe_url}/_test/checkout/sessions/{s}/pay",
                                                        json={"card": "4242424242424242"}, timeout=60),
                                (dp["session_id"], fsd["session_id"])))  # fmt: skip
    _flush(stack)
    # Decided one after the other, each event at its first delivery: not by a deadlock that made
    # PostgreSQL abort one of them (answered 503, then redelivered).
    deliveries = [d for answer in answers for d in answer.json()["deliveries"]]
    assert deliveries and all(d["attempt"] == 1 and d["status"] == 200 for d in deliveries), deliveries
    payments = [_payment(stack, created["payment_id"]) for created in (dp, fsd)]
    paid = [p for p in payments if p["status"] == "SUCCEEDED"]
    refunded = [p for p in payments if p["status"] == "REFUNDED"]
    expired = [p for p in payments if p["status"] == "EXPIRED"]
    # Either the second was expired in time, or it was paid and refunded: never two enrollments.
    assert len(paid) == 1 and len(refunded) + len(expired) == 1, [p["status"] for p in payments]
    started = [p for p in payments if stack.executions(stack.enrollment_arn, f"enroll-{p['id']}")]
    assert [p["id"] for p in started] == [paid[0]["id"]]


# --- pay first ------------------------------------------------------------------------------------------


def _anonymous(stack: PaymentsStack, email: str, track: str = "DP") -> requests.Response:
    versions = active_consent_versions(stack.database_url)
    body = {"track": track, "email": email, "name": "Grace Buyer", "accept_privacy": True, **versions}
    return stack.call("POST", "/api/payments/create-anonymous-checkout/", json=body)


def test_pay_first_never_links_an_account_that_appeared_after_the_checkout(stack: PaymentsStack) -> None:
    email = f"late-owner-{os.urandom(4).hex()}@example.com"
    created = _anonymous(stack, email)
    assert created.status_code == 201, created.text
    checkout = created.json()
    owner = stack.student(email=email)  # the address's owner signs up before the payment lands
    stack.pay(checkout["session_id"])
    _flush(stack)

    payment = _payment(stack, checkout["payment_id"])
    assert payment["user_id"] is None and not payment["account_created"]
    assert (payment["status"], payment["refunded_amount_cents"]) == ("REFUNDED", 49900)
    consent = stack.row("SELECT user_id FROM user_consents WHERE payment_id = %s", checkout["payment_id"])
    assert consent["user_id"] is None  # the stranger's consent never becomes the owner's
    owner_row = stack.row("SELECT enrollment_status, provisioning_status FROM users WHERE id = %s", owner["id"])
    assert owner_row["enrollment_status"] == "PENDING_PAYMENT" and owner_row["provisioning_status"] != "FAILED"
    mine = stack.call("GET", "/api/payments/my-payments/", owner).json()
    assert mine["items"] == []
    assert stack.executions(stack.enrollment_arn, f"enroll-{checkout['payment_id']}") == []
    told = [m for m in stack.mail_to(email) if m["subject"] == REFUNDED_SUBJECT]
    assert len(told) == 1 and "sign in" in _body(told[0]) and "Grace" not in _body(told[0])
    assert _ops_alerts(stack, "Payment refunded at once: it cannot be fulfilled")


# --- after the commit -----------------------------------------------------------------------------------


def _stripe_events(stack: PaymentsStack, event_type: str) -> list[Any]:
    return list(stack.stripe().v1.events.list(params={"type": event_type, "limit": 100}).data)


def test_a_start_that_fails_after_the_commit_is_carried_out_by_redelivery(stack: PaymentsStack) -> None:
    student = stack.student()
    created = _checkout(stack, student, "DP")
    saved = os.environ["AWS_ENDPOINT_URL_SFN"]
    os.environ["AWS_ENDPOINT_URL_SFN"] = "http://127.0.0.1:9"  # Step Functions unreachable
    reset_caches()
    try:
        paid = stack.pay(created["session_id"])
    finally:
        os.environ["AWS_ENDPOINT_URL_SFN"] = saved
        reset_caches()
    # Recorded and committed, the start left in the outbox; Stripe was told to come back (503).
    assert any(d["status"] == 503 for d in paid["deliveries"]), paid["deliveries"]
    payment = _payment(stack, created["payment_id"])
    assert payment["status"] == "SUCCEEDED" and payment["enrollment_execution"]
    (row,) = stack.rows("SELECT * FROM payment_outbox WHERE payment_id = %s", created["payment_id"])
    assert row["action"] == "START_ENROLLMENT" and row["done_at"] is None and row["attempts"] >= 1
    assert stack.executions(stack.enrollment_arn, f"enroll-{created['payment_id']}") == []

    # Stripe's redelivery of the same event: already processed, and what it left is carried out.
    (completed,) = [e for e in _stripe_events(stack, "checkout.session.completed")
                    if e.data.object.id == created["session_id"]]  # fmt: skip
    again = stack.deliver(completed.to_dict())
    assert again.status_code == 200 and again.json()["outcome"] == "duplicate"
    runs = stack.executions(stack.enrollment_arn, f"enroll-{created['payment_id']}")
    assert len(runs) == 1 and runs[0]["executionArn"] == payment["enrollment_execution"]
    assert stack.row("SELECT done_at FROM payment_outbox WHERE id = %s", row["id"])["done_at"] is not None
    assert stack.deliver(completed.to_dict()).status_code == 200
    assert len(stack.executions(stack.enrollment_arn, f"enroll-{created['payment_id']}")) == 1


def test_the_reconcile_job_carries_out_what_nobody_redelivered(stack: PaymentsStack) -> None:
    from functions.payments import reconcile, reconcile_service

    student = stack.student()
    created = _checkout(stack, student, "FSD")
    saved = os.environ["AWS_ENDPOINT_URL_SFN"]
    os.environ["AWS_ENDPOINT_URL_SFN"] = "http://127.0.0.1:9"
    reset_caches()
    try:
        stack.pay(created["session_id"])
    finally:
        os.environ["AWS_ENDPOINT_URL_SFN"] = saved
        reset_caches()
    assert stack.executions(stack.enrollment_arn, f"enroll-{created['payment_id']}") == []

    found = reconcile_service.run(reconcile._deps(), min_age_seconds=0)
    assert found["outbox_done"] >= 1 and found["outbox_failed"] == 0
    assert len(stack.executions(stack.enrollment_arn, f"enroll-{created['payment_id']}")) == 1
    assert stack.row("SELECT count(*) AS n FROM payment_outbox WHERE done_at IS NULL")["n"] == 0
    assert _ops_alerts(stack, "Reconcile found payments left behind")
    assert stack.rows("SELECT 1 FROM audit_logs WHERE action = 'PAYMENT' AND resource_type = 'reconcile'")
    # A second run finds nothing left.
    again = reconcile_service.run(reconcile._deps(), min_age_seconds=0)
    assert (again["outbox_done"], again["paid_without_outcome"], again["lost_events"]) == (0, 0, 0)


def test_the_reconcile_job_finds_a_webhook_stripe_never_delivered(stack: PaymentsStack) -> None:
    student = stack.student()
    created = _checkout(stack, student, "DP")
    webhook_url, stack.emulator.webhook_url = stack.emulator.webhook_url, None
    try:
        stack.pay(created["session_id"])  # paid at Stripe; nothing reaches us
    finally:
        stack.emulator.webhook_url = webhook_url
    assert _payment(stack, created["payment_id"])["status"] == "PENDING"

    run = stack.call("POST", "/_local/jobs/reconcile")
    assert run.status_code == 200, run.text
    assert run.json()["result"]["lost_events"] >= 1
    payment = _payment(stack, created["payment_id"])
    assert payment["status"] == "SUCCEEDED"
    assert len(stack.executions(stack.enrollment_arn, f"enroll-{created['payment_id']}")) == 1
    assert _ops_alerts(stack, "Reconcile found payments left behind")


def test_the_reconcile_job_decides_a_paid_payment_that_started_nothing(stack: PaymentsStack) -> None:
    from functions.payments import reconcile, reconcile_service

    student = stack.student()
    created = _checkout(stack, student, "DP")
    # Paid, with no decision recorded (an older version's event, a lost decision).
    stack.row(
        "UPDATE payments SET status = 'SUCCEEDED', succeeded_at = now() - interval '5 minutes' WHERE id = %s"
        " RETURNING id",
        created["payment_id"],
    )
    found = reconcile_service.run(reconcile._deps(), min_age_seconds=60)
    assert found["settled"].get("enrollment_started") == 1
    assert len(stack.executions(stack.enrollment_arn, f"enroll-{created['payment_id']}")) == 1
    assert _payment(stack, created["payment_id"])["enrollment_execution"]


# --- refund eligibility -------------------------------------------------------------------------------


def _start_project_one(stack: PaymentsStack, student: dict[str, str]) -> list[dict[str, Any]]:
    steps = stack.rows(
        "SELECT s.id, s.project_id FROM project_steps s JOIN projects p ON p.id = s.project_id"
        " JOIN tracks t ON t.id = p.track_id WHERE t.code = 'DP' AND s.is_active AND NOT s.is_optional"
        " ORDER BY p.number, s.number"
    )
    for project_id in {s["project_id"] for s in steps}:
        stack.row(
            "INSERT INTO student_progress (student_id, project_id, status, unlocked_at)"
            " VALUES (%s, %s, 'IN_PROGRESS', now()) RETURNING project_id",
            student["id"],
            project_id,
        )
    return steps


def test_unticking_steps_does_not_reopen_the_refund(stack: PaymentsStack) -> None:
    student = stack.student()
    created = _checkout(stack, student, "DP")
    stack.pay(created["session_id"])
    steps = _start_project_one(stack, student)
    needed = -(-len(steps) // 3)  # a third of the course
    for step in steps[:needed]:
        stack.row(
            "INSERT INTO step_completions (student_id, project_id, step_id) VALUES (%s, %s, %s) RETURNING step_id",
            student["id"],
            step["project_id"],
            step["id"],
        )
    body = {"payment_id": created["payment_id"], "reason": "changed my mind"}
    busy = stack.call("POST", "/api/payments/request-refund/", student, json=body)
    assert busy.status_code == 422 and busy.json()["error"]["code"] == "refund_progress_exceeded"
    stack.row("DELETE FROM step_completions WHERE student_id = %s RETURNING step_id", student["id"])
    unticked = stack.call("POST", "/api/payments/request-refund/", student, json=body)
    assert unticked.status_code == 422 and unticked.json()["error"]["code"] == "refund_progress_exceeded"
    assert unticked.json()["error"]["details"][0]["progress_percent"] >= 33
    assert stack.row("SELECT count(*) AS n FROM refund_requests WHERE payment_id = %s", created["payment_id"])["n"] == 0


def test_submitted_work_closes_the_refund(stack: PaymentsStack) -> None:
    student = stack.student()
    created = _checkout(stack, student, "DP")
    stack.pay(created["session_id"])
    _start_project_one(stack, student)
    deliverable = stack.row(
        "SELECT d.id, d.project_id FROM deliverables d JOIN projects p ON p.id = d.project_id"
        " JOIN tracks t ON t.id = p.track_id WHERE t.code = 'DP' ORDER BY p.number, d.id LIMIT 1"
    )
    stack.row(
        "INSERT INTO submissions (student_id, project_id, deliverable_id, attempt, submission_text)"
        " VALUES (%s, %s, %s, 1, 'my work') RETURNING id",
        student["id"],
        deliverable["project_id"],
        deliverable["id"],
    )
    answer = stack.call(
        "POST", "/api/payments/request-refund/", student, json={"payment_id": created["payment_id"], "reason": "r"}
    )
    assert answer.status_code == 422 and answer.json()["error"]["code"] == "refund_work_submitted"
