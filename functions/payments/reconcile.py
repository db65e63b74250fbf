"""The reconcile job's function (EventBridge Scheduler; locally the job timer and
``POST /_local/jobs/reconcile``): functions/payments/reconcile_service.py does the work."""

from __future__ import annotations

from functools import cache
from typing import Any

from apranova import alerts, cognito, mail, workflows
from apranova.observability import logger
from functions.payments import reconcile_service, stripe_gateway, webhook_service
from functions.payments.config import settings


@cache
def _deps() -> webhook_service.Deps:
    config = settings()
    pool = cognito.settings()
    return webhook_service.Deps(
        start_workflow=workflows.start,
        enrollment_state_machine_arn=config.enrollment_state_machine_arn,
        deprovision_state_machine_arn=config.deprovision_state_machine_arn,
        cognito=cognito.client(),
        user_pool_id=pool.cognito_user_pool_id,
        client_id=pool.cognito_client_id,
        send=mail.send,
        alert=alerts.alert,
        spa_origin=config.spa_origin,
        gateway=stripe_gateway,
    )


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return reconcile_service.run(_deps())
