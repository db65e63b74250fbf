"""Request and response models of the submissions API.

Requests forbid unknown fields: a student who sends ``status``, ``feedback``, ``attempt``,
``reviewed_by`` or any other field gets a 422, never a silently ignored field (docs/principles.md §8 rule 4).
Which of the optional content fields a submission needs depends on the deliverable's type; the
service checks that.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from apranova.vocabulary import DeliverableType, SubmissionStatus

MAX_TEXT = 50_000
DeliverableId = Field(ge=1, le=2_147_483_647, description="The deliverable's id (from the project detail).")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_max_length=2048)


class UploadUrlRequest(Strict):
    deliverable_id: int = DeliverableId
    filename: str = Field(min_length=1, max_length=255, examples=["insights-report.pdf"])
    content_type: str = Field(
        max_length=127,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*$",
        examples=["application/pdf"],
        description="One of the deliverable's accepted content types; the upload must carry exactly this type.",
    )
    size: int = Field(ge=1, description="The file's size in bytes; at most the deliverable's limit (50 MB at most).")

    @field_validator("content_type")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.lower()


class UploadUrl(BaseModel):
    url: str = Field(description="Where to POST the form (multipart/form-data).")
    fields: dict[str, str] = Field(description="Send every field as given, then the file as the last part, 'file'.")
    key: str = Field(description="The object's key: send it as file_key when submitting.")
    expires_in: int = Field(description="Seconds the form stays valid.")


class SubmissionCreate(Strict):
    deliverable_id: int = DeliverableId
    submission_url: str | None = Field(
        None, description="LINK: an http(s) URL. GITHUB: https://github.com/<owner>/<repo>."
    )
    commit_sha: str | None = Field(
        None,
        pattern=r"^[0-9a-fA-F]{7,40}$",
        description="GITHUB only: the commit to pin; when absent the repository's current head is pinned.",
    )
    submission_text: str | None = Field(None, max_length=MAX_TEXT, description="TEXT only: 1 to 50,000 characters.")
    file_key: str | None = Field(None, max_length=1024, description="FILE only: the key returned by upload-url.")


class Submission(BaseModel):
    id: str
    deliverable_id: int
    deliverable_title: str
    deliverable_type: DeliverableType
    project_id: int
    project_number: int
    attempt: int = Field(
        description="1 for the first submission of a deliverable, +1 after each attempt sent back with changes "
        "requested; a pending attempt replaced before review keeps its number (the replaced one is SUPERSEDED)."
    )
    status: SubmissionStatus
    submitted_at: datetime
    submission_url: str | None = None
    commit_sha: str | None = None
    submission_text: str | None = None
    file_key: str | None = None
    file_name: str | None = None
    file_size: int | None = None
    file_content_type: str | None = None
    feedback: str | None = Field(None, description="The reviewer's feedback, once reviewed.")
    reviewed_at: datetime | None = None


class SubmissionDetail(Submission):
    download_url: str | None = Field(
        None, description="FILE: a presigned S3 GET of the file, valid for download_expires_in seconds."
    )
    download_expires_in: int | None = None


class SubmissionCreated(Submission):
    project_status: str = Field(description="The project's status after this submission (derived by the server).")
    superseded_id: str | None = Field(None, description="The pending attempt this one replaced, if any.")


class SubmissionPage(BaseModel):
    items: list[Submission]
    next_cursor: str | None = None
