"""The synthesized ApraNova stack: routes from the route table, house functions, data, cdk-nag."""

from __future__ import annotations

import json
from pathlib import Path

from aws_cdk.assertions import Annotations, Match

from apranova import routes
from cdk.constructs.python_function import VPC_ACCESS_ACTIONS
from cdk.constructs.workspaces import UNSCOPED_ECS_ACTIONS
from tests.infra.stack_support import function_ids as _function_ids
from tests.infra.stack_support import handler_modules

DEPLOYED = [r for r in routes.ROUTES if not r.local_only]
STATE_MACHINE_UNSCOPED_ACTIONS = {
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
    "logs:CreateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:DescribeLogGroups",
    "logs:DescribeResourcePolicies",
    "logs:GetLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:UpdateLogDelivery",
}


def _resources(template, type_: str) -> dict:
    return template.find_resources(type_)


def _integration_function(template, integration_id: str) -> str:
    uri = _resources(template, "AWS::ApiGatewayV2::Integration")[integration_id]["Properties"]["IntegrationUri"]
    return uri["Fn::GetAtt"][0]


def _target_integration(route: dict) -> str:
    return route["Properties"]["Target"]["Fn::Join"][1][1]["Ref"]


def test_every_deployed_route_exists_and_targets_its_function(template):
    function_ids = _function_ids(template)
    by_key = {r["Properties"]["RouteKey"]: r for r in _resources(template, "AWS::ApiGatewayV2::Route").values()}
    for route in DEPLOYED:
        key = route.gateway_key
        assert key in by_key, f"missing route {key}"
        integration = _target_integration(by_key[key])
        assert _integration_function(template, integration) == function_ids[route.function], key
        # Public today; the authorizer tests cover routes that need a token.
        expected = "JWT" if route.access.needs_token else "NONE"
        assert by_key[key]["Properties"]["AuthorizationType"] == expected
    # Nothing deployed that the table does not list (besides $default); local-only stays local.
    assert set(by_key) == {r.gateway_key for r in DEPLOYED} | {"$default"}


def test_default_route_goes_to_the_fallback_function(template):
    (default,) = [
        r
        for r in _resources(template, "AWS::ApiGatewayV2::Route").values()
        if r["Properties"]["RouteKey"] == "$default"
    ]
    assert (
        _integration_function(template, _target_integration(default))
        == _function_ids(template)[routes.FALLBACK_FUNCTION]
    )


def test_one_lambda_integration_per_function(template):
    integrations = _resources(template, "AWS::ApiGatewayV2::Integration")
    targets = sorted(_integration_function(template, i) for i in integrations)
    function_ids = _function_ids(template)
    assert targets == sorted(function_ids[name] for name in routes.functions())
    for integration in integrations.values():
        assert integration["Properties"]["IntegrationType"] == "AWS_PROXY"
        assert integration["Properties"]["PayloadFormatVersion"] == "2.0"


def test_stage_throttles_logs_and_cors(template):
    template.has_resource_properties(
        "AWS::ApiGatewayV2::Stage",
        {
            "StageName": "$default",
            "AutoDeploy": True,
            "DefaultRouteSettings": {
                "ThrottlingRateLimit": Match.any_value(),
                "ThrottlingBurstLimit": Match.any_value(),
            },
            "AccessLogSettings": {"DestinationArn": Match.any_value(), "Format": Match.any_value()},
        },
    )
    (stage,) = _resources(template, "AWS::ApiGatewayV2::Stage").values()
    log_format = stage["Properties"]["AccessLogSettings"]["Format"]
    for field in ("$context.requestId", "$context.routeKey", "$context.status", "$context.responseLatency"):
        assert field in log_format
    for secret_bearing in ("querystring", "authorizer", "header", "path"):
        assert secret_bearing not in log_format.lower()
    # Dev's CORS names the web app's distribution, set by the web hosting stack (test_web_hosting.py).
    (api,) = template.find_resources("AWS::ApiGatewayV2::Api").values()
    assert "CorsConfiguration" not in api["Properties"]


def test_functions_follow_the_house_construct(template):
    functions = _resources(template, "AWS::Lambda::Function")
    layer_ids = list(_resources(template, "AWS::Lambda::LayerVersion"))
    assert len(layer_ids) == 1
    log_groups = _resources(template, "AWS::Logs::LogGroup")
    for name, logical_id in _function_ids(template).items():
        props = functions[logical_id]["Properties"]
        assert props["Runtime"] == "python3.12"
        assert props["Architectures"] == ["arm64"]
        assert props["TracingConfig"] == {"Mode": "Active"}
        assert props["LoggingConfig"]["LogFormat"] == "JSON"
        # functions/<name>/handler.py unless the route table (the payments webhook) or the step
        # catalog says otherwise.
        assert props["Handler"] == f"{handler_modules()[name]}.lambda_handler"
        assert props["Layers"] == [{"Ref": layer_ids[0]}]
        env = props["Environment"]["Variables"]
        assert env["POWERTOOLS_SERVICE_NAME"] == name
        assert env["POWERTOOLS_METRICS_NAMESPACE"] == "ApraNova"
        group = props["LoggingConfig"]["LogGroup"]["Ref"]
        assert log_groups[group]["Properties"]["RetentionInDays"] > 0
    assert set(_function_ids(template)) == set(handler_modules())


