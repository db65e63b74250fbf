"""GET /api/health/ (liveness + database reachability), and API Gateway's $default route.

The $default route sends here every request no other route matches; the shared guard answers it
with a JSON 404, or a 405 naming the allowed methods when only the method is wrong.
"""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response, content_types

from apranova.api import create_app, lambda_entry
from functions.health import repository
from functions.health.models import Health

app = create_app()


@app.get("/api/health/")
def health() -> Response[Health]:
    ok = repository.database_answers()
    body = Health(status="ok" if ok else "unavailable", database="ok" if ok else "unreachable")
    return Response(
        status_code=200 if ok else 503,
        content_type=content_types.APPLICATION_JSON,
        body=body,
        headers={"Cache-Control": "no-store"},
    )


lambda_handler = lambda_entry(app)
