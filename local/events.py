"""API Gateway HTTP API (payload format 2.0) events, as API Gateway would send them to a function.

Used wherever our code calls a function's handler without API Gateway: the local server, the
benchmarks and the tests.
"""

from __future__ import annotations

import base64
import time
import uuid
from typing import Any
from urllib.parse import urlencode

from apranova import routes


def http_api_event(
    method: str,
    path: str,
    *,
    body: str | bytes | None = None,
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    claims: dict[str, Any] | None = None,
    source_ip: str = "127.0.0.1",
    request_id: str | None = None,
) -> dict[str, Any]:
    """The event for ``method path``: routeKey and path parameters from the route table, else $default."""
    route, _ = routes.match(method, path)
    lowered = {k.lower(): v for k, v in (headers or {}).items()}
    lowered.setdefault("user-agent", "apranova-tests")
    if body is not None:
        lowered.setdefault("content-type", "application/json")
    is_base64 = isinstance(body, bytes)
    request_id = request_id or uuid.uuid4().hex
    now = time.time()
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route.key if route else "$default",
        "rawPath": path,
        "rawQueryString": urlencode(query or {}),
        "headers": lowered,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": "127.0.0.1",
            "domainPrefix": "local",
            "http": {
                "method": method.upper(),
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": lowered["user-agent"],
            },
            "requestId": request_id,
            "routeKey": route.key if route else "$default",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": is_base64,
    }
    if query:
        event["queryStringParameters"] = dict(query)
    if route:
        params = routes.path_parameters(route, path)
        if params:
            event["pathParameters"] = params
    if body is not None:
        event["body"] = base64.b64encode(body).decode() if is_base64 else body
    if claims:
        event["requestContext"]["authorizer"] = {"jwt": {"claims": claims, "scopes": None}}
    return event


class LambdaContext:
    """The attributes of the Lambda context object our code and Powertools read."""

    def __init__(self, function_name: str, request_id: str | None = None) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:000000000000:function:{function_name}"
        self.memory_limit_in_mb = 512
        self.aws_request_id = request_id or uuid.uuid4().hex
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + 30

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))