def test_no_action_on_every_resource_beyond_what_aws_requires(template):
    # X-Ray and the EC2 network interfaces of VPC functions; the ECS actions AWS scopes to no
    # resource (cdk/constructs/workspaces.py, each in an acknowledged policy of its own); the state
    # machines' tracing and log delivery (Step Functions documents these on '*' only).
    allowed = (
        set(VPC_ACCESS_ACTIONS)
        | {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
        | set(UNSCOPED_ECS_ACTIONS)
        | STATE_MACHINE_UNSCOPED_ACTIONS
        # The workspace image from ECR: the registry login authorizes no resource.
        | {"ecr:GetAuthorizationToken"}
    )
    for logical_id, policy in _resources(template, "AWS::IAM::Policy").items():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if statement["Resource"] == "*":
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                assert set(actions) <= allowed, (logical_id, actions)


def test_database_functions_reach_the_proxy_with_iam(template):
    functions = _resources(template, "AWS::Lambda::Function")
    for name in ("health", "curriculum"):
        props = functions[_function_ids(template)[name]]["Properties"]
        env = props["Environment"]["Variables"]
        assert env["DB_NAME"] == "apranova" and env["DB_USER"] == "apranova_app"
        assert env["DB_HOST"]["Fn::GetAtt"][1] == "Endpoint"
        assert "VpcConfig" in props
        assert "DATABASE_URL" not in env and "DB_PASSWORD" not in env
    template.has_resource_properties(
        "AWS::RDS::DBProxy", {"RequireTLS": True, "DefaultAuthScheme": "IAM_AUTH", "EngineFamily": "POSTGRESQL"}
    )
    template.has_resource_properties(
        "AWS::RDS::DBInstance",
        {
            "Engine": "postgres",
            "EngineVersion": Match.string_like_regexp(r"^16"),
            "StorageEncrypted": True,
            "PubliclyAccessible": False,
            "EnableIAMDatabaseAuthentication": True,
            "BackupRetentionPeriod": Match.any_value(),
        },
    )
    template.has_resource_properties("AWS::RDS::DBParameterGroup", {"Parameters": {"rds.force_ssl": "1"}})


def test_migrations_run_by_a_trigger_before_the_api_functions(template):
    (trigger_id, trigger), *rest = template.find_resources("Custom::Trigger").items()
    assert not rest
    migrate_id = _function_ids(template)["migrate"]
    handler = trigger["Properties"]["HandlerArn"]["Ref"]
    assert handler in template.find_resources("AWS::Lambda::Version")
    assert template.find_resources("AWS::Lambda::Version")[handler]["Properties"]["FunctionName"] == {"Ref": migrate_id}
    functions = template.find_resources("AWS::Lambda::Function")
    for name in routes.functions():
        assert trigger_id in functions[_function_ids(template)[name]].get("DependsOn", [])
    env = functions[migrate_id]["Properties"]["Environment"]["Variables"]
    assert set(env) >= {"DB_SECRET_ARN", "DATASETS_BUCKET", "DB_NAME"}


def test_datasets_bucket_is_private_tls_only_encrypted_and_retained(template):
    buckets = template.find_resources("AWS::S3::Bucket")
    (datasets_id,) = [i for i in buckets if i.startswith("StorageDatasets")]
    bucket = buckets[datasets_id]
    assert bucket["DeletionPolicy"] == "Retain"
    props = bucket["Properties"]
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    template.has_resource_properties(
        "AWS::S3::BucketPolicy",
        {
            "Bucket": {"Ref": datasets_id},
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Effect": "Deny",
                                "Action": "s3:*",
                                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                            }
                        )
                    ]
                )
            },
        },
    )


def test_no_cdk_nag_findings(synthesized):
    """cdk-nag runs as a validation plugin during synth; its report lists what it found."""
    _app, stack, assembly, _template = synthesized
    report = json.loads((Path(assembly.directory) / "validation-report.json").read_text())
    plugins = {plugin["pluginName"]: plugin for plugin in report["pluginReports"]}
    assert "AwsSolutions" in plugins
    for name, plugin in plugins.items():
        assert plugin["conclusion"] == "success", (name, [v["ruleName"] for v in plugin["violations"]])
        assert plugin["violations"] == []
    # What was acknowledged is on record with a reason.
    for suppressed in plugins["AwsSolutions"]["suppressedViolations"]:
        assert len(suppressed["reason"]) >= 40, suppressed["acknowledgedId"]
    assert Annotations.from_stack(stack).find_error("*", Match.string_like_regexp("AwsSolutions-.*")) == []


def test_every_acknowledgment_names_a_finding_and_gives_a_reason(stack):
    from aws_cdk import Validations

    ours = {}
    for construct in stack.node.find_all():
        for entry in construct.node.metadata:
            if entry.type == Validations.ACKNOWLEDGED_RULES_METADATA_KEY:
                ours.update({(construct.node.path, k): v for k, v in entry.data.items() if "AwsSolutions" in k})
    assert ours
    for (path, finding), reason in ours.items():
        assert finding.startswith("AwsSolutions::AwsSolutions-"), (path, finding)
        assert len(reason) >= 40, (path, finding, reason)
