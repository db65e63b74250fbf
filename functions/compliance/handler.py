"""The compliance API function: policies and consent, the right of access (exports) and the right
to erasure (deletion with a grace period). Each concern's routes are a Powertools router
(``consent/routes.py``, ``export/routes.py``, ``erasure/routes.py``) included here under the
function's path prefix."""

from __future__ import annotations

from apranova.api import create_app, lambda_entry
from functions.compliance.consent.routes import router as consent_router
from functions.compliance.erasure.routes import router as erasure_router
from functions.compliance.export.routes import router as export_router

PREFIX = "/api/compliance"

app = create_app()
# The order of the OpenAPI document's paths (docs/openapi.json) follows the order of inclusion.
app.include_router(consent_router, prefix=PREFIX)
app.include_router(erasure_router, prefix=PREFIX)
app.include_router(export_router, prefix=PREFIX)

lambda_handler = lambda_entry(app)
