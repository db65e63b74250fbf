"""Every Lambda function of the platform, one row each: what runs it, where it sits in the network,
its limits, and the AWS actions its role may call.

The route table (apranova/routes.py) says which function serves each route; this inventory says what
each function is. CDK (cdk/stacks/apranova_stack.py) builds every function from its row, the local
stack (local/server.py, local/stack.py, local/workflows.py) registers and schedules the same
handlers, and the workflow step catalog (functions/provision/catalog.py) is the step rows.
tests/infra/test_inventory.py fails when a handler exists in code but not here (or the reverse), and
when a synthesized function's timeout, memory, reserved concurrency, network or role differs from
its row. Adding a function is one row here and its code.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Trigger(StrEnum):
    ROUTE = "route"  # API Gateway, through the route table
    SCHEDULE = "schedule"  # EventBridge Scheduler (locally: the job timer and POST /_local/jobs/<name>)
    ASYNC = "async"  # invoked asynchronously by another function
    STEP = "step"  # a task of a Step Functions state machine
    DEPLOY = "deploy"  # run by the deploy (a CDK trigger)


class Network(StrEnum):
    OUTSIDE = "outside"  # not in the VPC: it reaches only AWS's public endpoints
    ISOLATED = "isolated"  # in the VPC, AWS through interface endpoints, no route to the internet
    EGRESS = "egress"  # in the VPC with a route through the NAT (Stripe, GitHub, the shared tools)


# What every function's role holds besides its row's actions: its logs and traces; in the VPC, its
# network interfaces; run asynchronously (a schedule, another function), its dead-letter queue.
BASELINE_ACTIONS = frozenset(
    {"logs:CreateLogStream", "logs:PutLogEvents", "xray:PutTelemetryRecords", "xray:PutTraceSegments"}
)
VPC_ACTIONS = frozenset(
    {
        "ec2:AssignPrivateIpAddresses",
        "ec2:CreateNetworkInterface",
        "ec2:DeleteNetworkInterface",
        "ec2:DescribeNetworkInterfaces",
        "ec2:DescribeSubnets",
        "ec2:UnassignPrivateIpAddresses",
    }
)
DEAD_LETTER_ACTIONS = frozenset({"sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:SendMessage"})

# Action groups the rows share.
DATABASE = ("rds-db:connect",)  # the application database, through the proxy with IAM auth
EMAIL = ("ses:SendEmail",)
PARAMETERS = ("ssm:GetParameter", "kms:Decrypt")  # SecureString parameters: Stripe, GitHub, tool settings
STUDENT_SECRETS = ("ssm:GetParameter", "ssm:PutParameter", "ssm:DeleteParameter", "kms:Encrypt", "kms:Decrypt")
PAY_FIRST_ACCOUNTS = (
    "cognito-idp:AdminAddUserToGroup",
    "cognito-idp:AdminCreateUser",
    "cognito-idp:AdminGetUser",
    "cognito-idp:AdminSetUserPassword",
)

ROUTE_TIMEOUT_S = 10  # under API Gateway's 30 s integration limit, with room for one retry
STEP_TIMEOUT_S = 60
TOOL_STEP_TIMEOUT_S = 120  # the tool steps call shared tools over HTTP (JupyterHub may wait for a stop)
MEMORY_MB = 512


@dataclass(frozen=True)
class Function:
    name: str  # the deployed name after "apranova-<stage>-"; a step's name is also its state name
    handler: str  # the module whose ``lambda_handler`` runs
    trigger: Trigger
    network: Network
    actions: tuple[str, ...]  # the AWS actions its role may call, besides the baseline
    description: str
    timeout_s: int = ROUTE_TIMEOUT_S
    memory_mb: int = MEMORY_MB
    reserved_concurrency: int | None = None  # a cap where a downstream must be protected
    schedule: str | None = None  # an EventBridge Scheduler expression
    local_job: str | None = None  # POST /_local/jobs/<local_job> runs it now in the local stack

    @property
    def in_vpc(self) -> bool:
        return self.network is not Network.OUTSIDE

    @property
    def uses_database(self) -> bool:
        """It connects to the application database through the proxy."""
        return "rds-db:connect" in self.actions

    @property
    def role_actions(self) -> frozenset[str]:
        """Everything its role may do: the baseline and its row's actions."""
        extra = VPC_ACTIONS if self.in_vpc else frozenset()
        if self.trigger in (Trigger.SCHEDULE, Trigger.ASYNC):
            extra |= DEAD_LETTER_ACTIONS
        return BASELINE_ACTIONS | extra | frozenset(self.actions)


def _route(name: str, description: str, *actions: str, network: Network = Network.ISOLATED, **limits) -> Function:
    handler = {"payments-webhook": "functions.payments.webhook"}.get(name, f"functions.{name}.handler")
    return Function(name, handler, Trigger.ROUTE, network, (*DATABASE, *actions), description, **limits)


