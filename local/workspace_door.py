"""The workspaces' front door in the local stack: what ``https://workspace.<toolsDomain>`` is in AWS.

In AWS a student's workspace link leads to the load balancer, whose ``authenticate-cognito`` action
signs them in and passes who they are to the workspace proxy (proxy/workspace_proxy) in
``x-amzn-oidc-data``, an ES256 JWT the load balancer signs; the proxy verifies it against the key
the region publishes, checks the account and forwards to the student's own RUNNING task. ``make dev``
runs the same chain on loopback, three kinds of real HTTP servers:

- the **front door** (the load balancer's part, ``workspace_url`` in stack.json, the link the API,
  the emails and the web app give): a session cookie holding a token of the local user pool, checked
  as the API's authorizer checks it (``local.jwt_check``); without one, a redirect to its sign-in
  page (the hosted UI's part: the API's own login route behind it). Any ``x-amzn-oidc-*`` header a
  client sends is dropped, as the load balancer drops them; the front door signs its own with an
  ES256 key made at start, publishes the public key at ``/oauth2/public-keys/<kid>`` and forwards;
- the **workspace proxy**: proxy/workspace_proxy's handler, unchanged, in its own server
  (``workspace_proxy_url``): it fetches the front door's key by the token's ``kid`` and verifies
  the signature, the signer and the expiry, then resolves the target from the database and moto's
  ECS exactly as in AWS. The one local difference is the last hop: moto's tasks have VPC addresses
  this machine cannot reach, so the task's address is mapped to its stand-in's loopback port;
- a **stand-in server per RUNNING workspace task** (moto's ECS runs no containers): a tiny page
  naming whose workspace it is. A watcher started beside them follows moto's ECS, as the ECS agent
  would: a task started by the tools API gets its stand-in, a stopped one (the student, the idle
  stopper, a deprovision) loses it. The proxy also looks again when it is asked for a task that has
  none yet, so a request right after "start" does not race the watcher.
"""

from __future__ import annotations

import base64
import html
import json
import logging
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from http.cookies import CookieError, SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "proxy") not in sys.path:  # the proxy image's package (proxy/workspace_proxy)
    sys.path.insert(0, str(ROOT / "proxy"))

from workspace_proxy.identity import KeyCache  # noqa: E402
from workspace_proxy.server import HOP_BY_HOP, Handler, ProxySettings, make_handler  # noqa: E402
from workspace_proxy.targets import FAMILY_PREFIX, Target  # noqa: E402

from local.jwt_check import JwtCheck, Unauthorized  # noqa: E402

log = logging.getLogger("local")

# The load balancer's names, as the proxy expects them (a local ARN, never a real one).
LOAD_BALANCER_ARN = (
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/apranova-local-tools/0000000000000000"
)
SESSION_COOKIE = "AWSELBAuthSessionCookie-0"  # the load balancer's session cookie name
SIGN_IN_PATH = "/oauth2/sign-in"
KEYS_PATH = "/oauth2/public-keys/"
IDENTITY_SECONDS = 120  # the signed identity's lifetime (the load balancer's is short too)
SYNC_SECONDS = 1.0
POLL_SECONDS = 0.1  # the servers' shutdown check (Ctrl-C stops the stack within its budget)
PORT_FILE = "workspace-door-port"


def _b64(data: bytes) -> str:
    # The load balancer keeps base64's "=" padding; the proxy accepts it as the load balancer sends it.
    return base64.urlsafe_b64encode(data).decode("ascii")


class Signer:
    """The load balancer's ES256 key: signs the identity it passes, publishes the public half."""

    def __init__(self, issuer: str, client_id: str) -> None:
        self.kid = str(uuid.uuid4())
        self._key = ec.generate_private_key(ec.SECP256R1())
        self._issuer = issuer
        self._client_id = client_id
        self.public_pem = (
            self._key.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode("ascii")
        )

    def sign(self, claims: dict[str, Any]) -> str:
        exp = int(time.time()) + IDENTITY_SECONDS
        header = {
            "alg": "ES256",
            "kid": self.kid,
            "signer": LOAD_BALANCER_ARN,
            "iss": self._issuer,
            "client": self._client_id,
            "exp": exp,
        }
        body = {**claims, "exp": exp, "iss": self._issuer}
        signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(body).encode())}"
        r, s = decode_dss_signature(self._key.sign(signing_input.encode("ascii"), ec.ECDSA(hashes.SHA256())))
        return f"{signing_input}.{_b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


