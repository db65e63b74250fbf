"""The one translation of AWS SDK failures into the provisioners' two error classes.

Every provisioner that calls AWS (SSM for credentials and student passwords, ECS and EFS for
workspaces) sorts a failure the same way: a throttled, busy or failing service (a code in
``TRANSIENT_AWS_CODES``, or any HTTP 5xx) and an unreachable endpoint are ``ToolUnavailable``, so
the workflow retries; any other refusal and a client-side error are ``ToolFailed``. Messages carry
the action, the service and the AWS error code or exception class, never a parameter value.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as AwsConnectionError

from functions.provision.tools import ToolError, ToolFailed, ToolUnavailable

# Error codes AWS answers while it is throttling, busy or failing: worth a retry.
TRANSIENT_AWS_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "TooManyUpdates",
        "ServerException",  # ECS 5xx
        "InternalServerError",  # EFS 5xx
        "InternalFailure",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "RequestTimeout",
        "IncorrectFileSystemLifeCycleState",  # EFS: the file system is still being created or updated
        "KMSInternalException",
    }
)


def aws_code(exc: ClientError) -> str:
    """The AWS error code of ``exc`` (``""`` when the answer carries none)."""
    return str(exc.response.get("Error", {}).get("Code", ""))


def is_transient(exc: ClientError) -> bool:
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
    return aws_code(exc) in TRANSIENT_AWS_CODES or status >= 500


def aws_error(action: str, exc: BaseException, service: str = "AWS") -> ToolError:
    """``ToolUnavailable`` or ``ToolFailed`` for an exception an AWS call raised."""
    if isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        code = aws_code(exc) or status
        if is_transient(exc):
            return ToolUnavailable(f"{action}: {service} unavailable: {code}")
        return ToolFailed(f"{action}: {service} refused: {code}")
    if isinstance(exc, AwsConnectionError | HTTPClientError):
        return ToolUnavailable(f"{action}: {service} unreachable: {type(exc).__name__}")
    if isinstance(exc, BotoCoreError):
        return ToolFailed(f"{action}: {service} client error: {type(exc).__name__}")
    return ToolFailed(f"{action}: {type(exc).__name__}")


@contextmanager
def aws_translated(action: str, service: str = "AWS") -> Iterator[None]:
    """AWS failures inside the block raised as ``aws_error`` (tool errors pass through)."""
    try:
        yield
    except ToolError:
        raise
    except (ClientError, BotoCoreError) as exc:
        raise aws_error(action, exc, service) from exc
