"""A DP student's account on the shared JupyterHub, through the hub's REST API (``/hub/api``).

The hub's public base URL is the SSM parameter ``{SSM_PREFIX}/tools/jupyterhub/url`` and the admin
token ``{SSM_PREFIX}/tools/jupyterhub/api-token`` (SecureString): the token of a JupyterHub service
whose role has the scopes ``admin:users`` and ``servers`` and nothing more. No per-student secret
exists: students log in through the hub's authenticator.

The JupyterHub username is the student's user id (the Cognito ``sub``, a lowercase uuid): stable,
unique by construction, valid as a JupyterHub name, and what an OAuthenticator configured with
``username_claim = "sub"`` against our user pool logs the student in as. Other students cannot
list users (the default ``user`` role reads only itself).

provision: ``POST /users/{name}`` (201, or 409 when it exists: both success), then, when
``JUPYTERHUB_NAMED_SERVER`` is set and the user has no server of that name (running or stopped),
``POST /users/{name}/servers/{server}`` (201 started, 202 still starting). A user of that name
that is a hub admin is refused (``ToolFailed``): a student account is never an admin.

deprovision: every server is stopped (named ones also removed), the provisioner waits until none
is active, then ``DELETE /users/{name}``; a user that does not exist is done. Stopping comes first
because JupyterHub's user deletion stops only the default server and would orphan named ones.
"""

from __future__ import annotations

import time
import uuid
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import requests
from pydantic import Field

from apranova.observability import logger
from apranova.settings import BaseSettings
from functions.provision.tools import (
    JUPYTER_SIGN_IN_SECONDS as SIGN_IN_SECONDS,
)
from functions.provision.tools import Student, ToolFailed, ToolResult, ToolStatus, ToolUnavailable
from functions.provision.tools._http import ToolHttp, ToolParameters

TOOL = "JUPYTER"
_POLL_INTERVAL = 0.5
# A sign-in ticket: a hub API token of the student's with no scopes (it can do nothing through the
# API), living a minute, that the hub's sign-in page (local/tools/jupyterhub_login.py) accepts once.
SIGN_IN_NOTE = "apranova-sign-in"
SIGN_IN_PATH = "/hub/apranova-login"


class JupyterHubSettings(BaseSettings):
    """Environment: upper-cased names (``SSM_PREFIX``, ``JUPYTERHUB_NAMED_SERVER``, ...)."""

    ssm_prefix: str = Field(pattern=r"^/[A-Za-z0-9_.\-/]*[A-Za-z0-9_.\-]$")
    jupyterhub_named_server: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")
    jupyterhub_connect_timeout: float = Field(3.0, gt=0, le=60)
    jupyterhub_read_timeout: float = Field(10.0, gt=0, le=120)
    # Starting a server: the hub answers 201 when it is up, or 202 after its slow_spawn_timeout (10 s).
    jupyterhub_spawn_timeout: float = Field(20.0, gt=0, le=300)
    # How long deprovision waits for the student's servers to stop before it reports ToolUnavailable.
    jupyterhub_stop_wait: float = Field(30.0, ge=0, le=300)
    jupyterhub_parameters_max_age: int = Field(300, ge=0, le=3600)


def username_for(user_id: str) -> str:
    """The JupyterHub username of a student: the canonical (lowercase) user id; ``ToolFailed`` if not a uuid."""
    try:
        return str(uuid.UUID(str(user_id)))
    except ValueError:
        raise ToolFailed("the user id is not a uuid") from None


