"""Trainer use cases: the assigned students and their progress, the review queue, and the review.

A trainer sees and reviews only the students assigned to them (trainer_assignments); an admin sees
and reviews everyone (docs/principles.md §8 rule 4). A review writes the decision, re-derives the project's
status with ``apranova.learning.recompute`` (which unlocks the next project or completes the track)
and records the audit row, all in one transaction; the emails go out after the commit.

The detail of one submission carries a short-lived presigned GET of its file (FILE deliverables):
each link issued is audited (SUBMISSION_FILE_VIEWED), without the link itself (a bearer URL).

Dependencies are passed in: ``send`` sends an email; ``presign`` signs a download of an uploaded file.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from apranova import db, learning, mail
from apranova.audit import AuditAction, RequestInfo
from apranova.errors import Conflict, NotFound, ValidationFailed
from apranova.fields import canonical_uuid
from apranova.identity import Caller
from apranova.observability import logger
from apranova.pagination import Page, build_page, parse_limit, timestamp_uuid_keyset
from functions.trainer import emails, repository
from functions.trainer.models import ReviewRequest

Send = Callable[[mail.Email], Any]
# (key, filename, content type, inline) → (url, expires_in)
Presign = Callable[[str, str, str | None, bool], tuple[str, int]]

# Shown inside the review page (served inline): types a browser renders without running the file's
# own script. SVG and HTML are not among them: they stay downloads.
INLINE_TYPES = frozenset({"application/pdf", "image/png", "image/jpeg", "image/gif", "image/webp"})

DECISIONS = {"approve": "APPROVED", "request_changes": "CHANGES_REQUESTED"}


def _scope(caller: Caller) -> str | None:
    """The trainer whose students the caller sees, or None for all of them (admins)."""
    return None if caller.is_admin else caller.user_id


def _unknown(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(message, details=[{"field": f"query.{field}", "code": "unknown_value", "message": message}])


def _percent(part: int, whole: int) -> int:
    return part * 100 // whole if whole else 0


# --- students ------------------------------------------------------------------------------------------


def _student(row: dict[str, Any]) -> dict[str, Any]:
    current = None
    if row["current_project_id"] is not None:
        current = {
            "id": row["current_project_id"],
            "number": row["current_project_number"],
            "title": row["current_project_title"],
            "status": row["current_project_status"].lower(),
        }
    return {
        "id": row["id"],
        "email": row["email"],
        "name": row["name"],
        "track": row["track"],
        "enrollment_status": row["enrollment_status"],
        "enrolled_at": row["enrolled_at"],
        "completed_at": row["completed_at"],
        "trainer_id": row["trainer_id"],
        "assigned_at": row["assigned_at"],
        "current_project": current,
        "progress": {
            "steps_completed": row["steps_completed"],
            "steps_total": row["steps_total"],
            "steps_percent": _percent(row["steps_completed"], row["steps_total"]),
            "projects_approved": row["projects_approved"],
            "projects_total": row["projects_total"],
            "projects_percent": _percent(row["projects_approved"], row["projects_total"]),
        },
        "last_submission_at": row["last_submission_at"],
        "last_activity_at": max(
            (at for at in (row["last_submission_at"], row["last_step_at"], row["enrolled_at"]) if at is not None),
            default=None,
        ),
        "waiting_submissions": row["waiting_submissions"],
        "sort_at": row["sort_at"],
    }


def students(caller: Caller, track: str | None, cursor: str | None, limit: str | None) -> Page[dict[str, Any]]:
    """The caller's assigned students (admins: every student with a track), oldest assignment (or
    account) first, with their progress and what waits for review. One SQL statement, two with
    ``track`` (an unknown track is 422)."""
    size = parse_limit(limit)
    after = timestamp_uuid_keyset(cursor)
    if track and not repository.queue_filters(track, None)["track_exists"]:
        raise _unknown("track", f"No track {track}.")
    rows = repository.students(_scope(caller), track, after, size + 1)
    return build_page([_student(row) for row in rows], size, lambda s: (s["sort_at"].isoformat(), s["id"]))


# --- the review queue --------------------------------------------------------------------------------


def queue(
    caller: Caller,
    status: str | None,
    cursor: str | None,
    limit: str | None,
    *,
    track: str | None = None,
    project: str | None = None,
) -> Page[dict[str, Any]]:
    """Submissions of the caller's students (admins: all) in one status, PENDING unless asked,
    oldest first, with how long each waited; optionally of one track and/or one project (unknown
    ones, or a project outside the track, are 422). One SQL statement, two with a filter."""
    size = parse_limit(limit)
    after = timestamp_uuid_keyset(cursor)
    project_id = int(project) if project else None
    track_projects = None
    if track or project_id is not None:
        named = repository.queue_filters(track, project_id)
        if track and not named["track_exists"]:
            raise _unknown("track", f"No track {track}.")
        if project_id is not None and named["project_track"] is None:
            raise _unknown("project", f"No project {project_id}.")
        if track and project_id is not None and named["project_track"] != track:
            raise _unknown("project", f"Project {project_id} is not a project of track {track}.")
        track_projects = list(named["track_projects"]) if track else None
    rows = repository.queue(
        _scope(caller), status or "PENDING", after, size + 1, project=project_id, track_projects=track_projects
    )
    return build_page(rows, size, lambda r: (r["submitted_at"].isoformat(), r["id"]))


# --- one submission ----------------------------------------------------------------------------------


def _file_name(key: str | None) -> str | None:
    return key.rsplit("/", 1)[-1] if key else None


def submission(caller: Caller, submission_id: str, presign: Presign, info: RequestInfo | None = None) -> dict[str, Any]:
    """One of the caller's students' submissions (admins: any) with the earlier attempts at the same
    deliverable and, for a file, a short-lived download link (audited). 404 for an unknown id and for
    another trainer's student alike."""
    submission_id = canonical_uuid(submission_id) or ""
    row = repository.submission_detail(submission_id) if submission_id else None
    if row is None or not (caller.is_admin or row["trainer_id"] == caller.user_id):
        raise _not_found()
    found = {key: value for key, value in row.items() if key not in ("trainer_id", "earlier_attempts")}
    found["file_name"] = _file_name(row["file_key"])
    found["earlier_attempts"] = [
        {**{k: v for k, v in attempt.items() if k != "file_key"}, "file_name": _file_name(attempt["file_key"])}
        for attempt in row["earlier_attempts"]
    ]
    found["file_url"] = found["file_url_expires_in"] = found["file_view_url"] = None
    if row["file_key"]:
        url, expires_in = presign(row["file_key"], found["file_name"], row["file_content_type"], False)
        inline = row["file_content_type"] in INLINE_TYPES
        if inline:
            found["file_view_url"] = presign(row["file_key"], found["file_name"], row["file_content_type"], True)[0]
        with db.transaction() as cur:
            (info or RequestInfo()).audit(
                cur,
                AuditAction.SUBMISSION_FILE_VIEWED,
                actor=caller,
                subject_id=row["student_id"],
                resource_type="submission",
                resource_id=submission_id,
                details={
                    "deliverable_id": row["deliverable_id"],
                    "attempt": row["attempt"],
                    "file_key": row["file_key"],
                    "expires_in": expires_in,
                    "inline": inline,
                },
            )
        found["file_url"], found["file_url_expires_in"] = url, expires_in
    return found


