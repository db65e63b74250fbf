"""Admin use cases. The Cognito group (the role in the token) and ``users.role`` change together."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from apranova import db, retention_bounds
from apranova.audit import AuditAction, RequestInfo
from apranova.errors import Conflict, NotFound, ValidationFailed
from apranova.fields import canonical_uuid
from apranova.identity import Caller
from apranova.pagination import Page, build_page, parse_limit, timestamp_id_keyset, timestamp_uuid_keyset
from apranova.workflow_inputs import EnrollmentInput
from functions.admin import repository
from functions.admin.models import PolicyPublication, RetentionChange, RoleChange, RoleChanged

# start(execution name, input): starts the enrollment state machine.
StartWorkflow = Callable[[str, EnrollmentInput], Any]  # (execution name, the enrollment's input contract)


def change_role(
    actor: Caller,
    user_id: str,
    request: RoleChange,
    move_groups: Callable[[str, str], None],
    info: RequestInfo,
) -> RoleChanged:
    """``move_groups(username, role)`` puts the Cognito user in the role's group only.

    The groups move last, inside the transaction: if Cognito refuses, the row is not changed.
    """
    user_id = _user_id(user_id)  # one spelling: the last-admin check compares ids as text
    with db.transaction() as cur:
        user = repository.lock_user(cur, user_id)
        if user is None:
            raise NotFound("No such user.")
        if user["role"] == "admin" and request.role != "admin":
            admins = repository.lock_admins(cur)
            if admins == [user_id]:
                raise Conflict("The last admin cannot give up the admin role.", code="last_admin")
        repository.set_role(cur, user_id, request.role)
        info.audit(
            cur,
            AuditAction.ROLE_CHANGE,
            actor=actor,
            subject_id=user_id,
            resource_type="user",
            resource_id=user_id,
            details={"from": user["role"], "to": request.role},
        )
        move_groups(user["email"], request.role)
    return RoleChanged(id=user_id, email=user["email"], role=request.role, previous_role=user["role"])


# --- manual enrollment and re-provisioning -------------------------------------------------------


def _execution_suffix() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")


def enroll(
    actor: Caller, user_id: str, track: str, reason: str, start: StartWorkflow, info: RequestInfo
) -> dict[str, Any]:
    """Enrolls a student without payment by running the same enrollment workflow (audited ADMIN_ENROLL;
    the workflow's Enroll step writes the ENROLLMENT row when the student is enrolled)."""
    user_id = _user_id(user_id)
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
        info.audit(
            cur,
            AuditAction.ADMIN_ENROLL,
            actor=actor,
            subject_id=user_id,
            resource_type="user",
            resource_id=user_id,
            details={"track": track, "reason": reason, "execution": name},
        )
        # Inside the transaction: if the start fails, nothing is recorded.
        start(name, EnrollmentInput.by_admin(user_id, track))  # the reason is in the audit row
    return {"user_id": user_id, "track": track, "workflow": "enrollment", "execution": name, "status": "STARTED"}


def reprovision(actor: Caller, user_id: str, start: StartWorkflow, info: RequestInfo) -> dict[str, Any]:
    """Runs the enrollment workflow again for an enrolled student (after a failure; safe to repeat)."""
    user_id = _user_id(user_id)
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
        info.audit(
            cur,
            AuditAction.REPROVISION_REQUESTED,
            actor=actor,
            subject_id=user_id,
            resource_type="user",
            resource_id=user_id,
            details={"track": user["track"], "execution": name, "previous_status": user["provisioning_status"]},
        )
        start(name, EnrollmentInput.reprovision(user_id, user["track"]))
    return {
        "user_id": user_id,
        "track": user["track"],
        "workflow": "enrollment",
        "execution": name,
        "status": "STARTED",
    }


def _user_id(user_id: str) -> str:
    """The path's user id as we spell ids; any other spelling names no user (404)."""
    found = canonical_uuid(user_id)
    if found is None:
        raise NotFound("No such user.")
    return found


# --- users, trainer assignment, submissions and stats --------------------------------------------


def users(
    role: str | None,
    track: str | None,
    status: str | None,
    q: str | None,
    cursor: str | None,
    limit: str | None,
    provisioning: str | None = None,
) -> Page[dict[str, Any]]:
    size = parse_limit(limit)
    rows = repository.users(role, track, status, q, timestamp_uuid_keyset(cursor), size, provisioning)
    return build_page(rows, size, lambda r: (r["created_at"].isoformat(), r["id"]))


def user_detail(user_id: str) -> dict[str, Any]:
    """Profile, payments summary, progress per project, assigned trainer and tools, from one snapshot."""
    user_id = _user_id(user_id)
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


def assign_trainer(actor: Caller, student_id: str, trainer_id: str, info: RequestInfo) -> dict[str, Any]:
    """Assigns (or moves) an enrolled student to an active trainer of their track (audited).

    An admin's choice overrides the trainer's capacity and "accepting students" switch, which only
    steer the automatic assignment of the enrollment workflow.
    """
    student_id = _user_id(student_id)
    trainer_id = trainer_id.lower()  # the request model checked the form; one spelling for comparisons
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
        info.audit(
            cur,
            AuditAction.TRAINER_ASSIGNED,
            actor=actor,
            subject_id=student_id,
            resource_type="trainer_assignment",
            resource_id=student_id,
            details={"from": previous, "to": trainer_id, "track": student["track"]},
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
    rows = repository.submissions(status, track, trainer_id, timestamp_uuid_keyset(cursor), size)
    return build_page(rows, size, lambda r: (r["submitted_at"].isoformat(), r["id"]))


# The longest range each bucket may cover: a year of days, about three years of weeks.
MAX_RANGE_DAYS = {"day": 366, "week": 3 * 371}
DEFAULT_RANGE_DAYS = {"day": 30, "week": 26 * 7}


def _date(value: str | None, name: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        message = "A calendar date, YYYY-MM-DD."
        raise ValidationFailed(
            f"{name} is not a date.", details=[{"field": f"query.{name}", "code": "invalid_date", "message": message}]
        ) from None


def stats_window(start: str | None, end: str | None, bucket: str | None, today: date) -> dict[str, Any]:
    """The days ``from``..``to`` (both included, UTC) and the bucket: defaults to the last 30 days by
    day (26 weeks by week) up to today; ``from`` after ``to`` or a range longer than the bucket
    allows is 422."""
    size = bucket or "day"
    last = _date(end, "to") or today
    first = _date(start, "from") or last - timedelta(days=DEFAULT_RANGE_DAYS[size] - 1)
    if first > last:
        raise ValidationFailed(
            "from is after to.",
            details=[{"field": "query.from", "code": "after_to", "message": "from must be on or before to"}],
        )
    days = (last - first).days + 1
    if days > MAX_RANGE_DAYS[size]:
        message = f"At most {MAX_RANGE_DAYS[size]} days by {size}; use a wider bucket or a shorter range."
        raise ValidationFailed(
            f"The range is {days} days. {message}",
            details=[{"field": "query.to", "code": "range_too_long", "message": message}],
        )
    return {"first": first, "last": last, "bucket": size}


def _buckets(first: date, last: date, bucket: str) -> list[date]:
    """Every bucket's first day from the one holding ``first`` to the one holding ``last``."""
    step = timedelta(days=7 if bucket == "week" else 1)
    at = first - timedelta(days=first.weekday()) if bucket == "week" else first
    found = []
    while at <= last:
        found.append(at)
        at += step
    return found


def stats(start: str | None = None, end: str | None = None, bucket: str | None = None) -> dict[str, Any]:
    """The platform's totals and, when a range or bucket is asked (``?from&to&bucket``), its time
    series: revenue and enrollments per track, provisioning outcomes, review turnaround and waiting,
    refunds. One snapshot; each series one index-backed statement."""
    asked = any(value is not None for value in (start, end, bucket))
    window = stats_window(start, end, bucket, datetime.now(UTC).date()) if asked else None
    with db.transaction() as cur:
        repository.read_only_snapshot(cur)
        found: dict[str, Any] = {**repository.totals(cur), "series": None}
        if window is not None:
            params = {
                "start": datetime.combine(window["first"], time.min, UTC),
                "end": datetime.combine(window["last"] + timedelta(days=1), time.min, UTC),
                "bucket": window["bucket"],
            }
            found["series"] = {
                "from": window["first"],
                "to": window["last"],
                "bucket": window["bucket"],
                "buckets": _buckets(window["first"], window["last"], window["bucket"]),
                "revenue": repository.revenue_series(cur, params),
                "enrollments": repository.enrollment_series(cur, params),
                "provisioning": repository.provisioning_series(cur, params),
                "reviews": repository.review_series(cur, params),
                "waiting": repository.waiting_series(cur, params),
                "refunds": repository.refund_series(cur, params),
            }
        return found


# --- policies (issue 7) ---------------------------------------------------------------------------

# A publication "effective now" may carry the admin's clock, a little behind the database's.
PAST_TOLERANCE = timedelta(minutes=5)
# How far ahead a version may be scheduled: versions go forward only, so one scheduled too far (a typo
# in the year) would block every later publication of its kind for as long.
MAX_SCHEDULE_AHEAD_DAYS = 366


def version_key(version: str) -> tuple[int, ...]:
    """Dotted numbers compared as numbers; trailing zeros do not count (1.0 is 1)."""
    parts = [int(part) for part in version.split(".")]
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


def publish_policy(actor: Caller, request: PolicyPublication, info: RequestInfo) -> dict[str, Any]:
    """Publishes a privacy policy or terms version (audited POLICY_PUBLISHED).

    Versions go forward only: higher than every existing version of the kind (same number: 409
    ``version_exists``; lower: 409 ``version_not_newer``) and effective no earlier than any of them
    (409 ``effective_before_latest``), so the version in force (latest effective_at passed) is always
    the highest one that has taken effect. ``effective_at`` may not be in the past: up to 5 minutes
    behind the database's clock (the admin's clock skew) it means "now" and is stored as now; more
    is 422. Nor more than ``MAX_SCHEDULE_AHEAD_DAYS`` ahead (422 ``too_far_ahead``).
    """
    kind = request.kind
    with db.transaction() as cur:
        repository.lock_policies(cur, kind)
        now = repository.database_now(cur)
        if request.effective_at < now - PAST_TOLERANCE:
            raise ValidationFailed(
                "effective_at is in the past: a version takes effect now or later.",
                details=[{"field": "body.effective_at", "code": "in_the_past", "message": f"now is {now.isoformat()}"}],
            )
        latest_allowed = now + timedelta(days=MAX_SCHEDULE_AHEAD_DAYS)
        if request.effective_at > latest_allowed:
            raise ValidationFailed(
                f"effective_at is too far ahead: a version may be scheduled at most {MAX_SCHEDULE_AHEAD_DAYS} days "
                "after now.",
                details=[
                    {
                        "field": "body.effective_at",
                        "code": "too_far_ahead",
                        "message": f"at most {MAX_SCHEDULE_AHEAD_DAYS} days after now ({latest_allowed.isoformat()})",
                        "max_days_ahead": MAX_SCHEDULE_AHEAD_DAYS,
                    }
                ],
            )
        effective_at = max(request.effective_at, now)
        existing = repository.policy_versions(cur, kind)
        key = version_key(request.version)
        same = [row["version"] for row in existing if version_key(row["version"]) == key]
        if same:
            raise Conflict(
                f"Version {same[0]} is already published.",
                code="version_exists",
                details=[{"field": "body.version", "existing": same[0]}],
            )
        if existing:
            latest = max(existing, key=lambda row: version_key(row["version"]))
            if key < version_key(latest["version"]):
                raise Conflict(
                    f"The version must be newer than {latest['version']}.",
                    code="version_not_newer",
                    details=[{"field": "body.version", "latest": latest["version"]}],
                )
            last_effective = max(row["effective_at"] for row in existing)
            if effective_at < last_effective:
                raise Conflict(
                    "A newer version cannot take effect before an older one.",
                    code="effective_before_latest",
                    details=[{"field": "body.effective_at", "latest_effective_at": last_effective.isoformat()}],
                )
        published = repository.insert_policy(
            cur,
            kind,
            version=request.version,
            content=request.content,
            summary=request.summary,
            effective_at=effective_at,
            published_by=actor.user_id,
        )
        info.audit(
            cur,
            AuditAction.POLICY_PUBLISHED,
            actor=actor,
            resource_type=repository.POLICY_TABLES[kind][2],
            resource_id=request.version,
            details={
                "kind": kind,
                "version": request.version,
                "effective_at": effective_at.isoformat(),
                "in_force": published["in_force"],
                "summary": request.summary[:500],
            },
        )
    return {"kind": kind, **published}


# --- the audit trail ------------------------------------------------------------------------------


def audit_logs(filters: dict[str, Any], cursor: str | None, limit: str | None) -> Page[dict[str, Any]]:
    if filters.get("from") is not None and filters.get("to") is not None and filters["from"] >= filters["to"]:
        raise ValidationFailed(
            "from must be before to.",
            details=[{"field": "query.from", "code": "empty_range", "message": "from must be before to"}],
        )
    size = parse_limit(limit)
    rows = repository.audit_logs(filters, timestamp_id_keyset(cursor), size)
    return build_page(rows, size, lambda r: (r["occurred_at"].isoformat(), r["id"]))


# --- retention policies ---------------------------------------------------------------------------


def _outside_bounds(change: RetentionChange, index: int) -> dict[str, Any] | None:
    """The problem with a period outside the bounds the system needs (apranova.retention_bounds)."""
    low, high = retention_bounds.PERIOD_BOUNDS.get(change.resource_type, (None, None))
    field = f"body.{index}.retention_days"
    if low is not None and change.retention_days < low:
        message = f"{change.resource_type} must be kept at least {low} days"
        return {"field": field, "code": "below_minimum", "message": message, "minimum_days": low}
    if high is not None and change.retention_days > high:
        message = f"{change.resource_type} may be at most {high} days"
        return {"field": field, "code": "above_maximum", "message": message, "maximum_days": high}
    return None


def retention_policies() -> list[dict[str, Any]]:
    return repository.retention_policies()


def change_retention(actor: Caller, changes: list[RetentionChange], info: RequestInfo) -> list[dict[str, Any]]:
    """Applies every change or none (422 naming each problem): unknown resource types, duplicates,
    and a legal-requirement policy below its legal minimum. Each policy changed is audited
    RETENTION_POLICY_CHANGED; a change to the current values writes nothing."""
    if not changes:
        raise ValidationFailed(
            "Send at least one retention policy change.",
            details=[{"field": "body", "code": "empty", "message": "at least one change"}],
        )
    problems: list[dict[str, Any]] = []
    seen: set[str] = set()
    for index, change in enumerate(changes):
        if change.resource_type in seen:
            problems.append({"field": f"body.{index}.resource_type", "code": "duplicate", "message": "listed twice"})
        seen.add(change.resource_type)
    with db.transaction() as cur:
        current = repository.lock_retention_policies(cur, sorted(seen))
        for index, change in enumerate(changes):
            row = current.get(change.resource_type)
            if row is None:
                problems.append(
                    {
                        "field": f"body.{index}.resource_type",
                        "code": "unknown_resource_type",
                        "message": f"no retention policy for {change.resource_type}",
                    }
                )
            # Any row's minimum (the table's CHECK holds them all), a legal requirement's above all.
            elif row["legal_minimum_days"] is not None and change.retention_days < row["legal_minimum_days"]:
                problems.append(
                    {
                        "field": f"body.{index}.retention_days",
                        "code": "below_legal_minimum",
                        "message": f"{change.resource_type} must be kept at least {row['legal_minimum_days']} days",
                        "legal_minimum_days": row["legal_minimum_days"],
                    }
                )
            elif problem := _outside_bounds(change, index):
                problems.append(problem)
        if problems:
            raise ValidationFailed("; ".join(p["message"] for p in problems).capitalize() + ".", details=problems)
        for change in changes:
            row = current[change.resource_type]
            is_active = row["is_active"] if change.is_active is None else change.is_active
            if (change.retention_days, is_active) == (row["retention_days"], row["is_active"]):
                continue
            repository.update_retention_policy(cur, change.resource_type, change.retention_days, is_active)
            info.audit(
                cur,
                AuditAction.RETENTION_POLICY_CHANGED,
                actor=actor,
                resource_type="data_retention_policy",
                resource_id=change.resource_type,
                details={
                    "from": {"retention_days": row["retention_days"], "is_active": row["is_active"]},
                    "to": {"retention_days": change.retention_days, "is_active": is_active},
                },
            )
        return repository.retention_policies(cur)
