"""The error model: domain exceptions, and their single mapping to an HTTP body.

Every 4xx body is ``{"error": {"code", "message", "details"}, "detail": message}``; the top-level
``detail`` serves clients written for Django REST Framework.
"""

from __future__ import annotations

from typing import Any


class AppError(Exception):
    """A failure the caller can act on. Subclasses fix the HTTP status and a default code."""

    status = 400
    code = "bad_request"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.details = details or []
        self.headers = headers or {}


class InvalidJson(AppError):
    status, code = 400, "invalid_json"


class InvalidRequest(AppError):
    status, code = 400, "bad_request"


class Unauthorized(AppError):
    status, code = 401, "not_authenticated"


class PaymentRequired(AppError):
    status, code = 402, "payment_required"


class Forbidden(AppError):
    status, code = 403, "permission_denied"


class NotFound(AppError):
    status, code = 404, "not_found"


class MethodNotAllowed(AppError):
    status, code = 405, "method_not_allowed"


class Conflict(AppError):
    status, code = 409, "conflict"


class PayloadTooLarge(AppError):
    status, code = 413, "payload_too_large"


class UnsupportedMediaType(AppError):
    status, code = 415, "unsupported_media_type"


class ValidationFailed(AppError):
    status, code = 422, "validation_error"


class TooManyRequests(AppError):
    status, code = 429, "too_many_requests"


class ServiceUnavailable(AppError):
    status, code = 503, "service_unavailable"


class ConfigurationError(RuntimeError):
    """Raised at cold start when a setting is missing or invalid: a deployment fault, not a 4xx."""


def error_body(code: str, message: str, details: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or []}, "detail": message}


def validation_details(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Pydantic errors → our detail items. The offending input is never echoed (it may be a password)."""
    details = []
    for err in errors:
        loc = [str(part) for part in err.get("loc", ())]
        details.append({"field": ".".join(loc), "code": err.get("type", "invalid"), "message": err.get("msg", "")})
    return details


class BadGateway(AppError):
    """A provider we depend on (Stripe, a tool's API) failed; the request can be retried."""

    status, code = 502, "upstream_error"
