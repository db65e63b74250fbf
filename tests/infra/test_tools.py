"""The per-student tools in the stack: each step function, the tools API function and the idle stopper
get exactly their provisioner's settings and exactly the grants its code needs; the workspace
infrastructure (EFS, ECS, the task roles) and the idle stopper's schedule are locked down."""

from __future__ import annotations

import json
import os
import subprocess  # noqa: S404 - runs this interpreter on a fixed import check
import sys
from typing import Any

import pytest
from aws_cdk import DockerImage
from pydantic import BaseModel

from apranova import inventory
from apranova.alerts import AlertSettings
from apranova.cognito import CognitoSettings
from apranova.inventory import Trigger
from apranova.mail import MailSettings
from apranova.settings import DatabaseSettings, load
from cdk.constructs.bundling import ROOT, CopyBundler
from cdk.constructs.database import VPC_CIDR
from cdk.constructs.python_function import function_sources
from cdk.constructs.student_tools import STUDENTS_DB_NAME, TOOL_PARAMETERS
from cdk.constructs.workspaces import DEFAULT_IMAGE
from cdk.stacks.apranova_stack import EMAIL_FUNCTIONS, EMAIL_STEPS, FUNCTION_EXTRA_PATHS
from functions.admin.handler import WorkflowSettings
from functions.auth.handler import AuthSettings
from functions.curriculum.config import CurriculumSettings
from functions.provision.catalog import STEP_FUNCTIONS
from functions.provision.steps.assign_trainer import TrainerSettings
from functions.provision.steps.welcome_email import WelcomeSettings
from functions.provision.tools.jupyterhub import JupyterHubSettings
from functions.provision.tools.prefect import PrefectSettings
from functions.provision.tools.registry import AdminConnectionSettings
from functions.provision.tools.student_database import StudentDatabaseSettings
from functions.provision.tools.superset import SupersetSettings
from functions.provision.tools.workspace import WorkspaceSettings
from functions.submissions.config import SubmissionSettings
from functions.tools.config import ToolsSettings
from functions.trainer.handler import FileSettings as TrainerFileSettings
from functions.trainer.handler import TrainerSettings as TrainerRouteSettings
from tests.infra.conftest import CONFIGURED_CONTEXT
from tests.infra.stack_support import (
    env,
    flatten,
    function_ids,
    role_statements,
    role_statements_by_id,
    statements_with,
)

STEPS_WITHOUT_DATABASE = {f.name for f in inventory.of(Trigger.STEP) if not f.uses_database}

PREFIX = "/apranova/dev"
ACCOUNT_ARN = "arn:<AWS::Partition>:{service}:<AWS::Region>:<AWS::AccountId>:{resource}"
VIA_SSM = "ssm.<AWS::Region>.<AWS::URLSuffix>"
# Statements every function's role may hold whatever it does (logs, tracing, VPC, the proxy).
HOUSE_ACTIONS = ("logs:", "ec2:", "xray:", "rds-db:")
# The settings classes each function's code loads (read by Powertools: POWERTOOLS_*).
SETTINGS: dict[str, tuple[type[BaseModel], ...]] = {
    "provision-student-database": (StudentDatabaseSettings, AdminConnectionSettings, DatabaseSettings),
    "provision-superset": (SupersetSettings, DatabaseSettings),
    "provision-jupyter": (JupyterHubSettings, DatabaseSettings),
    "provision-prefect": (PrefectSettings, DatabaseSettings),
    "provision-workspace": (WorkspaceSettings, DatabaseSettings),
    "provision-welcome-email": (MailSettings, AlertSettings, WelcomeSettings, DatabaseSettings),
    "provision-assign-trainer": (MailSettings, AlertSettings, TrainerSettings, DatabaseSettings),
    "provision-alert-ops": (MailSettings, AlertSettings),
    "tools": (ToolsSettings, WorkspaceSettings, DatabaseSettings),
    "workspace-idle-stopper": (WorkspaceSettings, DatabaseSettings),
    # The route functions (the payments ones: tests/infra/test_payments.py).
    "health": (DatabaseSettings,),
    "auth": (CognitoSettings, AuthSettings, MailSettings, DatabaseSettings),
    "admin": (CognitoSettings, WorkflowSettings, DatabaseSettings),
    "curriculum": (CurriculumSettings, DatabaseSettings),
    "submissions": (SubmissionSettings, MailSettings, DatabaseSettings),
    "trainer": (TrainerRouteSettings, TrainerFileSettings, MailSettings, DatabaseSettings),
}
# Values standing in for what CloudFormation resolves at deploy time (the template holds a Ref).
DEPLOYED = {
    "WORKSPACE_FILE_SYSTEM_ID": "fs-0123456789abcdef0",
    "WORKSPACE_EXECUTION_ROLE_ARN": "arn:aws:iam::111122223333:role/workspace-execution",
    "WORKSPACE_TASK_ROLE_ARN": "arn:aws:iam::111122223333:role/workspace-task",
    "WORKSPACE_SUBNETS": "subnet-0a,subnet-0b",
    "DATASETS_BUCKET": "apranova-dev-storagedatasets-0a1b2c3d",
    "UPLOADS_BUCKET": "apranova-dev-storageuploads-0a1b2c3d",
}


