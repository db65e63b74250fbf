"""CORS over the local server, as a browser meets it: a preflight from the SPA's origin is 204 with
the deployed HTTP API's headers (apranova.cors, the setting the CDK stack also reads), another origin
gets no CORS header at all, and real answers carry the origin and credentials for the SPA only."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator

import pytest

from apranova import cors
from local.server import LocalApi, serve

SPA = "http://127.0.0.1:5173"
ELSEWHERE = "https://evil.example"


@pytest.fixture(scope="module")
def api(database_url: str) -> Iterator[tuple[str, int]]:
    app = LocalApi(
        jwt_check=None, openapi=lambda: {"paths": {}}, mailbox=lambda: [], cors_policy=cors.policy(SPA + "/")
    )
    server = serve(app, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield "127.0.0.1", server.server_port
    finally:
        server.shutdown()
        server.server_close()


def _send(api: tuple[str, int], method: str, path: str, headers: dict[str, str]) -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection(*api, timeout=10)
    connection.request(method, path, headers=headers)
    response = connection.getresponse()
    response.read()
    connection.close()
    return response


def _cors_headers(response: http.client.HTTPResponse) -> dict[str, str]:
    return {k.lower(): v for k, v in response.getheaders() if k.lower().startswith("access-control-")}


def _preflight(origin: str, method: str = "POST") -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "authorization,content-type",
    }


def test_a_preflight_from_the_spa_is_204_with_the_deployed_configuration(api):
    response = _send(api, "OPTIONS", "/api/auth/login/", _preflight(SPA))
    assert response.status == 204
    policy = cors.policy(SPA)
    assert _cors_headers(response) == {
        "access-control-allow-origin": SPA,
        "access-control-allow-credentials": "true",
        "access-control-allow-methods": ",".join(policy.allow_methods),
        "access-control-allow-headers": "authorization,content-type",
        "access-control-max-age": "3600",
    }
    # Every method a route answers is allowed, on any path (API Gateway answers preflights itself).
    assert {"GET", "POST", "PUT", "PATCH", "DELETE"} <= set(policy.allow_methods)
    assert _send(api, "OPTIONS", "/api/trainer/submissions/x/", _preflight(SPA, "GET")).status == 204


def test_a_preflight_from_another_origin_gets_no_cors_header(api):
    response = _send(api, "OPTIONS", "/api/auth/login/", _preflight(ELSEWHERE))
    assert response.status == 204
    assert _cors_headers(response) == {}


def test_answers_carry_the_origin_and_credentials_for_the_spa_only(api):
    ok = _send(api, "GET", "/api/health/", {"Origin": SPA})
    assert ok.status == 200
    assert _cors_headers(ok) == {"access-control-allow-origin": SPA, "access-control-allow-credentials": "true"}
    # An error answer too (API Gateway adds the headers to whatever the integration answers).
    refused = _send(api, "GET", "/api/auth/user/", {"Origin": SPA})
    assert refused.status == 401 and _cors_headers(refused)["access-control-allow-origin"] == SPA
    other = _send(api, "GET", "/api/health/", {"Origin": ELSEWHERE})
    assert other.status == 200 and _cors_headers(other) == {}
    assert _cors_headers(_send(api, "GET", "/api/health/", {})) == {}


def test_options_without_a_preflight_header_is_routed_like_any_request(api):
    # Not a preflight (no Access-Control-Request-Method): the fallback's JSON 405, as deployed.
    response = _send(api, "OPTIONS", "/api/health/", {"Origin": SPA})
    assert response.status == 405
