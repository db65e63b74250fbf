"""The FSD workspace provisioner against moto (EFS, ECS, EC2, SSM, KMS in-process) and the real
application database (the user row, the uid allocation lock, the idle stopper's records).

moto starts ECS tasks RUNNING and, by default, moves them one state further at every describe;
the module holds them RUNNING with moto's state manager, as Fargate keeps a healthy task running.
moto's EFS ignores ClientToken; ``aws_like_client_tokens`` makes the client answer a reused token
as EFS does (AccessPointAlreadyExists with the access point's id), so the token paths are tested.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import psycopg
import pytest
from botocore.config import Config

from apranova import db
from functions.provision import idle
from functions.provision.tools import Student, ToolFailed, ToolProvisioner, ToolStatus, ToolUnavailable
from functions.provision.tools.workspace import (
    _UID_LOCK_BASE,
    FAMILY_PREFIX,
    TAG_USER,
    UID_BASE,
    UID_RANGE,
    WorkspaceNotProvisioned,
    WorkspaceProvisioner,
    WorkspaceSettings,
    names_for,
)
from tests.integration.workspace_support import IMAGE, REGION, Aws, moto_workspaces

PREFIX = "/apranova/test"


@pytest.fixture(scope="module")
def aws() -> Iterator[Aws]:
    with moto_workspaces() as made:
        yield made


def settings_for(aws: Aws, files: Path | None = None, **changes: Any) -> WorkspaceSettings:
    return aws.settings(PREFIX, files, **changes)


def aws_like_client_tokens(efs: Any) -> Any:
    """CreateAccessPoint answering a reused ClientToken as EFS does (moto ignores the token)."""
    made: dict[str, str] = {}

    class _Conflict:
        status_code = 409

    def before(params: dict[str, Any], **_: Any) -> Any:
        token = json.loads(params.get("body") or b"{}").get("ClientToken")
        if token in made:
            return _Conflict(), {
                "Error": {"Code": "AccessPointAlreadyExists", "Message": "already exists"},
                "AccessPointId": made[token],
                "ResponseMetadata": {"HTTPStatusCode": 409},
            }
        return None

    def after(http_response: Any, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        if parsed.get("AccessPointId") and parsed.get("ClientToken"):
            made[parsed["ClientToken"]] = parsed["AccessPointId"]

    efs.meta.events.register("before-call.efs.CreateAccessPoint", before)
    efs.meta.events.register("after-call.efs.CreateAccessPoint", after)
    return efs


@pytest.fixture
def files(tmp_path: Path) -> Path:
    return tmp_path / "efs"


@pytest.fixture
def provisioner(aws: Aws, files: Path, database_url: str) -> WorkspaceProvisioner:
    efs = aws_like_client_tokens(boto3.client("efs", region_name=REGION))
    return WorkspaceProvisioner(efs, aws.ecs, aws.ssm, settings_for(aws, files))


@pytest.fixture
def new_student(conn) -> Iterator[Callable[..., Student]]:
    made: list[str] = []

    def make(track: str = "FSD") -> Student:
        user_id = str(uuid.uuid4())
        email = f"fsd-{user_id[:8]}@example.com"
        conn.execute(
            "INSERT INTO users (id, email, track_id, enrollment_status, email_verified)"
            " VALUES (%s, %s, (SELECT id FROM tracks WHERE code = %s), 'ENROLLED', true)",
            (user_id, email, track),
        )
        made.append(user_id)
        return Student(user_id=user_id, email=email, track=track)

    yield make
    conn.execute("DELETE FROM users WHERE id = ANY(%s::uuid[])", (made,))


def access_points_of(aws: Aws, user_id: str) -> list[dict[str, Any]]:
    points = aws.efs.describe_access_points(FileSystemId=aws.file_system)["AccessPoints"]
    return [p for p in points if {t["Key"]: t["Value"] for t in p.get("Tags", [])}.get(TAG_USER) == user_id]


def parameters_of(aws: Aws, user_id: str) -> list[dict[str, Any]]:
    return aws.ssm.get_parameters_by_path(Path=f"{PREFIX}/students/{user_id}", Recursive=True)["Parameters"]


def revisions(aws: Aws, user_id: str, status: str = "ACTIVE") -> list[str]:
    family = FAMILY_PREFIX + uuid.UUID(user_id).hex
    return aws.ecs.list_task_definitions(familyPrefix=family, status=status)["taskDefinitionArns"]


def running_tasks(aws: Aws, user_id: str) -> list[dict[str, Any]]:
    arns = aws.ecs.list_tasks(cluster=aws.cluster, startedBy=user_id, desiredStatus="RUNNING")["taskArns"]
    return aws.ecs.describe_tasks(cluster=aws.cluster, tasks=arns, include=["TAGS"])["tasks"] if arns else []


def password_of(aws: Aws, user_id: str) -> str:
    name = f"{PREFIX}/students/{user_id}/workspace-password"
    return aws.ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]


def nothing_left(aws: Aws, user_id: str) -> None:
    assert access_points_of(aws, user_id) == []
    assert parameters_of(aws, user_id) == []
    assert revisions(aws, user_id, "ACTIVE") == []
    assert revisions(aws, user_id, "INACTIVE") == []
    assert running_tasks(aws, user_id) == []


# -- provision ----------------------------------------------------------------------------------


def test_provision_twice_makes_one_access_point_one_parameter_and_one_task_definition(
    provisioner, new_student, aws, files
) -> None:
    assert isinstance(provisioner, ToolProvisioner)
    student = new_student()
    names = names_for(student.user_id, PREFIX)
    assert provisioner.status(student) is ToolStatus.NOT_PROVISIONED

    first = provisioner.provision(student)
    second = provisioner.provision(student)

    assert first == second
    assert first.tool == "WORKSPACE" and first.status == ToolStatus.PROVISIONED
    (point,) = access_points_of(aws, student.user_id)
    uid = point["PosixUser"]["Uid"]
    assert UID_BASE <= uid < UID_BASE + UID_RANGE and point["PosixUser"]["Gid"] == uid
    assert point["RootDirectory"] == {
        "Path": f"/students/{student.user_id}",
        "CreationInfo": {"OwnerUid": uid, "OwnerGid": uid, "Permissions": "0750"},
    }
    (parameter,) = parameters_of(aws, student.user_id)
    assert parameter["Name"] == names.parameter and parameter["Type"] == "SecureString"
    (described,) = aws.ssm.describe_parameters(ParameterFilters=[{"Key": "Name", "Values": [names.parameter]}])[
        "Parameters"
    ]
    assert described["KeyId"] == aws.kms_key
    password = password_of(aws, student.user_id)
    assert len(password) >= 24

    (arn,) = revisions(aws, student.user_id)
    definition = aws.ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]
    assert definition["family"] == names.family == FAMILY_PREFIX + uuid.UUID(student.user_id).hex
    assert definition["requiresCompatibilities"] == ["FARGATE"] and definition["networkMode"] == "awsvpc"
    assert definition["executionRoleArn"].endswith("role/workspace-execution")
    assert definition["taskRoleArn"].endswith("role/workspace-task")
    (container,) = definition["containerDefinitions"]
    assert container["image"] == IMAGE and container["memory"] == 2048
    assert container["secrets"] == [{"name": "PASSWORD", "valueFrom": parameter["ARN"]}]
    assert container["portMappings"] == [{"containerPort": 8080, "protocol": "tcp"}]
    (volume,) = definition["volumes"]
    assert volume["efsVolumeConfiguration"]["fileSystemId"] == aws.file_system
    assert volume["efsVolumeConfiguration"]["transitEncryption"] == "ENABLED"
    assert volume["efsVolumeConfiguration"]["authorizationConfig"] == {
        "accessPointId": point["AccessPointId"],
        "iam": "ENABLED",
    }
    # The image's own entrypoint and port; the student's directory is the whole home.
    assert container["mountPoints"] == [
        {"sourceVolume": volume["name"], "containerPath": "/home/coder", "readOnly": False}
    ]
    assert "command" not in container and "entryPoint" not in container

    assert first.details == {
        "external_id": point["AccessPointId"],
        "file_system_id": aws.file_system,
        "access_point_id": point["AccessPointId"],
        "posix_uid": uid,
        "root_directory": f"/students/{student.user_id}",
        "task_definition_family": names.family,
        "task_definition_arn": arn,
        "password_parameter": names.parameter,
    }
    # The password is in SSM only: not in the result, not in the task definition.
    assert password not in json.dumps(first.details) and password not in json.dumps(definition, default=str)
    assert provisioner.status(student) is ToolStatus.PROVISIONED


def test_students_get_distinct_uids_and_a_taken_preferred_uid_is_skipped(provisioner, new_student, aws) -> None:
    student = new_student()
    preferred = names_for(student.user_id, PREFIX).preferred_uid
    # Another student's access point already holds this student's preferred uid.
    squatter = aws.efs.create_access_point(
        FileSystemId=aws.file_system,
        PosixUser={"Uid": preferred, "Gid": preferred},
        RootDirectory={"Path": "/students/someone-else"},
        Tags=[{"Key": TAG_USER, "Value": str(uuid.uuid4())}],
    )
    try:
        details = provisioner.provision(student).details
        other = provisioner.provision(new_student()).details
    finally:
        aws.efs.delete_access_point(AccessPointId=squatter["AccessPointId"])
    assert details["posix_uid"] == preferred + 1
    assert other["posix_uid"] != details["posix_uid"]
    # The uid stays the student's: a re-run keeps the access point and its uid.
    assert provisioner.provision(student).details["posix_uid"] == preferred + 1


def test_provisioners_wait_only_for_their_own_uid_and_one_taken_meanwhile_is_skipped(
    provisioner, new_student, aws, database_url
) -> None:
    """The uid lock is per uid: a provisioner waiting for its preferred uid does not hold up another
    student's allocation, and when the uid it waited for was taken meanwhile it takes the next."""
    student = new_student()
    preferred = names_for(student.user_id, PREFIX).preferred_uid
    key = _UID_LOCK_BASE + preferred
    outcome: dict[str, Any] = {}
    squatter: dict[str, Any] = {}
    worker = threading.Thread(target=lambda: outcome.update(provisioner.provision(student).details))
    try:
        with psycopg.connect(database_url, autocommit=True) as holder:
            holder.execute("BEGIN")
            holder.execute("SELECT pg_advisory_xact_lock(%s::bigint)", (key,))
            worker.start()
            waiting = (
                "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                " AND classid = %s AND objid = %s)"
            )
            deadline = time.monotonic() + 30
            while not holder.execute(waiting, (key >> 32, key & 0xFFFFFFFF)).fetchone()[0]:
                assert time.monotonic() < deadline, "the provisioner never waited for its uid"
                time.sleep(0.05)
            # While it waits: another student's access point takes that uid ...
            squatter = aws.efs.create_access_point(
                FileSystemId=aws.file_system,
                PosixUser={"Uid": preferred, "Gid": preferred},
                RootDirectory={"Path": "/students/someone-else"},
                Tags=[{"Key": TAG_USER, "Value": str(uuid.uuid4())}],
            )
            # ... and another student's workspace is provisioned without waiting (its own connection).
            with db.function_slot("another-environment"):
                other = provisioner.provision(new_student()).details
            db.release("another-environment")
            holder.execute("COMMIT")
        worker.join(timeout=30)
        assert not worker.is_alive()
    finally:
        if squatter:
            aws.efs.delete_access_point(AccessPointId=squatter["AccessPointId"])
    assert outcome["posix_uid"] == preferred + 1
    assert other["posix_uid"] not in (preferred, preferred + 1)
    assert [p["PosixUser"]["Uid"] for p in access_points_of(aws, student.user_id)] == [preferred + 1]