class JupyterHubProvisioner:
    """``ToolProvisioner`` for the shared JupyterHub. ``ssm_client`` is a boto3 SSM client."""

    name = TOOL

    def __init__(self, ssm_client: Any, settings: JupyterHubSettings, session: requests.Session | None = None) -> None:
        self._settings = settings
        self._parameters = ToolParameters(ssm_client, settings.jupyterhub_parameters_max_age)
        self._http = ToolHttp(
            "JupyterHub",
            session or requests.Session(),
            settings.jupyterhub_connect_timeout,
            settings.jupyterhub_read_timeout,
        )
        prefix = settings.ssm_prefix
        self._url_parameter = f"{prefix}/tools/jupyterhub/url"
        self._token_parameter = f"{prefix}/tools/jupyterhub/api-token"

    # -- the interface ----------------------------------------------------------------------------

    def provision(self, student: Student) -> ToolResult:
        if student.track != "DP":
            raise ToolFailed(f"JupyterHub is a DP tool, not one of track {student.track!r}")
        name = username_for(student.user_id)
        created = self._api("POST", f"/users/{name}", action="create JupyterHub user", ok=(201, 409))
        user = self._user(name)
        if user is None:
            raise ToolUnavailable("create JupyterHub user: the user vanished (a deprovision ran at the same time)")
        if user.get("admin"):
            raise ToolFailed("create JupyterHub user: a hub admin has this username; a student is never an admin")
        server = self._settings.jupyterhub_named_server
        started = False
        if server and server not in (user.get("servers") or {}):
            started = self._start_server(name, server)
        logger.info(
            "JupyterHub user provisioned",
            extra={"user_id": name, "user_created": created.status_code == 201, "server_started": started},
        )
        base = self._parameters.base_url(self._url_parameter)
        details: dict[str, Any] = {
            "external_id": name,
            "username": name,
            "access_url": f"{base}/user/{quote(name)}/" + (f"{quote(server)}/" if server else ""),
        }
        if server:
            details["server_name"] = server
        return ToolResult(tool=TOOL, status=ToolStatus.PROVISIONED, details=details)

    def deprovision(self, student: Student) -> None:
        name = username_for(student.user_id)
        user = self._user(name)
        if user is None:
            logger.info("JupyterHub user already absent", extra={"user_id": name})
            return
        self._stop_servers(name, user)
        response = self._api("DELETE", f"/users/{name}", action="delete JupyterHub user", ok=(204, 404, 400))
        if response.status_code == 400:  # "the server is in the process of stopping": try again later
            raise ToolUnavailable("delete JupyterHub user: a server is still stopping")
        logger.info("JupyterHub user deprovisioned", extra={"user_id": name})

    def sign_in_link(self, student: Student) -> str:
        """A link that signs the student in to the hub once, within ``SIGN_IN_SECONDS``, and opens
        their server: the ticket is spent by its first use, and signs in no one but its owner."""
        name = username_for(student.user_id)
        response = self._api(
            "POST",
            f"/users/{name}/tokens",
            action="create JupyterHub sign-in ticket",
            ok=(201, 404),
            json={"expires_in": SIGN_IN_SECONDS, "note": SIGN_IN_NOTE, "scopes": []},
        )
        if response.status_code == 404:
            raise ToolFailed("create JupyterHub sign-in ticket: the student has no JupyterHub user")
        try:
            ticket = str(response.json()["token"])
        except (ValueError, KeyError, TypeError):
            raise ToolFailed("create JupyterHub sign-in ticket: the answer has no token") from None
        base = self._parameters.base_url(self._url_parameter)
        server = self._settings.jupyterhub_named_server
        opens = urlsplit(f"{base}/user/{quote(name)}/" + (f"{quote(server)}/" if server else "")).path
        return f"{base}{SIGN_IN_PATH}?{urlencode({'ticket': ticket, 'next': opens})}"

    def status(self, student: Student) -> ToolStatus:
        user = self._user(username_for(student.user_id))
        if user is None:
            return ToolStatus.NOT_PROVISIONED
        server = self._settings.jupyterhub_named_server
        if server and server not in (user.get("servers") or {}):
            return ToolStatus.PARTIAL
        return ToolStatus.PROVISIONED

    # -- the hub's API ----------------------------------------------------------------------------

    def _api(
        self,
        method: str,
        path: str,
        *,
        action: str,
        ok: tuple[int, ...],
        json: Any = None,
        params: dict[str, str] | None = None,
        read_timeout: float | None = None,
    ) -> requests.Response:
        base = self._parameters.base_url(self._url_parameter)
        for attempt in range(2):  # a refused token is re-read once from SSM: it may have been rotated
            token = self._parameters.get(self._token_parameter, refresh=attempt > 0)
            response = self._http.request(
                method,
                f"{base}/hub/api{path}",
                action=action,
                headers={"Authorization": f"token {token}", "Accept": "application/json"},
                json=json,
                params=params,
                read_timeout=read_timeout,
            )
            if response.status_code not in (401, 403):
                break
        if response.status_code in ok:
            return response
        if response.status_code in (401, 403):
            raise ToolFailed(f"{action}: JupyterHub refused the admin token ({response.status_code})")
        raise self._http.refused(action, response)

    def _user(self, name: str) -> dict[str, Any] | None:
        """The user model with every server, stopped ones too; ``None`` when there is no such user."""
        response = self._api(
            "GET",
            f"/users/{name}",
            action="read JupyterHub user",
            ok=(200, 404),
            params={"include_stopped_servers": "1"},
        )
        if response.status_code == 404:
            return None
        try:
            user = response.json()
        except ValueError:
            raise ToolFailed("read JupyterHub user: the answer is not JSON") from None
        if not isinstance(user, dict) or user.get("name") != name:
            raise ToolFailed("read JupyterHub user: the answer is not this user's model")
        return user

    def _start_server(self, name: str, server: str) -> bool:
        action = "start JupyterHub named server"
        response = self._api(
            "POST",
            f"/users/{name}/servers/{quote(server)}",
            action=action,
            ok=(201, 202, 400, 404),
            json={},
            read_timeout=self._settings.jupyterhub_spawn_timeout,
        )
        if response.status_code in (201, 202):
            return True
        if response.status_code == 404:
            raise ToolUnavailable(f"{action}: the user vanished (a deprovision ran at the same time)")
        # 400: already running or pending (a concurrent run), or the hub refuses named servers.
        user = self._user(name)
        if user is not None and server in (user.get("servers") or {}):
            return False
        raise self._http.refused(action, response)

    def _stop_servers(self, name: str, user: dict[str, Any]) -> None:
        for server, model in (user.get("servers") or {}).items():
            if server:
                self._api(
                    "DELETE",
                    f"/users/{name}/servers/{quote(server)}",
                    action="stop JupyterHub named server",
                    ok=(202, 204, 404),
                    json={"remove": True},
                )
            elif model.get("ready") or model.get("pending"):
                self._api("DELETE", f"/users/{name}/server", action="stop JupyterHub server", ok=(202, 204, 404))
        deadline = time.monotonic() + self._settings.jupyterhub_stop_wait
        while True:
            current = self._user(name)
            servers = (current or {}).get("servers") or {}
            if not any(model.get("ready") or model.get("pending") for model in servers.values()):
                return
            if time.monotonic() >= deadline:
                raise ToolUnavailable("stop JupyterHub servers: still stopping")
            time.sleep(_POLL_INTERVAL)
