"""The tools API function: DP database credentials and tool access, the FSD workspace's access,
start and stop. Every answer carries ``Cache-Control: no-store`` (they hold credentials)."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response, content_types

from apranova.api import caller, create_app, lambda_entry, request_info
from apranova.audit import RequestInfo
from functions.tools import config, service
from functions.tools.models import (
    DbCredentials,
    JupyterAccess,
    SupersetAccess,
    ToolAccess,
    WorkspaceAccess,
    WorkspaceStatus,
)

app = create_app()
NO_STORE = {"Cache-Control": "no-store"}


def _info() -> RequestInfo:
    return request_info(app)


def _json(status: int, body: object) -> Response:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body, headers=NO_STORE)


@app.get("/api/tools/db-credentials/", summary="My student database credentials (DP; audited)")
def db_credentials() -> Response[DbCredentials]:
    found = service.db_credentials(caller(app), config.settings(), config.secret, _info())
    return _json(200, DbCredentials.model_validate(found))


@app.get("/api/tools/superset-access/", summary="My Superset address, user name and password (DP; audited)")
def superset_access() -> Response[SupersetAccess]:
    found = service.tool_access(caller(app), "SUPERSET", config.settings(), config.secret, _info())
    return _json(200, SupersetAccess.model_validate(found))


@app.get("/api/tools/prefect-access/", summary="My Prefect address and user name (DP)")
def prefect_access() -> Response[ToolAccess]:
    found = service.tool_access(caller(app), "PREFECT", config.settings(), config.secret, _info())
    return _json(200, ToolAccess.model_validate(found))


@app.get("/api/tools/jupyter-access/", summary="My JupyterHub address and a one-time sign-in link (DP; audited)")
def jupyter_access() -> Response[JupyterAccess]:
    found = service.jupyter_access(caller(app), config.jupyterhub, _info())
    return _json(200, JupyterAccess.model_validate(found))


@app.get("/api/tools/workspace-access/", summary="My workspace: status, address when running, password (FSD; audited)")
def workspace_access() -> Response[WorkspaceAccess]:
    found = service.workspace_access(caller(app), config.settings(), config.workspace, config.secret, _info())
    return _json(200, WorkspaceAccess.model_validate(found))


@app.post("/api/tools/workspace/start/", summary="Start my workspace (FSD; audited)")
def start_workspace() -> Response[WorkspaceStatus]:
    return _json(200, WorkspaceStatus.model_validate(service.start_workspace(caller(app), config.workspace, _info())))


@app.post("/api/tools/workspace/stop/", summary="Stop my workspace (FSD; audited)")
def stop_workspace() -> Response[WorkspaceStatus]:
    return _json(200, WorkspaceStatus.model_validate(service.stop_workspace(caller(app), config.workspace, _info())))


lambda_handler = lambda_entry(app)
