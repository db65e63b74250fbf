"""What the stack's domain modules share: parameter names, a function's schedule from its inventory
row, and the daily jobs' retry window."""

from __future__ import annotations

import re

from aws_cdk import Duration
from aws_cdk import aws_scheduler as scheduler

from apranova import inventory
from cdk.constructs.python_function import PythonFunction

# A daily job whose run failed may be retried for an hour; after that the next day's run resumes it.
DAILY_EVENT_AGE = Duration.hours(1)


def parameter_name(stage: str, suffix: str) -> str:
    return f"/apranova/{stage}/{suffix}"


def schedule_of(fn: PythonFunction) -> scheduler.ScheduleExpression:
    """The function's schedule, as its inventory row gives it."""
    expression = inventory.get(fn.name).schedule
    if expression is None:
        raise ValueError(f"{fn.name} has no schedule in the function inventory")
    return scheduler.ScheduleExpression.expression(expression)


def period_of(fn: PythonFunction) -> Duration:
    """How often a ``rate(N minutes)`` schedule runs the function (an alarm's period)."""
    found = re.fullmatch(r"rate\((\d+) minutes?\)", inventory.get(fn.name).schedule or "")
    if found is None:
        raise ValueError(f"{fn.name}: not a rate in minutes")
    return Duration.minutes(int(found.group(1)))
