"""Submission use cases: the presigned upload form, submitting a deliverable (a new attempt each
time), and the student's own submissions.

Every route first passes the learner gate (enrolled, policies accepted: ``apranova.learning``).
A deliverable is submitted only when it belongs to the student's track (else 404) and its project
is started and not approved (locked → 403 ``project_locked``; unlocked → 409
``project_not_started``; approved → 409 ``project_approved``). The content is checked by type
before anything is written: LINK an http(s) URL; GITHUB a repository on github.com pinned to a
commit (given, or resolved through GitHub now); TEXT 1..50,000 characters; FILE an object this
student uploaded for this deliverable, within its size limit and of an accepted type.

Content a trainer already sent back (changes requested) is refused unchanged: 409
``unchanged_resubmission`` for the same repository and commit, the same text (ignoring surrounding
blanks) or the same file (the same key, or an upload with the same size and ETag, i.e. the same
bytes). A LINK may be sent again: what is behind a URL can change.

The attempt is written in one transaction: the project's progress row and the latest live attempt
are locked, the pending attempt (if any) becomes SUPERSEDED and the new one takes its number (a
replacement before review is not a new try), otherwise the new one is numbered latest + 1; the
project's status is re-derived (``learning.recompute``) and the audit row is written.
Emails go after the commit. A student never writes status, feedback or reviewers: the
request model has no such fields, and only the derivation changes the project's status.

Dependencies are passed in: ``s3`` (a boto3 S3 client), ``resolve_commit`` (GitHub), ``send`` (an
email sender).
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from apranova import db, mail
from apranova.audit import RequestInfo
from apranova.errors import BadGateway, Conflict, Forbidden, NotFound, ValidationFailed
from apranova.fields import is_uuid
from apranova.identity import Caller
from apranova.learning import Learner, learner, recompute
from apranova.observability import logger
from apranova.pagination import Page, build_page, parse_limit, timestamp_uuid_keyset
from apranova.vocabulary import deliverable_uploads_prefix
from functions.submissions import github, repository
from functions.submissions.config import MAX_UPLOAD_BYTES, SubmissionSettings
from functions.submissions.models import SubmissionCreate, UploadUrlRequest

STARTED = ("IN_PROGRESS", "SUBMITTED", "CHANGES_REQUESTED")
# The request fields that carry content, and the deliverable types each belongs to.
CONTENT_FIELDS = {
    "submission_url": ("LINK", "GITHUB"),
    "commit_sha": ("GITHUB",),
    "submission_text": ("TEXT",),
    "file_key": ("FILE",),
}
REQUIRED_FIELD = {"LINK": "submission_url", "GITHUB": "submission_url", "TEXT": "submission_text", "FILE": "file_key"}

GITHUB_HOSTS = ("github.com", "www.github.com")
GITHUB_OWNER = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$")
GITHUB_REPO = re.compile(r"^[A-Za-z0-9._-]{1,100}$")
# First path segments of github.com that are pages, not accounts.
GITHUB_RESERVED = frozenset(
    {
        "about", "account", "apps", "codespaces", "collections", "contact", "customer-stories", "dashboard",
        "enterprise", "events", "explore", "features", "gist", "gists", "issues", "login", "logout",
        "marketplace", "new", "notifications", "orgs", "organizations", "pricing", "pulls", "search",
        "security", "settings", "site", "sponsors", "topics", "trending", "users",
    }
)  # fmt: skip
REF = re.compile(r"^[A-Za-z0-9._/-]{1,255}$")
FILENAME_CHARS = re.compile(r"[^A-Za-z0-9._-]+")
MAX_FILENAME = 120

Send = Callable[[mail.Email], Any]
ResolveCommit = Callable[[str, str, str], str]


def invalid(field: str, code: str, message: str) -> ValidationFailed:
    return ValidationFailed(message, code=code, details=[{"field": f"body.{field}", "code": code, "message": message}])


def _send_quietly(send: Send, email: mail.Email) -> None:
    """An email that fails is logged, never undoes the submission it reports."""
    try:
        send(email)
    except Exception:  # noqa: BLE001
        logger.exception("email not sent", extra={"subject": email.subject})


# --- the deliverable and its project ---------------------------------------------------------------


def check_project(status: str | None) -> None:
    """Submitting needs a started project that is not approved yet."""
    if status is None or status == "LOCKED":
        raise Forbidden("This project is locked: approve the previous project first.", code="project_locked")
    if status == "UNLOCKED":
        raise Conflict("Start this project before submitting to it.", code="project_not_started")
    if status == "APPROVED":
        raise Conflict("This project is already approved.", code="project_approved")


def _approved_deliverable() -> Conflict:
    return Conflict("This deliverable is already approved.", code="deliverable_approved")


def _target(student: Learner, deliverable_id: int) -> dict[str, Any]:
    row = repository.target(student.user_id, student.track_id, deliverable_id)
    if row is None:
        raise NotFound("No deliverable with this id in your track.")
    check_project(row["project_status"])
    if row["latest_status"] == "APPROVED":
        raise _approved_deliverable()
    return row


def upload_limit(target: dict[str, Any]) -> int:
    return min(MAX_UPLOAD_BYTES, int(target["max_file_bytes"] or MAX_UPLOAD_BYTES))


# --- the upload form -------------------------------------------------------------------------------


def safe_filename(name: str) -> str:
    """The file's base name reduced to ``[A-Za-z0-9._-]``, at most 120 characters, extension kept."""
    base = re.split(r"[\\/]", name)[-1]
    ascii_name = unicodedata.normalize("NFKD", base).encode("ascii", "ignore").decode()
    cleaned = FILENAME_CHARS.sub("_", ascii_name).strip("._-")
    if not cleaned:
        return "file"
    if len(cleaned) > MAX_FILENAME:
        stem, dot, extension = cleaned.rpartition(".")
        if dot and 0 < len(extension) <= 16:
            cleaned = f"{stem[: MAX_FILENAME - len(extension) - 1]}.{extension}"
        else:
            cleaned = cleaned[:MAX_FILENAME]
    return cleaned


