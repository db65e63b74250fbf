"""The workflow steps. Each module is one Lambda (see functions/provision/catalog.py): it takes the
execution's state as its event, does one idempotent piece of work and returns the state for the
next step. Failures raise named exceptions (functions/provision/errors.py, ToolUnavailable, ...)
that the state machine retries or catches by name."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from functions.provision.errors import InvalidInput

UUID = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"


class WorkflowInput(BaseModel):
    """What an execution starts with (the webhook, the admin enroll and reprovision routes)."""

    model_config = ConfigDict(extra="allow")  # steps add their results (e.g. "error") as they go

    user_id: str = Field(pattern=UUID)
    track: str = Field(pattern=r"^[A-Z][A-Z0-9_]{0,15}$")
    payment_id: str | None = Field(default=None, pattern=UUID)
    source: Literal["stripe", "admin", "reprovision", "refund", "dispute", "purge"] = "stripe"
    reason: str | None = None


def workflow_input(event: dict[str, Any]) -> WorkflowInput:
    try:
        return WorkflowInput.model_validate(event)
    except ValidationError as error:
        fields = sorted({".".join(str(p) for p in e["loc"]) for e in error.errors()})
        raise InvalidInput(f"the execution input is not valid: {', '.join(fields)}") from None
