"""Helpers for the tests of the shared-tool provisioners (JupyterHub, Prefect).

``start_or_skip`` starts a real tool from its ``.tools/`` venv; only a missing venv outside CI
skips (in CI, ``CI=true``, a missing tool fails the test). ``misbehaving_server`` is a tiny
Werkzeug server that answers every request with a status, or sleeps past the client's read timeout
first; ``closed_port`` is a port nothing listens on.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from local.tools._server import ToolNotInstalled

H = TypeVar("H")


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def start_or_skip(start: Callable[[], H]) -> H:
    try:
        return start()
    except ToolNotInstalled as exc:
        if in_ci():
            pytest.fail(f"{exc} (CI must have every tool)")
        pytest.skip(str(exc))


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # closed again on leaving: nothing listens there


@contextmanager
def misbehaving_server(status: int = 500, delay: float = 0.0) -> Iterator[str]:
    """The base URL of a server that answers ``status`` (JSON) to everything, after ``delay`` seconds."""
    stop = threading.Event()

    @Request.application
    def app(request: Request) -> Response:
        stop.wait(delay)  # returns at once when the test ends
        return Response('{"message": "boom", "detail": "boom"}', status=status, content_type="application/json")

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        stop.set()
        server.shutdown()
        thread.join(5)


def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll ``predicate`` until it returns something truthy (a condition, not a duration assertion)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)
