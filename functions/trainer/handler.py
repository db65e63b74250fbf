"""The trainer API function: assigned students with their progress, the review queue, reviews.
Trainers and admins only (the route table's TRAINER access); admins see and review everyone."""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Query
from pydantic import Field

from apranova import mail
from apranova.api import caller, create_app, lambda_entry, request_info
from apranova.settings import BaseSettings, load
from functions.trainer import service
from functions.trainer.models import (
    QueuePage,
    ReviewRequest,
    ReviewResult,
    TrainerStudentPage,
    TrainerSubmissionDetail,
)

app = create_app()
NO_STORE = {"Cache-Control": "no-store"}

Cursor = Annotated[str | None, Query(max_length=512, description="next_cursor of the previous page")]
Limit = Annotated[str | None, Query(max_length=4, description="1..100, default 20")]
TrackFilter = Annotated[str | None, Query(pattern=r"^[A-Z][A-Z0-9_]{0,15}$", description="A track code, e.g. DP")]
ProjectFilter = Annotated[str | None, Query(pattern=r"^[1-9][0-9]{0,8}$", description="A project id")]
StatusFilter = Annotated[
    str | None,
    Query(pattern="^(PENDING|APPROVED|CHANGES_REQUESTED|SUPERSEDED)$", description="Default PENDING"),
]


class TrainerSettings(BaseSettings):
    spa_origin: str = "http://localhost:5173"


@cache
def settings() -> TrainerSettings:
    return load(TrainerSettings)


class FileSettings(BaseSettings):
    """Read only when a file's link is signed: the reviews need none of it."""

    # Where students' files are (the submissions function's bucket; read-only here).
    uploads_bucket: str = Field(min_length=3, max_length=63, pattern=r"^[a-z0-9][a-z0-9.-]*[a-z0-9]$")
    download_url_expires_seconds: int = Field(300, ge=30, le=3600)


@cache
def file_settings() -> FileSettings:
    return load(FileSettings)


@cache
def s3() -> Any:
    """Signature V4 (presigned links with session credentials); ``AWS_ENDPOINT_URL`` points it at moto
    locally. Made on first use: the other routes never load botocore."""
    import boto3
    from botocore.config import Config

    config = Config(signature_version="s3v4", connect_timeout=3, read_timeout=10)
    return boto3.client("s3", region_name=file_settings().aws_region, config=config)


def presign_file(key: str, filename: str, content_type: str | None, inline: bool = False) -> tuple[str, int]:
    """A download (attachment), or the same file served inline to show it in the page (the service
    asks for that only for types a browser renders without running them)."""
    config = file_settings()
    params = {
        "Bucket": config.uploads_bucket,
        "Key": key,
        "ResponseContentDisposition": f'{"inline" if inline else "attachment"}; filename="{filename}"',
    }
    if content_type:
        params["ResponseContentType"] = content_type
    url = s3().generate_presigned_url("get_object", Params=params, ExpiresIn=config.download_url_expires_seconds)
    return url, config.download_url_expires_seconds


def _json(status: int, body: object) -> Response:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body, headers=NO_STORE)


@app.get("/api/trainer/students/", summary="My assigned students and their progress (admin: all students)")
def students(track: TrackFilter = None, cursor: Cursor = None, limit: Limit = None) -> Response[TrainerStudentPage]:
    page = service.students(caller(app), track, cursor, limit)
    return _json(200, TrainerStudentPage.model_validate(page.model_dump()))


@app.get("/api/trainer/submissions/", summary="The review queue: my students' submissions, oldest first")
def submissions(
    status: StatusFilter = None,
    track: TrackFilter = None,
    project: ProjectFilter = None,
    cursor: Cursor = None,
    limit: Limit = None,
) -> Response[QueuePage]:
    page = service.queue(caller(app), status, cursor, limit, track=track, project=project)
    return _json(200, QueuePage.model_validate(page.model_dump()))


@app.get(
    "/api/trainer/submissions/<id>/",
    summary="One submission of my students (admin: any): earlier attempts and a short-lived file link (audited)",
)
def submission(id: str) -> Response[TrainerSubmissionDetail]:  # noqa: A002 - the route's parameter
    found = service.submission(caller(app), id, presign_file, info=request_info(app))
    return _json(200, TrainerSubmissionDetail.model_validate(found))


@app.post("/api/trainer/submissions/<id>/review/", summary="Approve or request changes (audited; emails the student)")
def review(id: str, request: ReviewRequest) -> Response[ReviewResult]:  # noqa: A002 - the route's parameter
    decided = service.review(
        caller(app),
        id,
        request,
        mail.send,
        settings().spa_origin,
        info=request_info(app),
    )
    return _json(200, ReviewResult.model_validate(decided))


lambda_handler = lambda_entry(app)
