"""The daily retention sweep: delete what has outlived its retention policy, never what the law
keeps. Each ``data_retention_policies`` row governs (an inactive row: its sweep is skipped):

- EXPORTS: a READY export past its link's expiry (or older than the period) has its archive
  deleted from S3 and becomes EXPIRED; EXPIRED/FAILED export records are deleted one period later.
- LOGS: processed Stripe webhook event records older than the period (unprocessed ones stay).
  Function logs' retention is set on their CloudWatch log groups by CDK.
- AUDIT_LOGS: audit rows older than the period, except those about money (PAYMENT,
  REFUND_REQUESTED, REFUND_DECIDED), kept as long as the payment records (PAYMENT_DATA) when that
  is longer; cancelled deletion requests a period after the cancel (completed ones hold only the
  opaque reference and are kept as the proof of the erasure).
- SUBMISSIONS: decided submissions (approved, changes requested, superseded) submitted longer ago
  than the period, with their uploaded files (every version; a file a newer attempt still submits
  stays with that one). A pending one awaits its review. Uploads no submission names (never
  submitted) go once they are older than the period.
- USER_DATA: the grace period before an account's purge, at most 90 days (the delete-account
  route reads it; the purge erases). Here: files left under the upload and export prefixes of accounts that no longer
  exist (an upload finished, or an export built, after the purge's files step), whatever their age:
  nobody is left to keep them for.
- ABANDONED_CHECKOUTS: pay-first checkouts never paid (pending, failed or expired; never
  succeeded, refunded or disputed) and never linked to an account, unchanged for the period (at
  least 30 days, ``apranova.retention_bounds``: a delayed payment can still complete): the
  payment row loses the buyer's email and name (the row stays: the payments trigger forbids
  DELETE), their consent record is deleted, and the checkout's audit rows lose the request's IP
  address and user agent.
- PAYMENT_DATA (a legal requirement): payments and refund requests are never deleted; the
  payments trigger forbids it. Rows past the period are counted in the report. See
  docs/decisions.md ("Issue 7: erasure") for what happens after 7 years.

Every statement is batched (``retention_batch_size`` rows) and selects only what is still past
its period, so a run can stop anywhere and the next one continues; a second run finds nothing.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from apranova import retention_bounds
from apranova.fields import canonical_uuid
from apranova.observability import logger
from functions.compliance.erasure.purge.service import EXPORTS_PREFIX, UPLOADS_PREFIX, delete_prefix
from functions.compliance.retention import repository
from functions.compliance.settings import RetentionSettings


@dataclass
class RetentionDeps:
    settings: RetentionSettings
    s3: Any
    # Seconds this invocation may still spend (the Lambda's remaining time, less a margin).
    time_left: Callable[[], float] = lambda: float("inf")
    monotonic: Callable[[], float] = time.monotonic


def _batches(deps: RetentionDeps, one_batch: Callable[[int], int]) -> int:
    """Runs ``one_batch(limit)`` until a batch comes back short, the batch cap or the time is up."""
    total, limit = 0, deps.settings.retention_batch_size
    for _ in range(deps.settings.retention_max_batches):
        if deps.time_left() <= 0:
            break
        done = one_batch(limit)
        total += done
        if done < limit:
            break
    return total


def _active_days(policies: dict[str, dict[str, Any]], resource_type: str) -> int | None:
    policy = policies.get(resource_type)
    if policy is None or not policy["is_active"]:
        return None
    return int(policy["retention_days"])


def sweep(deps: RetentionDeps) -> dict[str, Any]:
    policies = repository.policies()
    report: dict[str, Any] = {}

    export_days = _active_days(policies, "EXPORTS")
    if export_days is not None:
        report["exports_expired"] = _batches(deps, lambda limit: _expire_exports(deps, export_days, limit))
        report["export_records_deleted"] = _batches(
            deps, lambda limit: repository.delete_closed_exports(export_days, limit)
        )

    log_days = _active_days(policies, "LOGS")
    if log_days is not None:
        report["stripe_events_deleted"] = _batches(
            deps, lambda limit: repository.delete_processed_stripe_events(log_days, limit)
        )

    audit_days = _active_days(policies, "AUDIT_LOGS")
    if audit_days is not None:
        financial_days = max(audit_days, _legal_days(policies, "PAYMENT_DATA"))
        report["audit_rows_deleted"] = _batches(
            deps, lambda limit: repository.delete_audit_rows(audit_days, financial_days, limit)
        )
        report["cancelled_deletion_requests_deleted"] = _batches(
            deps, lambda limit: repository.delete_cancelled_deletion_requests(audit_days, limit)
        )

    submission_days = _active_days(policies, "SUBMISSIONS")
    if submission_days is not None:
        report["submissions_deleted"] = _batches(deps, lambda limit: _delete_submissions(deps, submission_days, limit))
        report["unsubmitted_uploads_deleted"] = _delete_unsubmitted_uploads(deps, submission_days)

    if _active_days(policies, "USER_DATA") is not None:
        report["orphaned_files_deleted"] = _delete_orphaned_files(deps)

    days = _active_days(policies, "ABANDONED_CHECKOUTS")
    if days is not None:
        days = retention_bounds.clamp("ABANDONED_CHECKOUTS", days)
        report["abandoned_checkouts_anonymised"] = _batches(
            deps, lambda limit: repository.anonymise_abandoned_checkouts(days, limit)
        )

    payment_days = _legal_days(policies, "PAYMENT_DATA")
    if payment_days:
        report["payments_past_period_kept"] = repository.payments_past(payment_days)

    deleted = {k: v for k, v in report.items() if v and not k.endswith("_kept")}
    if deleted:
        repository.record_sweep(report)
    logger.info("retention sweep", extra={"report": report})
    return report


def _legal_days(policies: dict[str, dict[str, Any]], resource_type: str) -> int:
    """A legal requirement's period applies whether or not an admin switched its row off."""
    policy = policies.get(resource_type)
    if policy is None:
        return 0
    if policy["legal_requirement"]:
        return max(int(policy["retention_days"]), int(policy["legal_minimum_days"] or 0))
    return int(policy["retention_days"]) if policy["is_active"] else 0