# --- the stand-in servers ---------------------------------------------------------------------------


class _StandInHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    owner: str
    task_id: str

    def _answer(self) -> None:
        body = (
            "<!doctype html><html><head><meta charset='utf-8'><title>ApraNova workspace</title></head><body>"
            "<h1>ApraNova workspace (local stand-in)</h1>"
            f"<p>Workspace of user <code id='owner'>{html.escape(self.owner)}</code>,"
            f" task <code>{html.escape(self.task_id)}</code>.</p>"
            f"<p>Requested: <code>{html.escape(self.command)} {html.escape(self.path)}</code></p>"
            "<p>In AWS, code-server answers here; the local stack runs no containers.</p>"
            "</body></html>"
        ).encode()
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Workspace-Owner", self.owner)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _answer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass


@dataclass
class StandIn:
    user_id: str
    task_arn: str
    private_ip: str
    server: ThreadingHTTPServer = field(repr=False)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    @classmethod
    def start(cls, user_id: str, task_arn: str, private_ip: str) -> StandIn:
        handler = type("StandInHandler", (_StandInHandler,), {"owner": user_id, "task_id": task_arn.rsplit("/", 1)[-1]})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        threading.Thread(
            target=server.serve_forever, args=(POLL_SECONDS,), name=f"workspace-{user_id[:8]}", daemon=True
        ).start()
        return cls(user_id, task_arn, private_ip, server)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _running_tasks(ecs: Any, cluster: str) -> dict[str, tuple[str, str]]:
    """task ARN → (user id, private IP) of every RUNNING workspace task of the cluster."""
    arns: list[str] = []
    for page in ecs.get_paginator("list_tasks").paginate(cluster=cluster, desiredStatus="RUNNING"):
        arns.extend(page.get("taskArns") or [])
    found: dict[str, tuple[str, str]] = {}
    for start in range(0, len(arns), 100):
        for task in ecs.describe_tasks(cluster=cluster, tasks=arns[start : start + 100]).get("tasks") or []:
            family = task.get("taskDefinitionArn", "").rsplit("/", 1)[-1].split(":", 1)[0]
            if not family.startswith(FAMILY_PREFIX) or task.get("lastStatus") != "RUNNING":
                continue
            try:
                user_id = str(uuid.UUID(task.get("startedBy") or ""))
            except ValueError:
                continue
            ip = next(
                (
                    d.get("value")
                    for a in task.get("attachments") or []
                    if a.get("type") == "ElasticNetworkInterface"
                    for d in a.get("details") or []
                    if d.get("name") == "privateIPv4Address" and d.get("value")
                ),
                None,
            )
            if ip:
                found[task["taskArn"]] = (user_id, str(ip))
    return found


class StandIns:
    """One stand-in server per RUNNING workspace task in moto's ECS, kept in step by ``sync``."""

    def __init__(self, ecs: Any, cluster: str) -> None:
        self._ecs = ecs
        self._cluster = cluster
        self._servers: dict[str, StandIn] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sync(self) -> None:
        running = _running_tasks(self._ecs, self._cluster)
        with self._lock:
            for arn in [arn for arn in self._servers if arn not in running]:
                gone = self._servers.pop(arn)
                gone.stop()
                log.info("workspace stand-in of %s stopped", gone.user_id)
            for arn, (user_id, ip) in running.items():
                if arn not in self._servers:
                    self._servers[arn] = StandIn.start(user_id, arn, ip)
                    log.info("workspace stand-in of %s on port %d", user_id, self._servers[arn].port)

    def current(self) -> list[StandIn]:
        with self._lock:
            return list(self._servers.values())

    def _by_ip(self, ip: str) -> StandIn | None:
        with self._lock:
            return next((s for s in self._servers.values() if s.private_ip == ip), None)

    def address(self, target: Target) -> Target | None:
        """Where the task at ``target`` answers here: its stand-in on loopback (None: no stand-in)."""
        found = self._by_ip(target.host)
        if found is None:
            self.sync()  # started a moment ago: do not wait for the watcher
            found = self._by_ip(target.host)
        return Target("127.0.0.1", found.port) if found else None

    def watch(self) -> None:
        def loop() -> None:
            while not self._stop.is_set():
                try:
                    self.sync()
                except Exception:  # noqa: BLE001 - moto busy or stopping: the next round tries again
                    log.debug("workspace stand-ins: sync failed", exc_info=True)
                self._stop.wait(SYNC_SECONDS)

        self._thread = threading.Thread(target=loop, name="workspace-stand-ins", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)  # a round stuck on a slow moto must not hold up Ctrl-C
        with self._lock:
            for server in self._servers.values():
                server.stop()
            self._servers.clear()


