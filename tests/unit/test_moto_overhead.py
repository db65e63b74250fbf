"""The local stack's shortcuts through moto's request machinery answer what moto itself answers."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import requests
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.core.errors import get_error_model
from moto.core.utils import get_service_model
from moto.ecs.exceptions import ClusterNotFoundException
from moto.moto_server import werkzeug_app
from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.ssm.exceptions import ParameterNotFound

from local import moto_overhead, moto_stack

HOSTS = [
    "ssm.us-east-1.amazonaws.com",
    "states.eu-west-1.amazonaws.com",
    "email.us-east-1.amazonaws.com",
    "elasticfilesystem.us-east-1.amazonaws.com",
    "ecs.us-east-1.amazonaws.com",
    "example.org",  # no service's host
]


def test_a_services_errors_and_a_hosts_service_are_moto_s_own_answers():
    dispatcher = werkzeug_app.DomainDispatcherApplication(werkzeug_app.create_backend_app)
    routed = {host: dispatcher.get_backend_for_host(host) for host in HOSTS}
    ssm, ecs = get_service_model("ssm"), get_service_model("ecs")
    errors = {
        "ssm": get_error_model(ParameterNotFound("x"), ssm).error_code,
        "ecs": get_error_model(ClusterNotFoundException(), ecs).error_code,
    }
    assert routed["ssm.us-east-1.amazonaws.com"] == "ssm" and routed["example.org"] is None

    moto_overhead.install()

    for _ in range(2):  # the first answer is kept, the second comes from what was kept
        assert {host: dispatcher.get_backend_for_host(host) for host in HOSTS} == routed
        assert dispatcher.get_backend_for_host(None) is None
        assert get_error_model(ParameterNotFound("x"), ssm).error_code == errors["ssm"] == "ParameterNotFound"
        # One table per service: ECS's error is not looked up in SSM's table, nor the other way.
        assert (
            get_error_model(ClusterNotFoundException(), ecs).error_code == errors["ecs"] == "ClusterNotFoundException"
        )


@pytest.fixture
def moto_server():
    moto_overhead.install()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def test_a_missing_parameter_is_still_answered_as_aws_answers_it(moto_server):
    ssm = boto3.client(
        "ssm", endpoint_url=moto_server, region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s"
    )
    for _ in range(2):
        with pytest.raises(ClientError) as missing:
            ssm.get_parameter(Name="/apranova/test/none", WithDecryption=True)
        assert missing.value.response["Error"]["Code"] == "ParameterNotFound"
        assert missing.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    ssm.put_parameter(Name="/apranova/test/one", Value="v", Type="SecureString")
    assert ssm.get_parameter(Name="/apranova/test/one", WithDecryption=True)["Parameter"]["Value"] == "v"


def slow_step(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """A Lambda step for the tests below: takes ``event["seconds"]``."""
    time.sleep(event["seconds"])
    return {"slept": event["seconds"]}


@pytest.fixture
def local_moto() -> Iterator[str]:
    server = moto_stack.MotoServer()
    server.start()
    yield server.url
    server.stop()


def _run(moto_url: str, task: dict[str, Any], seconds: float) -> dict[str, Any]:
    arn = moto_stack.register_function(moto_url, "apranova-test-slow-step", f"{__name__}.slow_step")
    sfn = moto_stack.client("stepfunctions", moto_url)
    definition = {"StartAt": "Step", "States": {"Step": {"Type": "Task", "Resource": arn, "End": True, **task}}}
    machine = sfn.create_state_machine(
        name=f"slow-{uuid.uuid4().hex[:8]}",
        definition=json.dumps(definition),
        roleArn=f"arn:aws:iam::{moto_stack.ACCOUNT_ID}:role/{moto_stack.LAMBDA_ROLE}",
    )["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=machine, input=json.dumps({"seconds": seconds}))["executionArn"]
    deadline = time.monotonic() + 30
    while (described := sfn.describe_execution(executionArn=execution))["status"] == "RUNNING":
        assert time.monotonic() < deadline, "the execution did not end"
        time.sleep(0.1)
    return described


def test_a_task_state_without_a_timeout_runs_to_its_end(local_moto):
    described = _run(local_moto, {}, 0.2)
    assert described["status"] == "SUCCEEDED"
    assert json.loads(described["output"]) == {"slept": 0.2}


def test_a_task_state_with_a_timeout_is_still_timed_out(local_moto):
    described = _run(local_moto, {"TimeoutSeconds": 1}, 5)
    assert described["status"] == "FAILED"
    assert described.get("error") == "States.Timeout"  # not the step's own end, 5 s in


def test_moto_s_reset_still_empties_every_service_and_they_work_after_it(local_moto):
    ssm = moto_stack.client("ssm", local_moto)
    ssm.put_parameter(Name="/apranova/test/kept", Value="v", Type="String")
    requests.post(f"{local_moto}/moto-api/reset", timeout=10).raise_for_status()
    with pytest.raises(ClientError) as gone:
        ssm.get_parameter(Name="/apranova/test/kept")
    assert gone.value.response["Error"]["Code"] == "ParameterNotFound"
    ssm.put_parameter(Name="/apranova/test/kept", Value="again", Type="String")
    assert ssm.get_parameter(Name="/apranova/test/kept")["Parameter"]["Value"] == "again"


def test_each_mock_aws_starts_empty_even_for_a_backend_another_services_reset_reaches():
    """SESv2's backend holds SES's: SESv2's reset looks SES's up while moto's reset runs."""
    moto_overhead.install()
    for _ in range(3):
        with mock_aws():
            ses = boto3.client("sesv2", region_name="us-east-1")
            ses.create_configuration_set(ConfigurationSetName="apranova-once")
            assert ses.list_configuration_sets()["ConfigurationSets"] == ["apranova-once"]
