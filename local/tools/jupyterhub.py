"""The real JupyterHub for the local stack and the tests.

It runs from its own venv, ``.tools/jupyterhub`` (``make tools``): JupyterHub, the Python port of
configurable-http-proxy (started by the hub, as in a default deployment) and JupyterLab for the
students' servers. ``local/tools/jupyterhub_config.py`` is its configuration. State lives under
``<state_dir>/jupyterhub/``: the hub's SQLite database, the cookie secret, the provisioner's API
token, the students' login password, the students' homes and the port last used, so users and
links survive a restart.

``bootstrap_jupyterhub`` writes what the provisioner reads: ``{prefix}/tools/jupyterhub/url`` (the
public URL, the proxy's) and ``{prefix}/tools/jupyterhub/api-token`` (SecureString).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local.tools._server import (
    ServerProcess,
    clean_environment,
    free_port,
    remembered_port,
    secret_file,
    tool_venv,
)

TOOL = "jupyterhub"
CONFIG = Path(__file__).resolve().parent / "jupyterhub_config.py"


@dataclass
class JupyterHubHandle:
    url: str  # the public URL (the proxy); the REST API is url + "/hub/api"
    api_token: str  # the apranova-provisioner service's token (admin:users, servers)
    login_password: str  # local only: every provisioned student logs in with it
    state_dir: Path
    _process: ServerProcess = field(repr=False)

    @property
    def api_url(self) -> str:
        return self.url + "/hub/api"

    @property
    def pid(self) -> int:
        return self._process.pid

    def stop(self) -> None:
        self._process.stop()


def start(
    state_dir: Path, *, port: int | None = None, admin_users: Sequence[str] = (), timeout: float = 60.0
) -> JupyterHubHandle:
    """Start JupyterHub (and its proxy) on 127.0.0.1 with its state under ``state_dir/jupyterhub``.

    ``admin_users``: hub admins to create (JupyterHub's ``Authenticator.admin_users``); none by default.
    """
    venv = tool_venv(TOOL)
    state = Path(state_dir).resolve() / TOOL
    (state / "home").mkdir(parents=True, exist_ok=True)
    port = remembered_port(state / "port", port)
    hub_port, proxy_api_port = free_port(), free_port()
    while proxy_api_port in (hub_port, port) or hub_port == port:
        hub_port, proxy_api_port = free_port(), free_port()
    api_token = secret_file(state / "api-token")
    login_password = secret_file(state / "login-password")
    env = clean_environment(
        ("APRANOVA_JUPYTERHUB_", "JUPYTERHUB_", "CONFIGPROXY_", "JPY_"),
        {
            "APRANOVA_JUPYTERHUB_STATE": str(state),
            "APRANOVA_JUPYTERHUB_PORT": str(port),
            "APRANOVA_JUPYTERHUB_HUB_PORT": str(hub_port),
            "APRANOVA_JUPYTERHUB_PROXY_API_PORT": str(proxy_api_port),
            "APRANOVA_JUPYTERHUB_PROXY_COMMAND": str(venv / "bin" / "configurable-http-proxy"),
            "APRANOVA_JUPYTERHUB_SINGLEUSER_COMMAND": str(venv / "bin" / "jupyterhub-singleuser"),
            "APRANOVA_JUPYTERHUB_API_TOKEN": api_token,
            "APRANOVA_JUPYTERHUB_LOGIN_PASSWORD": login_password,
            "APRANOVA_JUPYTERHUB_ADMIN_USERS": ",".join(admin_users),
            "CONFIGPROXY_AUTH_TOKEN": secret_file(state / "proxy-token"),
        },
    )
    url = f"http://127.0.0.1:{port}"
    process = ServerProcess(
        "JupyterHub",
        [str(venv / "bin" / "jupyterhub"), "--config", str(CONFIG)],
        env=env,
        cwd=state,
        log_path=state / "jupyterhub.log",
    )
    process.wait_ready(url + "/hub/api/", timeout)
    return JupyterHubHandle(
        url=url, api_token=api_token, login_password=login_password, state_dir=state, _process=process
    )


def bootstrap_jupyterhub(ssm_client: Any, prefix: str, handle: JupyterHubHandle) -> None:
    """The SSM parameters the provisioner reads (overwritten: the port may change across restarts)."""
    ssm_client.put_parameter(
        Name=f"{prefix}/tools/jupyterhub/url",
        Value=handle.url,
        Type="String",
        Overwrite=True,
        Description="JupyterHub public base URL",
    )
    ssm_client.put_parameter(
        Name=f"{prefix}/tools/jupyterhub/api-token",
        Value=handle.api_token,
        Type="SecureString",
        Overwrite=True,
        Description="JupyterHub API token of the apranova-provisioner service",
    )
