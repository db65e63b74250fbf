"""Powertools Logger and Metrics, configured once for every function, and the entry wrapper every
Lambda handler goes through.

``entry`` wraps a handler (the API functions through ``apranova.api.lambda_entry``, the workflow
steps, the scheduled jobs and the export worker directly): the Lambda context (function name,
request id, cold start) is in every log line of the invocation, and the business metrics it
counted (``business_metric``) are flushed once at its end, as one CloudWatch embedded-metric-format
line, even when the handler raises. An invocation that counted nothing writes no metric line.

Business metrics (``BusinessMetric``) are counts in the namespace ``POWERTOOLS_METRICS_NAMESPACE``
(set by CDK on every function) with the ``service`` dimension: payments succeeded, enrollments
completed, provisioning failures, refunds, accounts purged.

Tracing: the functions run with X-Ray active tracing (set in CDK), which records each invocation
without code. Powertools' Tracer is not created here because it imports the X-Ray SDK and botocore
at cold start (about 0.23 s, more than the rest of an API function's imports together); a function
that wants subsegments around its own downstream calls creates a Tracer itself (docs/decisions.md).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from enum import StrEnum
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "apranova")

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "ApraNova"), service=SERVICE)

Handler = Callable[[dict[str, Any], Any], Any]


class BusinessMetric(StrEnum):
    """The business events counted, by their CloudWatch metric name."""

    PAYMENT_SUCCEEDED = "PaymentSucceeded"  # a payment is paid (once per payment, the webhook)
    REFUND = "Refund"  # money went back to a payer (each refunded amount Stripe reports)
    ENROLLMENT_COMPLETED = "EnrollmentCompleted"  # a student became ENROLLED (the workflow's Enroll step)
    PROVISIONING_FAILED = "ProvisioningFailed"  # a workflow run failed (its RecordProvisioningFailure step)
    ACCOUNT_PURGED = "AccountPurged"  # an account erased after its grace period (the daily purge)


def business_metric(metric: BusinessMetric, count: int = 1) -> None:
    """Count ``count`` business events of ``metric`` in this invocation (flushed by ``entry``)."""
    if count > 0:
        metrics.add_metric(name=metric.value, unit=MetricUnit.Count, value=count)


def flush_metrics() -> None:
    """Write the metrics counted so far (nothing when none were) and start afresh."""
    if metrics.metric_set:
        metrics.flush_metrics()
    # Disabled metrics (POWERTOOLS_METRICS_DISABLED, the local stack) are not flushed: dropped here.
    metrics.clear_metrics()


def entry(handler: Handler, *, correlation_id_path: str | None = None) -> Handler:
    """``handler`` as a Lambda entry: the Lambda context in every log line, the business metrics
    flushed at the end. A call without a Lambda context (a script, a test calling a step) runs the
    handler with the metrics flushed and no context in the logs."""

    @functools.wraps(handler)
    def flushing(event: dict[str, Any], context: Any) -> Any:
        try:
            return handler(event, context)
        finally:
            flush_metrics()

    with_context = logger.inject_lambda_context(flushing, correlation_id_path=correlation_id_path)

    @functools.wraps(handler)
    def run(event: dict[str, Any], context: Any) -> Any:
        if context is None:
            return flushing(event, context)
        return with_context(event, context)

    return run
