"""One OpenAPI 3.1 document for the whole API, merged from every function's Powertools resolver.

Only operations of the route table are kept (the table is what API Gateway serves); routes that
need a token are marked with the Cognito bearer scheme. Each operation's responses are the route's
real ones (``apranova.contract``): its success statuses, and every error status it answers with
the one error body, ``error.code`` listed per status. Limits the code enforces outside the models'
own schemas are written in (``_refine``), and links lead from what an operation creates to where
it is read. ``python -m local.openapi --write`` writes ``docs/openapi.json``; ``--check`` exits 1
when the committed file differs from the code.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from functools import cache
from pathlib import Path
from typing import Any

from apranova import contract, pagination, routes

ROOT = Path(__file__).resolve().parent.parent
DOCUMENT = ROOT / "docs" / "openapi.json"
TITLE = "ApraNova API"
VERSION = "1.0.0"
SECURITY_SCHEME = "cognito"


def build() -> dict[str, Any]:
    api_routes = {(r.method.lower(), r.path): r for r in routes.ROUTES if not r.local_only}
    paths: dict[str, dict[str, Any]] = {}
    schemas: dict[str, Any] = {}
    for function in routes.functions():
        app = importlib.import_module(routes.handler_module(function)).app
        part = json.loads(app.get_openapi_json_schema(title=TITLE, version=VERSION))
        for path, operations in part.get("paths", {}).items():
            for method, operation in operations.items():
                route = api_routes.get((method, path))
                if route is None or route.function != function:
                    continue  # not served by API Gateway (or served by another function)
                if route.access.needs_token:
                    operation["security"] = [{SECURITY_SCHEME: []}]
                _refine(route, operation)
                operation["responses"] = _responses(route, operation)
                operation.setdefault("tags", [path.split("/")[2] if path.count("/") > 2 else "api"])
                paths.setdefault(path, {})[method] = operation
        for name, schema in part.get("components", {}).get("schemas", {}).items():
            if name in schemas and schemas[name] != schema:
                raise RuntimeError(f"two functions define different OpenAPI schemas named {name!r}")
            schemas[name] = schema
    # Powertools' 422 body ({"detail": [...]}) is not ours: every error is ERROR_SCHEMAS' Error.
    for name in ("HTTPValidationError", "ValidationError", "ResponseValidationError"):
        schemas.pop(name, None)
    schemas.update(ERROR_SCHEMAS)
    _refine_schemas(schemas)
    _add_links(paths)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": TITLE,
            "version": VERSION,
            "description": "The ApraNova HTTP API. Generated from the code by `make openapi`; do not edit.",
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                SECURITY_SCHEME: {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "A Cognito access token (POST /api/auth/login/ returns it as `access`).",
                }
            },
        },
    }


ERROR_SCHEMAS: dict[str, Any] = {
    "Error": {
        "title": "Error",
        "description": "Every error of the API (apranova.errors.error_body). `detail` repeats the message.",
        "type": "object",
        "required": ["error", "detail"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message", "details"],
                "properties": {
                    "code": {"type": "string", "description": "Stable, machine-readable: branch on this."},
                    "message": {"type": "string"},
                    "details": {"type": "array", "items": {"$ref": "#/components/schemas/ErrorDetail"}},
                },
            },
            "detail": {"type": "string"},
        },
    },
    "ErrorDetail": {
        "title": "ErrorDetail",
        "description": "One problem: for a field, its name (`body.email`), the rule and a message; "
        "some codes add their own keys (e.g. `retry_after_seconds`).",
        "type": "object",
        "properties": {"field": {"type": "string"}, "code": {"type": "string"}, "message": {"type": "string"}},
        "additionalProperties": True,
    },
    "GatewayError": {
        "title": "GatewayError",
        "description": "API Gateway's own answer (no token or a token it refuses, a body over its limit, throttling).",
        "type": "object",
        "required": ["message"],
        "properties": {"message": {"type": "string"}},
    },
}

STATUS_DESCRIPTIONS = {
    400: "The body cannot be read, or a code or password the route checks is wrong",
    401: "No valid token, or the session has ended",
    402: "Enroll in a track first",
    403: "Not allowed to the caller",
    404: "Not found (or not the caller's)",
    409: "Conflicts with the current state",
    413: "The body is over 1 MiB",
    415: "The body is not JSON",
    422: "The request is not valid: `details` names each field and rule",
    429: "Too many requests: retry after `Retry-After` seconds",
    502: "A provider failed; retry shortly",
    503: "Temporarily unavailable: retry after `Retry-After` seconds",
}
RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before retrying.", "schema": {"type": "string"}}}


def _error_response(status: int, codes: set[str]) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "allOf": [
            {"$ref": "#/components/schemas/Error"},
            {
                "type": "object",
                "properties": {"error": {"type": "object", "properties": {"code": {"enum": sorted(codes)}}}},
            },
        ]
    }
    if status in contract.GATEWAY_STATUSES:
        schema = {"anyOf": [schema, {"$ref": "#/components/schemas/GatewayError"}]}
    response: dict[str, Any] = {
        "description": f"{STATUS_DESCRIPTIONS.get(status, 'Error')}: {', '.join(sorted(codes))}",
        "content": {"application/json": {"schema": schema}},
    }
    if status in (429, 503):
        response["headers"] = RETRY_AFTER
    return response


def _responses(route: routes.Route, operation: dict[str, Any]) -> dict[str, Any]:
    """The route's real statuses: Powertools' success body under each success status, then errors."""
    found = operation.get("responses", {})
    success = next((found[s] for s in sorted(found) if s.startswith("2")), {"description": "Success"})
    responses: dict[str, Any] = {}
    for status in contract.success_statuses(route):
        responses[str(status)] = {**success, "description": success.get("description") or "Success"}
    has_path_parameters = any(p.get("in") == "path" for p in operation.get("parameters", []))
    has_body = "requestBody" in operation
    query_names = frozenset(p["name"] for p in operation.get("parameters", []) if p.get("in") == "query")
    errors = contract.error_statuses(
        route, has_path_parameters=has_path_parameters, has_body=has_body, query_names=query_names
    )
    for status in sorted(errors):
        responses[str(status)] = _error_response(status, errors[status])
    return responses


def _refine(route: routes.Route, operation: dict[str, Any]) -> None:
    """Limits the code enforces that the Powertools parameters do not say."""
    for parameter in operation.get("parameters", []):
        if parameter.get("in") == "query" and parameter["name"] == "track":
            schema = parameter["schema"]
            for branch in schema.get("anyOf", [schema]):
                if branch.get("type") == "string":
                    branch.pop("pattern", None)
                    branch["enum"] = _track_codes()
        if parameter.get("in") == "query" and parameter["name"] == "limit":
            parameter["schema"] = {
                "type": "integer",
                "minimum": 1,
                "maximum": pagination.MAX_LIMIT,
                "description": f"Page size, 1..{pagination.MAX_LIMIT} (default {pagination.DEFAULT_LIMIT}).",
            }
    body = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if body is not None and "anyOf" in body["schema"]:
        # An optional body (``Model | None``) may be left out, but the guard refuses a JSON null:
        # the body, when sent, is the object.
        kept = [s for s in body["schema"]["anyOf"] if s.get("type") != "null"]
        if len(kept) == 1:
            body["schema"] = kept[0]
    if route.access is routes.Access.STRIPE:
        # The webhook reads the raw body and checks Stripe's signature of it (HMAC-SHA256 with the
        # endpoint's secret): an event object, sent with its signature header.
        operation["parameters"] = [
            {
                "name": "Stripe-Signature",
                "in": "header",
                "required": True,
                "description": "t=<unix time>,v1=<HMAC-SHA256 of `<t>.<body>` with the endpoint secret>",
                "schema": {"type": "string", "minLength": 1},
            }
        ]
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/StripeEvent"}}},
        }
        operation["responses"] = {"200": _WEBHOOK_RECEIVED}


_WEBHOOK_RECEIVED = {
    "description": "Received (and recorded or ignored)",
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["received", "outcome"],
                "properties": {"received": {"const": True}, "outcome": {"type": "string"}},
            }
        }
    },
}
STRIPE_EVENT = {
    "title": "StripeEvent",
    "description": "A Stripe event as Stripe sends it (only these keys are read before the type's own).",
    "type": "object",
    "required": ["id", "type", "data"],
    "properties": {
        "id": {"type": "string", "examples": ["evt_123"]},
        "type": {"type": "string", "examples": ["checkout.session.completed"]},
        "data": {"type": "object", "required": ["object"], "properties": {"object": {"type": "object"}}},
    },
}


@cache
def _track_codes() -> list[str]:
    from functions.migrate.catalogue import TRACKS

    return sorted(track["code"] for track in TRACKS)


def _refine_schemas(schemas: dict[str, Any]) -> None:
    """Request models' fields that the validators check beyond their JSON Schema: an email address
    is one (``format``), a track is one of the catalogue's codes."""
    schemas["StripeEvent"] = STRIPE_EVENT
    tracks = _track_codes()
    for schema in schemas.values():
        if schema.get("additionalProperties") is not False:
            continue  # request models forbid unknown fields; answers do not
        properties = schema.get("properties", {})
        for name, field in properties.items():
            if name == "email" and field.get("type") == "string":
                field["format"] = "email"
            if name == "track" and field.get("type") == "string":
                field["enum"] = tracks


