"""The compliance domain's parts of the stack: the GDPR jobs (export worker, purge, retention sweep)
and the compliance API's grants."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from aws_cdk import ArnFormat, Duration
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda_destinations as destinations

from cdk.constructs.cfn import resource_of
from cdk.constructs.database import Database
from cdk.constructs.identity import Identity
from cdk.constructs.nag import acknowledge
from cdk.constructs.python_function import PythonFunction
from cdk.constructs.storage import EXPORTS_PREFIX, SUBMISSIONS_PREFIX, Storage
from cdk.constructs.student_tools import StudentTools
from cdk.domains.common import DAILY_EVENT_AGE, schedule_of

if TYPE_CHECKING:
    from cdk.stacks.apranova_stack import ApraNovaStack


def jobs(
    stack: ApraNovaStack,
    function,
    *,
    stage: str,
    database: Database,
    storage: Storage,
    identity: Identity,
    tools: StudentTools,
    env: Mapping[str, str],
) -> dict[str, PythonFunction]:
    """The GDPR jobs (export worker, daily purge, daily retention sweep) and the compliance API's
    grants: each role gets exactly the buckets' prefixes, the key, the pool actions and the
    workflow its code calls."""
    storage_env = {
        "UPLOADS_BUCKET": storage.uploads.bucket_name,
        "EXPORTS_BUCKET": storage.exports.bucket_name,
        "EXPORTS_KMS_KEY_ID": storage.exports_key.key_arn,
    }
    pool_env = {"COGNITO_USER_POOL_ID": identity.user_pool.user_pool_id}
    worker = function(
        "compliance-export",
        environment={**storage_env, **pool_env, **env},
        description=f"ApraNova data export builder ({stage}); started by the export route",
    )
    purge = function(
        "compliance-purge",
        environment={
            **storage_env,
            **pool_env,
            **env,
            "SSM_PREFIX": tools.prefix,
            "DEPROVISION_STATE_MACHINE_ARN": stack.workflows.deprovision.state_machine_arn,
        },
        description=f"ApraNova account purge after the grace period ({stage}); run daily",
    )
    sweep = function(
        "compliance-retention",
        environment={**storage_env, **env},
        description=f"ApraNova retention sweep ({stage}); run daily",
    )
    jobs = {fn.name: fn for fn in (worker, purge, sweep)}

    uploads, exports, key = storage.uploads, storage.exports, storage.exports_key
    user_uploads = uploads.arn_for_objects(f"{SUBMISSIONS_PREFIX}*")
    user_exports = exports.arn_for_objects(f"{EXPORTS_PREFIX}*")
    people_files = ((uploads, SUBMISSIONS_PREFIX, user_uploads), (exports, EXPORTS_PREFIX, user_exports))

    def listing(role: iam.IRole, bucket, prefix: str, *, versions: bool = False) -> None:
        actions = ["s3:ListBucket", "s3:ListBucketVersions"] if versions else ["s3:ListBucket"]
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=actions,
                resources=[bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{prefix}*"]}},
            )
        )

    # The worker reads the person's uploads, writes the archive (SSE-KMS: S3 asks the key for a
    # data key on the writer's behalf) and reads the person from the pool.
    listing(worker.role, uploads, SUBMISSIONS_PREFIX)
    worker.role.add_to_principal_policy(iam.PolicyStatement(actions=["s3:GetObject"], resources=[user_uploads]))
    # It deletes the archive again when the person or the request went away meanwhile (export_service).
    worker.role.add_to_principal_policy(
        iam.PolicyStatement(actions=["s3:PutObject", "s3:DeleteObject"], resources=[user_exports])
    )
    key.grant(worker.role, "kms:GenerateDataKey", "kms:Decrypt")
    worker.role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["cognito-idp:AdminGetUser", "cognito-idp:AdminListGroupsForUser"],
            resources=[identity.user_pool.user_pool_arn],
        )
    )
    # The route starts the worker and signs download links (a presigned GET of an SSE-KMS object
    # works with the signer's s3:GetObject and kms:Decrypt).
    api = stack.functions.get("compliance")
    if api is not None:
        api.function.add_environment("EXPORT_FUNCTION_NAME", worker.function.function_name)
        for variable, value in storage_env.items():
            api.function.add_environment(variable, value)
        # The unqualified function only (grant_invoke would add every version and alias).
        api.role.add_to_principal_policy(
            iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=[worker.function.function_arn])
        )
        api.role.add_to_principal_policy(iam.PolicyStatement(actions=["s3:GetObject"], resources=[user_exports]))
        key.grant_decrypt(api.role)
    # A failed build is retried twice by Lambda, then its event lands with the schedules' dead letters.
    worker.function.configure_async_invoke(
        retry_attempts=2,
        max_event_age=Duration.hours(1),
        on_failure=destinations.SqsDestination(stack.schedules.dead_letters),
    )

    # The purge: the deprovision workflow, the person's objects (every version), their SSM
    # parameters and their Cognito user.
    stack.workflows.deprovision.grant_start_execution(purge.role)
    purge.role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["states:DescribeExecution"],
            resources=[
                stack.format_arn(
                    service="states",
                    resource="execution",
                    resource_name=f"{stack.workflows.deprovision.state_machine_name}:*",
                    arn_format=ArnFormat.COLON_RESOURCE_NAME,
                )
            ],
        )
    )
    for bucket, prefix, objects in people_files:
        listing(purge.role, bucket, prefix, versions=True)
        purge.role.add_to_principal_policy(
            iam.PolicyStatement(actions=["s3:DeleteObject", "s3:DeleteObjectVersion"], resources=[objects])
        )
    purge.role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["ssm:GetParametersByPath", "ssm:DeleteParameter", "ssm:DeleteParameters"],
            resources=[tools.parameter_arn("students"), tools.parameter_arn("students/*")],
        )
    )
    purge.role.add_to_principal_policy(
        iam.PolicyStatement(actions=["cognito-idp:AdminDeleteUser"], resources=[identity.user_pool.user_pool_arn])
    )
    acknowledge(
        purge.role,
        "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:"
        f"<{stack.get_logical_id(resource_of(stack.workflows.deprovision))}.Name>:*]",
        "The purge polls the deprovision executions it started (named after each deletion request, "
        "unknown to the template); DescribeExecution only, on this one state machine's executions.",
    )
    acknowledge(
        purge.role,
        f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ssm:<AWS::Region>:<AWS::AccountId>:parameter"
        f"{tools.prefix}/students/*]",
        "A purged student's tool passwords live under <prefix>/students/<user id>/, a path per person "
        "the template cannot know; the purge reads names by path and deletes them for the one person "
        "being erased, and nothing outside the students' path.",
    )
    # The worker emails "your export is ready", the purge alerts the operators.
    for job in (worker, purge):
        stack.email.grant_send(job.role)
    # The sweep deletes expired exports and the files of purged users.
    for bucket, prefix, objects in people_files:
        listing(sweep.role, bucket, prefix, versions=True)
        sweep.role.add_to_principal_policy(
            iam.PolicyStatement(actions=["s3:DeleteObject", "s3:DeleteObjectVersion"], resources=[objects])
        )

    for role in (worker.role, purge.role, sweep.role, *([api.role] if api is not None else [])):
        acknowledge(
            role,
            f"AwsSolutions-IAM5[Resource::<{stack.get_logical_id(resource_of(exports))}.Arn>/{EXPORTS_PREFIX}*]",
            "Exports are exports/<user id>/<export id>.zip, one key per request; the code touches only "
            "the calling or purged person's own keys (checked in the service), so the role needs the "
            "exports prefix, nothing else in the bucket.",
        )
    for role in (worker.role, purge.role, sweep.role):
        acknowledge(
            role,
            f"AwsSolutions-IAM5[Resource::<{stack.get_logical_id(resource_of(uploads))}.Arn>/{SUBMISSIONS_PREFIX}*]",
            "Students' files are submissions/<user id>/...; the export reads and the purge and sweep "
            "delete one person's prefix at a time, so the role needs the submissions prefix only.",
        )

    stack.schedules.add(
        "Purge",
        purge.function,
        schedule_of(purge),
        description=f"ApraNova {stage}: erase accounts whose grace period has ended",
        max_event_age=DAILY_EVENT_AGE,
    )
    stack.schedules.add(
        "RetentionSweep",
        sweep.function,
        schedule_of(sweep),
        description=f"ApraNova {stage}: delete what has outlived its retention policy",
        max_event_age=DAILY_EVENT_AGE,
    )
    return jobs
