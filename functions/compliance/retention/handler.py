"""The daily retention sweep Lambda (EventBridge Scheduler): deletes what has outlived its
retention policy. What each policy governs is in service.py."""

from __future__ import annotations

from typing import Any

from apranova.observability import entry
from functions.compliance import settings
from functions.compliance.retention import service as retention_service
from functions.compliance.settings import retention_settings

# Left for the run's own bookkeeping after the last batch it starts (seconds).
MARGIN_SECONDS = 30.0


def deps(context: Any) -> retention_service.RetentionDeps:
    return retention_service.RetentionDeps(
        settings=retention_settings(), s3=settings.s3(), time_left=settings.time_left(context, MARGIN_SECONDS)
    )


@entry
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return retention_service.sweep(deps(context))