def _expire_exports(deps: RetentionDeps, days: int, limit: int) -> int:
    due = repository.expired_exports(days, limit)
    for export in due:
        if export["s3_key"]:
            delete_prefix(deps.s3, deps.settings.exports_bucket, export["s3_key"], exact=True)
    # Deleted first, marked after: a crash in between deletes again (a no-op) on the next run.
    repository.mark_exports_expired([e["id"] for e in due])
    return len(due)


def _delete_submissions(deps: RetentionDeps, days: int, limit: int) -> int:
    due = repository.old_decided_submissions(days, limit)
    for submission in due:
        if submission["file_key"]:
            delete_prefix(deps.s3, deps.settings.uploads_bucket, submission["file_key"], exact=True)
    repository.delete_submissions([s["id"] for s in due])
    return len(due)


def _delete_unsubmitted_uploads(deps: RetentionDeps, days: int) -> int:
    """Objects in a person's upload folder older than the period that no submission names: uploads
    never submitted (a submitted one goes with its submission, above)."""
    cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(days=days)
    bucket, deleted = deps.settings.uploads_bucket, 0
    for page in deps.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=UPLOADS_PREFIX):
        if deps.time_left() <= 0:
            break
        old = {
            item["Key"]: owner
            for item in page.get("Contents", [])
            if item["LastModified"] <= cutoff and (owner := _owner(item["Key"]))
        }
        if not old:
            continue
        submitted = repository.submitted_file_keys(sorted(set(old.values())), sorted(old))
        for key in old:
            if key not in submitted:
                deleted += delete_prefix(deps.s3, bucket, key, exact=True)
    return deleted


def _owner(key: str) -> str | None:
    """The user id of ``submissions/<user id>/...`` (None for anything that is not a person's file)."""
    name = key[len(UPLOADS_PREFIX) :].split("/", 1)[0]
    return name if canonical_uuid(name) == name else None


def _user_ids_under(s3: Any, bucket: str, prefix: str) -> list[list[str]]:
    """The per-user folders under ``prefix``, page by page (user ids only; anything else is not a
    person's folder and is left alone)."""
    pages = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, Delimiter="/"):
        ids = []
        for common in page.get("CommonPrefixes", []):
            name = common["Prefix"][len(prefix) :].rstrip("/")
            if canonical_uuid(name) == name:
                ids.append(name)
        pages.append(ids)
    return pages


def _delete_orphaned_files(deps: RetentionDeps) -> int:
    deleted = 0
    for bucket, prefix in (
        (deps.settings.uploads_bucket, UPLOADS_PREFIX),
        (deps.settings.exports_bucket, EXPORTS_PREFIX),
    ):
        for ids in _user_ids_under(deps.s3, bucket, prefix):
            if deps.time_left() <= 0:
                return deleted
            if not ids:
                continue
            alive = repository.existing_users(ids)
            for user_id in ids:
                if user_id not in alive:
                    deleted += delete_prefix(deps.s3, bucket, f"{prefix}{user_id}/")
    return deleted
