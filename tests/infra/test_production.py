"""Issue 8: the stack is production-grade, in dev and in prod.

Security properties read from the templates (encryption and TLS-only policies on every bucket,
queue and topic; no public bucket; no database reachable from outside; the proxy's TLS and IAM;
the network: endpoints, which functions have a route out), every alarm cdk/constructs/operations.py builds
for every function, state machine and queue the stack has, SES's bounce and complaint handling, reserved
concurrency, the outputs, and prod's refusal to synthesize without its context. Production is
synthesized once here, from the example context file ``make synth STAGE=prod`` uses.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Template

from apranova import inventory, routes
from apranova.inventory import Network
from cdk.constructs.database import VPC_CIDR
from cdk.constructs.network import INTERFACE_ENDPOINTS
from cdk.constructs.operations import API_P95_MS, API_P99_MS
from cdk.constructs.python_function import PythonFunction
from tests.infra.stack_support import flatten, resources

# From the function inventory: the functions routed to the internet, and Cognito's callers (routed
# there too once the user pool has a domain).
EGRESS_FUNCTIONS = {f.name for f in inventory.FUNCTIONS if f.network is Network.EGRESS}
COGNITO_CALLERS = {f.name for f in inventory.FUNCTIONS if any(a.startswith("cognito-idp:") for a in f.actions)}

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_CONTEXT = "cdk/context/prod.example.json"
EXAMPLE = json.loads((ROOT / EXAMPLE_CONTEXT).read_text())


class Stage:
    """One synthesized stage: the main template, the nested templates (operations; the students'
    instance when the stage has one) and the stack."""

    def __init__(self, stack, report: dict[str, Any] | None = None) -> None:
        self.stack = stack
        self.name = stack.stack_name
        self.main = Template.from_stack(stack)
        self.operations = Template.from_stack(stack.operations)
        self.students = Template.from_stack(stack.students_database) if stack.students_database else None
        self.report = report
        self._parameters: dict[str, Any] = next(
            r["Properties"].get("Parameters", {})
            for i, r in resources(self.main, "AWS::CloudFormation::Stack").items()
            if i.startswith("OperationsNestedStack")
        )

    def functions(self) -> dict[str, str]:
        """Every house function the stack built, whoever added it: name → logical id."""
        return {
            c.name: self.stack.get_logical_id(c.function.node.default_child)
            for c in self.stack.node.find_all()
            if isinstance(c, PythonFunction)
        }

    def outer(self, value: Any) -> Any:
        """A value of the nested template as the main stack passes it (a parameter → what feeds it)."""
        if isinstance(value, dict) and "Ref" in value and value["Ref"] in self._parameters:
            return self._parameters[value["Ref"]]
        return value


@pytest.fixture(scope="module")
def dev(synthesized) -> Stage:
    _app, stack, assembly, _template = synthesized
    return Stage(stack, json.loads((Path(assembly.directory) / "validation-report.json").read_text()))


@pytest.fixture(scope="module")
def prod(tmp_path_factory) -> Stage:
    """``make synth STAGE=prod``: stage prod with the example context file, cdk-nag included."""
    from cdk.app import build

    app, stack = build(
        {"aws:cdk:bundling-stacks": [], "stage": "prod", "contextFile": EXAMPLE_CONTEXT},
        outdir=str(tmp_path_factory.mktemp("cdk.out.prod")),
    )
    assembly = app.synth()
    return Stage(stack, json.loads((Path(assembly.directory) / "validation-report.json").read_text()))


@pytest.fixture(scope="module", params=["dev", "prod"])
def stage(request) -> Stage:
    return request.getfixturevalue(request.param)


def _templates(stage: Stage) -> list[Template]:
    return [stage.main, stage.operations, *([stage.students] if stage.students else [])]


def _all(stage: Stage, type_: str) -> dict[str, dict[str, Any]]:
    return {i: r for template in _templates(stage) for i, r in resources(template, type_).items()}


def _denies_plain_http(statements: list[dict[str, Any]]) -> bool:
    return any(
        s["Effect"] == "Deny"
        and s.get("Principal") in ("*", {"AWS": "*"})
        and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
        for s in statements
    )


# --- stages and context --------------------------------------------------------------------------------


def test_each_stage_is_its_own_stack_and_prod_is_pinned_and_protected(dev, prod):
    assert dev.name == "ApraNova-dev" and prod.name == "ApraNova-prod"
    assert prod.stack.account == EXAMPLE["account"] and prod.stack.region == EXAMPLE["region"]
    ((_, instance),) = resources(prod.main, "AWS::RDS::DBInstance").items()
    assert instance["Properties"]["MultiAZ"] is True and instance["Properties"]["DeletionProtection"] is True
    assert instance["Properties"]["BackupRetentionPeriod"] >= 7
    ((_, pool),) = resources(prod.main, "AWS::Cognito::UserPool").items()
    assert pool["Properties"]["DeletionProtection"] == "ACTIVE"
    ((_, dev_instance),) = resources(dev.main, "AWS::RDS::DBInstance").items()
    assert dev_instance["Properties"]["MultiAZ"] is False


def _build(context: dict[str, Any]):
    from cdk.app import build

    return build({"aws:cdk:bundling-stacks": [], **context})


def test_prod_without_its_context_names_everything_missing_at_once():
    from cdk.app import ContextError

    with pytest.raises(ContextError) as raised:
        _build({"stage": "prod"})
    message = str(raised.value)
    for key in ("account", "region", "webDomain", "opsEmail", "emailSender or sesSenderArn"):
        assert key in message, key
    # The shared tools are the stack's own now: their front door's domain is needed, no tool URL.
    assert "toolsDomain" in message
    for key in ("supersetUrl", "jupyterhubUrl", "prefectUrl"):
        assert key not in message, key
    assert "contextFile" in message and EXAMPLE_CONTEXT in message


def test_prod_names_only_what_is_still_missing():
    from cdk.app import ContextError

    context = {k: v for k, v in EXAMPLE.items() if k not in ("opsEmail", "emailSender")}
    with pytest.raises(ContextError) as raised:
        _build({"stage": "prod", **context})
    message = str(raised.value)
    assert "missing context: opsEmail, emailSender or sesSenderArn." in message
    for present in ("account", "region", "toolsDomain"):
        assert present not in message.split("missing context:")[1].split(";")[0]


def test_an_ses_identity_arn_stands_in_for_the_sender():
    from aws_cdk import App

    from cdk.app import check_context

    context = {k: v for k, v in EXAMPLE.items() if k != "emailSender"}
    arn = "arn:aws:ses:eu-west-1:111122223333:identity/apranova.example"
    check_context(App(context={**context, "sesSenderArn": arn}), "prod")  # no error


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"stage": "Prod"}, "stage must be lower-case"),
        ({"stage": "dev--x"}, "stage must be lower-case"),
        ({"stage": "prod", "contextFile": "cdk/context/missing.json"}, "cannot read it as JSON"),
    ],
)
def test_bad_context_fails_before_anything_is_built(context, message):
    from cdk.app import ContextError

    with pytest.raises(ContextError, match=message):
        _build(context)


def test_a_context_file_with_an_unknown_key_is_refused(tmp_path):
    from cdk.app import ContextError

    path = tmp_path / "context.json"
    path.write_text(json.dumps({**EXAMPLE, "stage": "prod", "opsEmial": "typo@apranova.example"}))
    with pytest.raises(ContextError, match="unknown keys opsEmial, stage"):
        _build({"stage": "prod", "contextFile": str(path)})


def test_explicit_context_wins_over_the_context_file():
    from cdk.app import ContextError

    # The file is complete; an explicit bad origin still counts, so explicit values came first.
    regional = EXAMPLE["webCertificateArn"].replace(":us-east-1:", ":eu-west-1:")
    with pytest.raises(ContextError, match="webCertificateArn must be a certificate of us-east-1"):
        _build({"stage": "prod", "contextFile": EXAMPLE_CONTEXT, "webCertificateArn": regional})


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"spaOrigin": "https://app.example"}, "spaOrigin is no longer a setting"),
        ({"webDomain": "app.example.com"}, "webDomain and webCertificateArn go together"),
        ({"webDomain": "App.Example", "webCertificateArn": "x"}, "webDomain must be a lower-case host name"),
        ({"webDomain": "app.example.com", "webCertificateArn": "arn:aws:iam::1:x"}, "must be an ACM certificate"),
    ],
)
def test_the_web_domain_context_is_checked_in_every_stage(context, message):
    from cdk.app import ContextError

    with pytest.raises(ContextError, match=message):
        _build(context)


def test_the_cli_gets_one_clear_line_not_a_traceback(tmp_path):
    """What ``npx cdk synth -c stage=prod`` runs: the app with the CLI's context in CDK_CONTEXT_JSON."""
    env = {**os.environ, "CDK_CONTEXT_JSON": json.dumps({"stage": "prod"}), "CDK_OUTDIR": str(tmp_path)}
    result = subprocess.run(  # noqa: S603 - this interpreter, a fixed module
        [sys.executable, "-m", "cdk.app"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "ApraNova-prod cannot be synthesized: missing context: account" in errors[0]
    assert "Traceback" not in result.stderr


def test_the_example_context_lists_every_production_key():
    from cdk.app import OPERATOR_CONTEXT, PRODUCTION_CONTEXT

    assert set(EXAMPLE) <= OPERATOR_CONTEXT
    for keys in PRODUCTION_CONTEXT:
        assert any(key in EXAMPLE for key in keys), keys
    assert "make synth STAGE=prod" in (ROOT / "Makefile").read_text()
    assert EXAMPLE_CONTEXT in (ROOT / "Makefile").read_text()


# --- cdk-nag -----------------------------------------------------------------------------------------


def test_cdk_nag_finds_nothing_unacknowledged_in_either_stage(stage):
    plugins = {plugin["pluginName"]: plugin for plugin in stage.report["pluginReports"]}
    nag = plugins["AwsSolutions"]
    assert nag["conclusion"] == "success", [v["ruleName"] for v in nag["violations"]]
    assert nag["violations"] == []
    suppressed = nag["suppressedViolations"]
    assert suppressed, "the report lists what was acknowledged"
    for finding in suppressed:
        # Named precisely (a rule and, for IAM5, the exact finding) and with a real reason.
        assert finding["acknowledgedId"].startswith("AwsSolutions::AwsSolutions-"), finding["acknowledgedId"]
        assert len(finding["reason"]) >= 40, finding["acknowledgedId"]
        if "IAM5" in finding["acknowledgedId"]:
            assert "[" in finding["acknowledgedId"], finding["acknowledgedId"]


# --- encryption and TLS --------------------------------------------------------------------------------


def test_every_bucket_is_private_encrypted_and_tls_only(stage):
    buckets = _all(stage, "AWS::S3::Bucket")
    policies = {flatten(p["Properties"]["Bucket"]): p for p in _all(stage, "AWS::S3::BucketPolicy").values()}
    assert len(buckets) >= 3
    for logical_id, bucket in buckets.items():
        props = bucket["Properties"]
        assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"], logical_id
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }, logical_id
        assert "AccessControl" not in props, logical_id
        assert props["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}, logical_id
        policy = policies[f"<{logical_id}>"]
        assert _denies_plain_http(policy["Properties"]["PolicyDocument"]["Statement"]), logical_id
        # Nothing in a bucket policy grants the world.
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if statement["Effect"] == "Allow":
                assert statement.get("Principal") not in ("*", {"AWS": "*"}), (logical_id, statement)


def test_every_bucket_written_by_uploads_cleans_up_incomplete_ones(stage):
    """The access-log bucket is written by S3's logging only; every other bucket receives uploads."""
    for logical_id, bucket in _all(stage, "AWS::S3::Bucket").items():
        if logical_id.startswith("StorageAccessLogs"):
            continue
        rules = bucket["Properties"]["LifecycleConfiguration"]["Rules"]
        assert any(r.get("AbortIncompleteMultipartUpload", {}).get("DaysAfterInitiation") == 1 for r in rules), (
            logical_id
        )


def test_routes_that_need_a_token_have_the_authorizer_and_only_public_ones_do_not(stage):
    ((authorizer_id, authorizer),) = resources(stage.main, "AWS::ApiGatewayV2::Authorizer").items()
    assert authorizer["Properties"]["AuthorizerType"] == "JWT"
    by_key = {
        r["Properties"]["RouteKey"]: r["Properties"] for r in resources(stage.main, "AWS::ApiGatewayV2::Route").values()
    }
    deployed = [r for r in routes.ROUTES if not r.local_only]
    assert set(by_key) == {r.gateway_key for r in deployed} | {"$default"}
    for route in deployed:
        props = by_key[route.gateway_key]
        if route.access.needs_token:
            assert props["AuthorizationType"] == "JWT" and props["AuthorizerId"] == {"Ref": authorizer_id}, route.key
        else:
            assert route.access in (routes.Access.PUBLIC, routes.Access.STRIPE), route.key
            assert props["AuthorizationType"] == "NONE" and "AuthorizerId" not in props, route.key


def test_every_queue_and_topic_is_encrypted_and_tls_only(stage):
    queues = _all(stage, "AWS::SQS::Queue")
    queue_policies = _all(stage, "AWS::SQS::QueuePolicy").values()
    assert queues
    for logical_id, queue in queues.items():
        props = queue["Properties"]
        assert props.get("SqsManagedSseEnabled") is True or "KmsMasterKeyId" in props, logical_id
        (policy,) = [p for p in queue_policies if {"Ref": logical_id} in p["Properties"]["Queues"]]
        assert _denies_plain_http(policy["Properties"]["PolicyDocument"]["Statement"]), logical_id
    topics = _all(stage, "AWS::SNS::Topic")
    keys = _all(stage, "AWS::KMS::Key")
    topic_policies = _all(stage, "AWS::SNS::TopicPolicy").values()
    assert len(topics) == 2  # the ops topic, the email events topic
    for logical_id, topic in topics.items():
        key = topic["Properties"]["KmsMasterKeyId"]
        # A key of the stack's own (aws/sns could not let CloudWatch or SES publish).
        assert key["Fn::GetAtt"][0] in keys, logical_id
        (policy,) = [p for p in topic_policies if {"Ref": logical_id} in p["Properties"]["Topics"]]
        assert _denies_plain_http(policy["Properties"]["PolicyDocument"]["Statement"]), logical_id


def test_every_key_rotates_and_the_database_key_outlives_the_stack(stage):
    keys = _all(stage, "AWS::KMS::Key")
    assert len(keys) >= 5
    for logical_id, key in keys.items():
        assert key["Properties"]["EnableKeyRotation"] is True, logical_id
    ((database_key, key),) = [(i, k) for i, k in keys.items() if i.startswith("DatabaseKey")]
    # The final snapshot of a deleted stage is encrypted with it.
    assert key["DeletionPolicy"] == "Retain"


def test_the_database_is_private_encrypted_with_its_key_and_forces_tls(stage):
    ((_, instance),) = resources(stage.main, "AWS::RDS::DBInstance").items()
    props = instance["Properties"]
    (key_id,) = [i for i in resources(stage.main, "AWS::KMS::Key") if i.startswith("DatabaseKey")]
    assert props["StorageEncrypted"] is True and props["KmsKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    assert props["EnablePerformanceInsights"] is True
    assert props["PerformanceInsightsKMSKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    assert props["PubliclyAccessible"] is False
    assert props["BackupRetentionPeriod"] >= 7 and props["EnableIAMDatabaseAuthentication"] is True
    assert instance["DeletionPolicy"] == "Snapshot"
    ((_, parameters),) = resources(stage.main, "AWS::RDS::DBParameterGroup").items()
    assert parameters["Properties"]["Parameters"]["rds.force_ssl"] == "1"
    # Only in the isolated data subnets.
    ((_, subnet_group),) = resources(stage.main, "AWS::RDS::DBSubnetGroup").items()
    assert all(s["Ref"].startswith("DatabaseVpcdataSubnet") for s in subnet_group["Properties"]["SubnetIds"])


def test_the_proxy_requires_tls_and_iam_and_the_master_secret_rotates(stage):
    ((_, proxy),) = resources(stage.main, "AWS::RDS::DBProxy").items()
    props = proxy["Properties"]
    assert props["RequireTLS"] is True and props["DefaultAuthScheme"] == "IAM_AUTH"
    assert all(s["Ref"].startswith("DatabaseVpcdataSubnet") for s in props["VpcSubnetIds"])
    ((_, schedule),) = resources(stage.main, "AWS::SecretsManager::RotationSchedule").items()
    assert schedule["Properties"]["RotationRules"]["ScheduleExpression"] == "rate(30 days)"
    ((_, rotation),) = resources(stage.main, "AWS::Serverless::Application").items()
    # The rotation function has no route out: Secrets Manager through its endpoint.
    subnets = rotation["Properties"]["Parameters"]["vpcSubnetIds"]["Fn::Join"][1]
    assert {s["Ref"][: len("DatabaseVpcinternalSubnet")] for s in subnets if isinstance(s, dict)} == {
        "DatabaseVpcinternalSubnet"
    }


def test_no_function_role_grants_an_action_on_every_resource_beyond_what_aws_requires(prod):
    """The dev template's check (test_stack.py) holds for prod's as well."""
    from tests.infra import test_stack as stack_tests

    stack_tests.test_no_action_on_every_resource_beyond_what_aws_requires(prod.main)
    assert not resources(prod.operations, "AWS::IAM::Policy")


# --- network -----------------------------------------------------------------------------------------


def _subnets(template, group: str) -> set[str]:
    return {
        i
        for i, s in resources(template, "AWS::EC2::Subnet").items()
        if {"Key": "aws-cdk:subnet-name", "Value": group} in s["Properties"]["Tags"]
    }


def test_interface_endpoints_serve_the_isolated_functions(stage):
    endpoints = resources(stage.main, "AWS::EC2::VPCEndpoint")
    interface = {i: e["Properties"] for i, e in endpoints.items() if e["Properties"]["VpcEndpointType"] == "Interface"}
    services = sorted(flatten(p["ServiceName"]).rsplit(".", 1)[1] for p in interface.values())
    expected = sorted(
        [
            "cognito-idp",
            "ecs",
            "elasticfilesystem",
            "email",  # the SES API (email-smtp would be SMTP)
            "lambda",  # the compliance API starts the export worker
            "secretsmanager",
            "ssm",
            "states",
            "xray",
        ]
    )
    assert len(INTERFACE_ENDPOINTS) == len(expected)
    if stage.stack.shared_tools is not None:
        # The tools' front door gives the user pool a domain, which Cognito's PrivateLink refuses.
        expected.remove("cognito-idp")
    assert services == expected
    internal = _subnets(stage.main, "internal")
    # One interface in each zone, in every stage (the lean profile has none: test_fidelity.py).
    count = 2
    groups = resources(stage.main, "AWS::EC2::SecurityGroup")
    for props in interface.values():
        assert props["PrivateDnsEnabled"] is True
        assert {s["Ref"] for s in props["SubnetIds"]} <= internal and len(props["SubnetIds"]) == count
        ((group_id, _),) = [g["Fn::GetAtt"] for g in props["SecurityGroupIds"]]
        ingress = groups[group_id]["Properties"]["SecurityGroupIngress"]
        assert ingress == [
            {
                "CidrIp": VPC_CIDR,
                "Description": "HTTPS from within the VPC",
                "FromPort": 443,
                "IpProtocol": "tcp",
                "ToPort": 443,
            }
        ]
    # S3 through the gateway endpoint, on the isolated subnets' route tables too.
    (gateway,) = [e["Properties"] for e in endpoints.values() if e["Properties"]["VpcEndpointType"] == "Gateway"]
    tables = {t["Ref"] for t in gateway["RouteTableIds"]}
    assert sum(1 for t in tables if t.startswith("DatabaseVpcinternal")) == 2


def test_only_the_functions_that_call_the_internet_have_a_route_out(stage):
    template = stage.main
    egress, internal = _subnets(template, "functions"), _subnets(template, "internal")
    # The isolated subnets have no default route (no NAT, no internet gateway).
    routes_out = [
        flatten(r["Properties"]["RouteTableId"])
        for r in resources(template, "AWS::EC2::Route").values()
        if r["Properties"].get("DestinationCidrBlock") == "0.0.0.0/0"
    ]
    assert not [t for t in routes_out if "internal" in t or "data" in t]
    functions = resources(template, "AWS::Lambda::Function")
    seen_egress = set()
    for name, logical_id in stage.functions().items():
        props = functions[logical_id]["Properties"]
        variables = props["Environment"]["Variables"]
        uses_database = bool({"DB_HOST", "DB_SECRET_ARN", "STUDENTS_DB_ADMIN_SECRET_ARN"} & set(variables))
        # In the VPC exactly when it reaches a database; everything else stays out.
        assert ("VpcConfig" in props) == uses_database, name
        if "VpcConfig" not in props:
            continue
        subnets = {s["Ref"] for s in props["VpcConfig"]["SubnetIds"]}
        # With the tools' front door the user pool has a domain: Cognito's callers go by the NAT.
        if name in EGRESS_FUNCTIONS or (stage.stack.shared_tools is not None and name in COGNITO_CALLERS):
            assert subnets == egress, name
            seen_egress.add(name)
        else:
            assert subnets == internal, name
    expected = set(EGRESS_FUNCTIONS)
    if stage.stack.shared_tools is not None:
        expected |= {n for n in COGNITO_CALLERS if n in stage.functions()}
    assert seen_egress == expected
    assert inventory.get("payments").uses_database and inventory.get("submissions").uses_database


# Literal values, not read from the code: a reservation removed or changed there (the webhook's 20,
# a job's 1 that keeps two runs from overlapping) fails here.
RESERVED = {
    "payments-webhook": 20,
    "provision-student-database": 5,
    "provision-superset": 5,
    "provision-prefect": 5,
    "provision-jupyter": 5,
    "payments-reconcile": 1,
    "workspace-idle-stopper": 1,
    "compliance-purge": 1,
    "compliance-retention": 1,
    "migrate": 1,
}


def test_reserved_concurrency_where_a_downstream_is_protected(stage):
    functions = resources(stage.main, "AWS::Lambda::Function")
    found = {}
    for name, logical_id in stage.functions().items():
        value = functions[logical_id]["Properties"].get("ReservedConcurrentExecutions")
        if value is not None:
            found[name] = value
    assert found == RESERVED  # every other function is unreserved


# --- email -------------------------------------------------------------------------------------------


def test_email_goes_through_a_configuration_set_that_handles_bounces(stage):
    short = stage.name.split("-", 1)[1]
    ((set_id, config),) = resources(stage.main, "AWS::SES::ConfigurationSet").items()
    props = config["Properties"]
    assert props["Name"] == f"apranova-{short}"
    assert props["ReputationOptions"] == {"ReputationMetricsEnabled": True}
    assert props["SuppressionOptions"] == {"SuppressedReasons": ["BOUNCE", "COMPLAINT"]}
    destinations = [
        d["Properties"] for d in resources(stage.main, "AWS::SES::ConfigurationSetEventDestination").values()
    ]
    assert all(d["ConfigurationSetName"] == {"Ref": set_id} for d in destinations)
    (to_topic,) = [d["EventDestination"] for d in destinations if "SnsDestination" in d["EventDestination"]]
    assert {"bounce", "complaint"} <= set(to_topic["MatchingEventTypes"])
    topic_id = to_topic["SnsDestination"]["TopicARN"]["Ref"]
    subscriptions = [s["Properties"] for s in resources(stage.main, "AWS::SNS::Subscription").values()]
    ops = [s for s in subscriptions if s["TopicArn"] == {"Ref": topic_id}]
    if short == "prod":
        assert ops == [{"Endpoint": EXAMPLE["opsEmail"], "Protocol": "email", "TopicArn": {"Ref": topic_id}}]
    else:
        assert ops == []  # no opsEmail in dev
    if short == "prod":
        # Created for the sender's domain, sending through the set by default.
        ((_, identity),) = resources(stage.main, "AWS::SES::EmailIdentity").items()
        assert identity["Properties"]["EmailIdentity"] == EXAMPLE["emailSender"].split("@")[1]
        # Kept when the stack stops managing it (sesSenderArn later) or is deleted, but not left
        # behind by a failed first create (its name would fail the retry).
        assert identity["DeletionPolicy"] == "RetainExceptOnCreate" and identity["UpdateReplacePolicy"] == "Retain"
        assert identity["Properties"]["ConfigurationSetAttributes"] == {"ConfigurationSetName": {"Ref": set_id}}
    else:
        # Dev's placeholder sender is a reserved domain nobody can verify: no identity for it.
        assert not resources(stage.main, "AWS::SES::EmailIdentity")
    # Every function that sends names the set and may use it.
    for name, logical_id in stage.functions().items():
        variables = resources(stage.main, "AWS::Lambda::Function")[logical_id]["Properties"]["Environment"]["Variables"]
        if "EMAIL_SENDER" in variables:
            assert variables["EMAIL_CONFIGURATION_SET"] == f"apranova-{short}", name


def test_an_operator_identity_means_the_stack_creates_none(configured):
    _report, template = configured
    assert not resources(template, "AWS::SES::EmailIdentity")
    assert "EmailDkimRecord1" not in template.to_json()["Outputs"]
    ((_, config),) = resources(template, "AWS::SES::ConfigurationSet").items()
    assert config["Properties"]["Name"] == "apranova-staging"


# --- operations ----------------------------------------------------------------------------------------


def _alarms(stage: Stage) -> list[dict[str, Any]]:
    return [a["Properties"] for a in resources(stage.operations, "AWS::CloudWatch::Alarm").values()]


def _dimension(stage: Stage, alarm: dict[str, Any], name: str) -> Any:
    (value,) = [d["Value"] for d in alarm.get("Dimensions", []) if d["Name"] == name]
    return stage.outer(value)


def test_every_alarm_notifies_the_encrypted_ops_topic(stage):
    ((topic_id, topic),) = resources(stage.operations, "AWS::SNS::Topic").items()
    alarms = _alarms(stage)
    assert alarms
    short = stage.name.split("-", 1)[1]
    for alarm in alarms:
        assert alarm["AlarmActions"] == [{"Ref": topic_id}], alarm["AlarmDescription"]
        assert alarm["TreatMissingData"] == "notBreaching"
        assert alarm["AlarmName"].startswith(f"apranova-{short}-")
    assert len({a["AlarmName"] for a in alarms}) == len(alarms)
    ((key_id, key),) = resources(stage.operations, "AWS::KMS::Key").items()
    assert topic["Properties"]["KmsMasterKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    cloudwatch = {"Service": "cloudwatch.amazonaws.com"}
    assert any(s.get("Principal") == cloudwatch for s in key["Properties"]["KeyPolicy"]["Statement"])
    ((_, policy),) = resources(stage.operations, "AWS::SNS::TopicPolicy").items()
    (publish,) = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s.get("Principal") == cloudwatch]
    assert publish["Action"] == "sns:Publish" and "aws:SourceArn" in publish["Condition"]["ArnLike"]
    subscriptions = [s["Properties"] for s in resources(stage.operations, "AWS::SNS::Subscription").values()]
    expected = [EXAMPLE["opsEmail"]] if stage.name.endswith("prod") else []
    assert [s["Endpoint"] for s in subscriptions] == expected


def test_every_function_has_an_errors_and_a_throttles_alarm(stage):
    ids = stage.functions()
    # Every house function, whoever added it: API, steps, scheduled, the migration.
    assert {*routes.functions(), "migrate", "workspace-idle-stopper", "provision-enroll"} <= set(ids)
    by_metric: dict[str, dict[str, dict[str, Any]]] = {"Errors": {}, "Throttles": {}}
    for alarm in _alarms(stage):
        if alarm.get("Namespace") == "AWS/Lambda":
            function = _dimension(stage, alarm, "FunctionName")["Ref"]
            by_metric[alarm["MetricName"]][function] = alarm
    for metric, alarms in by_metric.items():
        assert set(alarms) == set(ids.values()), metric
    for name, logical_id in ids.items():
        throttles = by_metric["Throttles"][logical_id]
        # A capped function throttles in bursts by design: only a sustained backlog alarms.
        assert throttles["EvaluationPeriods"] == (3 if name in RESERVED else 1), name
        assert by_metric["Errors"][logical_id]["Threshold"] == 1


def test_every_state_machine_alarms_on_failed_and_timed_out_executions(stage):
    machines = set(resources(stage.main, "AWS::StepFunctions::StateMachine"))
    assert len(machines) >= 2
    found: dict[str, set[str]] = {}
    for alarm in _alarms(stage):
        if alarm.get("Namespace") == "AWS/States":
            machine = _dimension(stage, alarm, "StateMachineArn")["Ref"]
            found.setdefault(alarm["MetricName"], set()).add(machine)
    assert found == {"ExecutionsFailed": machines, "ExecutionsTimedOut": machines}


def test_every_dead_letter_queue_alarms_on_its_depth(stage):
    queues = resources(stage.main, "AWS::SQS::Queue")
    depth = {
        _dimension(stage, a, "QueueName")["Fn::GetAtt"][0]
        for a in _alarms(stage)
        if a.get("MetricName") == "ApproximateNumberOfMessagesVisible"
    }
    assert any(i.startswith("SchedulesDeadLetters") for i in depth)
    age = {
        _dimension(stage, a, "QueueName")["Fn::GetAtt"][0]
        for a in _alarms(stage)
        if a.get("MetricName") == "ApproximateAgeOfOldestMessage"
    }
    # Every queue is watched one way or the other.
    assert depth | age == set(queues) and not depth & age


def test_api_database_and_email_alarms(stage):
    alarms = _alarms(stage)
    ((api_id, _),) = resources(stage.main, "AWS::ApiGatewayV2::Api").items()
    (rate,) = [a for a in alarms if "Metrics" in a]
    stats = {m["Id"]: m["MetricStat"] for m in rate["Metrics"] if "MetricStat" in m}
    assert {s["Metric"]["MetricName"] for s in stats.values()} == {"5xx", "Count"}
    for stat in stats.values():
        assert stat["Metric"]["Namespace"] == "AWS/ApiGateway"
        (dimension,) = stat["Metric"]["Dimensions"]
        assert stage.outer(dimension["Value"]) == {"Ref": api_id}
    latency = {a["ExtendedStatistic"]: a for a in alarms if a.get("MetricName") == "Latency"}
    assert latency["p95"]["Threshold"] == API_P95_MS and latency["p99"]["Threshold"] == API_P99_MS
    assert all(a["EvaluateLowSampleCountPercentile"] == "ignore" for a in latency.values())
    ((instance_id, _),) = resources(stage.main, "AWS::RDS::DBInstance").items()
    rds_alarms = [a for a in alarms if a.get("Namespace") == "AWS/RDS"]
    app = [a for a in rds_alarms if _dimension(stage, a, "DBInstanceIdentifier") == {"Ref": instance_id}]
    database = {a["MetricName"]: a for a in app}
    assert set(database) == {"CPUUtilization", "DatabaseConnections", "FreeStorageSpace"} and len(app) == 3
    assert database["FreeStorageSpace"]["ComparisonOperator"] == "LessThanThreshold"
    assert database["DatabaseConnections"]["Threshold"] == (320 if stage.name.endswith("prod") else 64)
    # The students' own instance is watched alike (both stages have one by default).
    students = {a["MetricName"]: a for a in rds_alarms if a not in app}
    assert set(students) == set(database) and len(rds_alarms) == 6
    ((students_id, _),) = resources(stage.students, "AWS::RDS::DBInstance").items()
    for alarm in students.values():
        outputs = stage.students.to_json()["Outputs"]
        (output,) = [name for name, o in outputs.items() if o["Value"] == {"Ref": students_id}]
        assert _dimension(stage, alarm, "DBInstanceIdentifier")["Fn::GetAtt"][1] == f"Outputs.{output}"
    assert students["DatabaseConnections"]["Threshold"] == (320 if stage.name.endswith("prod") else 64)
    ses = {a["MetricName"]: a for a in alarms if a.get("Namespace") == "AWS/SES"}
    assert set(ses) == {"Reputation.BounceRate", "Reputation.ComplaintRate"}
    assert ses["Reputation.BounceRate"]["Threshold"] < 0.05 and ses["Reputation.ComplaintRate"]["Threshold"] < 0.001


def test_the_dashboard_shows_the_alarms_and_the_main_metrics(stage):
    ((_, dashboard),) = resources(stage.operations, "AWS::CloudWatch::Dashboard").items()
    short = stage.name.split("-", 1)[1]
    assert dashboard["Properties"]["DashboardName"] == f"apranova-{short}"
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for title in ("Alarms", "API requests", "API latency", "Function errors", "Workflow executions", "Database CPU"):
        assert title in body, title
    for metric in ("5xx", "Errors", "ExecutionsFailed", "DatabaseConnections", "Reputation.BounceRate"):
        assert metric in body, metric


def test_outputs_give_the_operator_what_the_deployment_needs(stage):
    outputs = stage.main.to_json()["Outputs"]
    for name in (
        "ApiUrl",
        "StripeWebhookUrl",
        "UserPoolId",
        "UserPoolClientId",
        "JwtIssuer",
        "OpsTopicArn",
        "DashboardUrl",
    ):
        assert name in outputs, name
    # The DNS records that verify the sender's domain identity the stack created (none for dev's
    # placeholder sender, which nobody can verify).
    dkim = [k for k in outputs if k.startswith("EmailDkimRecord")]
    assert dkim == ([f"EmailDkimRecord{i}" for i in (1, 2, 3)] if stage.name.endswith("prod") else [])


# --- the students' own instance (issue 15 item 3) --------------------------------------------------------

# CloudFormation refuses more than 500 resources in a stack: each template keeps room to grow.
RESOURCE_BUDGET = 450


def test_every_template_of_each_stage_stays_under_the_resource_budget(stage):
    assert stage.students is not None  # both stages have the students' own instance by default
    for template in _templates(stage):
        assert len(template.to_json()["Resources"]) < RESOURCE_BUDGET


def test_the_students_have_their_own_private_encrypted_instance_that_forces_tls(stage):
    from cdk.constructs.students_database import STUDENTS_DB_NAME, STUDENTS_MASTER_USER, STUDENTS_SERVER_PARAMETERS

    prod = stage.name.endswith("prod")
    students = stage.students
    ((instance_id, instance),) = resources(students, "AWS::RDS::DBInstance").items()
    props = instance["Properties"]
    short = stage.name.split("-", 1)[1]
    assert props["DBInstanceIdentifier"] == f"apranova-{short}-students" and props["DBName"] == STUDENTS_DB_NAME
    # Its own key (rotated, retained: the final snapshot needs it), not the application's.
    ((key_id, key),) = resources(students, "AWS::KMS::Key").items()
    assert key["DeletionPolicy"] == "Retain" and key["Properties"]["EnableKeyRotation"] is True
    assert props["StorageEncrypted"] is True and props["KmsKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    assert props["PerformanceInsightsKMSKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    assert props["PubliclyAccessible"] is False
    assert props["BackupRetentionPeriod"] == (14 if prod else 7) and instance["DeletionPolicy"] == "Snapshot"
    assert props.get("DeletionProtection", False) is prod and props.get("MultiAZ", False) is prod
    # Its own parameters: TLS only, passwords set by the master user only, sessions and spills logged.
    ((group_id, group),) = resources(students, "AWS::RDS::DBParameterGroup").items()
    assert props["DBParameterGroupName"] == {"Ref": group_id}
    assert group["Properties"]["Parameters"] == STUDENTS_SERVER_PARAMETERS
    assert (
        STUDENTS_SERVER_PARAMETERS["rds.force_ssl"]
        == STUDENTS_SERVER_PARAMETERS["rds.restrict_password_commands"]
        == "1"
    )
    # Its logs in named groups with a retention, kept on delete in prod but not by a failed create.
    assert sorted(props["EnableCloudwatchLogsExports"]) == ["postgresql", "upgrade"]
    groups = {g["Properties"]["LogGroupName"]: g for g in resources(students, "AWS::Logs::LogGroup").values()}
    assert set(groups) == {f"/aws/rds/instance/apranova-{short}-students/{log}" for log in ("postgresql", "upgrade")}
    for log_group in groups.values():
        assert log_group["Properties"]["RetentionInDays"] == 30
        assert log_group["DeletionPolicy"] == ("RetainExceptOnCreate" if prod else "Delete")
    # Its own master secret, rotated monthly, not at creation (the first migration reads it).
    ((_, secret),) = resources(students, "AWS::SecretsManager::Secret").items()
    assert (
        f'"username":"{STUDENTS_MASTER_USER}"' in secret["Properties"]["GenerateSecretString"]["SecretStringTemplate"]
    )
    ((_, schedule),) = resources(students, "AWS::SecretsManager::RotationSchedule").items()
    assert schedule["Properties"]["RotationRules"]["ScheduleExpression"] == "rate(30 days)"
    assert schedule["Properties"]["RotateImmediatelyOnUpdate"] is False
    # In the isolated data subnets, the application's; no proxy in front of it.
    ((_, subnet_group),) = resources(students, "AWS::RDS::DBSubnetGroup").items()
    assert all("DatabaseVpcdataSubnet" in s["Ref"] for s in subnet_group["Properties"]["SubnetIds"])
    ((_, target_group),) = resources(stage.main, "AWS::RDS::DBProxyTargetGroup").items()
    (app_instance,) = resources(stage.main, "AWS::RDS::DBInstance")
    assert target_group["Properties"]["DBInstanceIdentifiers"] == [{"Ref": app_instance}]
    # The first migrations wait for it (and its rotation schedule): they prepare it.
    ((_, trigger),) = resources(stage.main, "Custom::Trigger").items()
    assert [d for d in trigger["DependsOn"] if d.startswith("StudentsDatabaseNestedStack")]


def test_the_students_instance_lets_in_only_what_reaches_students_databases(stage):
    from tests.infra.stack_support import StudentsServer

    server = StudentsServer(stage.stack, stage.main)
    functions = resources(stage.main, "AWS::Lambda::Function")
    ids = stage.functions()

    def function_group(name: str) -> str:
        ((group,),) = [
            [g["Fn::GetAtt"][0] for g in functions[ids[name]]["Properties"]["VpcConfig"]["SecurityGroupIds"]]
        ]
        return group

    (rotation,) = [g for g in resources(stage.students, "AWS::EC2::SecurityGroup") if g.startswith("InstanceRotation")]
    (clients,) = [
        g for g in resources(stage.main, "AWS::EC2::SecurityGroup") if g.startswith("ToolsStudentsDatabaseClients")
    ]
    assert server.sources() == {
        rotation,
        clients,
        *(function_group(name) for name in ("provision-student-database", "student-database-watchdog", "migrate")),
    }
