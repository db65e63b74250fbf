"""AlertOps: tell the operators a workflow failed (after it was recorded)."""

from __future__ import annotations

from typing import Any

from apranova import alerts
from apranova.observability import entry
from functions.provision.steps import contract_fields


@entry
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    fields = contract_fields(event)
    alerts.alert(
        f"{str(event.get('workflow', 'enrollment')).capitalize()} workflow failed",
        {
            "user_id": fields["user_id"],
            "track": fields["track"],
            "payment_id": fields["payment_id"],
            "source": fields["source"],
            "failure": event.get("failure"),
        },
    )
    return event
