"""S3 buckets: the datasets bucket (course data students download), the uploads bucket (students'
submitted files), the exports bucket (GDPR data exports, KMS-encrypted, gone after 7 days) and the
access-log bucket."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from apranova import cors
from cdk.constructs.nag import acknowledge

# Where the submissions function puts students' files (``submissions/<user id>/<deliverable>/...``):
# the only prefix its role may write, read or list.
SUBMISSIONS_PREFIX = "submissions/"
# A browser upload that never completes leaves parts S3 bills for: abandoned after a day.
ABORT_INCOMPLETE_UPLOADS = Duration.days(1)
# A deleted or replaced upload stays recoverable this long, then is gone: an account purge deletes
# the student's objects, and a versioned bucket must not keep them for ever.
UPLOAD_NONCURRENT_DAYS = Duration.days(30)
# Data exports (``exports/<user id>/<export id>.zip``): a link is offered for 7 days; the retention
# sweep deletes the object then, and the lifecycle rule is the backstop if a sweep is missed.
EXPORTS_PREFIX = "exports/"
EXPORT_DAYS = Duration.days(7)


def uploads_cors_rule(origin: str) -> s3.CorsRule:
    """The uploads bucket's CORS rule for ``origin`` (apranova.cors: the same rule locally)."""
    rule = cors.uploads_bucket_rule(origin)
    return s3.CorsRule(
        allowed_methods=[s3.HttpMethods(method) for method in rule["AllowedMethods"]],
        allowed_origins=rule["AllowedOrigins"],
        allowed_headers=rule["AllowedHeaders"],
        max_age=rule["MaxAgeSeconds"],
    )


class Storage(Construct):
    """``spa_origin``: the only origin whose browser may POST an upload form to the uploads bucket
    or GET a presigned download from it; None when it is known only once the web app's distribution
    exists (the web hosting stack then puts the same rule)."""

    def __init__(self, scope: Construct, id: str, *, spa_origin: str | None) -> None:
        super().__init__(scope, id)
        # Server access logs must be SSE-S3 encrypted; the bucket policy (not ACLs) grants the
        # logging service, so object ownership stays enforced.
        self.access_logs = s3.Bucket(
            self,
            "AccessLogs",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(365))],
            removal_policy=RemovalPolicy.RETAIN,
        )
        acknowledge(
            self.access_logs,
            "AwsSolutions-S1",
            "This is the access-log bucket itself; logging it into itself would loop.",
        )
        self.datasets = self._private_bucket(
            "Datasets",
            encryption=s3.BucketEncryption.S3_MANAGED,
            versioned=True,
            # Old dataset versions are kept a while for a rollback, not forever; an upload the
            # migration never finished (a large dataset goes up in parts) is cleaned up.
            lifecycle_rules=[
                s3.LifecycleRule(
                    noncurrent_version_expiration=Duration.days(90),
                    abort_incomplete_multipart_upload_after=ABORT_INCOMPLETE_UPLOADS,
                )
            ],
        )
        # Students' files: uploaded from the browser with a presigned POST (the form binds the key,
        # the content type and the size), read back through short presigned GETs. S3-managed keys:
        # SSE-KMS would make every presigned upload and download a KMS call too, with key grants on
        # the function's role, for no reader the bucket's IAM scoping does not already exclude.
        self.uploads = self._private_bucket(
            "Uploads",
            encryption=s3.BucketEncryption.S3_MANAGED,
            versioned=True,
            # Without an origin known at synth (the web app on its distribution's generated domain),
            # the web hosting stack puts this same rule once the distribution exists (web_hosting.py).
            cors=[uploads_cors_rule(spa_origin)] if spa_origin else None,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="abort-incomplete-uploads",
                    abort_incomplete_multipart_upload_after=ABORT_INCOMPLETE_UPLOADS,
                ),
                s3.LifecycleRule(
                    id="expire-old-versions",
                    noncurrent_version_expiration=UPLOAD_NONCURRENT_DAYS,
                    expired_object_delete_marker=True,
                ),
            ],
        )
        # A person's whole record, zipped: encrypted with a key of our own, so reading an export
        # takes kms:Decrypt on it as well as s3:GetObject, and CloudTrail logs every use. Not
        # versioned: a deleted export must be gone, not kept as a noncurrent version.
        self.exports_key = kms.Key(
            self,
            "ExportsKey",
            description="ApraNova: encrypts users' GDPR data exports",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.exports = self._private_bucket(
            "Exports",
            encryption=s3.BucketEncryption.KMS,
            encryption_key=self.exports_key,
            bucket_key_enabled=True,
            versioned=False,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-exports",
                    prefix=EXPORTS_PREFIX,
                    # The sweep deletes an export when its link expires; this catches a missed sweep
                    # (S3 expires objects at the first midnight UTC after the period: never early).
                    expiration=EXPORT_DAYS,
                    abort_incomplete_multipart_upload_after=ABORT_INCOMPLETE_UPLOADS,
                ),
            ],
        )

    def _private_bucket(self, id: str, **props) -> s3.Bucket:
        """A bucket of ours: no public access, TLS only, no ACLs, access-logged under ``<id>/``, kept
        when the stack is deleted (it holds people's data or the course's)."""
        return s3.Bucket(
            self,
            id,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix=f"{id.lower()}/",
            removal_policy=RemovalPolicy.RETAIN,
            **props,
        )
