"""The FSD workspace: a browser VS Code (code-server) per student, on ECS Fargate with EFS storage.

Per student, made by ``provision`` (each piece found first, so a re-run makes nothing twice):
- an **EFS access point** on the configured file system, tagged with the user id, whose POSIX user
  (uid = gid) is the student's own and whose root directory ``/students/<user id>`` is created by
  EFS owned by that uid with mode 0750. Every file operation through the access point runs as that
  uid inside that directory, so one student's task cannot reach another's files;
- a **code-server password**, generated here and stored only in SSM SecureString
  ``{SSM_PREFIX}/students/<user id>/workspace-password`` (with the configured KMS key);
- an **ECS task definition** family ``apranova-workspace-<user id hex>`` (Fargate, awsvpc): the
  configured image, the EFS volume through the access point with transit encryption and IAM
  authorization, the password injected by ECS from the parameter (the container's ``secrets``;
  the execution role reads it, nothing else sees it), container-level memory.

The task itself is not part of provisioning: ``start`` runs it on demand (the tools API), ``stop``
stops it (the student, the idle stopper), ``describe`` reports its state and URL.

POSIX ids: a student's uid is deterministic and collision-free. The preferred uid is a hash of the
user id into a reserved range (``UID_BASE`` .. ``UID_BASE + UID_RANGE - 1``, above the ids images
and hosts use, below 2**31); when another student's access point on the file system already holds
it, the next free one is taken (linear probing). Allocation holds a transaction-level advisory lock
per uid on the application database, so two concurrent provisions cannot pick the same uid; an existing
access point keeps its uid for life. The same student gets the same uid again after a deprovision
(unless probing was needed), so files left under the root directory stay theirs.

Names: the family uses all 32 hex digits of the user id. A shorter prefix could be shared by two
students, and deprovisioning one would then deregister the other's task definition.

Access URL: ``WORKSPACE_URL_TEMPLATE`` with ``{private_ip}``, ``{port}``, ``{task_id}`` and
``{user_id}``; the default ``http://{private_ip}:{port}/`` reaches code-server on the task's
private IP (a VPN or the local stack). Behind a load balancer or proxy that routes by task, set
e.g. ``https://workspaces.example.com/{task_id}/``. The URL never holds the password.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError
from pydantic import Field, field_validator, model_validator

from apranova.observability import logger
from apranova.settings import BaseSettings, load
from functions.provision import repository
from functions.provision.tools import Student, ToolFailed, ToolResult, ToolStatus, ToolUnavailable, student_secrets
from functions.provision.tools.aws_errors import aws_code, aws_translated

TOOL = "WORKSPACE"
UID_BASE = 1_000_000
UID_RANGE = 1 << 30  # the largest uid is 1_074_741_823 < 2**31
FAMILY_PREFIX = "apranova-workspace-"
CONTAINER = "code-server"
VOLUME = "workspace"
# The code-server image's user home and port: its entrypoint runs ``code-server --bind-addr
# 0.0.0.0:8080 .`` in /home/coder as uid 1000, with password auth when PASSWORD is set. The task
# keeps that entrypoint and mounts the student's directory as the whole home, so settings and
# extensions persist with their files. (EFS applies the access point's uid to every operation,
# whatever uid the process has.)
CONTAINER_PATH = "/home/coder"
CONTAINER_PORT = 8080
ROOT_PERMISSIONS = "0750"
TAG_USER = "apranova:user-id"
TAG_TOOL = "apranova:tool"
TAG_SPEC = "apranova:spec"  # a fingerprint of the registered definition: unchanged → not registered again
_UID_SALT = b"apranova/workspace/uid/v1:"
# Advisory lock keys of uid allocation on the app database: this base plus the uid (below 2**31).
_UID_LOCK_BASE = 0x5D_0001_0000_0000
_STARTING = frozenset({"PROVISIONING", "PENDING", "ACTIVATING"})
_PATH = r"^/[A-Za-z0-9_.\-/]*[A-Za-z0-9_.\-]$"


class WorkspaceSettings(BaseSettings):
    """Where workspaces run (environment: upper-cased names; lists comma-separated)."""

    ssm_prefix: str = Field(pattern=_PATH)
    workspace_file_system_id: str = Field(pattern=r"^fs-[0-9a-f]{8,40}$")
    workspace_cluster: str = Field(min_length=1, max_length=2048)
    workspace_subnets: tuple[str, ...] = Field(min_length=1, max_length=16)
    workspace_security_groups: tuple[str, ...] = Field(min_length=1, max_length=5)
    workspace_image: str = Field(min_length=1, max_length=1024)
    workspace_execution_role_arn: str = Field(pattern=r"^arn:aws[a-z-]*:iam::\d{12}:role/.+$")
    workspace_task_role_arn: str = Field(pattern=r"^arn:aws[a-z-]*:iam::\d{12}:role/.+$")
    workspace_kms_key_id: str | None = None  # None: SSM's default key (aws/ssm)
    workspace_cpu: int = Field(1024, ge=256, le=16384)  # Fargate CPU units of the task
    workspace_memory: int = Field(2048, ge=512, le=122880)  # MiB, the task's and its container's
    workspace_cpu_architecture: str = Field("X86_64", pattern=r"^(X86_64|ARM64)$")
    workspace_url_template: str = "http://{private_ip}:{port}/"
    workspace_log_group: str | None = None  # the awslogs group of the containers, if any
    # Where this function has the file system's root mounted (a Lambda with an EFS mount), to
    # delete a student's files on deprovision. Unset: deprovision removes access, the files stay.
    workspace_files_mount: str | None = Field(None, pattern=r"^/.+")
    workspace_idle_minutes: int = Field(60, ge=5, le=24 * 60)

    @field_validator("workspace_subnets", "workspace_security_groups", mode="before")
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @model_validator(mode="after")
    def _template(self) -> WorkspaceSettings:
        try:
            url = self.workspace_url_template.format(private_ip="10.0.0.1", port=1, task_id="t", user_id="u")
        except (KeyError, IndexError, ValueError):
            raise ValueError(
                "WORKSPACE_URL_TEMPLATE may use {private_ip}, {port}, {task_id} and {user_id} only"
            ) from None
        if not url.startswith(("http://", "https://")) or "@" in url:
            raise ValueError("WORKSPACE_URL_TEMPLATE must be a plain http(s) URL")
        return self


@dataclass(frozen=True)
class WorkspaceNames:
    user_id: str  # canonical uuid text
    family: str
    root_directory: str
    parameter: str
    client_token: str  # the access point's creation token (EFS: at most 64 characters)
    preferred_uid: int


def names_for(user_id: str, ssm_prefix: str) -> WorkspaceNames:
    """Deterministic names for a user id; anything but a uuid is refused (``ToolFailed``)."""
    try:
        uid = uuid.UUID(str(user_id))
    except ValueError:
        raise ToolFailed("the user id is not a uuid") from None
    digest = hashlib.sha256(_UID_SALT + uid.bytes).digest()
    return WorkspaceNames(
        user_id=str(uid),
        family=FAMILY_PREFIX + uid.hex,
        root_directory=f"/students/{uid}",
        parameter=f"{ssm_prefix}/students/{uid}/workspace-password",
        client_token=f"apranova-ws-{uid.hex}",
        preferred_uid=UID_BASE + int.from_bytes(digest[:8], "big") % UID_RANGE,
    )


class WorkspaceNotProvisioned(ToolFailed):
    """``start`` for a student without a workspace (no task definition)."""


@dataclass(frozen=True)
class WorkspaceState:
    """A student's workspace as ECS sees it. ``status``: STOPPED | STARTING | RUNNING | STOPPING."""

    status: str
    task_arn: str | None = None
    task_id: str | None = None
    private_ip: str | None = None
    url: str | None = None  # only when RUNNING
    started_at: datetime | None = None