def _arn(service: str, resource: str) -> str:
    return ACCOUNT_ARN.format(service=service, resource=resource)


def _parameter(suffix: str, prefix: str = PREFIX) -> str:
    return _arn("ssm", f"parameter{prefix}/{suffix}")


def _own(template, name: str) -> list[dict[str, Any]]:
    """The statements of ``name``'s role beyond the house ones, sorted."""
    statements = [
        s for s in role_statements(template, name) if not any(a.startswith(HOUSE_ACTIONS) for a in s["Action"])
    ]
    return sorted(statements, key=json.dumps)


def _only(template, type_: str, prefix: str = "") -> tuple[str, dict[str, Any]]:
    (found,) = [(i, r) for i, r in template.find_resources(type_).items() if i.startswith(prefix)]
    return found


def _ids(template) -> dict[str, str]:
    """Logical ids of the tools' and workspaces' resources."""
    return {
        "key": _only(template, "AWS::KMS::Key", "ToolsStudentSecretsKey")[0],
        "fs": _only(template, "AWS::EFS::FileSystem")[0],
        "cluster": _only(template, "AWS::ECS::Cluster")[0],
        "execution": _only(template, "AWS::IAM::Role", "WorkspacesExecutionRole")[0],
        "task": _only(template, "AWS::IAM::Role", "WorkspacesTaskRole")[0],
        "logs": _only(template, "AWS::Logs::LogGroup", "WorkspacesLogs")[0],
        "sg": _only(template, "AWS::EC2::SecurityGroup", "WorkspacesTaskSecurityGroup")[0],
        "queue": _only(template, "AWS::SQS::Queue", "SchedulesDeadLetters")[0],
    }


def _secrets(leaves: list[str], *, write: bool, decrypt: bool, key: str) -> list[dict[str, Any]]:
    """What ``StudentTools.grant_student_secrets`` should grant."""
    arns = [_parameter(f"students/*/{leaf}") for leaf in sorted(leaves)]
    actions = ["ssm:GetParameter", *(["ssm:DeleteParameter", "ssm:PutParameter"] if write else [])]
    kms = [*(["kms:Decrypt"] if decrypt else []), *(["kms:Encrypt"] if write else [])]
    statements = [{"Action": sorted(actions), "Effect": "Allow", "Resource": arns}]
    if kms:
        statements.append(
            {
                "Action": sorted(kms),
                "Condition": {
                    "StringEquals": {"kms:ViaService": VIA_SSM},
                    "StringLike": {"kms:EncryptionContext:PARAMETER_ARN": arns},
                },
                "Effect": "Allow",
                "Resource": [f"<{key}.Arn>"],
            }
        )
    return statements


def _tool_parameters(tool: str) -> list[dict[str, Any]]:
    arns = [_parameter(f"tools/{tool}/{leaf}") for leaf in TOOL_PARAMETERS[tool]]
    return [
        {"Action": ["ssm:GetParameter"], "Effect": "Allow", "Resource": sorted(arns)},
        {
            "Action": ["kms:Decrypt"],
            "Condition": {"StringEquals": {"kms:ViaService": VIA_SSM, "kms:EncryptionContext:PARAMETER_ARN": arns}},
            "Effect": "Allow",
            "Resource": [_arn("kms", "key/*")],
        },
    ]


