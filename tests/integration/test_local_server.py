"""The local API's translation between HTTP and API Gateway's payload format 2.0, in-process."""

from __future__ import annotations

import base64
import json

import pytest
from werkzeug.test import Client, EnvironBuilder
from werkzeug.wrappers import Request

from apranova import routes
from local.jwt_check import Unauthorized
from local.server import MAX_PAYLOAD_BYTES, LocalApi, build_event, translate_response


class _Check:
    """Stands in for the Cognito check: accepts exactly the token "good"."""

    def verify_header(self, header):
        if header != "Bearer good":
            raise Unauthorized("bad")
        return {"sub": "u-1", "token_use": "access", "cognito:groups": ["admins", "trainers"]}


@pytest.fixture
def client(database_url):
    return Client(LocalApi(jwt_check=_Check(), openapi=lambda: {"paths": {}}, mailbox=lambda: []))


def _request(*args, **kwargs) -> Request:
    return Request(EnvironBuilder(*args, **kwargs).get_environ())


def test_event_has_the_v2_shape() -> None:
    request = _request(
        "/api/curriculum/tracks/",
        query_string="a=1&a=2&b=x%20y",
        headers={"X-Custom": "v", "Cookie": "c1=1; c2=2", "User-Agent": "ua/1"},
    )
    event = build_event(request, None)
    assert event["version"] == "2.0"
    assert event["routeKey"] == event["requestContext"]["routeKey"] == "GET /api/curriculum/tracks"
    assert event["rawPath"] == "/api/curriculum/tracks/"
    assert event["rawQueryString"] == "a=1&a=2&b=x%20y"
    assert event["queryStringParameters"] == {"a": "1,2", "b": "x y"}
    assert event["cookies"] == ["c1=1", "c2=2"]
    assert event["headers"]["x-custom"] == "v" and "cookie" not in event["headers"]
    assert event["requestContext"]["http"] == {
        "method": "GET",
        "path": "/api/curriculum/tracks/",
        "protocol": "HTTP/1.1",
        "sourceIp": "127.0.0.1",
        "userAgent": "ua/1",
    }
    assert event["requestContext"]["stage"] == "$default"
    assert event["isBase64Encoded"] is False and "body" not in event and "pathParameters" not in event


def test_unmatched_requests_use_the_default_route_key() -> None:
    event = build_event(_request("/nowhere", method="DELETE"), None)
    assert event["routeKey"] == "$default" and event["requestContext"]["http"]["method"] == "DELETE"


def test_binary_bodies_are_base64_and_text_bodies_are_not() -> None:
    binary = build_event(_request("/x", method="POST", data=b"\x00\xff", content_type="image/png"), None)
    assert binary["isBase64Encoded"] is True and base64.b64decode(binary["body"]) == b"\x00\xff"
    text = build_event(_request("/x", method="POST", data='{"a": 1}', content_type="application/json"), None)
    assert text["isBase64Encoded"] is False and text["body"] == '{"a": 1}'


def test_response_translation() -> None:
    response = translate_response(
        {
            "statusCode": 201,
            "headers": {"X-One": "1"},
            "cookies": ["a=1; Path=/", "b=2; Path=/"],
            "body": base64.b64encode(b"\x01\x02").decode(),
            "isBase64Encoded": True,
        }
    )
    assert response.status_code == 201
    assert response.headers["X-One"] == "1"
    assert response.headers.getlist("Set-Cookie") == ["a=1; Path=/", "b=2; Path=/"]
    assert response.get_data() == b"\x01\x02"
    inferred = translate_response({"hello": "world"})
    assert inferred.status_code == 200 and json.loads(inferred.get_data()) == {"hello": "world"}


def test_real_handlers_answer(client) -> None:
    response = client.get("/api/curriculum/tracks/")
    assert response.status_code == 200
    assert {t["code"] for t in response.json["items"]} >= {"DP", "FSD"}


def test_bodies_over_api_gateway_limit_never_reach_a_function(client) -> None:
    response = client.post("/api/health/", data=b"x" * (MAX_PAYLOAD_BYTES + 1), content_type="application/json")
    assert response.status_code == 413
    assert response.json == {"message": "Request Entity Too Large"}


def test_protected_routes_need_a_valid_token(client, monkeypatch) -> None:
    protected = routes.Route("GET", "/api/test/protected/{id}/", "health", routes.Access.USER)
    original = routes.match

    def match(method, path):
        if path.startswith("/api/test/protected/"):
            return (protected if method == "GET" else None), ["GET"]
        return original(method, path)

    monkeypatch.setattr(routes, "match", match)
    for header in (None, "Bearer bad", "good"):
        response = client.get("/api/test/protected/7/", headers={"Authorization": header} if header else {})
        assert response.status_code == 401
        assert response.json == {"message": "Unauthorized"}
    # With a good token the request reaches the function (whose own table does not know the route).
    response = client.get("/api/test/protected/7/", headers={"Authorization": "Bearer good"})
    assert response.status_code == 404 and response.json["error"]["code"] == "not_found"


def test_local_routes(client) -> None:
    assert client.get("/api/openapi.json").json == {"paths": {}}
    assert client.get("/_local/mailbox").json == {"items": []}
    assert client.get("/_local/nothing").status_code == 404
    assert client.get("/api/docs/static/../../../pyproject.toml").status_code == 404
    assert client.get("/api/docs/static/swagger-ui.css").status_code == 200
