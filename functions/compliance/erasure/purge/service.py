"""The daily purge: erase every account whose grace period is over.

One account is erased in named steps, in this order; each done step is recorded on the request
(``deletion_requests.completed_steps``), so a run that crashes or times out is resumed by the next
one from the first step not done, and every step is itself safe to repeat:

1. ``deprovision``: the deprovision workflow takes back every tool (student database role and
   schema, Superset, Prefect, JupyterHub, the workspace). The execution's name is derived from the
   request, so a re-run finds the execution it started instead of starting another; a run waits
   for it within a time budget and otherwise leaves the request for the next run. A failed
   execution is recorded and alerted; the next run starts a new attempt (``-2``, ``-3`` ...).
   Skipped when nothing was ever provisioned.
2. ``files``: every object version under the person's upload and export prefixes, and any object
   their rows name.
3. ``parameters``: their SSM parameters (``{SSM_PREFIX}/students/<user id>/...``).
4. ``identity``: the Cognito user (already gone is fine).
5. ``database``: one transaction: payments and refund requests kept with the opaque reference in
   place of the person, audit rows anonymised, every other personal row deleted (the users row
   last, with its cascades), ACCOUNT_PURGED audited with the reference only, request COMPLETED.

The claim marks the account deleted (``users.deleted_at``) before any step: the API stops seeing
it and the provisioning steps refuse it, so nothing new is created for it while it is erased.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from apranova import db, vocabulary, workflows
from apranova.alerts import alert
from apranova.audit import AuditAction, record
from apranova.observability import logger
from apranova.vocabulary import SUBMISSIONS_PREFIX, user_exports_prefix, user_uploads_prefix
from apranova.workflow_inputs import DeprovisionInput
from functions.compliance import register
from functions.compliance.erasure.purge import repository
from functions.compliance.settings import PurgeSettings

STEPS = ("deprovision", "files", "parameters", "identity", "database")
# Where people's files are (one prefix per person): apranova/vocabulary.py.
UPLOADS_PREFIX, EXPORTS_PREFIX = SUBMISSIONS_PREFIX, vocabulary.EXPORTS_PREFIX


class StepFailed(Exception):
    """A step could not finish; the request stays IN_PROGRESS for the next run."""


class StillRunning(Exception):
    """The deprovision execution outlived this run's wait budget; the next run waits again."""


@dataclass
class PurgeDeps:
    settings: PurgeSettings
    s3: Any
    ssm: Any
    cognito: Any
    sfn: Any
    # The workflows module's start (ExecutionAlreadyExists is success) by default.
    start_workflow: Callable[[str, str, DeprovisionInput], tuple[str, bool]] = workflows.start
    alert: Callable[[str, dict[str, Any]], None] = alert
    sleep: Callable[[float], None] = time.sleep
    monotonic: Callable[[], float] = time.monotonic
    # Seconds this invocation may still spend (the Lambda's remaining time, less a margin).
    time_left: Callable[[], float] = lambda: float("inf")
    # Called after each step is recorded: the crash-resume tests stop the run there.
    after_step: Callable[[str, str], None] | None = None
    new_subject_ref: Callable[[], str] = field(default=lambda: "erased-" + secrets.token_hex(16))


@dataclass(frozen=True)
class Request:
    id: str
    user_id: str
    subject_ref: str
    completed_steps: tuple[str, ...]


def run(deps: PurgeDeps) -> dict[str, Any]:
    """Purges the due accounts (at most ``purge_batch_size``); returns what happened to each."""
    outcomes: dict[str, str] = {}
    for request_id in repository.due_requests(deps.settings.purge_batch_size):
        if deps.time_left() <= 0:
            break
        outcomes[request_id] = purge_one(deps, request_id)
    summary: dict[str, Any] = {"requests": len(outcomes), "outcomes": outcomes}
    logger.info("purge run", extra=summary)
    return summary


