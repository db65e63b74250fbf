"""The idle-workspace stopper, run on a schedule (EventBridge Scheduler).

A running workspace is idle when neither its task's start nor the student's last recorded
activity (``tool_provisioning.last_activity_at`` of WORKSPACE: set by start, refreshed while the
student reads the workspace route) is within ``WORKSPACE_IDLE_MINUTES`` (default 60). Each idle
task is stopped and recorded: an audit row ``WORKSPACE_STOPPED`` (reason ``idle``), a log line,
and the summary this handler returns. The activity is checked again under the record's row lock
right before the stop, so a student starting or using the workspace at that moment keeps it.

Only tasks of the workspace families (``apranova-workspace-*``) started by a user id are looked
at; a running workspace without a record (an orphan) is stopped once its task is older than the
limit. A failure to stop one task does not keep the others running: it is logged, and the handler
fails at the end so the schedule's error metric and retries see it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from apranova import audit, db
from apranova.observability import entry, logger
from functions.provision import workspace_repository as repository
from functions.provision.tools import ToolError, ToolUnavailable
from functions.provision.tools.workspace import RunningWorkspace, WorkspaceProvisioner, from_environment

REASON = "idle"


def _last_activity(task: RunningWorkspace, record: dict[str, Any] | None) -> datetime | None:
    moments = [task.since, record["last_activity_at"] if record else None]
    known = [m if m.tzinfo else m.replace(tzinfo=UTC) for m in moments if isinstance(m, datetime)]
    return max(known, default=None)


def stop_idle(workspace: WorkspaceProvisioner, idle_minutes: int, now: datetime | None = None) -> dict[str, Any]:
    now = now or datetime.now(UTC)
    cutoff = now - timedelta(minutes=idle_minutes)
    running = workspace.running()
    records = repository.workspace_activity(sorted({task.user_id for task in running}))
    stopped: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    for task in running:
        last = _last_activity(task, records.get(task.user_id))
        if last is not None and last > cutoff:
            continue
        try:
            with db.transaction() as cur:
                if not repository.still_idle(cur, task.user_id, idle_minutes):
                    continue  # started or used since the listing
                workspace.stop_task(task.task_arn, f"idle for {idle_minutes} minutes")
                audit.record(
                    cur,
                    "WORKSPACE_STOPPED",
                    subject_id=task.user_id,
                    resource_type="workspace_task",
                    resource_id=task.task_arn,
                    details={
                        "reason": REASON,
                        "idle_minutes": idle_minutes,
                        "last_activity_at": last.isoformat() if last else None,
                    },
                )
        except ToolError as error:
            logger.warning(
                "idle workspace not stopped",
                extra={"user_id": task.user_id, "task_arn": task.task_arn, "error": str(error)},
            )
            failed.append({"user_id": task.user_id, "task_arn": task.task_arn, "error": type(error).__name__})
            continue
        stopped.append({"user_id": task.user_id, "task_arn": task.task_arn})
        logger.info("idle workspace stopped", extra={"user_id": task.user_id, "task_arn": task.task_arn})
    result = {"checked": len(running), "stopped": stopped, "failed": failed, "idle_minutes": idle_minutes}
    logger.info("idle workspaces checked", extra={"checked": len(running), "stopped": len(stopped)})
    return result


@entry
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    workspace = from_environment()
    result = stop_idle(workspace, workspace.settings.workspace_idle_minutes)
    if result["failed"]:
        raise ToolUnavailable(f"{len(result['failed'])} idle workspace(s) could not be stopped")
    return result
