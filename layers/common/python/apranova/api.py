"""The one place HTTP meets the domain: a Powertools resolver every API function builds on.

``create_app`` returns an ``APIGatewayHttpResolver`` with request validation and OpenAPI on, plus:
- a guard run before every route: body size (413); where the route needs a token, the token (401)
  and the session: one primary-key read saying that the token's user exists, is active, holds the
  role the route needs *now* and has not ended their sessions since the token was issued (401/403;
  ``apranova.identity``); a body the validation can read (415 for a content type it does not take,
  400 for bytes that are not UTF-8, a broken multipart form or malformed JSON); no character
  PostgreSQL text cannot hold in the body, the query or the path (422); no query parameter the route
  does not declare (422); a JSON body whose top level is what the route takes (422);
- the single mapping of errors to the JSON error body (domain errors, validation, 404/405, 500);
- the security headers on every answer (``lambda_entry``).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, cast
from urllib.parse import parse_qs

import psycopg
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import BaseRouter
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.event_handler.middlewares.openapi_validation import (
    _extract_multipart_boundary,
    _is_or_contains_sequence,
    _parse_multipart_body,
)
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2

from apranova import db, routes
from apranova.audit import RequestInfo
from apranova.errors import (
    AppError,
    Forbidden,
    InvalidJson,
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
    Unauthorized,
    UnsupportedMediaType,
    ValidationFailed,
    error_body,
    validation_details,
)
from apranova.identity import (
    Caller,
    caller_from_event,
    caller_with_role,
    current_session,
    issued_at,
    token_claims,
)
from apranova.observability import entry, logger

MAX_BODY_BYTES = 1024 * 1024
# PostgreSQL text and jsonb cannot hold U+0000, and UTF-8 cannot encode a lone surrogate (JSON's
# "\ud800"): a value holding either fails in the database, whatever the route does with it.
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
MAX_REPORTED_FIELDS = 10
NOT_AUTHENTICATED = "Authentication credentials were not provided or are not valid."
SESSION_ENDED = "This session has ended; sign in again."

# On every answer of every API function (lambda_entry). HSTS: a year, subdomains included; the API
# is served over HTTPS only (API Gateway, CloudFront).
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
    "Referrer-Policy": "no-referrer",
}
NO_STORE = "no-store"


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
    """The route's access rule against ``caller``'s groups (401 without a caller, 403 wrong role)."""
    if not route.access.needs_token:
        return
    if caller is None:
        raise Unauthorized(NOT_AUTHENTICATED)
    allowed = {
        routes.Access.USER: True,
        routes.Access.STUDENT: caller.is_student,
        routes.Access.TRAINER: caller.is_trainer,
        routes.Access.ADMIN: caller.is_admin,
    }[route.access]
    if not allowed:
        raise Forbidden("You do not have permission to perform this action.")


# The current request's signed-in caller, set by the guard. Request state, not the resolver's: a
# Powertools Router reads ``context`` from the last resolver that included it, and the local stack
# runs several copies of a handler module (its environments) whose resolvers include the same
# routers; a context variable is the request's own in Lambda and in every local environment.
_CALLER: ContextVar[Caller | None] = ContextVar("apranova_caller", default=None)


def _guard_for(table: dict[str, routes.Route]) -> Callable[[APIGatewayHttpResolver, NextMiddleware], Response]:
    def guard(app: APIGatewayHttpResolver, next_middleware: NextMiddleware) -> Response:
        _CALLER.set(None)  # nothing of an earlier request in this environment
        event = app.current_event.raw_event
        if _raw_body_size(event) > MAX_BODY_BYTES:
            raise PayloadTooLarge(f"The request body is larger than {MAX_BODY_BYTES} bytes.")
        route = table.get(event.get("routeKey", ""))
        if route is None:  # API Gateway's $default route (or a route missing from the table): 404/405
            http = app.current_event.request_context.http
            raise not_found_or_not_allowed(http.method, app.current_event.path)
        if route.access.needs_token:
            token = caller_from_event(event)
            if token is None:
                raise Unauthorized(NOT_AUTHENTICATED)
            # Who the caller is now (one primary-key read), before anything of the request is read.
            _CALLER.set(_session_caller(route, token, event))
        # The webhook's body is Stripe's, checked by its signature.
        body, is_json = (
            (_NOT_PARSED, False)
            if route.access is routes.Access.STRIPE
            else _parsed_body(event, app.current_event.headers)
        )
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
        _check_query_names(app, event.get("queryStringParameters"))
        if is_json:
            _check_top_level(body, _takes_a_list(app))
        return next_middleware(app)

    return guard


def _session_caller(route: routes.Route, token: Caller, event: dict[str, Any]) -> Caller:
    """The token's caller with their role *now*, if the database says the session still holds."""
    iat = issued_at(token_claims(event))
    if iat is None:  # Cognito's access tokens always carry it; without it nothing proves the session
        raise Unauthorized(NOT_AUTHENTICATED)
    session = current_session(db.connection(), token.user_id, iat)
    if not session.valid or session.role is None:
        raise Unauthorized(SESSION_ENDED, code="session_ended")
    current = caller_with_role(token, session.role)
    check_access(route, current)
    return current