def key_prefix(user_id: str, deliverable_id: int) -> str:
    return deliverable_uploads_prefix(user_id, deliverable_id)


def upload_url(caller: Caller, request: UploadUrlRequest, config: SubmissionSettings, s3: Any) -> dict[str, Any]:
    student = learner(db.connection(), caller.user_id)
    target = _target(student, request.deliverable_id)
    if target["deliverable_type"] != "FILE":
        raise invalid(
            "deliverable_id", "not_a_file_deliverable", f"This deliverable takes a {target['deliverable_type']}."
        )
    accepted = list(target["accepted_content_types"])
    if request.content_type not in accepted:
        raise ValidationFailed(
            f"This deliverable accepts {', '.join(accepted)}.",
            code="content_type_not_accepted",
            details=[{"field": "body.content_type", "code": "content_type_not_accepted", "accepted": accepted}],
        )
    limit = upload_limit(target)
    if request.size > limit:
        raise ValidationFailed(
            f"The file is larger than this deliverable's limit of {limit} bytes.",
            code="file_too_large",
            details=[{"field": "body.size", "code": "file_too_large", "max_bytes": limit}],
        )
    key = f"{key_prefix(student.user_id, target['deliverable_id'])}{uuid.uuid4()}/{safe_filename(request.filename)}"
    # boto3 adds the exact bucket and key conditions; the type and size are ours.
    form = s3.generate_presigned_post(
        Bucket=config.uploads_bucket,
        Key=key,
        Fields={"Content-Type": request.content_type},
        Conditions=[{"Content-Type": request.content_type}, ["content-length-range", 1, limit]],
        ExpiresIn=config.upload_url_expires_seconds,
    )
    return {"url": form["url"], "fields": form["fields"], "key": key, "expires_in": config.upload_url_expires_seconds}


# --- content checks, by deliverable type -----------------------------------------------------------


def check_link(value: str, field: str = "submission_url") -> str:
    """An absolute http(s) URL with a host and without credentials."""
    url = value.strip()
    if not url or any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        raise invalid(field, "invalid_url", "Give an http(s) URL without spaces.")
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        raise invalid(field, "invalid_url", "Only http and https URLs are accepted.")
    try:
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        raise invalid(field, "invalid_url", "The URL's port is not valid.") from None
    if "@" in parts.netloc:
        raise invalid(field, "invalid_url", "A URL with a user name or password is not accepted.")
    if not parts.hostname:
        raise invalid(field, "invalid_url", "The URL has no host.")
    return url


@dataclass(frozen=True)
class Repository:
    owner: str
    name: str
    ref: str | None

    @property
    def url(self) -> str:
        return f"https://github.com/{self.owner}/{self.name}"


