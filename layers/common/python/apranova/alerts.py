"""Alerts for the operators: something needs a person (an unknown payment, a dispute, a failed
provisioning). Logged at ERROR as ``ALERT: <subject>`` and emailed to the ops address; an alert
never fails the work that raised it.

The log line is what pages: every function's log group has a metric filter on messages starting
with ``ALERT_PREFIX`` (cdk/constructs/operations.py), counted in one metric per stage whose alarm
notifies the ops topic, so an alert reaches the operators even where no ops address is set or the
email fails."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from apranova import mail
from apranova.observability import logger
from apranova.settings import BaseSettings, load

# The start of every alert's log message; the CloudWatch metric filter matches it.
ALERT_PREFIX = "ALERT: "


class AlertSettings(BaseSettings):
    ops_email: str | None = None


@cache
def settings() -> AlertSettings:
    return load(AlertSettings)


def alert_email(ops: str, stage: str, subject: str, details: dict[str, Any]) -> mail.Email:
    text = f"{subject}\n\n{json.dumps(details, indent=2, sort_keys=True, default=str)}\n"
    return mail.Email(to=(ops,), subject=f"[ApraNova {stage}] {subject}", text=text)


def alert(subject: str, details: dict[str, Any]) -> None:
    """``details`` are ids and states, never personal data beyond an id, never a secret."""
    logger.error(ALERT_PREFIX + subject, extra={"alert": details})
    ops = settings().ops_email
    if not ops:
        return
    try:
        mail.send(alert_email(ops, settings().stage, subject, details))
    except Exception:  # noqa: BLE001 - the alert is logged already; the caller's work goes on
        logger.exception("alert email not sent")


def reset() -> None:
    settings.cache_clear()
