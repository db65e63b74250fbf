"""Powertools Logger and Metrics, configured once for every function.

Tracing: the functions run with X-Ray active tracing (set in CDK), which records each invocation
without code. Powertools' Tracer is not created here because it imports the X-Ray SDK and botocore
at cold start (about 0.23 s, more than the rest of an API function's imports together); a function
that wants subsegments around its own downstream calls creates a Tracer itself (docs/decisions.md).
"""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger, Metrics

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "apranova")

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "ApraNova"), service=SERVICE)
