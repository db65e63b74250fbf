"""apranova.mail sends through the stage's SES configuration set (bounce and complaint handling) when
one is deployed (EMAIL_CONFIGURATION_SET), and without one locally.

moto's SESv2 accepts ConfigurationSetName but does not keep it with the message, so the test reads
the request as boto3 built it (botocore's ``before-parameter-build`` event: the validated
parameters) and the message moto's SES accepted."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from apranova import mail
from local.moto_stack import mailbox

SENDER = "no-reply@mail.apranova.example"
CONFIGURATION_SET = "apranova-test"


@pytest.fixture(autouse=True)
def ses(monkeypatch) -> Iterator[None]:
    """moto's SES with the sender verified and the configuration set created."""
    monkeypatch.setenv("EMAIL_SENDER", SENDER)
    monkeypatch.delenv("EMAIL_CONFIGURATION_SET", raising=False)
    with mock_aws():
        region = os.environ["AWS_REGION"]
        boto3.client("ses", region_name=region).verify_email_identity(EmailAddress=SENDER)
        boto3.client("sesv2", region_name=region).create_configuration_set(ConfigurationSetName=CONFIGURATION_SET)
        try:
            yield
        finally:
            mail.reset()


def _send() -> tuple[dict[str, Any], dict[str, Any]]:
    """Sends one email with the current environment: (the SendEmail parameters, what SES accepted)."""
    mail.reset()  # settings and client are cached per warm environment
    requests: list[dict[str, Any]] = []
    mail.client().meta.events.register(
        "before-parameter-build.sesv2.SendEmail", lambda params, **_: requests.append(dict(params))
    )
    message_id = mail.send(
        mail.Email(to=("student@example.com",), subject="Welcome", text="Hello.\n\nhttps://spa.test/")
    )
    (request,) = requests
    (sent,) = [m for m in mailbox() if m["id"] == message_id]
    return request, sent


def test_a_deployed_stage_sends_through_its_configuration_set(monkeypatch):
    monkeypatch.setenv("EMAIL_CONFIGURATION_SET", CONFIGURATION_SET)

    request, sent = _send()

    assert request["ConfigurationSetName"] == CONFIGURATION_SET
    assert request["FromEmailAddress"] == SENDER
    assert sent["to"] == ["student@example.com"] and sent["subject"] == "Welcome"


@pytest.mark.parametrize("value", [None, ""])
def test_without_a_configuration_set_the_request_names_none(monkeypatch, value):
    if value is not None:
        monkeypatch.setenv("EMAIL_CONFIGURATION_SET", value)

    request, sent = _send()

    assert "ConfigurationSetName" not in request
    assert sent["from"] == SENDER


# --- no link from text a person typed; none of it to an unverified address (docs/principles.md §8 rule 16) ---

ATTACK = "Ada\r\n\r\nURGENT: your account is locked, confirm at https://evil.example/login now"


def _sent(email: mail.Email) -> dict[str, Any]:
    mail.reset()
    message_id = mail.send(email)
    (sent,) = [m for m in mailbox() if m["id"] == message_id]
    return sent


def test_only_the_senders_own_links_become_links():
    email = mail.Email(
        to=("student@example.com",),
        subject="Links",
        text="Hello https://evil.example/x,\n\nSign in: https://spa.test/login.",
        links=("https://spa.test/login",),
    )
    html = _sent(email)["body_html"]
    assert '<a href="https://spa.test/login">https://spa.test/login</a>.' in html
    assert 'href="https://evil.example' not in html and "https://evil.example/x" in html


def test_a_declined_pay_first_payment_email_carries_nothing_the_payer_typed():
    from functions.payments import emails

    contact = {"email": "victim@example.com", "name": ATTACK}
    payment = {"amount_cents": 49900, "currency": "USD", "track": "DP", "track_name": "Data Professional"}
    sent = _sent(emails.payment_failed(contact, payment, "https://spa.test"))
    assert sent["to"] == ["victim@example.com"] and sent["subject"] == "Your ApraNova payment did not go through"
    assert "Ada" not in sent["body_html"] and "evil" not in sent["body_html"] and "URGENT" not in sent["body_html"]
    assert '<a href="https://spa.test/tracks/DP">' in sent["body_html"]
    sent = _sent(emails.set_password(contact, payment, "https://spa.test"))
    assert "Ada" not in sent["body_html"] and "evil" not in sent["body_html"]


def test_a_students_name_reaches_emails_as_plain_text_never_a_link():
    from functions.trainer import emails

    submission = {
        "student_email": "student@example.com",
        "student_name": ATTACK,
        "deliverable_title": "Schema design",
        "attempt": 1,
        "project_number": 1,
        "project_title": "Warehouse",
        "status": "APPROVED",
        "feedback": "Good work",
    }
    sent = _sent(emails.review_result(submission, "https://spa.test"))
    html = sent["body_html"]
    assert "\r" not in sent["subject"] and "\n" not in sent["subject"]
    assert "Hello Ada URGENT: your account is locked" in html  # one line, no paragraph of its own
    assert 'href="https://evil.example' not in html and '<a href="https://spa.test/dashboard">' in html


def test_the_trainers_notice_carries_the_students_name_on_one_line_without_links():
    from apranova.learning import Learner
    from functions.submissions.config import SubmissionSettings
    from functions.submissions.service import received_by_trainer

    student = Learner("u-1", "student@example.com", ATTACK, "DP", 1, "ENROLLED")
    config = SubmissionSettings.model_construct(spa_origin="https://spa.test")
    target = {"deliverable_title": "Schema design", "project_number": 1, "project_title": "Warehouse"}
    email = received_by_trainer(
        {"email": "trainer@example.com", "name": "Tess"}, student, target, {"attempt": 1}, config
    )
    sent = _sent(email)
    assert "\n" not in sent["subject"] and sent["subject"].startswith("New submission to review from Ada URGENT")
    assert 'href="https://evil.example' not in sent["body_html"]
    assert '<a href="https://spa.test/trainer/submissions">' in sent["body_html"]
