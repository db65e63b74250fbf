"""UnlockFirstProject: project 1 of the track is unlocked and the enrollment's provisioning is
recorded as done (the student can start)."""

from __future__ import annotations

from typing import Any

from apranova import audit, db
from apranova.audit import AuditAction
from apranova.observability import entry
from functions.provision import workflow_repository as repository
from functions.provision.errors import InvalidInput
from functions.provision.steps import enrollment_input


@entry
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    state = enrollment_input(event)
    project = repository.first_project(state.track)
    if project is None:
        raise InvalidInput(f"track {state.track} has no projects")
    with db.transaction() as cur:
        if repository.unlock_project(cur, state.user_id, project["id"]):
            audit.record(
                cur,
                "PROJECT_UNLOCKED",
                subject_id=state.user_id,
                resource_type="project",
                resource_id=str(project["id"]),
                details={"number": project["number"], "track": state.track, "by": "enrollment"},
            )
        if repository.finish_provisioning(cur, state.user_id):
            # The tools are recorded as provisioned (once per run: a retried step finds it done).
            audit.record(
                cur,
                AuditAction.PROVISIONING,
                subject_id=state.user_id,
                resource_type="user",
                resource_id=state.user_id,
                details={
                    "status": "SUCCEEDED",
                    "track": state.track,
                    "source": state.source,
                    "tools": repository.provisioned_tools(cur, state.user_id),
                },
            )
    return {**event, "first_project": {"id": project["id"], "number": project["number"], "title": project["title"]}}