def _merged(statements: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Statements as IAM policy minimization merges them: same action, effect and condition → one."""
    merged: dict[str, dict[str, Any]] = {}
    for statement in statements:
        key = json.dumps({k: v for k, v in statement.items() if k != "Resource"}, sort_keys=True)
        if key in merged:
            merged[key]["Resource"] = sorted({*merged[key]["Resource"], *statement["Resource"]})
        else:
            merged[key] = {**statement, "Resource": sorted(statement["Resource"])}
    return sorted(merged.values(), key=json.dumps)


def _normal(statements: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Statements with their actions folded per resource set, for comparing grants not layouts."""
    grants = set()
    for s in statements:
        for action in s["Action"]:
            grants.add(json.dumps({"Action": action, **{k: v for k, v in s.items() if k != "Action"}}, sort_keys=True))
    return sorted(grants)


# --- settings --------------------------------------------------------------------------------------


def _known(models: tuple[type[BaseModel], ...]) -> set[str]:
    return {field.upper() for model in models for field in model.model_fields} | {
        "POWERTOOLS_SERVICE_NAME",
        "POWERTOOLS_METRICS_NAMESPACE",
    }


def _plain(environment: dict[str, Any]) -> dict[str, str]:
    return {k: v if isinstance(v, str) else DEPLOYED.get(k, f"deployed-{k.lower()}") for k, v in environment.items()}


@pytest.mark.parametrize("name", sorted({*STEP_FUNCTIONS, *SETTINGS}))
def test_each_function_gets_exactly_the_settings_its_code_reads(template, name):
    models = SETTINGS.get(name, (DatabaseSettings,))
    environment = env(template, name)
    # Nothing the code does not read (a misspelt name would silently fall back to a default) ...
    assert set(environment) <= _known(models), (name, set(environment) - _known(models))
    # ... and everything it requires, with values its models accept.
    for model in models:
        required = {f.upper() for f, info in model.model_fields.items() if info.is_required()}
        assert required <= set(environment), (name, model.__name__, required - set(environment))
        load(model, _plain(environment))
    if name not in STEPS_WITHOUT_DATABASE:
        assert environment["DB_USER"] == "apranova_app" and "DB_HOST" in environment


def test_the_students_server_is_named_alike_to_every_function_that_reaches_it(students_server):
    template, host, secret = students_server.main, students_server.host, students_server.secret
    key = {"Fn::GetAtt": [_ids(template)["key"], "Arn"]}
    for name in ("provision-student-database", "student-database-watchdog"):
        students = env(template, name)
        assert students["STUDENTS_DB_NAME"] == STUDENTS_DB_NAME
        # The instance students sign in to (not the proxy), as its master user.
        assert students["STUDENTS_DB_HOST"] == students["STUDENTS_DB_ADMIN_HOST"] == host, name
        assert students["STUDENTS_DB_ADMIN_SECRET_ARN"] == secret, name
    assert env(template, "provision-student-database")["STUDENTS_DB_KMS_KEY_ID"] == key
    superset = env(template, "provision-superset")
    assert superset["STUDENTS_DB_HOST"] == host and superset["SUPERSET_KMS_KEY_ID"] == key
    # The instance forces TLS; Superset verifies the certificate and the name with the CA bundle.
    assert superset["SUPERSET_DB_SSLMODE"] == "verify-full"
    assert env(template, "tools")["STUDENTS_DB_HOST"] == host
    migrate = env(template, "migrate")
    assert migrate["STUDENTS_DB_NAME"] == STUDENTS_DB_NAME
    if students_server.dedicated:
        # The migration prepares the students' own instance, as its master user.
        assert migrate["STUDENTS_DB_SECRET_ARN"] == secret and migrate["DB_SECRET_ARN"] != secret
    else:
        assert "STUDENTS_DB_SECRET_ARN" not in migrate and migrate["DB_SECRET_ARN"] == secret
    outputs = template.to_json()["Outputs"]
    assert outputs["StudentsDatabaseHost"]["Value"] == host


def test_tool_settings_name_this_stage_s_resources(template):
    ids = _ids(template)
    key = {"Fn::GetAtt": [ids["key"], "Arn"]}
    for name in ("provision-workspace", "tools", "workspace-idle-stopper"):
        workspace = env(template, name)
        assert workspace["WORKSPACE_FILE_SYSTEM_ID"] == {"Ref": ids["fs"]}
        assert workspace["WORKSPACE_CLUSTER"] == {"Fn::GetAtt": [ids["cluster"], "Arn"]}
        assert workspace["WORKSPACE_SECURITY_GROUPS"] == {"Fn::GetAtt": [ids["sg"], "GroupId"]}
        assert workspace["WORKSPACE_EXECUTION_ROLE_ARN"] == {"Fn::GetAtt": [ids["execution"], "Arn"]}
        assert workspace["WORKSPACE_TASK_ROLE_ARN"] == {"Fn::GetAtt": [ids["task"], "Arn"]}
        assert workspace["WORKSPACE_KMS_KEY_ID"] == key
        assert workspace["WORKSPACE_LOG_GROUP"] == {"Ref": ids["logs"]}
        assert workspace["WORKSPACE_IMAGE"] == DEFAULT_IMAGE
        assert "WORKSPACE_URL_TEMPLATE" not in workspace  # the private IP unless configured
    for name, variables in env_with_prefix(template).items():
        assert variables == PREFIX, name
    # The functions' subnets are the workspaces' (private, with egress: the image comes through the NAT).
    subnets = env(template, "tools")["WORKSPACE_SUBNETS"]["Fn::Join"]
    assert subnets[0] == "," and len(subnets[1]) == 2


def env_with_prefix(template) -> dict[str, str]:
    return {
        name: env(template, name)["SSM_PREFIX"]
        for name in function_ids(template)
        if "SSM_PREFIX" in env(template, name)
    }


def test_the_migration_is_told_the_students_database(template):
    assert env(template, "migrate")["STUDENTS_DB_NAME"] == STUDENTS_DB_NAME


def test_every_email_sender_may_send_as_the_sender_only(template):
    sender = sorted(
        [
            _arn("ses", "identity/apranova.example"),
            _arn("ses", "identity/no-reply@apranova.example"),
            _arn("ses", "configuration-set/apranova-dev"),
        ]
    )
    for name in function_ids(template):
        statements = statements_with(role_statements(template, name), "ses:")
        # The export worker emails "your export is ready"; the purge and the payments reconcile job
        # alert the operators (and the job tells a refunded payer why, as the webhook does).
        if name in EMAIL_FUNCTIONS | EMAIL_STEPS | {"compliance-export", "compliance-purge", "payments-reconcile"}:
            assert statements == [{"Action": ["ses:SendEmail"], "Effect": "Allow", "Resource": sender}], name
        else:
            assert statements == [], name


def test_the_alert_step_stays_out_of_the_vpc_and_the_database(template):
    for name in STEPS_WITHOUT_DATABASE:
        props = template.find_resources("AWS::Lambda::Function")[function_ids(template)[name]]["Properties"]
        assert "VpcConfig" not in props and "DB_HOST" not in props["Environment"]["Variables"]
        assert statements_with(role_statements(template, name), "rds-db:") == []


# --- grants ----------------------------------------------------------------------------------------


def test_the_student_database_step_holds_exactly_its_grants(students_server):
    template = students_server.main
    ids = _ids(template)
    secret = flatten(students_server.secret)
    expected = [
        {"Action": ["secretsmanager:GetSecretValue"], "Effect": "Allow", "Resource": [secret]},
        # It writes the password, and reads it back to set it again on every run (a student may
        # have changed theirs: PostgreSQL lets any role).
        *_secrets(["db-password"], write=True, decrypt=True, key=ids["key"]),
    ]
    assert _own(template, "provision-student-database") == sorted(expected, key=json.dumps)


def test_the_superset_step_holds_exactly_its_grants(template):
    ids = _ids(template)
    expected = [
        *_tool_parameters("superset"),
        *_secrets(["db-password"], write=False, decrypt=True, key=ids["key"]),
        *_secrets(["superset-password"], write=True, decrypt=False, key=ids["key"]),
    ]
    assert _normal(_own(template, "provision-superset")) == _normal(_merged(expected))


@pytest.mark.parametrize(("step", "tool"), [("provision-jupyter", "jupyterhub"), ("provision-prefect", "prefect")])
def test_the_jupyter_and_prefect_steps_read_only_their_tool_s_parameters(template, step, tool):
    assert _own(template, step) == sorted(_tool_parameters(tool), key=json.dumps)


def _workspace_grants(ids: dict[str, str]) -> dict[str, list[dict[str, Any]]]:
    cluster = {"ArnEquals": {"ecs:cluster": f"<{ids['cluster']}.Arn>"}}
    families = [_arn("ecs", "task-definition/apranova-workspace-*")]
    tasks = [_arn("ecs", f"task/<{ids['cluster']}>/*")]
    access_points = _arn("elasticfilesystem", "access-point/*")
    pass_roles = {
        "Action": ["iam:PassRole"],
        "Condition": {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}},
        "Effect": "Allow",
        "Resource": sorted([f"<{ids['execution']}.Arn>", f"<{ids['task']}.Arn>"]),
    }
    list_tasks = {"Action": ["ecs:ListTasks"], "Condition": cluster, "Effect": "Allow", "Resource": ["*"]}
    tasks_in_cluster = {
        "Action": ["ecs:DescribeTasks", "ecs:StopTask"],
        "Condition": cluster,
        "Effect": "Allow",
        "Resource": tasks,
    }
    return {
        "provision-workspace": [
            {
                "Action": ["elasticfilesystem:CreateAccessPoint", "elasticfilesystem:DescribeAccessPoints"],
                "Effect": "Allow",
                "Resource": [f"<{ids['fs']}.Arn>"],
            },
            {
                "Action": ["elasticfilesystem:TagResource"],
                "Condition": {"StringEquals": {"elasticfilesystem:CreateAction": "CreateAccessPoint"}},
                "Effect": "Allow",
                "Resource": [f"<{ids['fs']}.Arn>", access_points],
            },
            {
                "Action": ["elasticfilesystem:DeleteAccessPoint", "elasticfilesystem:DescribeAccessPoints"],
                "Condition": {"StringEquals": {"aws:ResourceTag/apranova:tool": "WORKSPACE"}},
                "Effect": "Allow",
                "Resource": [access_points],
            },
            {
                "Action": ["ecs:DeleteTaskDefinitions", "ecs:ListTagsForResource", "ecs:RegisterTaskDefinition"],
                "Effect": "Allow",
                "Resource": families,
            },
            {
                "Action": ["ecs:TagResource"],
                "Condition": {"StringEquals": {"ecs:CreateAction": "RegisterTaskDefinition"}},
                "Effect": "Allow",
                "Resource": families,
            },
            {
                "Action": ["ecs:DeregisterTaskDefinition", "ecs:DescribeTaskDefinition", "ecs:ListTaskDefinitions"],
                "Effect": "Allow",
                "Resource": ["*"],
            },
            list_tasks,
            tasks_in_cluster,
            pass_roles,
            *_secrets(["workspace-password"], write=True, decrypt=False, key=ids["key"]),
        ],
        "tools": [
            {"Action": ["ecs:RunTask"], "Condition": cluster, "Effect": "Allow", "Resource": families},
            {
                "Action": ["ecs:TagResource"],
                "Condition": {"StringEquals": {"ecs:CreateAction": "RunTask"}},
                "Effect": "Allow",
                "Resource": tasks,
            },
            {"Action": ["ecs:ListTaskDefinitions"], "Effect": "Allow", "Resource": ["*"]},
            list_tasks,
            tasks_in_cluster,
            pass_roles,
            *_merged(
                [
                    # The student reads their own passwords (the route checks whose).
                    *_secrets(
                        ["db-password", "superset-password", "workspace-password"],
                        write=False,
                        decrypt=True,
                        key=ids["key"],
                    ),
                    # jupyter-access: the hub's address and the provisioner service's token (sign-in links).
                    *_tool_parameters("jupyterhub"),
                ]
            ),
        ],
        "workspace-idle-stopper": [
            list_tasks,
            tasks_in_cluster,
            # A run that still fails after Lambda's retries goes to the dead-letter queue.
            {
                "Action": ["sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:SendMessage"],
                "Effect": "Allow",
                "Resource": [f"<{ids['queue']}.Arn>"],
            },
        ],
    }


