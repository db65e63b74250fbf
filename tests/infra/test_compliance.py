"""The GDPR functions in the stack (issue 7): the compliance API, the export worker, the daily purge
and the daily retention sweep run their own handlers in the VPC with exactly the settings their code
reads and the grants it needs; exports sit in a private, KMS-encrypted, TLS-only bucket whose objects
expire; the purge and the sweep run daily from EventBridge Scheduler, with retries and a DLQ."""

from __future__ import annotations

from typing import Any

import pytest

from apranova import inventory
from apranova.settings import load
from cdk.constructs.storage import EXPORTS_PREFIX, SUBMISSIONS_PREFIX
from functions.compliance.settings import (
    ErasureSettings,
    ExportSettings,
    ExportWorkerSettings,
    PurgeSettings,
    RetentionSettings,
)
from tests.infra.stack_support import env, function_ids, function_props, resources, role_statements

JOBS = ("compliance", "compliance-export", "compliance-purge", "compliance-retention")
SETTINGS = {
    "compliance": (ExportSettings, ErasureSettings),
    "compliance-export": (ExportWorkerSettings,),
    "compliance-purge": (PurgeSettings,),
    "compliance-retention": (RetentionSettings,),
}


def _bucket(template, name: str) -> tuple[str, dict[str, Any]]:
    (found,) = [(i, r) for i, r in resources(template, "AWS::S3::Bucket").items() if i.startswith(f"Storage{name}")]
    return found


def _granted(template, name: str, action: str) -> list[str]:
    """Every resource ``name``'s role may take ``action`` on."""
    return sorted(r for s in role_statements(template, name) if action in s["Action"] for r in s["Resource"])


def test_the_exports_bucket_is_private_encrypted_with_its_own_key_tls_only_and_expires(template):
    bucket_id, bucket = _bucket(template, "Exports")
    props = bucket["Properties"]
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    (rule,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    key_id = rule["ServerSideEncryptionByDefault"]["KMSMasterKeyID"]["Fn::GetAtt"][0]
    assert resources(template, "AWS::KMS::Key")[key_id]["Properties"]["EnableKeyRotation"] is True
    assert "VersioningConfiguration" not in props  # a deleted export is gone, not a noncurrent version
    (lifecycle,) = props["LifecycleConfiguration"]["Rules"]
    assert lifecycle["Prefix"] == EXPORTS_PREFIX and lifecycle["ExpirationInDays"] == 7
    assert lifecycle["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
    policies = [
        p
        for p in resources(template, "AWS::S3::BucketPolicy").values()
        if p["Properties"]["Bucket"] == {"Ref": bucket_id}
    ]
    (policy,) = policies
    (deny,) = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


@pytest.mark.parametrize("name", JOBS)
def test_each_gdpr_function_is_in_the_vpc_with_settings_its_code_loads(configured, name):
    _report, template = configured
    props = function_props(template, name)
    assert props["VpcConfig"]["SubnetIds"]
    variables = {
        k: v if isinstance(v, str) else f"deployed-{k.lower().replace('_', '-')}"
        for k, v in env(template, name).items()
    }
    assert variables["DB_USER"] == "apranova_app"
    for settings in SETTINGS[name]:
        load(settings, variables)  # raises, naming the variable, when one is missing or invalid


def test_the_export_route_starts_only_the_worker_and_reads_only_exports(template):
    ids = function_ids(template)
    assert _granted(template, "compliance", "lambda:InvokeFunction") == [f"<{ids['compliance-export']}.Arn>"]
    exports_id, _ = _bucket(template, "Exports")
    assert _granted(template, "compliance", "s3:GetObject") == [f"<{exports_id}.Arn>/{EXPORTS_PREFIX}*"]
    assert _granted(template, "compliance", "s3:PutObject") == []
    assert env(template, "compliance")["EXPORT_FUNCTION_NAME"] == {"Ref": ids["compliance-export"]}
    # Deletion signs the person out everywhere; nothing else of the pool's admin API.
    cognito = sorted(
        {a for s in role_statements(template, "compliance") for a in s["Action"] if a.startswith("cognito")}
    )
    assert cognito == ["cognito-idp:AdminUserGlobalSignOut"]


def test_the_worker_reads_uploads_and_writes_exports_only(template):
    uploads_id, _ = _bucket(template, "Uploads")
    exports_id, _ = _bucket(template, "Exports")
    assert _granted(template, "compliance-export", "s3:GetObject") == [f"<{uploads_id}.Arn>/{SUBMISSIONS_PREFIX}*"]
    assert _granted(template, "compliance-export", "s3:PutObject") == [f"<{exports_id}.Arn>/{EXPORTS_PREFIX}*"]
    # It removes an archive whose person or request went away while it was built (export_service),
    # and nothing else: no other prefix, no old versions.
    assert _granted(template, "compliance-export", "s3:DeleteObject") == [f"<{exports_id}.Arn>/{EXPORTS_PREFIX}*"]
    assert _granted(template, "compliance-export", "s3:DeleteObjectVersion") == []
    # Failed builds are retried by Lambda, then dead-lettered.
    configs = [
        c
        for c in resources(template, "AWS::Lambda::EventInvokeConfig").values()
        if c["Properties"]["FunctionName"] == {"Ref": function_ids(template)["compliance-export"]}
    ]
    (config,) = configs
    assert config["Properties"]["MaximumRetryAttempts"] == 2
    assert "OnFailure" in config["Properties"]["DestinationConfig"]


def test_the_purge_erases_exactly_what_it_must(template):
    uploads_id, _ = _bucket(template, "Uploads")
    exports_id, _ = _bucket(template, "Exports")
    deletable = [f"<{exports_id}.Arn>/{EXPORTS_PREFIX}*", f"<{uploads_id}.Arn>/{SUBMISSIONS_PREFIX}*"]
    for name in ("compliance-purge", "compliance-retention"):
        assert _granted(template, name, "s3:DeleteObjectVersion") == deletable, name
        assert _granted(template, name, "s3:PutObject") == [], name
    assert _granted(template, "compliance-purge", "cognito-idp:AdminDeleteUser")
    (deprovision,) = _granted(template, "compliance-purge", "states:StartExecution")
    assert deprovision.startswith("<WorkflowsDeprovision")
    ssm = _granted(template, "compliance-purge", "ssm:DeleteParameters")
    assert ssm and all("/students" in arn for arn in ssm)
    assert _granted(template, "compliance-retention", "ssm:DeleteParameters") == []
    assert function_props(template, "compliance-purge")["ReservedConcurrentExecutions"] == 1
    assert function_props(template, "compliance-purge")["Timeout"] == 900


def test_the_purge_and_the_sweep_run_daily_with_retries_and_a_dead_letter_queue(template):
    ids = function_ids(template)
    schedules = resources(template, "AWS::Scheduler::Schedule").values()
    by_target = {}
    for schedule in schedules:
        arn = schedule["Properties"]["Target"]["Arn"]
        by_target[arn["Fn::GetAtt"][0]] = schedule["Properties"]
    purge, sweep = by_target[ids["compliance-purge"]], by_target[ids["compliance-retention"]]
    assert purge["ScheduleExpression"] == inventory.get("compliance-purge").schedule == "cron(0 3 * * ? *)"
    assert sweep["ScheduleExpression"] == inventory.get("compliance-retention").schedule == "cron(30 3 * * ? *)"
    for props in (purge, sweep):
        target = props["Target"]
        assert target["RetryPolicy"]["MaximumRetryAttempts"] == 2
        assert target["DeadLetterConfig"]["Arn"]
        assert props["FlexibleTimeWindow"] == {"Mode": "OFF"}
