"""The ALERT log lines page the operators (issue 20, item 6): every function's log group has the
metric filter on ``apranova.alerts``' message prefix, all counting into the stage's one alert
metric, and that metric's alarm notifies the ops topic on the first alert."""

from __future__ import annotations

import io
import json
import logging

from aws_cdk.assertions import Template

from apranova import alerts
from apranova.observability import logger
from cdk.constructs.python_function import METRICS_NAMESPACE, PythonFunction

PATTERN = '{ $.message = "ALERT: *" }'


def _resources(template: Template, type_: str) -> dict:
    return template.find_resources(type_)


def test_every_function_log_group_counts_its_alert_lines(synthesized):
    _app, stack, _assembly, main = synthesized
    operations = Template.from_stack(stack.operations)
    (nested,) = [r for i, r in _resources(main, "AWS::CloudFormation::Stack").items() if i.startswith("Operations")]
    parameters = nested["Properties"]["Parameters"]
    log_groups = {
        stack.get_logical_id(c.log_group.node.default_child)
        for c in stack.node.find_all()
        if isinstance(c, PythonFunction)
    }
    assert len(log_groups) > 20  # API functions, steps, jobs, the worker, the migration
    filters = _resources(operations, "AWS::Logs::MetricFilter").values()
    filtered = []
    for metric_filter in filters:
        props = metric_filter["Properties"]
        assert props["FilterPattern"] == PATTERN
        assert props["MetricTransformations"] == [
            {"MetricNamespace": METRICS_NAMESPACE, "MetricName": "Alerts-dev", "MetricValue": "1"}
        ]
        # The nested stack reads the log group's name from the main stack's parameter.
        filtered.append(parameters[props["LogGroupName"]["Ref"]]["Ref"])
    assert sorted(filtered) == sorted(log_groups)  # one filter per log group, none missing, none twice


def test_the_alert_metric_pages_the_ops_topic_on_the_first_alert(synthesized):
    _app, stack, _assembly, _main = synthesized
    operations = Template.from_stack(stack.operations)
    ((topic_id, _),) = _resources(operations, "AWS::SNS::Topic").items()
    (alarm,) = [
        a["Properties"]
        for a in _resources(operations, "AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("MetricName") == "Alerts-dev"
    ]
    assert alarm["AlarmName"] == "apranova-dev-Alerts"
    assert alarm["Namespace"] == METRICS_NAMESPACE
    assert alarm["Statistic"] == "Sum" and alarm["Period"] == 300
    assert alarm["Threshold"] == 1 and alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["EvaluationPeriods"] == 1
    assert alarm["TreatMissingData"] == "notBreaching"
    assert alarm["AlarmActions"] == [{"Ref": topic_id}]
    assert "Dimensions" not in alarm  # the filters publish without dimensions


def test_the_pattern_matches_the_line_an_alert_writes(monkeypatch):
    """What ``alerts.alert`` logs is a JSON line whose message the filter pattern's prefix starts."""
    monkeypatch.setenv("OPS_EMAIL", "")
    alerts.reset()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logger.registered_formatter)
    logging.getLogger(logger.name).addHandler(handler)
    try:
        alerts.alert("Chargeback opened", {"payment_id": "p1"})
    finally:
        logging.getLogger(logger.name).removeHandler(handler)
        alerts.reset()
    (line,) = [json.loads(text) for text in stream.getvalue().splitlines()]
    prefix = PATTERN.split('"')[1].rstrip("*")
    assert line["message"].startswith(prefix)
    assert line["message"] == "ALERT: Chargeback opened"
    assert line["level"] == "ERROR" and line["alert"] == {"payment_id": "p1"}
