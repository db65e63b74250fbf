"""The learning functions in the stack (issue 6): curriculum, submissions, trainer and admin run their
own handlers in the VPC with exactly the settings their code reads and exactly the grants it needs
(dataset links, the submissions prefix of the uploads bucket, the SES sender); the uploads bucket
is private, TLS-only, versioned, logged, cleans up after itself and lets only the SPA's origin
upload and download from a browser."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from apranova import inventory
from apranova.mail import MailSettings
from apranova.settings import DatabaseSettings, load
from cdk.constructs.storage import SUBMISSIONS_PREFIX
from cdk.stacks.apranova_stack import COGNITO_FUNCTIONS, EMAIL_FUNCTIONS
from functions.curriculum.config import CurriculumSettings
from functions.submissions.config import SubmissionSettings
from functions.trainer.handler import TrainerSettings
from tests.infra.stack_support import env, function_props, resources, role_statements

LEARNING = ("curriculum", "submissions", "trainer", "admin")
HANDLERS = {name: f"functions.{name}.handler.lambda_handler" for name in LEARNING}
ACCOUNT_ARN = "arn:<AWS::Partition>:{service}:<AWS::Region>:<AWS::AccountId>:{resource}"
# Statements every function in the VPC holds whatever it does (logs, tracing, network, the proxy).
HOUSE_ACTIONS = ("logs:", "ec2:", "xray:", "rds-db:")
# Every variable each function is given: the house ones, the database's (the proxy), its own.
HOUSE_VARIABLES = {"STAGE", "POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE"}
DB_VARIABLES = {"DB_HOST", "DB_PORT", "DB_NAME", "DB_USER"}
OWN_VARIABLES = {
    "curriculum": {"DATASETS_BUCKET"},
    # GITHUB_TOKEN_PARAM: the optional GitHub token's parameter name (the token itself never).
    "submissions": {"UPLOADS_BUCKET", "EMAIL_SENDER", "EMAIL_CONFIGURATION_SET", "SPA_ORIGIN", "GITHUB_TOKEN_PARAM"},
    # UPLOADS_BUCKET: the reviewer's short-lived link to a submitted file.
    "trainer": {"EMAIL_SENDER", "EMAIL_CONFIGURATION_SET", "SPA_ORIGIN", "UPLOADS_BUCKET"},
    # Role changes (the pool), manual enrollment and re-provisioning (the enrollment workflow).
    "admin": {"COGNITO_USER_POOL_ID", "COGNITO_CLIENT_ID", "ENROLLMENT_STATE_MACHINE_ARN"},
}


def _arn(service: str, resource: str) -> str:
    return ACCOUNT_ARN.format(service=service, resource=resource)


def _bucket(template, name: str) -> tuple[str, dict[str, Any]]:
    (found,) = [(i, r) for i, r in resources(template, "AWS::S3::Bucket").items() if i.startswith(f"Storage{name}")]
    return found


def _own(template, name: str) -> list[dict[str, Any]]:
    statements = [
        s for s in role_statements(template, name) if not any(a.startswith(HOUSE_ACTIONS) for a in s["Action"])
    ]
    return sorted(statements, key=json.dumps)


def _senders(domain: str, sender: str, stage: str = "dev") -> list[str]:
    """The sender's identities and the stage's SES configuration set (every send names it)."""
    return sorted(
        [
            _arn("ses", f"identity/{domain}"),
            _arn("ses", f"identity/{sender}"),
            _arn("ses", f"configuration-set/apranova-{stage}"),
        ]
    )


# --- the functions -----------------------------------------------------------------------------------


def test_the_learning_functions_run_their_handlers_in_the_functions_subnets(template):
    # The subnets with egress (GitHub's API through the NAT for submissions) and the isolated ones the
    # others use (the proxy, and AWS through the VPC's endpoints).
    subnets = resources(template, "AWS::EC2::Subnet")
    egress_subnets = {
        i for i, s in subnets.items() if {"Key": "aws-cdk:subnet-name", "Value": "functions"} in s["Properties"]["Tags"]
    }
    internal_subnets = {
        i for i, s in subnets.items() if {"Key": "aws-cdk:subnet-name", "Value": "internal"} in s["Properties"]["Tags"]
    }
    assert len(egress_subnets) == len(internal_subnets) == 2
    groups = resources(template, "AWS::EC2::SecurityGroup")
    for name in LEARNING:
        assert inventory.get(name).uses_database
        props = function_props(template, name)
        assert props["Handler"] == HANDLERS[name]
        vpc = props["VpcConfig"]
        expected = egress_subnets if name == "submissions" else internal_subnets
        assert {subnet["Ref"] for subnet in vpc["SubnetIds"]} == expected, name
        ((group_id, _),) = [ref["Fn::GetAtt"] for ref in vpc["SecurityGroupIds"]]
        egress = groups[group_id]["Properties"]["SecurityGroupEgress"]
        assert {"CidrIp": "0.0.0.0/0", "Description": "Allow all outbound traffic by default", "IpProtocol": "-1"} in (
            egress
        ), name
        # Through the proxy as the application user, with an IAM token: no password anywhere.
        variables = env(template, name)
        assert variables["DB_USER"] == "apranova_app" and variables["DB_HOST"]["Fn::GetAtt"][1] == "Endpoint"
        assert not [k for k in variables if "PASSWORD" in k or "SECRET" in k], name


@pytest.mark.parametrize("name", LEARNING)
def test_each_learning_function_gets_exactly_its_variables(template, name):
    assert set(env(template, name)) == HOUSE_VARIABLES | DB_VARIABLES | OWN_VARIABLES[name]
    assert ("EMAIL_SENDER" in OWN_VARIABLES[name]) == (name in EMAIL_FUNCTIONS)
    assert ("COGNITO_USER_POOL_ID" in OWN_VARIABLES[name]) == (name in COGNITO_FUNCTIONS)


def test_dev_values_name_this_stack_s_buckets_and_the_web_app(template):
    datasets, _ = _bucket(template, "Datasets")
    uploads, _ = _bucket(template, "Uploads")
    assert env(template, "curriculum")["DATASETS_BUCKET"] == {"Ref": datasets}
    submissions, trainer = env(template, "submissions"), env(template, "trainer")
    assert submissions["UPLOADS_BUCKET"] == {"Ref": uploads}
    for variables in (submissions, trainer):
        # The web app's distribution (tests/infra/test_web_hosting.py checks it is the same everywhere).
        assert variables["SPA_ORIGIN"]["Fn::Join"][1][0] == "https://"
        assert variables["EMAIL_SENDER"] == "no-reply@apranova.example"
    assert template.to_json()["Outputs"]["UploadsBucket"]["Value"] == {"Ref": uploads}


def test_a_configured_stage_s_values_load_into_the_code_s_settings(configured):
    """The deployed variables through the code's own settings models (CloudFormation references stand
    in as valid bucket names)."""
    _report, template = configured

    def plain(name: str) -> dict[str, str]:
        return {
            k: v if isinstance(v, str) else f"deployed-{k.lower().replace('_', '-')}"
            for k, v in env(template, name).items()
        }

    curriculum = load(CurriculumSettings, plain("curriculum"))
    assert curriculum.stage == "staging" and curriculum.datasets_bucket == "deployed-datasets-bucket"
    submissions = load(SubmissionSettings, plain("submissions"))
    assert submissions.uploads_bucket == "deployed-uploads-bucket"
    # The trailing slash of the context value is dropped: links are built as origin + path.
    assert submissions.spa_origin == "https://app.apranova.example"
    assert submissions.github_api_url == "https://api.github.com"  # GitHub itself in AWS
    assert load(TrainerSettings, plain("trainer")).spa_origin == "https://app.apranova.example"
    for name in ("submissions", "trainer"):
        assert load(MailSettings, plain(name)).email_sender == "no-reply@mail.apranova.example"
        # They email students and trainers, never the operators: no OPS_EMAIL even when configured.
        assert "OPS_EMAIL" not in env(template, name)
    for name in LEARNING:
        assert load(DatabaseSettings, plain(name)).db_user == "apranova_app"


# --- grants ------------------------------------------------------------------------------------------


def test_learning_roles_hold_exactly_their_grants(template):
    datasets, _ = _bucket(template, "Datasets")
    uploads, _ = _bucket(template, "Uploads")
    sender = _senders("apranova.example", "no-reply@apranova.example")
    email = {"Action": ["ses:SendEmail"], "Effect": "Allow", "Resource": sender}
    assert _own(template, "curriculum") == [
        {"Action": ["s3:GetObject"], "Effect": "Allow", "Resource": [f"<{datasets}.Arn>/*"]},
    ]
    token = _arn("ssm", "parameter/apranova/dev/github/token")
    assert _own(template, "submissions") == sorted(
        [
            # The optional GitHub token: that one parameter, decrypted only through SSM.
            {"Action": ["ssm:GetParameter"], "Effect": "Allow", "Resource": [token]},
            {
                "Action": ["kms:Decrypt"],
                "Condition": {
                    "StringEquals": {
                        "kms:EncryptionContext:PARAMETER_ARN": [token],
                        "kms:ViaService": "ssm.<AWS::Region>.<AWS::URLSuffix>",
                    }
                },
                "Effect": "Allow",
                "Resource": [_arn("kms", "key/*")],
            },
            {
                "Action": ["s3:GetObject", "s3:PutObject"],
                "Effect": "Allow",
                "Resource": [f"<{uploads}.Arn>/{SUBMISSIONS_PREFIX}*"],
            },
            {
                "Action": ["s3:ListBucket"],
                "Condition": {"StringLike": {"s3:prefix": [f"{SUBMISSIONS_PREFIX}*"]}},
                "Effect": "Allow",
                "Resource": [f"<{uploads}.Arn>"],
            },
            email,
        ],
        key=json.dumps,
    )
    # The trainer function reads students' files (to sign a reviewer's link), writes none.
    assert _own(template, "trainer") == sorted(
        [
            {"Action": ["s3:GetObject"], "Effect": "Allow", "Resource": [f"<{uploads}.Arn>/{SUBMISSIONS_PREFIX}*"]},
            email,
        ],
        key=json.dumps,
    )
    # Admin's grants are the pool's groups and the enrollment workflow (tests/infra/test_identity.py,
    # test_payments.py): nothing of S3 or SES.
    assert not [s for s in _own(template, "admin") if any(a.startswith(("s3:", "ses:")) for a in s["Action"])]


# Besides the submissions function, the trainer function (a reviewer's link, read only) and the GDPR
# jobs: the export reads a person's files, the purge and the retention sweep delete them
# (tests/infra/test_compliance.py checks exactly how).
UPLOADS_READERS = ("submissions", "trainer", "compliance-export", "compliance-purge", "compliance-retention")


def test_only_the_submissions_function_and_the_gdpr_jobs_touch_the_uploads_bucket(template):
    uploads, _ = _bucket(template, "Uploads")
    datasets, _ = _bucket(template, "Datasets")

    def role(name: str) -> dict[str, str]:
        return {"Ref": function_props(template, name)["Role"]["Fn::GetAtt"][0]}

    for policy_id, policy in resources(template, "AWS::IAM::Policy").items():
        document, roles = json.dumps(policy["Properties"]["PolicyDocument"]), policy["Properties"]["Roles"]
        if uploads in document:
            assert roles in [[role(name)] for name in UPLOADS_READERS], policy_id
        if datasets in document:
            # The migration seeds the datasets; the curriculum function signs links to them.
            assert roles in ([role("migrate")], [role("curriculum")]), policy_id


def test_wildcard_resources_in_learning_roles_are_the_acknowledged_object_arns(template):
    datasets, _ = _bucket(template, "Datasets")
    uploads, _ = _bucket(template, "Uploads")
    acknowledged = {
        "curriculum": (["s3:GetObject"], f"<{datasets}.Arn>/*"),
        "submissions": (["s3:GetObject", "s3:PutObject"], f"<{uploads}.Arn>/{SUBMISSIONS_PREFIX}*"),
        "trainer": (["s3:GetObject"], f"<{uploads}.Arn>/{SUBMISSIONS_PREFIX}*"),
    }
    for name in LEARNING:
        for statement in _own(template, name):
            wild = [r for r in statement["Resource"] if "*" in r]
            if wild == [_arn("kms", "key/*")] and name == "submissions":
                # The GitHub token's key: only through SSM, only for that parameter (checked above).
                assert statement["Condition"]["StringEquals"]["kms:ViaService"], statement
                continue
            if wild:
                actions, resource = acknowledged[name]
                assert (statement["Action"], wild) == (actions, [resource]), (name, statement)


def test_the_object_wildcards_are_acknowledged_on_exactly_their_roles(synthesized):
    _app, _stack, assembly, template = synthesized
    report = json.loads((Path(assembly.directory) / "validation-report.json").read_text())
    (nag,) = [p for p in report["pluginReports"] if p["pluginName"] == "AwsSolutions"]
    datasets, _ = _bucket(template, "Datasets")
    uploads, _ = _bucket(template, "Uploads")
    expected = {
        f"AwsSolutions-IAM5[Resource::<{datasets}.Arn>/*]": {
            "ApraNova-dev/Fn-curriculum/Role",
            "ApraNova-dev/Fn-migrate/Role",
        },
        f"AwsSolutions-IAM5[Resource::<{uploads}.Arn>/{SUBMISSIONS_PREFIX}*]": {
            f"ApraNova-dev/Fn-{name}/Role" for name in UPLOADS_READERS
        },
    }
    for rule, roles in expected.items():
        found = [s for s in nag["suppressedViolations"] if s["ruleName"] == rule]
        assert {s["acknowledgedAt"] for s in found} == roles, rule
        assert all(len(s["reason"]) >= 40 for s in found)


# --- the uploads bucket ------------------------------------------------------------------------------


def test_uploads_bucket_is_private_tls_only_versioned_logged_and_retained(template):
    uploads, bucket = _bucket(template, "Uploads")
    logs, _ = _bucket(template, "AccessLogs")
    assert bucket["DeletionPolicy"] == "Retain"
    props = bucket["Properties"]
    assert props["PublicAccessBlockConfiguration"] == dict.fromkeys(
        ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"), True
    )
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"] == [
        {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
    ]
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert props["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    assert props["LoggingConfiguration"] == {"DestinationBucketName": {"Ref": logs}, "LogFilePrefix": "uploads/"}
    (policy,) = [
        p
        for p in resources(template, "AWS::S3::BucketPolicy").values()
        if p["Properties"]["Bucket"] == {"Ref": uploads}
    ]
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    assert [s for s in statements if s["Effect"] == "Allow"] == []
    (deny,) = statements
    assert deny["Action"] == "s3:*" and deny["Principal"] == {"AWS": "*"}
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_uploads_bucket_cleans_up_abandoned_uploads_and_old_versions(template):
    _id, bucket = _bucket(template, "Uploads")
    rules = {rule["Id"]: rule for rule in bucket["Properties"]["LifecycleConfiguration"]["Rules"]}
    assert rules["abort-incomplete-uploads"] == {
        "Id": "abort-incomplete-uploads",
        "Status": "Enabled",
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
    }
    # A purged student's files do not live on as old versions.
    assert rules["expire-old-versions"] == {
        "Id": "expire-old-versions",
        "Status": "Enabled",
        "NoncurrentVersionExpiration": {"NoncurrentDays": 30},
        "ExpiredObjectDeleteMarker": True,
    }
    assert set(rules) == {"abort-incomplete-uploads", "expire-old-versions"}


def test_uploads_cors_lets_only_the_spa_post_forms_and_get_files(configured):
    """A stage with its web domain; on the generated domain the web hosting stack puts the same rule
    (tests/infra/test_web_hosting.py)."""
    origin = "https://app.apranova.example"
    template = configured[1]
    _id, bucket = _bucket(template, "Uploads")
    assert bucket["Properties"]["CorsConfiguration"] == {
        "CorsRules": [
            {
                "AllowedHeaders": ["Content-Type"],
                "AllowedMethods": ["POST", "GET"],
                "AllowedOrigins": [origin],
                "MaxAge": 3000,
            }
        ]
    }
    # The datasets bucket is downloaded by following a link, never read by a script: no CORS there.
    assert "CorsConfiguration" not in _bucket(template, "Datasets")[1]["Properties"]
