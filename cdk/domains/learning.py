"""The learning domain's parts of the stack: the curriculum's datasets and the students' uploads,
granted to the functions that read and write them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_cdk import aws_iam as iam

from cdk.constructs.cfn import resource_of
from cdk.constructs.nag import acknowledge
from cdk.constructs.storage import SUBMISSIONS_PREFIX, Storage

if TYPE_CHECKING:
    from cdk.stacks.apranova_stack import ApraNovaStack


def grant_datasets(stack: ApraNovaStack, storage: Storage) -> None:
    """The migration uploads the course datasets: read and write objects, list the bucket.

    Explicit actions rather than grant_read/grant_put, whose ``s3:GetObject*``/``s3:Abort*``
    wildcards include more than the seed needs.
    """
    bucket = storage.datasets
    role = stack.migrate.role
    role.add_to_principal_policy(iam.PolicyStatement(actions=["s3:ListBucket"], resources=[bucket.bucket_arn]))
    role.add_to_principal_policy(
        iam.PolicyStatement(actions=["s3:GetObject", "s3:PutObject"], resources=[bucket.arn_for_objects("*")])
    )
    bucket_id = stack.get_logical_id(resource_of(bucket))
    acknowledge(
        role,
        f"AwsSolutions-IAM5[Resource::<{bucket_id}.Arn>/*]",
        "The migration writes the datasets under keys the seed chooses, in a bucket that "
        "holds nothing but those datasets; object actions need an object ARN.",
    )


def grant_learning(stack: ApraNovaStack, storage: Storage) -> None:
    """The curriculum function signs dataset links; the submissions function signs upload forms
    and download links, and checks an uploaded file, under the submissions prefix only. A
    presigned URL works with the permissions of the role that signed it."""
    if "curriculum" in stack.functions:
        datasets = storage.datasets
        role = stack.functions["curriculum"].role
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=["s3:GetObject"], resources=[datasets.arn_for_objects("*")])
        )
        acknowledge(
            role,
            f"AwsSolutions-IAM5[Resource::<{stack.get_logical_id(resource_of(datasets))}.Arn>/*]",
            "The curriculum function signs download links for the course datasets, whose keys the "
            "seed chooses, in a bucket that holds nothing but those datasets; read only, and the "
            "service signs only the dataset of a project the student may open.",
        )
    if "submissions" in stack.functions:
        uploads = storage.uploads
        role = stack.functions["submissions"].role
        objects = uploads.arn_for_objects(f"{SUBMISSIONS_PREFIX}*")
        role.add_to_principal_policy(iam.PolicyStatement(actions=["s3:GetObject", "s3:PutObject"], resources=[objects]))
        # Listing lets a HEAD of a missing key answer 404 rather than 403; only under the prefix.
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[uploads.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{SUBMISSIONS_PREFIX}*"]}},
            )
        )
        acknowledge(
            role,
            f"AwsSolutions-IAM5[Resource::<{stack.get_logical_id(resource_of(uploads))}.Arn>/{SUBMISSIONS_PREFIX}*]",
            "Students' files live under submissions/<user id>/<deliverable id>/<random id>/, keys "
            "made per upload; the function signs upload forms and download links and checks an "
            "upload, for the calling student's own prefix only (checked in the service), so the "
            "role needs the whole submissions prefix, and nothing else in the bucket.",
        )
    if "trainer" in stack.functions:
        uploads = storage.uploads
        role = stack.functions["trainer"].role
        # Read only: the trainer function signs download links of the files its reviewers open.
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=["s3:GetObject"], resources=[uploads.arn_for_objects(f"{SUBMISSIONS_PREFIX}*")])
        )
        acknowledge(
            role,
            f"AwsSolutions-IAM5[Resource::<{stack.get_logical_id(resource_of(uploads))}.Arn>/{SUBMISSIONS_PREFIX}*]",
            "A reviewer opens the file of a submission by any student they review; the service "
            "signs a link only for a submission of the caller's own students (admins: any), so "
            "the role reads the submissions prefix, nothing else in the bucket, and writes nothing.",
        )
