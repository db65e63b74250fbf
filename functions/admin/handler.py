"""The admin API function (this issue: role management)."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response, content_types

from apranova import cognito, workflows
from apranova.api import caller, create_app, lambda_entry
from apranova.settings import BaseSettings, load
from functions.admin import service
from functions.admin.models import ManualEnrollment, RoleChange, RoleChanged, WorkflowStarted

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


class WorkflowSettings(BaseSettings):
    enrollment_state_machine_arn: str


def _start_enrollment(name: str, payload: dict) -> None:
    workflows.start(load(WorkflowSettings).enrollment_state_machine_arn, name, payload)


def _accepted(body: WorkflowStarted) -> Response:
    return Response(
        status_code=202, content_type=content_types.APPLICATION_JSON, body=body, headers={"Cache-Control": "no-store"}
    )


@app.post("/api/admin/users/<id>/enroll/", summary="Enroll a student without payment (runs the enrollment workflow)")
def enroll(id: str, request: ManualEnrollment) -> Response[WorkflowStarted]:  # noqa: A002 - the route's parameter
    started = service.enroll(
        caller(app), id, request.track, request.reason, _start_enrollment, app.current_event.request_context.request_id
    )
    return _accepted(WorkflowStarted.model_validate(started))


@app.post("/api/admin/users/<id>/reprovision/", summary="Run the enrollment workflow again (after a failure)")
def reprovision(id: str) -> Response[WorkflowStarted]:  # noqa: A002 - the route's parameter
    started = service.reprovision(caller(app), id, _start_enrollment, app.current_event.request_context.request_id)
    return _accepted(WorkflowStarted.model_validate(started))


lambda_handler = lambda_entry(app)
