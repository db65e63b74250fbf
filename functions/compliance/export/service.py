"""The right of access (GDPR Art. 15): a person asks for a copy of their data, a worker builds it as a
ZIP in the KMS-encrypted exports bucket, and the person downloads it through short-lived links.

Requesting (route): at most one export per ``export_interval_hours`` (failed ones do not count),
else 429 with ``Retry-After`` and the time the next is allowed. The request row and its audit row
are committed first, then the worker is invoked asynchronously (``InvocationType=Event``); if that
invocation fails the request is marked FAILED (so it does not count) and the caller gets 503.

Downloading (route): the person's own export only (anyone else's id, or a malformed one: 404).
While READY, each call signs a new presigned GET valid for ``export_link_seconds`` (never past the
export's expiry); past ``expires_at`` the export is EXPIRED and no link is signed, whatever the
retention sweep has or has not deleted yet. Each link handed out is audited.

Building (worker): idempotent. A READY or EXPIRED export is not rebuilt; a second delivery of the
event while the first runs finds the build claimed; a delivery after a failure (Lambda's retry)
builds again unless the person has asked for a newer export. The person's rows come from the
register's selectors in one read-only snapshot; the archive is written to a temporary file and
uploaded with SSE-KMS; the row becomes READY with its size and expiry (audited) and the person is
emailed a link to the SPA, never the presigned URL. A failure marks the export FAILED with a short
error naming no one, alerts the operators and is raised again for Lambda's retry and DLQ.

Dependencies are passed in: boto3 clients, the email sender, the alert function.
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from psycopg import Cursor

from apranova import db, mail
from apranova.audit import RequestInfo
from apranova.errors import NotFound, ServiceUnavailable, TooManyRequests
from apranova.fields import is_uuid
from apranova.identity import Caller
from apranova.observability import logger
from apranova.pagination import Page, build_page, parse_limit, timestamp_uuid_keyset
from functions.compliance import register
from functions.compliance.export import repository
from functions.compliance.export.archive import FORMAT_VERSION, Archive, archive_path, json_value, readme
from functions.compliance.settings import ExportSettings, ExportWorkerSettings

DATA_EXPORT = "DATA_EXPORT"
RESOURCE = "data_export"

Send = Callable[[mail.Email], Any]
Alert = Callable[[str, dict[str, Any]], None]


def _answer(row: dict[str, Any], *, status: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "id": row["id"],
        "status": status or row["status"],
        "download_url": None,
        "expires_at": row.get("expires_at"),
        "requested_at": row.get("requested_at"),
        "completed_at": row.get("completed_at"),
        "size_bytes": row.get("size_bytes"),
        **extra,
    }


def _audit(
    cur: Cursor[Any],
    export_id: str,
    user_id: str,
    stage: str,
    *,
    info: RequestInfo | None = None,
    actor: Caller | None = None,
    **details: Any,
) -> None:
    """One DATA_EXPORT row per step of an export's life (requested, link_issued, ready, failed); the
    route's steps carry the caller and where the request came from, the worker's have neither."""
    (info or RequestInfo()).audit(
        cur,
        DATA_EXPORT,
        actor=actor,
        subject_id=user_id,
        resource_type=RESOURCE,
        resource_id=export_id,
        details={"export_id": export_id, "stage": stage, **details},
    )


# --- requesting an export --------------------------------------------------------------------------------


def request_export(caller: Caller, config: ExportSettings, lambda_client: Any, info: RequestInfo) -> dict[str, Any]:
    with db.transaction() as cur:
        repository.lock_person(cur, caller.user_id)
        if repository.account(cur, caller.user_id) is None:
            raise NotFound("No account for this sign-in.")
        blocking = repository.blocking_request(cur, caller.user_id, config.export_interval_hours)
        if blocking is not None:
            next_allowed = json_value(blocking["next_allowed_at"])
            wait = max(1, int(blocking["wait_seconds"]))
            raise TooManyRequests(
                f"You can ask for one export every {config.export_interval_hours} hours; the next is allowed at "
                f"{next_allowed}.",
                code="export_rate_limited",
                details=[{"next_allowed_at": next_allowed, "retry_after_seconds": wait, "export_id": blocking["id"]}],
                headers={"Retry-After": str(wait)},
            )
        # A build that never finished (its event lost) must not block the person for good.
        repository.fail_stale(cur, caller.user_id, config.export_interval_hours)
        created = repository.insert_request(cur, caller.user_id)
        _audit(cur, created["id"], caller.user_id, "requested", info=info, actor=caller)
    # Imported here: botocore is loaded by the client this call uses, not at cold start for every route.
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        lambda_client.invoke(
            FunctionName=config.export_function_name,
            InvocationType="Event",
            Payload=json.dumps({"export_id": created["id"]}).encode(),
        )
    except (ClientError, BotoCoreError) as error:
        logger.exception("export worker not invoked", extra={"export_id": created["id"]})
        with db.transaction() as cur:
            repository.mark_failed(cur, created["id"], f"the build could not be started ({type(error).__name__})")
        raise ServiceUnavailable(
            "The export could not be started; try again in a minute.", headers={"Retry-After": "60"}
        ) from None
    return _answer(created)


# --- reading one export ----------------------------------------------------------------------------------


def get_export(caller: Caller, export_id: str, config: ExportSettings, s3: Any, info: RequestInfo) -> dict[str, Any]:
    found = repository.export_of(caller.user_id, export_id) if is_uuid(export_id) else None
    if found is None:
        raise NotFound("No export with this id.")
    if found["expired"]:
        return _answer(found, status="EXPIRED")
    if found["status"] != "READY":
        return _answer(found)
    # Signed locally (no call to S3): each request gets its own link, never outliving the export.
    lifetime = max(1, min(config.export_link_seconds, int(found["seconds_left"])))
    filename = f"apranova-data-export-{found['completed_at']:%Y-%m-%d}.zip"
    url = s3.generate_presigned_url(
        "get_object",
        Params={
            "Bucket": config.exports_bucket,
            "Key": found["s3_key"],
            "ResponseContentDisposition": f'attachment; filename="{filename}"',
            "ResponseContentType": "application/zip",
        },
        ExpiresIn=lifetime,
    )
    with db.transaction() as cur:
        _audit(cur, found["id"], caller.user_id, "link_issued", info=info, actor=caller, link_seconds=lifetime)
    return _answer(found, download_url=str(url), download_expires_in=lifetime)


def list_exports(caller: Caller, cursor: str | None, limit: str | None) -> Page[dict[str, Any]]:
    """The caller's own exports, newest first, keyset-paged. No links here: an export's own route
    signs one (and audits it) when the person asks for that export. One SQL statement."""
    size = parse_limit(limit)
    rows = repository.exports_of(caller.user_id, timestamp_uuid_keyset(cursor), size + 1)
    page = build_page(rows, size, lambda r: (r["requested_at"].isoformat(), r["id"]))
    return Page[dict[str, Any]](
        items=[_answer(row, status="EXPIRED") if row["expired"] else _answer(row) for row in page.items],
        next_cursor=page.next_cursor,
    )


# --- building an export (the worker) ---------------------------------------------------------------------


@dataclass(frozen=True)
class WorkerDeps:
    config: ExportWorkerSettings
    s3: Any
    cognito: Any
    send: Send
    alert: Alert


class ExportFailed(RuntimeError):
    """The build failed at ``stage``; the message names no one (it is stored and alerted)."""

    def __init__(self, stage: str, cause: BaseException) -> None:
        super().__init__(f"export build failed at {stage} ({type(cause).__name__})")
        self.stage = stage


def build_export(export_id: str, deps: WorkerDeps) -> dict[str, Any]:
    """Builds the export ``export_id``; returns what happened (for the logs)."""
    if not is_uuid(export_id):
        logger.warning("export event without a valid id")
        return {"export_id": export_id, "outcome": "invalid_id"}
    found = repository.export_by_id(export_id)
    if found is None:  # the person was purged meanwhile (cascade): nothing to do
        return {"export_id": export_id, "outcome": "gone"}
    if found["status"] in ("READY", "EXPIRED"):
        return {"export_id": export_id, "outcome": "already_built"}
    if not repository.try_claim(export_id):
        return {"export_id": export_id, "outcome": "claimed_elsewhere"}
    try:
        if found["status"] == "FAILED" and not repository.reopen_failed(export_id):
            return {"export_id": export_id, "outcome": "superseded"}
        return _build(found, deps)
    finally:
        repository.release(export_id)


def _build(export: dict[str, Any], deps: WorkerDeps) -> dict[str, Any]:
    export_id, user_id = export["id"], export["user_id"]
    stage = "start"
    try:
        stage = "account"
        person = repository.person(user_id)
        if person is None:
            return {"export_id": export_id, "outcome": "gone"}
        stage = "cognito"
        cognito = cognito_record(deps.cognito, deps.config.cognito_user_pool_id, person["email"], user_id)
        stage = "files"
        files = uploaded_files(deps.s3, deps.config.uploads_bucket, user_id)
        with tempfile.TemporaryFile(prefix="export-") as target:
            archive = Archive(target)
            stage = "database"
            generated_at = dt.datetime.now(dt.UTC)
            counts = _write_data(archive, export_id, user_id, person["email"], generated_at, cognito, files)
            stage = "files"
            for item in files:
                body = deps.s3.get_object(Bucket=deps.config.uploads_bucket, Key=item["key"])["Body"]
                try:
                    archive.write_file(item["path"], body)
                finally:
                    body.close()
            archive.write_text("README.md", readme(export_id, generated_at, counts))
            archive.close()
            size = target.tell()
            target.seek(0)
            stage = "upload"
            key = register.export_key(user_id, export_id)
            deps.s3.upload_fileobj(target, deps.config.exports_bucket, key, ExtraArgs=_encryption(deps.config))
        stage = "record"
        with db.transaction() as cur:
            ready = repository.mark_ready(cur, export_id, key, size, deps.config.export_valid_days)
            if ready is not None:
                _audit(cur, export_id, user_id, "ready", size_bytes=size, files=len(files))
        if ready is None:  # the person (or the request) went away, or the purge began: leave no archive
            deps.s3.delete_object(Bucket=deps.config.exports_bucket, Key=key)
            return {"export_id": export_id, "outcome": "gone"}
    except Exception as error:
        failure = ExportFailed(stage, error)
        logger.exception("export build failed", extra={"export_id": export_id, "stage": stage})
        _record_failure(export_id, user_id, str(failure))
        deps.alert("Data export failed", {"export_id": export_id, "stage": stage, "error": type(error).__name__})
        raise failure from error
    _email_ready(deps, person, ready)
    return {"export_id": export_id, "outcome": "ready", "size_bytes": size, "files": len(files), "counts": counts}


def _encryption(config: ExportWorkerSettings) -> dict[str, str]:
    extra = {"ServerSideEncryption": "aws:kms", "ContentType": "application/zip"}
    if config.exports_kms_key_id:
        extra["SSEKMSKeyId"] = config.exports_kms_key_id
    return extra


def _write_data(
    archive: Archive,
    export_id: str,
    user_id: str,
    email: str,
    generated_at: dt.datetime,
    cognito: dict[str, Any],
    files: list[dict[str, Any]],
) -> dict[str, int]:
    conn = db.connection()
    with conn.transaction(), conn.cursor() as cur:
        repository.snapshot(cur)

        def sections() -> Iterator[tuple[str, Any]]:
            yield "export", {"id": export_id, "user_id": user_id, "generated_at": generated_at,
                             "format_version": FORMAT_VERSION}  # fmt: skip
            for table in register.exported_tables():
                yield table.name, repository.rows_of(conn, table, user_id, email)
            yield "cognito", [cognito]
            yield "files", [{k: v for k, v in item.items() if k != "body"} for item in files]

        counts = archive.write_data(sections())
    counts.pop("export", None)
    return counts


def _record_failure(export_id: str, user_id: str, error: str) -> None:
    try:
        with db.transaction() as cur:
            if repository.mark_failed(cur, export_id, error) is not None:
                _audit(cur, export_id, user_id, "failed")
    except Exception:  # noqa: BLE001 - the failure itself is raised by the caller; the row stays PENDING
        logger.exception("export failure not recorded", extra={"export_id": export_id})


def cognito_record(cognito: Any, pool_id: str, email: str, user_id: str) -> dict[str, Any]:
    """The person's Cognito user: attributes, state and groups. Looked up by email (the pool's sign-in
    alias) and only kept when its ``sub`` is the person's id."""
    # Imported here: botocore is loaded by the client this call uses, not at cold start for every route.
    from botocore.exceptions import ClientError

    user = None
    for username in (email, user_id):
        try:
            candidate = cognito.admin_get_user(UserPoolId=pool_id, Username=username)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "UserNotFoundException":
                raise
            continue
        attributes = {a["Name"]: a["Value"] for a in candidate.get("UserAttributes", [])}
        if attributes.get("sub") == user_id:
            user = (candidate, attributes)
            break
    if user is None:
        return {"found": False}
    found, attributes = user
    groups = cognito.admin_list_groups_for_user(UserPoolId=pool_id, Username=found["Username"]).get("Groups", [])
    return {
        "found": True,
        "username": found["Username"],
        "attributes": attributes,
        "user_status": found.get("UserStatus"),
        "enabled": found.get("Enabled"),
        "created_at": found.get("UserCreateDate"),
        "modified_at": found.get("UserLastModifiedDate"),
        "mfa": found.get("UserMFASettingList", []),
        "groups": sorted(g["GroupName"] for g in groups),
    }


