"""Issue 14, the templates' side: what would break on AWS, read from the synthesized stages.

- a failed first deploy can be retried: no resource with a fixed name is plainly ``Retain``ed;
- the master secret is not rotated while the first deploy's migrations read it;
- the proxy's grant survives a snapshot restore;
- the public routes have their own throttles (stage RouteSettings);
- TLS where the template holds it (proxy, instance, workspace files);
- workspaces: nothing in but their front door, HTTPS (and NFS) out;
- the options an operator turns on by context: the lean cost profile, the database access instance,
  the workspace image through an ECR pull-through cache (one more synthesis, cdk-nag included).

Dev is the session's synthesis; prod is ``make synth STAGE=prod``'s (tests/infra/test_production.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import aws_ec2 as ec2
from aws_cdk.assertions import Template

from apranova import routes
from cdk.constructs.database import APP_USER, NAT_INSTANCE_TYPE
from cdk.constructs.email import SANDBOX_SID
from cdk.constructs.http_api import PUBLIC_ROUTE_THROTTLES
from cdk.constructs.workspaces import CONTAINER_PORT
from tests.infra.stack_support import flatten, resources, role_statements_by_id
from tests.infra.test_production import EXAMPLE, Stage, dev, prod  # noqa: F401 - the stages' fixtures

# Properties that give a resource its physical name: a second create with the same value fails.
PHYSICAL_NAMES = {
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::SES::EmailIdentity": "EmailIdentity",
    "AWS::SES::ConfigurationSet": "Name",
    "AWS::S3::Bucket": "BucketName",
    "AWS::KMS::Alias": "AliasName",
    "AWS::ECS::Cluster": "ClusterName",
    "AWS::Lambda::Function": "FunctionName",
    "AWS::StepFunctions::StateMachine": "StateMachineName",
    "AWS::SQS::Queue": "QueueName",
    "AWS::SNS::Topic": "TopicName",
    "AWS::IAM::Role": "RoleName",
    "AWS::ECR::PullThroughCacheRule": "EcrRepositoryPrefix",
    "AWS::Scheduler::Schedule": "Name",
    "AWS::Scheduler::ScheduleGroup": "Name",
    "AWS::CloudWatch::Alarm": "AlarmName",
    "AWS::CloudWatch::Dashboard": "DashboardName",
}
# The routes that make Cognito or SES send an email.
EMAILING_ROUTES = (
    "POST /api/auth/registration/",
    "POST /api/auth/resend-verification/",
    "POST /api/auth/password/reset/",
)
SES_PRODUCTION_RATE = 14  # emails a second, a new production SES account's sending rate
CACHE_SECRET = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:ecr-pullthroughcache/docker-hub-AbCdEf"
API_DOMAIN = "api.apranova.example"
API_CERTIFICATE = "arn:aws:acm:eu-west-1:111122223333:certificate/0f1e2d3c-4b5a-6978-8899-aabbccddeeff"


@pytest.fixture(scope="module", params=["dev", "prod"])
def stage(request) -> Stage:
    return request.getfixturevalue(request.param)


def _all(stage: Stage) -> dict[str, dict[str, Any]]:
    return {**stage.main.to_json()["Resources"], **stage.operations.to_json()["Resources"]}


# --- a failed first deploy can be retried ------------------------------------------------------------


def test_no_resource_with_a_fixed_name_is_left_behind_by_a_failed_create(stage):
    for logical_id, resource in _all(stage).items():
        name = PHYSICAL_NAMES.get(resource["Type"])
        if name and name in resource.get("Properties", {}):
            # Retain would keep it when the create that made it rolls back: the retry then fails on it.
            assert resource.get("DeletionPolicy") != "Retain", (logical_id, resource["Properties"][name])


def test_production_keeps_its_named_logs_and_identity_except_after_a_failed_create(prod):  # noqa: F811
    named = {
        flatten(r["Properties"].get("LogGroupName")): r
        for r in resources(prod.main, "AWS::Logs::LogGroup").values()
        if "LogGroupName" in r["Properties"]
    }
    for log in ("postgresql", "upgrade"):
        group = named[f"/aws/rds/instance/apranova-prod/{log}"]
        assert (group["DeletionPolicy"], group["UpdateReplacePolicy"]) == ("RetainExceptOnCreate", "Retain")
    ((_, identity),) = resources(prod.main, "AWS::SES::EmailIdentity").items()
    assert (identity["DeletionPolicy"], identity["UpdateReplacePolicy"]) == ("RetainExceptOnCreate", "Retain")


def test_dev_creates_no_identity_for_its_placeholder_sender(dev):  # noqa: F811
    assert not resources(dev.main, "AWS::SES::EmailIdentity")
    assert not [k for k in dev.main.to_json()["Outputs"] if k.startswith("EmailDkimRecord")]


# --- first deploy: the master secret and the migrations ------------------------------------------------


def test_the_master_secret_is_not_rotated_while_the_first_migrations_read_it(stage):
    ((schedule_id, schedule),) = resources(stage.main, "AWS::SecretsManager::RotationSchedule").items()
    # Creating the schedule tests the rotation function but does not change the password.
    assert schedule["Properties"]["RotateImmediatelyOnUpdate"] is False
    assert schedule["Properties"]["RotationRules"]["ScheduleExpression"] == "rate(30 days)"
    ((_, trigger),) = resources(stage.main, "Custom::Trigger").items()
    assert schedule_id in trigger["DependsOn"]


# --- restore: the proxy follows the instance ---------------------------------------------------------


def test_the_proxy_s_grant_names_the_user_not_the_instance_s_resource_id(stage):
    ((_, proxy),) = resources(stage.main, "AWS::RDS::DBProxy").items()
    role_id = proxy["Properties"]["RoleArn"]["Fn::GetAtt"][0]
    statements = [
        flatten(s)
        for p in resources(stage.main, "AWS::IAM::Policy").values()
        if {"Ref": role_id} in p["Properties"]["Roles"]
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]
    connect = [s for s in statements if s["Action"] == "rds-db:connect"]
    assert connect == [
        {
            "Action": "rds-db:connect",
            "Effect": "Allow",
            "Resource": (
                f"arn:aws:rds-db:{EXAMPLE['region']}:{EXAMPLE['account']}:dbuser:*/{APP_USER}"
                if stage.name.endswith("prod")
                else f"arn:<AWS::Partition>:rds-db:<AWS::Region>:<AWS::AccountId>:dbuser:*/{APP_USER}"
            ),
        }
    ]
    assert "DbiResourceId" not in json.dumps(statements)


# --- per-route throttles -------------------------------------------------------------------------------


def test_the_public_routes_have_their_own_throttles_below_the_stage_s(stage):
    ((stage_id, api_stage),) = resources(stage.main, "AWS::ApiGatewayV2::Stage").items()
    props = api_stage["Properties"]
    default = props["DefaultRouteSettings"]
    settings = props["RouteSettings"]
    by_key = {r.key: r for r in routes.ROUTES}
    expected = {
        by_key[key].gateway_key: {"ThrottlingRateLimit": t.rate, "ThrottlingBurstLimit": t.burst}
        for key, t in PUBLIC_ROUTE_THROTTLES.items()
    }
    assert settings == expected
    for key, limits in settings.items():
        assert limits["ThrottlingRateLimit"] <= default["ThrottlingRateLimit"], key
        assert limits["ThrottlingBurstLimit"] <= default["ThrottlingBurstLimit"], key
    # Every public route that writes or mails (a POST) and the anonymous session check has one.
    public = {r.key for r in routes.ROUTES if r.access is routes.Access.PUBLIC and not r.local_only}
    assert set(PUBLIC_ROUTE_THROTTLES) <= public
    assert {r.key for r in routes.ROUTES if r.key in public and r.method == "POST"} <= set(PUBLIC_ROUTE_THROTTLES)
    assert "GET /api/payments/verify-session/" in PUBLIC_ROUTE_THROTTLES
    # Together the emailing routes stay below SES's sending rate.
    assert sum(PUBLIC_ROUTE_THROTTLES[key].rate for key in EMAILING_ROUTES) < SES_PRODUCTION_RATE
    # The settings name routes that exist: the stage is deployed after them.
    route_ids = {
        i: r["Properties"]["RouteKey"]
        for i, r in resources(stage.main, "AWS::ApiGatewayV2::Route").items()
        if r["Properties"]["RouteKey"] in settings
    }
    assert set(route_ids.values()) == set(settings)
    assert set(route_ids) <= set(api_stage.get("DependsOn", [])), stage_id


def test_the_operations_doc_states_each_route_s_limits():
    doc = (Path(__file__).resolve().parents[2] / "docs" / "operations.md").read_text()
    for key, throttle in PUBLIC_ROUTE_THROTTLES.items():
        rows = [line for line in doc.splitlines() if line.startswith(f"| `{key}` |")]
        assert len(rows) == 1 and f"| {throttle.rate:g} | {throttle.burst} |" in rows[0], key


# --- TLS where the template holds it -------------------------------------------------------------------


def test_tls_is_required_by_the_proxy_the_instance_and_the_workspace_files(stage):
    ((_, proxy),) = resources(stage.main, "AWS::RDS::DBProxy").items()
    assert proxy["Properties"]["RequireTLS"] is True
    ((_, parameters),) = resources(stage.main, "AWS::RDS::DBParameterGroup").items()
    assert parameters["Properties"]["Parameters"]["rds.force_ssl"] == "1"
    ((_, files),) = resources(stage.main, "AWS::EFS::FileSystem").items()
    assert {
        "Action": "elasticfilesystem:*",
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        "Effect": "Deny",
        "Principal": {"AWS": "*"},
        "Resource": "*",
    } in files["Properties"]["FileSystemPolicy"]["Statement"]


def test_functions_verify_the_database_with_the_rds_ca_bundle_the_layer_ships(stage):
    """apranova.tls connects with sslmode=verify-full and the RDS bundle inside the common layer; a
    deployed function must not point it elsewhere (``DB_CA_BUNDLE`` is for the tests' own server)."""
    from apranova import tls
    from cdk.constructs.common_layer import PACKAGE

    bundle = tls.RDS_CA_BUNDLE
    assert bundle.is_relative_to(PACKAGE) and bundle.read_text().count("-----BEGIN CERTIFICATE-----") > 1
    for name, logical_id in stage.functions().items():
        variables = resources(stage.main, "AWS::Lambda::Function")[logical_id]["Properties"]["Environment"]["Variables"]
        assert "DB_CA_BUNDLE" not in variables, name
        assert not [k for k, v in variables.items() if isinstance(v, str) and v in ("disable", "allow", "prefer")], name


# --- workspaces ------------------------------------------------------------------------------------------


def _workspace_group(template) -> str:
    (group_id,) = [i for i in resources(template, "AWS::EC2::SecurityGroup") if i.startswith("WorkspacesTaskSecurity")]
    return group_id


def test_no_workspace_is_reachable_in_either_stage_until_the_front_door_exists(stage):
    group_id = _workspace_group(stage.main)
    group = resources(stage.main, "AWS::EC2::SecurityGroup")[group_id]["Properties"]
    assert "SecurityGroupIngress" not in group
    into = [
        r
        for r in resources(stage.main, "AWS::EC2::SecurityGroupIngress").values()
        if r["Properties"]["GroupId"] == {"Fn::GetAtt": [group_id, "GroupId"]}
    ]
    assert into == []
    assert [e["FromPort"] for e in group["SecurityGroupEgress"]] == [443]


# --- the context options: lean, database access, image cache, the front door's hook --------------------


@pytest.fixture(scope="module")
def options(tmp_path_factory) -> tuple[dict[str, Any], Template, Any]:
    """A dev stage with every issue-14 option on, and a stand-in front door attached through the hook."""
    from cdk.app import build

    app, stack = build(
        {
            "aws:cdk:bundling-stacks": [],
            "stage": "dev",
            "costProfile": "lean",
            "databaseAccess": "true",
            "workspaceImageCacheSecretArn": CACHE_SECRET,
            "apiDomainName": API_DOMAIN,
            "apiCertificateArn": API_CERTIFICATE,
        },
        outdir=str(tmp_path_factory.mktemp("cdk.out.options")),
    )
    front_door = ec2.SecurityGroup(
        stack, "FrontDoorStandIn", vpc=stack.workspaces.cluster.vpc, allow_all_outbound=False
    )
    stack.workspaces.allow_from_front_door(front_door)
    assembly = app.synth()
    report = json.loads((Path(assembly.directory) / "validation-report.json").read_text())
    return report, Template.from_stack(stack), stack


def test_the_options_synthesize_with_cdk_nag_clean(options):
    report, _template, _stack = options
    (nag,) = [p for p in report["pluginReports"] if p["pluginName"] == "AwsSolutions"]
    assert nag["conclusion"] == "success" and nag["violations"] == []
    for finding in nag["suppressedViolations"]:
        assert len(finding["reason"]) >= 40, finding["acknowledgedId"]


def _subnets(template, group: str) -> set[str]:
    return {
        i
        for i, s in resources(template, "AWS::EC2::Subnet").items()
        if {"Key": "aws-cdk:subnet-name", "Value": group} in s["Properties"]["Tags"]
    }


def test_the_lean_profile_has_a_nat_instance_no_interface_endpoints_and_every_function_behind_the_nat(options):
    _report, template, stack = options
    endpoints = [e["Properties"]["VpcEndpointType"] for e in resources(template, "AWS::EC2::VPCEndpoint").values()]
    assert endpoints == ["Gateway"]  # S3 only: free
    assert not resources(template, "AWS::EC2::NatGateway")
    (nat,) = [
        i for i in resources(template, "AWS::EC2::Instance").values() if i["Properties"].get("SourceDestCheck") is False
    ]
    assert nat["Properties"]["InstanceType"] == NAT_INSTANCE_TYPE
    assert nat["Properties"]["BlockDeviceMappings"][0]["Ebs"]["Encrypted"] is True
    egress = _subnets(template, "functions")
    functions = resources(template, "AWS::Lambda::Function")
    in_vpc = [f["Properties"] for f in functions.values() if "VpcConfig" in f["Properties"]]
    assert len(in_vpc) > 10
    for props in in_vpc:
        assert {s["Ref"] for s in props["VpcConfig"]["SubnetIds"]} == egress, props.get("Handler")
    ((_, rotation),) = resources(template, "AWS::Serverless::Application").items()
    subnets = rotation["Properties"]["Parameters"]["vpcSubnetIds"]["Fn::Join"][1]
    assert {s["Ref"] for s in subnets if isinstance(s, dict)} <= egress


def test_prod_refuses_the_lean_profile_and_unknown_profiles_are_named():
    from cdk.app import ContextError, build

    with pytest.raises(ContextError, match="non-production"):
        build(
            {
                "aws:cdk:bundling-stacks": [],
                "stage": "prod",
                "contextFile": "cdk/context/prod.example.json",
                "costProfile": "lean",
            }
        )
    with pytest.raises(ContextError, match="costProfile must be one of standard, lean"):
        build({"aws:cdk:bundling-stacks": [], "costProfile": "cheap"})


def test_database_access_is_an_ssm_only_instance_that_reaches_the_database_and_nothing_else(options):
    _report, template, _stack = options
    (access_id,) = [i for i in resources(template, "AWS::EC2::Instance") if i.startswith("DatabaseOperatorAccess")]
    props = resources(template, "AWS::EC2::Instance")[access_id]["Properties"]
    assert "KeyName" not in props  # no SSH key: Session Manager only
    assert props["SubnetId"]["Ref"] in _subnets(template, "functions")
    assert props["BlockDeviceMappings"][0]["Ebs"]["Encrypted"] is True
    ((group_id,),) = [[g["Fn::GetAtt"][0] for g in props["SecurityGroupIds"]]]
    group = resources(template, "AWS::EC2::SecurityGroup")[group_id]["Properties"]
    assert "SecurityGroupIngress" not in group
    assert [(e["CidrIp"], e["FromPort"]) for e in group["SecurityGroupEgress"]] == [("0.0.0.0/0", 443)]
    to_database = [
        r["Properties"]
        for r in resources(template, "AWS::EC2::SecurityGroupIngress").values()
        if r["Properties"].get("SourceSecurityGroupId") == {"Fn::GetAtt": [group_id, "GroupId"]}
    ]
    # The instance's port (5432), on the instance's group only.
    assert [(flatten(r["FromPort"]), r["GroupId"]["Fn::GetAtt"][0][:29]) for r in to_database] == [
        ("<DatabaseInstanceAA8A5FDE.Endpoint.Port>", "DatabaseInstanceSecurityGroup")
    ]
    # IMDSv2 only, on the access instance and the lean profile's NAT instance alike.
    launches = resources(template, "AWS::EC2::LaunchTemplate").values()
    assert len(launches) == 2
    for launch in launches:
        assert launch["Properties"]["LaunchTemplateData"]["MetadataOptions"]["HttpTokens"] == "required"
    roles = resources(template, "AWS::IAM::Role")
    (role,) = [r for i, r in roles.items() if i.startswith("DatabaseOperatorAccessRole")]
    assert [flatten(a) for a in role["Properties"]["ManagedPolicyArns"]] == [
        "arn:<AWS::Partition>:iam::aws:policy/AmazonSSMManagedInstanceCore"
    ]
    assert "OperatorAccessInstance" in template.to_json()["Outputs"]


def test_the_dev_and_prod_stages_have_no_access_instance_unless_asked(stage):
    assert not [i for i in resources(stage.main, "AWS::EC2::Instance") if i.startswith("DatabaseOperatorAccess")]


def test_the_front_door_hook_admits_code_server_from_the_front_door_only(options):
    _report, template, _stack = options
    group_id = _workspace_group(template)
    into = [
        r["Properties"]
        for r in resources(template, "AWS::EC2::SecurityGroupIngress").values()
        if r["Properties"]["GroupId"] == {"Fn::GetAtt": [group_id, "GroupId"]}
    ]
    assert [
        (r["SourceSecurityGroupId"]["Fn::GetAtt"][0][: len("FrontDoorStandIn")], r["FromPort"], r["ToPort"])
        for r in into
    ] == [("FrontDoorStandIn", CONTAINER_PORT, CONTAINER_PORT)]


def _execution_role_statements(template) -> list[dict[str, Any]]:
    (role_id,) = [i for i in resources(template, "AWS::IAM::Role") if i.startswith("WorkspacesExecutionRole")]
    return [
        flatten(s)
        for p in resources(template, "AWS::IAM::Policy").values()
        if {"Ref": role_id} in p["Properties"]["Roles"]
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]


@pytest.mark.parametrize("which", ["options", "prod"])
def test_the_workspace_image_comes_through_an_ecr_pull_through_cache(which, request):
    if which == "prod":
        template, short = request.getfixturevalue("prod").main, "prod"
        assert EXAMPLE["workspaceImageCacheSecretArn"] == CACHE_SECRET
    else:
        template, short = request.getfixturevalue("options")[1], "dev"
    ((_, rule),) = resources(template, "AWS::ECR::PullThroughCacheRule").items()
    assert rule["Properties"] == {
        "CredentialArn": CACHE_SECRET,
        "EcrRepositoryPrefix": f"dockerhub-{short}",
        "UpstreamRegistry": "docker-hub",
        "UpstreamRegistryUrl": "registry-1.docker.io",
    }
    images = {
        flatten(f["Properties"]["Environment"]["Variables"]["WORKSPACE_IMAGE"])
        for f in resources(template, "AWS::Lambda::Function").values()
        if "WORKSPACE_IMAGE" in f["Properties"].get("Environment", {}).get("Variables", {})
    }
    account_region = "111122223333.dkr.ecr.eu-west-1" if short == "prod" else "<AWS::AccountId>.dkr.ecr.<AWS::Region>"
    assert images == {f"{account_region}.<AWS::URLSuffix>/dockerhub-{short}/codercom/code-server:4.96.4"}
    pulls = [s for s in _execution_role_statements(template) if "ecr:BatchGetImage" in s["Action"]]
    assert [sorted(s["Action"]) for s in pulls] == [
        [
            "ecr:BatchCheckLayerAvailability",
            "ecr:BatchGetImage",
            "ecr:BatchImportUpstreamImage",
            "ecr:CreateRepository",
            "ecr:GetDownloadUrlForLayer",
        ]
    ]
    (resource,) = [pulls[0]["Resource"]]
    assert resource.endswith(f":repository/dockerhub-{short}/*")


@pytest.mark.parametrize(
    ("context", "message"),
    [
        (
            {"workspaceImageCacheSecretArn": "arn:aws:secretsmanager:eu-west-1:111122223333:secret:dockerhub"},
            "ecr-pullthroughcache/",
        ),
        (
            {"workspaceImageCacheSecretArn": CACHE_SECRET, "workspaceImage": "ghcr.io/coder/code-server:4.96.4"},
            "caches Docker Hub images",
        ),
    ],
)
def test_a_bad_image_cache_setting_fails_the_synth_by_name(context, message):
    from cdk.app import build

    with pytest.raises(ValueError, match=message):
        build({"aws:cdk:bundling-stacks": [], **context})


# --- SES: the sandbox ----------------------------------------------------------------------------------


def test_outside_production_every_sender_may_reach_the_verified_recipients_as_the_sender_only(stage):
    template = stage.main
    sender = "no-reply@apranova.example" if stage.name.endswith("dev") else EXAMPLE["emailSender"]
    senders = 0
    for name, logical_id in stage.functions().items():
        role_id = resources(template, "AWS::Lambda::Function")[logical_id]["Properties"]["Role"]["Fn::GetAtt"][0]
        statements = role_statements_by_id(template, role_id, sandbox=True)
        sends = [s for s in statements if "ses:SendEmail" in s["Action"]]
        sandbox = [s for s in sends if s.get("Sid") == SANDBOX_SID]
        if not sends:
            continue
        senders += 1
        if stage.name.endswith("prod"):
            assert sandbox == [], name
        else:
            assert sandbox == [
                {
                    "Action": ["ses:SendEmail"],
                    "Condition": {"StringEquals": {"ses:FromAddress": sender}},
                    "Effect": "Allow",
                    "Resource": ["arn:<AWS::Partition>:ses:<AWS::Region>:<AWS::AccountId>:identity/*"],
                    "Sid": SANDBOX_SID,
                }
            ], name
    assert senders >= 8


# --- a custom API domain -------------------------------------------------------------------------------


def test_a_custom_domain_serves_the_api_and_the_stripe_webhook(options):
    _report, template, _stack = options
    ((domain_id, domain),) = resources(template, "AWS::ApiGatewayV2::DomainName").items()
    assert domain["Properties"] == {
        "DomainName": API_DOMAIN,
        "DomainNameConfigurations": [
            {"CertificateArn": API_CERTIFICATE, "EndpointType": "REGIONAL", "SecurityPolicy": "TLS_1_2"}
        ],
    }
    ((_, mapping),) = resources(template, "AWS::ApiGatewayV2::ApiMapping").items()
    assert mapping["Properties"]["DomainName"] == {"Ref": domain_id} and mapping["Properties"]["Stage"] == "$default"
    outputs = template.to_json()["Outputs"]
    assert flatten(outputs["ApiUrl"]["Value"]) == f"https://<{domain_id}>/"
    assert flatten(outputs["StripeWebhookUrl"]["Value"]) == f"https://<{domain_id}>/api/payments/webhook/"
    assert outputs["ApiDomainTarget"]["Value"] == {"Fn::GetAtt": [domain_id, "RegionalDomainName"]}


def test_the_default_stages_have_no_custom_domain(stage):
    assert not resources(stage.main, "AWS::ApiGatewayV2::DomainName")
    assert "ApiDomainTarget" not in stage.main.to_json()["Outputs"]


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"apiDomainName": API_DOMAIN}, "go together"),
        ({"apiDomainName": "API.example", "apiCertificateArn": API_CERTIFICATE}, "lower-case host name"),
        ({"apiDomainName": API_DOMAIN, "apiCertificateArn": "arn:aws:iam::111122223333:server-certificate/x"}, "ACM"),
        (
            {
                "apiDomainName": API_DOMAIN,
                "apiCertificateArn": API_CERTIFICATE.replace("eu-west-1", "us-east-1"),
                "account": "111122223333",
                "region": "eu-west-1",
            },
            "the stack's region",
        ),
    ],
)
def test_bad_api_domain_context_is_refused_by_name(context, message):
    from cdk.app import ContextError, build

    with pytest.raises(ContextError, match=message):
        build({"aws:cdk:bundling-stacks": [], **context})
