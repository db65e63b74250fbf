"""The submissions API function: the presigned upload form, submitting a deliverable, and the
student's own submissions. Answers carry ``Cache-Control: no-store`` (they hold presigned links)."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Query

from apranova import mail
from apranova.api import caller, create_app, lambda_entry, request_info
from apranova.audit import RequestInfo
from functions.submissions import config, github, service
from functions.submissions.models import (
    SubmissionCreate,
    SubmissionCreated,
    SubmissionDetail,
    SubmissionPage,
    UploadUrl,
    UploadUrlRequest,
)

app = create_app()
NO_STORE = {"Cache-Control": "no-store"}

Cursor = Annotated[str | None, Query(max_length=512, description="next_cursor of the previous page")]
Limit = Annotated[str | None, Query(max_length=4, description="1..100, default 20")]
DeliverableFilter = Annotated[
    int | None, Query(ge=1, le=2_147_483_647, description="Only this deliverable's submissions")
]
StatusFilter = Annotated[str | None, Query(pattern="^(PENDING|APPROVED|CHANGES_REQUESTED|SUPERSEDED)$")]


def _info() -> RequestInfo:
    return request_info(app)


def _json(status: int, body: object) -> Response:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body, headers=NO_STORE)


def _resolve_commit() -> service.ResolveCommit:
    settings = config.settings()

    def resolve(owner: str, repo: str, ref: str) -> str:
        # The token is read only when GitHub is really asked (a GITHUB deliverable without a commit).
        return github.resolve_commit(
            settings.github_api_url,
            owner,
            repo,
            ref,
            timeout=settings.github_timeout_seconds,
            token=github.token(settings.github_token_param),
        )

    return resolve


@app.post(
    "/api/curriculum/submissions/upload-url/",
    summary="A presigned S3 POST for a FILE deliverable's upload (size and content type bound)",
)
def upload_url(request: UploadUrlRequest) -> Response[UploadUrl]:
    form = service.upload_url(caller(app), request, config.settings(), config.s3())
    return _json(200, UploadUrl.model_validate(form))


@app.post("/api/curriculum/submissions/", summary="Submit a deliverable (a new attempt; audited)")
def create_submission(request: SubmissionCreate) -> Response[SubmissionCreated]:
    created = service.create_submission(
        caller(app), request, config.settings(), config.s3(), _resolve_commit(), mail.send, _info()
    )
    return _json(201, SubmissionCreated.model_validate(created))


@app.get("/api/curriculum/my-submissions/", summary="My submissions, newest first")
def my_submissions(
    deliverable_id: DeliverableFilter = None, status: StatusFilter = None, cursor: Cursor = None, limit: Limit = None
) -> Response[SubmissionPage]:
    page = service.my_submissions(caller(app), deliverable_id, status, cursor, limit)
    return _json(200, SubmissionPage.model_validate(page.model_dump()))


@app.get("/api/curriculum/submissions/<id>/", summary="One of my submissions (a download link for a file)")
def submission(id: str) -> Response[SubmissionDetail]:
    found = service.submission(caller(app), id, config.settings(), config.s3())
    return _json(200, SubmissionDetail.model_validate(found))


lambda_handler = lambda_entry(app)