def _check_query_names(app: APIGatewayHttpResolver, query: dict[str, str] | None) -> None:
    """A query parameter the route does not declare is a 422 naming it, never silently ignored
    (``?email=dana`` on a list that filters by ``q`` would otherwise answer with everyone)."""
    route = app.context.get("_route")
    if not query or route is None:
        return
    unknown = sorted(set(query) - {param.alias for param in route.dependant.query_params})
    if unknown:
        raise ValidationFailed(
            f"Unknown query parameter{'s' if len(unknown) > 1 else ''}: "
            f"{', '.join(_shown(name) for name in unknown[:MAX_REPORTED_FIELDS])}.",
            details=[
                {
                    "field": f"query.{_shown(name)}",
                    "code": "unknown_parameter",
                    "message": "not a parameter of this route",
                }
                for name in unknown[:MAX_REPORTED_FIELDS]
            ],
        )


def _takes_a_list(app: APIGatewayHttpResolver) -> bool:
    """Whether the route's body is a JSON array (a list model) rather than an object."""
    route = app.context.get("_route")
    params = route.dependant.body_params if route is not None else []
    return len(params) == 1 and _is_or_contains_sequence(params[0].field_info.annotation)


_NOT_PARSED = object()


def _parsed_body(event: dict[str, Any], headers: Any) -> tuple[Any, bool]:
    """The body as the validation will read it (JSON, a form's fields) or ``_NOT_PARSED``, and
    whether it is JSON.

    The content types are Powertools' own (JSON when none is given, a URL-encoded form, a multipart
    form), tested as it tests them, so that what passes here is what it parses: any other is 415,
    bytes that are not UTF-8 or a multipart form without a boundary or that does not parse are 400,
    malformed JSON is 400.
    """
    body = event.get("body")
    if not body:
        return _NOT_PARSED, False
    content_type = (headers.get("content-type") or "").strip()
    encoded = bool(event.get("isBase64Encoded"))
    if content_type.startswith("multipart/form-data"):
        return _multipart_fields(body, encoded, content_type), False
    is_json = not content_type or content_type.startswith("application/json")
    if not is_json and not content_type.startswith("application/x-www-form-urlencoded"):
        raise UnsupportedMediaType(
            "The request body must be JSON (Content-Type: application/json).",
            details=[
                {"field": "header.content-type", "code": "unsupported_media_type", "message": "use application/json"}
            ],
        )
    text = _utf8(base64_bytes(body)) if encoded else body
    if not is_json:
        form = parse_qs(text, True)
        return {name: values[0] if len(values) == 1 else values for name, values in form.items()}, False
    try:
        return json.loads(text), True
    except RecursionError:
        raise InvalidJson("The request body is nested too deeply.") from None
    except ValueError:
        raise InvalidJson("The request body is not valid JSON.") from None


def _check_top_level(document: Any, takes_a_list: bool) -> None:
    """A JSON body's top level must be what the route takes (an object, or an array for a list
    route), on every route: Powertools would otherwise read an array as its first element (and
    ``[null]`` as no body at all)."""
    expected, name = (list, "array") if takes_a_list else (dict, "object")
    if not isinstance(document, expected):
        raise ValidationFailed(
            f"The request body must be a JSON {name}.",
            details=[{"field": "body", "code": f"{name}_expected", "message": f"the body must be a JSON {name}"}],
        )


def base64_bytes(body: str) -> bytes:
    try:
        return base64.b64decode(body)
    except (binascii.Error, ValueError):
        raise InvalidRequest("The request body is not valid base64.", code="invalid_body") from None