def purge_one(deps: PurgeDeps, request_id: str) -> str:
    with repository.request_lock(request_id) as held:
        if not held:
            return "locked"
        claimed = repository.claim(request_id, deps.new_subject_ref())
        if claimed is None:
            return "not_due"
        if claimed["user_id"] is None:
            # The account row is gone already (nothing personal left to find by it).
            repository.complete_without_account(request_id, "database")
            deps.alert("Account purge found no account", {"deletion_request": request_id})
            return "completed_without_account"
        request = Request(
            id=claimed["id"],
            user_id=claimed["user_id"],
            subject_ref=claimed["subject_ref"],
            completed_steps=tuple(claimed["completed_steps"]),
        )
        for step in STEPS:
            if step in request.completed_steps:
                continue
            try:
                STEP_RUNNERS[step](deps, request)
            except StillRunning as waiting:
                repository.record_error(request.id, f"{step}: {waiting}")
                logger.info("purge waits for the deprovision workflow", extra={"deletion_request": request.id})
                return "waiting"
            except Exception as error:  # noqa: BLE001 - recorded and alerted; the next run resumes here
                message = f"{step}: {type(error).__name__}: {error}"[:1000]
                repository.record_error(request.id, message)
                logger.exception("purge step failed", extra={"deletion_request": request.id, "step": step})
                deps.alert(
                    "Account purge step failed",
                    {"deletion_request": request.id, "subject_ref": request.subject_ref, "step": step,
                     "error": type(error).__name__},
                )  # fmt: skip
                return f"failed:{step}"
            if step != "database":  # the database step records itself in its own transaction
                repository.complete_step(request.id, step)
            if deps.after_step is not None:
                deps.after_step(request.id, step)
        return "completed"


# --- 1. deprovision ---------------------------------------------------------------------------------


def _execution_name(request_id: str, attempt: int) -> str:
    return workflows.execution_name("purge", f"{request_id}-{attempt}")


def _describe(deps: PurgeDeps, arn: str) -> dict[str, Any] | None:
    try:
        return deps.sfn.describe_execution(executionArn=arn)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ExecutionDoesNotExist":
            return None
        raise


def deprovision(deps: PurgeDeps, request: Request) -> None:
    account = repository.account(request.user_id)
    left = repository.tools_left(request.user_id)
    if account is None:
        raise StepFailed("the account row is missing")
    provisioned = account["provisioning_status"] not in ("NOT_STARTED", "DEPROVISIONED")
    if not (left["tools"] or left["student_database"] or provisioned):
        return  # nothing was ever provisioned (or a refund already took it all back)
    machine = deps.settings.deprovision_state_machine_arn
    # The latest attempt decides: running → wait for it; failed → a new attempt; none → the first.
    attempt, described = 1, None
    while attempt <= deps.settings.purge_max_deprovision_attempts:
        described = _describe(deps, workflows.execution_arn(machine, _execution_name(request.id, attempt)))
        if described is None or described["status"] in ("RUNNING", "SUCCEEDED"):
            break
        attempt += 1
    else:
        raise StepFailed(f"the deprovision workflow failed {attempt - 1} times; an operator must look")
    if described is None:
        track = account["track"] or ("FSD" if "WORKSPACE" in left["tools"] else "DP")
        arn, _ = deps.start_workflow(machine, _execution_name(request.id, attempt), erasure_input(request, track))
    else:
        arn = described["executionArn"]
    status = _wait(deps, arn)
    if status != "SUCCEEDED":
        raise StepFailed(f"the deprovision workflow ended {status} (attempt {attempt}){_pending(request)}")
    # The deprovisioner deletes the credentials row only after the role, the schema and the
    # password are gone: a row still here means the student database was not taken back.
    if repository.tools_left(request.user_id)["student_database"]:
        raise StepFailed(f"the student database is still provisioned after the deprovision workflow{_pending(request)}")


def erasure_input(request: Request, track: str) -> DeprovisionInput:
    """The deprovision workflow's input for erasing ``request``'s person: everything they have."""
    return DeprovisionInput.erasure(request.user_id, track)


