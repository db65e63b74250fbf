"""The local stack's workspace bootstrap: against the run's moto server, it makes (once) what
workspaces run on, and its environment configures a provisioner that starts a RUNNING task."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import boto3
import pytest
import requests

from apranova.settings import load
from functions.provision.tools import Student
from functions.provision.tools.workspace import WorkspaceProvisioner, WorkspaceSettings
from local.tools.workspace import bootstrap_workspace
from tests.integration.auth_support import moto_url

REGION = "us-east-1"


@pytest.fixture
def moto(monkeypatch) -> Iterator[str]:
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")  # not needed here, and slow to load
    url = moto_url()
    yield url
    requests.post(f"{url}/moto-api/state-manager/unset-transition", json={"model_name": "ecs::task"}, timeout=10)


def test_bootstrap_is_idempotent_and_configures_a_working_provisioner(moto, conn) -> None:
    prefix = f"/apranova/local-{uuid.uuid4().hex[:6]}"
    env = bootstrap_workspace(moto, prefix)
    assert bootstrap_workspace(moto, prefix) == env

    settings = load(WorkspaceSettings, env)
    clients = [boto3.client(s, endpoint_url=moto, region_name=REGION) for s in ("efs", "ecs", "ssm")]
    workspace = WorkspaceProvisioner(*clients, settings)
    user_id = str(uuid.uuid4())
    conn.execute(
        "INSERT INTO users (id, email, track_id, enrollment_status) VALUES (%s, %s,"
        " (SELECT id FROM tracks WHERE code = 'FSD'), 'ENROLLED')",
        (user_id, f"local-{user_id[:8]}@example.com"),
    )
    student = Student(user_id, "local@example.com", "FSD")
    try:
        workspace.provision(student)
        started = workspace.start(student)
        assert started.status == "RUNNING" and started.url == f"http://{started.private_ip}:8080/"
        assert workspace.describe(student).status == "RUNNING"
    finally:
        workspace.deprovision(student)
        conn.execute("DELETE FROM users WHERE id = %s", (user_id,))
