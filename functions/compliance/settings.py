"""The compliance functions' settings and AWS clients, made once per warm environment.

One module for the API function (consent, export, erasure routes), the export worker and the
purge and retention jobs: each loads the settings class it needs, so a function is only given the
environment it reads. Nothing here is secret: bucket names, a KMS key id, an SSM path prefix, a
pool id, an ARN, a function name, link lifetimes.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from pydantic import Field

from apranova.retention_bounds import MAX_DELETION_GRACE_DAYS
from apranova.settings import BaseSettings, load

BUCKET_NAME = r"^[a-z0-9][a-z0-9.-]*[a-z0-9]$"


class StorageSettings(BaseSettings):
    """Where a person's files live: their uploads, and the exports of their data."""

    # Students' uploads (objects under submissions/<user_id>/...), written by the submissions function.
    uploads_bucket: str = Field(min_length=3, max_length=63, pattern=BUCKET_NAME)
    # Export archives (objects under exports/<user_id>/<export_id>.zip), KMS-encrypted.
    exports_bucket: str = Field(min_length=3, max_length=63, pattern=BUCKET_NAME)
    # The customer-managed key of the exports bucket; unset: the bucket's default aws:kms key.
    exports_kms_key_id: str | None = None
    # Links in the emails point at the SPA, never at S3.
    spa_origin: str = "http://localhost:5173"


class ExportSettings(StorageSettings):
    """The export routes: start a build, hand out short-lived links to a finished one."""

    # The export worker, invoked asynchronously (InvocationType=Event) once the request is committed.
    export_function_name: str = Field(min_length=1, max_length=140)
    # A presigned link is a bearer URL: short-lived, signed anew on each request.
    export_link_seconds: int = Field(300, ge=30, le=3600)
    # At most one export (not counting failed ones) per person in this window.
    export_interval_hours: int = Field(24, ge=1, le=24 * 30)


class ExportWorkerSettings(StorageSettings):
    """The worker that builds an export archive."""

    # The pool whose attributes of the person go into the export (admin_get_user).
    cognito_user_pool_id: str = Field(min_length=1)
    # How long a finished export can be downloaded (then the retention sweep deletes it).
    export_valid_days: int = Field(7, ge=1, le=30)
    # The SPA page that shows the person's export (the email links there, never to S3).
    export_page_path: str = Field("/account/privacy", pattern=r"^/[A-Za-z0-9/_-]*$")


class ErasureSettings(BaseSettings):
    """The delete-account and cancel-deletion routes."""

    # The grace period when no active USER_DATA retention policy says otherwise (docs/decisions.md).
    deletion_grace_days: int = Field(30, ge=1, le=MAX_DELETION_GRACE_DAYS)
    # Links in the emails point at the SPA.
    spa_origin: str = "http://localhost:5173"


class PurgeSettings(StorageSettings):
    """The daily purge of accounts whose grace period is over."""

    cognito_user_pool_id: str = Field(min_length=1)
    # Per-student tool passwords live under ``{ssm_prefix}/students/<user_id>/``.
    ssm_prefix: str = Field(pattern=r"^/[A-Za-z0-9_.\-/]*[A-Za-z0-9_.\-]$")
    deprovision_state_machine_arn: str = Field(min_length=1)
    # How long one run waits for a deprovision execution before leaving the request for the next run.
    purge_workflow_wait_seconds: float = Field(300, ge=0, le=840)
    purge_poll_seconds: float = Field(2.0, gt=0, le=60)
    # Accounts handled per run (the rest wait for the next day's run).
    purge_batch_size: int = Field(25, ge=1, le=500)
    # Failed deprovision executions after which the purge stops starting new ones (ops must look).
    purge_max_deprovision_attempts: int = Field(5, ge=1, le=50)


class RetentionSettings(StorageSettings):
    """The daily retention sweep."""

    # Rows per statement: a run never holds a lock on more than this many rows at once.
    retention_batch_size: int = Field(500, ge=1, le=10_000)
    # Batches per resource per run: a huge backlog is worked off over several days.
    retention_max_batches: int = Field(200, ge=1, le=100_000)


@cache
def erasure_settings() -> ErasureSettings:
    return load(ErasureSettings)


@cache
def purge_settings() -> PurgeSettings:
    return load(PurgeSettings)


@cache
def retention_settings() -> RetentionSettings:
    return load(RetentionSettings)


@cache
def export_settings() -> ExportSettings:
    return load(ExportSettings)


@cache
def export_worker_settings() -> ExportWorkerSettings:
    return load(ExportWorkerSettings)


@cache
def s3() -> Any:
    """Signature V4: presigned GETs of KMS-encrypted objects need it. ``AWS_ENDPOINT_URL`` points it
    at moto locally."""
    import boto3
    from botocore.config import Config

    config = Config(
        signature_version="s3v4",
        connect_timeout=3,
        read_timeout=30,
        retries={"mode": "standard", "max_attempts": 3},
    )
    return boto3.client("s3", config=config)


@cache
def lambda_client() -> Any:
    import boto3
    from botocore.config import Config

    # An Event invocation only queues the event: a short timeout, a few retries.
    config = Config(connect_timeout=3, read_timeout=10, retries={"mode": "standard", "max_attempts": 3})
    return boto3.client("lambda", config=config)


def reset() -> None:
    """Forget settings and clients (tests that change the environment)."""
    for cached in (
        export_settings,
        export_worker_settings,
        erasure_settings,
        purge_settings,
        retention_settings,
        s3,
        lambda_client,
    ):
        cached.cache_clear()


def time_left(context: Any, margin_seconds: float) -> Callable[[], float]:
    """Seconds a scheduled job may still start work in: the invocation's remaining time less the
    margin its own bookkeeping needs (unbounded without a Lambda context)."""

    def left() -> float:
        if context is None or not hasattr(context, "get_remaining_time_in_millis"):
            return float("inf")
        return context.get_remaining_time_in_millis() / 1000 - margin_seconds

    return left