def test_a_create_that_already_happened_is_adopted_not_duplicated(provisioner, new_student, aws) -> None:
    student = new_student()
    names = names_for(student.user_id, PREFIX)
    # An earlier run created the access point with the student's token, then failed before tagging
    # could be seen (the lookup by tag misses it): EFS answers the token with the existing one.
    earlier = provisioner._efs.create_access_point(
        ClientToken=names.client_token,
        FileSystemId=aws.file_system,
        PosixUser={"Uid": names.preferred_uid, "Gid": names.preferred_uid},
        RootDirectory={"Path": names.root_directory},
    )
    try:
        result = provisioner.provision(student)
        assert result.details["access_point_id"] == earlier["AccessPointId"]
        all_points = aws.efs.describe_access_points(FileSystemId=aws.file_system)["AccessPoints"]
        assert [p["AccessPointId"] for p in all_points if p["RootDirectory"]["Path"] == names.root_directory] == [
            earlier["AccessPointId"]
        ]
    finally:
        aws.efs.delete_access_point(AccessPointId=earlier["AccessPointId"])
        provisioner.deprovision(student)


def test_partial_state_is_repaired_and_changed_settings_leave_one_active_revision(
    provisioner, new_student, aws, files
) -> None:
    student = new_student()
    provisioner.provision(student)
    password = password_of(aws, student.user_id)
    aws.ecs.deregister_task_definition(taskDefinition=revisions(aws, student.user_id)[0])
    assert provisioner.status(student) is ToolStatus.PARTIAL

    provisioner.provision(student)
    assert provisioner.status(student) is ToolStatus.PROVISIONED
    assert password_of(aws, student.user_id) == password  # an existing password is kept

    newer = WorkspaceProvisioner(
        provisioner._efs, aws.ecs, aws.ssm, settings_for(aws, files, workspace_image="codercom/code-server:5.0.0")
    )
    arn = newer.provision(student).details["task_definition_arn"]
    assert revisions(aws, student.user_id) == [arn]
    image = aws.ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]["containerDefinitions"][0]["image"]
    assert image == "codercom/code-server:5.0.0"
    assert len(access_points_of(aws, student.user_id)) == 1 and len(parameters_of(aws, student.user_id)) == 1


