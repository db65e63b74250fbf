"""Sign-up → verify → login → profile → refresh → logout → refresh refused, over real HTTP through
the local stack (its JWT check in front of the real functions, moto's Cognito behind them)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.e2e.test_local_stack import Stack, _free_port
from tests.integration.auth_support import other_than

PASSWORD = "Journey-Passw0rd!"


@pytest.fixture(scope="module")
def auth_stack(tmp_path_factory: pytest.TempPathFactory, make_database) -> Iterator[Stack]:
    state: Path = tmp_path_factory.mktemp("auth-journey") / "state"
    started = Stack(state, make_database("apranova_e2e_auth"), _free_port())
    yield started
    started.stop()
    started.drop_students_database()


def test_the_whole_journey(auth_stack: Stack) -> None:
    url = auth_stack.url
    email = f"journey-{uuid.uuid4().hex[:8]}@example.com"
    stale = {"email": email, "password": PASSWORD, "name": "Jo", "accept_privacy": True}
    answer = requests.post(
        url("/api/auth/registration/"), json={**stale, "privacy_version": "0", "terms_version": "0"}, timeout=10
    )
    assert answer.status_code == 409
    current = {d["field"].removeprefix("body."): d["current"] for d in answer.json()["error"]["details"]}
    registered = requests.post(url("/api/auth/registration/"), json={**stale, **current}, timeout=10)
    assert registered.status_code == 201, registered.text

    early = requests.post(url("/api/auth/login/"), json={"email": email, "password": PASSWORD}, timeout=10)
    assert early.status_code == 403 and early.json()["error"]["code"] == "email_not_verified"
    # The code is in the mailbox, as Cognito's email; a wrong code is refused, a resend replaces it.
    first = auth_stack.mailed_code(email)
    wrong = requests.post(url("/api/auth/verify-email/"), json={"email": email, "code": other_than(first)}, timeout=10)
    assert wrong.status_code == 400 and wrong.json()["error"]["code"] == "invalid_code"
    assert requests.post(url("/api/auth/resend-verification/"), json={"email": email}, timeout=10).status_code == 202
    code = auth_stack.mailed_code(email)
    if code != first:  # a new code (one chance in a million of the same digits)
        old = requests.post(url("/api/auth/verify-email/"), json={"email": email, "code": first}, timeout=10)
        assert old.status_code == 400
    verified = requests.post(url("/api/auth/verify-email/"), json={"email": email, "code": code}, timeout=10)
    assert verified.status_code == 200

    login = requests.post(url("/api/auth/login/"), json={"email": email, "password": PASSWORD}, timeout=10)
    assert login.status_code == 200, login.text
    tokens = login.json()
    headers = {"Authorization": f"Bearer {tokens['access']}"}
    profile = requests.get(url("/api/auth/user/"), headers=headers, timeout=10).json()
    assert (profile["email"], profile["role"], profile["privacy_accepted"]) == (email, "student", True)
    assert requests.get(url("/api/auth/user/"), timeout=10).status_code == 401
    id_token = {"Authorization": f"Bearer {tokens['id_token']}"}
    assert requests.get(url("/api/auth/user/"), headers=id_token, timeout=10).status_code == 401

    refreshed = requests.post(url("/api/auth/token/refresh/"), json={"refresh": tokens["refresh"]}, timeout=10)
    assert refreshed.status_code == 200
    fresh = {"Authorization": f"Bearer {refreshed.json()['access']}"}
    assert requests.get(url("/api/auth/user/"), headers=fresh, timeout=10).status_code == 200

    out = requests.post(url("/api/auth/logout/"), json={"refresh": tokens["refresh"]}, headers=headers, timeout=10)
    assert out.status_code == 200, out.text
    again = requests.post(url("/api/auth/token/refresh/"), json={"refresh": tokens["refresh"]}, timeout=10)
    assert again.status_code == 401
    # The session ended on the server: the access tokens of before stop working at once.
    ended = requests.get(url("/api/auth/user/"), headers=fresh, timeout=10)
    assert ended.status_code == 401 and ended.json()["error"]["code"] == "session_ended"
    assert ended.headers["Cache-Control"] == "no-store" and ended.headers["X-Content-Type-Options"] == "nosniff"
    # Signing in again at once works.
    relogin = requests.post(url("/api/auth/login/"), json={"email": email, "password": PASSWORD}, timeout=10)
    back = {"Authorization": f"Bearer {relogin.json()['access']}"}
    assert requests.get(url("/api/auth/user/"), headers=back, timeout=10).status_code == 200

    # Forgotten password: the mailed reset code, and only it, sets a new one.
    assert requests.post(url("/api/auth/password/reset/"), json={"email": email}, timeout=10).status_code == 202
    reset_code = auth_stack.mailed_code(email)
    new_password = "Journey-Passw0rd-2!"
    wrong = {"email": email, "code": other_than(reset_code), "new_password": new_password}
    refused = requests.post(url("/api/auth/password/reset/confirm/"), json=wrong, timeout=10)
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "invalid_code"
    right = {"email": email, "code": reset_code, "new_password": new_password}
    assert requests.post(url("/api/auth/password/reset/confirm/"), json=right, timeout=10).status_code == 200
    signed_in = requests.post(url("/api/auth/login/"), json={"email": email, "password": new_password}, timeout=10)
    assert signed_in.status_code == 200, signed_in.text
