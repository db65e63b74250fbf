"""What each route answers, for the OpenAPI document (``local/openapi.py``) and its tests.

Most of it follows from the route table and the shared guard (``apranova.api``), so a route added to
the table is documented by construction:

- a route with a token: 401 (``not_authenticated``, ``session_ended``; or the gateway's own
  ``{"message"}`` when the token is missing or not valid), and 403 ``permission_denied`` when it
  needs a role;
- a student route of a learning function (curriculum, submissions, tools): 402 ``payment_required``
  and 403 ``consent_required`` (``apranova.learning``);
- a path parameter: 404 ``not_found``; a body: 400 (malformed), 413, 415;
- every route: 422 (validation, characters PostgreSQL cannot store, an undeclared query parameter;
  ``invalid_cursor`` where a list is paged), 429 (throttling) and 503 (the
  database or a provider is out of reach, ``Retry-After``).

What a route's own service refuses is declared here, next to the success statuses other than 200:
``DOMAIN_ERRORS`` maps a route key (``routes.Route.key``) to ``{status: codes}``. The schemathesis
tests (tests/integration/test_api_properties.py) fail on a status or code a route answers that is
not listed, so a forgotten entry is found by the suite rather than by a client.
"""

from __future__ import annotations

from apranova import routes

# Routes whose success is not a plain 200.
SUCCESS_STATUSES: dict[str, tuple[int, ...]] = {
    "POST /api/auth/registration/": (201,),
    "POST /api/auth/resend-verification/": (202,),
    "POST /api/auth/password/reset/": (202,),
    "POST /api/payments/create-checkout-session/": (201,),
    "POST /api/payments/create-payment/": (201,),
    "POST /api/payments/create-anonymous-checkout/": (201,),
    "POST /api/payments/request-refund/": (201,),
    "POST /api/curriculum/submissions/": (201,),
    "POST /api/admin/policies/": (201,),
    "POST /api/admin/users/{id}/enroll/": (202,),
    "POST /api/admin/users/{id}/reprovision/": (202,),
    "POST /api/compliance/accept-consent/": (200, 201),  # 201 recorded, 200 already accepted
    "POST /api/compliance/export-data/": (202,),
    "POST /api/compliance/delete-account/": (202,),
}

# The functions whose student routes are for enrolled students who accepted the policies in force.
LEARNING_FUNCTIONS = frozenset({"curriculum", "submissions", "tools"})

_BUYER = {
    403: ("account_unavailable", "email_not_verified", "consent_required"),
    409: ("already_enrolled", "already_paid", "payment_in_progress", "consent_outdated"),
    502: ("payment_provider_error",),
}
_PROJECT = {403: ("project_locked",), 409: ("project_not_started", "project_closed", "project_approved")}
_TOOL: dict[int, tuple[str, ...]] = {
    403: ("account_unavailable", "account_suspended", "wrong_track"),
    409: ("not_provisioned",),
}
_WORKSPACE = {**_TOOL, 502: ("workspace_error",)}
_COGNITO: dict[int, tuple[str, ...]] = {503: ("service_unavailable",)}

