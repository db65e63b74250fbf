"""A throwaway PostgreSQL cluster that checks passwords (SCRAM over TCP) and serves TLS, as RDS does.

The suite's shared server trusts loopback connections without TLS, so a password or a certificate
check there proves nothing. Tests of password rotation and of ``verify-full`` start this cluster
instead (about a second): ``initdb`` with SCRAM for every login, a certificate for ``localhost`` and
``127.0.0.1`` signed by a throwaway CA (``ca_file``), a free loopback port, and the superuser
``postgres`` with a known password. PostgreSQL refuses to run as root: as root the cluster runs as
the ``postgres`` system user.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess  # noqa: S404 - runs PostgreSQL's own programs with fixed arguments
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg.conninfo import make_conninfo


def _bindir() -> Path | None:
    for candidate in (shutil.which("initdb"), *sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)):
        if candidate:
            return Path(candidate).parent
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass(frozen=True)
class PasswordServer:
    port: int
    superuser_password: str
    ca_file: str  # the CA that signed the server's certificate

    def url(self, dbname: str = "postgres", *, user: str = "postgres", password: str | None = None) -> str:
        return make_conninfo(
            host="127.0.0.1",
            port=self.port,
            dbname=dbname,
            user=user,
            password=self.superuser_password if password is None else password,
            sslmode="verify-full",
            sslrootcert=self.ca_file,
        )


def _certificates(home: Path) -> None:
    """A CA and a server certificate for localhost / 127.0.0.1 signed by it (openssl)."""

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, cwd=home, capture_output=True)  # noqa: S603, S607

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=apranova test CA",
            "-keyout", "ca.key", "-out", "ca.crt")  # fmt: skip
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", "server.key",
            "-out", "server.csr")  # fmt: skip
    (home / "san.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-days", "2", "-extfile", "san.ext", "-out", "server.crt")  # fmt: skip
    (home / "server.key").chmod(0o600)


def available() -> bool:
    return _bindir() is not None and (os.geteuid() != 0 or shutil.which("runuser") is not None)


@contextmanager
def password_server() -> Iterator[PasswordServer]:
    bindir = _bindir()
    assert bindir is not None, "no initdb on this machine"
    as_root = os.geteuid() == 0
    prefix = ["runuser", "-u", "postgres", "--"] if as_root else []
    home = Path(tempfile.mkdtemp(prefix="apranova-pg-"))
    data = home / "data"
    password = "pw-" + os.urandom(8).hex()
    pwfile = home / "pwfile"
    pwfile.write_text(password + "\n")
    if as_root:
        shutil.chown(home, "postgres")
        shutil.chown(pwfile, "postgres")
    port = _free_port()
    run = {"check": True, "stdout": subprocess.DEVNULL, "stderr": subprocess.PIPE}
    try:
        subprocess.run(  # noqa: S603
            [*prefix, str(bindir / "initdb"), "-D", str(data), "-U", "postgres", f"--pwfile={pwfile}",
             "--auth-local=scram-sha-256", "--auth-host=scram-sha-256", "--no-sync"],
            **run,
        )  # fmt: skip
        _certificates(home)
        if as_root:
            for name in ("server.crt", "server.key"):
                shutil.chown(home / name, "postgres")
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={home} -c fsync=off"
            f" -c ssl=on -c ssl_cert_file={home / 'server.crt'} -c ssl_key_file={home / 'server.key'}"
        )
        subprocess.run(  # noqa: S603
            [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(home / "log"), "-w", "start"],
            **run,
        )
        server = PasswordServer(port, password, str(home / "ca.crt"))
        deadline = time.monotonic() + 10
        while True:
            try:
                psycopg.connect(server.url(), connect_timeout=2).close()
                break
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield server
    finally:
        subprocess.run(  # noqa: S603
            [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            check=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        shutil.rmtree(home, ignore_errors=True)
