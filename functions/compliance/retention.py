"""The daily retention sweep Lambda (EventBridge Scheduler): deletes what has outlived its
retention policy. What each policy governs is in retention_service.py."""

from __future__ import annotations

from typing import Any

import boto3

from apranova.observability import logger
from functions.compliance import retention_service
from functions.compliance.erasure_config import retention_settings

# Left for the run's own bookkeeping after the last batch it starts (seconds).
MARGIN_SECONDS = 30.0


def deps(context: Any) -> retention_service.RetentionDeps:
    settings = retention_settings()

    def time_left() -> float:
        if context is None or not hasattr(context, "get_remaining_time_in_millis"):
            return float("inf")
        return context.get_remaining_time_in_millis() / 1000 - MARGIN_SECONDS

    return retention_service.RetentionDeps(
        settings=settings, s3=boto3.client("s3", region_name=settings.aws_region), time_left=time_left
    )


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return retention_service.sweep(deps(context))
