"""The entry wrapper of every function (apranova/observability.py): the Lambda context in every log
line, the business metrics of the invocation flushed once at its end as CloudWatch embedded metric
format, even when the handler fails, and no metric line for an invocation that counted nothing."""

from __future__ import annotations

import io
import json
import logging
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

from apranova.observability import BusinessMetric, business_metric, entry, logger
from local.events import LambdaContext


@pytest.fixture(autouse=True)
def metrics_on(monkeypatch: pytest.MonkeyPatch) -> None:
    # The test environment disables metrics (tests/conftest.py); these tests read what Lambda would.
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """What the logger writes, as Lambda would ship it (Powertools' JSON formatter)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logger.registered_formatter)
    logging.getLogger(logger.name).addHandler(handler)
    yield stream
    logging.getLogger(logger.name).removeHandler(handler)


def _lines(captured: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in captured.splitlines() if line.startswith("{")]


def _metric_lines(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [line for line in lines if "_aws" in line]


def test_every_log_line_carries_the_lambda_context_and_the_counts_are_flushed_once(
    capfd: pytest.CaptureFixture[str], log_lines: io.StringIO
) -> None:
    @entry
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        logger.warning("step ran")  # the tests run at WARNING (tests/conftest.py)
        business_metric(BusinessMetric.ENROLLMENT_COMPLETED)
        business_metric(BusinessMetric.ACCOUNT_PURGED, 2)
        business_metric(BusinessMetric.REFUND, 0)  # nothing happened: not counted
        return event

    assert handler({"a": 1}, LambdaContext("apranova-enroll", request_id="req-1")) == {"a": 1}
    lines = _lines(capfd.readouterr().out)
    (log,) = [line for line in _lines(log_lines.getvalue()) if line.get("message") == "step ran"]
    assert log["function_name"] == "apranova-enroll"
    assert log["function_request_id"] == "req-1"
    assert "cold_start" in log
    (emf,) = _metric_lines(lines)
    (directive,) = emf["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "ApraNova"
    assert {m["Name"] for m in directive["Metrics"]} == {"EnrollmentCompleted", "AccountPurged"}
    assert emf["EnrollmentCompleted"] == [1.0] and emf["AccountPurged"] == [2.0]
    assert "Refund" not in emf

    # An invocation that counts nothing (and an earlier one's counts are not carried over): no
    # metric line, and no "no metrics" warning.
    @entry
    def quiet(event: dict[str, Any], context: Any) -> None:
        business_metric(BusinessMetric.REFUND, 0)

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        quiet({}, LambdaContext("apranova-enroll"))
    assert _metric_lines(_lines(capfd.readouterr().out)) == []


def test_counts_made_before_a_failure_are_still_flushed(capfd: pytest.CaptureFixture[str]) -> None:
    @entry
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        business_metric(BusinessMetric.PROVISIONING_FAILED)
        raise RuntimeError("the step failed after recording")

    with pytest.raises(RuntimeError, match="after recording"):
        handler({}, LambdaContext("apranova-record-failure"))
    (emf,) = _metric_lines(_lines(capfd.readouterr().out))
    assert emf["ProvisioningFailed"] == [1.0]


def test_a_direct_call_without_a_context_runs_and_flushes(capfd: pytest.CaptureFixture[str]) -> None:
    @entry
    def handler(event: dict[str, Any], context: Any) -> str:
        business_metric(BusinessMetric.PAYMENT_SUCCEEDED)
        return "ran"

    assert handler({}, None) == "ran"
    (emf,) = _metric_lines(_lines(capfd.readouterr().out))
    assert emf["PaymentSucceeded"] == [1.0]