def parse_github(value: str) -> Repository:
    """``https://github.com/<owner>/<repo>`` with an optional ``.git``, trailing slash or
    ``/tree/<ref>``; anything else (issues, pull requests, gists, files, other hosts) is refused."""
    url = check_link(value)
    parts = urlsplit(url)
    not_a_repository = invalid(
        "submission_url", "not_a_repository", "Give the URL of a GitHub repository: https://github.com/<owner>/<repo>."
    )
    if parts.scheme.lower() != "https" or (parts.hostname or "").lower() not in GITHUB_HOSTS:
        raise not_a_repository
    if parts.port not in (None, 443) or parts.query or parts.fragment:
        raise not_a_repository
    segments = parts.path.strip("/").split("/") if parts.path.strip("/") else []
    if len(segments) < 2 or "" in segments:
        raise not_a_repository
    owner, name, rest = segments[0], segments[1], segments[2:]
    if name.lower().endswith(".git") and not rest:
        name = name[:-4]
    if not GITHUB_OWNER.match(owner) or owner.lower() in GITHUB_RESERVED:
        raise not_a_repository
    if not GITHUB_REPO.match(name) or name in (".", "..") or name.lower().endswith(".git"):
        raise not_a_repository
    ref = None
    if rest:
        ref = "/".join(rest[1:])
        if rest[0] != "tree" or not ref or not REF.match(ref) or ".." in ref:
            raise not_a_repository
    return Repository(owner, name, ref)


def _github(request: SubmissionCreate, config: SubmissionSettings, resolve_commit: ResolveCommit) -> dict[str, Any]:
    repo = parse_github(request.submission_url or "")
    if request.commit_sha:
        return {"submission_url": repo.url, "commit_sha": request.commit_sha.lower()}
    try:
        sha = resolve_commit(repo.owner, repo.name, repo.ref or "HEAD")
    except github.RepositoryNotFound as error:
        if error.reason == "no_commit":
            raise invalid(
                "submission_url",
                "repository_has_no_commit",
                "GitHub has no commit at this repository's " + (f"ref {repo.ref!r}." if repo.ref else "head."),
            ) from None
        raise invalid(
            "submission_url", "repository_not_found", "GitHub has no public repository at this URL."
        ) from None
    except github.GitHubUnavailable:
        raise BadGateway("GitHub could not be reached to pin your commit; try again shortly.") from None
    return {"submission_url": repo.url, "commit_sha": sha}


def _text(request: SubmissionCreate) -> dict[str, Any]:
    text = request.submission_text or ""
    if not text.strip():
        raise invalid("submission_text", "blank_text", "The text must not be blank.")
    return {"submission_text": text}


def _file(student: Learner, target: dict[str, Any], key: str, config: SubmissionSettings, s3: Any) -> dict[str, Any]:
    if not key.startswith(key_prefix(student.user_id, target["deliverable_id"])):
        raise invalid("file_key", "file_not_yours", "This is not a file you uploaded for this deliverable.")
    # Imported here: botocore is loaded by the client this call uses, not at cold start for every route.
    from botocore.exceptions import ClientError

    try:
        head = s3.head_object(Bucket=config.uploads_bucket, Key=key)
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", ""))
        # S3 answers 403 instead of 404 for a missing key when the caller may not list that prefix;
        # the key is under the caller's own prefix (checked above), so either means "no such file".
        if code in ("404", "NoSuchKey", "NotFound", "403", "AccessDenied", "Forbidden"):
            raise invalid("file_key", "file_not_found", "No uploaded file has this key.") from None
        raise
    size = int(head.get("ContentLength") or 0)
    content_type = str(head.get("ContentType") or "").split(";")[0].strip().lower()
    limit = upload_limit(target)
    if size < 1:
        raise invalid("file_key", "file_empty", "The uploaded file is empty.")
    if size > limit:
        raise ValidationFailed(
            f"The file is larger than this deliverable's limit of {limit} bytes.",
            code="file_too_large",
            details=[{"field": "body.file_key", "code": "file_too_large", "max_bytes": limit}],
        )
    accepted = list(target["accepted_content_types"])
    if content_type not in accepted:
        raise ValidationFailed(
            f"This deliverable accepts {', '.join(accepted)}.",
            code="file_type_not_accepted",
            details=[{"field": "body.file_key", "code": "file_type_not_accepted", "accepted": accepted}],
        )
    return {"file_key": key, "file_size": size, "file_content_type": content_type}


