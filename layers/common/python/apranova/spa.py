"""The web app's pages that the back end links to (emails, redirects), in one place: an email may
link only to one of these (or to a tool), and the web app serves each of them (docs/principles.md §12).

``page(origin, name, **params)`` builds a link: path parameters fill the ``{...}`` of the path, the
rest become the query string. ``route_of(url, origin)`` says which page a link opens, or ``None``.
"""

from __future__ import annotations

import re
from urllib.parse import urlencode, urlsplit

PAGES: dict[str, str] = {
    "home": "/",
    "login": "/login",
    "signup": "/signup",
    "verify": "/verify",
    "set_password": "/set-password",
    "reset_password": "/reset-password",
    "track": "/tracks/{code}",
    "dashboard": "/dashboard",
    "project": "/projects/{id}",
    "payments": "/payments",
    "account": "/account",
    "privacy": "/account/privacy",
    "trainer_queue": "/trainer/submissions",
}

_PARAM = re.compile(r"\{(\w+)\}")


def page(origin: str, name: str, **params: object) -> str:
    path = PAGES[name]
    used = set(_PARAM.findall(path))
    path = _PARAM.sub(lambda m: str(params[m.group(1)]), path)
    query = {key: str(value) for key, value in params.items() if key not in used}
    url = origin.rstrip("/") + path
    return f"{url}?{urlencode(query)}" if query else url


def _pattern(path: str) -> re.Pattern[str]:
    return re.compile("^" + _PARAM.sub(r"[^/]+", re.escape(path).replace(r"\{", "{").replace(r"\}", "}")) + "$")


_PATTERNS = {name: _pattern(path) for name, path in PAGES.items()}


def route_of(url: str, origin: str) -> str | None:
    """The name of the page ``url`` opens on the web app at ``origin``, or None."""
    parts, base = urlsplit(url), urlsplit(origin)
    if (parts.scheme, parts.netloc) != (base.scheme, base.netloc) or parts.fragment:
        return None
    path = parts.path or "/"
    return next((name for name, pattern in _PATTERNS.items() if pattern.match(path)), None)
