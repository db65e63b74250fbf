"""The route table: every API route → (the function that serves it, who may call it).

The CDK API, the local server and the authorization tests all read this table, and each function
checks its caller against it, so the deployed API, the local stack and the access rules cannot
drift apart. A function's own resolver registers the same paths (in Powertools' ``<param>`` form).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from apranova import inventory


class Access(StrEnum):
    PUBLIC = "public"  # anyone, no token
    USER = "user"  # any signed-in account
    STUDENT = "student"  # signed-in students
    TRAINER = "trainer"  # trainers and admins
    ADMIN = "admin"  # admins only
    STRIPE = "stripe"  # no token; the Stripe signature is checked by the handler

    @property
    def needs_token(self) -> bool:
        return self not in (Access.PUBLIC, Access.STRIPE)


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # API Gateway form: /api/curriculum/projects/{id}/
    function: str  # a folder under functions/
    access: Access
    local_only: bool = False  # served by the local stack only (API docs)

    @property
    def key(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def gateway_path(self) -> str:
        """The path as API Gateway takes it: without the trailing slash.

        An HTTP API refuses a route path ending in "/" and routes "/x" and "/x/" alike to "/x";
        the function still sees the path the client sent and routes on it.
        """
        return self.path.rstrip("/") or "/"

    @property
    def gateway_key(self) -> str:
        """The ``routeKey`` API Gateway puts in the events of this route."""
        return f"{self.method} {self.gateway_path}"

    @property
    def resolver_path(self) -> str:
        """The path in Powertools' syntax."""
        return re.sub(r"\{(\w+)\}", r"<\1>", self.path)


# The function that answers what no route matches (API Gateway's $default route): 404 or 405.
FALLBACK_FUNCTION = "health"

ROUTES: tuple[Route, ...] = (
    Route("GET", "/api/health/", "health", Access.PUBLIC),
    Route("GET", "/api/curriculum/tracks/", "curriculum", Access.PUBLIC),
    Route("GET", "/api/curriculum/my-track/", "curriculum", Access.STUDENT),
    Route("GET", "/api/curriculum/projects/", "curriculum", Access.STUDENT),
    Route("GET", "/api/curriculum/projects/{id}/", "curriculum", Access.STUDENT),
    Route("GET", "/api/curriculum/my-progress/", "curriculum", Access.STUDENT),
    Route("POST", "/api/curriculum/projects/{id}/start/", "curriculum", Access.STUDENT),
    Route("POST", "/api/curriculum/projects/{id}/steps/{step_id}/complete/", "curriculum", Access.STUDENT),
    Route("DELETE", "/api/curriculum/projects/{id}/steps/{step_id}/complete/", "curriculum", Access.STUDENT),
    Route("GET", "/api/curriculum/projects/{id}/dataset/", "curriculum", Access.STUDENT),
    Route("POST", "/api/curriculum/submissions/upload-url/", "submissions", Access.STUDENT),
    Route("POST", "/api/curriculum/submissions/", "submissions", Access.STUDENT),
    Route("GET", "/api/curriculum/my-submissions/", "submissions", Access.STUDENT),
    Route("GET", "/api/curriculum/submissions/{id}/", "submissions", Access.STUDENT),
    Route("GET", "/api/trainer/students/", "trainer", Access.TRAINER),
    Route("GET", "/api/trainer/submissions/", "trainer", Access.TRAINER),
    Route("GET", "/api/trainer/submissions/{id}/", "trainer", Access.TRAINER),
    Route("POST", "/api/trainer/submissions/{id}/review/", "trainer", Access.TRAINER),
    Route("GET", "/api/admin/users/", "admin", Access.ADMIN),
    Route("GET", "/api/admin/users/{id}/", "admin", Access.ADMIN),
    Route("POST", "/api/admin/users/{id}/assign-trainer/", "admin", Access.ADMIN),
    Route("GET", "/api/admin/submissions/", "admin", Access.ADMIN),
    Route("GET", "/api/admin/stats/", "admin", Access.ADMIN),
    Route("POST", "/api/auth/registration/", "auth", Access.PUBLIC),
    Route("POST", "/api/auth/verify-email/", "auth", Access.PUBLIC),
    Route("POST", "/api/auth/resend-verification/", "auth", Access.PUBLIC),
    Route("POST", "/api/auth/login/", "auth", Access.PUBLIC),
    Route("POST", "/api/auth/token/refresh/", "auth", Access.PUBLIC),
    Route("POST", "/api/auth/logout/", "auth", Access.USER),
    Route("POST", "/api/auth/password/reset/", "auth", Access.PUBLIC),
    Route("POST", "/api/auth/password/reset/confirm/", "auth", Access.PUBLIC),
    Route("POST", "/api/auth/password/change/", "auth", Access.USER),
    Route("GET", "/api/auth/user/", "auth", Access.USER),
    Route("PATCH", "/api/auth/user/", "auth", Access.USER),
    Route("POST", "/api/admin/users/{id}/role/", "admin", Access.ADMIN),
    Route("POST", "/api/payments/create-checkout-session/", "payments", Access.STUDENT),
    Route("POST", "/api/payments/create-payment/", "payments", Access.STUDENT),
    Route("POST", "/api/payments/create-anonymous-checkout/", "payments", Access.PUBLIC),
    Route("GET", "/api/payments/verify-session/", "payments", Access.PUBLIC),
    Route("GET", "/api/payments/status/{id}/", "payments", Access.STUDENT),
    Route("GET", "/api/payments/my-payments/", "payments", Access.STUDENT),
    Route("POST", "/api/payments/request-refund/", "payments", Access.STUDENT),
    Route("GET", "/api/payments/my-refund-requests/", "payments", Access.STUDENT),
    Route("GET", "/api/admin/payments/", "payments", Access.ADMIN),
    Route("GET", "/api/admin/refund-requests/", "payments", Access.ADMIN),
    Route("POST", "/api/admin/refund-requests/{id}/approve/", "payments", Access.ADMIN),
    Route("POST", "/api/admin/refund-requests/{id}/reject/", "payments", Access.ADMIN),
    Route("POST", "/api/payments/webhook/", "payments-webhook", Access.STRIPE),
    Route("GET", "/api/tools/db-credentials/", "tools", Access.STUDENT),
    Route("GET", "/api/tools/superset-access/", "tools", Access.STUDENT),
    Route("GET", "/api/tools/prefect-access/", "tools", Access.STUDENT),
    Route("GET", "/api/tools/jupyter-access/", "tools", Access.STUDENT),
    Route("GET", "/api/tools/workspace-access/", "tools", Access.STUDENT),
    Route("POST", "/api/tools/workspace/start/", "tools", Access.STUDENT),
    Route("POST", "/api/tools/workspace/stop/", "tools", Access.STUDENT),
    Route("POST", "/api/admin/users/{id}/enroll/", "admin", Access.ADMIN),
    Route("POST", "/api/admin/users/{id}/reprovision/", "admin", Access.ADMIN),
    Route("GET", "/api/compliance/privacy-policy/", "compliance", Access.PUBLIC),
    Route("GET", "/api/compliance/terms/", "compliance", Access.PUBLIC),
    Route("POST", "/api/compliance/accept-consent/", "compliance", Access.USER),
    Route("GET", "/api/compliance/my-consents/", "compliance", Access.USER),
    Route("POST", "/api/compliance/export-data/", "compliance", Access.USER),
    Route("GET", "/api/compliance/exports/", "compliance", Access.USER),
    Route("GET", "/api/compliance/exports/{id}/", "compliance", Access.USER),
    Route("POST", "/api/compliance/delete-account/", "compliance", Access.USER),
    Route("POST", "/api/compliance/cancel-deletion/", "compliance", Access.USER),
    Route("POST", "/api/admin/policies/", "admin", Access.ADMIN),
    Route("GET", "/api/admin/audit-logs/", "admin", Access.ADMIN),
    Route("GET", "/api/admin/retention-policies/", "admin", Access.ADMIN),
    Route("PUT", "/api/admin/retention-policies/", "admin", Access.ADMIN),
    Route("GET", "/api/openapi.json", "local", Access.PUBLIC, local_only=True),
    Route("GET", "/api/docs/", "local", Access.PUBLIC, local_only=True),
)

