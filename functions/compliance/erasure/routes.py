"""The right to erasure's routes: schedule the account's deletion, cancel it in the grace period."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from apranova import cognito, mail
from apranova.api import caller, request_info
from functions.compliance.erasure import service as erasure_service
from functions.compliance.erasure.models import DeleteAccountRequest, DeletionCancelled, DeletionScheduled
from functions.compliance.settings import erasure_settings

router = APIGatewayHttpRouter()

NO_STORE = {"Cache-Control": "no-store"}


def _pool() -> erasure_service.Pool:
    settings = cognito.settings()
    return erasure_service.Pool(cognito.client(), settings.cognito_user_pool_id, settings.cognito_client_id)


@router.post(
    "/delete-account/",
    summary="Schedule the erasure of the account after the grace period (password re-checked; signs out everywhere)",
)
def delete_account(request: DeleteAccountRequest) -> Response[DeletionScheduled]:
    scheduled = erasure_service.request_deletion(
        _pool(), caller(router), request, request_info(router), erasure_settings(), mail.send
    )
    return Response(
        status_code=202,
        content_type=content_types.APPLICATION_JSON,
        body=DeletionScheduled.model_validate(scheduled),
        headers=NO_STORE,
    )


@router.post("/cancel-deletion/", summary="Cancel the scheduled erasure of the account (grace period)")
def cancel_deletion() -> Response[DeletionCancelled]:
    cancelled = erasure_service.cancel_deletion(caller(router), request_info(router), erasure_settings(), mail.send)
    return Response(
        status_code=200,
        content_type=content_types.APPLICATION_JSON,
        body=DeletionCancelled.model_validate(cancelled),
        headers=NO_STORE,
    )