def test_provision_refuses_another_track_and_an_unknown_user(provisioner, new_student, aws) -> None:
    with pytest.raises(ToolFailed, match="FSD"):
        provisioner.provision(new_student("DP"))
    ghost = Student(user_id=str(uuid.uuid4()), email="ghost@example.com", track="FSD")
    with pytest.raises(ToolFailed, match="does not exist"):
        provisioner.provision(ghost)
    assert access_points_of(aws, ghost.user_id) == [] and parameters_of(aws, ghost.user_id) == []


def test_aws_unreachable_is_transient_and_a_missing_cluster_is_permanent(aws, new_student, files) -> None:
    closed = Config(connect_timeout=1, read_timeout=1, retries={"max_attempts": 1})
    unreachable = boto3.client("efs", region_name=REGION, endpoint_url="http://127.0.0.1:9", config=closed)
    provisioner = WorkspaceProvisioner(unreachable, aws.ecs, aws.ssm, settings_for(aws, files))
    with pytest.raises(ToolUnavailable, match="unreachable"):
        provisioner.provision(new_student())

    student = new_student()
    WorkspaceProvisioner(aws.efs, aws.ecs, aws.ssm, settings_for(aws, files)).provision(student)
    elsewhere = WorkspaceProvisioner(aws.efs, aws.ecs, aws.ssm, settings_for(aws, files, workspace_cluster="nowhere"))
    with pytest.raises(ToolFailed, match="ClusterNotFoundException"):
        elsewhere.start(student)
    WorkspaceProvisioner(aws.efs, aws.ecs, aws.ssm, settings_for(aws, files)).deprovision(student)


