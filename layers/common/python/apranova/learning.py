"""What the student-facing curriculum and submissions routes and the trainer's review share: who may
learn (an enrolled student who accepted the policies in force) and how a project's status follows
from its submissions.

A project's status is *derived* from facts — the project was unlocked, started, and the latest
live attempt of each required deliverable — never written from a request (docs/principles.md §8 rule 4). The
derivation runs inside the writer's transaction, with the student's progress row locked.

One status model (docs/decisions.md, "One status model"): a project is ``submitted`` when every
required deliverable has a live submission (pending or approved), ``approved`` when every required
deliverable is approved, ``changes_requested`` while a required deliverable's latest attempt was
sent back, and ``in_progress`` otherwise once started. A deliverable's *latest* attempt is its live
(not superseded) attempt with the highest number (migration 0017).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from psycopg import Cursor

from apranova.errors import Forbidden, PaymentRequired
from apranova.vocabulary import LEARNING_STATUSES, consent_current_sql

LEARNING = LEARNING_STATUSES


@dataclass(frozen=True)
class Learner:
    user_id: str
    email: str
    name: str
    track: str
    track_id: int
    enrollment_status: str


# One statement: the account, its track, and whether its latest consent is to the versions in force.
_LEARNER = f"""
SELECT u.id::text AS user_id, u.email::text AS email, u.name, u.enrollment_status, u.role,
       t.code AS track, t.id AS track_id,
       privacy_version_in_force() AS privacy_version,
       terms_version_in_force() AS terms_version,
       {consent_current_sql("u.id")} AS consent_current
FROM users u LEFT JOIN tracks t ON t.id = u.track_id
WHERE u.id = %s AND u.deleted_at IS NULL
"""  # noqa: S608 - the fragment is a constant (apranova/vocabulary.py), the id a parameter


def learner(cur: Any, user_id: str) -> Learner:
    """The caller as a learner, or 402 ``payment_required`` / 403 ``consent_required``.

    ``cur`` is a cursor or a connection (anything with ``execute``).
    """
    row = cur.execute(_LEARNER, (user_id,)).fetchone()
    if row is None or row["enrollment_status"] not in LEARNING or row["track"] is None:
        raise PaymentRequired("Enroll in a track to use the curriculum.", code="payment_required")
    if not row["consent_current"]:
        raise Forbidden(
            "Accept the current privacy policy and terms to continue.",
            code="consent_required",
            details=[{"privacy_version": row["privacy_version"], "terms_version": row["terms_version"]}],
        )
    return Learner(
        user_id=row["user_id"],
        email=row["email"],
        name=row["name"],
        track=row["track"],
        track_id=row["track_id"],
        enrollment_status=row["enrollment_status"],
    )


# --- project status ----------------------------------------------------------------------------------


@dataclass
class ProjectChange:
    """What a recomputation changed (for audit rows and emails)."""

    project_id: int
    before: str | None
    after: str | None
    unlocked_project_id: int | None = None
    track_completed: bool = False
    events: list[str] = field(default_factory=list)


_REQUIRED_LATEST = """
SELECT d.id AS deliverable_id, latest.status
FROM deliverables d
LEFT JOIN LATERAL (
    SELECT s.status FROM submissions s
    WHERE s.student_id = %(student)s AND s.deliverable_id = d.id AND s.status <> 'SUPERSEDED'
    ORDER BY s.attempt DESC LIMIT 1
) latest ON true
WHERE d.project_id = %(project)s AND d.is_required AND d.is_active
"""


LIVE = ("PENDING", "APPROVED")


def derive_status(current: str, latest: list[str | None]) -> str:
    """The project's status from the latest attempt of each required deliverable (None: none yet)."""
    if current in ("LOCKED", "UNLOCKED") and not any(latest):
        return current
    if latest and all(status == "APPROVED" for status in latest):
        return "APPROVED"
    # Submitted means all of it is in: one deliverable of three submitted is still work in progress.
    if latest and all(status in LIVE for status in latest):
        return "SUBMITTED"
    if any(status == "CHANGES_REQUESTED" for status in latest):
        return "CHANGES_REQUESTED"
    return "IN_PROGRESS" if current != "UNLOCKED" or any(latest) else current


def progress_percent(status: str | None, steps_done: int, steps_total: int) -> int:
    """A project's progress as the student and their trainer see it: the required steps ticked off,
    rounded down (100 means all of them), except that an approved project is 100 — the trainer's
    approval of every required deliverable completes the project, whatever is left unticked."""
    if (status or "").upper() == "APPROVED":
        return 100
    return steps_done * 100 // steps_total if steps_total else 0


def recompute(cur: Cursor[Any], student_id: str, project_id: int) -> ProjectChange:
    """Derives and stores the project's status; approving it unlocks the next project, or completes
    the track after the last one. Idempotent: a second call changes nothing."""
    row = cur.execute(
        "SELECT status FROM student_progress WHERE student_id = %s AND project_id = %s FOR UPDATE",
        (student_id, project_id),
    ).fetchone()
    if row is None:
        return ProjectChange(project_id, None, None)
    before = row["status"]
    latest = [r["status"] for r in cur.execute(_REQUIRED_LATEST, {"student": student_id, "project": project_id})]
    after = derive_status(before, latest)
    change = ProjectChange(project_id, before, after)
    if after != before:
        cur.execute(
            """
            UPDATE student_progress SET status = %(status)s,
                submitted_at = CASE WHEN %(status)s = 'SUBMITTED' THEN now() ELSE submitted_at END,
                approved_at = CASE WHEN %(status)s = 'APPROVED' THEN now() ELSE approved_at END,
                started_at = coalesce(started_at, CASE WHEN %(status)s <> 'UNLOCKED' THEN now() END)
            WHERE student_id = %(student)s AND project_id = %(project)s
            """,
            {"status": after, "student": student_id, "project": project_id},
        )
        change.events.append(f"project_{after.lower()}")
    if after == "APPROVED":
        _after_approval(cur, student_id, project_id, change)
    return change


def _after_approval(cur: Cursor[Any], student_id: str, project_id: int, change: ProjectChange) -> None:
    following = cur.execute(
        """
        SELECT n.id FROM projects p JOIN projects n ON n.track_id = p.track_id AND n.number > p.number AND n.is_active
        WHERE p.id = %s ORDER BY n.number LIMIT 1
        """,
        (project_id,),
    ).fetchone()
    if following is not None:
        unlocked = cur.execute(
            """
            INSERT INTO student_progress (student_id, project_id, status, unlocked_at)
            VALUES (%s, %s, 'UNLOCKED', now())
            ON CONFLICT (student_id, project_id) DO NOTHING RETURNING project_id
            """,
            (student_id, following["id"]),
        ).fetchone()
        if unlocked is not None:
            change.unlocked_project_id = following["id"]
            change.events.append("project_unlocked")
        return
    completed = cur.execute(
        """
        UPDATE users SET enrollment_status = 'COMPLETED', completed_at = coalesce(completed_at, now())
        WHERE id = %s AND enrollment_status = 'ENROLLED' RETURNING id
        """,
        (student_id,),
    ).fetchone()
    if completed is not None:
        change.track_completed = True
        change.events.append("track_completed")