def _step(
    module: str, description: str, *actions: str, tool: bool = False, network: Network = Network.ISOLATED, **limits
) -> Function:
    return Function(
        "provision-" + module.replace("_", "-"),
        f"functions.provision.steps.{module}",
        Trigger.STEP,
        network,
        (*DATABASE, *actions) if network is not Network.OUTSIDE else actions,
        description,
        timeout_s=TOOL_STEP_TIMEOUT_S if tool else STEP_TIMEOUT_S,
        **limits,
    )


FUNCTIONS: tuple[Function, ...] = (
    # The API (apranova/routes.py says which routes each serves).
    _route("health", "liveness and the database's readiness"),
    _route("curriculum", "tracks, projects, steps and the datasets' download links", "s3:GetObject"),
    _route(
        "auth",
        "sign-up, sign-in, refresh and the profile; sign-up compensation and password-reset sign-out",
        "cognito-idp:AdminAddUserToGroup",
        "cognito-idp:AdminDeleteUser",
        "cognito-idp:AdminUserGlobalSignOut",
        *EMAIL,
    ),
    _route(
        "admin",
        "the admin console: users, roles (group moves), payments, stats, manual enrollment",
        "cognito-idp:AdminAddUserToGroup",
        "cognito-idp:AdminRemoveUserFromGroup",
        "states:StartExecution",
    ),
    _route(
        "payments",
        "checkout sessions, payment intents, history and refund requests",
        *EMAIL,
        *PARAMETERS,
        network=Network.EGRESS,
    ),
    _route(
        "payments-webhook",
        "Stripe's events: payments enroll, refunds and lost disputes deprovision",
        *PAY_FIRST_ACCOUNTS,
        *EMAIL,
        *PARAMETERS,
        "states:StartExecution",
        network=Network.EGRESS,
        # Stripe retries any delivery we refuse for 3 days: the cap costs nothing, keeps a burst of
        # events from taking the proxy's connections from the API, and keeps 20 runs for payments.
        reserved_concurrency=20,
    ),
    _route(
        "tools",
        "the student's tools: credentials, sign-in links, the workspace's start and stop",
        *PARAMETERS,
        "ecs:DescribeTasks",
        "ecs:ListTaskDefinitions",
        "ecs:ListTasks",
        "ecs:RunTask",
        "ecs:StopTask",
        "ecs:TagResource",
        "iam:PassRole",
        network=Network.EGRESS,
    ),
    _route(
        "submissions",
        "deliverable submissions: upload links, links, repositories (GitHub), text",
        "s3:GetObject",
        "s3:ListBucket",
        "s3:PutObject",
        *EMAIL,
        *PARAMETERS,
        network=Network.EGRESS,
    ),
    _route("trainer", "the trainer's queue, reviews and students", "s3:GetObject", *EMAIL),
    _route(
        "compliance",
        "consents, data exports, account deletion and retention settings",
        "cognito-idp:AdminUserGlobalSignOut",
        "kms:Decrypt",
        "lambda:InvokeFunction",
        "s3:GetObject",
        *EMAIL,
    ),
    # The enrollment and deprovision workflows' steps (functions/provision/catalog.py).
    _step("record_payment", "the payment the enrollment is for, settled"),
    _step("enroll", "the enrollment row"),
    _step(
        "student_database",
        "the DP student's own database and login on the students' instance",
        *STUDENT_SECRETS,
        "secretsmanager:GetSecretValue",
        tool=True,
        # It signs in to the instance itself as the master user (not through the proxy).
        reserved_concurrency=5,
    ),
    # The shared tools' admin APIs (one Superset, Prefect and JupyterHub for every student): a burst
    # queues here; the state machines retry Lambda.TooManyRequestsException.
    _step(
        "superset",
        "the student's Superset account and database connection",
        *STUDENT_SECRETS,
        tool=True,
        network=Network.EGRESS,
        reserved_concurrency=5,
    ),
    _step(
        "prefect",
        "the student's Prefect work pool",
        *PARAMETERS,
        tool=True,
        network=Network.EGRESS,
        reserved_concurrency=5,
    ),
    _step(
        "jupyter",
        "the student's JupyterHub user",
        *PARAMETERS,
        tool=True,
        network=Network.EGRESS,
        reserved_concurrency=5,
    ),
    _step(
        "workspace",
        "the FSD student's workspace: EFS access point, task definition, password",
        "ecs:DeleteTaskDefinitions",
        "ecs:DeregisterTaskDefinition",
        "ecs:DescribeTaskDefinition",
        "ecs:DescribeTasks",
        "ecs:ListTagsForResource",
        "ecs:ListTaskDefinitions",
        "ecs:ListTasks",
        "ecs:RegisterTaskDefinition",
        "ecs:StopTask",
        "ecs:TagResource",
        "elasticfilesystem:CreateAccessPoint",
        "elasticfilesystem:DeleteAccessPoint",
        "elasticfilesystem:DescribeAccessPoints",
        "elasticfilesystem:TagResource",
        "iam:PassRole",
        "kms:Encrypt",
        "ssm:GetParameter",
        "ssm:PutParameter",
        "ssm:DeleteParameter",
        tool=True,
    ),
    _step("assign_trainer", "the trainer with the fewest students of the track, told by email", *EMAIL),
    _step("unlock_first_project", "project 1 unlocked"),
    _step("welcome_email", "the welcome email with the dashboard link", *EMAIL),
    _step("record_failure", "a failed enrollment recorded, the payment refunded by the operators"),
    # It only emails the operators, so it stays out of the VPC.
    _step("alert_ops", "the operators told of a failed enrollment", *EMAIL, network=Network.OUTSIDE),
    _step("record_deprovisioned", "the tools recorded as taken back"),
    # Jobs.
    Function(
        "payments-reconcile",
        "functions.payments.reconcile",
        Trigger.SCHEDULE,
        Network.EGRESS,
        (*DATABASE, *PAY_FIRST_ACCOUNTS, *EMAIL, *PARAMETERS, "states:StartExecution", "states:DescribeExecution"),
        "no paid student left behind: lost webhooks, paid payments that started nothing, the outbox",
        timeout_s=300,
        reserved_concurrency=1,  # one at a time: two runs would race to start the same enrollment
        # Often enough that a lost webhook costs a student minutes, not a day.
        schedule="rate(10 minutes)",
        local_job="reconcile",
    ),
    Function(
        "workspace-idle-stopper",
        "functions.provision.idle",
        Trigger.SCHEDULE,
        Network.ISOLATED,
        (*DATABASE, "ecs:DescribeTasks", "ecs:ListTasks", "ecs:StopTask"),
        "running workspaces nobody uses are stopped",
        timeout_s=120,
        reserved_concurrency=1,  # two runs would only race to stop the same tasks
        schedule="rate(10 minutes)",
        local_job="idle-workspaces",
    ),
    Function(
        "student-database-watchdog",
        "functions.provision.student_database_watchdog",
        Trigger.SCHEDULE,
        Network.ISOLATED,
        ("secretsmanager:GetSecretValue",),
        "student statements past the time limit ended, student role settings restored",
        timeout_s=50,  # under its one-minute rate: a run never overlaps the next
        schedule="rate(1 minute)",
        local_job="student-db-watchdog",
    ),
    Function(
        "compliance-export",
        "functions.compliance.export.worker",
        Trigger.ASYNC,
        Network.ISOLATED,
        (
            *DATABASE,
            "cognito-idp:AdminGetUser",
            "cognito-idp:AdminListGroupsForUser",
            "kms:Decrypt",
            "kms:GenerateDataKey",
            "s3:DeleteObject",
            "s3:GetObject",
            "s3:ListBucket",
            "s3:PutObject",
            *EMAIL,
        ),
        "a person's data export archive, built and mailed; started by the export route",
        timeout_s=300,
        memory_mb=1024,
    ),
    Function(
        "compliance-purge",
        "functions.compliance.erasure.purge.handler",
        Trigger.SCHEDULE,
        Network.ISOLATED,
        (
            *DATABASE,
            "cognito-idp:AdminDeleteUser",
            "s3:DeleteObject",
            "s3:DeleteObjectVersion",
            "s3:ListBucket",
            "s3:ListBucketVersions",
            *EMAIL,
            "ssm:DeleteParameter",
            "ssm:DeleteParameters",
            "ssm:GetParametersByPath",
            "states:DescribeExecution",
            "states:StartExecution",
        ),
        "accounts past their deletion grace period purged; daily, in the small hours (UTC)",
        timeout_s=900,  # it waits for each account's deprovision workflow
        reserved_concurrency=1,  # a retry must not overlap a run that is still going
        schedule="cron(0 3 * * ? *)",
        local_job="purge",
    ),
    Function(
        "compliance-retention",
        "functions.compliance.retention.handler",
        Trigger.SCHEDULE,
        Network.ISOLATED,
        (*DATABASE, "s3:DeleteObject", "s3:DeleteObjectVersion", "s3:ListBucket", "s3:ListBucketVersions"),
        "data past its retention period deleted; daily, after the purge",
        timeout_s=900,
        reserved_concurrency=1,
        schedule="cron(30 3 * * ? *)",
        local_job="retention",
    ),
    Function(
        "migrate",
        "functions.migrate.handler",
        Trigger.DEPLOY,
        Network.ISOLATED,
        (
            "s3:GetObject",
            "s3:ListBucket",
            "s3:PutObject",
            "secretsmanager:DescribeSecret",
            "secretsmanager:GetSecretValue",
        ),
        "migrations, seed and datasets; run by every deploy that changes it",
        timeout_s=300,
        memory_mb=1024,
        reserved_concurrency=1,  # two runs would migrate the same database
    ),
)

BY_NAME: dict[str, Function] = {f.name: f for f in FUNCTIONS}


def get(name: str) -> Function:
    return BY_NAME[name]


def of(trigger: Trigger) -> tuple[Function, ...]:
    return tuple(f for f in FUNCTIONS if f.trigger is trigger)


def local_jobs() -> dict[str, Function]:
    """The scheduled functions by their local job name (``POST /_local/jobs/<name>``)."""
    return {f.local_job: f for f in FUNCTIONS if f.local_job}
