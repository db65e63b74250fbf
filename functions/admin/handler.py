"""The admin API function (this issue: role management)."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response, content_types

from apranova import cognito
from apranova.api import caller, create_app, lambda_entry
from functions.admin import service
from functions.admin.models import RoleChange, RoleChanged

app = create_app()


@app.post("/api/admin/users/<id>/role/", summary="Set a user's role (moves their Cognito group; audited)")
def change_role(id: str, request: RoleChange) -> Response[RoleChanged]:  # noqa: A002 - the route's parameter
    result = service.change_role(
        caller(app), id, request, cognito.set_role, request_id=app.current_event.request_context.request_id
    )
    return Response(
        status_code=200,
        content_type=content_types.APPLICATION_JSON,
        body=result,
        headers={"Cache-Control": "no-store"},
    )


lambda_handler = lambda_entry(app)
