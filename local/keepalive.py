"""HTTP/1.1 keep-alive for the local stack's werkzeug servers (moto, the API, the emulators).

werkzeug's development server answers every request with ``Connection: close``: it cannot tell
where a request's body ends, so after each answer it reads whatever is on the socket, and a kept
connection's next request would be swallowed. Every boto3 call of a step function then paid a new
TCP connection and a new server thread, accepted one at a time by the server's one accepting
thread: under the 50-payer burst most of an SSM call's time was the wait to be accepted
(docs/decisions.md, issue 13). API Gateway, SSM and the tools keep connections open.

``KeepAliveHandler`` hands the application each request's body through a stream bounded by its
``Content-Length`` (so werkzeug's read-what-is-left stops at the body's end), reads what the
application left of the body before the next request, and leaves out ``Connection: close``. A
request with a chunked body, one that is not HTTP/1.1 or one that asks for ``Connection: close``
closes its connection as before. An idle connection is closed after ``IDLE_TIMEOUT_S``; clients
open a new one (urllib3 checks a pooled connection before it reuses it). ``make_server``'s
``shutdown`` also closes the kept connections, so no request reaches a stopped server.
"""

from __future__ import annotations

import socket
import threading
from typing import IO, Any, cast

from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler
from werkzeug.wsgi import LimitedStream

IDLE_TIMEOUT_S = 120


class KeepAliveHandler(WSGIRequestHandler):
    server: KeepAliveServer
    timeout = IDLE_TIMEOUT_S

    def setup(self) -> None:
        super().setup()
        # An answer is written in pieces (headers, then body): without this, on a kept connection
        # Nagle's algorithm holds the body until the client's delayed ACK, 40 ms later.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.opened(self.connection)

    def finish(self) -> None:
        self.server.closed(self.connection)
        super().finish()

    def run_wsgi(self) -> None:
        chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
        length = self.headers.get("Content-Length") or "0"
        if chunked or self.request_version != "HTTP/1.1" or not length.isdigit():
            self.close_connection = True
            super().run_wsgi()
            return
        raw = self.rfile
        body = LimitedStream(cast(IO[bytes], raw), int(length))
        self.rfile = body  # type: ignore[assignment]  # what make_environ hands the application
        try:
            super().run_wsgi()
            if not self.close_connection:
                body.exhaust()  # the part of the body the application did not read
        finally:
            self.rfile = raw

    def send_header(self, keyword: str, value: str) -> None:
        if keyword.lower() == "connection" and value.lower() == "close" and not self.close_connection:
            return  # werkzeug's unconditional close: this connection stays open
        super().send_header(keyword, value)


class KeepAliveServer(ThreadedWSGIServer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(*args, **kwargs)

    def opened(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.add(connection)

    def closed(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(connection)

    def shutdown(self) -> None:
        super().shutdown()
        with self._connections_lock:
            kept = list(self._connections)
        for connection in kept:
            try:
                connection.shutdown(socket.SHUT_RDWR)  # its handler's wait for a next request ends
            except OSError:
                pass


def make_server(
    host: str, port: int, app: Any, request_handler: type[WSGIRequestHandler] | None = None
) -> KeepAliveServer:
    """werkzeug's threaded ``make_server``, its connections kept open between requests."""
    handler = request_handler or KeepAliveHandler
    if not issubclass(handler, KeepAliveHandler):
        handler = type(handler.__name__, (KeepAliveHandler, handler), {})
    return KeepAliveServer(host, port, app, handler)
