"""Handlers the Lambda worker-process tests invoke (tests/integration/test_lambda_workers.py): the
workers import them by name, as they import the step handlers."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any


class StepRefused(Exception):
    pass


def echo(event: dict[str, Any], context: Any) -> dict[str, Any]:
    time.sleep(float(event.get("sleep", 0)))
    return {
        "event": event,
        "pid": os.getpid(),
        "setting": os.environ.get("LAMBDA_WORKERS_TEST_SETTING"),
        "function": context.function_name,
    }


def refuse(event: dict[str, Any], context: Any) -> dict[str, Any]:
    raise StepRefused(f"refused {event.get('who')}")


def die(event: dict[str, Any], context: Any) -> dict[str, Any]:
    os._exit(3)


def meet(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Waits (at most 30 s) until ``event["expect"]`` invocations have arrived in ``event["dir"]``:
    fails unless they all run at the same time."""
    folder = Path(event["dir"])
    (folder / context.aws_request_id).touch()
    deadline = time.monotonic() + 30
    while len(list(folder.iterdir())) < int(event["expect"]):
        if time.monotonic() > deadline:
            raise TimeoutError("the other invocations never ran meanwhile")
        time.sleep(0.02)
    return {"pid": os.getpid()}
