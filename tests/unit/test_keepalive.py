"""The local servers keep connections open between requests, and still end each request where its
body ends (local/keepalive.py): real sockets, requests as the clients use it."""

from __future__ import annotations

import http.client
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from local.keepalive import KeepAliveServer, make_server


def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """``/echo`` answers the body it read; ``/ignore`` reads none of it."""
    body = b""
    if environ["PATH_INFO"] == "/echo":
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    answer = environ["PATH_INFO"].encode() + b":" + body
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(answer)))])
    return [answer]


@pytest.fixture
def server() -> Iterator[tuple[KeepAliveServer, list[socket.socket]]]:
    served = make_server("127.0.0.1", 0, app)
    accepted: list[socket.socket] = []
    opened = served.opened

    def counting(connection: socket.socket) -> None:
        accepted.append(connection)
        opened(connection)

    served.opened = counting  # type: ignore[method-assign]
    thread = threading.Thread(target=served.serve_forever, daemon=True)
    thread.start()
    yield served, accepted
    served.shutdown()
    served.server_close()
    thread.join(5)


def url(server: KeepAliveServer, path: str) -> str:
    return f"http://127.0.0.1:{server.server_port}{path}"


def test_requests_share_one_connection_and_an_unread_body_does_not_spill_into_the_next(server) -> None:
    served, accepted = server
    with requests.Session() as session:
        ignored = session.post(url(served, "/ignore"), data=b"x" * 100_000)
        echoed = session.post(url(served, "/echo"), data=b"second")
        plain = session.get(url(served, "/echo"))
    assert (ignored.text, echoed.text, plain.text) == ("/ignore:", "/echo:second", "/echo:")
    assert "close" not in ignored.headers.get("Connection", "").lower()
    assert len(accepted) == 1


def test_a_client_asking_to_close_and_a_chunked_body_close_the_connection(server) -> None:
    served, accepted = server
    with requests.Session() as session:
        asked = session.get(url(served, "/echo"), headers={"Connection": "close"})
        chunked = session.post(url(served, "/echo"), data=iter([b"a", b"b"]))  # no length: chunked
        after = session.get(url(served, "/echo"))
    assert asked.headers["Connection"].lower() == "close"
    assert chunked.headers["Connection"].lower() == "close"
    assert after.text == "/echo:"
    assert len(accepted) == 3


def test_an_http_1_0_request_is_answered_and_closed(server) -> None:
    served, _ = server
    connection = http.client.HTTPConnection("127.0.0.1", served.server_port, timeout=5)
    connection._http_vsn, connection._http_vsn_str = 10, "HTTP/1.0"  # type: ignore[attr-defined]
    connection.request("GET", "/echo")
    answer = connection.getresponse()
    assert answer.read() == b"/echo:"
    assert answer.will_close
    connection.close()


def test_a_stopped_server_serves_nothing_more_on_a_kept_connection(server) -> None:
    served, _ = server
    with requests.Session() as session:
        assert session.get(url(served, "/echo")).ok
        served.shutdown()
        served.server_close()
        with pytest.raises(requests.ConnectionError):
            session.get(url(served, "/echo"), timeout=5)