def check_content(
    student: Learner,
    target: dict[str, Any],
    request: SubmissionCreate,
    config: SubmissionSettings,
    s3: Any,
    resolve_commit: ResolveCommit,
) -> dict[str, Any]:
    """The columns of the new attempt, once its content passes its type's checks."""
    kind = target["deliverable_type"]
    for field, kinds in CONTENT_FIELDS.items():
        if getattr(request, field) is not None and kind not in kinds:
            raise invalid(field, "field_not_allowed", f"A {kind} deliverable does not take {field}.")
    required = REQUIRED_FIELD[kind]
    if getattr(request, required) is None:
        raise invalid(required, "field_required", f"A {kind} deliverable needs {required}.")
    if kind == "LINK":
        return {"submission_url": check_link(request.submission_url or "")}
    if kind == "GITHUB":
        return _github(request, config, resolve_commit)
    if kind == "TEXT":
        return _text(request)
    return _file(student, target, request.file_key or "", config, s3)


# --- the same content again ------------------------------------------------------------------------


def _etag(s3: Any, bucket: str, key: str) -> tuple[str, int] | None:
    """The object's ETag and size, or None when it is gone (the retention sweep, an erasure)."""
    from botocore.exceptions import ClientError

    try:
        head = s3.head_object(Bucket=bucket, Key=key)
    except ClientError:
        return None
    return str(head.get("ETag") or ""), int(head.get("ContentLength") or 0)


def _same_content(
    kind: str, content: dict[str, Any], rejected: dict[str, Any], config: SubmissionSettings, s3: Any
) -> bool:
    if kind == "GITHUB":
        return (content["submission_url"], content["commit_sha"]) == (
            rejected["submission_url"],
            rejected["commit_sha"],
        )
    if kind == "TEXT":
        return content["submission_text"].strip() == (rejected["submission_text"] or "").strip()
    if kind == "FILE" and rejected["file_key"]:
        if content["file_key"] == rejected["file_key"]:
            return True
        if content["file_size"] != rejected["file_size"]:
            return False
        # A fresh upload of the same file has a new key: its bytes decide (a form upload is one part,
        # so its ETag is the MD5 of its content).
        before = _etag(s3, config.uploads_bucket, rejected["file_key"])
        now = _etag(s3, config.uploads_bucket, content["file_key"])
        return before is not None and before == now
    return False  # LINK: the page behind an unchanged URL may have changed


def refuse_unchanged(
    student: Learner, target: dict[str, Any], content: dict[str, Any], config: SubmissionSettings, s3: Any
) -> None:
    """409 ``unchanged_resubmission`` when ``content`` is what a trainer already sent back."""
    kind = target["deliverable_type"]
    if kind == "LINK":
        return
    for rejected in repository.rejected_attempts(student.user_id, target["deliverable_id"]):
        if _same_content(kind, content, rejected, config, s3):
            raise Conflict(
                f"Attempt {rejected['attempt']} with this same content was sent back with changes requested: "
                "make the changes, then submit again.",
                code="unchanged_resubmission",
                details=[{"submission_id": rejected["id"], "attempt": rejected["attempt"]}],
            )


# --- submitting ------------------------------------------------------------------------------------


def create_submission(
    caller: Caller,
    request: SubmissionCreate,
    config: SubmissionSettings,
    s3: Any,
    resolve_commit: ResolveCommit,
    send: Send,
    info: RequestInfo,
) -> dict[str, Any]:
    student = learner(db.connection(), caller.user_id)
    target = _target(student, request.deliverable_id)
    # Network checks (GitHub, S3) before the transaction: no row lock is held while they run.
    content = check_content(student, target, request, config, s3, resolve_commit)
    refuse_unchanged(student, target, content, config, s3)
    project_id, deliverable_id = target["project_id"], target["deliverable_id"]
    with db.transaction() as cur:
        check_project(repository.lock_progress(cur, student.user_id, project_id))
        latest = repository.lock_latest(cur, student.user_id, project_id, deliverable_id)
        if latest is not None and latest["status"] == "APPROVED":
            raise _approved_deliverable()
        superseded = None
        if latest is not None and latest["status"] == "PENDING":
            # Replaced before review: the same try, corrected (it keeps its number).
            superseded = repository.supersede_pending(cur, student.user_id, deliverable_id)
            attempt = latest["attempt"]
        else:
            attempt = (latest["attempt"] if latest else 0) + 1
        submission_id = repository.insert_submission(
            cur,
            student_id=student.user_id,
            project_id=project_id,
            deliverable_id=deliverable_id,
            attempt=attempt,
            **content,
        )
        change = recompute(cur, student.user_id, project_id)
        info.audit(
            cur,
            "SUBMISSION",
            actor=caller,
            subject_id=student.user_id,
            resource_type="submission",
            resource_id=submission_id,
            details={
                "deliverable_id": deliverable_id,
                "project_id": project_id,
                "deliverable_type": target["deliverable_type"],
                "attempt": attempt,
                "superseded_id": superseded,
                "project_status": {"before": change.before, "after": change.after},
            },
        )
        created = repository.submission_in(cur, student.user_id, submission_id)
        trainer = repository.trainer_of(cur, student.user_id)
    _send_quietly(send, received_by_student(student, target, created, config))
    if trainer is not None:
        _send_quietly(send, received_by_trainer(trainer, student, target, created, config))
    return {
        **with_file_name(created),
        "project_status": (change.after or change.before or "IN_PROGRESS").lower(),
        "superseded_id": superseded,
    }


