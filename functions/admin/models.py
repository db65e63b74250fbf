"""Request and response models of the admin API."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator

from apranova.fields import UUID_PATTERN, IsoDateTime
from apranova.vocabulary import EnrollmentStatus, ProgressStatus, Role, SubmissionStatus


class RoleChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role


class RoleChanged(BaseModel):
    id: str
    email: str
    role: Role
    previous_role: Role


class ManualEnrollment(BaseModel):
    model_config = ConfigDict(extra="forbid", str_max_length=2000)

    track: str = Field(pattern=r"^[A-Z][A-Z0-9_]{0,15}$", examples=["DP"])
    reason: str = Field(min_length=3, max_length=2000, description="Why the student is enrolled without payment.")


class WorkflowStarted(BaseModel):
    user_id: str
    track: str
    workflow: Literal["enrollment"]
    execution: str = Field(description="The Step Functions execution name.")
    status: Literal["STARTED"]


# --- users, submissions and stats (issue 6) -------------------------------------------------------


class AdminUser(BaseModel):
    id: str
    email: str
    name: str
    role: Role
    track: str | None
    enrollment_status: EnrollmentStatus
    provisioning_status: str
    created_at: datetime
    last_login_at: datetime | None


class AdminUserPage(BaseModel):
    items: list[AdminUser]
    next_cursor: str | None = None


class AdminProfile(AdminUser):
    email_verified: bool
    is_active: bool
    tools_provisioned: bool
    provisioning_error: str | None
    provisioned_at: datetime | None
    enrolled_at: datetime | None
    completed_at: datetime | None
    updated_at: datetime


class AdminPaymentTotal(BaseModel):
    currency: str
    paid_cents: int = Field(description="Sum of the payments that succeeded (refunded or not).")
    refunded_cents: int
    net_cents: int


class AdminUserPayment(BaseModel):
    id: str
    track: str
    amount_cents: int
    currency: str
    status: str
    refunded_amount_cents: int
    created_at: datetime
    succeeded_at: datetime | None


class AdminPaymentsSummary(BaseModel):
    count: int = Field(description="All of the user's payments, whatever their status.")
    totals: list[AdminPaymentTotal]
    recent: list[AdminUserPayment] = Field(description="The latest payments, newest first (at most 5).")


class AdminProjectProgress(BaseModel):
    project_id: int
    number: int
    title: str
    status: ProgressStatus
    steps_completed: int
    steps_total: int
    pending_submissions: int
    unlocked_at: datetime | None
    started_at: datetime | None
    submitted_at: datetime | None
    approved_at: datetime | None


class AdminAssignedTrainer(BaseModel):
    id: str
    email: str
    name: str
    assigned_at: datetime
    assigned_by: str | None


class AdminToolStatus(BaseModel):
    tool: str
    status: str
    access_url: str | None
    error: str | None
    attempts: int
    provisioned_at: datetime | None
    deprovisioned_at: datetime | None
    last_activity_at: datetime | None
    updated_at: datetime


class AdminUserDetail(BaseModel):
    profile: AdminProfile
    payments: AdminPaymentsSummary
    progress: list[AdminProjectProgress] = Field(description="The track's projects in order (LOCKED: no row).")
    trainer: AdminAssignedTrainer | None
    tools: list[AdminToolStatus]


class AdminTrainerAssignment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    trainer_id: str = Field(pattern=UUID_PATTERN)


class AdminTrainerAssigned(BaseModel):
    student_id: str
    trainer_id: str
    track: str
    assigned_at: datetime
    assigned_by: str | None
    previous_trainer_id: str | None
    changed: bool = Field(description="False when the trainer was already assigned (nothing was written).")


class AdminSubmission(BaseModel):
    id: str
    student_id: str
    student_email: str
    track: str
    project_id: int
    project_number: int
    project_title: str
    deliverable_id: int
    deliverable_title: str
    deliverable_type: str
    attempt: int
    status: SubmissionStatus
    submitted_at: datetime
    reviewed_at: datetime | None
    reviewed_by: str | None
    trainer_id: str | None = Field(description="The student's assigned trainer.")


class AdminSubmissionPage(BaseModel):
    items: list[AdminSubmission]
    next_cursor: str | None = None


class AdminEnrollmentCount(BaseModel):
    track: str | None = Field(description="None: students who have not chosen a track yet.")
    status: EnrollmentStatus
    count: int


class AdminRevenue(BaseModel):
    track: str
    currency: str
    payments: int
    gross_cents: int
    refunded_cents: int
    net_cents: int


APPROXIMATE = (
    "From a log-scale histogram: within 1 % of the exact percentile (percentile_cont over the submissions), "
    "or half a second."
)


class AdminReviewTurnaround(BaseModel):
    decided: int = Field(description="Submissions approved or sent back for changes.")
    median_seconds: float | None = Field(description=f"Median turnaround, submitted to decided. {APPROXIMATE}")
    p90_seconds: float | None = Field(description=f"90th percentile turnaround. {APPROXIMATE}")


class RevenuePoint(BaseModel):
    bucket: date
    track: str
    currency: str
    payments: int
    gross_cents: int
    refunded_cents: int = Field(description="Refunded since, of these payments.")


class EnrollmentPoint(BaseModel):
    bucket: date
    track: str
    enrollments: int


class ProvisioningPoint(BaseModel):
    bucket: date = Field(description="When the tool's state last changed.")
    tool: str
    status: str
    count: int


class ReviewPoint(BaseModel):
    bucket: date = Field(description="When the decisions were made.")
    decided: int
    approved: int
    changes_requested: int
    median_turnaround_seconds: float | None = Field(description=f"Submitted to decided. {APPROXIMATE}")
    p90_turnaround_seconds: float | None = Field(description=f"Submitted to decided. {APPROXIMATE}")


class WaitingPoint(BaseModel):
    bucket: date = Field(description="When the submissions came in.")
    submitted: int
    pending: int = Field(description="Of these, still waiting for a review.")
    median_wait_seconds: float | None = Field(
        description=f"Until decided or superseded; until now while pending. {APPROXIMATE}"
    )
    longest_pending_seconds: float | None


class RefundPoint(BaseModel):
    bucket: date = Field(description="When the refunds were requested.")
    currency: str
    requested: int
    approved: int
    rejected: int
    pending: int
    failed: int
    requested_cents: int
    approved_cents: int


class AdminStatsSeries(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_: date = Field(alias="from", serialization_alias="from", description="First day (UTC), included.")
    to: date = Field(description="Last day (UTC), included.")
    bucket: Literal["day", "week"]
    buckets: list[date] = Field(description="Every bucket's first day (weeks start on Monday), for the axis.")
    revenue: list[RevenuePoint] = Field(description="Buckets without rows are left out (zero).")
    enrollments: list[EnrollmentPoint]
    provisioning: list[ProvisioningPoint]
    reviews: list[ReviewPoint]
    waiting: list[WaitingPoint]
    refunds: list[RefundPoint]


class AdminStats(BaseModel):
    enrollments: list[AdminEnrollmentCount]
    revenue: list[AdminRevenue]
    review_turnaround: AdminReviewTurnaround
    review_queue: int = Field(description="PENDING submissions.")
    oldest_pending_at: datetime | None
    students_without_trainer: int = Field(description="ENROLLED students with no assigned trainer.")
    series: AdminStatsSeries | None = Field(
        default=None, description="The time series, when ?from, ?to or ?bucket is given (else null)."
    )


# --- policies, the audit trail and retention (issue 7) --------------------------------------------

PolicyKind = Literal["privacy", "terms"]
# Dotted numbers (the policy tables' CHECK); versions are compared as numbers.
POLICY_VERSION = r"^[0-9]{1,6}(\.[0-9]{1,6}){0,4}$"


class PolicyPublication(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: PolicyKind
    version: str = Field(max_length=20, pattern=POLICY_VERSION, examples=["1.1"])
    content: str = Field(min_length=1, max_length=200_000, description="The full text (Markdown).")
    summary: str = Field(min_length=1, max_length=2000, description="What changed, in a few lines.")
    effective_at: IsoDateTime = Field(
        description="When it comes into force (now, or later: nothing changes for anyone until then)."
    )

    @field_validator("content", "summary")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value

    @field_validator("effective_at")
    @classmethod
    def _representable(cls, value: datetime) -> datetime:
        # A database time outside Python's years (in UTC) cannot be read back: 422, not 500.
        try:
            value.astimezone(UTC)
        except OverflowError:
            raise ValueError("must be a time within the years 1 to 9999 (UTC)") from None
        return value


class PolicyPublished(BaseModel):
    kind: PolicyKind
    version: str
    summary: str
    effective_at: datetime
    published_at: datetime
    published_by: str | None
    in_force: bool = Field(description="False: scheduled; it comes into force at effective_at.")


class AuditLogEntry(BaseModel):
    id: int
    occurred_at: datetime
    action: str
    actor_id: str | None
    actor_role: str | None
    subject_id: str | None
    resource_type: str | None
    resource_id: str | None
    details: dict[str, Any]
    ip_address: str | None
    user_agent: str | None
    request_id: str | None


class AuditLogPage(BaseModel):
    items: list[AuditLogEntry]
    next_cursor: str | None = None


class RetentionPolicy(BaseModel):
    resource_type: str
    retention_days: int
    legal_minimum_days: int | None
    legal_requirement: bool
    is_active: bool
    description: str
    updated_at: datetime


class RetentionPolicyList(BaseModel):
    items: list[RetentionPolicy]
    next_cursor: str | None = Field(default=None, description="Always null: every policy is on one page.")


class RetentionChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    resource_type: str = Field(max_length=64, pattern=r"^[A-Z][A-Z0-9_]*$", examples=["AUDIT_LOGS"])
    retention_days: int = Field(ge=1, le=36_500)
    is_active: StrictBool | None = Field(default=None, description="Omitted: unchanged.")
