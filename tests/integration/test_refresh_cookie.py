"""The browser's session (docs/principles.md §12): login and refresh set the refresh token as an HttpOnly,
Secure, SameSite=Strict cookie on the auth paths only; refresh works from the cookie alone; logout
clears it and the token it carried stops working. The JSON ``refresh`` field stays for other clients.

Real tokens from moto's Cognito through the real auth handler; the cookies are the HTTP API payload
2.0 ``cookies`` lists API Gateway turns into ``Set-Cookie`` headers and back.
"""

from __future__ import annotations

import json
import uuid
from http.cookies import SimpleCookie

import pytest

from functions.auth.handler import REFRESH_COOKIE, SESSION_HINT_COOKIE
from functions.auth.handler import lambda_handler as auth
from local.events import LambdaContext, http_api_event
from tests.integration.auth_support import PASSWORD, bearer, mailed_code

# The module's Cognito user pool and the policy versions in force: tests/integration/conftest.py.
pytestmark = pytest.mark.usefixtures("pool")


def send(method: str, path: str, body=None, *, cookies=None, **kwargs) -> tuple[int, dict, list[str]]:
    text = json.dumps(body) if body is not None else None
    response = auth(http_api_event(method, path, body=text, cookies=cookies, **kwargs), LambdaContext("test"))
    answer = json.loads(response["body"]) if response.get("body") else {}
    return response["statusCode"], answer, response.get("cookies") or []


def cookie(set_cookies: list[str], name: str):
    jar = SimpleCookie()
    for header in set_cookies:
        jar.load(header)
    return jar[name]


def refresh_cookie(set_cookies: list[str]):
    return cookie(set_cookies, REFRESH_COOKIE)


def signed_in(versions) -> tuple[dict, list[str]]:
    email = f"cookie-{uuid.uuid4().hex[:10]}@example.com"
    body = {"email": email, "password": PASSWORD, "name": "Cora", "accept_privacy": True, **versions}
    assert send("POST", "/api/auth/registration/", body)[0] == 201
    assert send("POST", "/api/auth/verify-email/", {"email": email, "code": mailed_code(email)})[0] == 200
    status, tokens, cookies = send("POST", "/api/auth/login/", {"email": email, "password": PASSWORD})
    assert status == 200, tokens
    return tokens, cookies


def test_login_sets_the_refresh_token_as_a_strict_httponly_cookie_on_the_auth_paths(versions):
    tokens, cookies = signed_in(versions)
    refresh = refresh_cookie(cookies)
    assert refresh.value == tokens["refresh"]  # the body keeps it for non-browser clients
    assert refresh["httponly"] is True
    assert refresh["secure"] is True
    assert refresh["samesite"] == "Strict"
    assert refresh["path"] == "/api/auth/"
    assert int(refresh["max-age"]) == 30 * 24 * 3600
    # The web app's hint that there is a session to restore: readable by script, so no secret in it.
    hint = cookie(cookies, SESSION_HINT_COOKIE)
    assert hint.value == "1"
    assert hint["httponly"] == ""
    assert hint["secure"] is True and hint["samesite"] == "Strict" and hint["path"] == "/"


def test_refresh_reads_the_cookie_when_the_body_has_no_token(versions):
    tokens, cookies = signed_in(versions)
    sent = [f"{REFRESH_COOKIE}={refresh_cookie(cookies).value}"]
    status, refreshed, again = send("POST", "/api/auth/token/refresh/", cookies=sent)
    assert status == 200, refreshed
    assert refreshed["access"]
    assert send("GET", "/api/auth/user/", **bearer(refreshed["access"]))[0] == 200
    assert refresh_cookie(again).value == tokens["refresh"]  # renewed for another 30 days
    # An empty JSON body is the same as none.
    assert send("POST", "/api/auth/token/refresh/", {}, cookies=sent)[0] == 200


def test_refresh_without_body_or_cookie_is_401():
    status, answer, _ = send("POST", "/api/auth/token/refresh/")
    assert status == 401
    assert answer["error"]["code"] == "token_not_valid"
    other = send("POST", "/api/auth/token/refresh/", cookies=["unrelated=1"])
    assert other[0] == 401


def test_logout_clears_the_cookie_and_its_token_stops_working(versions):
    tokens, cookies = signed_in(versions)
    sent = [f"{REFRESH_COOKIE}={refresh_cookie(cookies).value}"]
    status, _, cleared = send("POST", "/api/auth/logout/", {}, cookies=sent, **bearer(tokens["access"]))
    assert status == 200
    gone = refresh_cookie(cleared)
    assert gone.value == ""
    assert int(gone["max-age"]) == 0
    assert gone["path"] == "/api/auth/"
    assert cookie(cleared, SESSION_HINT_COOKIE).value == ""
    assert int(cookie(cleared, SESSION_HINT_COOKIE)["max-age"]) == 0
    # Cognito revoked the refresh token the cookie carried.
    assert send("POST", "/api/auth/token/refresh/", cookies=sent)[0] == 401