def _pending(request: Request) -> str:
    """What is still not taken back, for the request's recorded error: each tool, its state and the
    class of its last error (the error's text may name the person's accounts in the tool)."""
    pending = repository.tools_pending(request.user_id)
    if not pending:
        return ""
    return "; still pending: " + ", ".join(
        f"{row['tool']} {row['status']}" + (f" ({row['error'].split(':', 1)[0]})" if row["error"] else "")
        for row in pending
    )


def _wait(deps: PurgeDeps, arn: str) -> str:
    deadline = deps.monotonic() + min(deps.settings.purge_workflow_wait_seconds, max(deps.time_left(), 0))
    while True:
        status = deps.sfn.describe_execution(executionArn=arn)["status"]
        if status != "RUNNING":
            return str(status)
        if deps.monotonic() >= deadline:
            raise StillRunning(f"the deprovision execution {arn.rsplit(':', 1)[-1]} is still running")
        deps.sleep(deps.settings.purge_poll_seconds)


# --- 2. files ------------------------------------------------------------------------------------------


def delete_prefix(s3: Any, bucket: str, prefix: str, *, exact: bool = False) -> int:
    """Deletes every version and delete marker under ``prefix`` (or of the key ``prefix`` when
    ``exact``); an unversioned bucket lists its objects as version "null". Returns how many."""
    deleted = 0
    batch: list[dict[str, str]] = []

    def flush() -> None:
        nonlocal deleted, batch
        if not batch:
            return
        answer = s3.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
        if answer.get("Errors"):
            codes = sorted({e.get("Code", "?") for e in answer["Errors"]})
            raise StepFailed(f"S3 refused to delete {len(answer['Errors'])} objects: {', '.join(codes)}")
        deleted += len(batch)
        batch = []

    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
        for item in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]:
            if exact and item["Key"] != prefix:
                continue
            batch.append({"Key": item["Key"], "VersionId": item.get("VersionId") or "null"})
            if len(batch) == 1000:
                flush()
    flush()
    return deleted


def delete_files(deps: PurgeDeps, request: Request) -> None:
    settings = deps.settings
    keys = repository.file_keys(request.user_id)
    counts = {
        "uploads": delete_prefix(deps.s3, settings.uploads_bucket, user_uploads_prefix(request.user_id)),
        "exports": delete_prefix(deps.s3, settings.exports_bucket, user_exports_prefix(request.user_id)),
    }
    # Objects a row names outside the person's prefix (none are written so; a safety net).
    for bucket, names in ((settings.uploads_bucket, keys["uploads"]), (settings.exports_bucket, keys["exports"])):
        for key in names:
            if not key.startswith((user_uploads_prefix(request.user_id), user_exports_prefix(request.user_id))):
                counts["named"] = counts.get("named", 0) + delete_prefix(deps.s3, bucket, key, exact=True)
    logger.info("purge deleted files", extra={"deletion_request": request.id, **counts})


# --- 3. parameters -------------------------------------------------------------------------------------


def delete_parameters(deps: PurgeDeps, request: Request) -> None:
    names = set(repository.password_parameters(request.user_id))
    path = f"{deps.settings.ssm_prefix}/students/{request.user_id}"
    for page in deps.ssm.get_paginator("get_parameters_by_path").paginate(Path=path, Recursive=True):
        names.update(p["Name"] for p in page.get("Parameters", []))
    ordered = sorted(names)
    for start in range(0, len(ordered), 10):  # DeleteParameters takes at most 10 names
        deps.ssm.delete_parameters(Names=ordered[start : start + 10])  # unknown names are reported, not raised
    logger.info("purge deleted parameters", extra={"deletion_request": request.id, "parameters": len(ordered)})


# --- 4. identity ---------------------------------------------------------------------------------------


def delete_identity(deps: PurgeDeps, request: Request) -> None:
    """The Cognito user, by its username (the sub: the pool signs in by email alias)."""
    try:
        deps.cognito.admin_delete_user(UserPoolId=deps.settings.cognito_user_pool_id, Username=request.user_id)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "UserNotFoundException":
            raise


