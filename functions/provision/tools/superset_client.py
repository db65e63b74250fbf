"""Superset's REST API as the provisioner uses it: one admin session (JWT login, the CSRF token and
its session cookie) over a ``requests.Session``, FAB's rison ``q`` argument, and the error summaries
that carry no Superset text (``describe``).

Failures: a refused or dropped connection, a timeout, 429 and 5xx are ``ToolUnavailable``; a
rejected admin login, a fresh token or CSRF token rejected again, and 403 are ``ToolFailed``. What a
call's answer means is the caller's (``superset.py``, the provisioner).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import requests

from functions.provision.tools import ToolFailed, ToolUnavailable

PAGE_SIZE = 100
# A call renews the admin token and the CSRF token at most once each; other calls renewing them
# meanwhile can make it go round again, up to this many times in all.
_MAX_RENEWALS = 5


def rison(value: Any) -> str:
    """Rison, the encoding of FAB's ``q`` query argument (strings always quoted)."""
    if value is True:
        return "!t"
    if value is False:
        return "!f"
    if value is None:
        return "!n"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return "'" + value.replace("!", "!!").replace("'", "!'") + "'"
    if isinstance(value, list | tuple):
        return "!(" + ",".join(rison(item) for item in value) + ")"
    if isinstance(value, dict):
        return "(" + ",".join(f"{rison(str(key))}:{rison(item)}" for key, item in value.items()) + ")"
    raise TypeError(f"cannot encode {type(value).__name__} as rison")


def describe(body: Any) -> str:
    """A secret-free summary of a Superset error body: error types or field names, never text
    (a message may quote what it was sent)."""
    if not isinstance(body, dict):
        return ""
    if isinstance(body.get("errors"), list):
        types = sorted({str(e.get("error_type")) for e in body["errors"] if isinstance(e, dict)})
        return f" ({', '.join(types)})" if types else ""
    message = body.get("message")
    if isinstance(message, dict):
        return f" (fields: {', '.join(sorted(map(str, message)))})"
    return ""


@dataclass
class Answer:
    status: int
    body: Any


@dataclass(frozen=True)
class _Held:
    value: str | None
    renewed: bool  # obtained just now, by this call


