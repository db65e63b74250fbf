"""The local API: what API Gateway's HTTP API does in front of the functions, as a WSGI app.

For each request: match the route table; a route that needs a token gets the JWT authorizer's
checks (401 ``{"message": "Unauthorized"}`` on failure, as API Gateway answers); then the route's
function handler is called in-process with a payload format 2.0 event, and its response is
translated back. Requests are served at once, as Lambda serves them: each runs in an environment
of its function that serves nothing else meanwhile (local/environments.py). Requests no route
matches go to the fallback function as API Gateway's ``$default`` route. Local-only extras: the
merged OpenAPI document, a Swagger UI served from ``node_modules`` (no CDN), ``/_local/mailbox``,
and ``POST /_local/jobs/<name>``, which runs one of the scheduled functions (the purge, the
retention sweep, the idle-workspace stopper) now, as EventBridge Scheduler would, and answers with
what it returned.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from werkzeug.datastructures import Headers
from werkzeug.exceptions import NotFound
from werkzeug.security import safe_join
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler
from werkzeug.utils import send_file
from werkzeug.wrappers import Request, Response

from apranova import cors, inventory, routes
from local.environments import Environments
from local.events import LambdaContext, http_api_event
from local.jwt_check import JwtCheck, Unauthorized, api_gateway_claims
from local.keepalive import make_server

ROOT = Path(__file__).resolve().parent.parent
SWAGGER_DIR = ROOT / "node_modules" / "swagger-ui-dist"
MAX_PAYLOAD_BYTES = 10 * 1024 * 1024  # API Gateway's request size quota
FUNCTION_PREFIX = "apranova-"

# The functions EventBridge Scheduler runs in AWS, by local job name (apranova/inventory.py).
SCHEDULED_JOBS = {job: (f.name, f.handler) for job, f in inventory.local_jobs().items()}

_TEXT_TYPES = ("application/json", "application/xml", "application/javascript", "application/x-www-form-urlencoded")

DOCS_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>ApraNova API</title>
  <link rel="stylesheet" href="/api/docs/static/swagger-ui.css">
  <link rel="icon" type="image/png" href="/api/docs/static/favicon-32x32.png">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/api/docs/static/swagger-ui-bundle.js"></script>
  <script src="/api/docs/static/swagger-ui-standalone-preset.js"></script>
  <script>
    window.ui = SwaggerUIBundle({
      url: "/api/openapi.json",
      dom_id: "#swagger-ui",
      presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
      layout: "StandaloneLayout"
    });
  </script>
</body>
</html>
"""


# Where Stripe sends the payer back when no SPA runs: the success page asks the API what the
# webhook recorded (the same call a SPA makes), so a person sees the payment confirmed.
PAYMENT_SUCCESS_PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Payment received</title></head>
<body style="font-family:sans-serif;max-width:32rem;margin:3rem auto">
  <h1>Payment received</h1>
  <p id="status">Checking your payment…</p>
  <pre id="detail"></pre>
  <script>
    const id = new URLSearchParams(location.search).get("session_id");
    fetch("/api/payments/verify-session/?session_id=" + encodeURIComponent(id || ""))
      .then((r) => r.json().then((body) => ({ ok: r.ok, body })))
      .then(({ ok, body }) => {
        document.getElementById("status").textContent = ok
          ? "Payment " + body.payment_status.toLowerCase() + (body.enrolled ? ", enrolled." : ".")
            + (body.account_created ? " Check your email to set your password." : "")
          : "Unknown checkout session.";
        document.getElementById("detail").textContent = JSON.stringify(body, null, 2);
      });
  </script>
</body>
</html>
"""
PAYMENT_CANCELLED_PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Payment cancelled</title></head>
<body style="font-family:sans-serif;max-width:32rem;margin:3rem auto">
  <h1>Payment cancelled</h1><p>Nothing was charged. You can start again from the track page.</p>
</body>
</html>
"""


