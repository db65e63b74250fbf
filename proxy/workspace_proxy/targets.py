"""Where a signed-in student's request goes: their own running workspace task, or nowhere.

The target is looked up from the user id alone. The database says whether the student may use a
workspace now (an existing, enrolled account whose workspace was provisioned); ECS says where their
task runs: a RUNNING task of the workspace family, in the workspaces' cluster, started by their user
id (the provisioner starts each task with ``startedBy`` = the user id). Nothing in the request can
name another task, so another student's workspace is unreachable by construction.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

FAMILY_PREFIX = "apranova-workspace-"  # functions/provision/tools/workspace.py FAMILY_PREFIX
CONTAINER_PORT = 8080  # code-server in the workspace task
# Students whose access continues: enrolled, or finished and still within their access.
ACTIVE_ENROLLMENTS = ("ENROLLED", "COMPLETED")
NOT_RUNNING = "your workspace is not running: start it from the ApraNova app"
NOT_ANSWERING = "your workspace is starting (or stopping) and does not answer yet: try again in a moment"


@dataclass(frozen=True)
class Target:
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


@dataclass(frozen=True)
class Refusal:
    status: int  # 403: not yours / not allowed; 503: not running (or not answering yet)
    reason: str


def workspace_allowed(conn: Any, user_id: str) -> Refusal | None:
    """None when the student may use their workspace now, else why not (parameterised SQL)."""
    row = conn.execute(
        """
        SELECT u.role, u.enrollment_status, u.deleted_at, tp.status AS workspace_status
        FROM users u
        LEFT JOIN tool_provisioning tp ON tp.user_id = u.id AND tp.tool = 'WORKSPACE'
        WHERE u.id = %s
        """,
        (user_id,),
    ).fetchone()
    if row is None or _get(row, "deleted_at", 2) is not None:
        return Refusal(403, "no such account")
    if _get(row, "role", 0) != "student" or _get(row, "enrollment_status", 1) not in ACTIVE_ENROLLMENTS:
        return Refusal(403, "no workspace for this account")
    if _get(row, "workspace_status", 3) != "SUCCEEDED":
        return Refusal(403, "no workspace provisioned for this account")
    return None


def _get(row: Any, key: str, index: int) -> Any:
    return row[key] if isinstance(row, dict) else row[index]


def running_task(ecs: Any, cluster: str, user_id: str) -> Target | None:
    """The private address of the student's newest RUNNING workspace task, or None."""
    arns = ecs.list_tasks(cluster=cluster, startedBy=user_id, desiredStatus="RUNNING").get("taskArns") or []
    if not arns:
        return None
    tasks = ecs.describe_tasks(cluster=cluster, tasks=arns[:100]).get("tasks") or []
    mine = [
        task
        for task in tasks
        if task.get("startedBy") == user_id
        and _family(task.get("taskDefinitionArn", "")).startswith(FAMILY_PREFIX)
        and task.get("lastStatus") == "RUNNING"
        and task.get("desiredStatus") == "RUNNING"
    ]
    mine.sort(key=lambda task: str(task.get("startedAt") or task.get("createdAt") or ""), reverse=True)
    for task in mine:
        ip = _private_ip(task)
        if ip:
            return Target(ip, CONTAINER_PORT)
    return None


def resolve(conn: Any, ecs: Any, cluster: str, user_id: str) -> Target | Refusal:
    """Where ``user_id``'s request goes."""
    try:
        user_id = str(uuid.UUID(user_id))
    except ValueError:
        return Refusal(403, "no such account")
    refusal = workspace_allowed(conn, user_id)
    if refusal is not None:
        return refusal
    target = running_task(ecs, cluster, user_id)
    if target is None:
        return Refusal(503, NOT_RUNNING)
    return target


def _family(task_definition_arn: str) -> str:
    return task_definition_arn.rsplit("/", 1)[-1].split(":", 1)[0]


def _private_ip(task: dict[str, Any]) -> str | None:
    for attachment in task.get("attachments") or []:
        if attachment.get("type") != "ElasticNetworkInterface":
            continue
        for detail in attachment.get("details") or []:
            if detail.get("name") == "privateIPv4Address" and detail.get("value"):
                return str(detail["value"])
    return None
