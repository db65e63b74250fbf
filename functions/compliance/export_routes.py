"""Right of access routes: ask for an export of my data, and follow it to its download link.
Answers carry ``Cache-Control: no-store`` (a READY export's answer holds a presigned link)."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Query

from apranova.api import caller, request_info
from functions.compliance import config, export_service
from functions.compliance.api import app
from functions.compliance.export_models import Export, ExportPage

NO_STORE = {"Cache-Control": "no-store"}


def _json(status: int, body: object) -> Response:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body, headers=NO_STORE)


@app.post(
    "/api/compliance/export-data/",
    summary="Ask for a copy of my data (built in the background; one per 24 hours; audited)",
    responses={202: {"description": "The export is being built"}},
)
def export_data() -> Response[Export]:
    started = export_service.request_export(
        caller(app), config.export_settings(), config.lambda_client(), request_info(app)
    )
    return _json(202, Export.model_validate(started))


@app.get("/api/compliance/exports/", summary="My exports, newest first (no links: open one for its link)")
def exports(
    cursor: Annotated[str | None, Query(max_length=512, description="next_cursor of the previous page")] = None,
    limit: Annotated[str | None, Query(max_length=4, description="1..100, default 20")] = None,
) -> Response[ExportPage]:
    page = export_service.list_exports(caller(app), cursor, limit)
    return _json(200, ExportPage.model_validate(page.model_dump()))


@app.get(
    "/api/compliance/exports/<id>/",
    summary="One of my exports: its status and, while ready, a short-lived download link (audited)",
)
def export(id: str) -> Response[Export]:
    found = export_service.get_export(caller(app), id, config.export_settings(), config.s3(), request_info(app))
    return _json(200, Export.model_validate(found))
