"""The right to erasure's routes: schedule the account's deletion, cancel it in the grace period."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response, content_types

from apranova import cognito, mail
from apranova.api import caller, request_info
from functions.compliance import erasure_service
from functions.compliance.api import app
from functions.compliance.erasure_config import erasure_settings
from functions.compliance.erasure_models import DeleteAccountRequest, DeletionCancelled, DeletionScheduled

NO_STORE = {"Cache-Control": "no-store"}


def _pool() -> erasure_service.Pool:
    settings = cognito.settings()
    return erasure_service.Pool(cognito.client(), settings.cognito_user_pool_id, settings.cognito_client_id)


@app.post(
    "/api/compliance/delete-account/",
    summary="Schedule the erasure of the account after the grace period (password re-checked; signs out everywhere)",
)
def delete_account(request: DeleteAccountRequest) -> Response[DeletionScheduled]:
    scheduled = erasure_service.request_deletion(
        _pool(), caller(app), request, request_info(app), erasure_settings(), mail.send
    )
    return Response(
        status_code=202,
        content_type=content_types.APPLICATION_JSON,
        body=DeletionScheduled.model_validate(scheduled),
        headers=NO_STORE,
    )


@app.post("/api/compliance/cancel-deletion/", summary="Cancel the scheduled erasure of the account (grace period)")
def cancel_deletion() -> Response[DeletionCancelled]:
    cancelled = erasure_service.cancel_deletion(caller(app), request_info(app), erasure_settings(), mail.send)
    return Response(
        status_code=200,
        content_type=content_types.APPLICATION_JSON,
        body=DeletionCancelled.model_validate(cancelled),
        headers=NO_STORE,
    )
