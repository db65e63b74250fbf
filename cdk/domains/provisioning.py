"""The provisioning domain's parts of the stack: the shared tools and their front door, each tool
step's settings and grants, and the students' database watchdog."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from aws_cdk import CfnOutput, Duration
from aws_cdk import aws_iam as iam

from cdk.constructs.database import APP_USER, PORT, Database
from cdk.constructs.identity import Identity
from cdk.constructs.nag import acknowledge
from cdk.constructs.python_function import PythonFunction
from cdk.constructs.shared_tools import FrontDoorSettings, SharedTools, ToolSecrets
from cdk.constructs.student_tools import STUDENTS_DB_NAME, StudentTools
from cdk.constructs.workspaces import Workspaces
from cdk.domains.common import schedule_of

if TYPE_CHECKING:
    from cdk.stacks.apranova_stack import ApraNovaStack


def shared_tools(
    stack: ApraNovaStack,
    *,
    stage: str,
    production: bool,
    front_door: FrontDoorSettings,
    database: Database,
    identity: Identity,
    tools: StudentTools,
    workspaces: Workspaces,
    built: tuple[str, ...],
    image_digests: Mapping[str, str],
) -> SharedTools:
    """The tools the operator did not bring, the workspace proxy and the load balancer in front of
    them (cdk/constructs/shared_tools.py), and what the main stack gives them: the way into the
    workspaces (from the proxy only), the proxy's database login (IAM, through the RDS proxy, as
    the application user: it only reads), and the migration's work for them (each tool's role and
    database; the provisioning steps' admin credentials copied into their SSM SecureStrings)."""
    # The credentials first (the migration reads them); the tools wait for the migration.
    tool_secrets = ToolSecrets(stack, "ToolSecrets", stage=stage, production=production, built_tools=built)
    shared = SharedTools(
        stack,
        "SharedTools",
        secrets=tool_secrets,
        stage=stage,
        vpc=database.vpc,
        production=production,
        front_door=front_door,
        user_pool=identity.user_pool,
        ssm_prefix=tools.prefix,
        app_database_security_group_id=database.instance.connections.security_groups[0].security_group_id,
        app_database_proxy_security_group_id=database.proxy.connections.security_groups[0].security_group_id,
        app_database_host=database.instance.db_instance_endpoint_address,
        students_server_security_group_id=tools.server.connections.security_groups[0].security_group_id,
        workspace_cluster=workspaces.cluster,
        built_tools=built,
        image_digests=image_digests,
        docker_hub_cache_prefix=f"dockerhub-{stage}" if workspaces.cache_rule is not None else None,
        proxy_environment={
            "WORKSPACE_CLUSTER": workspaces.cluster.cluster_arn,
            "DB_HOST": database.proxy.endpoint,
            "DB_PORT": str(PORT),
            "DB_NAME": "apranova",
            "DB_USER": APP_USER,
        },
    )
    if workspaces.cache_rule is not None:
        shared.node.add_dependency(workspaces.cache_rule)
    workspaces.allow_from_front_door(shared.proxy_security_group)
    proxy_role = shared.proxy_task.task_role
    database.proxy.grant_connect(proxy_role, APP_USER)
    proxy_role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["ecs:DescribeTasks"],
            resources=[
                stack.format_arn(service="ecs", resource="task", resource_name=f"apranova-{stage}-workspaces/*")
            ],
            conditions={"ArnEquals": {"ecs:cluster": workspaces.cluster.cluster_arn}},
        )
    )
    proxy_role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["ecs:ListTasks"],
            resources=["*"],
            conditions={"ArnEquals": {"ecs:cluster": workspaces.cluster.cluster_arn}},
        )
    )
    acknowledge(
        proxy_role,
        "AwsSolutions-IAM5[Resource::*]",
        "ecs:ListTasks takes only a container instance ARN (none on Fargate): limited to the workspaces' "
        "cluster by the ecs:cluster condition; the proxy lists one student's tasks by startedBy.",
    )
    acknowledge(
        proxy_role,
        "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ecs:<AWS::Region>:<AWS::AccountId>:task/"
        f"apranova-{stage}-workspaces/*]",
        "Task ids are made at run time: the proxy describes tasks of the workspaces' cluster only (ecs:cluster).",
    )
    # The migration makes each tool's role and database, and hands the admin credentials on.
    migrate = stack.migrate
    migrate.function.add_environment("SSM_PREFIX", tools.prefix)
    migrate.function.add_environment(
        "TOOL_DATABASES",
        stack.to_json_string({tool: shared.database_secrets[tool].secret_arn for tool in built}),
    )
    migrate.function.add_environment(
        "TOOL_ADMIN_SECRETS",
        stack.to_json_string({tool: shared.admin_secrets[tool].secret_arn for tool in built}),
    )
    for tool in built:
        shared.database_secrets[tool].grant_read(migrate.role)
        shared.admin_secrets[tool].grant_read(migrate.role)
    migrate.role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["ssm:PutParameter"],
            resources=[tools.parameter_arn(f"tools/{tool}/*") for tool in built],
        )
    )
    for tool in built:
        acknowledge(
            migrate.role,
            f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ssm:<AWS::Region>:<AWS::AccountId>:parameter{tools.prefix}/tools/{tool}/*]",
            f"The migration writes {tool}'s admin credential parameters (SecureStrings CloudFormation "
            "cannot create) from the stack's secret: this stage's tool folder only.",
        )
    for service, url in shared.urls.items():
        CfnOutput(stack, f"{service.capitalize()}Url", value=url, description=f"The {service} front door")
    CfnOutput(
        stack,
        "ToolsFrontDoorTarget",
        value=shared.load_balancer.load_balancer_dns_name,
        description=f"Point *.{front_door.domain} here when the stack does not manage its DNS (docs/operations.md)",
    )
    return shared


def student_database_watchdog(
    stack: ApraNovaStack, function, *, stage: str, tools: StudentTools, vpc
) -> PythonFunction:
    """Every minute: the time limit students cannot lift (functions/provision/student_database_watchdog.py),
    with the student-database step's settings and admin connection."""
    watchdog = function(
        "student-database-watchdog",
        environment={
            "SSM_PREFIX": tools.prefix,
            "STUDENTS_DB_NAME": STUDENTS_DB_NAME,
            **tools.students_db_environment(),
        },
        description=f"ApraNova student-database watchdog ({stage}); run by a schedule",
    )
    tools.connect_admin(watchdog)
    # A missed minute is made up by the next run: no retries that would overlap it.
    stack.schedules.add(
        "StudentDatabaseWatchdog",
        watchdog.function,
        schedule_of(watchdog),
        description=f"ApraNova {stage}: end student statements past the time limit",
        retry_attempts=0,
        max_event_age=Duration.seconds(60),
    )
    return watchdog


def tool_step(
    stack: ApraNovaStack, tool: str, step: PythonFunction, tools: StudentTools, workspaces: Workspaces
) -> None:
    """A tool step's settings (its provisioner's settings class) and exactly its grants."""
    role = step.role
    env: dict[str, str] = {"SSM_PREFIX": tools.prefix}
    if tool == "STUDENT_DATABASE":
        env.update(tools.students_db_environment())
        env.update({"STUDENTS_DB_NAME": STUDENTS_DB_NAME, "STUDENTS_DB_KMS_KEY_ID": tools.key.key_arn})
        tools.connect_admin(step)
        # It writes the password, and reads it back to set it again on every run (a student may
        # have changed it: PostgreSQL lets any role change its own password).
        tools.grant_student_secrets(role, ["db-password"], write=True, decrypt=True)
    elif tool == "SUPERSET":
        env.update(tools.students_db_environment())
        # The students' instance forces TLS (rds.force_ssl): Superset verifies it too, with the
        # region's RDS root CAs the provisioner hands it as the connection's server_cert.
        env.update({"SUPERSET_KMS_KEY_ID": tools.key.key_arn, "SUPERSET_DB_SSLMODE": "verify-full"})
        tools.grant_tool_parameters(role, "superset")
        tools.grant_student_secrets(role, ["db-password"], decrypt=True)
        tools.grant_student_secrets(role, ["superset-password"], write=True)
    elif tool == "JUPYTER":
        tools.grant_tool_parameters(role, "jupyterhub")
    elif tool == "PREFECT":
        tools.grant_tool_parameters(role, "prefect")
    elif tool == "WORKSPACE":
        env.update(workspaces.environment())
        workspaces.grant_provision(role)
    else:  # a tool added to the catalog needs its settings and grants here
        raise ValueError(f"no settings or grants for the {tool} step")
    for key, value in env.items():
        step.add_environment(key, value)
