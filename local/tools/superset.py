"""Superset for the local stack and the tests: the emulator on a local port, and its SSM parameters.

The real Superset does not fit this project's machines (docs/decisions.md), so ``start`` serves
``local.tools.superset_emulator`` on 127.0.0.1 (``SUPERSET_PORT`` or a free port), with a new
admin password each start and the state kept in ``<state_dir>/superset-state.json`` across
restarts. Creating a connection tests it against the real PostgreSQL, as Superset does.
``bootstrap_superset`` writes the parameters the provisioner reads:
``{prefix}/tools/superset/url`` (String), ``admin-username`` and ``admin-password`` (SecureString).
"""

from __future__ import annotations

import os
import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler

from local.keepalive import make_server
from local.tools.superset_emulator import SupersetEmulator, psycopg_connection_tester

STATE_FILE = "superset-state.json"
ADMIN_USERNAME = "admin"


class _QuietRequests(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


@dataclass
class SupersetHandle:
    url: str
    admin_username: str
    admin_password: str = field(repr=False)
    emulator: SupersetEmulator = field(repr=False)
    server: BaseWSGIServer = field(repr=False)
    state_file: Path | None = None
    _thread: threading.Thread | None = field(default=None, repr=False)

    def stop(self) -> None:
        """Stop serving and keep the state (when started with a state directory)."""
        self.server.shutdown()
        self.server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self.state_file is not None:
            self.emulator.save(self.state_file)


def start(state_dir: Path | None, *, port: int | None = None, test_connections: bool = True) -> SupersetHandle:
    """Serve the emulator; ``state_dir`` None keeps nothing on disk (tests)."""
    admin_password = secrets.token_urlsafe(24) + "Aa1!"
    emulator = SupersetEmulator(
        admin_username=ADMIN_USERNAME,
        admin_password=admin_password,
        connection_tester=psycopg_connection_tester if test_connections else None,
    )
    state_file = None
    if state_dir is not None:
        state_file = Path(state_dir) / STATE_FILE
        emulator.load(state_file)
    chosen = int(os.environ.get("SUPERSET_PORT") or 0) if port is None else port
    server = make_server("127.0.0.1", chosen, emulator, request_handler=_QuietRequests)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="superset", daemon=True)
    thread.start()
    return SupersetHandle(
        url=f"http://127.0.0.1:{server.server_port}",
        admin_username=ADMIN_USERNAME,
        admin_password=admin_password,
        emulator=emulator,
        server=server,
        state_file=state_file,
        _thread=thread,
    )


def bootstrap_superset(ssm_client: Any, prefix: str, handle: SupersetHandle) -> dict[str, str]:
    """Write the URL and admin credentials where the provisioner reads them; returns the names."""
    base = f"{prefix.rstrip('/')}/tools/superset"
    values = {
        f"{base}/url": (handle.url, "String"),
        f"{base}/admin-username": (handle.admin_username, "SecureString"),
        f"{base}/admin-password": (handle.admin_password, "SecureString"),
    }
    for name, (value, kind) in values.items():
        ssm_client.put_parameter(Name=name, Value=value, Type=kind, Overwrite=True)
    return {
        "url": f"{base}/url",
        "admin_username": f"{base}/admin-username",
        "admin_password": f"{base}/admin-password",
    }