@pytest.mark.parametrize("name", ["provision-workspace", "tools", "workspace-idle-stopper"])
def test_the_workspace_callers_hold_exactly_their_grants(template, name):
    expected = _workspace_grants(_ids(template))[name]
    assert _normal(_own(template, name)) == _normal(expected)


def test_other_steps_hold_no_grant_beyond_the_house_ones_and_email(template):
    grants = {"provision-student-database", "provision-superset", "provision-jupyter", "provision-prefect"}
    grants |= {"provision-workspace"} | EMAIL_STEPS
    for name in set(STEP_FUNCTIONS) - grants:
        assert _own(template, name) == [], name


@pytest.mark.parametrize(
    ("prefix", "holders"),
    [
        ("secretsmanager:", {"migrate", "provision-student-database", "student-database-watchdog"}),
        ("ecs:", {"provision-workspace", "tools", "workspace-idle-stopper"}),
        ("elasticfilesystem:", {"provision-workspace"}),
        ("iam:", {"provision-workspace", "tools"}),
        ("kms:Encrypt", {"provision-student-database", "provision-superset", "provision-workspace"}),
        ("ssm:PutParameter", {"provision-student-database", "provision-superset", "provision-workspace"}),
        # The tool steps' deprovisioning, and the purge (whatever a student's path still holds).
        (
            "ssm:DeleteParameter",
            {"provision-student-database", "provision-superset", "provision-workspace", "compliance-purge"},
        ),
    ],
)
def test_sensitive_actions_are_held_only_by_their_callers(template, prefix, holders):
    holding = {name for name in function_ids(template) if statements_with(role_statements(template, name), prefix)}
    assert holding == holders