# --- 5. database ---------------------------------------------------------------------------------------


ERASED = "[erased]"


def _scrub(value: Any, needles: list[str]) -> Any:
    """``value`` with every needle (case-insensitive) replaced in its strings, keys included."""
    if isinstance(value, dict):
        return {_scrub(k, needles): _scrub(v, needles) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v, needles) for v in value]
    if isinstance(value, str):
        for needle in needles:
            value = re.sub(re.escape(needle), ERASED, value, flags=re.IGNORECASE)
        return value
    return value


def _anonymise_audit_trail(cur: Any, user_id: str, account: dict[str, Any]) -> int:
    """Rows about the person lose every personal reference and their details (which may carry free
    text about them, e.g. an admin's reason); rows where the person only acted on someone else (a
    review, a role change) or is only mentioned keep that other person's facts, with the person's
    id, email and name replaced. What happened and when stays (the trigger allows nothing else)."""
    needles = [user_id, account["email"]]
    if len((account["name"] or "").strip()) >= 3:  # a shorter "name" would match ordinary words
        needles.append(account["name"].strip())
    rows = repository.audit_rows_about(cur, user_id, account["email"])
    for row in rows:
        about_person = row["subject_id"] == user_id or (row["subject_id"] is None and row["actor_id"] == user_id)
        resource_id = row["resource_id"]
        if resource_id is not None and (about_person or user_id in resource_id):
            resource_id = None
        repository.anonymise_audit_row(
            cur,
            row["id"],
            clear_actor=row["actor_id"] == user_id,
            clear_subject=row["subject_id"] == user_id,
            # Where a request came from is the person's when they made it (or failed to log in).
            clear_origin=row["actor_id"] == user_id or (row["actor_id"] is None and row["subject_id"] == user_id),
            resource_id=resource_id,
            details={} if about_person else _scrub(row["details"], needles),
        )
    return len(rows)


def erase_rows(deps: PurgeDeps, request: Request) -> None:
    with db.transaction() as cur:
        if repository.lock_database_step(cur, request.id) is None:
            raise StepFailed("the request is no longer in progress")
        account = repository.account(request.user_id)
        if account is None:
            raise StepFailed("the account row is missing")
        ref = request.subject_ref
        repository.allow_audit_anonymisation(cur)
        payments = repository.anonymise_payments(cur, request.user_id, account["email"], ref)
        refunds = repository.anonymise_refund_requests(cur, request.user_id, payments)
        consents = repository.delete_consents(cur, request.user_id, payments)
        audited = _anonymise_audit_trail(cur, request.user_id, account)
        earlier = repository.delete_other_requests(cur, request.user_id, request.id)
        exports = repository.delete_exports(cur, request.user_id)
        repository.complete(cur, request.id, "database")
        repository.delete_user(cur, request.user_id)
        # The register of personal data selects each table's rows about a person: none may be left.
        left = {
            table.name: count
            for table in register.TABLES
            if table.selector and table.purge is not register.Purge.NOT_PERSONAL
            and (count := repository.rows_left(cur, table.name, table.selector, request.user_id, account["email"]))
        }  # fmt: skip
        if left:
            raise StepFailed(f"rows about the person are left after the erasure: {left}")
        record(
            cur,
            AuditAction.ACCOUNT_PURGED,
            resource_type="deletion_request",
            resource_id=request.id,
            details={"subject_ref": ref, "payments_kept": len(payments), "refund_requests_kept": refunds},
        )
    logger.info(
        "purge erased rows",
        extra={
            "deletion_request": request.id,
            "counts": json.dumps(
                {"payments": len(payments), "refunds": refunds, "consents": consents, "audit_rows": audited,
                 "earlier_requests": earlier, "exports": exports}
            ),
        },
    )  # fmt: skip


STEP_RUNNERS: dict[str, Callable[[PurgeDeps, Request], None]] = {
    "deprovision": deprovision,
    "files": delete_files,
    "parameters": delete_parameters,
    "identity": delete_identity,
    "database": erase_rows,
}
