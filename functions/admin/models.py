"""Request and response models of the admin API."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Role = Literal["student", "trainer", "admin"]


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

EnrollmentStatus = Literal["PENDING_PAYMENT", "ENROLLED", "COMPLETED", "REFUNDED", "SUSPENDED"]


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
    status: Literal["LOCKED", "UNLOCKED", "IN_PROGRESS", "SUBMITTED", "CHANGES_REQUESTED", "APPROVED"]
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

    trainer_id: str = Field(pattern=r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


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
    status: Literal["PENDING", "APPROVED", "CHANGES_REQUESTED", "SUPERSEDED"]
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


class AdminReviewTurnaround(BaseModel):
    decided: int = Field(description="Submissions approved or sent back for changes.")
    median_seconds: float | None
    p90_seconds: float | None


class AdminStats(BaseModel):
    enrollments: list[AdminEnrollmentCount]
    revenue: list[AdminRevenue]
    review_turnaround: AdminReviewTurnaround
    review_queue: int = Field(description="PENDING submissions.")
    oldest_pending_at: datetime | None
    students_without_trainer: int = Field(description="ENROLLED students with no assigned trainer.")
