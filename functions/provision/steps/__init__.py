"""The workflow steps. Each module is one Lambda (see functions/provision/catalog.py): it takes the
execution's state as its event, does one idempotent piece of work and returns the state for the
next step. Failures raise named exceptions (functions/provision/errors.py, ToolUnavailable, ...)
that the state machine retries or catches by name.

Every step reads the execution's state through its machine's input contract
(apranova/workflow_inputs.py), the same models every start site builds."""

from __future__ import annotations

from typing import Any

from apranova.workflow_inputs import DeprovisionInput, EnrollmentInput, InvalidWorkflowInput
from functions.provision.errors import InvalidInput


def enrollment_input(event: dict[str, Any]) -> EnrollmentInput:
    """The enrollment contract's fields of the state; anything else is ``InvalidInput`` (permanent)."""
    try:
        return EnrollmentInput.read(event)
    except InvalidWorkflowInput as error:
        raise InvalidInput(str(error)) from None


def deprovision_input(event: dict[str, Any]) -> DeprovisionInput:
    """The deprovision contract's fields of the state; anything else is ``InvalidInput`` (permanent)."""
    try:
        return DeprovisionInput.read(event)
    except InvalidWorkflowInput as error:
        raise InvalidInput(str(error)) from None


def contract_fields(event: dict[str, Any]) -> dict[str, Any]:
    """The contract's fields of a failed run's state, for the failure states that serve both
    machines: read through the run's model, or as they are when the input itself is what failed
    (recording and alerting that must never fail in turn)."""
    model = DeprovisionInput if event.get("workflow") == "deprovision" else EnrollmentInput
    try:
        return model.read(event).payload()
    except InvalidWorkflowInput:
        return {field: event.get(field) for field in model.model_fields}


# The enrollment steps' reader by its former name (RecordPayment reads it so).
workflow_input = enrollment_input
