"""Policies and consent routes: the documents in force (public), accepting them, my consent history."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from apranova.api import caller, request_info
from functions.compliance.consent import service as consent_service
from functions.compliance.consent.models import ConsentAcceptance, ConsentPage, ConsentRecord, PolicyDocument

router = APIGatewayHttpRouter()

NO_STORE = {"Cache-Control": "no-store"}
# Public texts: a short shared cache; a scheduled version shows up at most this late.
PUBLIC_DOCUMENT = {"Cache-Control": "public, max-age=60"}

Cursor = Annotated[str | None, Query(max_length=512, description="next_cursor of the previous page")]
Limit = Annotated[str | None, Query(max_length=4, description="1..100, default 20")]


def _json(status: int, body: object, headers: dict[str, str] = NO_STORE) -> Response:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body, headers=headers)


@router.get("/privacy-policy/", summary="The privacy policy in force (and the next one, if scheduled)")
def privacy_policy() -> Response[PolicyDocument]:
    return _json(200, PolicyDocument.model_validate(consent_service.policy("privacy")), PUBLIC_DOCUMENT)


@router.get("/terms/", summary="The terms of service in force (and the next ones, if scheduled)")
def terms() -> Response[PolicyDocument]:
    return _json(200, PolicyDocument.model_validate(consent_service.policy("terms")), PUBLIC_DOCUMENT)


@router.post(
    "/accept-consent/",
    summary="Accept the privacy policy and terms in force (201 recorded; 200 already accepted; audited)",
)
def accept_consent(request: ConsentAcceptance) -> Response[ConsentRecord]:
    consent, created = consent_service.accept(caller(router), request, request_info(router))
    return _json(201 if created else 200, ConsentRecord.model_validate(consent))


@router.get("/my-consents/", summary="My consents, newest first")
def my_consents(cursor: Cursor = None, limit: Limit = None) -> Response[ConsentPage]:
    page = consent_service.my_consents(caller(router), cursor, limit)
    return _json(200, ConsentPage.model_validate(page.model_dump()))
