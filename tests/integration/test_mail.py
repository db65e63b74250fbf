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
