"""Settings of the right to erasure (the delete/cancel routes, the daily purge) and of the daily
retention sweep. Nothing here is secret: bucket names, an SSM path prefix, a pool id, an ARN.

The buckets are the compliance function's own ``StorageSettings`` (functions/compliance/config.py):
one definition of where a person's files live for the export and the erasure.
"""

from __future__ import annotations

from functools import cache

from pydantic import Field

from apranova.retention_bounds import MAX_DELETION_GRACE_DAYS
from apranova.settings import BaseSettings, load
from functions.compliance.config import StorageSettings


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


def reset() -> None:
    for cached in (erasure_settings, purge_settings, retention_settings):
        cached.cache_clear()
