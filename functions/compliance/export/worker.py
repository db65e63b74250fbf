"""The export worker: builds one person's data export. Invoked asynchronously by the export route
with ``{"export_id": "..."}``; idempotent, so Lambda's retries and a redelivered event are harmless
(see ``export_service.build_export``)."""

from __future__ import annotations

from typing import Any

from apranova import alerts, cognito, mail
from apranova.observability import entry
from functions.compliance import settings
from functions.compliance.export import service as export_service


@entry
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    deps = export_service.WorkerDeps(
        config=settings.export_worker_settings(),
        s3=settings.s3(),
        cognito=cognito.client(),
        send=mail.send,
        alert=alerts.alert,
    )
    return export_service.build_export(str((event or {}).get("export_id", "")), deps)