# Route key → {status: the codes the route's own service answers with it}.
DOMAIN_ERRORS: dict[str, dict[int, tuple[str, ...]]] = {
    # auth
    "POST /api/auth/registration/": {409: ("consent_outdated",), **_COGNITO},
    "POST /api/auth/verify-email/": {400: ("invalid_code",), **_COGNITO},
    "POST /api/auth/resend-verification/": _COGNITO,
    "POST /api/auth/login/": {
        401: ("invalid_credentials",),
        403: ("email_not_verified", "password_reset_required", "challenge_required", "account_disabled"),
        **_COGNITO,
    },
    "POST /api/auth/token/refresh/": {401: ("token_not_valid",), **_COGNITO},
    "POST /api/auth/logout/": _COGNITO,
    "POST /api/auth/password/reset/": _COGNITO,
    "POST /api/auth/password/reset/confirm/": {400: ("invalid_code",), **_COGNITO},
    "POST /api/auth/password/change/": {400: ("wrong_password",), **_COGNITO},
    "GET /api/auth/user/": {404: ("not_found",)},
    "PATCH /api/auth/user/": {404: ("not_found",)},
    # curriculum
    "GET /api/curriculum/my-track/": {404: ("not_found",)},
    "GET /api/curriculum/projects/": {404: ("not_found",)},
    "GET /api/curriculum/my-progress/": {404: ("not_found",)},
    "GET /api/curriculum/projects/{id}/": {403: ("project_locked",)},
    "POST /api/curriculum/projects/{id}/start/": _PROJECT,
    "POST /api/curriculum/projects/{id}/steps/{step_id}/complete/": _PROJECT,
    "DELETE /api/curriculum/projects/{id}/steps/{step_id}/complete/": _PROJECT,
    "GET /api/curriculum/projects/{id}/dataset/": {**_PROJECT, 404: ("no_dataset",)},
    # submissions
    "POST /api/curriculum/submissions/upload-url/": {
        **_PROJECT,
        404: ("not_found",),
        409: ("project_not_started", "project_approved", "deliverable_approved"),
        422: ("content_type_not_accepted", "file_too_large"),
    },
    "POST /api/curriculum/submissions/": {
        **_PROJECT,
        404: ("not_found",),
        409: ("project_not_started", "project_approved", "deliverable_approved"),
        422: ("file_too_large", "file_type_not_accepted"),
        502: ("upstream_error",),
    },
    # trainer
    "POST /api/trainer/submissions/{id}/review/": {409: ("not_reviewable",)},
    # admin
    "POST /api/admin/users/{id}/assign-trainer/": {409: ("not_a_student", "not_enrolled")},
    "POST /api/admin/users/{id}/role/": {409: ("last_admin",)},
    "POST /api/admin/users/{id}/enroll/": {409: ("not_a_student", "already_enrolled", "enrollment_in_progress")},
    "POST /api/admin/users/{id}/reprovision/": {409: ("not_enrolled", "enrollment_in_progress")},
    "POST /api/admin/policies/": {409: ("version_exists", "version_not_newer", "effective_before_latest")},
    # payments
    "POST /api/payments/create-checkout-session/": _BUYER,
    "POST /api/payments/create-payment/": _BUYER,
    "POST /api/payments/create-anonymous-checkout/": {
        409: ("account_exists", "consent_outdated"),
        502: ("payment_provider_error",),
    },
    "GET /api/payments/verify-session/": {404: ("not_found",)},
    "POST /api/payments/request-refund/": {
        404: ("not_found",),
        409: ("refund_already_requested", "not_refundable"),
        422: ("refund_window_passed", "refund_progress_exceeded", "refund_work_submitted"),
    },
    "POST /api/admin/refund-requests/{id}/approve/": {
        409: ("already_decided", "not_refundable"),
        502: ("payment_provider_error",),
    },
    "POST /api/admin/refund-requests/{id}/reject/": {409: ("already_decided",)},
    "POST /api/payments/webhook/": {
        400: ("invalid_signature", "invalid_json", "invalid_event"),
        503: ("webhook_not_configured", "follow_up_pending"),
    },
    # tools
    "GET /api/tools/db-credentials/": _TOOL,
    "GET /api/tools/superset-access/": _TOOL,
    "GET /api/tools/prefect-access/": _TOOL,
    "GET /api/tools/jupyter-access/": _TOOL,
    "GET /api/tools/workspace-access/": _WORKSPACE,
    "POST /api/tools/workspace/start/": _WORKSPACE,
    "POST /api/tools/workspace/stop/": _WORKSPACE,
    # compliance
    "GET /api/compliance/privacy-policy/": {404: ("not_found",)},
    "GET /api/compliance/terms/": {404: ("not_found",)},
    "POST /api/compliance/accept-consent/": {
        403: ("account_unavailable",),
        404: ("not_found",),
        409: ("consent_outdated",),
    },
    "POST /api/compliance/export-data/": {404: ("not_found",), 429: ("export_rate_limited",)},
    "POST /api/compliance/delete-account/": {
        403: ("wrong_password",),
        404: ("not_found",),
        409: ("deletion_already_requested",),
    },
    "POST /api/compliance/cancel-deletion/": {
        404: ("not_found",),
        409: ("no_deletion_scheduled", "deletion_in_progress"),
    },
}

# The guard's refusals of a body it cannot read (apranova.api).
BODY_400 = ("invalid_json", "invalid_encoding", "invalid_multipart", "invalid_body")
# Statuses whose answer may come from API Gateway itself (``{"message": ...}``): the JWT authorizer's
# 401, the payload limit's 413 and the throttles' 429.
GATEWAY_STATUSES = frozenset({401, 413, 429})


def error_statuses(
    route: routes.Route, *, has_path_parameters: bool, has_body: bool, query_names: frozenset[str] = frozenset()
) -> dict[int, set[str]]:
    """Every error status ``route`` answers, with the ``error.code`` values of each."""
    found: dict[int, set[str]] = {
        # A page's cursor that is not one we returned is 422 invalid_cursor (apranova.pagination).
        422: {"validation_error", *(("invalid_cursor",) if "cursor" in query_names else ())},
        429: {"too_many_requests"},
        503: {"service_unavailable"},
    }
    if route.access.needs_token:
        found[401] = {"not_authenticated", "session_ended"}
        if route.access is not routes.Access.USER:
            found[403] = {"permission_denied"}
    if route.access is routes.Access.STUDENT and route.function in LEARNING_FUNCTIONS:
        found[402] = {"payment_required"}
        found.setdefault(403, set()).add("consent_required")
    if has_path_parameters:
        found[404] = {"not_found"}
    if has_body:
        found[400] = set(BODY_400)
        found[413] = {"payload_too_large"}
        found[415] = {"unsupported_media_type"}
    for status, codes in DOMAIN_ERRORS.get(route.key, {}).items():
        found.setdefault(status, set()).update(codes)
    return found


def success_statuses(route: routes.Route) -> tuple[int, ...]:
    return SUCCESS_STATUSES.get(route.key, (200,))
