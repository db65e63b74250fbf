"""Response models of the export routes (the export routes of docs/openapi.json). Sent with ``Cache-Control: no-store``:
a READY export's answer holds a presigned link."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from apranova.vocabulary import ExportStatus


class Export(BaseModel):
    id: str
    status: ExportStatus
    download_url: str | None = Field(
        None, description="A presigned GET of the archive while READY; signed anew on each request, short-lived."
    )
    expires_at: datetime | None = Field(None, description="When the archive stops being downloadable (then deleted).")
    download_expires_in: int | None = Field(None, description="Seconds the download_url works.")
    requested_at: datetime | None = None
    completed_at: datetime | None = None
    size_bytes: int | None = None


class ExportPage(BaseModel):
    """My exports, newest first; an item's ``download_url`` is always null here: GET its own route
    (``/api/compliance/exports/{id}/``) for a link."""

    items: list[Export]
    next_cursor: str | None = None
