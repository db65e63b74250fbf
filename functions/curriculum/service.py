"""Curriculum use cases.

Every student route first passes the learning gate (``apranova.learning.learner``: 402
``payment_required`` unless enrolled with a track, 403 ``consent_required`` unless the policies in
force are accepted), then reads or writes only the caller's own rows of their own track: the user id
comes from the verified token, and a project of another track is a 404 like an unknown one.

Students never write a project's status beyond the one transition that is theirs — starting an
unlocked project (UNLOCKED → IN_PROGRESS). Unlocks, submission and review states are derived by
``apranova.learning.recompute`` elsewhere (docs/principles.md §8 rule 4). A locked project is visible read-only:
its detail shows its steps and deliverables, and every action on it is 403 ``project_locked``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from apranova import audit, db
from apranova.audit import RequestInfo
from apranova.errors import Conflict, Forbidden, NotFound
from apranova.identity import Caller
from apranova.learning import Learner, learner, progress_percent
from functions.curriculum import repository
from functions.curriculum.models import (
    DatasetLink,
    MyCurrentProject,
    MyProgress,
    MyTrack,
    Project,
    ProjectDetail,
    ProjectList,
    ProjectState,
    StepState,
    Track,
    TrackList,
)

# A student may tick steps off while working on a project and while it is being reviewed.
STARTED = ("IN_PROGRESS", "SUBMITTED", "CHANGES_REQUESTED")

Presign = Callable[[str, str], tuple[str, int]]  # (key, filename) → (url, expires_in)


def list_tracks(fetch: Callable[[], list[dict[str, Any]]] = repository.active_tracks) -> TrackList:
    return TrackList(items=[Track.model_validate(row) for row in fetch()])


# --- reads -------------------------------------------------------------------------------------------


def _gate(caller: Caller) -> tuple[Any, Learner]:
    conn = db.connection()
    return conn, learner(conn, caller.user_id)


def percent(done: int, total: int) -> int:
    """Rounded down, so 100 means all of it."""
    return done * 100 // total if total else 0


def _status(value: str | None) -> str:
    return (value or "LOCKED").lower()


def _project(row: dict[str, Any]) -> Project:
    return Project(
        id=row["id"],
        number=row["number"],
        title=row["title"],
        subtitle=row["subtitle"],
        estimated_hours=row["estimated_hours"],
        status=_status(row["status"]),
        progress_percent=progress_percent(row["status"], row["steps_done"], row["steps_total"]),
    )


def _track_projects(caller: Caller) -> list[dict[str, Any]]:
    conn, me = _gate(caller)
    rows = repository.track_projects(conn, me.user_id)
    if not rows:  # the account changed between the gate and this read
        raise NotFound("No track found for this account.")
    return rows


def my_track(caller: Caller) -> MyTrack:
    rows = _track_projects(caller)
    first = rows[0]
    return MyTrack(
        code=first["code"],
        name=first["name"],
        description=first["description"],
        icon=first["icon"],
        weeks=first["weeks"],
        enrollment_status=first["enrollment_status"],
        enrolled_at=first["enrolled_at"],
        completed_at=first["completed_at"] if first["enrollment_status"] == "COMPLETED" else None,
        projects=[_project(row) for row in rows if row["id"] is not None],
    )


def projects(caller: Caller) -> ProjectList:
    return ProjectList(items=[_project(row) for row in _track_projects(caller) if row["id"] is not None])


def my_progress(caller: Caller) -> MyProgress:
    rows = _track_projects(caller)
    first = rows[0]
    items = [row for row in rows if row["id"] is not None]
    steps_done = sum(row["steps_done"] for row in items)
    steps_total = sum(row["steps_total"] for row in items)
    approved = sum(1 for row in items if row["status"] == "APPROVED")
    current = next((row for row in items if row["status"] not in ("LOCKED", "APPROVED")), None)
    completed = first["enrollment_status"] == "COMPLETED"
    return MyProgress(
        track=first["code"],
        enrollment_status=first["enrollment_status"],
        steps_completed=steps_done,
        steps_total=steps_total,
        steps_percent=percent(steps_done, steps_total),
        projects_approved=approved,
        projects_total=len(items),
        projects_percent=percent(approved, len(items)),
        current_project=None
        if current is None
        else MyCurrentProject(
            id=current["id"],
            number=current["number"],
            title=current["title"],
            status=_status(current["status"]),
            progress_percent=progress_percent(current["status"], current["steps_done"], current["steps_total"]),
        ),
        completed=completed,
        completed_at=first["completed_at"] if completed else None,
    )


def project_detail(caller: Caller, project_id: int) -> ProjectDetail:
    conn, me = _gate(caller)
    row = repository.project_detail(conn, me.user_id, me.track_id, project_id)
    if row is None:
        raise NotFound("No such project in your track.")
    required = [step for step in row["steps"] if not step["is_optional"]]
    return ProjectDetail.model_validate(
        {
            **row,
            "status": _status(row["status"]),
            "progress_percent": progress_percent(
                row["status"], sum(1 for step in required if step["completed"]), len(required)
            ),
        }
    )


def dataset(caller: Caller, project_id: int, presign: Presign) -> DatasetLink:
    conn, me = _gate(caller)
    state = _state(conn, me, project_id)
    _require_unlocked(state)
    if state["dataset_key"] is None:
        raise NotFound("This project has no dataset.", code="no_dataset")
    filename = state["dataset_key"].rsplit("/", 1)[-1]
    url, expires_in = presign(state["dataset_key"], filename)
    return DatasetLink(url=url, expires_in=expires_in, filename=filename)


# --- actions -----------------------------------------------------------------------------------------


def _state(cur: Any, me: Learner, project_id: int, step_id: int | None = None) -> dict[str, Any]:
    state = repository.project_state(cur, me.user_id, me.track_id, project_id, step_id)
    if state is None:
        raise NotFound("No such project in your track.")
    return state


def _require_unlocked(state: dict[str, Any]) -> None:
    if state["status"] in (None, "LOCKED"):
        raise Forbidden(
            "This project is locked: it unlocks when the previous project is approved.", code="project_locked"
        )


def start(caller: Caller, project_id: int, info: RequestInfo) -> ProjectState:
    """UNLOCKED → IN_PROGRESS (audited). A project already started is answered as it is."""
    with db.transaction() as cur:
        me = learner(cur, caller.user_id)
        started = repository.start_project(cur, me.user_id, me.track_id, project_id)
        if started is not None:
            audit.record(
                cur,
                "PROJECT_STARTED",
                actor=caller,
                subject_id=me.user_id,
                resource_type="project",
                resource_id=str(project_id),
                details={"from": "UNLOCKED", "to": "IN_PROGRESS", "track": me.track},
                ip_address=info.ip_address,
                user_agent=info.user_agent,
                request_id=info.request_id,
            )
            return ProjectState.model_validate({**started, "status": "in_progress"})
        state = _state(cur, me, project_id)
        _require_unlocked(state)
        return ProjectState.model_validate({**state, "status": _status(state["status"])})


def set_step(caller: Caller, project_id: int, step_id: int, completed: bool) -> StepState:
    """Marks a step of a started project done (or not done). Idempotent both ways."""
    with db.transaction() as cur:
        me = learner(cur, caller.user_id)
        state = _state(cur, me, project_id, step_id)
        if state["step_id"] is None:
            raise NotFound("No such step in this project.")
        _require_unlocked(state)
        if state["status"] == "UNLOCKED":
            raise Conflict("Start the project before completing its steps.", code="project_not_started")
        if state["status"] not in STARTED:
            raise Conflict("This project is approved: its steps can no longer change.", code="project_closed")
        if completed:
            repository.complete_step(cur, me.user_id, project_id, step_id)
        else:
            repository.uncomplete_step(cur, me.user_id, project_id, step_id)
        after = repository.step_state(cur, me.user_id, project_id, step_id)
    return StepState(
        project_id=project_id,
        step_id=step_id,
        completed=after["completed_at"] is not None,
        completed_at=after["completed_at"],
        progress_percent=percent(after["steps_done"], after["steps_total"]),
    )