# --- the review ------------------------------------------------------------------------------------


def _not_found() -> NotFound:
    # The same answer for an unknown id and another trainer's student: ids are not probed.
    return NotFound("No submission with this id among your students.")


def review(
    reviewer: Caller,
    submission_id: str,
    request: ReviewRequest,
    send: Send,
    spa_origin: str,
    info: RequestInfo | None = None,
) -> dict[str, Any]:
    """Decides a PENDING submission: 404 unless it is one of the reviewer's students' (admins: any),
    409 ``not_reviewable`` when it was superseded or already decided."""
    submission_id = canonical_uuid(submission_id) or ""  # one spelling in the audit row and the email
    if not submission_id:
        raise _not_found()
    status = DECISIONS[request.decision]
    with db.transaction() as cur:
        owner = repository.submission_owner(cur, submission_id)
        if owner is None or not (reviewer.is_admin or owner["trainer_id"] == reviewer.user_id):
            raise _not_found()
        repository.lock_progress(cur, owner["student_id"], owner["project_id"])
        submission = repository.submission_for_update(cur, submission_id)
        if submission is None:
            raise _not_found()
        if submission["status"] != "PENDING":
            reason = "was superseded by a newer attempt" if submission["status"] == "SUPERSEDED" else "is decided"
            raise Conflict(
                f"This submission {reason} ({submission['status']}); only a pending attempt can be reviewed.",
                code="not_reviewable",
            )
        decided = repository.decide(cur, submission_id, status, request.feedback, reviewer.user_id)
        change = learning.recompute(cur, decided["student_id"], decided["project_id"])
        project = repository.project(cur, decided["project_id"])
        unlocked = repository.project(cur, change.unlocked_project_id) if change.unlocked_project_id else None
        (info or RequestInfo()).audit(
            cur,
            AuditAction.REVIEW,
            actor=reviewer,
            subject_id=decided["student_id"],
            resource_type="submission",
            resource_id=submission_id,
            details={
                "decision": request.decision,
                "status": status,
                "submission_id": submission_id,
                "project_id": decided["project_id"],
                "deliverable_id": decided["deliverable_id"],
                "attempt": decided["attempt"],
                "project_status": change.after,
                "unlocked_project_id": change.unlocked_project_id,
                "track_completed": change.track_completed,
            },
        )
    message = {**submission, **decided}
    _send_quietly(send, emails.review_result(message, spa_origin))
    if unlocked is not None:
        _send_quietly(send, emails.project_unlocked(message, unlocked, spa_origin))
    if change.track_completed and project is not None:
        _send_quietly(send, emails.track_completed(message, project, spa_origin))
    return {
        **decided,
        "project_status": (change.after or "LOCKED").lower(),
        "unlocked_project_id": change.unlocked_project_id,
        "unlocked_project_number": unlocked["number"] if unlocked else None,
        "unlocked_project_title": unlocked["title"] if unlocked else None,
        "track_completed": change.track_completed,
    }


def _send_quietly(send: Send, email: mail.Email) -> None:
    """An email that fails is logged; it never undoes the review it reports."""
    try:
        send(email)
    except Exception:  # noqa: BLE001
        logger.exception("email not sent", extra={"subject": email.subject})
