"""The payments functions in the stack: the API function and the webhook, their settings, routes and
exactly-scoped permissions (Stripe parameters, the SES sender, the pool, the state machines the
stack builds)."""

from __future__ import annotations

import json

import pytest
from aws_cdk import DockerImage

from apranova import routes
from apranova.alerts import AlertSettings
from apranova.cognito import CognitoSettings
from apranova.mail import MailSettings
from apranova.settings import DatabaseSettings, load
from cdk.constructs.bundling import CopyBundler
from cdk.constructs.python_function import VPC_ACCESS_ACTIONS, function_sources
from functions.payments.config import PaymentSettings
from tests.infra.stack_support import function_ids, function_props, role_statements, statements_with

PAYMENTS = ("payments", "payments-webhook")
ACCOUNT_ARN = "arn:<AWS::Partition>:{service}:<AWS::Region>:<AWS::AccountId>:{resource}"
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
    # The webhook refunds what cannot be fulfilled and expires the payer's other checkouts.
    assert webhook["STRIPE_API_KEY_PARAM"] == "/apranova/dev/stripe/api-key"
    assert webhook["STRIPE_WEBHOOK_SECRET_PARAM"] == "/apranova/dev/stripe/webhook-secret"
    assert "STRIPE_WEBHOOK_SECRET_PARAM" not in api  # the API function never reads the signing secret
    for env in (api, webhook):
        # The web app's distribution (tests/infra/test_web_hosting.py: the same origin everywhere).
        origin = env["SPA_ORIGIN"]["Fn::Join"][1]
        assert origin[0] == "https://"
        assert env["CHECKOUT_SUCCESS_URL"] == {
            "Fn::Join": ["", [*origin, "/payment/success?session_id={CHECKOUT_SESSION_ID}"]]
        }
        assert env["CHECKOUT_CANCEL_URL"] == {"Fn::Join": ["", [*origin, "/payment/cancelled"]]}
        assert env["EMAIL_SENDER"] == "no-reply@apranova.example"
        # Stripe itself in AWS; no secret value, no ops address unless configured.
        for absent in ("STRIPE_API_BASE", "OPS_EMAIL"):
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
        # Both call Stripe (the webhook refunds what cannot be fulfilled).
        assert settings.stripe_api_key_param == "/apranova/staging/stripe/api-key"
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
    enrollment, deprovision = _machines(template)
    assert _env(template, "payments-webhook")["ENROLLMENT_STATE_MACHINE_ARN"] == {"Ref": enrollment}
    assert _env(template, "payments-webhook")["DEPROVISION_STATE_MACHINE_ARN"] == {"Ref": deprovision}
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
    sender = [
        _arn("ses", "configuration-set/apranova-dev"),
        _arn("ses", "identity/apranova.example"),
        _arn("ses", "identity/no-reply@apranova.example"),
    ]
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
            {"Action": ["ssm:GetParameter"], "Effect": "Allow", "Resource": sorted([webhook_secret, api_key])},
            kms([webhook_secret, api_key]),
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
            {
                "Action": ["states:StartExecution"],
                "Effect": "Allow",
                "Resource": sorted(f"<{machine}>" for machine in _machines(template)),
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


def _machines(template) -> tuple[str, str]:
    """The logical ids of the enrollment and the deprovision state machines."""
    machines = template.find_resources("AWS::StepFunctions::StateMachine")
    (enrollment,) = [i for i in machines if i.startswith("WorkflowsEnrollment")]
    (deprovision,) = [i for i in machines if i.startswith("WorkflowsDeprovision")]
    return enrollment, deprovision


# Who starts which workflow: the webhook both (payment; full refund or lost dispute), the admin
# function the enrollment (manual enrollment, re-provisioning). Nobody else touches Step Functions.
STARTERS = {
    "payments-webhook": ("enrollment", "deprovision"),
    "admin": ("enrollment",),
    # The purge runs the deprovision workflow for each erased account (and polls the execution).
    "compliance-purge": ("deprovision",),
    # The payments reconcile job does what the webhook left undone.
    "payments-reconcile": ("enrollment", "deprovision"),
}


@pytest.mark.parametrize("stage", ["dev", "staging"])
def test_only_the_webhook_and_admin_start_executions_of_exactly_their_machines(stage, template, configured):
    template = template if stage == "dev" else configured[1]
    enrollment, deprovision = _machines(template)
    refs = {"enrollment": f"<{enrollment}>", "deprovision": f"<{deprovision}>"}
    variables = {"enrollment": "ENROLLMENT_STATE_MACHINE_ARN", "deprovision": "DEPROVISION_STATE_MACHINE_ARN"}
    for name in function_ids(template):  # routes, steps, the migration, scheduled functions
        statements = statements_with(role_statements(template, name), "states:")
        env = _env(template, name)
        if name not in STARTERS:
            assert statements == [], name
            assert not set(variables.values()) & set(env), name
            continue
        # The purge waits for the deprovision runs it starts; the reconcile job reads whether a paid
        # enrollment's run failed before it starts it again: DescribeExecution of that machine only.
        watched = {"compliance-purge": deprovision, "payments-reconcile": enrollment}.get(name)
        if watched is not None:
            (polling,) = [s for s in statements if s["Action"] == ["states:DescribeExecution"]]
            assert polling["Resource"] == [
                f"arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:<{watched}.Name>:*"
            ]
            statements = [s for s in statements if s is not polling]
        (statement,) = statements
        assert statement["Effect"] == "Allow" and "Condition" not in statement, name
        assert statement["Action"] == ["states:StartExecution"], name
        assert statement["Resource"] == sorted(refs[machine] for machine in STARTERS[name]), name
        for machine, variable in variables.items():
            if machine in STARTERS[name]:
                assert env[variable] == {"Ref": {"enrollment": enrollment, "deprovision": deprovision}[machine]}
            else:
                assert variable not in env, name


def test_the_admin_function_reads_the_enrollment_machine_it_may_start(template):
    from functions.admin.handler import WorkflowSettings

    assert set(WorkflowSettings.model_fields) - {"stage", "aws_region"} == {"enrollment_state_machine_arn"}
    assert "ENROLLMENT_STATE_MACHINE_ARN" in _env(template, "admin")


def test_the_configured_stage_passes_cdk_nag(configured):
    report, _template = configured
    (nag,) = [p for p in report["pluginReports"] if p["pluginName"] == "AwsSolutions"]
    assert nag["conclusion"] == "success" and nag["violations"] == []


def test_configured_stage_scopes_parameters_and_sender(configured):
    _report, template = configured
    (ssm,) = statements_with(role_statements(template, "payments-webhook"), "ssm:")
    assert ssm["Resource"] == sorted([_parameter("staging", "webhook-secret"), _parameter("staging", "api-key")])
    (ses,) = statements_with(role_statements(template, "payments"), "ses:")
    assert ses["Resource"] == [
        _arn("ses", "configuration-set/apranova-staging"),
        _arn("ses", "identity/mail.apranova.example"),
        _arn("ses", "identity/no-reply@mail.apranova.example"),
    ]


def test_webhook_url_is_a_stack_output(template):
    value = template.to_json()["Outputs"]["StripeWebhookUrl"]["Value"]["Fn::Join"][1]
    assert value[0] == "https://" and value[-1] == "/api/payments/webhook/"


@pytest.mark.parametrize(
    ("context", "message"),
    [({"emailSender": "not-an-address"}, "emailSender")],
)
def test_bad_payments_context_fails_the_synth_by_name(context, message):
    from cdk.app import build

    with pytest.raises(ValueError, match=message):
        build({"aws:cdk:bundling-stacks": [], **context})
