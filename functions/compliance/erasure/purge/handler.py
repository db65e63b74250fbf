"""The daily purge Lambda (EventBridge Scheduler): erases the accounts whose grace period is over.
The steps and their resumption are in service.py."""

from __future__ import annotations

from typing import Any

import boto3

from apranova import cognito, workflows
from apranova.observability import BusinessMetric, business_metric, entry
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


@entry
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    summary = purge_service.run(deps(context))
    # "completed": every step of the erasure is done for this account (purge_service.purge_one).
    business_metric(BusinessMetric.ACCOUNT_PURGED, list(summary["outcomes"].values()).count("completed"))
    return summary