def _utf8(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRequest("The request body is not valid UTF-8.", code="invalid_encoding") from None


def _multipart_fields(body: str, encoded: bool, content_type: str) -> dict[str, Any]:
    """A multipart form's text fields, parsed as Powertools parses them (400 when it cannot be)."""
    broken = InvalidRequest("The multipart body cannot be parsed.", code="invalid_multipart")
    boundary = _extract_multipart_boundary(content_type)
    if not boundary:
        raise broken
    try:
        raw = base64_bytes(body) if encoded else body.encode("latin-1")
        parts = _parse_multipart_body(raw, boundary)
    except InvalidRequest:
        raise
    except Exception:  # noqa: BLE001 - whatever the parser trips on is a broken body
        raise broken from None
    # A file part's bytes are not text the routes store; every text field is checked.
    return {name: value for name, value in parts.items() if isinstance(value, str | list)}


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
    app._request_validation_middleware = lambda current, next_middleware: guard(  # type: ignore[assignment]
        current,
        lambda after_guard: validation(after_guard, next_middleware),  # type: ignore[arg-type]
    )

    @app.exception_handler(AppError)
    def _app_error(error: AppError) -> Response:
        return error_response(error)

    @app.exception_handler(RequestUnsupportedContentType)
    def _unsupported_content_type(_: RequestUnsupportedContentType) -> Response:
        # The guard answers first; this keeps Powertools' own refusal from reaching the 500 below.
        return error_response(UnsupportedMediaType("The request body must be JSON (Content-Type: application/json)."))

    @app.exception_handler(RequestValidationError)
    def _validation_error(error: RequestValidationError) -> Response:
        errors = error.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return error_response(InvalidJson("The request body is not valid JSON."))
        if any(e.get("type") in ("multipart_invalid", "form_invalid") for e in errors):
            return error_response(InvalidRequest("The request body cannot be parsed.", code="invalid_body"))
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


def caller(app: BaseRouter) -> Caller:
    """The signed-in caller of the current request, with their role as the database has it now
    (the guard checked the session and set them for this request). ``app`` is the resolver or the
    Router whose route is serving."""
    found = _CALLER.get()
    if not isinstance(found, Caller):
        raise Unauthorized(NOT_AUTHENTICATED)
    return found


def request_info(app: BaseRouter) -> RequestInfo:
    """The current request's origin for audit rows: source IP, user agent and request id."""
    event = cast(APIGatewayProxyEventV2, app.current_event)  # the HTTP API's events
    context = event.request_context
    return RequestInfo(
        ip_address=context.http.source_ip,
        # Stored in the audit rows: a header cannot carry NUL in HTTP, but text never holds it.
        user_agent=UNSTORABLE.sub("", event.headers.get("user-agent") or "") or None,
        request_id=context.request_id,
    )


def lambda_entry(app: APIGatewayHttpResolver) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """The Lambda handler for an API function: the entry wrapper every function has
    (``observability.entry``: the Lambda context and the request's correlation id in every log
    line, business metrics flushed at the end), around the resolver and the security headers."""

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return with_security_headers(event, app.resolve(event, context))

    return entry(handler, correlation_id_path=correlation_paths.API_GATEWAY_HTTP)


def is_personal(event: dict[str, Any]) -> bool:
    """Whether an answer to ``event`` may hold personal data: all but the public catalogue's reads
    (health, tracks, policy texts), which are the same for everyone. Every route with a token,
    every auth and payments route (tokens, account and payment state), anything unmatched."""
    route = routes.ROUTES_BY_KEY.get(event.get("routeKey", ""))
    catalogue = (
        route is not None
        and route.access is routes.Access.PUBLIC
        and route.method == "GET"
        and not route.path.startswith(("/api/auth/", "/api/payments/"))
    )
    return not catalogue


def with_security_headers(event: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
    """The security headers on ``response``; ``Cache-Control: no-store`` on a personal answer
    whatever the route set (a public route keeps its own caching)."""
    headers = {**(response.get("headers") or {}), **SECURITY_HEADERS}
    personal = is_personal(event) or response.get("statusCode", 500) >= 400
    if personal:
        headers = {name: value for name, value in headers.items() if name.lower() != "cache-control"}
        headers["Cache-Control"] = NO_STORE
    response["headers"] = headers
    return response
