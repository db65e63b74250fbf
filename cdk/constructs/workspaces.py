"""Where the FSD workspaces run: an encrypted EFS file system, an ECS cluster for the Fargate tasks,
their security group, the two roles the tasks use and their log group.

The per-student pieces (access point, password parameter, task definition, the task itself) are
made at run time by the workspace provisioner (functions/provision/tools/workspace.py): the
workspace step, the tools API function (start / stop / describe) and the idle stopper. Their grants
are here, each limited to what that caller does:

- the **step** creates and deletes access points on this file system (deletion only of access
  points tagged as workspaces), registers, deregisters and deletes the ``apranova-workspace-*``
  task definitions, stops a deprovisioned student's tasks in this cluster, passes the two task
  roles to ECS, and writes the students' ``workspace-password`` parameters;
- the **tools function** runs, lists, describes and stops tasks of those families in this cluster
  and passes the task roles;
- the **idle stopper** lists, describes and stops tasks in this cluster;
- the **execution role** (ECS itself: pulling the image, logging, injecting the password) reads
  the ``workspace-password`` parameters and writes to the workspace log group;
- the **task role** (the student's container) may only mount and write the file system through a
  mount target and an access point (``elasticfilesystem:AccessPointArn``); the access point in the
  task definition confines it to the student's directory and POSIX user.

The tasks' security group admits nothing until the workspaces' front door exists (a proxy or load
balancer that routes a student to their own task: ``allow_from_front_door``), and lets a task out
only to HTTPS (image, extensions, the SSM and logs APIs) and to its file system (NFS). With
``image_cache_secret_arn`` the image comes through an ECR pull-through cache of Docker Hub in this
account, not anonymously from Docker Hub.

A few ECS actions accept no resource (``DescribeTaskDefinition``, ``DeregisterTaskDefinition``,
``ListTaskDefinitions``) or only a container-instance one (``ListTasks``, scoped here by the
``ecs:cluster`` condition): they sit in a policy of their own so the acknowledgment of ``*`` names
exactly them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from aws_cdk import Fn, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_efs as efs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from constructs import Construct

from cdk.constructs.cfn import resource_of
from cdk.constructs.nag import acknowledge
from cdk.constructs.student_tools import StudentTools

# code-server (VS Code in the browser), multi-arch, pinned: an image change is a deliberate deploy.
DEFAULT_IMAGE = "codercom/code-server:4.96.4"
CONTAINER_PORT = 8080  # functions/provision/tools/workspace.py CONTAINER_PORT
FAMILY_PREFIX = "apranova-workspace-"  # functions/provision/tools/workspace.py FAMILY_PREFIX
TOOL_TAG = ("apranova:tool", "WORKSPACE")  # the provisioner tags every access point it creates
PASSWORD_LEAF = "workspace-password"  # noqa: S105 - a parameter name, not a password
# ECS actions that take no resource ARN; ListTasks takes only a container instance (none on Fargate).
UNSCOPED_ECS_ACTIONS = frozenset(
    {"ecs:DescribeTaskDefinition", "ecs:DeregisterTaskDefinition", "ecs:ListTaskDefinitions", "ecs:ListTasks"}
)
_ECR_IMAGE = re.compile(
    r"^(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/([a-z0-9._/-]+)(?::[\w.-]+|@sha256:[0-9a-f]{64})?$"
)
_IMAGE = re.compile(r"^[a-z0-9][a-z0-9._/:@-]{0,1023}$")
# ECR requires the Docker Hub credentials of a pull-through cache rule in a secret under this prefix.
CACHE_SECRET_PREFIX = "ecr-pullthroughcache/"  # noqa: S105 - a secret name prefix, not a secret
_CACHE_SECRET_ARN = re.compile(
    r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:ecr-pullthroughcache/[\w/+=.@-]+$"
)
DOCKER_HUB = "registry-1.docker.io"


def docker_hub_path(image: str) -> str | None:
    """The repository path and tag of a Docker Hub image as ECR's cache names it (official images
    under ``library/``), or None for an image of another registry."""
    first, _, rest = image.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        if first not in ("docker.io", "index.docker.io", "registry-1.docker.io"):
            return None
        image = rest
    return image if "/" in image.split(":")[0].split("@")[0] else f"library/{image}"


def workspace_image(value: str) -> str:
    """The ``workspaceImage`` context: a container image reference (registry/repository[:tag|@digest])."""
    if not _IMAGE.match(value) or value.endswith((":", "@", "/")):
        raise ValueError(f"workspaceImage must be a container image reference, not {value!r}")
    return value


def check_url_template(value: str) -> str:
    """The ``workspaceUrlTemplate`` context, checked as the provisioner checks it: a plain http(s) URL
    using only ``{private_ip}``, ``{port}``, ``{task_id}`` and ``{user_id}``."""
    try:
        url = value.format(private_ip="10.0.0.1", port=CONTAINER_PORT, task_id="t", user_id="u")
    except (KeyError, IndexError, ValueError):
        raise ValueError("workspaceUrlTemplate may use {private_ip}, {port}, {task_id} and {user_id} only") from None
    if not url.startswith(("http://", "https://")) or "@" in url:
        raise ValueError(f"workspaceUrlTemplate must be a plain http(s) URL, not {value!r}")
    return value


class Workspaces(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        vpc: ec2.IVpc,
        stage: str,
        tools: StudentTools,
        image: str = DEFAULT_IMAGE,
        url_template: str | None = None,
        production: bool = False,
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH,
        removal_policy: RemovalPolicy = RemovalPolicy.DESTROY,
        image_cache_secret_arn: str | None = None,
    ) -> None:
        super().__init__(scope, id)
        self._tools = tools
        self._stage = stage
        self.image = workspace_image(image)
        self.cache_rule: ecr.CfnPullThroughCacheRule | None = None
        self._url_template = check_url_template(url_template) if url_template else None
        stack = Stack.of(self)
        subnets = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)
        self.subnet_ids = vpc.select_subnets(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS).subnet_ids

        # No way in until the front door exists (allow_from_front_door): a workspace must not be
        # reachable from other workspaces or functions in the VPC. Out: HTTPS only (the image, code
        # extensions, SSM and CloudWatch Logs for ECS, git over HTTPS) and NFS to the file system
        # (added with its ingress below). DNS goes to the VPC's resolver, which security groups
        # do not filter.
        self.security_group = ec2.SecurityGroup(
            self,
            "TaskSecurityGroup",
            vpc=vpc,
            description="ApraNova workspace tasks (code-server): in from the front door only",
            allow_all_outbound=False,
        )
        self.security_group.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "HTTPS out")

        self.file_system = efs.FileSystem(
            self,
            "Files",
            vpc=vpc,
            vpc_subnets=subnets,
            encrypted=True,
            performance_mode=efs.PerformanceMode.GENERAL_PURPOSE,
            throughput_mode=efs.ThroughputMode.ELASTIC,
            lifecycle_policy=efs.LifecyclePolicy.AFTER_30_DAYS,
            out_of_infrequent_access_policy=efs.OutOfInfrequentAccessPolicy.AFTER_1_ACCESS,
            enable_automatic_backups=production,
            removal_policy=RemovalPolicy.RETAIN if production else removal_policy,
            # Not what it says: it only stops CDK adding its own statement, which would allow
            # ClientWrite and ClientRootAccess to every IAM principal. The policy below replaces EFS's
            # default (full access for anonymous clients) and allows nobody: a client needs IAM
            # authorization and its own identity policy (the task role's ClientMount/ClientWrite).
            allow_anonymous_access=True,
        )
        # Nothing reaches the files without TLS (the task definitions mount with transit encryption).
        self.file_system.add_to_resource_policy(
            iam.PolicyStatement(
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=["elasticfilesystem:*"],
                resources=["*"],
                conditions={"Bool": {"aws:SecureTransport": "false"}},
            )
        )
        self.file_system.connections.allow_default_port_from(self.security_group, "workspace tasks to their files")

        self.cluster = ecs.Cluster(
            self,
            "Cluster",
            vpc=vpc,
            cluster_name=f"apranova-{stage}-workspaces",
            container_insights_v2=ecs.ContainerInsights.ENABLED,
        )
        self.log_group = logs.LogGroup(self, "Logs", retention=log_retention, removal_policy=removal_policy)

        ecs_tasks = iam.ServicePrincipal("ecs-tasks.amazonaws.com").with_conditions(
            {"StringEquals": {"aws:SourceAccount": stack.account}}
        )
        self.execution_role = iam.Role(
            self, "ExecutionRole", assumed_by=ecs_tasks, description=f"ApraNova workspace tasks' ECS agent ({stage})"
        )
        self.log_group.grant_write(self.execution_role)
        # ECS injects the student's password (the container's ``secrets``) from SSM.
        password_arn = tools.student_parameter_arn(PASSWORD_LEAF)
        self.execution_role.add_to_principal_policy(
            iam.PolicyStatement(actions=["ssm:GetParameters"], resources=[password_arn])
        )
        self.execution_role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["kms:Decrypt"],
                resources=[tools.key.key_arn],
                conditions={
                    "StringEquals": {"kms:ViaService": f"ssm.{stack.region}.{stack.url_suffix}"},
                    "StringLike": {"kms:EncryptionContext:PARAMETER_ARN": [password_arn]},
                },
            )
        )
        acknowledge(
            self.execution_role,
            tools.student_secret_finding(PASSWORD_LEAF),
            "ECS reads the workspace password of whichever student's task it starts: the user id is "
            "known only at run time; the path is this stage's workspace-password leaf only.",
        )
        self._grant_image_pull()

        self.task_role = iam.Role(
            self,
            "TaskRole",
            assumed_by=ecs_tasks,
            description=f"ApraNova workspace task (a student's code-server, {stage})",
        )
        # Only through an access point: the student's task definition names theirs, which pins the
        # POSIX user and the root directory; mounting the file system's root is refused.
        self.task_role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"],
                resources=[self.file_system.file_system_arn],
                conditions={
                    "Bool": {"elasticfilesystem:AccessedViaMountTarget": "true"},
                    "ArnLike": {
                        "elasticfilesystem:AccessPointArn": stack.format_arn(
                            service="elasticfilesystem", resource="access-point", resource_name="fsap-*"
                        )
                    },
                },
            )
        )
        if image_cache_secret_arn:
            self._pull_through_cache(image_cache_secret_arn)

    def allow_from_front_door(self, front_door: ec2.ISecurityGroup) -> None:
        """The hook for the workspaces' front door (the workspace proxy, which routes each student to
        their own task: cdk/constructs/shared_tools.py): code-server's port from its security group,
        and from nothing else. The rule lives in the front door's (nested) stack, beside the proxy's
        egress to this port, so the main stack does not grow with it."""
        ec2.CfnSecurityGroupIngress(
            Stack.of(front_door),
            "WorkspacesFromFrontDoor",
            group_id=self.security_group.security_group_id,
            source_security_group_id=front_door.security_group_id,
            ip_protocol="tcp",
            from_port=CONTAINER_PORT,
            to_port=CONTAINER_PORT,
            description="code-server from the front door (the workspace proxy)",
        )

    # --- settings ----------------------------------------------------------------------------------

    def environment(self) -> dict[str, str]:
        """The provisioner's settings (``WorkspaceSettings``) for every function that builds it."""
        env = {
            "SSM_PREFIX": self._tools.prefix,
            "WORKSPACE_FILE_SYSTEM_ID": self.file_system.file_system_id,
            "WORKSPACE_CLUSTER": self.cluster.cluster_arn,
            "WORKSPACE_SUBNETS": Fn.join(",", self.subnet_ids),
            "WORKSPACE_SECURITY_GROUPS": self.security_group.security_group_id,
            "WORKSPACE_IMAGE": self.image,
            "WORKSPACE_EXECUTION_ROLE_ARN": self.execution_role.role_arn,
            "WORKSPACE_TASK_ROLE_ARN": self.task_role.role_arn,
            "WORKSPACE_KMS_KEY_ID": self._tools.key.key_arn,
            "WORKSPACE_LOG_GROUP": self.log_group.log_group_name,
        }
        if self._url_template:
            env["WORKSPACE_URL_TEMPLATE"] = self._url_template
        return env

    # --- ARNs --------------------------------------------------------------------------------------

    def _arn(self, resource: str, name: str) -> str:
        return Stack.of(self).format_arn(service="ecs", resource=resource, resource_name=name)

    @property
    def _families(self) -> str:
        return self._arn("task-definition", f"{FAMILY_PREFIX}*")

    @property
    def _tasks(self) -> str:
        return self._arn("task", f"{self.cluster.cluster_name}/*")

    def _in_cluster(self) -> dict:
        return {"ArnEquals": {"ecs:cluster": self.cluster.cluster_arn}}

    # --- grants ------------------------------------------------------------------------------------

    def grant_provision(self, role: iam.IRole) -> None:
        """The workspace step: access points, task definitions, the password, stopping tasks."""
        stack = Stack.of(self)
        fs_arn = self.file_system.file_system_arn
        access_points = stack.format_arn(service="elasticfilesystem", resource="access-point", resource_name="*")
        tagged = {"StringEquals": {f"aws:ResourceTag/{TOOL_TAG[0]}": TOOL_TAG[1]}}
        statements = [
            iam.PolicyStatement(
                actions=["elasticfilesystem:CreateAccessPoint", "elasticfilesystem:DescribeAccessPoints"],
                resources=[fs_arn],
            ),
            # Tagging happens inside CreateAccessPoint (the tags it is created with).
            iam.PolicyStatement(
                actions=["elasticfilesystem:TagResource"],
                resources=[fs_arn, access_points],
                conditions={"StringEquals": {"elasticfilesystem:CreateAction": "CreateAccessPoint"}},
            ),
            iam.PolicyStatement(
                actions=["elasticfilesystem:DeleteAccessPoint", "elasticfilesystem:DescribeAccessPoints"],
                resources=[access_points],
                conditions=tagged,
            ),
            iam.PolicyStatement(
                actions=["ecs:DeleteTaskDefinitions", "ecs:ListTagsForResource", "ecs:RegisterTaskDefinition"],
                resources=[self._families],
            ),
            iam.PolicyStatement(
                actions=["ecs:TagResource"],
                resources=[self._families],
                conditions={"StringEquals": {"ecs:CreateAction": "RegisterTaskDefinition"}},
            ),
            iam.PolicyStatement(
                actions=["ecs:DescribeTasks", "ecs:StopTask"], resources=[self._tasks], conditions=self._in_cluster()
            ),
        ]
        for statement in statements:
            role.add_to_principal_policy(statement)
        self._grant_pass_roles(role)
        self._tools.grant_student_secrets(role, [PASSWORD_LEAF], write=True)
        self._unscoped(
            role,
            "Provision",
            ["ecs:DeregisterTaskDefinition", "ecs:DescribeTaskDefinition", "ecs:ListTaskDefinitions", "ecs:ListTasks"],
        )
        acknowledge(
            role,
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:elasticfilesystem:<AWS::Region>:<AWS::AccountId>:access-point/*]",
            "Access point ids are made at run time: describing and deleting is limited to access points "
            "tagged apranova:tool=WORKSPACE (aws:ResourceTag), tagging to the CreateAccessPoint call.",
        )
        self._acknowledge_families(role)
        self._acknowledge_tasks(role)

    def grant_start_stop(self, role: iam.IRole) -> None:
        """The tools API function: a student's task started, described, stopped."""
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=["ecs:RunTask"], resources=[self._families], conditions=self._in_cluster())
        )
        # RunTask tags the task it starts.
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["ecs:TagResource"],
                resources=[self._tasks],
                conditions={"StringEquals": {"ecs:CreateAction": "RunTask"}},
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["ecs:DescribeTasks", "ecs:StopTask"], resources=[self._tasks], conditions=self._in_cluster()
            )
        )
        self._grant_pass_roles(role)
        self._unscoped(role, "StartStop", ["ecs:ListTaskDefinitions", "ecs:ListTasks"])
        self._acknowledge_families(role)
        self._acknowledge_tasks(role)

    def grant_idle_stop(self, role: iam.IRole) -> None:
        """The idle stopper: the cluster's workspace tasks listed, described, stopped."""
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["ecs:DescribeTasks", "ecs:StopTask"], resources=[self._tasks], conditions=self._in_cluster()
            )
        )
        self._unscoped(role, "IdleStop", ["ecs:ListTasks"])
        self._acknowledge_tasks(role)

    def _grant_pass_roles(self, role: iam.IRole) -> None:
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=[self.execution_role.role_arn, self.task_role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}},
            )
        )

    def _unscoped(self, role: iam.IRole, id: str, actions: Sequence[str]) -> None:
        """ECS actions on ``*`` in a policy of their own (ListTasks only in this cluster)."""
        assert set(actions) <= UNSCOPED_ECS_ACTIONS, actions
        statements = []
        plain = sorted(set(actions) - {"ecs:ListTasks"})
        if plain:
            statements.append(iam.PolicyStatement(actions=plain, resources=["*"]))
        if "ecs:ListTasks" in actions:
            statements.append(
                iam.PolicyStatement(actions=["ecs:ListTasks"], resources=["*"], conditions=self._in_cluster())
            )
        policy = iam.Policy(self, f"{id}Unscoped", statements=statements)
        policy.attach_to_role(role)
        acknowledge(
            policy,
            "AwsSolutions-IAM5[Resource::*]",
            "ECS authorizes DescribeTaskDefinition, DeregisterTaskDefinition and ListTaskDefinitions on "
            "no resource, and ListTasks only on container instances (Fargate has none): '*' is what AWS "
            "accepts. ListTasks is limited to the workspace cluster (ecs:cluster).",
        )

    def _acknowledge_families(self, role: iam.IRole) -> None:
        acknowledge(
            role,
            f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ecs:<AWS::Region>:<AWS::AccountId>:task-definition/{FAMILY_PREFIX}*]",
            "One task definition family per student (apranova-workspace-<user id>), named at run time: "
            "the grant covers only the workspace families and their revisions.",
        )

    def _acknowledge_tasks(self, role: iam.IRole) -> None:
        acknowledge(
            role,
            f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ecs:<AWS::Region>:<AWS::AccountId>:task/<{self._cluster_id}>/*]",
            "Workspace tasks get their ids when they start: the grant covers the tasks of the workspace "
            "cluster only (the resource path and the ecs:cluster condition).",
        )

    @property
    def _cluster_id(self) -> str:
        return Stack.of(self).get_logical_id(resource_of(self.cluster))

    def _pull_through_cache(self, secret_arn: str) -> None:
        """The image through an ECR pull-through cache of Docker Hub (``dockerhub-<stage>/...`` in
        this account and region), with the operator's Docker Hub credentials (ECR requires them)."""
        if not _CACHE_SECRET_ARN.match(secret_arn):
            raise ValueError(
                f"workspaceImageCacheSecretArn must be a Secrets Manager secret named {CACHE_SECRET_PREFIX}..., "
                f"not {secret_arn!r}"
            )
        path = docker_hub_path(self.image)
        if path is None:
            raise ValueError(f"workspaceImageCacheSecretArn caches Docker Hub images; {self.image!r} is not one")
        stack = Stack.of(self)
        prefix = f"dockerhub-{self._stage}"
        self.cache_rule = ecr.CfnPullThroughCacheRule(
            self,
            "ImageCache",
            ecr_repository_prefix=prefix,
            upstream_registry="docker-hub",
            upstream_registry_url=DOCKER_HUB,
            credential_arn=secret_arn,
        )
        self.image = f"{stack.account}.dkr.ecr.{stack.region}.{stack.url_suffix}/{prefix}/{path}"
        repositories = stack.format_arn(service="ecr", resource="repository", resource_name=f"{prefix}/*")
        # The first pull of an image creates its cached repository and imports it from Docker Hub.
        self.execution_role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=[
                    "ecr:BatchCheckLayerAvailability",
                    "ecr:BatchGetImage",
                    "ecr:BatchImportUpstreamImage",
                    "ecr:CreateRepository",
                    "ecr:GetDownloadUrlForLayer",
                ],
                resources=[repositories],
            )
        )
        self._registry_login()
        acknowledge(
            self.execution_role,
            f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ecr:<AWS::Region>:<AWS::AccountId>:repository/{prefix}/*]",
            "ECR's pull-through cache makes one repository per cached Docker Hub image under the rule's "
            "prefix, at the first pull: the execution role may create, import and pull those, nothing else.",
        )

    def _registry_login(self) -> None:
        policy = iam.Policy(
            self,
            "RegistryLogin",
            statements=[iam.PolicyStatement(actions=["ecr:GetAuthorizationToken"], resources=["*"])],
        )
        policy.attach_to_role(self.execution_role)
        acknowledge(
            policy,
            "AwsSolutions-IAM5[Resource::*]",
            "ecr:GetAuthorizationToken authorizes no resource ('*' is the only form AWS accepts); the image "
            "pull itself is limited to the configured repository.",
        )

    def _grant_image_pull(self) -> None:
        """An image in this account's ECR: pulling that repository only. Other registries need no grant
        (public images; a private registry other than ECR is not supported)."""
        match = _ECR_IMAGE.match(self.image)
        if not match:
            return
        account, region, repository = match.groups()
        stack = Stack.of(self)
        self.execution_role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                resources=[
                    stack.format_arn(
                        service="ecr", account=account, region=region, resource="repository", resource_name=repository
                    )
                ],
            )
        )
        self._registry_login()