def test_no_function_holds_a_wildcard_action(template):
    for name in function_ids(template):
        for statement in role_statements(template, name):
            assert not [a for a in statement["Action"] if "*" in a], (name, statement["Action"])


def test_only_the_admin_step_the_shared_tools_the_proxy_and_the_migration_reach_the_instance(students_server):
    template = students_server.main
    sources = students_server.sources()
    functions = template.find_resources("AWS::Lambda::Function")

    def function_group(name: str) -> str:
        props = functions[function_ids(template)[name]]["Properties"]
        ((group,),) = [[g["Fn::GetAtt"][0] for g in props["VpcConfig"]["SecurityGroupIds"]]]
        return group

    groups = template.find_resources("AWS::EC2::SecurityGroup")
    (proxy,) = [g for g in groups if g.startswith("DatabaseProxyProxySecurityGroup")]
    (clients,) = [g for g in groups if g.startswith("ToolsStudentsDatabaseClients")]
    (rotation,) = [
        g
        for g in students_server.template.find_resources("AWS::EC2::SecurityGroup")
        if g.startswith(
            "DatabaseInstanceRotationSingleUserSecurityGroup"
            if not students_server.dedicated
            else "InstanceRotationSingleUserSecurityGroup"
        )
    ]
    # The students' own instance has no proxy: students and the tools connect to it directly.
    assert sources == {
        *([] if students_server.dedicated else [proxy]),
        rotation,  # Secrets Manager's rotation of the master password
        function_group("migrate"),
        function_group("provision-student-database"),
        function_group("student-database-watchdog"),  # ends student statements past the time limit
        clients,  # the shared tools the operator attaches it to
    }
    # The clients' group opens nothing but PostgreSQL (an inline rule: without one EC2 would add
    # its default "all outbound" rule to every host the group is attached to).
    assert groups[clients]["Properties"]["SecurityGroupEgress"] == [
        {
            "CidrIp": VPC_CIDR,
            "Description": "PostgreSQL within the VPC only",
            "FromPort": 5432,
            "IpProtocol": "tcp",
            "ToPort": 5432,
        }
    ]


