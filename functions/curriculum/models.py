"""Request and response models of the curriculum API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from apranova.vocabulary import DeliverableType, LearningStatus, ProjectStatus, SubmissionStatus


class Track(BaseModel):
    code: str = Field(examples=["DP"])
    name: str
    description: str
    icon: str | None = None
    weeks: int
    price_cents: int = Field(description="Price in the currency's minor unit (cents).")
    currency: str = Field(examples=["USD"])
    project_count: int


class TrackList(BaseModel):
    items: list[Track]
    next_cursor: str | None = None


# --- the student's curriculum ----------------------------------------------------------------------

STATUS_DESCRIPTION = (
    "This student's status: locked (not unlocked yet), unlocked, in_progress (started), submitted "
    "(every required deliverable has a pending or approved submission), changes_requested (a required "
    "deliverable's latest attempt was sent back) or approved (every required deliverable approved). "
    "Derived by the server; never sent by a client."
)
PROGRESS_DESCRIPTION = (
    "Required steps completed, in percent (rounded down); 100 once the project is approved (approval "
    "completes the project, whatever is left unticked)."
)


class Strict(BaseModel):
    """A request body: unknown fields are a 422, never silently ignored (a client cannot send status)."""

    model_config = ConfigDict(extra="forbid")


class CurriculumAction(Strict):
    """The actions take no fields; any field sent is refused."""


class Project(BaseModel):
    id: int
    number: int
    title: str
    subtitle: str
    estimated_hours: int
    status: ProjectStatus = Field(description=STATUS_DESCRIPTION)
    progress_percent: int = Field(ge=0, le=100, description=PROGRESS_DESCRIPTION)


class ProjectList(BaseModel):
    items: list[Project]
    next_cursor: str | None = Field(None, description="Always null: a track has a handful of projects.")


class MyTrack(BaseModel):
    code: str = Field(examples=["DP"])
    name: str
    description: str
    icon: str | None = None
    weeks: int
    enrollment_status: LearningStatus
    enrolled_at: datetime | None = None
    completed_at: datetime | None = None
    projects: list[Project]


class StepResource(BaseModel):
    model_config = ConfigDict(extra="allow")

    title: str | None = None
    url: str | None = None


class ProjectStep(BaseModel):
    id: int
    number: int
    title: str
    description: str
    minutes: int
    is_optional: bool
    resources: list[StepResource]
    completed: bool
    completed_at: datetime | None = None


class LatestSubmission(BaseModel):
    id: str
    attempt: int
    status: SubmissionStatus
    submitted_at: datetime
    feedback: str | None = Field(None, description="The reviewer's feedback, once reviewed.")
    reviewed_at: datetime | None = None


class ProjectDeliverable(BaseModel):
    id: int
    number: int
    title: str
    description: str
    deliverable_type: DeliverableType
    is_required: bool
    accepted_content_types: list[str]
    max_file_bytes: int | None = None
    latest_submission: LatestSubmission | None = None


class ProjectDetail(Project):
    description: str
    tech_stack: list[str]
    tools: list[str]
    has_dataset: bool = Field(description="Whether GET .../dataset/ has a file for this project.")
    unlocked_at: datetime | None = None
    started_at: datetime | None = None
    submitted_at: datetime | None = None
    approved_at: datetime | None = None
    steps: list[ProjectStep]
    deliverables: list[ProjectDeliverable]


class MyCurrentProject(BaseModel):
    id: int
    number: int
    title: str
    status: ProjectStatus
    progress_percent: int


class MyProgress(BaseModel):
    track: str = Field(examples=["DP"])
    enrollment_status: LearningStatus
    steps_completed: int = Field(description="Required steps completed, over the track's projects.")
    steps_total: int
    steps_percent: int = Field(ge=0, le=100)
    projects_approved: int
    projects_total: int
    projects_percent: int = Field(ge=0, le=100)
    current_project: MyCurrentProject | None = Field(
        None, description="The first unlocked project not yet approved; null before unlocking and after completion."
    )
    completed: bool = Field(description="The track is completed (every project approved).")
    completed_at: datetime | None = None


class ProjectState(BaseModel):
    id: int
    status: ProjectStatus
    unlocked_at: datetime | None = None
    started_at: datetime | None = None


class StepState(BaseModel):
    project_id: int
    step_id: int
    completed: bool
    completed_at: datetime | None = None
    progress_percent: int = Field(ge=0, le=100, description="The project's progress after this change.")


class DatasetLink(BaseModel):
    url: str = Field(description="A presigned S3 GET; expires after expires_in seconds. Not a credential to our API.")
    expires_in: int
    filename: str
