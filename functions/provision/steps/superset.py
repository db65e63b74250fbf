"""The SUPERSET tool step: provision (enrollment) or deprovision (refund, lost dispute, purge)."""

from __future__ import annotations

from typing import Any

from apranova.observability import entry
from functions.provision.steps.tooling import run


@entry
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return run("SUPERSET", event)