# --- the workspaces' infrastructure ------------------------------------------------------------------


def test_workspace_files_are_encrypted_tls_only_and_open_to_no_one_by_policy(template):
    _id, fs = _only(template, "AWS::EFS::FileSystem")
    props = fs["Properties"]
    assert props["Encrypted"] is True
    (statement,) = props["FileSystemPolicy"]["Statement"]  # no Allow: access comes from IAM identities only
    assert statement == {
        "Action": "elasticfilesystem:*",
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        "Effect": "Deny",
        "Principal": {"AWS": "*"},
        "Resource": "*",
    }


def test_workspace_cluster_has_container_insights(template):
    _id, cluster = _only(template, "AWS::ECS::Cluster")
    assert cluster["Properties"]["ClusterName"] == "apranova-dev-workspaces"
    assert {"Name": "containerInsights", "Value": "enabled"} in cluster["Properties"]["ClusterSettings"]


def test_code_server_admits_nobody_until_the_front_door_exists_and_goes_out_by_https_only(template):
    ids = _ids(template)
    group = template.find_resources("AWS::EC2::SecurityGroup")[ids["sg"]]["Properties"]
    # Not from the VPC, not from another workspace: the front door (the tools issue) will be the only
    # way in (Workspaces.allow_from_front_door).
    assert "SecurityGroupIngress" not in group
    assert not [
        r
        for r in template.find_resources("AWS::EC2::SecurityGroupIngress").values()
        if r["Properties"]["GroupId"] == {"Fn::GetAtt": [ids["sg"], "GroupId"]}
    ]
    assert group["SecurityGroupEgress"] == [
        {"CidrIp": "0.0.0.0/0", "Description": "HTTPS out", "FromPort": 443, "IpProtocol": "tcp", "ToPort": 443}
    ]
    # The tasks reach their files (NFS) and nothing else reaches the file system.
    fs_targets = template.find_resources("AWS::EFS::MountTarget")
    assert len(fs_targets) == 2
    (fs_group,) = {t["Properties"]["SecurityGroups"][0]["Fn::GetAtt"][0] for t in fs_targets.values()}
    nfs = [
        r["Properties"]
        for r in template.find_resources("AWS::EC2::SecurityGroupIngress").values()
        if r["Properties"]["GroupId"] == {"Fn::GetAtt": [fs_group, "GroupId"]}
    ]
    assert [(r["SourceSecurityGroupId"]["Fn::GetAtt"][0], r["FromPort"]) for r in nfs] == [(ids["sg"], 2049)]
    # ... and out of the tasks' group: HTTPS anywhere (above), NFS to the file system only.
    egress = [
        r["Properties"]
        for r in template.find_resources("AWS::EC2::SecurityGroupEgress").values()
        if r["Properties"]["GroupId"] == {"Fn::GetAtt": [ids["sg"], "GroupId"]}
    ]
    assert [(e["DestinationSecurityGroupId"]["Fn::GetAtt"][0], e["FromPort"], e["ToPort"]) for e in egress] == [
        (fs_group, 2049, 2049)
    ]