# -- the task -----------------------------------------------------------------------------------


def test_start_runs_one_tagged_task_describe_gives_its_url_and_stop_stops_it(provisioner, new_student, aws) -> None:
    student = new_student()
    with pytest.raises(WorkspaceNotProvisioned):
        provisioner.start(student)
    provisioner.provision(student)
    assert provisioner.describe(student).status == "STOPPED"

    started = provisioner.start(student)
    again = provisioner.start(student)

    assert again.task_arn == started.task_arn  # idempotent: the running task is returned
    (task,) = running_tasks(aws, student.user_id)
    assert task["taskArn"] == started.task_arn and task["lastStatus"] == "RUNNING"
    assert task["startedBy"] == student.user_id and task["launchType"] == "FARGATE"
    assert {t["key"]: t["value"] for t in task["tags"]} == {TAG_USER: student.user_id, "apranova:tool": "WORKSPACE"}
    assert task["taskDefinitionArn"] == revisions(aws, student.user_id)[0]
    ip = next(d["value"] for d in task["attachments"][0]["details"] if d["name"] == "privateIPv4Address")
    eni = next(d["value"] for d in task["attachments"][0]["details"] if d["name"] == "networkInterfaceId")
    interface = aws.ec2.describe_network_interfaces(NetworkInterfaceIds=[eni])["NetworkInterfaces"][0]
    assert interface["SubnetId"] == aws.subnet and [g["GroupId"] for g in interface["Groups"]] == [aws.security_group]
    assert "Association" not in interface  # assignPublicIp DISABLED: no public address

    described = provisioner.describe(student)
    assert described.status == "RUNNING" and described.private_ip == ip
    assert described.url == f"http://{ip}:8080/"
    assert password_of(aws, student.user_id) not in described.url

    stopped = provisioner.stop(student)
    assert stopped.status == "STOPPING" and stopped.task_arn == started.task_arn
    assert running_tasks(aws, student.user_id) == []
    assert provisioner.describe(student).status == "STOPPED"
    assert provisioner.stop(student).status == "STOPPED"  # nothing running: fine
    provisioner.deprovision(student)


