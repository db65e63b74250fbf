"""Starting the Step Functions workflows (enrollment, deprovision) by business key.

The execution name is derived from the business object (one payment → one enrollment), so a
second start for the same payment is the same execution: Step Functions refuses a duplicate name
(``ExecutionAlreadyExists``), which here means the work is already under way.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from apranova.observability import logger
from apranova.workflow_inputs import DeprovisionInput, EnrollmentInput, WorkflowInput


@cache
def client() -> Any:
    import boto3

    return boto3.client("stepfunctions")


def execution_name(kind: str, key: str) -> str:
    """A valid execution name (≤ 80 characters of ``[A-Za-z0-9-_]``) for ``kind`` of ``key``."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", f"{kind}-{key}")[:80]


def execution_arn(state_machine_arn: str, name: str) -> str:
    return state_machine_arn.replace(":stateMachine:", ":execution:", 1) + f":{name}"


def start(state_machine_arn: str, name: str, workflow_input: WorkflowInput) -> tuple[str, bool]:
    """Starts the execution ``name`` with the machine's input contract
    (:mod:`apranova.workflow_inputs`); returns its ARN and whether this call started it.

    Only the contract's models are taken: a hand-written payload (a dict) is how an execution came
    to fail on a missing field before any step ran, so it is refused (``TypeError``) before anything
    is sent.
    """
    if not isinstance(workflow_input, (EnrollmentInput, DeprovisionInput)):
        raise TypeError(
            f"workflows.start takes an EnrollmentInput or DeprovisionInput, not {type(workflow_input).__name__}"
        )
    body = workflow_input.execution_input()
    sfn = client()
    try:
        started = sfn.start_execution(stateMachineArn=state_machine_arn, name=name, input=body)
    except sfn.exceptions.ExecutionAlreadyExists:
        logger.info("execution already exists", extra={"execution": name})
        return execution_arn(state_machine_arn, name), False
    return started["executionArn"], True


def execution_status(execution_arn: str) -> str | None:
    """The execution's status (``RUNNING``, ``SUCCEEDED``, ``FAILED``, ``TIMED_OUT``, ``ABORTED``),
    or None when there is no such execution (not started yet)."""
    sfn = client()
    try:
        return sfn.describe_execution(executionArn=execution_arn)["status"]
    except sfn.exceptions.ExecutionDoesNotExist:
        return None


def reset() -> None:
    client.cache_clear()