def test_the_task_roles_are_ecs_s_and_hold_only_what_a_task_needs(template):
    ids = _ids(template)
    roles = template.find_resources("AWS::IAM::Role")
    for role in ("execution", "task"):
        (trust,) = roles[ids[role]]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        assert trust["Principal"] == {"Service": "ecs-tasks.amazonaws.com"}
        assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
        assert "ManagedPolicyArns" not in roles[ids[role]]["Properties"]
    # The student's container: mount and write its files through a mount target and an access
    # point (its own, named in its task definition), nothing else; never the file system's root.
    assert role_statements_by_id(template, ids["task"]) == [
        {
            "Action": ["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"],
            "Condition": {
                "ArnLike": {
                    "elasticfilesystem:AccessPointArn": (
                        "arn:<AWS::Partition>:elasticfilesystem:<AWS::Region>:<AWS::AccountId>:access-point/fsap-*"
                    )
                },
                "Bool": {"elasticfilesystem:AccessedViaMountTarget": "true"},
            },
            "Effect": "Allow",
            "Resource": [f"<{ids['fs']}.Arn>"],
        }
    ]
    password = _parameter("students/*/workspace-password")
    expected = [
        {
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Effect": "Allow",
            "Resource": [f"<{ids['logs']}.Arn>"],
        },
        {"Action": ["ssm:GetParameters"], "Effect": "Allow", "Resource": [password]},
        {
            "Action": ["kms:Decrypt"],
            "Condition": {
                "StringEquals": {"kms:ViaService": VIA_SSM},
                "StringLike": {"kms:EncryptionContext:PARAMETER_ARN": [password]},
            },
            "Effect": "Allow",
            "Resource": [f"<{ids['key']}.Arn>"],
        },
    ]
    assert sorted(role_statements_by_id(template, ids["execution"]), key=json.dumps) == sorted(expected, key=json.dumps)


def test_student_secrets_have_their_own_rotated_key(template):
    ids = _ids(template)
    key = template.find_resources("AWS::KMS::Key")[ids["key"]]
    assert key["Properties"]["EnableKeyRotation"] is True
    aliases = [a["Properties"] for a in template.find_resources("AWS::KMS::Alias").values()]
    assert {"AliasName": "alias/apranova-dev-student-secrets", "TargetKeyId": {"Fn::GetAtt": [ids["key"], "Arn"]}} in (
        aliases
    )


# --- the idle stopper ------------------------------------------------------------------------------


def test_the_idle_stopper_runs_every_ten_minutes_with_retries_and_a_dead_letter_queue(template):
    ids = _ids(template)
    function = function_ids(template)["workspace-idle-stopper"]
    props = template.find_resources("AWS::Lambda::Function")[function]["Properties"]
    assert props["Handler"] == "functions.provision.idle.lambda_handler"
    assert "VpcConfig" in props  # it records what it stops in the database
    _id, schedule = _only(template, "AWS::Scheduler::Schedule", "SchedulesIdleWorkspaces")
    schedule = schedule["Properties"]
    assert schedule["ScheduleExpression"] == "rate(10 minutes)" and schedule["State"] == "ENABLED"
    target = schedule["Target"]
    assert target["Arn"] == {"Fn::GetAtt": [function, "Arn"]}
    assert target["RetryPolicy"]["MaximumRetryAttempts"] >= 1
    assert 60 <= target["RetryPolicy"]["MaximumEventAgeInSeconds"] <= 600  # not past the next run
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [ids["queue"], "Arn"]}}
    # The schedule's role: invoke exactly this function, send to exactly this queue.
    role_id = target["RoleArn"]["Fn::GetAtt"][0]
    grants = _normal(role_statements_by_id(template, role_id))
    assert grants == _normal(
        [
            {
                "Action": ["lambda:InvokeFunction"],
                "Effect": "Allow",
                "Resource": sorted([f"<{function}.Arn>", f"<{function}.Arn>:*"]),
            },
            {"Action": ["sqs:SendMessage"], "Effect": "Allow", "Resource": [f"<{ids['queue']}.Arn>"]},
        ]
    )
    (trust,) = template.find_resources("AWS::IAM::Role")[role_id]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    # The scheduler invokes asynchronously: a run that raises is retried by Lambda, then dead-lettered.
    (invoke_config,) = [
        c["Properties"]
        for c in template.find_resources("AWS::Lambda::EventInvokeConfig").values()
        if c["Properties"]["FunctionName"] == {"Ref": function}
    ]
    assert invoke_config["MaximumRetryAttempts"] >= 1
    assert invoke_config["MaximumEventAgeInSeconds"] <= 600
    assert invoke_config["DestinationConfig"] == {"OnFailure": {"Destination": {"Fn::GetAtt": [ids["queue"], "Arn"]}}}


