"""Shared by the auth tests: one in-process moto server for the run, a fresh user pool per module
(configured as the CDK pool is), and calls through the real handlers."""

from __future__ import annotations

import atexit
import json
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from apranova import cognito, user_pool_settings
from local import cognito as local_cognito
from local.events import LambdaContext, http_api_event

PASSWORD = "Corr3ct-Horse-Battery!"
_server: ThreadedMotoServer | None = None
_url: str | None = None


def moto_url() -> str:
    global _server, _url
    if _url is None:
        local_cognito.install()  # codes mailed and checked, as Cognito does
        _server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        _server.start()
        _url = f"http://127.0.0.1:{_server.get_host_and_port()[1]}"
        atexit.register(_server.stop)
    return _url


def idp() -> Any:
    return boto3.client("cognito-idp", endpoint_url=moto_url(), region_name="us-east-1")


def make_pool() -> dict[str, str]:
    client = idp()
    pool_id = client.create_user_pool(
        PoolName=f"test-{uuid.uuid4().hex[:8]}",
        UsernameAttributes=["email"],
        AutoVerifiedAttributes=["email"],
        UsernameConfiguration={"CaseSensitive": False},
        VerificationMessageTemplate={
            "DefaultEmailOption": "CONFIRM_WITH_CODE",
            "EmailSubject": user_pool_settings.VERIFICATION_EMAIL_SUBJECT,
            "EmailMessage": user_pool_settings.VERIFICATION_EMAIL_MESSAGE,
        },
        Policies={
            "PasswordPolicy": {
                "MinimumLength": 12,
                "RequireUppercase": True,
                "RequireLowercase": True,
                "RequireNumbers": True,
                "RequireSymbols": True,
            }
        },
    )["UserPool"]["Id"]
    client_id = client.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName="spa",
        ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
        EnableTokenRevocation=True,
    )["UserPoolClient"]["ClientId"]
    for group in ("students", "trainers", "admins"):
        client.create_group(UserPoolId=pool_id, GroupName=group)
    return {"user_pool_id": pool_id, "client_id": client_id}


def use_pool() -> Iterator[dict[str, str]]:
    """Points the functions (their settings and boto3 client) at a fresh pool for one module."""
    pool = make_pool()
    env = {
        "COGNITO_USER_POOL_ID": pool["user_pool_id"],
        "COGNITO_CLIENT_ID": pool["client_id"],
        # Cognito only: other tests' mock_aws must keep intercepting their services.
        "AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER": moto_url(),
    }
    try:
        with pytest.MonkeyPatch.context() as mp:
            for key, value in env.items():
                mp.setenv(key, value)
            cognito.reset()
            yield pool
    finally:
        cognito.reset()


def mailed_code(email: str) -> str:
    """The newest code Cognito mailed to ``email``, read from the mailbox as a person would."""
    from local.moto_stack import mailbox

    return local_cognito.mailed_code(mailbox(), email)


def other_than(code: str) -> str:
    """A well-formed code that is not ``code`` (a wrong guess)."""
    return f"{(int(code) + 1) % 1_000_000:06d}"


def call(handler: Any, method: str, path: str, body: Any = None, **kwargs: Any) -> tuple[int, Any]:
    if body is not None and not isinstance(body, str | bytes):
        body = json.dumps(body)
    response = handler(http_api_event(method, path, body=body, **kwargs), LambdaContext("test"))
    text = response.get("body")
    return response["statusCode"], json.loads(text) if text else None


def claims_of(access_token: str) -> dict[str, Any]:
    """The claims as API Gateway's authorizer hands them over (tests bypass the gateway)."""
    import jwt

    from local.jwt_check import api_gateway_claims

    return api_gateway_claims(jwt.decode(access_token, options={"verify_signature": False}))


def bearer(access_token: str) -> dict[str, Any]:
    """What a real request through the gateway carries: the header and the verified claims."""
    return {
        "headers": {
            "Authorization": f"Bearer {access_token}",
            "user-agent": "apranova-tests",
            "content-type": "application/json",
        },
        "claims": claims_of(access_token),
    }


def active_consent_versions(database_url: str) -> dict[str, str]:
    """The active privacy policy and terms versions, as a sign-up must send them."""
    import psycopg

    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT privacy_version_in_force(), terms_version_in_force()").fetchone()
    return {"privacy_version": row[0], "terms_version": row[1]}
