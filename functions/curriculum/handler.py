"""The curriculum API function."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response, content_types

from apranova.api import create_app, lambda_entry
from functions.curriculum import service
from functions.curriculum.models import TrackList

app = create_app()


@app.get("/api/curriculum/tracks/", summary="The tracks on offer, with their price")
def list_tracks() -> Response[TrackList]:
    return Response(
        status_code=200,
        content_type=content_types.APPLICATION_JSON,
        body=service.list_tracks(),
        headers={"Cache-Control": "public, max-age=300"},
    )


lambda_handler = lambda_entry(app)
