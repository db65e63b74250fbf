"""Payments over real HTTP: the API and its webhook behind the local gateway, Stripe played by the
emulator (the real SDK talks to it; it signs and delivers events to the webhook)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from apranova.pagination import encode_cursor
from tests.integration.auth_support import active_consent_versions, mailed_code
from tests.integration.payments_support import OPS, PaymentsStack, start_stack

DECLINE = "4000000000000002"


@pytest.fixture(scope="module")
def stack(database_url: str) -> Iterator[PaymentsStack]:
    yield from start_stack(database_url)


def _checkout(stack: PaymentsStack, who: dict[str, str], track: str = "DP") -> dict[str, str]:
    created = stack.call("POST", "/api/payments/create-checkout-session/", who, json={"track": track})
    assert created.status_code == 201, created.text
    return created.json()


def _payment(stack: PaymentsStack, payment_id: str) -> dict:
    return stack.row("SELECT * FROM payments WHERE id = %s", payment_id)


# --- the signed-in journey --------------------------------------------------------------------------


def test_checkout_then_pay_succeeds_and_starts_one_enrollment(stack: PaymentsStack) -> None:
    student = stack.student()
    created = _checkout(stack, student)
    assert created["checkout_url"] == f"{stack.stripe_url}/pay/{created['session_id']}"

    payment = _payment(stack, created["payment_id"])
    assert (payment["status"], payment["amount_cents"], payment["currency"]) == ("PENDING", 49900, "USD")
    assert payment["stripe_checkout_session_id"] == created["session_id"]
    session = stack.stripe().v1.checkout.sessions.retrieve(created["session_id"])
    assert session.amount_total == 49900 and session.currency == "usd"
    assert session.client_reference_id == student["id"]
    assert session.metadata.to_dict() == {"payment_id": created["payment_id"], "track": "DP", "user_id": student["id"]}

    paid = stack.pay(created["session_id"])
    assert all(d["status"] == 200 for d in paid["deliveries"]), paid["deliveries"]

    payment = _payment(stack, created["payment_id"])
    assert payment["status"] == "SUCCEEDED"
    assert payment["stripe_payment_intent_id"] == paid["payment_intent"]["id"]
    runs = stack.executions(stack.enrollment_arn, f"enroll-{created['payment_id']}")
    assert len(runs) == 1
    assert payment["enrollment_execution"] == runs[0]["executionArn"]
    assert stack.execution_input(runs[0]["executionArn"]) == {
        "payment_id": created["payment_id"],
        "user_id": student["id"],
        "track": "DP",
        "source": "stripe",
    }
    # The PaymentIntent carries the same metadata as the session (payment_intent_data).
    intent = stack.stripe().v1.payment_intents.retrieve(paid["payment_intent"]["id"])
    assert intent.metadata["user_id"] == student["id"] and intent.metadata["track"] == "DP"

    status = stack.call("GET", f"/api/payments/verify-session/?session_id={created['session_id']}")
    assert status.status_code == 200
    assert status.json() == {"payment_status": "SUCCEEDED", "enrolled": False, "account_created": False}

    mine = stack.call("GET", "/api/payments/my-payments/", student).json()
    assert [p["id"] for p in mine["items"]] == [created["payment_id"]]
    one = stack.call("GET", f"/api/payments/status/{created['payment_id']}/", student)
    assert one.status_code == 200 and one.json()["status"] == "SUCCEEDED"
    assert one.json()["amount_cents"] == 49900 and one.json()["refunded_amount_cents"] == 0

    # Paying twice for the same track.
    again = stack.call("POST", "/api/payments/create-checkout-session/", student, json={"track": "DP"})
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_paid"
    audit = stack.rows(
        "SELECT details FROM audit_logs WHERE action = 'PAYMENT' AND resource_id = %s ORDER BY id",
        created["payment_id"],
    )
    assert [a["details"].get("step") or a["details"]["to"] for a in audit] == ["checkout_created", "SUCCEEDED"]


def test_a_person_clicks_through_the_pay_page_back_to_the_success_url(stack: PaymentsStack) -> None:
    import requests

    student = stack.student()
    created = _checkout(stack, student, "FSD")
    page = requests.get(created["checkout_url"], timeout=10)
    assert page.status_code == 200 and "599.00 USD" in page.text
    submitted = requests.post(
        created["checkout_url"], data={"card": "4242 4242 4242 4242"}, allow_redirects=False, timeout=30
    )
    assert submitted.status_code == 303
    assert submitted.headers["Location"] == f"http://spa.test/payment/success?session_id={created['session_id']}"
    # The webhook has fired before the browser is sent back.
    assert _payment(stack, created["payment_id"])["status"] == "SUCCEEDED"
    assert len(stack.executions(stack.enrollment_arn, f"enroll-{created['payment_id']}")) == 1


def test_an_open_checkout_is_resumed_not_duplicated(stack: PaymentsStack) -> None:
    student = stack.student()
    first = _checkout(stack, student)
    second = stack.call("POST", "/api/payments/create-checkout-session/", student, json={"track": "DP"})
    assert second.status_code == 201
    assert second.json() == first
    assert stack.row("SELECT count(*) AS n FROM payments WHERE user_id = %s", student["id"])["n"] == 1
    # Another variant while this one is open is refused.
    intent = stack.call("POST", "/api/payments/create-payment/", student, json={"track": "DP"})
    assert intent.status_code == 409 and intent.json()["error"]["code"] == "payment_in_progress"


def test_declined_card_marks_the_payment_failed_and_emails_the_student(stack: PaymentsStack) -> None:
    student = stack.student()
    created = _checkout(stack, student)
    stack.pay(created["session_id"], DECLINE)
    payment = _payment(stack, created["payment_id"])
    assert payment["status"] == "FAILED" and payment["failure_message"] == "Your card was declined."
    assert stack.executions(stack.enrollment_arn, f"enroll-{created['payment_id']}") == []
    mails = stack.mail_to(student["email"])
    (failed,) = [m for m in mails if m["subject"] == "Your ApraNova payment did not go through"]
    # The track by its name (issue 13), never its code.
    assert "for the Data Professional track was declined" in failed["body_text"]
    assert "DP track" not in failed["body_text"]
    # A failed attempt does not block the next one.
    retry = stack.call("POST", "/api/payments/create-checkout-session/", student, json={"track": "DP"})
    assert retry.status_code == 201 and retry.json()["payment_id"] != created["payment_id"]
    # The declined attempt's session (Stripe keeps it open) is closed: it cannot be paid as well.
    assert stack.stripe().v1.checkout.sessions.retrieve(created["session_id"]).status == "expired"
    import requests

    late = requests.post(
        f"{stack.stripe_url}/_test/checkout/sessions/{created['session_id']}/pay",
        json={"card": "4242424242424242"},
        timeout=30,
    )
    assert late.status_code == 400
    assert _payment(stack, created["payment_id"])["status"] == "FAILED"


def test_expired_session_marks_the_payment_expired(stack: PaymentsStack) -> None:
    student = stack.student()
    created = _checkout(stack, student)
    stack.stripe().v1.checkout.sessions.expire(created["session_id"])
    stack.emulator.flush()
    assert _payment(stack, created["payment_id"])["status"] == "EXPIRED"


def test_payment_intent_variant(stack: PaymentsStack) -> None:
    student = stack.student()
    created = stack.call("POST", "/api/payments/create-payment/", student, json={"track": "FSD"})
    assert created.status_code == 201, created.text
    body = created.json()
    payment = _payment(stack, body["payment_id"])
    assert (payment["kind"], payment["amount_cents"], payment["status"]) == ("PAYMENT_INTENT", 59900, "PENDING")
    assert body["client_secret"].startswith(payment["stripe_payment_intent_id"] + "_secret_")
    # Asking again gives the same intent (the idempotency key is per user, track and attempt).
    again = stack.call("POST", "/api/payments/create-payment/", student, json={"track": "FSD"})
    assert again.json() == body
    # The SPA confirms with Stripe.js; the emulator's confirm stands in for it.
    stack.stripe().v1.payment_intents.confirm(
        payment["stripe_payment_intent_id"], params={"payment_method": "pm_card_visa"}
    )
    stack.emulator.flush()
    assert _payment(stack, body["payment_id"])["status"] == "SUCCEEDED"
    assert len(stack.executions(stack.enrollment_arn, f"enroll-{body['payment_id']}")) == 1


# --- pay first ---------------------------------------------------------------------------------------


def _anonymous(stack: PaymentsStack, email: str, track: str = "DP", **extra: object) -> dict[str, str]:
    versions = active_consent_versions(stack.database_url)
    body = {"track": track, "email": email, "name": "Grace Buyer", "accept_privacy": True, **versions, **extra}
    created = stack.call("POST", "/api/payments/create-anonymous-checkout/", json=body)
    assert created.status_code == 201, created.text
    return created.json()


def test_pay_first_creates_the_account_and_emails_a_set_password_link(stack: PaymentsStack) -> None:
    import boto3

    email = "grace-new@example.com"
    created = _anonymous(stack, email)
    payment = _payment(stack, created["payment_id"])
    assert payment["user_id"] is None and payment["customer_email"] == email
    stack.pay(created["session_id"])

    user = stack.row("SELECT id::text AS id, role, enrollment_status FROM users WHERE email = %s", email)
    assert user["role"] == "student" and user["enrollment_status"] == "PENDING_PAYMENT"
    payment = _payment(stack, created["payment_id"])
    assert payment["status"] == "SUCCEEDED" and str(payment["user_id"]) == user["id"] and payment["account_created"]
    consent = stack.row("SELECT * FROM user_consents WHERE payment_id = %s", created["payment_id"])
    assert str(consent["user_id"]) == user["id"] and consent["source"] == "ANONYMOUS_CHECKOUT"
    runs = stack.executions(stack.enrollment_arn, f"enroll-{created['payment_id']}")
    assert len(runs) == 1 and stack.execution_input(runs[0]["executionArn"])["user_id"] == user["id"]

    idp = boto3.client("cognito-idp", endpoint_url=stack.moto, region_name="us-east-1")
    cognito_user = idp.admin_get_user(UserPoolId=stack.pool["user_pool_id"], Username=email)
    assert cognito_user["UserStatus"] == "CONFIRMED"
    groups = idp.admin_list_groups_for_user(UserPoolId=stack.pool["user_pool_id"], Username=email)["Groups"]
    assert [g["GroupName"] for g in groups] == ["students"]

    # Ours says what to do; Cognito's own email carries the code.
    (mail,) = stack.mail_to(email)
    assert mail["subject"] == "Your ApraNova account is ready: set your password"
    assert 'href="http://spa.test/set-password?email=grace-new%40example.com"' in mail["body_html"]
    code = mailed_code(email)
    new_password = "Grace-Chose-Th1s!"
    reset = {"email": email, "code": code, "new_password": new_password}
    assert stack.call("POST", "/api/auth/password/reset/confirm/", json=reset).status_code == 200
    login = stack.call("POST", "/api/auth/login/", json={"email": email, "password": new_password})
    assert login.status_code == 200, login.text
    # Never tokens from the success page.
    status = stack.call("GET", f"/api/payments/verify-session/?session_id={created['session_id']}").json()
    assert status == {"payment_status": "SUCCEEDED", "enrolled": False, "account_created": True}


def test_pay_first_with_an_existing_accounts_email_is_refused(stack: PaymentsStack) -> None:
    student = stack.student()
    versions = active_consent_versions(stack.database_url)
    body = {"track": "FSD", "email": student["email"].upper(), "name": "Mallory", "accept_privacy": True, **versions}
    answer = stack.call("POST", "/api/payments/create-anonymous-checkout/", json=body)
    assert answer.status_code == 409 and answer.json()["error"]["code"] == "account_exists"
    # Nothing written: no payment, no consent, nothing at Stripe to pay.
    assert stack.row("SELECT count(*) AS n FROM payments WHERE customer_email = %s", student["email"])["n"] == 0
    assert stack.row("SELECT count(*) AS n FROM user_consents WHERE user_id = %s", student["id"])["n"] == 1
    assert stack.mail_to(student["email"]) == []


def test_pay_first_bad_input(stack: PaymentsStack) -> None:
    versions = active_consent_versions(stack.database_url)
    base = {"track": "DP", "email": "x@example.com", "name": "X", "accept_privacy": True, **versions}
    for body, status in (
        ({**base, "accept_privacy": False}, 422),
        ({**base, "email": "not-an-email"}, 422),
        ({**base, "amount_cents": 1}, 422),
        ({**base, "track": "NOPE"}, 422),
        ({**base, "privacy_version": "0.1"}, 409),
    ):
        answer = stack.call("POST", "/api/payments/create-anonymous-checkout/", json=body)
        assert answer.status_code == status, (body, answer.text)
    assert stack.row("SELECT count(*) AS n FROM payments WHERE customer_email = 'x@example.com'")["n"] == 0


# --- bad input and access ----------------------------------------------------------------------------


def test_checkout_bad_input(stack: PaymentsStack) -> None:
    student = stack.student()
    for body, code in (
        ({"track": "NOPE"}, "validation_error"),
        ({"track": "dp"}, "validation_error"),
        ({}, "validation_error"),
        ({"track": "DP", "price_cents": 100}, "validation_error"),
        ({"track": "DP", "amount": 100}, "validation_error"),
        ({"track": "DP", "currency": "EUR"}, "validation_error"),
    ):
        answer = stack.call("POST", "/api/payments/create-checkout-session/", student, json=body)
        assert answer.status_code == 422, (body, answer.text)
        assert answer.json()["error"]["code"] == code
    assert stack.row("SELECT count(*) AS n FROM payments WHERE user_id = %s", student["id"])["n"] == 0


def test_an_inactive_track_is_not_on_sale(stack: PaymentsStack) -> None:
    student = stack.student()
    stack.row("UPDATE tracks SET is_active = false WHERE code = 'FSD' RETURNING id")
    try:
        answer = stack.call("POST", "/api/payments/create-checkout-session/", student, json={"track": "FSD"})
    finally:
        stack.row("UPDATE tracks SET is_active = true WHERE code = 'FSD' RETURNING id")
    assert answer.status_code == 422 and answer.json()["error"]["details"][0]["code"] == "not_available_track"
    assert stack.row("SELECT count(*) AS n FROM payments WHERE user_id = %s", student["id"])["n"] == 0


def test_unverified_and_unconsented_students_cannot_pay(stack: PaymentsStack) -> None:
    student = stack.student()
    stack.row("UPDATE users SET email_verified = false WHERE id = %s RETURNING id", student["id"])
    answer = stack.call("POST", "/api/payments/create-checkout-session/", student, json={"track": "DP"})
    assert answer.status_code == 403 and answer.json()["error"]["code"] == "email_not_verified"
    stack.row("UPDATE users SET email_verified = true WHERE id = %s RETURNING id", student["id"])
    stack.row("DELETE FROM user_consents WHERE user_id = %s RETURNING id", student["id"])
    answer = stack.call("POST", "/api/payments/create-checkout-session/", student, json={"track": "DP"})
    assert answer.status_code == 403 and answer.json()["error"]["code"] == "consent_required"


def test_payment_routes_check_the_caller(stack: PaymentsStack) -> None:
    student, other = stack.student(), stack.student()
    created = _checkout(stack, student)
    assert stack.call("POST", "/api/payments/create-checkout-session/", json={"track": "DP"}).status_code == 401
    assert stack.call("GET", "/api/payments/my-payments/").status_code == 401
    assert stack.call("GET", f"/api/payments/status/{created['payment_id']}/", other).status_code == 404
    assert stack.call("GET", "/api/payments/status/not-a-uuid/", other).status_code == 404
    assert stack.call("GET", "/api/payments/my-payments/", other).json() == {"items": [], "next_cursor": None}
    admin = stack.staff("admin")
    assert stack.call("POST", "/api/payments/create-checkout-session/", admin, json={"track": "DP"}).status_code == 403
    for path in ("/api/admin/payments/", "/api/admin/refund-requests/"):
        assert stack.call("GET", path, student).status_code == 403
    listed = stack.call("GET", "/api/admin/payments/?status=PENDING&limit=100", admin)
    assert listed.status_code == 200 and created["payment_id"] in [p["id"] for p in listed.json()["items"]]
    assert stack.call("GET", "/api/admin/payments/?status=BOGUS", admin).status_code == 422
    # A well-formed cursor we never made is a 422 on every list, not a database error.
    forged = encode_cursor(["yesterday", "not-a-uuid"])
    for path, who in (
        ("/api/payments/my-payments/", student),
        ("/api/admin/payments/", admin),
        ("/api/admin/refund-requests/", admin),
    ):
        answer = stack.call("GET", f"{path}?cursor={forged}", who)
        assert answer.status_code == 422 and answer.json()["error"]["code"] == "invalid_cursor", path
    assert stack.call("GET", "/api/payments/verify-session/?session_id=cs_test_unknown").status_code == 404
    assert stack.call("GET", "/api/payments/verify-session/?session_id=../etc").status_code == 422
    assert stack.call("GET", "/api/payments/verify-session/").status_code == 422


# --- refunds -----------------------------------------------------------------------------------------


def _paid(stack: PaymentsStack, track: str = "DP") -> tuple[dict[str, str], dict[str, str]]:
    student = stack.student()
    created = _checkout(stack, student, track)
    stack.pay(created["session_id"])
    return student, created


def test_refund_request_approved_refunds_through_stripe_and_withdraws(stack: PaymentsStack) -> None:
    student, created = _paid(stack)
    asked = stack.call(
        "POST",
        "/api/payments/request-refund/",
        student,
        json={"payment_id": created["payment_id"], "reason": "Changed my mind"},
    )
    assert asked.status_code == 201, asked.text
    request = asked.json()
    assert (request["status"], request["amount_cents"]) == ("PENDING", 49900)
    twice = stack.call(
        "POST", "/api/payments/request-refund/", student, json={"payment_id": created["payment_id"], "reason": "again"}
    )
    assert twice.status_code == 409 and twice.json()["error"]["code"] == "refund_already_requested"

    admin = stack.staff("admin")
    queue = stack.call("GET", "/api/admin/refund-requests/?status=PENDING&limit=100", admin).json()["items"]
    assert request["id"] in [r["id"] for r in queue]
    # One person's requests (the admin's user page), and nobody else's.
    theirs = stack.call("GET", f"/api/admin/refund-requests/?user_id={student['id']}", admin).json()["items"]
    assert [r["id"] for r in theirs] == [request["id"]]
    nobody = stack.call("GET", f"/api/admin/refund-requests/?user_id={uuid.uuid4()}", admin).json()["items"]
    assert nobody == []
    bad = stack.call("GET", "/api/admin/refund-requests/?user_id=not-a-uuid", admin)
    assert bad.status_code == 422, bad.text
    assert stack.call("POST", f"/api/admin/refund-requests/{request['id']}/approve/", student).status_code == 403
    approved = stack.call("POST", f"/api/admin/refund-requests/{request['id']}/approve/", admin, json={})
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "APPROVED" and approved.json()["stripe_refund_id"].startswith("re_")
    again = stack.call("POST", f"/api/admin/refund-requests/{request['id']}/approve/", admin, json={})
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_decided"

    # Stripe's charge.refunded reaches the webhook: the payment is refunded, tools are taken back.
    stack.emulator.flush()
    payment = _payment(stack, created["payment_id"])
    assert (payment["status"], payment["refunded_amount_cents"]) == ("REFUNDED", 49900)
    assert len(stack.executions(stack.deprovision_arn, f"deprovision-{created['payment_id']}")) == 1
    decided = stack.rows(
        "SELECT details FROM audit_logs WHERE action = 'REFUND_DECIDED' AND resource_id = %s", request["id"]
    )
    assert [d["details"]["decision"] for d in decided] == ["APPROVED"]
    subjects = [m["subject"] for m in stack.mail_to(student["email"])]
    assert "We received your refund request" in subjects and "Your refund was approved" in subjects
    # A refunded payment cannot be refunded again.
    after = stack.call(
        "POST", "/api/payments/request-refund/", student, json={"payment_id": created["payment_id"], "reason": "more"}
    )
    assert after.status_code == 409 and after.json()["error"]["code"] == "not_refundable"


def test_refund_request_rejected(stack: PaymentsStack) -> None:
    student, created = _paid(stack)
    request = stack.call(
        "POST", "/api/payments/request-refund/", student, json={"payment_id": created["payment_id"], "reason": "r"}
    ).json()
    admin = stack.staff("admin")
    reject = f"/api/admin/refund-requests/{request['id']}/reject/"
    assert stack.call("POST", reject, admin, json={}).status_code == 422
    # A reason of spaces only is no reason (issue 18): 422 naming the field, nothing decided or audited.
    for blank in ("   ", " \t\n ", "\u3000\u00a0", "\ufeff\u2003"):
        refused = stack.call("POST", reject, admin, json={"reason": blank})
        assert refused.status_code == 422, (blank, refused.text)
        assert "reason" in refused.text
    still = stack.row("SELECT status, decision_reason FROM refund_requests WHERE id = %s", request["id"])
    assert (still["status"], still["decision_reason"]) == ("PENDING", None)
    decided = (
        "SELECT actor_id::text AS actor_id, details FROM audit_logs"
        " WHERE action = 'REFUND_DECIDED' AND resource_id = %s"
    )
    assert stack.rows(decided, request["id"]) == []
    rejected = stack.call("POST", reject, admin, json={"reason": "  Outside our policy \n"})
    assert rejected.status_code == 200 and rejected.json()["status"] == "REJECTED"
    assert rejected.json()["decision_reason"] == "Outside our policy"
    stored = stack.row("SELECT decision_reason FROM refund_requests WHERE id = %s", request["id"])
    assert stored["decision_reason"] == "Outside our policy"
    (audited,) = stack.rows(decided, request["id"])
    assert audited["actor_id"] == admin["id"]
    assert audited["details"] == {
        "decision": "REJECTED",
        "payment_id": created["payment_id"],
        "reason": "Outside our policy",
    }
    assert _payment(stack, created["payment_id"])["status"] == "SUCCEEDED"
    mail = [m for m in stack.mail_to(student["email"]) if m["subject"] == "Your refund request was declined"]
    assert mail and "Outside our policy" in mail[0]["body_html"]
    # The track by its name, never its code.
    assert "for the Data Professional track was declined" in mail[0]["body_text"]
    assert "DP track" not in mail[0]["body_text"]
    missing = "00000000-0000-0000-0000-000000000000"
    assert (
        stack.call("POST", f"/api/admin/refund-requests/{missing}/reject/", admin, json={"reason": "x"}).status_code
        == 404
    )


def test_refund_policy_and_ownership(stack: PaymentsStack) -> None:
    student, created = _paid(stack)
    other = stack.student()
    body = {"payment_id": created["payment_id"], "reason": "r"}
    assert stack.call("POST", "/api/payments/request-refund/", other, json=body).status_code == 404
    assert (
        stack.call("POST", "/api/payments/request-refund/", student, json={**body, "amount_cents": 5}).status_code
        == 422
    )

    # Past the window (7 days by default).
    stack.row(
        "UPDATE payments SET succeeded_at = now() - interval '8 days' WHERE id = %s RETURNING id", created["payment_id"]
    )
    late = stack.call("POST", "/api/payments/request-refund/", student, json=body)
    assert late.status_code == 422 and late.json()["error"]["code"] == "refund_window_passed"
    assert late.json()["error"]["details"][0]["rule"] == "refund_window_days"

    # Within the window but 20% or more of the steps done.
    stack.row("UPDATE payments SET succeeded_at = now() WHERE id = %s RETURNING id", created["payment_id"])
    steps = stack.rows(
        "SELECT s.id, s.project_id FROM project_steps s JOIN projects p ON p.id = s.project_id"
        " JOIN tracks t ON t.id = p.track_id WHERE t.code = 'DP' ORDER BY p.number, s.number"
    )
    needed = -(-len(steps) // 5)
    for project_id in {s["project_id"] for s in steps[:needed]}:
        stack.row(
            "INSERT INTO student_progress (student_id, project_id, status, unlocked_at)"
            " VALUES (%s, %s, 'IN_PROGRESS', now())"
            " RETURNING project_id",
            student["id"],
            project_id,
        )
    for step in steps[:needed]:
        stack.row(
            "INSERT INTO step_completions (student_id, project_id, step_id) VALUES (%s, %s, %s) RETURNING step_id",
            student["id"],
            step["project_id"],
            step["id"],
        )
    busy = stack.call("POST", "/api/payments/request-refund/", student, json=body)
    assert busy.status_code == 422 and busy.json()["error"]["code"] == "refund_progress_exceeded"
    assert stack.row("SELECT count(*) AS n FROM refund_requests WHERE payment_id = %s", created["payment_id"])["n"] == 0


# --- disputes ----------------------------------------------------------------------------------------


def test_dispute_flags_then_lost_dispute_withdraws(stack: PaymentsStack) -> None:
    import requests

    _, created = _paid(stack)
    charge = _payment(stack, created["payment_id"])["stripe_charge_id"]
    assert charge
    opened = requests.post(f"{stack.stripe_url}/_test/charges/{charge}/dispute", json={}, timeout=30).json()
    payment = _payment(stack, created["payment_id"])
    assert (payment["status"], payment["disputed"], payment["dispute_status"]) == ("DISPUTED", True, "OPEN")
    assert any(m["subject"].endswith("Chargeback opened") for m in stack.mail_to(OPS))
    requests.post(
        f"{stack.stripe_url}/_test/disputes/{opened['dispute']['id']}/close", json={"status": "lost"}, timeout=30
    )
    payment = _payment(stack, created["payment_id"])
    assert (payment["status"], payment["dispute_status"]) == ("REFUNDED", "LOST")
    assert len(stack.executions(stack.deprovision_arn, f"deprovision-{created['payment_id']}")) == 1


def test_won_dispute_restores_the_payment(stack: PaymentsStack) -> None:
    import requests

    _, created = _paid(stack)
    charge = _payment(stack, created["payment_id"])["stripe_charge_id"]
    opened = requests.post(f"{stack.stripe_url}/_test/charges/{charge}/dispute", json={}, timeout=30).json()
    requests.post(
        f"{stack.stripe_url}/_test/disputes/{opened['dispute']['id']}/close", json={"status": "won"}, timeout=30
    )
    payment = _payment(stack, created["payment_id"])
    assert (payment["status"], payment["dispute_status"]) == ("SUCCEEDED", "WON")
    assert stack.executions(stack.deprovision_arn, f"deprovision-{created['payment_id']}") == []


def test_a_user_maps_to_one_stripe_customer(stack: PaymentsStack) -> None:
    from functions.payments import repository

    student = stack.student()
    first = repository.save_stripe_customer(student["id"], "cus_first")
    second = repository.save_stripe_customer(student["id"], "cus_second")  # a racing twin's customer
    assert first == second == "cus_first"
    rows = stack.rows("SELECT stripe_customer_id FROM stripe_customers WHERE user_id = %s", student["id"])
    assert rows == [{"stripe_customer_id": "cus_first"}]
    # Checkout then uses the mapped customer.
    created = stack.call("POST", "/api/payments/create-checkout-session/", student, json={"track": "DP"}).json()
    session = stack.stripe().v1.checkout.sessions.retrieve(created["session_id"])
    assert session.customer == "cus_first"