def test_the_url_template_is_configurable(aws, new_student, files) -> None:
    provisioner = WorkspaceProvisioner(
        aws.efs,
        aws.ecs,
        aws.ssm,
        settings_for(aws, files, workspace_url_template="https://ws.example.com/{task_id}/"),
    )
    student = new_student()
    provisioner.provision(student)
    started = provisioner.start(student)
    assert provisioner.describe(student).url == f"https://ws.example.com/{started.task_id}/"
    provisioner.deprovision(student)
    with pytest.raises(ValueError, match="WORKSPACE_URL_TEMPLATE"):
        settings_for(aws, files, workspace_url_template="http://{password}@x/")


def test_the_idle_stopper_stops_only_idle_running_workspaces(provisioner, new_student, aws, conn) -> None:
    idle_one, busy_one, stopped_one = new_student(), new_student(), new_student()
    now = datetime.now(UTC)
    for student, last_activity, start in (
        (idle_one, now - timedelta(minutes=90), True),
        (busy_one, now - timedelta(minutes=5), True),
        (stopped_one, now - timedelta(minutes=500), False),
    ):
        provisioner.provision(student)
        if start:
            provisioner.start(student)
        conn.execute(
            "INSERT INTO tool_provisioning (user_id, tool, status, provisioned_at, last_activity_at)"
            " VALUES (%s, 'WORKSPACE', 'SUCCEEDED', now() - interval '1 day', %s)",
            (student.user_id, last_activity),
        )
    idle_task = running_tasks(aws, idle_one.user_id)[0]["taskArn"]

    result = idle.stop_idle(provisioner, idle_minutes=60)

    stopped = [entry for entry in result["stopped"] if entry["user_id"] in {s.user_id for s in (idle_one, busy_one)}]
    assert stopped == [{"user_id": idle_one.user_id, "task_arn": idle_task}]
    assert result["failed"] == []
    assert running_tasks(aws, idle_one.user_id) == []
    assert len(running_tasks(aws, busy_one.user_id)) == 1
    (row,) = conn.execute(
        "SELECT actor_id, resource_type, resource_id, details FROM audit_logs"
        " WHERE action = 'WORKSPACE_STOPPED' AND subject_id = %s",
        (idle_one.user_id,),
    ).fetchall()
    assert row["actor_id"] is None and row["resource_type"] == "workspace_task"
    assert row["resource_id"] == idle_task
    assert row["details"]["reason"] == "idle" and row["details"]["idle_minutes"] == 60
    assert not conn.execute(
        "SELECT 1 FROM audit_logs WHERE action = 'WORKSPACE_STOPPED' AND subject_id = ANY(%s::uuid[])",
        ([busy_one.user_id, stopped_one.user_id],),
    ).fetchall()

    # Run again: nothing more is idle.
    again = idle.stop_idle(provisioner, idle_minutes=60)
    assert idle_one.user_id not in {entry["user_id"] for entry in again["stopped"]}
    for student in (idle_one, busy_one, stopped_one):
        provisioner.deprovision(student)


# -- deprovision --------------------------------------------------------------------------------


def test_deprovision_leaves_nothing_and_is_tolerant(provisioner, new_student, aws, files) -> None:
    student = new_student()
    provisioner.provision(student)
    provisioner.start(student)
    home = files / "students" / student.user_id
    home.mkdir(parents=True)
    (home / "app.py").write_text("print('hello')\n")
    neighbour = files / "students" / str(uuid.uuid4())
    neighbour.mkdir(parents=True)

    provisioner.deprovision(student)

    nothing_left(aws, student.user_id)
    assert not home.exists() and neighbour.exists()
    assert provisioner.status(student) is ToolStatus.NOT_PROVISIONED
    provisioner.deprovision(student)  # again: fine

    # Provisioned again later (re-enrolment): EFS remembers the old token; a new one is used.
    again = provisioner.provision(student)
    (point,) = access_points_of(aws, student.user_id)
    assert point["AccessPointId"] == again.details["access_point_id"]
    assert point["ClientToken"].startswith(names_for(student.user_id, PREFIX).client_token + "-")
    provisioner.deprovision(student)
    nothing_left(aws, student.user_id)


def test_deprovision_of_a_never_provisioned_student_is_fine(provisioner, aws) -> None:
    student = Student(user_id=str(uuid.uuid4()), email="never@example.com", track="FSD")
    provisioner.deprovision(student)
    nothing_left(aws, student.user_id)
    with pytest.raises(ToolFailed, match="uuid"):
        provisioner.deprovision(Student(user_id="not-a-uuid", email="x@example.com", track="FSD"))
