"""Right of access routes: ask for an export of my data, and follow it to its download link.
Answers carry ``Cache-Control: no-store`` (a READY export's answer holds a presigned link)."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from apranova.api import caller, request_info
from functions.compliance import settings
from functions.compliance.export import service as export_service
from functions.compliance.export.models import Export, ExportPage

router = APIGatewayHttpRouter()

NO_STORE = {"Cache-Control": "no-store"}


def _json(status: int, body: object) -> Response:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body, headers=NO_STORE)


@router.post(
    "/export-data/",
    summary="Ask for a copy of my data (built in the background; one per 24 hours; audited)",
    responses={202: {"description": "The export is being built"}},
)
def export_data() -> Response[Export]:
    started = export_service.request_export(
        caller(router), settings.export_settings(), settings.lambda_client(), request_info(router)
    )
    return _json(202, Export.model_validate(started))


@router.get("/exports/", summary="My exports, newest first (no links: open one for its link)")
def exports(
    cursor: Annotated[str | None, Query(max_length=512, description="next_cursor of the previous page")] = None,
    limit: Annotated[str | None, Query(max_length=4, description="1..100, default 20")] = None,
) -> Response[ExportPage]:
    page = export_service.list_exports(caller(router), cursor, limit)
    return _json(200, ExportPage.model_validate(page.model_dump()))


@router.get(
    "/exports/<id>/",
    summary="One of my exports: its status and, while ready, a short-lived download link (audited)",
)
def export(id: str) -> Response[Export]:
    found = export_service.get_export(
        caller(router), id, settings.export_settings(), settings.s3(), request_info(router)
    )
    return _json(200, Export.model_validate(found))
