"""What every tool step does around its provisioner: the per-tool record, then provision or
deprovision, failures recorded before they are raised (by name) to the state machine.

Deprovisioning is scoped by the input contract: a refund or lost dispute takes back a tool only
when that payment's enrollment provisioned it (``tool_provisioning.payment_id``); an account purge
takes back every tool. A tool not configured in this deployment is recorded NOT_CONFIGURED and
skipped; a tool that is down is recorded FAILED, alerted once, and raised for the long retry."""

from __future__ import annotations

from typing import Any

from apranova import alerts
from apranova.observability import logger
from functions.provision import workflow_repository as repository
from functions.provision.errors import InvalidInput, UserNotFound
from functions.provision.steps import deprovision_input, enrollment_input
from functions.provision.tools import Student, ToolNotConfigured, ToolUnavailable
from functions.provision.tools.registry import provisioner


def _short(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"[:500]


def run(tool: str, event: dict[str, Any]) -> dict[str, Any]:
    action = event.get("action", "provision")
    if action == "provision":
        return _provision(tool, event)
    if action == "deprovision":
        return _deprovision(tool, event)
    raise InvalidInput(f"unknown action {action!r}")


def _provision(tool: str, event: dict[str, Any]) -> dict[str, Any]:
    state = enrollment_input(event)
    user = repository.user(state.user_id)
    if user is None:
        raise UserNotFound(f"user {state.user_id} does not exist")
    student = Student(user_id=state.user_id, email=user["email"], track=state.track)
    repository.record_tool(state.user_id, tool, status="IN_PROGRESS", attempt=True, enrollment=True)
    try:
        result = provisioner(tool).provision(student)
    except Exception as error:  # noqa: BLE001 - recorded, then raised by name to the state machine
        repository.record_tool(state.user_id, tool, status="FAILED", error=_short(error), enrollment=True)
        raise
    details = dict(result.details)
    repository.record_tool(
        state.user_id,
        tool,
        status="SUCCEEDED",
        external_id=details.pop("external_id", None),
        access_url=details.pop("access_url", None),
        details=details,
        enrollment=True,
    )
    logger.info("tool provisioned", extra={"user_id": state.user_id, "tool": tool})
    return {"tool": tool, "action": "provision", "outcome": "PROVISIONED"}


def _deprovision(tool: str, event: dict[str, Any]) -> dict[str, Any]:
    state = deprovision_input(event)
    record = repository.tool_record(state.user_id, tool)
    if not state.everything and (record is None or record["payment_id"] != state.payment_id):
        # Not provisioned by the refunded payment's enrollment: another payment's (or an
        # administrator's) tools stay.
        logger.info("tool not this payment's", extra={"user_id": state.user_id, "tool": tool})
        return {"tool": tool, "action": "deprovision", "outcome": "NOT_THIS_PAYMENT"}
    # The users row is there during an erasure (deleted_at set) and the records are written on it.
    account = repository.account(state.user_id)
    student = Student(user_id=state.user_id, email=account["email"] if account else "", track=state.track or "")
    if account is not None:
        repository.record_tool(state.user_id, tool, status="DEPROVISIONING", attempt=True)
    try:
        provisioner(tool).deprovision(student)
    except ToolNotConfigured as error:
        if account is not None:
            repository.record_tool(state.user_id, tool, status="NOT_CONFIGURED", error=_short(error))
        if record is not None and record["status"] == "SUCCEEDED":
            # Provisioned while the tool was configured: its account there may outlive this run.
            alerts.alert(
                "A deprovisioned tool is no longer configured: its account may be left in the tool",
                {"user_id": state.user_id, "tool": tool, "source": state.source},
            )
        logger.info("tool not configured: skipped", extra={"user_id": state.user_id, "tool": tool})
        return {"tool": tool, "action": "deprovision", "outcome": "NOT_CONFIGURED"}
    except Exception as error:  # noqa: BLE001 - recorded, then raised by name to the state machine
        if account is not None:
            repository.record_tool(state.user_id, tool, status="FAILED", error=_short(error))
        if isinstance(error, ToolUnavailable) and (record is None or record["status"] != "FAILED"):
            # Once per outage (a retry finds the record FAILED): the branch keeps retrying for hours.
            alerts.alert(
                "A tool is unavailable while taking back a student's account: retrying for hours",
                {"user_id": state.user_id, "tool": tool, "source": state.source, "error": _short(error)},
            )
        raise
    if account is not None:
        repository.record_tool(state.user_id, tool, status="DEPROVISIONED")
    logger.info("tool deprovisioned", extra={"user_id": state.user_id, "tool": tool})
    return {"tool": tool, "action": "deprovision", "outcome": "DEPROVISIONED"}
