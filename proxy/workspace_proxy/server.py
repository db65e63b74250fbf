"""The proxy's HTTP server: verify, resolve, forward (one request per connection to the target).

Each request is checked on its own and forwarded on a fresh connection with ``Connection: close``:
the load balancer reuses its connections to the proxy for different students, so nothing may ride
on a connection a previous request opened. An ``Upgrade`` request (code-server's WebSocket) is
tunnelled byte for byte after the same check, and lives only as long as that socket.

A task that is RUNNING in ECS but does not accept the connection (code-server still booting, the
task going away) is answered 503 at once (a short connect timeout), never left hanging; a check that
fails on the way (the database, ECS) is a 503 too, never a connection closed without an answer.
Since the proxy closes each connection after its response, the response says so (``Connection:
close`` replaces whatever the workspace said): a client that reused the connection for its next
request would otherwise race the close and see it dropped.
"""

from __future__ import annotations

import logging
import os
import select
import socket
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from workspace_proxy.identity import KeyCache, NotSignedIn, NotYours, verify
from workspace_proxy.targets import NOT_ANSWERING, Refusal, Target, resolve

CONNECT_TIMEOUT = 5  # seconds: a workspace that accepts no connection by then is answered 503
ANSWER_TIMEOUT = 120  # seconds for the workspace's response to begin (then 504)
MAX_HEAD = 65536  # the most of a response head the proxy reads before passing it through unchanged
UNAVAILABLE = "the workspace proxy cannot check your workspace just now: try again in a moment"
log = logging.getLogger("workspace_proxy")
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding"}


@dataclass
class ProxySettings:
    keys: KeyCache
    load_balancer_arn: str
    cluster: str
    connection: Callable[[], Any]  # the application database (apranova.db.connection in AWS)
    ecs: Any  # a boto3 ECS client
    upstream_port: int | None = None  # code-server's port; None: the target's own (8080)
    # Where a task's address is reached from here (the local stack: the task's stand-in server on
    # loopback); None from it: nothing answers there yet. Unset: the task's own address (AWS).
    address: Callable[[Target], Target | None] | None = None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    settings: ProxySettings  # set on the subclass make_handler returns

    def _refuse(self, status: int, message: str) -> None:
        body = message.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Cache-Control", "no-store")
        if status == 503:
            self.send_header("Retry-After", "10")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def _route(self):
        if self.path == "/healthz":
            return None
        headers = {name.lower(): value for name, value in self.headers.items()}
        settings = self.settings
        try:
            identity = verify(headers, keys=settings.keys, load_balancer_arn=settings.load_balancer_arn)
        except NotYours as error:
            self._refuse(403, str(error))
            return False
        except NotSignedIn as error:
            self._refuse(401, str(error))
            return False
        decision = resolve(settings.connection(), settings.ecs, settings.cluster, identity.user_id)
        if isinstance(decision, Target) and settings.upstream_port is not None:
            decision = Target(decision.host, settings.upstream_port)
        if isinstance(decision, Target) and settings.address is not None:
            decision = settings.address(decision) or Refusal(503, NOT_ANSWERING)
        return decision

    def _upstream_headers(self) -> list[str]:
        """The request's headers for the workspace: without hop-by-hop ones and the student's tokens."""
        lines = []
        for name, value in self.headers.items():
            lowered = name.lower()
            if lowered in HOP_BY_HOP or lowered == "expect" or lowered.startswith("x-amzn-oidc-"):
                continue  # the student's tokens stay at the proxy; the body is read already
            lines.append(f"{name}: {value}")
        return lines

    def _forward(self) -> None:
        try:
            decision = self._route()
        except Exception:  # the database or ECS failed: answer, never drop the connection
            log.exception("workspace proxy: routing failed")
            self._refuse(503, UNAVAILABLE)
            return
        if decision is None:
            self._refuse(200, "ok")
            return
        if decision is False:
            return
        if isinstance(decision, Refusal):
            self._refuse(decision.status, decision.reason)
            return
        upgrade = self.headers.get("Upgrade")
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        lines = [f"{self.command} {self.path} HTTP/1.1", *self._upstream_headers()]
        lines.append("Connection: Upgrade" if upgrade else "Connection: close")
        try:
            upstream = socket.create_connection((decision.host, decision.port), timeout=CONNECT_TIMEOUT)
        except OSError:
            self._refuse(503, NOT_ANSWERING)
            return
        try:
            upstream.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
            if upgrade or self._relay_head(upstream):
                self._pipe(upstream)
        finally:
            upstream.close()
            self.close_connection = True

    def _relay_head(self, upstream: socket.socket) -> bool:
        """Passes the response's head on with ``Connection: close``; False when nothing more follows."""
        upstream.settimeout(ANSWER_TIMEOUT)
        buffer = b""
        try:
            while b"\r\n\r\n" not in buffer and len(buffer) < MAX_HEAD:
                chunk = upstream.recv(65536)
                if not chunk:
                    break
                buffer += chunk
        except TimeoutError:
            if not buffer:
                self._refuse(504, "your workspace did not answer in time")
                return False
        if not buffer:
            self._refuse(503, NOT_ANSWERING)
            return False
        if b"\r\n\r\n" not in buffer:
            self.connection.sendall(buffer)
            return True
        head, rest = buffer.split(b"\r\n\r\n", 1)
        status, *fields = head.split(b"\r\n")
        kept = [f for f in fields if f.split(b":", 1)[0].strip().lower() not in (b"connection", b"keep-alive")]
        self.connection.sendall(b"\r\n".join([status, *kept, b"Connection: close"]) + b"\r\n\r\n" + rest)
        return True

    def _pipe(self, upstream: socket.socket) -> None:
        client = self.connection
        upstream.settimeout(None)
        sockets = [client, upstream]
        while True:
            readable, _, _ = select.select(sockets, [], [], 600)
            if not readable:
                return
            for source in readable:
                data = source.recv(65536)
                if not data:
                    return
                (upstream if source is client else client).sendall(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _forward


def make_handler(settings: ProxySettings) -> type[Handler]:
    return type("ConfiguredHandler", (Handler,), {"settings": settings})


def main() -> None:
    import boto3

    from apranova import db

    settings = ProxySettings(
        keys=KeyCache(os.environ["AWS_REGION"]),
        load_balancer_arn=os.environ["LOAD_BALANCER_ARN"],
        cluster=os.environ["WORKSPACE_CLUSTER"],
        connection=db.connection,
        ecs=boto3.client("ecs"),
    )
    port = int(os.environ.get("PROXY_PORT", "8080"))
    ThreadingHTTPServer(("0.0.0.0", port), make_handler(settings)).serve_forever()  # noqa: S104


if __name__ == "__main__":
    main()