# --- the front door ---------------------------------------------------------------------------------


def _sign_in_page(next_path: str, message: str = "") -> bytes:
    note = f"<p role='alert'>{html.escape(message)}</p>" if message else ""
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Sign in · ApraNova workspace</title></head>"
        "<body><h1>Sign in to open your workspace</h1>"
        f"{note}<form method='post' action='{SIGN_IN_PATH}'>"
        f"<input type='hidden' name='next' value='{html.escape(next_path, quote=True)}'>"
        "<label>Email <input name='email' type='email' autocomplete='username' required></label>"
        "<label>Password <input name='password' type='password' autocomplete='current-password' required></label>"
        "<button type='submit'>Sign in</button></form></body></html>"
    ).encode()


def _safe_next(value: str) -> str:
    """Only a path on this host (no scheme, no host, no ``//``): an open redirect otherwise."""
    return value if value.startswith("/") and not value.startswith("//") and "\\" not in value else "/"


class FrontDoorHandler(Handler):
    """The load balancer's part: sign the student in, sign who they are, forward to the proxy."""

    door: WorkspaceDoor  # set on the subclass ``WorkspaceDoor`` makes
    _identity: dict[str, str]

    def _forward(self) -> None:
        path = urlsplit(self.path).path
        if path == SIGN_IN_PATH:
            self._sign_in()
        elif path.startswith(KEYS_PATH):
            self._public_key(path[len(KEYS_PATH) :])
        else:
            super()._forward()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _forward

    def _route(self) -> Target | bool:
        token = self._session_token()
        try:
            claims = self.door.jwt_check.verify(token) if token else None
        except Unauthorized:
            claims = None
        # (Anything else, the pool's keys out of reach, is the proxy handler's 503.)
        if claims is None:
            # authenticate-cognito's default for a request without a session: to the sign-in page.
            self.send_response(302)
            self.send_header("Location", f"{SIGN_IN_PATH}?next={quote(self.path, safe='')}")
            self.send_header("Content-Length", "0")
            self.send_header("Cache-Control", "no-store")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            return False
        user = {"sub": str(claims["sub"]), "username": str(claims.get("username") or claims["sub"])}
        self._identity = {
            "x-amzn-oidc-data": self.door.signer.sign(user),
            "x-amzn-oidc-identity": user["sub"],
            "x-amzn-oidc-accesstoken": token or "",
        }
        return Target("127.0.0.1", self.door.proxy_port)

    def _upstream_headers(self) -> list[str]:
        lines = []
        for name, value in self.headers.items():
            lowered = name.lower()
            if lowered in HOP_BY_HOP or lowered == "expect" or lowered.startswith("x-amzn-oidc-"):
                continue  # whatever the client claims, only the load balancer's own pass
            if lowered == "cookie":
                value = self._without_session(value)
                if not value:
                    continue
            lines.append(f"{name}: {value}")
        lines.extend(f"{name}: {value}" for name, value in self._identity.items())
        return lines

    def _session_token(self) -> str | None:
        jar = SimpleCookie()
        try:
            jar.load(self.headers.get("Cookie") or "")
        except CookieError:
            return None
        morsel = jar.get(SESSION_COOKIE)
        return morsel.value if morsel and morsel.value else None

    @staticmethod
    def _without_session(cookie_header: str) -> str:
        kept = [part.strip() for part in cookie_header.split(";") if part.strip()]
        return "; ".join(part for part in kept if not part.startswith(f"{SESSION_COOKIE}="))

    def _page(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _sign_in(self) -> None:
        if self.command == "GET":
            wanted = parse_qs(urlsplit(self.path).query).get("next", ["/"])[0]
            self._page(200, _sign_in_page(_safe_next(wanted)))
            return
        if self.command != "POST":
            self._page(405, b"", {"Allow": "GET, POST"})
            return
        length = min(int(self.headers.get("Content-Length") or 0), 16384)
        form = parse_qs(self.rfile.read(length).decode("utf-8", "replace"))
        email, password = form.get("email", [""])[0], form.get("password", [""])[0]
        wanted = _safe_next(form.get("next", ["/"])[0])
        token = self.door.log_in(email, password)
        if token is None:
            self._page(401, _sign_in_page(wanted, "Incorrect email or password."))
            return
        cookie = f"{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax"
        self._page(302, b"", {"Location": wanted, "Set-Cookie": cookie})

    def _public_key(self, kid: str) -> None:
        if kid != self.door.signer.kid:
            self._refuse(404, "no such key")
            return
        body = self.door.signer.public_pem.encode("ascii")
        self.send_response(200)
        self.send_header("Content-Type", "application/x-pem-file")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        log.info("workspace door: " + format, *args)


class _QuietProxyHandler:
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        log.debug("workspace proxy: " + format, *args)


class _Database:
    """The proxy's application-database connection (apranova.db's, through the pooler), reopened when broken."""

    def __init__(self) -> None:
        self._conn: Any = None
        self._lock = threading.Lock()

    def __call__(self) -> Any:
        from apranova import db

        with self._lock:
            if self._conn is None or self._conn.closed or self._conn.broken:
                self._conn = db.connect()
            return self._conn

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()


class WorkspaceDoor:
    """The running front door, proxy and stand-ins; ``url`` is the workspace link, ``stop`` ends all."""

    def __init__(
        self,
        *,
        port: int,
        api_url: str,
        ecs: Any,
        cluster: str,
        jwt_check: JwtCheck,
        region: str,
    ) -> None:
        self.api_url = api_url
        self.jwt_check = jwt_check
        self.signer = Signer(jwt_check.issuer, jwt_check.client_id)
        self.stand_ins = StandIns(ecs, cluster)
        self._database = _Database()
        # The front door first (the proxy fetches its key from it), on the remembered port.
        door_handler = type("WorkspaceFrontDoor", (FrontDoorHandler,), {"door": self})
        self._door = ThreadingHTTPServer(("127.0.0.1", port), door_handler)
        self._door.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._door.server_address[1]}"
        settings = ProxySettings(
            keys=KeyCache(region, key_url=self.url + KEYS_PATH + "{kid}"),
            load_balancer_arn=LOAD_BALANCER_ARN,
            cluster=cluster,
            connection=self._database,
            ecs=ecs,
            address=self.stand_ins.address,
        )
        proxy_handler = type("LocalWorkspaceProxy", (_QuietProxyHandler, make_handler(settings)), {})
        self._proxy = ThreadingHTTPServer(("127.0.0.1", 0), proxy_handler)
        self._proxy.daemon_threads = True
        self.proxy_port = int(self._proxy.server_address[1])
        self.proxy_url = f"http://127.0.0.1:{self.proxy_port}"
        for name, server in (("workspace-door", self._door), ("workspace-proxy", self._proxy)):
            threading.Thread(target=server.serve_forever, args=(POLL_SECONDS,), name=name, daemon=True).start()
        self.stand_ins.watch()

    def log_in(self, email: str, password: str) -> str | None:
        """The pool's access token for these credentials, from the API's own login route; None when refused."""
        request = urllib.request.Request(  # noqa: S310 - the local API on loopback
            f"{self.api_url}/api/auth/login/",
            data=json.dumps({"email": email, "password": password}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback
                return str(json.loads(response.read())["access"])
        except (urllib.error.URLError, KeyError, ValueError):
            return None

    def stop(self) -> None:
        began = time.monotonic()
        for server in (self._door, self._proxy):
            server.shutdown()
            server.server_close()
        self.stand_ins.stop()
        self._database.close()
        log.info("workspace door stopped in %.2f s", time.monotonic() - began)


def start(
    state_dir: Path,
    *,
    api_url: str,
    ecs: Any,
    cluster: str,
    jwt_check: JwtCheck,
    region: str,
    port: int | None = None,
) -> WorkspaceDoor:
    """The front door on ``port`` (else the one used last time, so links keep working), the proxy
    and the stand-ins of the workspaces already running."""
    from local.tools._server import remembered_port

    chosen = remembered_port(Path(state_dir) / PORT_FILE, port)
    return WorkspaceDoor(port=chosen, api_url=api_url, ecs=ecs, cluster=cluster, jwt_check=jwt_check, region=region)
