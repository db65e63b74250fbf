"""What processing a Stripe event reaches beyond the database, built once per environment: the
webhook and the reconcile job process events the same way, so they share this one factory."""

from __future__ import annotations

from functools import cache

from apranova import alerts, cognito, mail, workflows
from functions.payments import stripe_gateway, webhook_service
from functions.payments.config import settings


@cache
def event_deps() -> webhook_service.Deps:
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
