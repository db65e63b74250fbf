"""API Gateway HTTP API (payload format 2.0) events, as API Gateway would send them to a function.

The one builder for every place our code calls a function's handler without API Gateway: the local
server, the benchmarks and the tests. The ``routeKey`` is the deployed route's (no trailing slash),
or ``$default`` when no route matches, exactly as in AWS.
"""

from __future__ import annotations

import base64
import time
import uuid
from typing import Any
from urllib.parse import urlencode

from apranova import routes

ACCOUNT_ID = "000000000000"
API_ID = "local"


def http_api_event(
    method: str,
    path: str,
    *,
    body: str | bytes | None = None,
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    raw_query: str | None = None,
    cookies: list[str] | None = None,
    claims: dict[str, Any] | None = None,
    source_ip: str = "127.0.0.1",
    domain: str = "127.0.0.1",
    protocol: str = "HTTP/1.1",
    request_id: str | None = None,
) -> dict[str, Any]:
    """The event for ``method path``. ``body`` as bytes is sent base64-encoded, as API Gateway does
    for content that is not text. ``query`` values are already comma-joined for repeated keys."""
    route, _ = routes.match(method, path)
    route_key = route.gateway_key if route else "$default"
    lowered = {k.lower(): v for k, v in (headers or {}).items()}
    lowered.setdefault("user-agent", "apranova-tests")
    lowered.setdefault("x-forwarded-for", source_ip)
    lowered.setdefault("x-forwarded-proto", "http")
    if body is not None and headers is None:
        lowered["content-type"] = "application/json"
    is_base64 = isinstance(body, bytes)
    request_id = request_id or uuid.uuid4().hex
    now = time.time()
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": raw_query if raw_query is not None else urlencode(query or {}),
        "headers": lowered,
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": API_ID,
            "domainName": domain,
            "domainPrefix": domain.split(".")[0],
            "http": {
                "method": method.upper(),
                "path": path,
                "protocol": protocol,
                "sourceIp": source_ip,
                "userAgent": lowered["user-agent"],
            },
            "requestId": request_id,
            "routeKey": route_key,
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": is_base64,
    }
    if cookies:
        event["cookies"] = list(cookies)
    if query:
        event["queryStringParameters"] = dict(query)
    if route:
        params = routes.path_parameters(route, path)
        if params:
            event["pathParameters"] = params
    if body is not None:
        event["body"] = (
            base64.b64encode(body.encode() if isinstance(body, str) else body).decode() if is_base64 else body
        )
    if claims is not None:
        # Claims made up by a test or the bench stand for a token issued now. Real tokens (the
        # local server's, verified by local/jwt_check.py) always carry their own ``iat``.
        claims = {"iat": str(int(now)), **claims}
        event["requestContext"]["authorizer"] = {"jwt": {"claims": claims, "scopes": None}}
    return event


class LambdaContext:
    """The attributes of the Lambda context object our code and Powertools read."""

    def __init__(self, function_name: str, request_id: str | None = None, timeout_seconds: float = 30) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:{ACCOUNT_ID}:function:{function_name}"
        self.memory_limit_in_mb = 512
        self.aws_request_id = request_id or uuid.uuid4().hex
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))