def test_the_dead_letter_queue_is_encrypted_and_tls_only(template):
    ids = _ids(template)
    queue = template.find_resources("AWS::SQS::Queue")[ids["queue"]]["Properties"]
    assert queue["SqsManagedSseEnabled"] is True
    policies = [
        p["Properties"]["PolicyDocument"]["Statement"]
        for p in template.find_resources("AWS::SQS::QueuePolicy").values()
        if {"Ref": ids["queue"]} in p["Properties"]["Queues"]
    ]
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        for statements in policies
        for s in statements
    )


# --- the tools API function's code ---------------------------------------------------------------------


def test_the_tools_asset_carries_the_provisioners_as_a_package(tmp_path):
    sources = function_sources("tools", FUNCTION_EXTRA_PATHS["tools"])
    CopyBundler(sources).try_bundle(str(tmp_path), image=DockerImage.from_registry("unused"))
    assert (tmp_path / "functions" / "provision" / "tools" / "workspace.py").is_file()
    assert {p.name for p in (tmp_path / "functions").iterdir()} == {"__init__.py", "tools", "provision"}
    # The handlers import from the asset and the layer (as in Lambda), not from the repository root.
    check = (
        "import sys; sys.path[:] = [p for p in sys.path if p.rstrip('/') != sys.argv[1]]; "
        "import functions.tools.handler, functions.provision.idle; "
        "assert functions.tools.handler.__file__.startswith(sys.argv[2])"
    )
    layer = str(ROOT / "layers" / "common" / "python")
    result = subprocess.run(  # noqa: S603 - this interpreter, a fixed program
        [sys.executable, "-c", check, str(ROOT), str(tmp_path)],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{layer}"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]


# --- context ---------------------------------------------------------------------------------------------


def test_a_configured_stage_wires_its_image_url_template_and_tool_urls(configured):
    _report, template = configured
    for name in ("provision-workspace", "tools", "workspace-idle-stopper"):
        workspace = env(template, name)
        assert workspace["WORKSPACE_IMAGE"] == CONFIGURED_CONTEXT["workspaceImage"]
        assert workspace["WORKSPACE_URL_TEMPLATE"] == CONFIGURED_CONTEXT["workspaceUrlTemplate"]
        assert workspace["SSM_PREFIX"] == "/apranova/staging"
        load(WorkspaceSettings, _plain(workspace))
    parameters = {
        p["Properties"]["Name"]: p["Properties"] for p in template.find_resources("AWS::SSM::Parameter").values()
    }
    assert {name: p["Value"] for name, p in parameters.items()} == {
        "/apranova/staging/tools/superset/url": "https://superset.apranova.example",
        "/apranova/staging/tools/jupyterhub/url": "https://hub.apranova.example",
        "/apranova/staging/tools/prefect/url": "http://prefect.internal.apranova.example:4200",
    }
    # Plain Strings only: no secret is ever in the template.
    assert {p["Type"] for p in parameters.values()} == {"String"}
    # An image in ECR: the execution role pulls that repository only.
    execution = _only(template, "AWS::IAM::Role", "WorkspacesExecutionRole")[0]
    pulls = statements_with(role_statements_by_id(template, execution), "ecr:")
    repository = "arn:<AWS::Partition>:ecr:eu-west-1:111122223333:repository/apranova/code-server"
    assert _normal(pulls) == _normal(
        [
            {
                "Action": ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                "Effect": "Allow",
                "Resource": [repository],
            },
            {"Action": ["ecr:GetAuthorizationToken"], "Effect": "Allow", "Resource": ["*"]},
        ]
    )


def test_the_default_stage_creates_no_parameter(template):
    assert template.find_resources("AWS::SSM::Parameter") == {}


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"workspaceImage": "not an image"}, "workspaceImage"),
        ({"workspaceUrlTemplate": "https://{host}/"}, "workspaceUrlTemplate"),
        ({"workspaceUrlTemplate": "ftp://{private_ip}/"}, "workspaceUrlTemplate"),
        ({"supersetUrl": "https://admin:secret@superset.example"}, "supersetUrl"),
        ({"jupyterhubUrl": "hub.example"}, "jupyterhubUrl"),
        ({"prefectUrl": "https://prefect.example/?token=x"}, "prefectUrl"),
    ],
)
def test_bad_tool_context_fails_the_synth_by_name(context, message):
    from cdk.app import build

    with pytest.raises(ValueError, match=message):
        build({"aws:cdk:bundling-stacks": [], **context})
