"""AlertOps: tell the operators a workflow failed (after it was recorded)."""

from __future__ import annotations

from typing import Any

from apranova import alerts


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    alerts.alert(
        f"{str(event.get('workflow', 'enrollment')).capitalize()} workflow failed",
        {
            "user_id": event.get("user_id"),
            "track": event.get("track"),
            "payment_id": event.get("payment_id"),
            "source": event.get("source"),
            "failure": event.get("failure"),
        },
    )
    return event
