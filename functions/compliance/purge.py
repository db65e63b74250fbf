"""The daily purge Lambda (EventBridge Scheduler): erases the accounts whose grace period is over.
The steps and their resumption are in purge_service.py."""

from __future__ import annotations

from typing import Any

import boto3

from apranova import workflows
from apranova.observability import logger
from functions.compliance import purge_service
from functions.compliance.erasure_config import purge_settings

# Left for the run's own bookkeeping after the last step it starts (seconds).
MARGIN_SECONDS = 60.0


def deps(context: Any) -> purge_service.PurgeDeps:
    settings = purge_settings()

    def time_left() -> float:
        if context is None or not hasattr(context, "get_remaining_time_in_millis"):
            return float("inf")
        return context.get_remaining_time_in_millis() / 1000 - MARGIN_SECONDS

    return purge_service.PurgeDeps(
        settings=settings,
        s3=boto3.client("s3", region_name=settings.aws_region),
        ssm=boto3.client("ssm", region_name=settings.aws_region),
        cognito=boto3.client("cognito-idp", region_name=settings.aws_region),
        sfn=workflows.client(),
        time_left=time_left,
    )


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return purge_service.run(deps(context))