@dataclass(frozen=True)
class RunningWorkspace:
    """A workspace task whose desired status is RUNNING (the idle stopper's view)."""

    user_id: str
    task_arn: str
    since: datetime | None  # when it started (or was created, while starting)


@dataclass
class _Inventory:
    """What exists on AWS for one student."""

    access_points: list[dict[str, Any]] = field(default_factory=list)
    parameter_exists: bool = False
    task_definitions: list[str] = field(default_factory=list)  # ACTIVE revision ARNs, newest first


def _tags(tags: list[dict[str, str]] | None, key: str = "Key", value: str = "Value") -> dict[str, str]:
    return {t[key]: t[value] for t in tags or [] if key in t and value in t}


def _revision(arn: str) -> int:
    return int(arn.rsplit(":", 1)[-1])


def _family(arn: str) -> str:
    return arn.rsplit("/", 1)[-1].rsplit(":", 1)[0]


class WorkspaceProvisioner:
    """``ToolProvisioner`` for the FSD workspace, plus the task's start / stop / describe.

    The clients are boto3 EFS, ECS and SSM clients. ``uid_lock`` is a context manager factory
    serialising uid allocation across provisioners (default: an advisory lock on the application
    database, see ``functions.provision.workspace_repository``).
    """

    name = TOOL

    def __init__(
        self,
        efs_client: Any,
        ecs_client: Any,
        ssm_client: Any,
        settings: WorkspaceSettings,
        uid_lock: Any = None,
    ) -> None:
        self._efs = efs_client
        self._ecs = ecs_client
        self._ssm = ssm_client
        self._settings = settings
        self._uid_lock = uid_lock

    @property
    def settings(self) -> WorkspaceSettings:
        return self._settings

    def names(self, student: Student | str) -> WorkspaceNames:
        user_id = student if isinstance(student, str) else student.user_id
        return names_for(user_id, self._settings.ssm_prefix)

    # -- the interface ----------------------------------------------------------------------------

    def provision(self, student: Student) -> ToolResult:
        if student.track != "FSD":
            raise ToolFailed(f"the workspace is an FSD tool, not one of track {student.track!r}")
        names = self.names(student)
        with aws_translated("provision workspace"):
            if not repository.active_user_exists(names.user_id):
                raise ToolFailed("the user does not exist or is being deleted")
            access_point = self._ensure_access_point(names)
            parameter_arn = self._ensure_password(names, access_point)
            task_definition_arn = self._ensure_task_definition(names, access_point["AccessPointId"], parameter_arn)
        uid = int(access_point["PosixUser"]["Uid"])
        logger.info(
            "workspace provisioned",
            extra={"user_id": names.user_id, "access_point": access_point["AccessPointId"], "uid": uid},
        )
        return ToolResult(
            tool=TOOL,
            status=ToolStatus.PROVISIONED,
            details={
                "external_id": access_point["AccessPointId"],
                "file_system_id": self._settings.workspace_file_system_id,
                "access_point_id": access_point["AccessPointId"],
                "posix_uid": uid,
                "root_directory": names.root_directory,
                "task_definition_family": names.family,
                "task_definition_arn": task_definition_arn,
                "password_parameter": names.parameter,
            },
        )

    def deprovision(self, student: Student) -> None:
        names = self.names(student)
        with aws_translated("deprovision workspace"):
            stopped = self._stop_tasks(names, "the workspace was deprovisioned")
            revisions = self._task_definitions(names, status="ACTIVE")
            for arn in revisions:
                self._deregister(arn)
            self._delete_task_definitions(names)
            for access_point in self._access_points(names):
                self._delete_access_point(access_point["AccessPointId"])
            self._delete_parameter(names.parameter)
        removed_files = self._remove_files(names)
        logger.info(
            "workspace deprovisioned",
            extra={
                "user_id": names.user_id,
                "tasks_stopped": len(stopped),
                "revisions_deregistered": len(revisions),
                "files_removed": removed_files,
            },
        )

    def status(self, student: Student) -> ToolStatus:
        names = self.names(student)
        with aws_translated("workspace status"):
            found = self._inventory(names)
        parts = [bool(found.access_points), found.parameter_exists, bool(found.task_definitions)]
        if all(parts):
            return ToolStatus.PROVISIONED
        return ToolStatus.PARTIAL if any(parts) else ToolStatus.NOT_PROVISIONED

    # -- the task ---------------------------------------------------------------------------------

    def start(self, student: Student) -> WorkspaceState:
        """Runs the student's task unless one is already running (or starting): idempotent."""
        names = self.names(student)
        with aws_translated("start workspace"):
            current = self._describe(names)
            if current.status in ("RUNNING", "STARTING"):
                return current
            revisions = self._task_definitions(names, status="ACTIVE")
            if not revisions:
                raise WorkspaceNotProvisioned("the student has no workspace task definition")
            response = self._ecs.run_task(
                cluster=self._settings.workspace_cluster,
                taskDefinition=revisions[0],
                launchType="FARGATE",
                count=1,
                startedBy=names.user_id,
                clientToken=uuid.uuid4().hex,  # one per call: botocore's retries of it start one task
                networkConfiguration={
                    "awsvpcConfiguration": {
                        "subnets": list(self._settings.workspace_subnets),
                        "securityGroups": list(self._settings.workspace_security_groups),
                        "assignPublicIp": "DISABLED",
                    }
                },
                tags=[
                    {"key": TAG_USER, "value": names.user_id},
                    {"key": TAG_TOOL, "value": TOOL},
                ],
            )
            tasks = response.get("tasks") or []
            if not tasks:
                reasons = sorted({str(f.get("reason", "")) for f in response.get("failures") or []})
                # RESOURCE:* (capacity, ENI limits) and AGENT pass; anything else is configuration.
                if any(r.startswith(("RESOURCE", "AGENT")) for r in reasons) or not reasons:
                    raise ToolUnavailable(f"start workspace: ECS placed no task: {', '.join(reasons)}")
                raise ToolFailed(f"start workspace: ECS refused: {', '.join(reasons)}")
        state = self._state(names, tasks[0])
        logger.info("workspace started", extra={"user_id": names.user_id, "task_id": state.task_id})
        return state

    def stop(self, student: Student, reason: str = "stopped by the student") -> WorkspaceState:
        """Stops the student's running task(s); nothing running is fine."""
        names = self.names(student)
        with aws_translated("stop workspace"):
            stopped = self._stop_tasks(names, reason)
        if stopped:
            logger.info("workspace stopped", extra={"user_id": names.user_id, "tasks": len(stopped)})
            return WorkspaceState(status="STOPPING", task_arn=stopped[0], task_id=stopped[0].rsplit("/", 1)[-1])
        return WorkspaceState(status="STOPPED")

    def stop_task(self, task_arn: str, reason: str) -> None:
        with aws_translated("stop workspace task"):
            self._ecs.stop_task(cluster=self._settings.workspace_cluster, task=task_arn, reason=reason[:255])

    def describe(self, student: Student) -> WorkspaceState:
        names = self.names(student)
        with aws_translated("describe workspace"):
            return self._describe(names)

    def running(self) -> list[RunningWorkspace]:
        """Every workspace task of the cluster whose desired status is RUNNING."""
        found: list[RunningWorkspace] = []
        with aws_translated("list running workspaces"):
            arns: list[str] = []
            paginator = self._ecs.get_paginator("list_tasks")
            for page in paginator.paginate(cluster=self._settings.workspace_cluster, desiredStatus="RUNNING"):
                arns.extend(page.get("taskArns") or [])
            for start in range(0, len(arns), 100):
                described = self._ecs.describe_tasks(
                    cluster=self._settings.workspace_cluster, tasks=arns[start : start + 100]
                )
                for task in described.get("tasks") or []:
                    user_id = self._owner(task)
                    if user_id is None or task.get("desiredStatus") != "RUNNING":
                        continue
                    found.append(
                        RunningWorkspace(
                            user_id=user_id,
                            task_arn=task["taskArn"],
                            since=task.get("startedAt") or task.get("createdAt"),
                        )
                    )
        return found

    # -- EFS --------------------------------------------------------------------------------------

    def _all_access_points(self) -> list[dict[str, Any]]:
        points: list[dict[str, Any]] = []
        paginator = self._efs.get_paginator("describe_access_points")
        for page in paginator.paginate(FileSystemId=self._settings.workspace_file_system_id):
            points.extend(page.get("AccessPoints") or [])
        return points

    def _ours(self, names: WorkspaceNames, points: list[dict[str, Any]]) -> list[dict[str, Any]]:
        mine = [p for p in points if _tags(p.get("Tags")).get(TAG_USER) == names.user_id]
        return [p for p in mine if p.get("LifeCycleState") not in ("deleting", "deleted")]

    def _access_points(self, names: WorkspaceNames) -> list[dict[str, Any]]:
        return self._ours(names, self._all_access_points())

    def _ensure_access_point(self, names: WorkspaceNames) -> dict[str, Any]:
        # The student's preferred uid is held before the file system's access points are listed
        # (one listing, not one before and one under the hold: under a burst each EFS call waits).
        with self._allocation() as hold:
            uid = names.preferred_uid
            while True:
                hold(uid)  # only a provisioner that would take this same uid waits here
                points = self._all_access_points()  # holding the uid
                mine = self._ours(names, points)
                if mine:
                    return self._keep_one(mine)
                free = self._free_uid(names, points)
                if free == uid:
                    return self._create_access_point(names, uid)
                uid = free  # taken (or an earlier one freed) meanwhile: that candidate, also held

    def _keep_one(self, mine: list[dict[str, Any]]) -> dict[str, Any]:
        """One access point per student: extras (left by a race) are deleted, the first kept."""
        mine = sorted(mine, key=lambda p: p["AccessPointId"])
        keep = next((p for p in mine if p.get("ClientToken", "").startswith("apranova-ws-")), mine[0])
        for extra in mine:
            if extra is not keep:
                self._delete_access_point(extra["AccessPointId"])
        return keep

    @contextmanager
    def _allocation(self) -> Iterator[Callable[[int], None]]:
        """Yields ``hold(uid)``, which holds that uid until the block ends. By default a
        transaction-level advisory lock per uid on the application database: every access point
        is created by a holder of its uid who listed the file system's access points after taking
        it, so two provisioners never create one uid, and provisioners of different uids do not
        wait for each other (one lock for all made 25 workspaces at once queue through each
        other's EFS calls). A ``uid_lock`` factory given instead serialises every allocation."""
        if self._uid_lock is None:
            from functions.provision import workspace_repository

            with workspace_repository.uid_locks(_UID_LOCK_BASE) as hold:
                yield hold
        else:
            with self._uid_lock():
                yield lambda _uid: None

    @staticmethod
    def _free_uid(names: WorkspaceNames, points: list[dict[str, Any]]) -> int:
        taken = {int(p["PosixUser"]["Uid"]) for p in points if p.get("PosixUser", {}).get("Uid") is not None}
        taken |= {int(p["PosixUser"]["Gid"]) for p in points if p.get("PosixUser", {}).get("Gid") is not None}
        offset = names.preferred_uid - UID_BASE
        for step in range(len(taken) + 1):
            candidate = UID_BASE + (offset + step) % UID_RANGE
            if candidate not in taken:
                return candidate
        raise ToolFailed("no free POSIX uid in the workspace range")  # unreachable: the range is huge

    def _create_access_point(self, names: WorkspaceNames, uid: int) -> dict[str, Any]:
        request = {
            "FileSystemId": self._settings.workspace_file_system_id,
            "PosixUser": {"Uid": uid, "Gid": uid},
            "RootDirectory": {
                "Path": names.root_directory,
                "CreationInfo": {"OwnerUid": uid, "OwnerGid": uid, "Permissions": ROOT_PERMISSIONS},
            },
            "Tags": [
                {"Key": "Name", "Value": f"workspace-{names.user_id}"},
                {"Key": TAG_USER, "Value": names.user_id},
                {"Key": TAG_TOOL, "Value": TOOL},
            ],
        }
        try:
            return self._efs.create_access_point(ClientToken=names.client_token, **request)
        except ClientError as exc:
            if aws_code(exc) != "AccessPointAlreadyExists":
                raise
            existing_id = exc.response.get("AccessPointId") or exc.response.get("Error", {}).get("AccessPointId")
        # The token was used before: the access point it made, if it still exists, is this student's.
        if existing_id:
            try:
                found = self._efs.describe_access_points(AccessPointId=existing_id).get("AccessPoints") or []
            except ClientError as exc:
                if aws_code(exc) != "AccessPointNotFound":
                    raise
                found = []
            if found and found[0].get("LifeCycleState") not in ("deleting", "deleted"):
                return found[0]
        # It was deleted (an earlier deprovision): a token of this lifetime.
        fresh = f"{names.client_token}-{time.time_ns():x}"[:64]
        return self._efs.create_access_point(ClientToken=fresh, **request)

    def _delete_access_point(self, access_point_id: str) -> None:
        try:
            self._efs.delete_access_point(AccessPointId=access_point_id)
        except ClientError as exc:
            if aws_code(exc) != "AccessPointNotFound":
                raise

    def _remove_files(self, names: WorkspaceNames) -> bool:
        mount = self._settings.workspace_files_mount
        if not mount:
            return False
        root = Path(mount)
        target = root / "students" / names.user_id  # a canonical uuid: no traversal possible
        if not target.exists():
            return False
        if target.resolve().parent != (root / "students").resolve():
            raise ToolFailed("the student's directory is not where it should be")
        try:
            shutil.rmtree(target)
        except OSError as exc:  # the mount hiccuped, or a file is busy: a retry finishes the job
            raise ToolUnavailable(f"deprovision workspace: files not removed: {type(exc).__name__}") from exc
        return True

    # -- SSM --------------------------------------------------------------------------------------

    def _parameter_arn(self, name: str) -> str | None:
        try:
            return str(self._ssm.get_parameter(Name=name, WithDecryption=False)["Parameter"]["ARN"])
        except ClientError as exc:
            if aws_code(exc) == "ParameterNotFound":
                return None
            raise

    def _ensure_password(self, names: WorkspaceNames, access_point: dict[str, Any]) -> str:
        """The password parameter's ARN; the parameter is written unless it exists (one call: a
        concurrent or earlier run's password is kept). The ARN is the parameter's name in this
        account and region, as the access point's ARN names them."""
        request: dict[str, Any] = {
            "Name": names.parameter,
            "Value": secrets.token_urlsafe(24),
            "Type": "SecureString",
            "Overwrite": False,  # a concurrent run's password wins; the task reads whichever is stored
            "Description": "ApraNova workspace (code-server) password",
        }
        if self._settings.workspace_kms_key_id:
            request["KeyId"] = self._settings.workspace_kms_key_id
        try:
            self._ssm.put_parameter(**request)
        except ClientError as exc:
            if aws_code(exc) != "ParameterAlreadyExists":
                raise
        arn = str(access_point.get("AccessPointArn") or "").split(":")
        if len(arn) < 6 or arn[0] != "arn":  # EFS always answers it; never guessed
            raise ToolFailed("provision workspace: the access point has no ARN")
        partition, account = arn[1], arn[4]
        return f"arn:{partition}:ssm:{self._ssm.meta.region_name}:{account}:parameter{names.parameter}"

    def _delete_parameter(self, name: str) -> None:
        student_secrets.delete(self._ssm, name)

    # -- ECS --------------------------------------------------------------------------------------

    def _definition(self, names: WorkspaceNames, access_point_id: str, parameter_arn: str) -> dict[str, Any]:
        s = self._settings
        container: dict[str, Any] = {
            "name": CONTAINER,
            "image": s.workspace_image,
            "essential": True,
            "memory": s.workspace_memory,
            "portMappings": [{"containerPort": CONTAINER_PORT, "protocol": "tcp"}],
            "mountPoints": [{"sourceVolume": VOLUME, "containerPath": CONTAINER_PATH, "readOnly": False}],
            "secrets": [{"name": "PASSWORD", "valueFrom": parameter_arn}],
        }
        if s.workspace_log_group:
            container["logConfiguration"] = {
                "logDriver": "awslogs",
                "options": {
                    "awslogs-group": s.workspace_log_group,
                    "awslogs-region": s.aws_region,
                    "awslogs-stream-prefix": "workspace",
                },
            }
        return {
            "family": names.family,
            "requiresCompatibilities": ["FARGATE"],
            "networkMode": "awsvpc",
            "cpu": str(s.workspace_cpu),
            "memory": str(s.workspace_memory),
            "runtimePlatform": {"operatingSystemFamily": "LINUX", "cpuArchitecture": s.workspace_cpu_architecture},
            "executionRoleArn": s.workspace_execution_role_arn,
            "taskRoleArn": s.workspace_task_role_arn,
            "containerDefinitions": [container],
            "volumes": [
                {
                    "name": VOLUME,
                    "efsVolumeConfiguration": {
                        "fileSystemId": s.workspace_file_system_id,
                        "transitEncryption": "ENABLED",
                        "authorizationConfig": {"accessPointId": access_point_id, "iam": "ENABLED"},
                    },
                }
            ],
        }

    def _ensure_task_definition(self, names: WorkspaceNames, access_point_id: str, parameter_arn: str) -> str:
        definition = self._definition(names, access_point_id, parameter_arn)
        spec = hashlib.sha256(json.dumps(definition, sort_keys=True).encode()).hexdigest()[:32]
        active = self._task_definitions(names, status="ACTIVE")
        if active:
            described = self._ecs.describe_task_definition(taskDefinition=active[0], include=["TAGS"])
            if _tags(described.get("tags"), "key", "value").get(TAG_SPEC) == spec:
                for older in active[1:]:
                    self._deregister(older)
                return active[0]
        registered = self._ecs.register_task_definition(
            **definition,
            tags=[
                {"key": TAG_USER, "value": names.user_id},
                {"key": TAG_TOOL, "value": TOOL},
                {"key": TAG_SPEC, "value": spec},
            ],
        )
        arn = str(registered["taskDefinition"]["taskDefinitionArn"])
        for older in active:  # the settings changed: only the new revision stays active
            self._deregister(older)
        return arn

    def _task_definitions(self, names: WorkspaceNames, status: str) -> list[str]:
        """The family's revisions in ``status``, newest first (the API's prefix match narrowed)."""
        arns: list[str] = []
        paginator = self._ecs.get_paginator("list_task_definitions")
        for page in paginator.paginate(familyPrefix=names.family, status=status):
            arns.extend(a for a in page.get("taskDefinitionArns") or [] if _family(a) == names.family)
        return sorted(arns, key=_revision, reverse=True)

    def _deregister(self, arn: str) -> None:
        try:
            self._ecs.deregister_task_definition(taskDefinition=arn)
        except ClientError as exc:
            if aws_code(exc) not in ("ClientException", "InvalidParameterException"):  # already gone
                raise

    def _delete_task_definitions(self, names: WorkspaceNames) -> None:
        """Deregistered revisions stay listed as INACTIVE forever unless deleted."""
        inactive = self._task_definitions(names, status="INACTIVE")
        for start in range(0, len(inactive), 10):
            self._ecs.delete_task_definitions(taskDefinitions=inactive[start : start + 10])

    def _task_arns(self, names: WorkspaceNames) -> list[str]:
        arns: list[str] = []
        paginator = self._ecs.get_paginator("list_tasks")
        for page in paginator.paginate(
            cluster=self._settings.workspace_cluster, startedBy=names.user_id, desiredStatus="RUNNING"
        ):
            arns.extend(page.get("taskArns") or [])
        return arns

    def _tasks(self, names: WorkspaceNames) -> list[dict[str, Any]]:
        """The student's tasks whose desired status is RUNNING, newest first."""
        arns = self._task_arns(names)
        if not arns:
            return []
        tasks: list[dict[str, Any]] = []
        for start in range(0, len(arns), 100):
            described = self._ecs.describe_tasks(
                cluster=self._settings.workspace_cluster, tasks=arns[start : start + 100]
            )
            tasks.extend(
                t
                for t in described.get("tasks") or []
                if self._owner(t) == names.user_id and t.get("desiredStatus") == "RUNNING"
            )
        return sorted(tasks, key=_when, reverse=True)

    @staticmethod
    def _owner(task: dict[str, Any]) -> str | None:
        """The user id of a workspace task (our family, started by a user id), else None."""
        if not _family(task.get("taskDefinitionArn", "")).startswith(FAMILY_PREFIX):
            return None
        started_by = task.get("startedBy") or ""
        try:
            return str(uuid.UUID(started_by))
        except ValueError:
            return None

    def _stop_tasks(self, names: WorkspaceNames, reason: str) -> list[str]:
        stopped = []
        for arn in self._task_arns(names):
            try:
                self._ecs.stop_task(cluster=self._settings.workspace_cluster, task=arn, reason=reason[:255])
            except ClientError as exc:
                if aws_code(exc) not in ("InvalidParameterException", "ClientException"):  # gone already
                    raise
            stopped.append(arn)
        return stopped

    def _describe(self, names: WorkspaceNames) -> WorkspaceState:
        tasks = self._tasks(names)
        return self._state(names, tasks[0]) if tasks else WorkspaceState(status="STOPPED")

    def _state(self, names: WorkspaceNames, task: dict[str, Any]) -> WorkspaceState:
        last = str(task.get("lastStatus") or "PROVISIONING")
        if task.get("desiredStatus") == "STOPPED" or last not in _STARTING | {"RUNNING"}:
            status = "STOPPED" if last in ("STOPPED", "DELETED") else "STOPPING"
        else:
            status = "RUNNING" if last == "RUNNING" else "STARTING"
        task_arn = task.get("taskArn")
        task_id = task_arn.rsplit("/", 1)[-1] if task_arn else None
        ip = _private_ip(task)
        url = None
        if status == "RUNNING" and ip:
            url = self._settings.workspace_url_template.format(
                private_ip=ip, port=CONTAINER_PORT, task_id=task_id, user_id=names.user_id
            )
        return WorkspaceState(
            status=status,
            task_arn=task_arn,
            task_id=task_id,
            private_ip=ip,
            url=url,
            started_at=task.get("startedAt") or task.get("createdAt"),
        )

    def _inventory(self, names: WorkspaceNames) -> _Inventory:
        return _Inventory(
            access_points=self._access_points(names),
            parameter_exists=self._parameter_arn(names.parameter) is not None,
            task_definitions=self._task_definitions(names, status="ACTIVE"),
        )


