"""The admin API function: users (list, detail, role, trainer assignment, manual enrollment,
re-provisioning), all submissions, the platform's numbers, and governance: publishing policy
versions, the audit trail and the retention policies."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Body, Query

from apranova import cognito, workflows
from apranova.api import caller, create_app, lambda_entry, request_info
from apranova.fields import UUID_PATTERN, IsoDateTime
from apranova.query_params import known_query_only
from apranova.settings import BaseSettings, load
from apranova.workflow_inputs import EnrollmentInput
from functions.admin import service
from functions.admin.models import (
    AdminStats,
    AdminSubmissionPage,
    AdminTrainerAssigned,
    AdminTrainerAssignment,
    AdminUserDetail,
    AdminUserPage,
    AuditLogPage,
    ManualEnrollment,
    PolicyPublication,
    PolicyPublished,
    RetentionChange,
    RetentionPolicyList,
    RoleChange,
    RoleChanged,
    WorkflowStarted,
)

app = create_app()
NO_STORE = {"Cache-Control": "no-store"}

Cursor = Annotated[str | None, Query(max_length=512, description="next_cursor of the previous page")]
Limit = Annotated[str | None, Query(max_length=4, description="1..100, default 20")]
TrackFilter = Annotated[str | None, Query(pattern=r"^[A-Z][A-Z0-9_]{0,15}$", description="A track code: DP, FSD")]
RoleFilter = Annotated[str | None, Query(pattern="^(student|trainer|admin)$")]
EnrollmentFilter = Annotated[str | None, Query(pattern="^(PENDING_PAYMENT|ENROLLED|COMPLETED|REFUNDED|SUSPENDED)$")]
EmailPrefix = Annotated[
    str | None,
    Query(min_length=1, max_length=254, description="Start of the email address or of the name, in any case"),
]
ProvisioningFilter = Annotated[
    str | None,
    Query(
        pattern="^(NOT_STARTED|IN_PROGRESS|SUCCEEDED|FAILED|DEPROVISIONED)$",
        description="The user's provisioning status (the tools of their enrollment)",
    ),
]
SubmissionFilter = Annotated[str | None, Query(pattern="^(PENDING|APPROVED|CHANGES_REQUESTED|SUPERSEDED)$")]
TrainerFilter = Annotated[
    str | None,
    Query(
        pattern=UUID_PATTERN,
        description="Submissions of the students assigned to this trainer",
    ),
]


def _json(status: int, body: object) -> Response:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body, headers=NO_STORE)


@app.get(
    "/api/admin/users/",
    summary="Users, newest first, by role, track, enrollment or provisioning status, or the start of the email or name",
    middlewares=[known_query_only],
)
def list_users(
    role: RoleFilter = None,
    track: TrackFilter = None,
    status: EnrollmentFilter = None,
    q: EmailPrefix = None,
    provisioning: ProvisioningFilter = None,
    cursor: Cursor = None,
    limit: Limit = None,
) -> Response[AdminUserPage]:
    page = service.users(role, track, status, q, cursor, limit, provisioning)
    return _json(200, AdminUserPage.model_validate(page.model_dump()))


@app.get("/api/admin/users/<id>/", summary="A user: profile, payments, progress, trainer and tools")
def user_detail(id: str) -> Response[AdminUserDetail]:  # noqa: A002 - the route's parameter
    return _json(200, AdminUserDetail.model_validate(service.user_detail(id)))


@app.post("/api/admin/users/<id>/assign-trainer/", summary="Assign a student to a trainer of their track (audited)")
def assign_trainer(id: str, request: AdminTrainerAssignment) -> Response[AdminTrainerAssigned]:  # noqa: A002
    assigned = service.assign_trainer(caller(app), id, request.trainer_id, request_info(app))
    return _json(200, AdminTrainerAssigned.model_validate(assigned))


@app.get(
    "/api/admin/submissions/",
    summary="All submissions, newest first, by status, track or trainer",
    middlewares=[known_query_only],
)
def list_submissions(
    status: SubmissionFilter = None,
    track: TrackFilter = None,
    trainer_id: TrainerFilter = None,
    cursor: Cursor = None,
    limit: Limit = None,
) -> Response[AdminSubmissionPage]:
    page = service.submissions(status, track, trainer_id, cursor, limit)
    return _json(200, AdminSubmissionPage.model_validate(page.model_dump()))


StatsFrom = Annotated[
    str | None, Query(alias="from", pattern=r"^\d{4}-\d{2}-\d{2}$", description="First day, UTC (YYYY-MM-DD)")
]
StatsTo = Annotated[
    str | None, Query(alias="to", pattern=r"^\d{4}-\d{2}-\d{2}$", description="Last day, UTC, included")
]
StatsBucket = Annotated[
    str | None, Query(pattern="^(day|week)$", description="day (at most 366 days) or week (at most 1113 days)")
]


@app.get(
    "/api/admin/stats/",
    summary="Enrollments, revenue, review turnaround and queue; with ?from&to&bucket, their time series",
    middlewares=[known_query_only],
)
def stats(start: StatsFrom = None, end: StatsTo = None, bucket: StatsBucket = None) -> Response[AdminStats]:
    return _json(200, AdminStats.model_validate(service.stats(start, end, bucket)))


@app.post("/api/admin/users/<id>/role/", summary="Set a user's role (moves their Cognito group; audited)")
def change_role(id: str, request: RoleChange) -> Response[RoleChanged]:  # noqa: A002 - the route's parameter
    result = service.change_role(caller(app), id, request, cognito.set_role, request_info(app))
    return Response(
        status_code=200,
        content_type=content_types.APPLICATION_JSON,
        body=result,
        headers={"Cache-Control": "no-store"},
    )


class WorkflowSettings(BaseSettings):
    enrollment_state_machine_arn: str


def _start_enrollment(name: str, workflow_input: EnrollmentInput) -> None:
    workflows.start(load(WorkflowSettings).enrollment_state_machine_arn, name, workflow_input)


def _accepted(body: WorkflowStarted) -> Response:
    return Response(
        status_code=202, content_type=content_types.APPLICATION_JSON, body=body, headers={"Cache-Control": "no-store"}
    )


@app.post("/api/admin/users/<id>/enroll/", summary="Enroll a student without payment (runs the enrollment workflow)")
def enroll(id: str, request: ManualEnrollment) -> Response[WorkflowStarted]:  # noqa: A002 - the route's parameter
    started = service.enroll(caller(app), id, request.track, request.reason, _start_enrollment, request_info(app))
    return _accepted(WorkflowStarted.model_validate(started))


@app.post("/api/admin/users/<id>/reprovision/", summary="Run the enrollment workflow again (after a failure)")
def reprovision(id: str) -> Response[WorkflowStarted]:  # noqa: A002 - the route's parameter
    started = service.reprovision(caller(app), id, _start_enrollment, request_info(app))
    return _accepted(WorkflowStarted.model_validate(started))


# --- governance (issue 7) -------------------------------------------------------------------------

Uuid = Annotated[str | None, Query(pattern=UUID_PATTERN)]
ActionFilter = Annotated[str | None, Query(max_length=64, pattern=r"^[A-Z][A-Z0-9_]*$", description="e.g. LOGIN")]
ResourceTypeFilter = Annotated[str | None, Query(max_length=64, pattern=r"^[a-z][a-z0-9_]*$", description="e.g. user")]
ResourceIdFilter = Annotated[str | None, Query(min_length=1, max_length=256)]
# ISO 8601 text only: "0.5" or "1700000000" is a 422, not seconds since 1970.
FromFilter = Annotated[IsoDateTime | None, Query(alias="from", description="occurred_at >= from (ISO 8601)")]
ToFilter = Annotated[IsoDateTime | None, Query(alias="to", description="occurred_at < to (ISO 8601)")]


@app.post("/api/admin/policies/", summary="Publish a privacy policy or terms version, now or for a later date")
def publish_policy(request: PolicyPublication) -> Response[PolicyPublished]:
    published = service.publish_policy(caller(app), request, request_info(app))
    return _json(201, PolicyPublished.model_validate(published))


@app.get(
    "/api/admin/audit-logs/",
    summary="The audit trail, newest first, by actor, subject, action, resource, time",
    middlewares=[known_query_only],
)
def audit_logs(
    actor_id: Uuid = None,
    subject_id: Uuid = None,
    action: ActionFilter = None,
    resource_type: ResourceTypeFilter = None,
    resource_id: ResourceIdFilter = None,
    occurred_from: FromFilter = None,
    occurred_to: ToFilter = None,
    cursor: Cursor = None,
    limit: Limit = None,
) -> Response[AuditLogPage]:
    filters = {
        "actor_id": actor_id,
        "subject_id": subject_id,
        "action": action,
        "resource_type": resource_type,
        "resource_id": resource_id,
        "from": occurred_from,
        "to": occurred_to,
    }
    page = service.audit_logs(filters, cursor, limit)
    return _json(200, AuditLogPage.model_validate(page.model_dump()))


@app.get("/api/admin/retention-policies/", summary="The data retention policies", middlewares=[known_query_only])
def retention_policies() -> Response[RetentionPolicyList]:
    return _json(200, RetentionPolicyList(items=service.retention_policies()))


@app.put(
    "/api/admin/retention-policies/",
    summary="Change retention periods (all or nothing; never below a legal minimum; audited)",
)
def change_retention(
    changes: Annotated[
        list[RetentionChange],
        # minItems documents the service's "at least one change" (its 422 names the rule).
        Body(max_length=50, description="The policies to change", json_schema_extra={"minItems": 1}),
    ],
) -> Response[RetentionPolicyList]:
    updated = service.change_retention(caller(app), changes, request_info(app))
    return _json(200, RetentionPolicyList(items=updated))


lambda_handler = lambda_entry(app)
