"""The payments functions in the stack: the API function and the webhook, their settings, routes and
exactly-scoped permissions (Stripe parameters, the SES sender, the pool, the state machines)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aws_cdk import DockerImage
from aws_cdk.assertions import Template

from apranova import routes
from apranova.alerts import AlertSettings
from apranova.cognito import CognitoSettings
from apranova.mail import MailSettings
from apranova.settings import DatabaseSettings, load
from cdk.constructs.bundling import CopyBundler
from cdk.constructs.python_function import VPC_ACCESS_ACTIONS, function_sources
from functions.payments.config import PaymentSettings
from tests.infra.stack_support import function_props, role_statements, statements_with

PAYMENTS = ("payments", "payments-webhook")
ACCOUNT_ARN = "arn:<AWS::Partition>:{service}:<AWS::Region>:<AWS::AccountId>:{resource}"
ENROLLMENT_ARN = "arn:aws:states:eu-west-1:111122223333:stateMachine:apranova-staging-enrollment"
DEPROVISION_ARN = "arn:aws:states:eu-west-1:111122223333:stateMachine:apranova-staging-deprovision"
# Every statement a payments role may hold that is not about payments.
HOUSE_ACTIONS = {"logs:", "ec2:", "xray:", "rds-db:"}
# Read by Powertools, not by a settings model.
POWERTOOLS_VARIABLES = {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE"}


def _arn(service: str, resource: str) -> str:
    return ACCOUNT_ARN.format(service=service, resource=resource)


def _parameter(stage: str, suffix: str) -> str:
    return _arn("ssm", f"parameter/apranova/{stage}/stripe/{suffix}")


def _env(template, name: str) -> dict:
    return function_props(template, name)["Environment"]["Variables"]


def _payments_statements(template, name: str) -> list[dict]:
    return [
        s for s in role_statements(template, name) if not any(a.startswith(tuple(HOUSE_ACTIONS)) for a in s["Action"])
    ]


@pytest.fixture(scope="module")
def configured(tmp_path_factory):
    """A stage deployed with every optional payments context value, synthesized with cdk-nag."""
    from cdk.app import build

    app, stack = build(
        {
            "aws:cdk:bundling-stacks": [],
            "stage": "staging",
            "spaOrigin": "https://app.apranova.example/",
            "sesSenderArn": "arn:aws:ses:eu-west-1:111122223333:identity/mail.apranova.example",
            "opsEmail": "ops@apranova.example",
            "enrollmentStateMachineArn": ENROLLMENT_ARN,
            "deprovisionStateMachineArn": DEPROVISION_ARN,
        },
        outdir=str(tmp_path_factory.mktemp("cdk.out")),
    )
    assembly = app.synth()
    report = json.loads((Path(assembly.directory) / "validation-report.json").read_text())
    return report, Template.from_stack(stack)


def test_both_functions_run_the_payments_package_with_their_own_handlers(template):
    api, webhook = (function_props(template, name) for name in PAYMENTS)
    assert api["Handler"] == "functions.payments.handler.lambda_handler"
    assert webhook["Handler"] == "functions.payments.webhook.lambda_handler"
    # One asset (functions/payments), deployed twice.
    assert api["Code"]["S3Key"] == webhook["Code"]["S3Key"]
    assert api["Code"]["S3Key"] != function_props(template, "curriculum")["Code"]["S3Key"]
    for props in (api, webhook):
        assert "VpcConfig" in props  # the database through the proxy; Stripe through the NAT
        assert props["Environment"]["Variables"]["DB_USER"] == "apranova_app"


def test_the_webhook_asset_is_the_payments_folder(tmp_path):
    folder = routes.function_folder("payments-webhook")
    assert folder == "payments"
    CopyBundler(function_sources(folder)).try_bundle(str(tmp_path), image=DockerImage.from_registry("unused"))
    assert (tmp_path / "functions" / "payments" / "config.py").is_file()
    assert {p.name for p in (tmp_path / "functions").iterdir()} == {"__init__.py", "payments"}


def test_dev_settings_name_the_stage_parameters_and_spa_urls(template):
    api, webhook = (_env(template, name) for name in PAYMENTS)
    assert api["STRIPE_API_KEY_PARAM"] == "/apranova/dev/stripe/api-key"
    assert "STRIPE_API_KEY_PARAM" not in webhook  # the webhook only verifies signatures
    assert webhook["STRIPE_WEBHOOK_SECRET_PARAM"] == "/apranova/dev/stripe/webhook-secret"
    assert "STRIPE_WEBHOOK_SECRET_PARAM" not in api  # the API function never reads the signing secret
    for env in (api, webhook):
        assert env["SPA_ORIGIN"] == "http://localhost:5173"
        assert env["CHECKOUT_SUCCESS_URL"] == "http://localhost:5173/payment/success?session_id={CHECKOUT_SESSION_ID}"
        assert env["CHECKOUT_CANCEL_URL"] == "http://localhost:5173/payment/cancelled"
        assert env["EMAIL_SENDER"] == "no-reply@apranova.example"
        # Stripe itself in AWS; no secret value, no state machine or ops address unless configured.
        for absent in ("STRIPE_API_BASE", "OPS_EMAIL", "ENROLLMENT_STATE_MACHINE_ARN", "DEPROVISION_STATE_MACHINE_ARN"):
            assert absent not in env
        assert not [k for k in env if "SECRET" in k and not k.endswith("_PARAM")]


def test_the_payments_code_reads_what_the_stack_sets(configured):
    """The deployed variables through the code's own settings models: names and values agree."""
    _report, template = configured
    models = (PaymentSettings, MailSettings, AlertSettings, DatabaseSettings, CognitoSettings)
    known = {field.upper() for model in models for field in model.model_fields} | POWERTOOLS_VARIABLES
    for name in PAYMENTS:
        env = _env(template, name)
        # No variable the code does not read (a typo would silently fall back to a local default).
        assert set(env) <= known, (name, set(env) - known)
        plain = {k: v for k, v in env.items() if isinstance(v, str)}
        settings = load(PaymentSettings, plain)
        assert settings.stage == "staging"
        expected_key = "/apranova/staging/stripe/api-key" if name == "payments" else None
        assert settings.stripe_api_key_param == expected_key
        assert settings.stripe_api_base is None
        assert settings.spa_origin == "https://app.apranova.example"
        assert settings.checkout_success_url == (
            "https://app.apranova.example/payment/success?session_id={CHECKOUT_SESSION_ID}"
        )
        assert settings.checkout_cancel_url == "https://app.apranova.example/payment/cancelled"
        # A domain identity sends as no-reply@ it, like the user pool.
        assert load(MailSettings, plain).email_sender == "no-reply@mail.apranova.example"
        assert load(AlertSettings, plain).ops_email == "ops@apranova.example"
    webhook = load(PaymentSettings, {k: v for k, v in _env(template, "payments-webhook").items() if isinstance(v, str)})
    assert webhook.stripe_webhook_secret_param == "/apranova/staging/stripe/webhook-secret"
    assert webhook.enrollment_state_machine_arn == ENROLLMENT_ARN
    assert webhook.deprovision_state_machine_arn == DEPROVISION_ARN
    api = load(PaymentSettings, {k: v for k, v in _env(template, "payments").items() if isinstance(v, str)})
    assert api.stripe_webhook_secret_param is None
    assert api.enrollment_state_machine_arn is None and api.deprovision_state_machine_arn is None


