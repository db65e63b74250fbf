"""The curriculum API function: the public track list, and the enrolled student's track, projects,
progress, project start, step completion and dataset link."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Path

from apranova.api import caller, create_app, lambda_entry, request_info
from apranova.audit import RequestInfo
from functions.curriculum import config, service
from functions.curriculum.models import (
    CurriculumAction,
    DatasetLink,
    MyProgress,
    MyTrack,
    ProjectDetail,
    ProjectList,
    ProjectState,
    StepState,
    TrackList,
)

app = create_app()
# A student's answers are theirs alone (and a dataset link is a bearer URL): never cached.
NO_STORE = {"Cache-Control": "no-store"}
# PostgreSQL integer keys: anything else is a 422, not a query.
ProjectId = Annotated[int, Path(ge=1, le=2_147_483_647, description="The project's id.")]
StepId = Annotated[int, Path(ge=1, le=2_147_483_647, description="The step's id.")]


def _json(body: object) -> Response:
    return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=body, headers=NO_STORE)


def _info() -> RequestInfo:
    return request_info(app)


@app.get("/api/curriculum/tracks/", summary="The tracks on offer, with their price")
def list_tracks() -> Response[TrackList]:
    return Response(
        status_code=200,
        content_type=content_types.APPLICATION_JSON,
        body=service.list_tracks(),
        headers={"Cache-Control": "public, max-age=300"},
    )


@app.get("/api/curriculum/my-track/", summary="My track, with my status in each of its projects")
def my_track() -> Response[MyTrack]:
    return _json(service.my_track(caller(app)))


@app.get("/api/curriculum/projects/", summary="My track's projects in order, with my status and progress")
def projects() -> Response[ProjectList]:
    return _json(service.projects(caller(app)))


@app.get(
    "/api/curriculum/projects/<id>/",
    summary="A project: steps with my completion, deliverables with my latest submission",
)
def project_detail(id: ProjectId) -> Response[ProjectDetail]:
    return _json(service.project_detail(caller(app), id))


@app.get("/api/curriculum/my-progress/", summary="My progress: by steps, by projects, current project, completion")
def my_progress() -> Response[MyProgress]:
    return _json(service.my_progress(caller(app)))


@app.post("/api/curriculum/projects/<id>/start/", summary="Start an unlocked project (idempotent; audited)")
def start_project(id: ProjectId, request: CurriculumAction | None = None) -> Response[ProjectState]:
    return _json(service.start(caller(app), id, _info()))


@app.post("/api/curriculum/projects/<id>/steps/<step_id>/complete/", summary="Mark a step of a started project done")
def complete_step(id: ProjectId, step_id: StepId, request: CurriculumAction | None = None) -> Response[StepState]:
    return _json(service.set_step(caller(app), id, step_id, completed=True))


@app.delete(
    "/api/curriculum/projects/<id>/steps/<step_id>/complete/", summary="Mark a step of a started project not done"
)
def uncomplete_step(id: ProjectId, step_id: StepId, request: CurriculumAction | None = None) -> Response[StepState]:
    return _json(service.set_step(caller(app), id, step_id, completed=False))


@app.get("/api/curriculum/projects/<id>/dataset/", summary="A short-lived download link for the project's dataset")
def dataset(id: ProjectId) -> Response[DatasetLink]:
    return _json(service.dataset(caller(app), id, config.presign_dataset))


lambda_handler = lambda_entry(app)
