"""The FSD workspace in the local stack: moto's EFS, ECS and EC2 stand in for AWS.

No code-server runs locally (moto's ECS runs no containers): a started workspace is a RUNNING moto
task with a private IP, so the routes, the workflow and the idle stopper behave as in AWS. The link
they give is the local front door's (``local/workspace_door.py``: the stack sets
``WORKSPACE_URL_TEMPLATE``), where the workspace proxy forwards to a stand-in server per running
task. ``bootstrap_workspace`` makes what the workspaces run on (a VPC with DNS hostnames, a subnet,
a security group, an encrypted file system, a cluster), holds moto's tasks RUNNING (moto otherwise
moves a task one state on at every describe), and returns the environment the provision, tools and
idle functions read. It is idempotent against a running moto server.
"""

from __future__ import annotations

from typing import Any

import boto3
import requests

NAME = "apranova-workspaces"
IMAGE = "codercom/code-server:latest"
ACCOUNT_ID = "123456789012"  # moto's default account


def _tagged(items: list[dict[str, Any]]) -> dict[str, Any] | None:
    return next((i for i in items if {"Key": "Name", "Value": NAME} in (i.get("Tags") or [])), None)


def bootstrap_workspace(moto_url: str, prefix: str, region: str = "us-east-1") -> dict[str, str]:
    """Creates (or finds) the workspace infrastructure in moto; returns the functions' environment."""
    clients = {s: boto3.client(s, endpoint_url=moto_url, region_name=region) for s in ("ec2", "efs", "ecs")}
    ec2, efs, ecs = clients["ec2"], clients["efs"], clients["ecs"]
    tag_spec = [{"Key": "Name", "Value": NAME}]

    vpc = _tagged(ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": [NAME]}])["Vpcs"])
    if vpc is None:
        vpc = ec2.create_vpc(CidrBlock="10.42.0.0/16", TagSpecifications=[{"ResourceType": "vpc", "Tags": tag_spec}])[
            "Vpc"
        ]
    vpc_id = vpc["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsHostnames={"Value": True})  # moto's run_task needs it
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"]
    subnet_id = (
        subnets[0]["SubnetId"]
        if subnets
        else ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.42.1.0/24")["Subnet"]["SubnetId"]
    )
    groups = ec2.describe_security_groups(
        Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "group-name", "Values": [NAME]}]
    )["SecurityGroups"]
    group_id = (
        groups[0]["GroupId"]
        if groups
        else ec2.create_security_group(GroupName=NAME, Description="ApraNova workspaces", VpcId=vpc_id)["GroupId"]
    )
    systems = [f for f in efs.describe_file_systems()["FileSystems"] if f.get("CreationToken") == NAME]
    file_system_id = (
        systems[0]["FileSystemId"]
        if systems
        else efs.create_file_system(CreationToken=NAME, Encrypted=True, Tags=tag_spec)["FileSystemId"]
    )
    ecs.create_cluster(clusterName=NAME)  # idempotent

    held = requests.post(
        f"{moto_url}/moto-api/state-manager/set-transition",
        json={"model_name": "ecs::task", "transition": {"progression": "manual", "times": 10**9}},
        timeout=10,
    )
    held.raise_for_status()

    return {
        "SSM_PREFIX": prefix,
        "WORKSPACE_FILE_SYSTEM_ID": file_system_id,
        "WORKSPACE_CLUSTER": NAME,
        "WORKSPACE_SUBNETS": subnet_id,
        "WORKSPACE_SECURITY_GROUPS": group_id,
        "WORKSPACE_IMAGE": IMAGE,
        "WORKSPACE_EXECUTION_ROLE_ARN": f"arn:aws:iam::{ACCOUNT_ID}:role/apranova-local-workspace-execution",
        "WORKSPACE_TASK_ROLE_ARN": f"arn:aws:iam::{ACCOUNT_ID}:role/apranova-local-workspace-task",
    }
