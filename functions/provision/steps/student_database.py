"""The STUDENT_DATABASE tool step: provision (enrollment) or deprovision (refund, lost dispute, purge)."""

from __future__ import annotations

from typing import Any

from functions.provision.steps.tooling import run


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return run("STUDENT_DATABASE", event)