def test_webhook_route_is_open_and_every_other_payments_route_follows_the_table(template):
    by_key = {
        r["Properties"]["RouteKey"]: r["Properties"]
        for r in template.find_resources("AWS::ApiGatewayV2::Route").values()
    }
    ((authorizer_id, _),) = template.find_resources("AWS::ApiGatewayV2::Authorizer").items()
    webhook = by_key["POST /api/payments/webhook"]
    assert webhook["AuthorizationType"] == "NONE"
    assert "AuthorizerId" not in webhook
    payment_routes = [r for r in routes.ROUTES if r.function in PAYMENTS]
    assert len(payment_routes) > 1
    for route in payment_routes:
        props = by_key[route.gateway_key]
        if route.access.needs_token:
            assert props["AuthorizationType"] == "JWT", route.key
            assert props["AuthorizerId"] == {"Ref": authorizer_id}, route.key
        else:  # the webhook and the pay-first routes (anonymous checkout, verify-session)
            assert route.access in (routes.Access.STRIPE, routes.Access.PUBLIC), route.key
            assert props["AuthorizationType"] == "NONE", route.key
    assert [r.function for r in routes.ROUTES if r.access is routes.Access.STRIPE] == ["payments-webhook"]


def test_payments_roles_hold_exactly_their_grants(template):
    api_key, webhook_secret = _parameter("dev", "api-key"), _parameter("dev", "webhook-secret")
    sender = [_arn("ses", "identity/apranova.example"), _arn("ses", "identity/no-reply@apranova.example")]
    pool = template.find_resources("AWS::Cognito::UserPool")
    ((pool_id, _),) = pool.items()

    def kms(parameters: list[str]) -> dict:
        return {
            "Action": ["kms:Decrypt"],
            "Effect": "Allow",
            "Resource": [_arn("kms", "key/*")],
            "Condition": {
                "StringEquals": {
                    "kms:ViaService": "ssm.<AWS::Region>.<AWS::URLSuffix>",
                    "kms:EncryptionContext:PARAMETER_ARN": parameters,
                }
            },
        }

    assert sorted(_payments_statements(template, "payments"), key=json.dumps) == sorted(
        [
            {"Action": ["ssm:GetParameter"], "Effect": "Allow", "Resource": [api_key]},
            kms([api_key]),
            {"Action": ["ses:SendEmail"], "Effect": "Allow", "Resource": sender},
        ],
        key=json.dumps,
    )
    assert sorted(_payments_statements(template, "payments-webhook"), key=json.dumps) == sorted(
        [
            {"Action": ["ssm:GetParameter"], "Effect": "Allow", "Resource": [webhook_secret]},
            kms([webhook_secret]),
            {"Action": ["ses:SendEmail"], "Effect": "Allow", "Resource": sender},
            {
                "Action": [
                    "cognito-idp:AdminAddUserToGroup",
                    "cognito-idp:AdminCreateUser",
                    "cognito-idp:AdminGetUser",
                    "cognito-idp:AdminSetUserPassword",
                ],
                "Effect": "Allow",
                "Resource": [f"<{pool_id}.Arn>"],
            },
        ],
        key=json.dumps,
    )


