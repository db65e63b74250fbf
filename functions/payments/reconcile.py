"""The reconcile job's function (EventBridge Scheduler; locally the job timer and
``POST /_local/jobs/reconcile``): functions/payments/reconcile_service.py does the work."""

from __future__ import annotations

from typing import Any

from apranova.observability import entry
from functions.payments import reconcile_service
from functions.payments.event_deps import event_deps

_deps = event_deps  # one factory for both event processors


@entry
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return reconcile_service.run(_deps())
