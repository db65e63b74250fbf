"""The one place HTTP meets the domain: a Powertools resolver every API function builds on.

``create_app`` returns an ``APIGatewayHttpResolver`` with request validation and OpenAPI on, plus:
- a guard run before every route: body size (413), the caller's access checked against the route
  table (401/403), so no route can forget it, well-formed JSON (400), and no character PostgreSQL
  text cannot hold in the body, the query or the path (422);
- the single mapping of errors to the JSON error body (domain errors, validation, 404/405, 500).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

import psycopg
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.logging import correlation_paths

from apranova import db, routes
from apranova.audit import RequestInfo
from apranova.errors import (
    AppError,
    Forbidden,
    InvalidJson,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
    Unauthorized,
    ValidationFailed,
    error_body,
    validation_details,
)
from apranova.identity import Caller, caller_from_event
from apranova.observability import logger

MAX_BODY_BYTES = 1024 * 1024
# PostgreSQL text and jsonb cannot hold U+0000, and UTF-8 cannot encode a lone surrogate (JSON's
# "\ud800"): a value holding either fails in the database, whatever the route does with it.
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
MAX_REPORTED_FIELDS = 10


def error_response(error: AppError) -> Response:
    return Response(
        status_code=error.status,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps(error_body(error.code, error.message, error.details)),
        headers=error.headers or None,
    )


def _raw_body_size(event: dict[str, Any]) -> int:
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        return len(body) * 3 // 4
    return len(body.encode("utf-8"))


def check_access(route: routes.Route, caller: Caller | None) -> None:
    if not route.access.needs_token:
        return
    if caller is None:
        raise Unauthorized("Authentication credentials were not provided or are not valid.")
    allowed = {
        routes.Access.USER: True,
        routes.Access.STUDENT: caller.is_student,
        routes.Access.TRAINER: caller.is_trainer,
        routes.Access.ADMIN: caller.is_admin,
    }[route.access]
    if not allowed:
        raise Forbidden("You do not have permission to perform this action.")


def _guard_for(table: dict[str, routes.Route]) -> Callable[[APIGatewayHttpResolver, NextMiddleware], Response]:
    def guard(app: APIGatewayHttpResolver, next_middleware: NextMiddleware) -> Response:
        event = app.current_event.raw_event
        if _raw_body_size(event) > MAX_BODY_BYTES:
            raise PayloadTooLarge(f"The request body is larger than {MAX_BODY_BYTES} bytes.")
        route = table.get(event.get("routeKey", ""))
        if route is None:  # API Gateway's $default route (or a route missing from the table): 404/405
            http = app.current_event.request_context.http
            raise not_found_or_not_allowed(http.method, app.current_event.path)
        check_access(route, caller_from_event(event))
        # The webhook's body is Stripe's, checked by its signature.
        body = _NOT_PARSED if route.access is routes.Access.STRIPE else _parsed_body(event, app.current_event.headers)
        fields = _unstorable_fields("path", event.get("pathParameters"))
        fields += _unstorable_fields("query", event.get("queryStringParameters"))
        fields += _unstorable_fields("body", body)
        if fields:
            # Before the route runs: nothing is written, and the value is not echoed.
            raise ValidationFailed(
                "The request contains a character that cannot be stored (NUL or an unpaired surrogate).",
                details=[
                    {"field": f, "code": "invalid_character", "message": "NUL and unpaired surrogates cannot be stored"}
                    for f in fields[:MAX_REPORTED_FIELDS]
                ],
            )
        return next_middleware(app)

    return guard


_NOT_PARSED = object()


def _parsed_body(event: dict[str, Any], headers: Any) -> Any:
    """The body as the validation will read it (JSON, or a form's fields), or ``_NOT_PARSED``.

    A plain-text body must be JSON (400 otherwise). A base64-encoded one (API Gateway encodes
    what it does not take for text) is decoded as Powertools decodes it, only to be scanned: what
    it is otherwise is the validation's to answer.
    """
    body = event.get("body")
    if not body:
        return _NOT_PARSED
    encoded = bool(event.get("isBase64Encoded"))
    if encoded:
        try:
            body = base64.b64decode(body).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return _NOT_PARSED
    content_type = (headers.get("content-type") or "").strip().lower()
    if encoded and content_type.startswith("application/x-www-form-urlencoded"):
        return {name: values[0] if len(values) == 1 else values for name, values in parse_qs(body, True).items()}
    if encoded and content_type and not content_type.startswith("application/json"):
        return body  # scanned whole (a multipart form's fields are in it as they are)
    try:
        return json.loads(body)
    except RecursionError:
        raise InvalidJson("The request body is nested too deeply.") from None
    except ValueError:
        if encoded:
            return _NOT_PARSED
        raise InvalidJson("The request body is not valid JSON.") from None


def _unstorable_fields(place: str, value: Any) -> list[str]:
    """Where in ``value`` (any depth, keys included) a string holds a character PostgreSQL cannot
    store, as ``place.key.0.key`` (iterative: a deep document cannot exhaust the stack)."""
    found: list[str] = []
    pending: list[tuple[str, Any]] = [] if value is _NOT_PARSED else [(place, value)]
    while pending and len(found) < MAX_REPORTED_FIELDS:
        path, item = pending.pop()
        if isinstance(item, str):
            if UNSTORABLE.search(item):
                found.append(path)
        elif isinstance(item, dict):
            for key, child in item.items():
                name = f"{path}.{_shown(str(key))}"
                if UNSTORABLE.search(str(key)):
                    found.append(name)
                pending.append((name, child))
        elif isinstance(item, list):
            pending.extend((f"{path}.{index}", child) for index, child in enumerate(item))
    return sorted(found)


def _shown(key: str) -> str:
    """A key as a field name: the offending characters escaped, never more than 64 characters."""
    return UNSTORABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", key[:64])


def not_found_or_not_allowed(method: str, path: str) -> AppError:
    route, allowed = routes.match(method, path)
    if allowed and route is None:
        return MethodNotAllowed(
            f'Method "{method.upper()}" not allowed.', headers={"Allow": ", ".join(sorted(allowed))}
        )
    return NotFound("No route matches this request.")


def create_app(route_table: dict[str, routes.Route] | None = None) -> APIGatewayHttpResolver:
    """``route_table`` defaults to the API's; tests of this module pass their own."""
    app = APIGatewayHttpResolver(enable_validation=True)
    guard = _guard_for(routes.ROUTES_BY_KEY if route_table is None else route_table)
    # Powertools runs request validation before any middleware given to ``use``; the guard must
    # come first (an anonymous caller gets 401, not a 422 describing the schema), so it wraps the
    # validation middleware itself. Pinned Powertools; tests/integration/test_api_contract.py
    # proves the order.
    validation = app._request_validation_middleware
    app._request_validation_middleware = lambda current, next_middleware: guard(
        current, lambda after_guard: validation(after_guard, next_middleware)
    )

    @app.exception_handler(AppError)
    def _app_error(error: AppError) -> Response:
        return error_response(error)

    @app.exception_handler(RequestValidationError)
    def _validation_error(error: RequestValidationError) -> Response:
        errors = error.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return error_response(InvalidJson("The request body is not valid JSON."))
        return error_response(ValidationFailed("The request is not valid.", details=validation_details(list(errors))))

    @app.not_found
    def _not_found(_: Exception) -> Response:
        event = app.current_event
        return error_response(not_found_or_not_allowed(event.request_context.http.method, event.path))

    @app.exception_handler(psycopg.OperationalError)
    def _database_unavailable(error: psycopg.OperationalError) -> Response:
        # The connection is gone (restart, failover, idle timeout): drop it so the next request
        # reconnects, and tell this caller to retry.
        logger.warning("database unavailable", extra={"error_class": type(error).__name__})
        db.reset()
        return error_response(
            ServiceUnavailable("The service is temporarily unavailable.", headers={"Retry-After": "1"})
        )

    @app.exception_handler(Exception)
    def _unexpected(error: Exception) -> Response:
        logger.exception("unhandled error")
        return Response(
            status_code=500,
            content_type=content_types.APPLICATION_JSON,
            body=json.dumps(error_body("internal_error", "An unexpected error occurred.")),
        )

    return app


def caller(app: APIGatewayHttpResolver) -> Caller:
    """The signed-in caller of the current request (the guard already required one)."""
    found = caller_from_event(app.current_event.raw_event)
    if found is None:
        raise Unauthorized("Authentication credentials were not provided or are not valid.")
    return found


def request_info(app: APIGatewayHttpResolver) -> RequestInfo:
    """The current request's origin for audit rows: source IP, user agent and request id."""
    context = app.current_event.request_context
    return RequestInfo(
        ip_address=context.http.source_ip,
        # Stored in the audit rows: a header cannot carry NUL in HTTP, but text never holds it.
        user_agent=UNSTORABLE.sub("", app.current_event.headers.get("user-agent") or "") or None,
        request_id=context.request_id,
    )


def lambda_entry(app: APIGatewayHttpResolver) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """The Lambda handler for an API function, with structured logging around it.

    A function that emits metrics decorates its own entry with ``metrics.log_metrics``: flushing
    an empty metric set on every request only warns.
    """

    @logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return app.resolve(event, context)

    return handler
