"""The optional GitHub token: the submissions function's commit lookup, as its handler wires it, sends
``Authorization: Bearer <token>`` exactly when the SSM parameter it is configured with exists.

GitHub is the local stand-in (tests/integration/github_fake.py), which records every request's
headers; SSM is moto's. The lookup is the handler's own (``_resolve_commit``), reading the token
through Powertools Parameters like the deployed function.
"""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from apranova import secrets
from functions.submissions import config, github
from functions.submissions.handler import _resolve_commit
from tests.integration.github_fake import FakeGitHub, fake_github

PARAMETER = "/apranova/test/github/token"
SHA = "0123456789abcdef0123456789abcdef01234567"
TOKEN = "github_pat_11AAAAAAA0example"  # noqa: S105 - a test value


@pytest.fixture
def github_api(monkeypatch) -> Iterator[FakeGitHub]:
    with fake_github() as fake, mock_aws():
        fake.add("ada", "kpi", {"HEAD": SHA})
        monkeypatch.setenv("UPLOADS_BUCKET", "apranova-test-uploads")
        monkeypatch.setenv("GITHUB_API_URL", fake.url)
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")

        def forget() -> None:
            config.reset()
            secrets.reset()
            github.reset()

        forget()
        yield fake
        forget()


def _lookup(fake: FakeGitHub) -> dict:
    assert _resolve_commit()("ada", "kpi", "HEAD") == SHA
    return fake.requests[-1]["headers"]


def test_without_a_configured_parameter_github_is_called_anonymously(github_api) -> None:
    headers = _lookup(github_api)
    assert "Authorization" not in headers


def test_a_configured_parameter_that_does_not_exist_means_anonymous_calls(github_api, monkeypatch) -> None:
    monkeypatch.setenv("GITHUB_TOKEN_PARAM", PARAMETER)
    headers = _lookup(github_api)
    assert "Authorization" not in headers
    assert headers["Accept"] == "application/vnd.github+json"


def test_the_stored_token_is_sent_as_a_bearer_token(github_api, monkeypatch) -> None:
    boto3.client("ssm", region_name="us-east-1").put_parameter(Name=PARAMETER, Value=TOKEN, Type="SecureString")
    monkeypatch.setenv("GITHUB_TOKEN_PARAM", PARAMETER)
    assert _lookup(github_api)["Authorization"] == f"Bearer {TOKEN}"


def test_a_token_stored_later_is_used_once_the_cached_absence_expires(github_api, monkeypatch) -> None:
    monkeypatch.setenv("GITHUB_TOKEN_PARAM", PARAMETER)
    assert "Authorization" not in _lookup(github_api)
    boto3.client("ssm", region_name="us-east-1").put_parameter(Name=PARAMETER, Value=TOKEN, Type="SecureString")
    # Within the cache's lifetime the function keeps going anonymously (no SSM call per submission).
    assert "Authorization" not in _lookup(github_api)
    github.reset()  # the absence's five minutes have passed
    assert _lookup(github_api)["Authorization"] == f"Bearer {TOKEN}"