def test_no_wildcard_resource_in_payments_roles_beyond_the_acknowledged_ones(template):
    allowed_on_any = set(VPC_ACCESS_ACTIONS) | {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
    for name in PAYMENTS:
        for statement in role_statements(template, name):
            wild = [r for r in statement["Resource"] if "*" in r]
            if not wild:
                continue
            if wild == ["*"]:
                assert set(statement["Action"]) <= allowed_on_any, (name, statement)
            else:
                # kms key/*: the key id is unknown; only through SSM, only for these parameters.
                assert statement["Action"] == ["kms:Decrypt"] and wild == [_arn("kms", "key/*")], (name, statement)
                condition = statement["Condition"]["StringEquals"]
                assert condition["kms:ViaService"] and condition["kms:EncryptionContext:PARAMETER_ARN"]


def test_no_state_machine_permission_or_setting_without_context(template):
    for name in routes.functions():
        assert statements_with(role_statements(template, name), "states:") == [], name


def test_configured_state_machines_are_started_by_the_webhook_only(configured):
    report, template = configured
    (statement,) = statements_with(role_statements(template, "payments-webhook"), "states:")
    assert statement["Action"] == ["states:StartExecution"]
    assert statement["Resource"] == sorted([ENROLLMENT_ARN, DEPROVISION_ARN])
    env = _env(template, "payments-webhook")
    assert env["ENROLLMENT_STATE_MACHINE_ARN"] == ENROLLMENT_ARN
    assert env["DEPROVISION_STATE_MACHINE_ARN"] == DEPROVISION_ARN
    for name in routes.functions():
        if name != "payments-webhook":
            assert statements_with(role_statements(template, name), "states:") == [], name
            assert "ENROLLMENT_STATE_MACHINE_ARN" not in _env(template, name)
    # The configured stage's grants pass cdk-nag too.
    (nag,) = [p for p in report["pluginReports"] if p["pluginName"] == "AwsSolutions"]
    assert nag["conclusion"] == "success" and nag["violations"] == []


def test_configured_stage_scopes_parameters_and_sender(configured):
    _report, template = configured
    (ssm,) = statements_with(role_statements(template, "payments-webhook"), "ssm:")
    assert ssm["Resource"] == [_parameter("staging", "webhook-secret")]
    (ses,) = statements_with(role_statements(template, "payments"), "ses:")
    assert ses["Resource"] == [
        _arn("ses", "identity/mail.apranova.example"),
        _arn("ses", "identity/no-reply@mail.apranova.example"),
    ]


def test_webhook_url_is_a_stack_output(template):
    value = template.to_json()["Outputs"]["StripeWebhookUrl"]["Value"]["Fn::Join"][1]
    assert value[0] == "https://" and value[-1] == "/api/payments/webhook/"


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"enrollmentStateMachineArn": "arn:aws:lambda:eu-west-1:1:function:x"}, "enrollmentStateMachineArn"),
        ({"deprovisionStateMachineArn": "arn:aws:states:eu-west-1:1:execution:m:x"}, "deprovisionStateMachineArn"),
        ({"emailSender": "not-an-address"}, "emailSender"),
    ],
)
def test_bad_payments_context_fails_the_synth_by_name(context, message):
    from cdk.app import build

    with pytest.raises(ValueError, match=message):
        build({"aws:cdk:bundling-stacks": [], **context})
