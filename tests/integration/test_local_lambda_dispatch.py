"""moto executes a state machine whose Lambda tasks run the in-repo handlers (local/lambda_dispatch)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from local import moto_stack


class PaymentDeclined(Exception):
    pass


def add_one(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {"value": event["value"] + 1, "function": context.function_name}


def decline(event: dict[str, Any], context: Any) -> dict[str, Any]:
    raise PaymentDeclined(f"card {event['card']} declined")


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    server = moto_stack.MotoServer()
    server.start()
    yield server.url
    server.stop()


def _run(moto_url: str, name: str, definition: dict[str, Any], payload: dict[str, Any]) -> dict[str, Any]:
    sfn = moto_stack.client("stepfunctions", moto_url)
    arn = sfn.create_state_machine(
        name=name,
        definition=json.dumps(definition),
        roleArn=f"arn:aws:iam::{moto_stack.ACCOUNT_ID}:role/sfn",
    )["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=arn, input=json.dumps(payload))["executionArn"]
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        described = sfn.describe_execution(executionArn=execution)
        if described["status"] != "RUNNING":
            return described
        time.sleep(0.05)
    raise AssertionError("the execution did not finish")


def test_a_task_runs_the_registered_handler(moto_url: str) -> None:
    arn = moto_stack.register_function(moto_url, "test-add-one", f"{__name__}:add_one")
    definition = {
        "StartAt": "AddOne",
        "States": {
            "AddOne": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": arn, "Payload.$": "$"},
                "OutputPath": "$.Payload",
                "End": True,
            }
        },
    }
    result = _run(moto_url, "add-one", definition, {"value": 41})
    assert result["status"] == "SUCCEEDED"
    assert json.loads(result["output"]) == {"value": 42, "function": "test-add-one"}


def test_a_raised_exception_is_caught_by_its_class_name(moto_url: str) -> None:
    arn = moto_stack.register_function(moto_url, "test-decline", f"{__name__}:decline")
    definition = {
        "StartAt": "Charge",
        "States": {
            "Charge": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": arn, "Payload.$": "$"},
                "Catch": [
                    {"ErrorEquals": ["SomethingElse"], "Next": "Wrong"},
                    {"ErrorEquals": ["PaymentDeclined"], "ResultPath": "$.error", "Next": "Declined"},
                ],
                "End": True,
            },
            "Wrong": {"Type": "Fail", "Error": "Wrong"},
            "Declined": {"Type": "Pass", "End": True},
        },
    }
    result = _run(moto_url, "decline", definition, {"card": "4000000000000002"})
    assert result["status"] == "SUCCEEDED"
    output = json.loads(result["output"])
    assert output["error"]["Error"] == "PaymentDeclined"
    assert json.loads(output["error"]["Cause"])["errorMessage"] == "card 4000000000000002 declined"


def test_an_uncaught_exception_fails_the_execution_with_its_name(moto_url: str) -> None:
    arn = moto_stack.register_function(moto_url, "test-decline", f"{__name__}:decline")
    definition = {
        "StartAt": "Charge",
        "States": {
            "Charge": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": arn, "Payload.$": "$"},
                "End": True,
            }
        },
    }
    result = _run(moto_url, "decline-uncaught", definition, {"card": "4000000000000002"})
    assert result["status"] == "FAILED"
    assert result.get("error") == "PaymentDeclined"


def test_boto3_invoke_reports_the_function_error(moto_url: str) -> None:
    moto_stack.register_function(moto_url, "test-decline", f"{__name__}:decline")
    response = moto_stack.client("lambda", moto_url).invoke(FunctionName="test-decline", Payload=b'{"card": "x"}')
    assert response["FunctionError"] == "Unhandled"
    assert json.loads(response["Payload"].read())["errorType"] == "PaymentDeclined"


def test_stopping_the_server_gives_back_mock_aws_defaults() -> None:
    from moto.core.config import default_user_config

    server = moto_stack.MotoServer()
    before = {key: default_user_config.get(key) for key in moto_stack.MOTO_CONFIG}
    server.start()
    assert default_user_config["stepfunctions"] == {"execute_state_machine": True}
    server.stop()
    assert {key: default_user_config.get(key) for key in moto_stack.MOTO_CONFIG} == before
