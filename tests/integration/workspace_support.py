"""Shared by the workspace tests: one moto account (in-process) with what workspaces run on."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.moto_api import state_manager

from functions.provision.tools.workspace import WorkspaceSettings

REGION = "us-east-1"
ACCOUNT = "123456789012"
IMAGE = "codercom/code-server:4.96.4"


class Aws:
    """A VPC (DNS hostnames on) with a subnet and a security group, an EFS file system, an ECS
    cluster and a KMS key, with the clients the tests look through."""

    def __init__(self) -> None:
        self.ec2 = boto3.client("ec2", region_name=REGION)
        self.efs = boto3.client("efs", region_name=REGION)
        self.ecs = boto3.client("ecs", region_name=REGION)
        self.ssm = boto3.client("ssm", region_name=REGION)
        vpc = self.ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
        self.ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
        self.subnet = self.ec2.create_subnet(VpcId=vpc, CidrBlock="10.20.1.0/24")["Subnet"]["SubnetId"]
        self.security_group = self.ec2.create_security_group(
            GroupName="workspaces", Description="workspaces", VpcId=vpc
        )["GroupId"]
        self.file_system = self.efs.create_file_system(CreationToken="workspaces", Encrypted=True)["FileSystemId"]
        self.cluster = self.ecs.create_cluster(clusterName="workspaces")["cluster"]["clusterName"]
        self.kms_key = boto3.client("kms", region_name=REGION).create_key()["KeyMetadata"]["KeyId"]

    def environment(self, prefix: str, files: Path | None = None) -> dict[str, str]:
        """The workspace settings as the functions' environment carries them."""
        env = {
            "SSM_PREFIX": prefix,
            "WORKSPACE_FILE_SYSTEM_ID": self.file_system,
            "WORKSPACE_CLUSTER": self.cluster,
            "WORKSPACE_SUBNETS": self.subnet,
            "WORKSPACE_SECURITY_GROUPS": self.security_group,
            "WORKSPACE_IMAGE": IMAGE,
            "WORKSPACE_EXECUTION_ROLE_ARN": f"arn:aws:iam::{ACCOUNT}:role/workspace-execution",
            "WORKSPACE_TASK_ROLE_ARN": f"arn:aws:iam::{ACCOUNT}:role/workspace-task",
            "WORKSPACE_KMS_KEY_ID": self.kms_key,
        }
        if files is not None:
            env["WORKSPACE_FILES_MOUNT"] = str(files)
        return env

    def settings(self, prefix: str, files: Path | None = None, **changes: Any) -> WorkspaceSettings:
        values: dict[str, Any] = {key.lower(): value for key, value in self.environment(prefix, files).items()}
        return WorkspaceSettings.model_validate({**values, **changes})


@contextmanager
def moto_workspaces() -> Iterator[Aws]:
    """moto in-process, ECS tasks held RUNNING (moto otherwise moves them on at every describe),
    without EC2's default AMIs (workspaces need none, and they are slow to load)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
        with mock_aws():
            state_manager.set_transition(model_name="ecs::task", transition={"progression": "manual", "times": 10**9})
            try:
                yield Aws()
            finally:
                state_manager.unset_transition(model_name="ecs::task")
