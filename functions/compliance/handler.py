"""The compliance API function: policies and consent, the right of access (exports) and the right
to erasure (deletion with a grace period). Importing the route modules registers their routes."""

from __future__ import annotations

from apranova.api import lambda_entry
from functions.compliance import consent_routes, erasure_routes, export_routes  # noqa: F401
from functions.compliance.api import app

lambda_handler = lambda_entry(app)
