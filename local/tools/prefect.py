"""The real Prefect server (``prefect server start``, SQLite) for the local stack and the tests.

It runs from its own venv, ``.tools/prefect`` (``make tools``; Prefect pins a pydantic other than
the project's). State lives under ``<state_dir>/prefect/``: the SQLite database, ``PREFECT_HOME``,
the port last used and the basic-auth string the server requires (``PREFECT_SERVER_API_AUTH_STRING``,
``admin:<random>``), so work pools and links survive a restart. A new database starts as a copy of
``.tools/prefect/template.db``, which ``make tools`` migrates once (``python -m local.tools.prefect
template PATH``): migrating a new database takes ~10 s, a copy milliseconds.

``bootstrap_prefect`` writes what the provisioner reads: ``{prefix}/tools/prefect/url`` (the server's
root, where the UI is; the API is under ``/api``) and ``{prefix}/tools/prefect/auth-string``
(SecureString).
"""

from __future__ import annotations

import sqlite3
import sys
import tempfile
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local.tools._server import (
    TOOLS_DIR,
    ServerProcess,
    clean_environment,
    remembered_port,
    secret_file,
    tool_venv,
)

TOOL = "prefect"
AUTH_USER = "admin"


@dataclass
class PrefectHandle:
    url: str  # the server's root: the UI; the API is url + "/api"
    auth_string: str  # "user:password", HTTP basic auth on every API call
    state_dir: Path
    _process: ServerProcess = field(repr=False)

    @property
    def api_url(self) -> str:
        return self.url + "/api"

    @property
    def pid(self) -> int:
        return self._process.pid

    def stop(self) -> None:
        self._process.stop()


def _environment(home: Path, database: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    return clean_environment(
        ("PREFECT_",),
        {
            "PREFECT_HOME": str(home),
            "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{database}",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_SERVER_UI_SHOW_PROMOTIONAL_CONTENT": "false",
            **(extra or {}),
        },
    )


def _copy_database(source: Path, target: Path) -> None:
    """A consistent copy through SQLite's backup API (the source may use a WAL)."""
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    with closing(sqlite3.connect(source)) as src, closing(sqlite3.connect(partial)) as dst:
        src.backup(dst)
    partial.replace(target)


def make_template(target: Path) -> None:
    """Migrate a new, empty Prefect database to ``target`` (``make tools`` runs this once)."""
    import subprocess

    venv = tool_venv(TOOL)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="prefect-template-") as scratch:
        database = Path(scratch) / "prefect.db"
        subprocess.run(
            [str(venv / "bin" / "prefect"), "server", "database", "upgrade", "-y"],
            env=_environment(Path(scratch) / "home", database),
            stdout=subprocess.DEVNULL,
            check=True,
            timeout=300,
        )
        _copy_database(database, target)


def start(state_dir: Path, *, port: int | None = None, timeout: float = 60.0) -> PrefectHandle:
    """Start the Prefect server on 127.0.0.1 with its state under ``state_dir/prefect`` and wait for it."""
    venv = tool_venv(TOOL)
    state = Path(state_dir).resolve() / TOOL
    (state / "home").mkdir(parents=True, exist_ok=True)
    database = state / "prefect.db"
    template = TOOLS_DIR / TOOL / "template.db"
    if not database.exists() and template.exists():
        _copy_database(template, database)
    port = remembered_port(state / "port", port)
    auth_string = f"{AUTH_USER}:{secret_file(state / 'admin-password')}"
    url = f"http://127.0.0.1:{port}"
    env = _environment(
        state / "home",
        database,
        {
            "PREFECT_SERVER_API_HOST": "127.0.0.1",
            "PREFECT_SERVER_API_PORT": str(port),
            "PREFECT_SERVER_API_AUTH_STRING": auth_string,
            "PREFECT_UI_URL": url,
            "PREFECT_UI_API_URL": url + "/api",
        },
    )
    process = ServerProcess(
        "Prefect",
        [str(venv / "bin" / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        cwd=state,
        log_path=state / "server.log",
    )
    process.wait_ready(url + "/api/health", timeout)
    _build_routes(url, auth_string)
    return PrefectHandle(url=url, auth_string=auth_string, state_dir=state, _process=process)


def _build_routes(url: str, auth_string: str) -> None:
    """Has the server build its API routes now, not on the first requests that need them.

    FastAPI (0.150, the version Prefect pins) prepares an included router's routes on the first
    request that is matched against them, and Prefect has about 190 of them: the first work pool a
    provisioner created cost the server about 0.7 s of CPU, in the middle of the 50-payer burst
    (issue 13). A request for a path no route has is matched against all of them (and answered 404).
    """
    import base64
    import urllib.error
    import urllib.request

    request = urllib.request.Request(  # noqa: S310 - our own loopback http server
        url + "/api/apranova-build-routes",
        headers={"Authorization": "Basic " + base64.b64encode(auth_string.encode()).decode()},
    )
    try:
        with urllib.request.urlopen(request, timeout=30):  # noqa: S310 - our own loopback server
            pass
    except urllib.error.HTTPError as error:
        if error.code != 404:
            raise RuntimeError(f"Prefect answered {error.code} to the route warm-up") from None


def bootstrap_prefect(ssm_client: Any, prefix: str, handle: PrefectHandle) -> None:
    """The SSM parameters the provisioner reads (overwritten: the port may change across restarts)."""
    ssm_client.put_parameter(
        Name=f"{prefix}/tools/prefect/url",
        Value=handle.url,
        Type="String",
        Overwrite=True,
        Description="Prefect server base URL (UI; API under /api)",
    )
    ssm_client.put_parameter(
        Name=f"{prefix}/tools/prefect/auth-string",
        Value=handle.auth_string,
        Type="SecureString",
        Overwrite=True,
        Description="Prefect server basic-auth string (user:password)",
    )


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "template":
        make_template(Path(argv[1]))
        return 0
    print("usage: python -m local.tools.prefect template PATH", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
