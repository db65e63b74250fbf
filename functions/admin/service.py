"""Admin use cases. The Cognito group (the role in the token) and ``users.role`` change together."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from apranova import audit, db
from apranova.errors import Conflict, NotFound, ValidationFailed
from apranova.identity import Caller
from apranova.pagination import Page, build_page, decode_cursor, parse_limit
from functions.admin import repository
from functions.admin.models import RoleChange, RoleChanged

# start(execution name, input): starts the enrollment state machine.
StartWorkflow = Callable[[str, dict[str, Any]], Any]


def change_role(
    actor: Caller,
    user_id: str,
    request: RoleChange,
    move_groups: Callable[[str, str], None],
    request_id: str | None = None,
) -> RoleChanged:
    """``move_groups(username, role)`` puts the Cognito user in the role's group only.

    The groups move last, inside the transaction: if Cognito refuses, the row is not changed.
    """
    try:
        UUID(user_id)
    except ValueError:
        raise NotFound("No such user.") from None
    with db.transaction() as cur:
        user = repository.lock_user(cur, user_id)
        if user is None:
            raise NotFound("No such user.")
        if user["role"] == "admin" and request.role != "admin":
            admins = repository.lock_admins(cur)
            if admins == [user_id]:
                raise Conflict("The last admin cannot give up the admin role.", code="last_admin")
        repository.set_role(cur, user_id, request.role)
        audit.record(
            cur,
            "ROLE_CHANGE",
            actor=actor,
            subject_id=user_id,
            resource_type="user",
            resource_id=user_id,
            details={"from": user["role"], "to": request.role},
            request_id=request_id,
        )
        move_groups(user["email"], request.role)
    return RoleChanged(id=user_id, email=user["email"], role=request.role, previous_role=user["role"])


# --- manual enrollment and re-provisioning -------------------------------------------------------


def _execution_suffix() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")


def enroll(
    actor: Caller, user_id: str, track: str, reason: str, start: StartWorkflow, request_id: str | None = None
) -> dict[str, Any]:
    """Enrolls a student without payment by running the same enrollment workflow (audited)."""
    _check_uuid(user_id)
    with db.transaction() as cur:
        user = repository.lock_enrollment(cur, user_id)
        if user is None:
            raise NotFound("No such user.")
        if user["role"] != "student":
            raise Conflict(f"Only students can be enrolled; this user is a {user['role']}.", code="not_a_student")
        active = repository.track_is_active(cur, track)
        if active is None:
            raise ValidationFailed(
                f"Track {track!r} is unknown.",
                details=[{"field": "body.track", "code": "unknown_track", "message": "unknown"}],
            )
        if user["enrollment_status"] in ("ENROLLED", "COMPLETED"):
            raise Conflict(f"The student is already enrolled in {user['track']}.", code="already_enrolled")
        if user["provisioning_status"] == "IN_PROGRESS":
            raise Conflict("An enrollment is already running for this student.", code="enrollment_in_progress")
        name = f"enroll-admin-{user_id}-{_execution_suffix()}"
        repository.mark_provisioning_started(cur, user_id)
        audit.record(
            cur,
            "ENROLLMENT",
            actor=actor,
            subject_id=user_id,
            resource_type="user",
            resource_id=user_id,
            details={"step": "manual_enrollment_requested", "track": track, "reason": reason, "execution": name},
            request_id=request_id,
        )
        # Inside the transaction: if the start fails, nothing is recorded.
        start(name, {"user_id": user_id, "track": track, "payment_id": None, "source": "admin", "reason": reason})
    return {"user_id": user_id, "track": track, "workflow": "enrollment", "execution": name, "status": "STARTED"}


def reprovision(actor: Caller, user_id: str, start: StartWorkflow, request_id: str | None = None) -> dict[str, Any]:
    """Runs the enrollment workflow again for an enrolled student (after a failure; safe to repeat)."""
    _check_uuid(user_id)
    with db.transaction() as cur:
        user = repository.lock_enrollment(cur, user_id)
        if user is None:
            raise NotFound("No such user.")
        if user["enrollment_status"] not in ("ENROLLED", "COMPLETED") or not user["track"]:
            raise Conflict("Only an enrolled student's tools can be provisioned again.", code="not_enrolled")
        if user["provisioning_status"] == "IN_PROGRESS":
            raise Conflict("Provisioning is already running for this student.", code="enrollment_in_progress")
        name = f"reprovision-{user_id}-{_execution_suffix()}"
        repository.mark_provisioning_started(cur, user_id)
        audit.record(
            cur,
            "REPROVISION_REQUESTED",
            actor=actor,
            subject_id=user_id,
            resource_type="user",
            resource_id=user_id,
            details={"track": user["track"], "execution": name, "previous_status": user["provisioning_status"]},
            request_id=request_id,
        )
        start(name, {"user_id": user_id, "track": user["track"], "payment_id": None, "source": "reprovision"})
    return {
        "user_id": user_id,
        "track": user["track"],
        "workflow": "enrollment",
        "execution": name,
        "status": "STARTED",
    }


def _check_uuid(user_id: str) -> None:
    try:
        UUID(user_id)
    except ValueError:
        raise NotFound("No such user.") from None


# --- users, trainer assignment, submissions and stats --------------------------------------------


def users(
    role: str | None,
    track: str | None,
    status: str | None,
    q: str | None,
    cursor: str | None,
    limit: str | None,
) -> Page[dict[str, Any]]:
    size = parse_limit(limit)
    rows = repository.users(role, track, status, q, decode_cursor(cursor, 2), size)
    return build_page(rows, size, lambda r: (r["created_at"].isoformat(), r["id"]))


def user_detail(user_id: str) -> dict[str, Any]:
    """Profile, payments summary, progress per project, assigned trainer and tools, from one snapshot."""
    _check_uuid(user_id)
    with db.transaction() as cur:
        repository.read_only_snapshot(cur)
        profile = repository.profile(cur, user_id)
        if profile is None:
            raise NotFound("No such user.")
        track_id = profile.pop("track_id")
        is_student = profile["role"] == "student"
        return {
            "profile": profile,
            "payments": repository.payments_summary(cur, user_id),
            "progress": repository.progress(cur, user_id, track_id) if is_student and track_id is not None else [],
            "trainer": repository.assigned_trainer(cur, user_id) if is_student else None,
            "tools": repository.tools(cur, user_id),
        }


def assign_trainer(actor: Caller, student_id: str, trainer_id: str, request_id: str | None = None) -> dict[str, Any]:
    """Assigns (or moves) an enrolled student to an active trainer of their track (audited).

    An admin's choice overrides the trainer's capacity and "accepting students" switch, which only
    steer the automatic assignment of the enrollment workflow.
    """
    _check_uuid(student_id)
    trainer_id = str(UUID(trainer_id))  # the request model checked the form; one spelling for comparisons
    with db.transaction() as cur:
        student = repository.lock_student(cur, student_id)
        if student is None:
            raise NotFound("No such user.")
        if student["role"] != "student":
            raise Conflict(f"Only students have trainers; this user is a {student['role']}.", code="not_a_student")
        if student["enrollment_status"] not in ("ENROLLED", "COMPLETED") or student["track"] is None:
            raise Conflict("The student is not enrolled in a track.", code="not_enrolled")
        trainer = repository.trainer_candidate(cur, trainer_id)
        problem = _trainer_problem(trainer, student["track_id"])
        if problem:
            raise ValidationFailed(
                problem[1], details=[{"field": "body.trainer_id", "code": problem[0], "message": problem[1]}]
            )
        current = repository.current_assignment(cur, student_id)
        previous = current["trainer_id"] if current else None
        if current is not None and previous == trainer_id and current["track"] == student["track"]:
            return _assigned(student_id, trainer_id, student["track"], current, previous, changed=False)
        written = repository.upsert_assignment(cur, student_id, trainer_id, student["track"], actor.user_id)
        audit.record(
            cur,
            "TRAINER_ASSIGNED",
            actor=actor,
            subject_id=student_id,
            resource_type="trainer_assignment",
            resource_id=student_id,
            details={"from": previous, "to": trainer_id, "track": student["track"]},
            request_id=request_id,
        )
    return _assigned(student_id, trainer_id, student["track"], written, previous, changed=True)


def _trainer_problem(trainer: dict[str, Any] | None, track_id: int) -> tuple[str, str] | None:
    if trainer is None:
        return "unknown_trainer", "No such trainer."
    if trainer["role"] != "trainer":
        return "not_a_trainer", "This user is not a trainer."
    if not trainer["is_active"]:
        return "trainer_inactive", "This trainer is not active."
    if trainer["track_id"] != track_id:
        return "other_track", "This trainer does not teach the student's track."
    return None


def _assigned(
    student_id: str, trainer_id: str, track: str, row: dict[str, Any], previous: str | None, *, changed: bool
) -> dict[str, Any]:
    return {
        "student_id": student_id,
        "trainer_id": trainer_id,
        "track": track,
        "assigned_at": row["assigned_at"],
        "assigned_by": row["assigned_by"],
        "previous_trainer_id": previous,
        "changed": changed,
    }


def submissions(
    status: str | None, track: str | None, trainer_id: str | None, cursor: str | None, limit: str | None
) -> Page[dict[str, Any]]:
    size = parse_limit(limit)
    rows = repository.submissions(status, track, trainer_id, decode_cursor(cursor, 2), size)
    return build_page(rows, size, lambda r: (r["submitted_at"].isoformat(), r["id"]))


def stats() -> dict[str, Any]:
    with db.transaction() as cur:
        repository.read_only_snapshot(cur)
        queue = repository.queue(cur)
        return {
            "enrollments": repository.enrollments(cur),
            "revenue": repository.revenue(cur),
            "review_turnaround": repository.review_turnaround(cur),
            **queue,
        }
