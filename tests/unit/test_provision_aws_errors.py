"""The provisioners' one translation of AWS failures (functions/provision/tools/aws_errors.py):
throttling, busy or failing services and unreachable endpoints are retried (``ToolUnavailable``),
every other refusal is permanent (``ToolFailed``)."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ParamValidationError

from functions.provision.tools import ToolFailed, ToolUnavailable
from functions.provision.tools.aws_errors import TRANSIENT_AWS_CODES, aws_error, aws_translated


def client_error(code: str, status: int = 400) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": "the value s3cr3t"}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "GetParameter",
    )


@pytest.mark.parametrize("code", sorted(TRANSIENT_AWS_CODES))
def test_transient_codes_are_retried(code: str) -> None:
    error = aws_error("read /p", client_error(code), "SSM")
    assert isinstance(error, ToolUnavailable)
    assert str(error) == f"read /p: SSM unavailable: {code}"


def test_any_server_error_is_retried_and_other_refusals_are_permanent() -> None:
    assert isinstance(aws_error("start", client_error("SomethingNew", 503)), ToolUnavailable)
    refused = aws_error("start", client_error("AccessDeniedException", 403))
    assert type(refused) is ToolFailed
    assert str(refused) == "start: AWS refused: AccessDeniedException"
    assert "s3cr3t" not in str(refused)


def test_transport_and_client_side_errors() -> None:
    unreachable = aws_error("read /p", EndpointConnectionError(endpoint_url="https://ssm"), "SSM")
    assert isinstance(unreachable, ToolUnavailable)
    assert str(unreachable) == "read /p: SSM unreachable: EndpointConnectionError"
    client_side = aws_error("read /p", ParamValidationError(report="bad"), "SSM")
    assert type(client_side) is ToolFailed
    assert str(client_side) == "read /p: SSM client error: ParamValidationError"


def test_the_context_manager_translates_and_lets_tool_errors_through() -> None:
    with pytest.raises(ToolUnavailable, match="stop workspace: AWS unavailable: ThrottlingException"):
        with aws_translated("stop workspace"):
            raise client_error("ThrottlingException")
    with pytest.raises(ToolFailed, match="^mine$"):
        with aws_translated("stop workspace"):
            raise ToolFailed("mine")
    with pytest.raises(KeyError):
        with aws_translated("stop workspace"):
            raise KeyError("not an AWS failure")
