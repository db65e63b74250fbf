"""AssignTrainer: the least-loaded active trainer of the track under capacity; none → the student
stays unassigned and the admins are alerted (enrollment goes on)."""

from __future__ import annotations

from functools import cache
from typing import Any

from apranova import alerts, audit, db
from apranova.observability import entry
from apranova.settings import BaseSettings, load
from functions.provision import workflow_repository as repository
from functions.provision.steps import enrollment_input


class TrainerSettings(BaseSettings):
    trainer_capacity: int = 30  # students per trainer unless the trainer's profile says otherwise


@cache
def settings() -> TrainerSettings:
    return load(TrainerSettings)


@entry
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    state = enrollment_input(event)
    with db.transaction() as cur:
        current = repository.current_trainer(cur, state.user_id)
        if current is not None and current["track"] == state.track:
            return {**event, "trainer_id": current["trainer_id"]}
        repository.lock_track_assignments(cur, state.track)
        if current is not None:  # assigned for another track before (a re-enrollment): move
            repository.unassign_trainer(cur, state.user_id)
        trainer = repository.least_loaded_trainer(cur, state.track, settings().trainer_capacity)
        if trainer is not None:
            repository.assign_trainer(cur, state.user_id, trainer["id"], state.track)
            audit.record(
                cur,
                "TRAINER_ASSIGNED",
                subject_id=state.user_id,
                resource_type="trainer_assignment",
                resource_id=state.user_id,
                details={"trainer_id": trainer["id"], "track": state.track, "load_before": trainer["load"]},
            )
    if trainer is None:
        alerts.alert(
            "No trainer available: a student is unassigned",
            {"user_id": state.user_id, "track": state.track, "capacity": settings().trainer_capacity},
        )
        return {**event, "trainer_id": None}
    return {**event, "trainer_id": trainer["id"]}
