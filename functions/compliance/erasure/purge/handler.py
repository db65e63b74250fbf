"""The daily purge Lambda (EventBridge Scheduler): erases the accounts whose grace period is over.
The steps and their resumption are in service.py."""

from __future__ import annotations

from typing import Any

import boto3

from apranova import cognito, workflows
from apranova.observability import logger
from functions.compliance import settings
from functions.compliance.erasure.purge import service as purge_service
from functions.compliance.settings import purge_settings

# Left for the run's own bookkeeping after the last step it starts (seconds).
MARGIN_SECONDS = 60.0


def deps(context: Any) -> purge_service.PurgeDeps:
    job = purge_settings()
    return purge_service.PurgeDeps(
        settings=job,
        s3=settings.s3(),
        ssm=boto3.client("ssm", region_name=job.aws_region),
        cognito=cognito.client(),
        sfn=workflows.client(),
        time_left=settings.time_left(context, MARGIN_SECONDS),
    )


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return purge_service.run(deps(context))
