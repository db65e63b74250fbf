"""RecordProvisioningFailure: the user's provisioning status and error, from the caught error."""

from __future__ import annotations

import json
from typing import Any

from apranova import audit, db
from apranova.audit import AuditAction
from apranova.observability import BusinessMetric, business_metric, entry
from functions.provision import workflow_repository as repository


def describe(error: dict[str, Any] | None) -> str:
    """``Error: message`` from Step Functions' ``{"Error", "Cause"}`` (Cause is Lambda's JSON)."""
    error = error or {}
    name = str(error.get("Error") or "UnknownError")
    cause = error.get("Cause") or ""
    try:
        message = json.loads(cause).get("errorMessage", "") if cause else ""
    except (ValueError, AttributeError):
        message = str(cause)
    return f"{name}: {message}"[:500] if message else name


@entry
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from functions.provision.steps import contract_fields  # the package imports describe from here

    fields = contract_fields(event)
    user_id = fields["user_id"]
    summary = describe(event.get("error"))
    workflow = event.get("workflow", "enrollment")
    if isinstance(user_id, str) and repository.user(user_id) is not None:
        repository.mark_provisioning(user_id, "FAILED", summary)
        with db.transaction() as cur:
            audit.record(
                cur,
                AuditAction.PROVISIONING,
                subject_id=user_id,
                resource_type="user",
                resource_id=user_id,
                details={"status": "FAILED", "workflow": workflow, "error": summary, "track": fields["track"]},
            )
    business_metric(BusinessMetric.PROVISIONING_FAILED)
    return {**event, "failure": summary}