def uploaded_files(s3: Any, bucket: str, user_id: str) -> list[dict[str, Any]]:
    """Every object under the person's uploads prefix (submitted or not)."""
    files = []
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=register.uploads_prefix(user_id)):
        for item in page.get("Contents", []):
            files.append(
                {
                    "key": item["Key"],
                    "path": archive_path(user_id, item["Key"]),
                    "size_bytes": item["Size"],
                    "last_modified": item["LastModified"],
                }
            )
    return files


def ready_email(person: dict[str, Any], ready: dict[str, Any], page: str) -> mail.Email:
    """The export is ready: a link to the account page where it is downloaded, never the file's own
    (presigned) link."""
    expires = ready["expires_at"].astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return mail.Email(
        to=(person["email"],),
        subject="Your ApraNova data export is ready",
        text=(
            f"Hello {mail.plain(person['name'], 'there')},\n\n"
            "The copy of your data you asked for is ready. Download it from your account page (sign in "
            f"first): {page}\n\n"
            f"It can be downloaded until {expires}; after that it is deleted and you can ask for a new one.\n\n"
            "If you did not ask for this export, change your password and contact us.\n\n"
            "The ApraNova team"
        ),
        links=(page,),
    )


def _email_ready(deps: WorkerDeps, person: dict[str, Any], ready: dict[str, Any]) -> None:
    """After the commit; a failed email is logged and alerted, never undoes the export (the SPA page
    shows it either way)."""
    page = f"{deps.config.spa_origin}{deps.config.export_page_path}"
    email = ready_email(person, ready, page)
    try:
        deps.send(email)
    except Exception:  # noqa: BLE001
        logger.exception("export email not sent", extra={"export_id": ready["id"]})
        deps.alert("Data export email not sent", {"export_id": ready["id"]})