class SupersetClient:
    """One admin session on Superset: JWT login, the CSRF token and its session cookie.

    The access token and CSRF token are kept between calls; a rejected token (401, or
    flask-jwt-extended's 422 ``{"msg"}``) or a stale CSRF session is renewed once per call.
    """

    def __init__(
        self,
        session: requests.Session,
        base_url: Callable[[], str],
        admin_credentials: Callable[..., tuple[str, str]],
        timeouts: tuple[float, float],
    ) -> None:
        self.session = session
        self._base_url = base_url
        self._admin_credentials = admin_credentials
        self._timeouts = timeouts
        self.token: str | None = None
        self.csrf: str | None = None
        self._session_url: str | None = None
        # Guards the session's state (token, CSRF token, cookie), not the calls: a warm Lambda
        # environment serves one request, but the local stack's environments share this object.
        self._lock = threading.Lock()

    def url(self) -> str:
        url = self._base_url()
        if url != self._session_url:  # another deployment (the parameter changed): a new session
            self.token = self.csrf = None
            self._session_url = url
        return url

    def _send(self, method: str, path: str, **kwargs: Any) -> Answer:
        try:
            response = self.session.request(method, self.url() + path, timeout=self._timeouts, **kwargs)
        except requests.Timeout:
            raise ToolUnavailable(f"Superset timed out on {method} {path}") from None
        except requests.ConnectionError:
            raise ToolUnavailable(f"Superset refused or dropped the connection on {method} {path}") from None
        except requests.RequestException as exc:
            raise ToolUnavailable(f"Superset request failed on {method} {path}: {type(exc).__name__}") from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code == 429 or response.status_code >= 500:
            raise ToolUnavailable(f"Superset answered {response.status_code} to {method} {path}{describe(body)}")
        return Answer(response.status_code, body)

    def login(self, *, force_fetch: bool = False) -> None:
        username, password = self._admin_credentials(force_fetch=force_fetch)
        answer = self._send(
            "POST",
            "/api/v1/security/login",
            json={"username": username, "password": password, "provider": "db", "refresh": False},
        )
        if answer.status == 401 and not force_fetch:
            self.login(force_fetch=True)  # the cached credentials may have been rotated
            return
        if answer.status == 401:
            raise ToolFailed("Superset refused the admin credentials (401)")
        if answer.status != 200 or not isinstance(answer.body, dict) or not answer.body.get("access_token"):
            raise ToolFailed(f"Superset login answered {answer.status}{describe(answer.body)}")
        self.token, self.csrf = answer.body["access_token"], None
        self.session.cookies.clear()

    def _fetch_csrf(self) -> None:
        answer = self._send("GET", "/api/v1/security/csrf_token/", headers=self._auth())
        if answer.status != 200 or not isinstance(answer.body, dict) or not answer.body.get("result"):
            raise ToolFailed(f"Superset's CSRF token endpoint answered {answer.status}")
        self.csrf = answer.body["result"]

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def call(self, method: str, path: str, *, json_body: Any = None, q: dict[str, Any] | None = None) -> Answer:
        mutating = method in ("POST", "PUT", "DELETE", "PATCH")
        renewed_token = renewed_csrf = False
        for _ in range(_MAX_RENEWALS):
            token, csrf, url = self._session_state(mutating)
            renewed_token, renewed_csrf = renewed_token or token.renewed, renewed_csrf or csrf.renewed
            headers = {"Authorization": f"Bearer {token.value}"}
            if mutating:
                headers["X-CSRFToken"] = csrf.value or ""
                headers["Referer"] = url  # Flask-WTF checks it on HTTPS
            params = {"q": rison(q)} if q is not None else None
            answer = self._send(method, path, headers=headers, json=json_body, params=params)
            if token_rejected(answer):
                if renewed_token:
                    raise ToolFailed(f"Superset rejected a fresh admin token on {method} {path} ({answer.status})")
                self._drop(token=token.value)
                continue
            if mutating and csrf_rejected(answer):
                if renewed_csrf:
                    raise ToolFailed(f"Superset rejected a fresh CSRF token on {method} {path}")
                self._drop(csrf=csrf.value)
                continue
            if answer.status == 403:
                raise ToolFailed(f"the Superset admin may not {method} {path} (403)")
            return answer
        raise ToolUnavailable(f"Superset's admin session kept being renewed during {method} {path}")

    def _session_state(self, mutating: bool) -> tuple[_Held, _Held, str]:
        """The admin session's token (and CSRF token, for a mutating call), renewed first when
        missing. Only this is done under the lock: the calls themselves run side by side (each
        Lambda environment in AWS has its own session; here the environments share this one)."""
        with self._lock:
            url = self.url()  # a changed URL drops the session before it is used
            token_renewed = csrf_renewed = False
            if self.token is None:
                self.login()
                token_renewed = True
            if mutating and self.csrf is None:
                self._fetch_csrf()
                csrf_renewed = True
            return _Held(self.token, token_renewed), _Held(self.csrf, csrf_renewed), url

    def _drop(self, *, token: str | None = None, csrf: str | None = None) -> None:
        """Forget a rejected token, unless another call has already replaced it."""
        with self._lock:
            if token is not None and self.token == token:
                self.token = self.csrf = None
            if csrf is not None and self.csrf == csrf:
                self.csrf = None

    def find(self, path: str, column: str, value: Any) -> dict[str, Any] | None:
        """The one row of a FAB list endpoint whose ``column`` equals ``value``."""
        answer = self.call("GET", path, q={"filters": [{"col": column, "opr": "eq", "value": value}]})
        rows = result_list(answer, f"GET {path}")
        matches = [row for row in rows if row.get(column) == value]
        if len(matches) > 1:
            raise ToolFailed(f"Superset lists {len(matches)} rows named by {column} at {path}")
        return matches[0] if matches else None

    def pages(self, path: str, q: dict[str, Any]) -> Iterator[dict[str, Any]]:
        page = 0
        while True:
            answer = self.call("GET", path, q={**q, "page": page, "page_size": PAGE_SIZE})
            rows = result_list(answer, f"GET {path}")
            yield from rows
            if len(rows) < PAGE_SIZE:
                return
            page += 1


def token_rejected(answer: Answer) -> bool:
    # flask-jwt-extended: 401 for a missing/expired token, 422 {"msg"} for one it cannot verify.
    return answer.status == 401 or (answer.status == 422 and isinstance(answer.body, dict) and "msg" in answer.body)


def csrf_rejected(answer: Answer) -> bool:
    if answer.status != 400 or not isinstance(answer.body, dict):
        return False
    texts = [str(answer.body.get("message", ""))]
    texts += [str(e.get("message", "")) for e in answer.body.get("errors") or [] if isinstance(e, dict)]
    return any("CSRF" in text for text in texts)


def result_list(answer: Answer, what: str) -> list[dict[str, Any]]:
    if answer.status != 200 or not isinstance(answer.body, dict) or not isinstance(answer.body.get("result"), list):
        raise ToolFailed(f"Superset answered {answer.status} to {what}{describe(answer.body)}")
    return answer.body["result"]
