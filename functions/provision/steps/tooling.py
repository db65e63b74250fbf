"""What every tool step does around its provisioner: the per-tool record, then provision or
deprovision, failures recorded before they are raised (by name) to the state machine."""

from __future__ import annotations

from typing import Any

from apranova.observability import logger
from functions.provision import workflow_repository as repository
from functions.provision.errors import InvalidInput, UserNotFound
from functions.provision.steps import workflow_input
from functions.provision.tools import Student
from functions.provision.tools.registry import provisioner


def _short(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"[:500]


def run(tool: str, event: dict[str, Any]) -> dict[str, Any]:
    state = workflow_input(event)
    action = event.get("action", "provision")
    user = repository.user(state.user_id)
    if action == "provision":
        if user is None:
            raise UserNotFound(f"user {state.user_id} does not exist")
        student = Student(user_id=state.user_id, email=user["email"], track=state.track)
        repository.record_tool(state.user_id, tool, status="IN_PROGRESS", attempt=True)
        try:
            result = provisioner(tool).provision(student)
        except Exception as error:  # noqa: BLE001 - recorded, then raised by name to the state machine
            repository.record_tool(state.user_id, tool, status="FAILED", error=_short(error))
            raise
        details = dict(result.details)
        repository.record_tool(
            state.user_id,
            tool,
            status="SUCCEEDED",
            external_id=details.pop("external_id", None),
            access_url=details.pop("access_url", None),
            details=details,
        )
        logger.info("tool provisioned", extra={"user_id": state.user_id, "tool": tool})
    elif action == "deprovision":
        # The user row may be gone already (an account purge deprovisions last).
        student = Student(user_id=state.user_id, email=user["email"] if user else "", track=state.track)
        if user is not None:
            repository.record_tool(state.user_id, tool, status="DEPROVISIONING", attempt=True)
        try:
            provisioner(tool).deprovision(student)
        except Exception as error:  # noqa: BLE001 - recorded, then raised by name to the state machine
            if user is not None:
                repository.record_tool(state.user_id, tool, status="FAILED", error=_short(error))
            raise
        if user is not None:
            repository.record_tool(state.user_id, tool, status="DEPROVISIONED")
        logger.info("tool deprovisioned", extra={"user_id": state.user_id, "tool": tool})
    else:
        raise InvalidInput(f"unknown action {action!r}")
    return {"tool": tool, "action": action}