# Where what an operation creates is read next: (from, status) → {name: (to, parameters)}.
LINKS: dict[tuple[str, str], dict[str, tuple[str, dict[str, str]]]] = {
    ("POST /api/payments/create-checkout-session/", "201"): {
        "PaymentStatus": ("GET /api/payments/status/{id}/", {"id": "$response.body#/payment_id"}),
        "SessionStatus": ("GET /api/payments/verify-session/", {"session_id": "$response.body#/session_id"}),
    },
    ("POST /api/payments/create-payment/", "201"): {
        "PaymentStatus": ("GET /api/payments/status/{id}/", {"id": "$response.body#/payment_id"}),
    },
    ("POST /api/payments/create-anonymous-checkout/", "201"): {
        "SessionStatus": ("GET /api/payments/verify-session/", {"session_id": "$response.body#/session_id"}),
    },
    ("POST /api/compliance/export-data/", "202"): {
        "Export": ("GET /api/compliance/exports/{id}/", {"id": "$response.body#/id"}),
    },
    ("POST /api/curriculum/submissions/", "201"): {
        "Submission": ("GET /api/curriculum/submissions/{id}/", {"id": "$response.body#/id"}),
        "TrainerSubmission": ("GET /api/trainer/submissions/{id}/", {"id": "$response.body#/id"}),
        "Review": ("POST /api/trainer/submissions/{id}/review/", {"id": "$response.body#/id"}),
    },
    ("POST /api/payments/request-refund/", "201"): {
        "Approve": ("POST /api/admin/refund-requests/{id}/approve/", {"id": "$response.body#/id"}),
        "Reject": ("POST /api/admin/refund-requests/{id}/reject/", {"id": "$response.body#/id"}),
    },
    ("GET /api/curriculum/projects/", "200"): {
        "Project": ("GET /api/curriculum/projects/{id}/", {"id": "$response.body#/items/0/id"}),
        "Start": ("POST /api/curriculum/projects/{id}/start/", {"id": "$response.body#/items/0/id"}),
    },
    ("GET /api/admin/users/", "200"): {
        "User": ("GET /api/admin/users/{id}/", {"id": "$response.body#/items/0/id"}),
    },
    ("GET /api/payments/my-payments/", "200"): {
        "PaymentStatus": ("GET /api/payments/status/{id}/", {"id": "$response.body#/items/0/id"}),
    },
    ("GET /api/curriculum/my-submissions/", "200"): {
        "Submission": ("GET /api/curriculum/submissions/{id}/", {"id": "$response.body#/items/0/id"}),
    },
}


def _add_links(paths: dict[str, Any]) -> None:
    """OpenAPI links (create → read) between operations that exist, by operationId."""
    operations = {
        f"{method.upper()} {path}": operation
        for path, methods in paths.items()
        for method, operation in methods.items()
    }
    for (source, status), links in LINKS.items():
        response = operations.get(source, {}).get("responses", {}).get(status)
        if response is None:
            continue
        found = {
            name: {"operationId": operations[target]["operationId"], "parameters": parameters}
            for name, (target, parameters) in links.items()
            if target in operations
        }
        if found:
            response["links"] = found


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.openapi", description=__doc__)
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--write", action="store_true", help="write docs/openapi.json")
    group.add_argument("--check", action="store_true", help="exit 1 if docs/openapi.json differs from the code")
    args = parser.parse_args(argv)
    text = render(build())
    if args.write:
        DOCUMENT.parent.mkdir(parents=True, exist_ok=True)
        DOCUMENT.write_text(text)
        print(f"wrote {DOCUMENT.relative_to(ROOT)}")
        return 0
    if not DOCUMENT.exists() or DOCUMENT.read_text() != text:
        print(f"{DOCUMENT.relative_to(ROOT)} is out of date: run `make openapi`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
