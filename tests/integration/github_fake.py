"""A stand-in for the one GitHub REST endpoint the submissions function calls:
``GET /repos/{owner}/{repo}/commits/{ref}`` → ``{"sha": ...}``, served by Werkzeug on a local port.

Repositories are looked up case-insensitively as on GitHub: an unknown one is a 404, an empty one a
409, an unknown ref a 422. ``fail_with`` makes every answer that status (GitHub having a bad day).
Every request is recorded, so a test can tell whether GitHub was asked at all.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from werkzeug.routing import Map, Rule
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

_ROUTES = Map([Rule("/repos/<owner>/<repo>/commits/<path:ref>", endpoint="commit")])


class _Quiet(WSGIRequestHandler):
    def log_request(self, *args: Any) -> None:
        pass


@dataclass
class FakeGitHub:
    url: str = ""
    # (owner, repo) in lower case → {ref: sha}; None for an empty repository.
    repos: dict[tuple[str, str], dict[str, str] | None] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    fail_with: int | None = None

    def add(self, owner: str, repo: str, refs: dict[str, str] | None) -> None:
        self.repos[(owner.lower(), repo.lower())] = refs

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        self.requests.append({"path": request.path, "headers": dict(request.headers)})
        return self._answer(request)(environ, start_response)

    def _answer(self, request: Request) -> Response:
        if self.fail_with is not None:
            return _json(self.fail_with, {"message": "Server Error"})
        try:
            _, args = _ROUTES.bind_to_environ(request.environ).match()
        except Exception:  # noqa: BLE001 - any unmatched path is GitHub's 404
            return _json(404, {"message": "Not Found"})
        key = (args["owner"].lower(), args["repo"].lower())
        if key not in self.repos:
            return _json(404, {"message": "Not Found"})
        refs = self.repos[key]
        if refs is None:
            return _json(409, {"message": "Git Repository is empty."})
        sha = refs.get(args["ref"])
        if sha is None:
            return _json(422, {"message": f"No commit found for SHA: {args['ref']}"})
        return _json(200, {"sha": sha, "commit": {"message": "work"}})


def _json(status: int, body: Any) -> Response:
    return Response(json.dumps(body), status=status, content_type="application/json")


@contextmanager
def fake_github() -> Iterator[FakeGitHub]:
    fake = FakeGitHub()
    server = make_server("127.0.0.1", 0, fake, threaded=True, request_handler=_Quiet)
    thread = threading.Thread(target=server.serve_forever, name="fake-github", daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_port}"
    try:
        yield fake
    finally:
        server.shutdown()
        thread.join(timeout=5)


def closed_port_url() -> str:
    """An address where nothing listens (GitHub unreachable)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
