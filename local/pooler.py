"""PgBouncer in front of PostgreSQL, as RDS Proxy is in AWS (docs/principles.md §11).

The functions connect through it, locally and in the tests, so what the proxy refuses fails here
first: transaction pooling (a session's state does not survive its transaction: a plain ``SET``,
a session advisory lock, a temporary table or a prepared statement would leak to another client
or vanish) and its default refusal of unknown startup parameters (``options`` is refused, as RDS
Proxy refuses it). Migrations, the students' database and tests that need a session of their own
connect to PostgreSQL directly.

One private ``pgbouncer`` per local stack or test session, on its own port, routing any database
name to the server it fronts and signing in there as the server URL's user (``auth_type = any``:
the local server trusts loopback connections, as the tests' and the local stack's do). It is
Debian's ``pgbouncer`` package; ``make`` and ``.ci/run`` install it like PostgreSQL.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

CANDIDATES = ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer")
START_TIMEOUT = 15.0


class PoolerMissing(RuntimeError):
    """No pgbouncer executable on this machine."""


def executable() -> str:
    found = os.environ.get("PGBOUNCER") or shutil.which("pgbouncer")
    if found:
        return found
    for candidate in CANDIDATES:
        if Path(candidate).is_file():
            return candidate
    raise PoolerMissing("pgbouncer is not installed: run `make setup` (or apt-get install pgbouncer)")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _ini_value(value: object) -> str:
    """A value for a ``[databases]`` connection string (quoted when it has spaces or quotes)."""
    text = str(value)
    if not text or any(c in text for c in " '\\"):
        return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return text


@dataclass
class PgBouncer:
    """A running pgbouncer in front of the server ``server_url`` names (any database on it)."""

    server_url: str
    directory: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> PgBouncer:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        config = self.directory / "pgbouncer.ini"
        config.write_text(self._config())
        config.chmod(0o600)
        if os.geteuid() == 0:  # pgbouncer will not run as root: it drops to `nobody` after reading
            nobody = pwd.getpwnam("nobody")
            os.chown(config, nobody.pw_uid, nobody.pw_gid)
        log = (self.directory / "pgbouncer.log").open("ab")
        self.process = subprocess.Popen([executable(), str(config)], stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self._wait_until_ready()
        return self

    def _config(self) -> str:
        server = conninfo_to_dict(self.server_url)
        target: dict[str, Any] = {
            "host": server.get("host") or "127.0.0.1",
            "port": server.get("port") or 5432,
            "user": server.get("user") or pwd.getpwuid(os.getuid()).pw_name,
        }
        if server.get("password"):
            target["password"] = server["password"]
        route = " ".join(f"{key}={_ini_value(value)}" for key, value in target.items())
        lines = [
            "[databases]",
            # Any database name: the app's, a test's throwaway one; the server sees the URL's user.
            f"* = {route}",
            "",
            "[pgbouncer]",
            "listen_addr = 127.0.0.1",
            f"listen_port = {self.port}",
            "unix_socket_dir =",
            "auth_type = any",
            f"admin_users = {target['user']}",  # the tests drop clients through the admin console
            # What RDS Proxy does: a server connection is the client's for one transaction only.
            "pool_mode = transaction",
            # Left at its default on purpose: only PgBouncer's own tracked parameters are accepted,
            # so a startup `options` is refused, as RDS Proxy refuses it.
            "; ignore_startup_parameters =",
            "max_client_conn = 1000",
            "default_pool_size = 20",
            # Idle server connections go back soon: test databases come and go on a shared server.
            "server_idle_timeout = 10",
            "server_login_retry = 1",
            "log_connections = 0",
            "log_disconnections = 0",
        ]
        if os.geteuid() == 0:
            lines.append("user = nobody")
        return "\n".join(lines) + "\n"

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        probe = self.url(str(conninfo_to_dict(self.server_url).get("dbname") or "postgres"))
        while True:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"pgbouncer exited with {self.process.returncode}:\n{self.log()}")
            try:
                with psycopg.connect(probe, connect_timeout=2, autocommit=True) as conn:
                    conn.execute("SELECT 1")
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"pgbouncer did not answer on port {self.port}:\n{self.log()}") from None
                time.sleep(0.1)

    def log(self) -> str:
        path = self.directory / "pgbouncer.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def url(self, dbname: str) -> str:
        """A URL of database ``dbname`` through the pooler (the server URL's user, no password)."""
        user = conninfo_to_dict(self.server_url).get("user")
        return make_conninfo("", host="127.0.0.1", port=self.port, dbname=dbname, user=user or None)

    def pooled(self, direct_url: str) -> str:
        """``direct_url``'s database through the pooler, keeping its other parameters."""
        params = conninfo_to_dict(direct_url)
        params.pop("password", None)  # the pooler signs in to the server itself
        params.update(host="127.0.0.1", port=str(self.port))
        return make_conninfo("", **params)

    def drop_clients(self, dbname: str) -> None:
        """Drops every client connection to ``dbname`` (as the proxy does when it fails over), then
        lets new ones in again."""
        with psycopg.connect(self.url("pgbouncer"), autocommit=True, prepare_threshold=None) as admin:
            admin.execute(f"KILL {dbname}")  # the admin console takes no parameters
            admin.execute(f"RESUME {dbname}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