def _when(task: dict[str, Any]) -> float:
    moment = task.get("createdAt") or task.get("startedAt")
    return moment.timestamp() if isinstance(moment, datetime) else 0.0


def _private_ip(task: dict[str, Any]) -> str | None:
    for attachment in task.get("attachments") or []:
        if attachment.get("type") != "ElasticNetworkInterface":
            continue
        for detail in attachment.get("details") or []:
            if detail.get("name") == "privateIPv4Address" and detail.get("value"):
                return str(detail["value"])
    for container in task.get("containers") or []:
        for interface in container.get("networkInterfaces") or []:
            if interface.get("privateIpv4Address"):
                return str(interface["privateIpv4Address"])
    return None


def from_environment(settings: WorkspaceSettings | None = None) -> WorkspaceProvisioner:
    """The provisioner as a Lambda builds it: settings from the environment, boto3 clients with
    explicit timeouts and standard retries."""
    import boto3
    from botocore.config import Config

    settings = settings or load(WorkspaceSettings)
    config = Config(connect_timeout=3, read_timeout=10, retries={"mode": "standard", "max_attempts": 3})
    region = settings.aws_region
    return WorkspaceProvisioner(
        boto3.client("efs", region_name=region, config=config),
        boto3.client("ecs", region_name=region, config=config),
        boto3.client("ssm", region_name=region, config=config),
        settings,
    )