# --- emails ----------------------------------------------------------------------------------------


def _one_line(text: str) -> str:
    return " ".join(text.split())


def received_by_student(
    student: Learner, target: dict[str, Any], submission: dict[str, Any], config: SubmissionSettings
) -> mail.Email:
    project_page = f"{config.spa_origin}/projects/{target['project_id']}"
    return mail.Email(
        to=(student.email,),
        subject=_one_line(f"We received your submission: {target['deliverable_title']}"),
        text=(
            f"Hello {mail.plain(student.name, 'there')},\n\n"
            f'We received attempt {submission["attempt"]} of "{target["deliverable_title"]}" for project '
            f"{target['project_number']}: {target['project_title']}. Your trainer will review it, and you will "
            "hear from us by email when they have.\n\n"
            f"Your project: {project_page}\n\n"
            "The ApraNova team"
        ),
        links=(project_page,),
    )


def received_by_trainer(
    trainer: dict[str, Any],
    student: Learner,
    target: dict[str, Any],
    submission: dict[str, Any],
    config: SubmissionSettings,
) -> mail.Email:
    # The student's display name is their own text: plain, on one line, never a link.
    who = mail.plain(student.name, student.email)
    queue = f"{config.spa_origin}/trainer/submissions"
    return mail.Email(
        to=(trainer["email"],),
        subject=_one_line(f"New submission to review from {who}"),
        text=(
            f"Hello {mail.plain(trainer.get('name'), 'there')},\n\n"
            f"{who} ({student.track}) submitted attempt {submission['attempt']} of "
            f'"{target["deliverable_title"]}" for project {target["project_number"]}: {target["project_title"]}.\n\n'
            f"Your review queue: {queue}\n\n"
            "The ApraNova team"
        ),
        links=(queue,),
    )


# --- reading ---------------------------------------------------------------------------------------


def with_file_name(row: dict[str, Any]) -> dict[str, Any]:
    key = row.get("file_key")
    return {**row, "file_name": key.rsplit("/", 1)[-1] if key else None}


def my_submissions(
    caller: Caller, deliverable_id: int | None, status: str | None, cursor: str | None, limit: str | None
) -> Page[dict[str, Any]]:
    student = learner(db.connection(), caller.user_id)
    size = parse_limit(limit)
    after = timestamp_uuid_keyset(cursor)
    rows = repository.submissions_of(
        student.user_id, deliverable_id=deliverable_id, status=status, after=after, limit=size
    )
    page = build_page(rows, size, lambda r: (r["submitted_at"].isoformat(), r["id"]))
    return Page[dict[str, Any]](items=[with_file_name(r) for r in page.items], next_cursor=page.next_cursor)


def submission(caller: Caller, submission_id: str, config: SubmissionSettings, s3: Any) -> dict[str, Any]:
    student = learner(db.connection(), caller.user_id)
    # Someone else's submission and no submission look the same: 404.
    row = repository.submission_of(student.user_id, submission_id) if is_uuid(submission_id) else None
    if row is None:
        raise NotFound("No submission with this id.")
    found = with_file_name(row)
    if found["file_key"]:
        found["download_url"] = s3.generate_presigned_url(
            "get_object",
            Params={
                "Bucket": config.uploads_bucket,
                "Key": found["file_key"],
                "ResponseContentDisposition": f'attachment; filename="{found["file_name"]}"',
                "ResponseContentType": found["file_content_type"],
            },
            ExpiresIn=config.download_url_expires_seconds,
        )
        found["download_expires_in"] = config.download_url_expires_seconds
    return found
