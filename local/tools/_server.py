"""Running a real tool server (JupyterHub, Prefect) from its own venv under ``.tools/``.

Standard library only: ``make tools`` runs parts of this with the machine's Python, before the
project's venv is needed. Each server runs in a process group of its own, logs to a file in its
state directory and is stopped by ``ServerProcess.stop`` (the server first, so it can clean up its
children, then whatever is left of the group).
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOOLS_DIR = ROOT / ".tools"


class ToolNotInstalled(RuntimeError):
    """The tool's venv is missing: ``make tools`` builds it."""


def tool_venv(tool: str) -> Path:
    venv = TOOLS_DIR / tool
    if not (venv / ".installed").exists():
        raise ToolNotInstalled(f"{tool} is not installed in .tools/{tool}: run `make tools`")
    return venv


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def port_is_free(port: int) -> bool:
    """Free to listen on, as servers bind (SO_REUSEADDR: a port in TIME_WAIT from the last run is free)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def remembered_port(path: Path, wanted: int | None = None) -> int:
    """``wanted``, else the port used last time (so stored links keep working), else a free one."""
    if wanted:
        port = wanted
    else:
        try:
            port = int(path.read_text().strip())
        except (OSError, ValueError):
            port = 0
        if not port or not port_is_free(port):
            port = free_port()
    path.write_text(f"{port}\n")
    return port


def secret_file(path: Path, make: str | None = None) -> str:
    """The secret kept in ``path`` (mode 0600), made on first use."""
    try:
        value = path.read_text().strip()
    except FileNotFoundError:
        value = ""
    if not value:
        value = make or secrets.token_urlsafe(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(value + "\n")
    return value


def clean_environment(drop_prefixes: Sequence[str], extra: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without the tool's own variables, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not any(k.startswith(p) for p in drop_prefixes)}
    env.update(extra)
    return env


class ServerProcess:
    def __init__(self, name: str, argv: Sequence[str], *, env: Mapping[str, str], cwd: Path, log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        with open(log_path, "ab") as log:
            self.process = subprocess.Popen(
                list(argv),
                env=dict(env),
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own group: Ctrl-C goes to the stack, which stops it
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_ready(self, url: str, timeout: float) -> None:
        """Until ``url`` answers 200; a server that exits or stays silent is stopped and reported."""
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - a loopback http URL
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.name} did not answer {url} within {timeout:.0f} s:\n{self.log_tail()}")
            time.sleep(0.1)

    def stop(self, timeout: float = 15.0) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        for sig in (signal.SIGTERM, signal.SIGKILL):  # whatever it started and left behind
            try:
                os.killpg(self.process.pid, sig)
            except (ProcessLookupError, PermissionError):
                break
            time.sleep(0.2)
        if self.process.poll() is None:
            self.process.wait(5)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"