@dataclass
class LocalApi:
    jwt_check: JwtCheck | None
    openapi: Callable[[], dict[str, Any]]
    mailbox: Callable[[], list[dict[str, Any]]]
    # The deployed HTTP API's CORS configuration (apranova.cors), for the local SPA's origin.
    cors_policy: cors.CorsPolicy = field(default_factory=lambda: cors.policy(cors.LOCAL_SPA_ORIGIN))
    # Requests run at once, each in an environment of its function that serves nothing else
    # meanwhile (own connection and handler module), as Lambda runs them (local/environments.py).
    environments: Environments = field(default_factory=Environments)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        try:
            response = self.dispatch(request)
        except Exception:  # noqa: BLE001 - API Gateway's answer when the integration fails
            import logging

            logging.getLogger("local.server").exception("integration failure")
            response = _gateway_error(500, "Internal Server Error")
        return response(environ, start_response)

    # --- routing ------------------------------------------------------------------------------

    def dispatch(self, request: Request) -> Response:
        """API Gateway's CORS around the routing: it answers a preflight itself (204; the CORS
        headers only for an allowed origin) and, on every other answer, drops what the function said
        about CORS and adds its own for an allowed origin."""
        origin = request.headers.get("Origin")
        if cors.is_preflight(request.method, request.headers):
            return Response(status=204, headers=cors.preflight_headers(self.cors_policy, origin))
        response = self._route(request)
        for name in [name for name in response.headers.keys() if name.lower().startswith("access-control-")]:
            del response.headers[name]
        for name, value in cors.response_headers(self.cors_policy, origin).items():
            response.headers[name] = value
        return response

    def _route(self, request: Request) -> Response:
        if (request.content_length or 0) > MAX_PAYLOAD_BYTES:
            response = _gateway_error(413, "Request Entity Too Large")
            response.headers["Connection"] = "close"
            return response
        path = request.path
        if path.startswith("/_local/"):
            return self._local(request)
        if path.startswith("/api/docs/static/"):
            return _static(request, path.removeprefix("/api/docs/static/"))
        route, _ = routes.match(request.method, path)
        if route is not None and route.local_only:
            return self._local(request)
        if route is None:
            return self.invoke(routes.FALLBACK_FUNCTION, request, None, None)
        claims = None
        if route.access.needs_token:
            if self.jwt_check is None:
                return _gateway_error(401, "Unauthorized")
            try:
                claims = api_gateway_claims(self.jwt_check.verify_header(request.headers.get("Authorization")))
            except Unauthorized:
                return _gateway_error(401, "Unauthorized")
        return self.invoke(route.function, request, route, claims)

    def _local(self, request: Request) -> Response:
        path = request.path
        if path.startswith("/_local/jobs/"):
            if request.method != "POST":
                return _json(405, {"message": "Method Not Allowed"}, headers={"Allow": "POST"})
            name = path.removeprefix("/_local/jobs/").strip("/")
            if name not in SCHEDULED_JOBS:
                return _gateway_error(404, "Not Found")
            return _json(200, {"job": name, "result": self.run_job(name)}, headers={"Cache-Control": "no-store"})
        if request.method not in ("GET", "HEAD"):
            return _json(405, {"message": "Method Not Allowed"}, headers={"Allow": "GET"})
        if path == "/api/openapi.json":
            return _json(200, self.openapi())
        if path == "/api/docs/":
            return Response(DOCS_PAGE, status=200, content_type="text/html; charset=utf-8")
        if path in ("/_local/payment/success", "/_local/payment/cancelled"):
            page = PAYMENT_SUCCESS_PAGE if path.endswith("success") else PAYMENT_CANCELLED_PAGE
            return Response(page, status=200, content_type="text/html; charset=utf-8")
        if path == "/_local/mailbox":
            return _json(200, {"items": self.mailbox()}, headers={"Cache-Control": "no-store"})
        return _gateway_error(404, "Not Found")

    # --- the integration ----------------------------------------------------------------------

    def run_job(self, name: str) -> Any:
        """One run of a scheduled function, with the (empty) event a schedule sends."""
        function, module = SCHEDULED_JOBS[name]
        # The deployed jobs' timeout (15 minutes): the purge budgets its work by the time left.
        context = LambdaContext(FUNCTION_PREFIX + function, f"local-{name}", timeout_seconds=900)
        with self.environments.borrow(function, f"{module}:lambda_handler") as environment:
            return environment.handler({}, context)

    def invoke(
        self, function: str, request: Request, route: routes.Route | None, claims: dict[str, str] | None
    ) -> Response:
        event = build_event(request, claims)
        context = LambdaContext(FUNCTION_PREFIX + function, event["requestContext"]["requestId"])
        with self.environments.borrow(function, f"{routes.handler_module(function)}:lambda_handler") as environment:
            result = environment.handler(event, context)
        return translate_response(result)