# By the routeKey of API Gateway's events.
ROUTES_BY_KEY: dict[str, Route] = {route.gateway_key: route for route in ROUTES}


def _pattern(path: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\\\{\w+\\\}", r"[^/]+", re.escape(path)) + "$")


_PATTERNS: tuple[tuple[re.Pattern[str], Route], ...] = tuple((_pattern(r.path), r) for r in ROUTES)


def _specificity(route: Route) -> tuple[int, ...]:
    """Lower is more specific: segment by segment, a literal beats a ``{parameter}``."""
    return tuple(1 if part.startswith("{") else 0 for part in route.path.strip("/").split("/"))


def match(method: str, path: str) -> tuple[Route | None, list[str]]:
    """The route for ``method path`` (or None), and the methods the path allows (for a 405).

    As API Gateway picks routes, the most specific template wins: ``/submissions/upload-url/``
    is that literal route's, not an id of ``/submissions/{id}/``; the ``Allow`` of a 405 names the
    methods of the most specific template the path matches, and only those.
    """
    matched = sorted((route for pattern, route in _PATTERNS if pattern.match(path)), key=_specificity)
    if not matched:
        return None, []
    found = next((route for route in matched if route.method == method.upper()), None)
    best = _specificity(matched[0])
    allowed = [route.method for route in matched if _specificity(route) == best]
    return found, allowed


def path_parameters(route: Route, path: str) -> dict[str, str]:
    names = re.findall(r"\{(\w+)\}", route.path)
    regex = "^" + re.sub(r"\\\{\w+\\\}", "([^/]+)", re.escape(route.path)) + "$"
    found = re.match(regex, path)
    return dict(zip(names, found.groups(), strict=True)) if found else {}


def handler_module(function: str) -> str:
    """The module whose ``lambda_handler`` serves ``function`` (its row in apranova/inventory.py)."""
    return inventory.get(function).handler


def function_folder(function: str) -> str:
    """The folder under ``functions/`` that holds ``function``'s code."""
    return handler_module(function).split(".")[1]


def functions() -> list[str]:
    return sorted({r.function for r in ROUTES if not r.local_only} | {FALLBACK_FUNCTION})
