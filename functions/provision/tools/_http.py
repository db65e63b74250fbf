"""What the provisioners of shared HTTP tools (JupyterHub, Prefect) have in common.

``ToolParameters`` reads a tool's base URL and admin credentials from SSM through Powertools (cached
``max_age`` seconds, re-read on demand after the tool refuses a credential, so a rotated token is
picked up). ``ToolHttp`` makes one request with explicit timeouts and sorts failures into the two
error classes: refused or dropped connections, timeouts, 5xx and 429 are ``ToolUnavailable``; the
caller decides which other statuses it expects and turns the rest into ``ToolFailed`` with
``refused``. Messages carry the action, the status and the tool's own short message, never a
credential, a request body or a response body.
"""

from __future__ import annotations

import re
import time
from typing import Any
from urllib.parse import urlsplit

import requests
from aws_lambda_powertools.utilities.parameters import SSMProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
from botocore.exceptions import ClientError

from functions.provision.tools import ToolFailed, ToolNotConfigured, ToolUnavailable
from functions.provision.tools.aws_errors import aws_code, aws_error

_MESSAGE_KEYS = ("message", "detail", "exception_message", "msg")
_SAFE_TEXT = re.compile(r"[^\w .,:;'\"()\[\]/=-]")


class ToolParameters:
    """SSM parameters of one shared tool, decrypted, cached per instance."""

    def __init__(self, ssm_client: Any, max_age: int) -> None:
        self._provider = SSMProvider(boto3_client=ssm_client)
        self._max_age = max_age

    def get(self, name: str, *, required: bool = True, refresh: bool = False) -> str | None:
        try:
            value = self._provider.get(name, max_age=self._max_age, decrypt=True, force_fetch=refresh)
        except GetParameterError as exc:
            cause = exc.__cause__ or exc.__context__
            if isinstance(cause, ClientError) and aws_code(cause) == "ParameterNotFound":
                if required:
                    raise ToolFailed(f"SSM parameter {name} is missing") from None
                return None
            raise aws_error(f"reading {name}", cause or exc, "SSM") from None
        text = str(value).strip()
        if not text:
            raise ToolFailed(f"SSM parameter {name} is empty")
        return text

    def base_url(self, name: str) -> str:
        """An ``http(s)://host[:port][/path]`` URL without a trailing slash, query or credentials;
        no parameter at all means the tool is not configured here (``ToolNotConfigured``)."""
        value = self.get(name, required=False)
        if value is None:
            raise ToolNotConfigured(f"SSM parameter {name} is missing: the tool is not configured")
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
            raise ToolFailed(f"SSM parameter {name} is not an http(s) base URL")
        if parts.username or parts.password:
            raise ToolFailed(f"SSM parameter {name} holds credentials in the URL")
        return value.rstrip("/")


IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE"})
BUSY = frozenset({502, 503, 504})
BUSY_RETRY_DELAYS = (0.2, 0.5)


class ToolHttp:
    """One tool's HTTP calls on a shared ``requests.Session``, with connect and read timeouts."""

    def __init__(self, tool: str, session: requests.Session, connect_timeout: float, read_timeout: float) -> None:
        self.tool = tool
        self._session = session
        self._timeouts = (connect_timeout, read_timeout)

    def request(
        self,
        method: str,
        url: str,
        *,
        action: str,
        headers: dict[str, str] | None = None,
        json: Any = None,
        params: dict[str, str] | None = None,
        read_timeout: float | None = None,
    ) -> requests.Response:
        timeout = (self._timeouts[0], read_timeout or self._timeouts[1])
        try:
            for delay in (*BUSY_RETRY_DELAYS, None):
                response = self._session.request(
                    method, url, headers=headers, json=json, params=params, timeout=timeout, allow_redirects=False
                )
                # A busy tool (a database lock, a restarting worker) often answers the next call: an
                # idempotent request is tried again at once before the workflow's slower retry.
                if delay is None or method.upper() not in IDEMPOTENT or response.status_code not in BUSY:
                    break
                time.sleep(delay)
        except requests.Timeout:
            raise ToolUnavailable(f"{action}: {self.tool} did not answer in time") from None
        except requests.ConnectionError:
            raise ToolUnavailable(f"{action}: {self.tool} refused or dropped the connection") from None
        except requests.RequestException as exc:
            raise ToolFailed(f"{action}: {self.tool} request failed: {type(exc).__name__}") from None
        if response.status_code >= 500 or response.status_code == 429:
            raise ToolUnavailable(f"{action}: {self.tool} answered {response.status_code}")
        return response

    def refused(self, action: str, response: requests.Response) -> ToolFailed:
        """The permanent failure for an answer the caller did not expect."""
        message = tool_message(response)
        return ToolFailed(
            f"{action}: {self.tool} answered {response.status_code}" + (f": {message}" if message else "")
        )


def tool_message(response: requests.Response) -> str:
    """The tool's own short error message (JupyterHub ``message``, Prefect ``detail``), sanitised."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if not isinstance(body, dict):
        return ""
    for key in _MESSAGE_KEYS:
        value = body.get(key)
        if isinstance(value, str) and value:
            return _SAFE_TEXT.sub("?", value)[:200]
    return ""
