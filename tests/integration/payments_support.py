"""The payments test stack, over real HTTP: the local API (the real handlers behind the JWT check)
and the Stripe emulator, each on its own port, delivering signed events to the API's webhook route;
moto for Cognito, SSM (the Stripe secrets), SES and Step Functions; the run's PostgreSQL."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import psycopg
import pytest
import requests
import stripe
from psycopg.rows import dict_row
from werkzeug.serving import WSGIRequestHandler, make_server

from apranova import alerts, cognito, mail, workflows
from functions.payments import config as payment_config
from functions.payments import secrets as payment_secrets
from functions.payments import stripe_gateway
from local.cognito import is_code_email
from local.jwt_check import JwtCheck
from local.moto_stack import mailbox
from local.server import LocalApi
from local.stripe_emulator import StripeEmulator
from tests.integration.auth_support import PASSWORD, active_consent_versions, mailed_code, make_pool, moto_url

API_KEY = "sk_test_" + "k" * 24
WEBHOOK_SECRET = "whsec_" + "s" * 32
SENDER = "no-reply@apranova.test"
OPS = "ops@apranova.test"

# boto3's per-service endpoint variables: only these services go to the moto server, so other
# tests' in-process mock_aws keeps intercepting the rest.
SERVICE_ENDPOINTS = ("COGNITO_IDENTITY_PROVIDER", "SSM", "SESV2", "SES", "SFN")


class _Quiet(WSGIRequestHandler):
    def log_request(self, *args: Any) -> None:
        pass


def _serve(app: Any) -> tuple[Any, str]:
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}"


def reset_caches() -> None:
    payment_config.settings.cache_clear()
    payment_secrets.reset()
    stripe_gateway.reset()
    mail.reset()
    alerts.reset()
    workflows.reset()
    cognito.reset()
    from functions.payments import reconcile, webhook

    webhook._deps.cache_clear()
    reconcile._deps.cache_clear()


@dataclass
class PaymentsStack:
    api: str
    stripe_url: str
    emulator: StripeEmulator
    moto: str
    pool: dict[str, str]
    enrollment_arn: str
    deprovision_arn: str
    database_url: str
    env: dict[str, str]

    # --- people ---------------------------------------------------------------------------------

    def student(self, verified: bool = True, email: str | None = None) -> dict[str, str]:
        """A student registered, verified and logged in through the API."""
        email = email or f"student-{uuid.uuid4().hex[:10]}@example.com"
        versions = active_consent_versions(self.database_url)
        registered = requests.post(
            f"{self.api}/api/auth/registration/",
            json={"email": email, "password": PASSWORD, "name": "Ada Student", "accept_privacy": True, **versions},
            timeout=10,
        )
        assert registered.status_code == 201, registered.text
        if verified:
            ok = requests.post(
                f"{self.api}/api/auth/verify-email/", json={"email": email, "code": mailed_code(email)}, timeout=10
            )
            assert ok.status_code == 200, ok.text
        login = requests.post(f"{self.api}/api/auth/login/", json={"email": email, "password": PASSWORD}, timeout=10)
        assert login.status_code == 200, login.text
        body = login.json()
        return {"email": email, "id": body["user"]["id"], "access": body["access"]}

    def staff(self, role: str) -> dict[str, str]:
        """A trainer or admin: a student account promoted in Cognito and in the users row."""
        person = self.student()
        idp = boto3.client("cognito-idp", endpoint_url=self.moto, region_name="us-east-1")
        group = {"admin": "admins", "trainer": "trainers"}[role]
        idp.admin_add_user_to_group(UserPoolId=self.pool["user_pool_id"], Username=person["email"], GroupName=group)
        idp.admin_remove_user_from_group(
            UserPoolId=self.pool["user_pool_id"], Username=person["email"], GroupName="students"
        )
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            conn.execute("UPDATE users SET role = %s WHERE id = %s", (role, person["id"]))
        login = requests.post(
            f"{self.api}/api/auth/login/", json={"email": person["email"], "password": PASSWORD}, timeout=10
        )
        return {**person, "access": login.json()["access"]}

    # --- calls ----------------------------------------------------------------------------------

    def call(self, method: str, path: str, who: dict[str, str] | None = None, **kwargs: Any) -> requests.Response:
        headers = kwargs.pop("headers", {})
        if who:
            headers["Authorization"] = f"Bearer {who['access']}"
        return requests.request(method, f"{self.api}{path}", headers=headers, timeout=30, **kwargs)

    def pay(self, session_id: str, card: str = "4242424242424242") -> dict[str, Any]:
        """The emulator's test control: pays and delivers the events before it answers."""
        paid = requests.post(
            f"{self.stripe_url}/_test/checkout/sessions/{session_id}/pay", json={"card": card}, timeout=30
        )
        assert paid.status_code == 200, paid.text
        return paid.json()

    def stripe(self) -> stripe.StripeClient:
        return stripe.StripeClient(
            API_KEY, base_addresses={"api": self.stripe_url}, http_client=stripe.RequestsClient(), max_network_retries=0
        )

    def deliver(self, event: dict[str, Any], *, secret: str = WEBHOOK_SECRET, timestamp: int | None = None,
                signature: str | None = None) -> requests.Response:  # fmt: skip
        """Posts ``event`` to the webhook signed as Stripe signs (or with the given signature)."""
        from local.stripe_emulator.app import sign_payload

        payload = event if isinstance(event, str) else json.dumps(event)
        header = signature if signature is not None else sign_payload(payload, secret, timestamp)
        return requests.post(
            f"{self.api}/api/payments/webhook/",
            data=payload.encode(),
            headers={"Stripe-Signature": header, "Content-Type": "application/json"},
            timeout=30,
        )

    # --- looking -------------------------------------------------------------------------------

    def row(self, query: str, *params: Any) -> dict[str, Any] | None:
        with psycopg.connect(self.database_url, autocommit=True, row_factory=dict_row) as conn:
            return conn.execute(query, params).fetchone()

    def rows(self, query: str, *params: Any) -> list[dict[str, Any]]:
        with psycopg.connect(self.database_url, autocommit=True, row_factory=dict_row) as conn:
            return conn.execute(query, params).fetchall()

    def executions(self, arn: str, name: str | None = None) -> list[dict[str, Any]]:
        sfn = boto3.client("stepfunctions", endpoint_url=self.moto, region_name="us-east-1")
        found = sfn.list_executions(stateMachineArn=arn)["executions"]
        return [e for e in found if name in (None, e["name"])]

    def execution_input(self, execution_arn: str) -> dict[str, Any]:
        sfn = boto3.client("stepfunctions", endpoint_url=self.moto, region_name="us-east-1")
        return json.loads(sfn.describe_execution(executionArn=execution_arn)["input"])

    def mail_to(self, address: str) -> list[dict[str, Any]]:
        """The app's emails to ``address`` (Cognito's code emails are read with ``mailed_code``)."""
        return [m for m in mailbox() if address in m["to"] and not is_code_email(m)]

    def wait_for(self, query: str, *params: Any, timeout: float = 10.0) -> dict[str, Any]:
        """The row once ``query`` returns one (for webhook deliveries the emulator makes on its own)."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.row(query, *params)
            if found or time.monotonic() > deadline:
                assert found, f"no row for {query} {params}"
                return found
            time.sleep(0.05)


def _state_machine(sfn: Any, name: str) -> str:
    # The workflows themselves are built by the workflow issue; the webhook starts whichever state
    # machine is configured, and these tests assert the starts.
    role = "arn:aws:iam::123456789012:role/apranova-test-states"
    definition = {"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}
    return sfn.create_state_machine(name=name, definition=json.dumps(definition), roleArn=role)["stateMachineArn"]


def start_stack(database_url: str) -> Iterator[PaymentsStack]:
    moto = moto_url()
    pool = make_pool()
    region = "us-east-1"
    ssm = boto3.client("ssm", endpoint_url=moto, region_name=region)
    prefix = f"/apranova/test-{uuid.uuid4().hex[:6]}"
    ssm.put_parameter(Name=f"{prefix}/stripe/api-key", Value=API_KEY, Type="SecureString", Overwrite=True)
    ssm.put_parameter(Name=f"{prefix}/stripe/webhook-secret", Value=WEBHOOK_SECRET, Type="SecureString", Overwrite=True)
    boto3.client("ses", endpoint_url=moto, region_name=region).verify_email_identity(EmailAddress=SENDER)
    sfn = boto3.client("stepfunctions", endpoint_url=moto, region_name=region)
    suffix = uuid.uuid4().hex[:6]
    enrollment = _state_machine(sfn, f"enrollment-{suffix}")
    deprovision = _state_machine(sfn, f"deprovision-{suffix}")

    api_app = LocalApi(
        jwt_check=JwtCheck(
            moto_url=moto, region=region, user_pool_id=pool["user_pool_id"], client_id=pool["client_id"]
        ),
        openapi=lambda: {},
        mailbox=mailbox,
    )
    api_server, api = _serve(api_app)
    emulator = StripeEmulator(
        webhook_url=f"{api}/api/payments/webhook/",
        webhook_secret=WEBHOOK_SECRET,
        retry_delays=(0.05, 0.1),
        api_key=API_KEY,
    )
    stripe_server, stripe_url = _serve(emulator)
    env = {
        "COGNITO_USER_POOL_ID": pool["user_pool_id"],
        "COGNITO_CLIENT_ID": pool["client_id"],
        "STRIPE_API_KEY_PARAM": f"{prefix}/stripe/api-key",
        "STRIPE_WEBHOOK_SECRET_PARAM": f"{prefix}/stripe/webhook-secret",
        "STRIPE_API_BASE": stripe_url,
        "CHECKOUT_SUCCESS_URL": "http://spa.test/payment/success?session_id={CHECKOUT_SESSION_ID}",
        "CHECKOUT_CANCEL_URL": "http://spa.test/payment/cancelled",
        "SPA_ORIGIN": "http://spa.test",
        "ENROLLMENT_STATE_MACHINE_ARN": enrollment,
        "DEPROVISION_STATE_MACHINE_ARN": deprovision,
        "EMAIL_SENDER": SENDER,
        "OPS_EMAIL": OPS,
        **{f"AWS_ENDPOINT_URL_{service}": moto for service in SERVICE_ENDPOINTS},
    }
    try:
        with pytest.MonkeyPatch.context() as mp:
            for key, value in env.items():
                mp.setenv(key, value)
            reset_caches()
            try:
                yield PaymentsStack(api, stripe_url, emulator, moto, pool, enrollment, deprovision, database_url, env)
            finally:
                emulator.flush()
                stripe_server.shutdown()
                api_server.shutdown()
    finally:
        reset_caches()
