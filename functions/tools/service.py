"""Tool access use cases: a student's credentials and addresses for the tools of their track, and
their workspace's start and stop.

Every route checks, in this order: the account exists; it is enrolled (ENROLLED or COMPLETED:
else 402 ``payment_required``, or 403 ``account_suspended``); the tool belongs to the student's
track (else 403 ``wrong_track``); the tool is provisioned for the student (its record SUCCEEDED
and its pieces present: else 409 ``not_provisioned`` with the provisioning status). Only the
caller's own rows are ever read: the user id comes from the verified token.

Dependencies are passed in: ``secret`` reads an SSM SecureString (None when missing), ``workspace``
returns the workspace provisioner (called once the checks passed: a DP student never needs the
workspace's configuration). Passwords are returned to their owner and never logged; each time one
leaves, a CREDENTIALS_VIEWED audit row (without it) says so.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from apranova import db
from apranova.audit import AuditAction, RequestInfo
from apranova.errors import BadGateway, Conflict, Forbidden, PaymentRequired, ServiceUnavailable
from apranova.identity import Caller
from apranova.observability import logger
from functions.provision.tools import JUPYTER_SIGN_IN_SECONDS as SIGN_IN_SECONDS
from functions.provision.tools import Student, ToolFailed, ToolUnavailable
from functions.provision.tools.workspace import WorkspaceNotProvisioned, WorkspaceState
from functions.tools import repository
from functions.tools.config import ToolsSettings

TRACK_OF = {"STUDENT_DATABASE": "DP", "SUPERSET": "DP", "PREFECT": "DP", "JUPYTER": "DP", "WORKSPACE": "FSD"}
LABEL = {
    "STUDENT_DATABASE": "student database",
    "SUPERSET": "Superset access",
    "PREFECT": "Prefect access",
    "JUPYTER": "JupyterHub access",
    "WORKSPACE": "workspace",
}
ENROLLED = ("ENROLLED", "COMPLETED")

Secret = Callable[[str], str | None]
Workspace = Callable[[], Any]
Hub = Callable[[], Any]  # the JupyterHub provisioner


def _not_provisioned(tool: str, row: dict[str, Any], status: str | None = None) -> Conflict:
    return Conflict(
        f"Your {LABEL[tool]} is not ready yet.",
        code="not_provisioned",
        details=[
            {
                "tool": tool,
                "status": status or row.get("tool_status") or "NOT_STARTED",
                "provisioning_status": row.get("provisioning_status"),
            }
        ],
    )


def _student_tool(caller: Caller, tool: str) -> dict[str, Any]:
    row = repository.student_tool(caller.user_id, tool)
    if row is None:
        raise Forbidden("This account is not available.", code="account_unavailable")
    if row["enrollment_status"] not in ENROLLED:
        if row["enrollment_status"] == "SUSPENDED":
            raise Forbidden("Your enrollment is suspended.", code="account_suspended")
        raise PaymentRequired(
            "Enroll in a track to use its tools.",
            details=[{"enrollment_status": row["enrollment_status"]}],
        )
    track = TRACK_OF[tool]
    if row["track"] != track:
        raise Forbidden(
            f"The {LABEL[tool]} is a tool of the {track} track.",
            code="wrong_track",
            details=[{"tool": tool, "track": track, "your_track": row["track"]}],
        )
    if row["tool_status"] != "SUCCEEDED":
        raise _not_provisioned(tool, row)
    return row


def _secret_or_conflict(secret: Secret, name: str | None, tool: str, row: dict[str, Any]) -> str:
    value = secret(name) if name else None
    if value is None:
        # The record says provisioned but a piece is missing: reprovisioning repairs it.
        logger.warning("provisioned tool without its secret", extra={"tool": tool})
        raise _not_provisioned(tool, row, status="PARTIAL")
    return value


def _credentials_viewed(
    caller: Caller, info: RequestInfo, tool: str, *, resource_type: str, resource_id: str | None, **details: Any
) -> None:
    """Audits a password leaving for its owner. One autocommitted INSERT (the route's only write):
    the password leaves only once this is recorded. The password itself is never in the row."""
    with db.connection().cursor() as cur:
        info.audit(
            cur,
            AuditAction.CREDENTIALS_VIEWED,
            actor=caller,
            subject_id=caller.user_id,
            resource_type=resource_type,
            resource_id=resource_id,
            details={"tool": tool, **details},
        )


# --- DP ------------------------------------------------------------------------------------------


def db_credentials(caller: Caller, settings: ToolsSettings, secret: Secret, info: RequestInfo) -> dict[str, Any]:
    tool = "STUDENT_DATABASE"
    row = _student_tool(caller, tool)
    if row["role_name"] is None:
        raise _not_provisioned(tool, row, status="PARTIAL")
    password = _secret_or_conflict(secret, row["password_parameter_name"], tool, row)
    _credentials_viewed(
        caller,
        info,
        tool,
        resource_type="student_database",
        resource_id=row["role_name"],
        dbname=row["database_name"],
        schema=row["schema_name"],
    )
    return {
        "host": settings.students_db_host,
        "port": settings.students_db_port,
        "dbname": row["database_name"],
        "user": row["role_name"],
        "password": password,
        "schema": row["schema_name"],
        "connection_uri": connection_uri(settings, row["role_name"], password, row["database_name"]),
    }


def connection_uri(settings: ToolsSettings, user: str, password: str, dbname: str) -> str:
    """The same credentials as one libpq URI (``psql "<uri>"``, SQLAlchemy, pandas), every part
    percent-encoded. Only in this answer, which the student asked for; never stored or logged."""
    return (
        f"postgresql://{quote(user, safe='')}:{quote(password, safe='')}@{settings.students_db_host}:"
        f"{settings.students_db_port}/{quote(dbname, safe='')}?sslmode={settings.students_db_sslmode}"
    )


def tool_access(
    caller: Caller, tool: str, settings: ToolsSettings, secret: Secret, info: RequestInfo
) -> dict[str, Any]:
    """Superset, Prefect or JupyterHub: the address and the student's user name (and for Superset
    the password, when the tool has one of the student's: then audited as CREDENTIALS_VIEWED)."""
    row = _student_tool(caller, tool)
    details = row["details"] or {}
    access: dict[str, Any] = {"tool": tool, "url": row["access_url"], "username": details.get("username")}
    if tool == "SUPERSET":
        access["password"] = secret(f"{settings.ssm_prefix}/students/{caller.user_id}/superset-password")
        if access["password"] is not None:
            _credentials_viewed(
                caller, info, tool, resource_type="tool_account", resource_id=access["username"], url=row["access_url"]
            )
    return access


def jupyter_access(caller: Caller, hub: Hub, info: RequestInfo) -> dict[str, Any]:
    """The hub's address and the student's user name, and a way in: a one-time sign-in link that
    lives a minute (``login_url``; fetched when the student opens the hub, not kept). Audited as
    CREDENTIALS_VIEWED: the link signs in as the student."""
    tool = "JUPYTER"
    row = _student_tool(caller, tool)
    details = row["details"] or {}
    provisioner = hub()
    student = Student(user_id=caller.user_id, email=caller.email or "", track="DP")
    try:
        login_url = provisioner.sign_in_link(student)
    except ToolUnavailable as error:
        logger.warning("jupyterhub unavailable", extra={"error": str(error)})
        raise ServiceUnavailable("JupyterHub is busy; try again shortly.", headers={"Retry-After": "5"}) from None
    except ToolFailed as error:
        logger.error("jupyterhub sign-in link failed", extra={"error": str(error)})
        raise BadGateway("JupyterHub could not be reached.", code="tool_error") from None
    _credentials_viewed(
        caller, info, tool, resource_type="tool_account", resource_id=details.get("username"), url=row["access_url"]
    )
    return {
        "tool": tool,
        "url": row["access_url"],
        "username": details.get("username"),
        "login_url": login_url,
        "login_expires_in": SIGN_IN_SECONDS,
    }


# --- FSD: the workspace ---------------------------------------------------------------------------


def _student(caller: Caller) -> Student:
    return Student(user_id=caller.user_id, email=caller.email or "", track="FSD")


def _workspace_call(action: Callable[[], WorkspaceState], row: dict[str, Any]) -> WorkspaceState:
    try:
        return action()
    except WorkspaceNotProvisioned:
        raise _not_provisioned("WORKSPACE", row, status="PARTIAL") from None
    except ToolUnavailable as error:
        logger.warning("workspace unavailable", extra={"error": str(error)})
        raise ServiceUnavailable(
            "The workspace service is busy; try again shortly.", headers={"Retry-After": "5"}
        ) from None
    except ToolFailed as error:
        logger.error("workspace call failed", extra={"error": str(error)})
        raise BadGateway("The workspace could not be reached.", code="workspace_error") from None


def _state(state: WorkspaceState) -> dict[str, Any]:
    return {"status": state.status, "url": state.url, "started_at": state.started_at}


def workspace_access(
    caller: Caller, settings: ToolsSettings, workspace: Workspace, secret: Secret, info: RequestInfo
) -> dict[str, Any]:
    tool = "WORKSPACE"
    row = _student_tool(caller, tool)
    parameter = f"{settings.ssm_prefix}/students/{caller.user_id}/workspace-password"
    password = _secret_or_conflict(secret, parameter, tool, row)
    provisioner = workspace()
    state = _workspace_call(lambda: provisioner.describe(_student(caller)), row)
    if state.status == "RUNNING":
        # The SPA reads this route while the student has the workspace open: that is activity.
        repository.keep_alive(caller.user_id)
    _credentials_viewed(caller, info, tool, resource_type="workspace", resource_id=caller.user_id, status=state.status)
    return {**_state(state), "password": password}


def start_workspace(caller: Caller, workspace: Workspace, info: RequestInfo) -> dict[str, Any]:
    row = _student_tool(caller, "WORKSPACE")
    provisioner = workspace()
    with db.transaction() as cur:
        repository.lock_workspace(cur, caller.user_id)  # two starts at once run one task
        state = _workspace_call(lambda: provisioner.start(_student(caller)), row)
        repository.record_activity(cur, caller.user_id)
        info.audit(
            cur,
            "WORKSPACE_STARTED",
            actor=caller,
            subject_id=caller.user_id,
            resource_type="workspace_task",
            resource_id=state.task_arn,
            details={"status": state.status},
        )
    return _state(state)


def stop_workspace(caller: Caller, workspace: Workspace, info: RequestInfo) -> dict[str, Any]:
    row = _student_tool(caller, "WORKSPACE")
    provisioner = workspace()
    with db.transaction() as cur:
        repository.lock_workspace(cur, caller.user_id)
        state = _workspace_call(lambda: provisioner.stop(_student(caller)), row)
        info.audit(
            cur,
            "WORKSPACE_STOPPED",
            actor=caller,
            subject_id=caller.user_id,
            resource_type="workspace_task",
            resource_id=state.task_arn,
            details={"reason": "student", "status": state.status},
        )
    return _state(state)
