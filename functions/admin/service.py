"""Admin use cases. The Cognito group (the role in the token) and ``users.role`` change together."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from apranova import audit, db
from apranova.errors import Conflict, NotFound, ValidationFailed
from apranova.identity import Caller
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
