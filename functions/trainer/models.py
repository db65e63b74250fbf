"""Request and response models of the trainer API.

The review request forbids unknown fields: a status, reviewer or project state sent by a client is
a 422, never silently ignored — the decision is the only thing a trainer says.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from apranova.vocabulary import DeliverableType, EnrollmentStatus, ProjectStatus, ReviewedStatus, SubmissionStatus


class ReviewRequest(BaseModel):
    # The feedback rule of _feedback, for clients: requesting changes needs a feedback that is not blank.
    model_config = ConfigDict(
        extra="forbid",
        str_max_length=10_000,
        json_schema_extra={
            "if": {"properties": {"decision": {"const": "request_changes"}}, "required": ["decision"]},
            "then": {"required": ["feedback"], "properties": {"feedback": {"type": "string", "pattern": "\\S"}}},
        },
    )

    decision: Literal["approve", "request_changes"]
    feedback: str | None = Field(
        default=None,
        max_length=10_000,
        validate_default=True,
        description="What the student should know; required (not blank) when requesting changes.",
    )

    @field_validator("feedback")
    @classmethod
    def _feedback(cls, value: str | None, info: ValidationInfo) -> str | None:
        value = value.strip() if value else None
        if not value and info.data.get("decision") == "request_changes":
            raise ValueError("feedback is required when requesting changes")
        return value or None


# --- students and their progress ---------------------------------------------------------------------


class CurrentProject(BaseModel):
    id: int
    number: int
    title: str
    status: ProjectStatus


class Progress(BaseModel):
    steps_completed: int
    steps_total: int
    steps_percent: int = Field(description="Completed steps of the track's active projects, 0..100 (floor).")
    projects_approved: int
    projects_total: int
    projects_percent: int = Field(description="Approved projects of the track, 0..100 (floor).")


class TrainerStudent(BaseModel):
    id: str
    email: str
    name: str
    track: str | None
    enrollment_status: EnrollmentStatus
    enrolled_at: datetime | None
    completed_at: datetime | None
    trainer_id: str | None
    assigned_at: datetime | None
    current_project: CurrentProject | None = Field(
        description="The first project of the track not yet approved (null before any unlock or once all are)."
    )
    progress: Progress
    last_submission_at: datetime | None
    last_activity_at: datetime | None = Field(
        description="The student's latest submission, step completed or enrollment, whichever is latest."
    )
    waiting_submissions: int = Field(description="The student's submissions pending review.")


class TrainerStudentPage(BaseModel):
    items: list[TrainerStudent]
    next_cursor: str | None = None


# --- the review queue --------------------------------------------------------------------------------


class QueuedSubmission(BaseModel):
    id: str
    student_id: str
    student_name: str
    student_email: str
    project_id: int
    project_number: int
    project_title: str
    track: str
    deliverable_id: int
    deliverable_title: str
    deliverable_type: DeliverableType
    attempt: int
    status: SubmissionStatus
    submission_url: str | None
    commit_sha: str | None
    submission_text: str | None
    file_key: str | None
    file_size: int | None
    file_content_type: str | None
    submitted_at: datetime
    waiting_seconds: int = Field(
        description="Seconds from submission until it was decided (reviewed_at), superseded, or, while pending, now."
    )
    feedback: str | None
    reviewed_by: str | None
    reviewed_at: datetime | None


class QueuePage(BaseModel):
    items: list[QueuedSubmission]
    next_cursor: str | None = None


# --- one submission, for review ------------------------------------------------------------------------


class EarlierAttempt(BaseModel):
    id: str
    attempt: int
    status: SubmissionStatus
    submitted_at: datetime
    submission_url: str | None
    commit_sha: str | None
    submission_text: str | None
    file_name: str | None = Field(description="The uploaded file's name (open that attempt for its link).")
    feedback: str | None
    reviewed_by: str | None
    reviewed_at: datetime | None


class TrainerSubmissionDetail(BaseModel):
    id: str
    student_id: str
    student_name: str
    student_email: str
    project_id: int
    project_number: int
    project_title: str
    deliverable_id: int
    deliverable_title: str
    deliverable_type: DeliverableType
    attempt: int
    status: SubmissionStatus
    submission_url: str | None
    commit_sha: str | None
    submission_text: str | None
    file_key: str | None
    file_name: str | None
    file_size: int | None
    file_content_type: str | None
    file_url: str | None = Field(
        description="A short-lived presigned GET of the uploaded file (FILE deliverables; each one issued is audited)."
    )
    file_url_expires_in: int | None = Field(description="Seconds the file_url stays valid.")
    file_view_url: str | None = Field(
        description="The same file served inline, to show it in the page: only a PDF or a raster image"
        " (PNG, JPEG, GIF, WebP); null otherwise. Valid as long as file_url."
    )
    submitted_at: datetime
    feedback: str | None
    reviewed_by: str | None
    reviewed_at: datetime | None
    earlier_attempts: list[EarlierAttempt] = Field(
        description="The student's other attempts at this deliverable submitted before this one, newest first."
    )


class ReviewResult(BaseModel):
    id: str
    student_id: str
    project_id: int
    deliverable_id: int
    attempt: int
    status: ReviewedStatus
    feedback: str | None
    reviewed_by: str
    reviewed_at: datetime
    submitted_at: datetime
    project_status: ProjectStatus = Field(description="The project's status for the student after this review.")
    unlocked_project_id: int | None = Field(description="The next project, when this review unlocked it.")
    unlocked_project_number: int | None = Field(description="That project's number in the track.")
    unlocked_project_title: str | None = Field(description="That project's title.")
    track_completed: bool
