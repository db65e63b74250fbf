"""Reading the business metrics the functions print (CloudWatch embedded metric format), as
CloudWatch would count them (apranova/observability.py)."""

from __future__ import annotations

import json


def metric_counts(output: str, namespace: str = "ApraNova") -> dict[str, float]:
    """The sum of each metric over the metric lines in ``output`` (other lines are skipped)."""
    counts: dict[str, float] = {}
    for line in output.splitlines():
        if not line.startswith('{"_aws"'):
            continue
        document = json.loads(line)
        for directive in document["_aws"]["CloudWatchMetrics"]:
            assert directive["Namespace"] == namespace
            for metric in directive["Metrics"]:
                counts[metric["Name"]] = counts.get(metric["Name"], 0) + sum(document[metric["Name"]])
    return counts