def _is_text(content_type: str) -> bool:
    media = content_type.split(";")[0].strip().lower()
    return not media or media.startswith("text/") or media in _TEXT_TYPES or media.endswith(("+json", "+xml"))


def build_event(request: Request, claims: dict[str, str] | None) -> dict[str, Any]:
    """An API Gateway HTTP API payload format 2.0 event for ``request``."""
    headers: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in request.headers.items():
        key = name.lower()
        if key == "cookie":
            cookies.extend(part.strip() for part in value.split(";") if part.strip())
            continue
        headers[key] = f"{headers[key]},{value}" if key in headers else value
    body: str | bytes | None = None
    raw = request.get_data(cache=False)
    if raw:
        body = raw
        if _is_text(request.headers.get("Content-Type", "")):
            try:
                body = raw.decode("utf-8")
            except UnicodeDecodeError:
                body = raw
    return http_api_event(
        request.method,
        request.path,
        body=body,
        headers=headers,
        query={k: ",".join(request.args.getlist(k)) for k in request.args} or None,
        raw_query=request.query_string.decode("latin-1"),
        cookies=cookies,
        claims=claims,
        source_ip=request.remote_addr or "127.0.0.1",
        domain=request.host or "127.0.0.1",
        protocol=request.environ.get("SERVER_PROTOCOL", "HTTP/1.1"),
    )


def translate_response(result: Any) -> Response:
    """A payload format 2.0 response → HTTP, as API Gateway translates it."""
    if not isinstance(result, dict) or "statusCode" not in result:
        # API Gateway infers a 200 JSON response from a result without a statusCode.
        return _json(200, result)
    headers = Headers()
    for name, value in (result.get("headers") or {}).items():
        headers.add(name, str(value))
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers.remove(name)
        for value in values:
            headers.add(name, str(value))
    for cookie in result.get("cookies") or []:
        headers.add("Set-Cookie", cookie)
    body = result.get("body") or ""
    data = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode("utf-8")
    if "Content-Type" not in headers:
        headers["Content-Type"] = "application/json"
    return Response(data, status=int(result["statusCode"]), headers=headers)


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body), status=status, content_type="application/json", headers=headers)


def _gateway_error(status: int, message: str) -> Response:
    return _json(status, {"message": message})


def _static(request: Request, name: str) -> Response:
    path = safe_join(str(SWAGGER_DIR), name)
    if path is None or not Path(path).is_file():
        return _gateway_error(404, "Not Found")
    try:
        return send_file(path, request.environ, max_age=3600)
    except NotFound:
        return _gateway_error(404, "Not Found")


def serve(
    app: LocalApi, host: str, port: int, request_handler: type[WSGIRequestHandler] | None = None
) -> BaseWSGIServer:
    """A threaded server that keeps connections open, not yet serving: call ``serve_forever`` (in a
    thread) and ``shutdown``."""
    return make_server(host, port, app, request_handler=request_handler)
