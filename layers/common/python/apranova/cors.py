"""The API's CORS, as one setting: the CDK HttpApi's ``cors_preflight`` and the local server both
read ``policy``, so a browser on the SPA origin is answered the same locally and in AWS.

API Gateway's HTTP API answers a preflight (``OPTIONS`` with ``Origin`` and
``Access-Control-Request-Method``) itself with 204, whatever routes exist; for an allowed origin it
adds the configured headers, for any other origin none. On other requests from an allowed origin
it adds ``Access-Control-Allow-Origin`` (and ``-Credentials``) to the integration's answer, and it
ignores CORS headers a function returns. Credentials are allowed: the SPA's refresh token travels
as an ``HttpOnly`` cookie (docs/principles.md §12), which is why the origin is named, never ``*``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from apranova import routes

# The web app's origin in the local stack (docs/principles.md §9: stack.json's web_url).
LOCAL_SPA_ORIGIN = "http://127.0.0.1:5173"
# What the SPA sends beyond the CORS-safelisted headers: its bearer token and JSON bodies.
ALLOW_HEADERS = ("authorization", "content-type")
MAX_AGE_SECONDS = 3600


@dataclass(frozen=True)
class CorsPolicy:
    allow_origins: tuple[str, ...]
    allow_methods: tuple[str, ...]
    allow_headers: tuple[str, ...]
    allow_credentials: bool
    max_age_seconds: int

    def allows(self, origin: str | None) -> bool:
        return origin is not None and origin in self.allow_origins


def allow_methods(route_table: tuple[routes.Route, ...] | list[routes.Route] = routes.ROUTES) -> tuple[str, ...]:
    """Every method the deployed routes answer, and OPTIONS (the preflight's own)."""
    return tuple(sorted({route.method for route in route_table if not route.local_only} | {"OPTIONS"}))


def policy(spa_origin: str, route_table: tuple[routes.Route, ...] | list[routes.Route] = routes.ROUTES) -> CorsPolicy:
    """The API's CORS for a stage whose SPA is served from ``spa_origin`` (a trailing slash is not
    part of an origin: browsers send none)."""
    return CorsPolicy(
        allow_origins=(spa_origin.rstrip("/"),),
        allow_methods=allow_methods(route_table),
        allow_headers=ALLOW_HEADERS,
        allow_credentials=True,
        max_age_seconds=MAX_AGE_SECONDS,
    )


def is_preflight(method: str, headers: Any) -> bool:
    """A browser's preflight, as API Gateway recognises one: OPTIONS with both an ``Origin`` and an
    ``Access-Control-Request-Method`` header (``headers``: anything with a case-insensitive ``get``)."""
    get = headers.get
    return method.upper() == "OPTIONS" and bool(get("Origin")) and bool(get("Access-Control-Request-Method"))


def preflight_headers(cors: CorsPolicy, origin: str | None) -> dict[str, str]:
    """The headers of the 204 answer to a preflight from ``origin`` (none for another origin)."""
    if not cors.allows(origin):
        return {}
    headers = {
        "Access-Control-Allow-Origin": str(origin),
        "Access-Control-Allow-Methods": ",".join(cors.allow_methods),
        "Access-Control-Allow-Headers": ",".join(cors.allow_headers),
        "Access-Control-Max-Age": str(cors.max_age_seconds),
    }
    if cors.allow_credentials:
        headers["Access-Control-Allow-Credentials"] = "true"
    return headers


def response_headers(cors: CorsPolicy, origin: str | None) -> dict[str, str]:
    """The headers added to an answer to a request from ``origin`` (none for another origin)."""
    if not cors.allows(origin):
        return {}
    headers = {"Access-Control-Allow-Origin": str(origin)}
    if cors.allow_credentials:
        headers["Access-Control-Allow-Credentials"] = "true"
    return headers


# The uploads bucket's CORS (S3's own, not the API's): the web app POSTs presigned upload forms to
# the bucket and GETs presigned downloads from it, cross-origin. A multipart form needs no other
# header; an upload with progress events is preflighted, and a client may name its Content-Type.
UPLOADS_METHODS = ("POST", "GET")
UPLOADS_HEADERS = ("Content-Type",)
UPLOADS_MAX_AGE_SECONDS = 3000


def uploads_bucket_rule(origin: str) -> dict:
    """The uploads bucket's one CORS rule for the web app at ``origin``, in S3's API form: the CDK
    bucket, the web hosting stack's PutBucketCors and the local stack's moto bucket all use it."""
    return {
        "AllowedMethods": list(UPLOADS_METHODS),
        "AllowedOrigins": [origin.rstrip("/")],
        "AllowedHeaders": list(UPLOADS_HEADERS),
        "MaxAgeSeconds": UPLOADS_MAX_AGE_SECONDS,
    }
