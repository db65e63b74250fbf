"""RecordDeprovisioned: every tool is taken back; the student no longer has a trainer seat."""

from __future__ import annotations

from typing import Any

from apranova import audit, db
from functions.provision import workflow_repository as repository
from functions.provision.steps import workflow_input


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    state = workflow_input(event)
    with db.transaction() as cur:
        repository.unassign_trainer(cur, state.user_id)
        if repository.finish_deprovisioning(cur, state.user_id):
            audit.record(
                cur,
                "TOOLS_DEPROVISIONED",
                subject_id=state.user_id,
                resource_type="user",
                resource_id=state.user_id,
                details={"track": state.track, "source": state.source, "payment_id": state.payment_id},
            )
    return event
