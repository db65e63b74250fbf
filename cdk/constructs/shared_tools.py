"""The shared tools on AWS and their one authenticated front door (issue 19), a nested stack.

JupyterHub, Apache Superset and the Prefect server run as ECS services on Fargate in the private
subnets, from the official images through ECR pull-through caches in this account (quay.io for
JupyterHub; Docker Hub for Superset and Prefect, through the workspaces' Docker Hub rule when the
operator gave its credentials), pinned by digest (``toolImageDigests``; docs/operations.md).

One internet-facing Application Load Balancer, HTTPS only, with an ACM certificate for
``*.<toolsDomain>`` (given by ARN, or DNS-validated in the operator's hosted zone), answers for
``jupyter.``, ``superset.``, ``prefect.`` and ``workspace.<toolsDomain>``. Every browser page goes
through the ``authenticate-cognito`` action against our user pool (a hosted-UI app client and a
prefix domain made here). Each tool's machine API (``/api/*`` for Superset and Prefect,
``/hub/api/*`` for JupyterHub) is forwarded without it: the provisioning steps call those with the
tool's own credentials (Superset's admin login, Prefect's auth string, the hub's service token), which
each tool checks itself.

``workspace.<toolsDomain>`` goes to the workspace proxy (proxy/workspace_proxy): it verifies the
signed identity the load balancer passes (``x-amzn-oidc-data``, ES256 against the region's ALB key
endpoint) and forwards only to that student's own running task, found from the user id alone: no
request can name another student's workspace. Workspace tasks accept code-server's port from the
proxy's security group only (``Workspaces.allow_from_front_door``).

Security groups: the tool tasks accept their port from the load balancer only; out, HTTPS anywhere
(images, packages, AWS APIs) and PostgreSQL to the two database instances (their metadata databases
on the application's, students' databases on the students' instance through
``StudentsDatabaseClients``).

Credentials are made here in Secrets Manager (generated, never in the template): each tool's
database login, Superset's admin password and secret key, Prefect's auth string, JupyterHub's
provisioner token and cookie secret. The migration's maintenance step creates each tool's role and
database from its secret (``TOOL_DATABASES``) and writes the admin credentials the provisioning
steps read into their SSM SecureStrings (``TOOL_ADMIN_SECRETS``). The tools' URL parameters are
written here; a tool the operator brings (its URL in context) is not built.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from aws_cdk import Duration, IgnoreMode, NestedStack, RemovalPolicy, Stack, Token
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_elasticloadbalancingv2_actions as elbv2_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_route53 as route53
from aws_cdk import aws_route53_targets as route53_targets
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from apranova import tls
from cdk.constructs.cfn import required
from cdk.constructs.database import PORT, VPC_CIDR
from cdk.constructs.nag import acknowledge

# Tool → (upstream registry of its official image, repository, default tag). The tag is a fallback
# for a stage without ``toolImageDigests``; production refuses to synthesize without digests.
TOOL_IMAGES: dict[str, tuple[str, str, str]] = {
    "jupyterhub": ("quay", "jupyterhub/jupyterhub", "5.2.1"),
    "superset": ("docker-hub", "apache/superset", "4.1.1"),
    "prefect": ("docker-hub", "prefecthq/prefect", "3.1.15-python3.12"),
}
TOOL_PORTS = {"jupyterhub": 8000, "superset": 8088, "prefect": 4200}
# The host label of each service under toolsDomain.
TOOL_HOSTS = {"jupyterhub": "jupyter", "superset": "superset", "prefect": "prefect", "workspace": "workspace"}
# The machine APIs forwarded without Cognito: each tool authenticates them itself.
TOOL_API_PATHS = {"jupyterhub": ["/hub/api/*"], "superset": ["/api/*"], "prefect": ["/api/*"]}
# The database each built tool keeps its own state in, on the application's instance (role = name).
TOOL_DATABASE_NAMES = {
    "jupyterhub": "apranova_jupyterhub",
    "superset": "apranova_superset",
    "prefect": "apranova_prefect",
}
# Maintained spawner that starts each student's single-user server as a Fargate task.
FARGATE_SPAWNER = "fargatespawner==0.0.27"
# The hub's one-time sign-in page (/hub/apranova-login, the tools API's "open JupyterHub" link): the
# module the local hub runs, shipped to the deployed hub as it is (an SSM parameter written beside the
# config at start).
HUB_LOGIN_MODULE = Path(__file__).resolve().parents[2] / "local" / "tools" / "jupyterhub_login.py"
# TLS to the application's database: the region's RDS root CAs (apranova.tls), written to this file
# at each tool's start; libpq (Superset, JupyterHub) and asyncpg (Prefect) both read PGSSLROOTCERT.
DB_CA_FILE = "/tmp/rds-ca.pem"  # noqa: S108 - inside the tool's own container
PROXY_PORT = 8080
WORKSPACE_PORT = 8080  # code-server in a workspace task (cdk/constructs/workspaces.py)
ROOT = Path(__file__).resolve().parents[2]
# The proxy image's build context: the repository root, down to its Dockerfile, its own package and
# the common layer's apranova package (dockerignore syntax).
PROXY_BUILD_EXCLUDE = [
    "*",
    "!proxy/Dockerfile",
    "!proxy/workspace_proxy",
    "!layers/common/python/apranova",
    "**/__pycache__",
]
QUAY = "quay.io"
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
HOST_NAME = re.compile(r"^(?=.{4,200}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
# Cognito prefix domains: lower-case letters, digits and hyphens, unique in the region.
AUTH_PREFIX = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


def tool_image_digests(value: object) -> dict[str, str]:
    """The ``toolImageDigests`` context: tool → ``sha256:<64 hex>`` for the built tools' images."""
    if value in (None, ""):
        return {}
    if isinstance(value, str):
        value = json.loads(value)
    if not isinstance(value, dict):
        raise ValueError("toolImageDigests must map jupyterhub, superset and prefect to sha256 digests")
    unknown = sorted(set(value) - set(TOOL_IMAGES))
    if unknown:
        raise ValueError(f"toolImageDigests: unknown tools {', '.join(unknown)}")
    for tool, digest in value.items():
        if not DIGEST.match(str(digest)):
            raise ValueError(f"toolImageDigests.{tool} must be sha256:<64 hex digits>, not {digest!r}")
    return {str(k): str(v) for k, v in value.items()}


@dataclass(frozen=True)
class FrontDoorSettings:
    """Context of the front door: ``toolsDomain`` and either ``toolsCertificateArn`` or
    ``toolsHostedZoneId`` (a DNS-validated certificate and the hosts' alias records in that zone)."""

    domain: str
    certificate_arn: str | None = None
    hosted_zone_id: str | None = None
    auth_domain_prefix: str | None = None

    def __post_init__(self) -> None:
        if not HOST_NAME.match(self.domain):
            raise ValueError(f"toolsDomain must be a lower-case host name, not {self.domain!r}")
        if not (self.certificate_arn or self.hosted_zone_id):
            raise ValueError("toolsDomain needs toolsCertificateArn or toolsHostedZoneId (a DNS-validated certificate)")
        if self.auth_domain_prefix and not AUTH_PREFIX.match(self.auth_domain_prefix):
            raise ValueError(f"toolsAuthDomainPrefix must be a Cognito prefix domain, not {self.auth_domain_prefix!r}")

    def url(self, service: str) -> str:
        return f"https://{TOOL_HOSTS[service]}.{self.domain}"


class SharedTools(NestedStack):
    """``load_balancer``, ``proxy_security_group``, ``task_security_group``, ``services``,
    ``urls`` (service → public URL), ``database_secrets`` and ``admin_secrets`` (tool → secret)."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        stage: str,
        vpc: ec2.IVpc,
        production: bool,
        front_door: FrontDoorSettings,
        user_pool: cognito.IUserPool,
        ssm_prefix: str,
        app_database_security_group_id: str,
        app_database_proxy_security_group_id: str,
        app_database_host: str,
        students_server_security_group_id: str,
        workspace_cluster: ecs.ICluster,
        built_tools: tuple[str, ...],
        secrets: ToolSecrets,
        image_digests: Mapping[str, str] | None = None,
        docker_hub_cache_prefix: str | None = None,
        proxy_environment: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(scope, id, description=f"ApraNova ({stage}): the shared tools and their front door")
        self._stage = stage
        self._prefix = ssm_prefix
        self._digests = dict(image_digests or {})
        self._docker_hub_prefix = docker_hub_cache_prefix
        self.front_door = front_door
        self.urls = {service: front_door.url(service) for service in TOOL_HOSTS}
        removal = RemovalPolicy.RETAIN if production else RemovalPolicy.DESTROY
        stack = Stack.of(self)

        # --- network -------------------------------------------------------------------------------
        self.alb_security_group = ec2.SecurityGroup(
            self,
            "FrontDoorSecurityGroup",
            vpc=vpc,
            description="ApraNova tools' front door: HTTPS from anywhere",
            allow_all_outbound=False,
        )
        self.alb_security_group.add_ingress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "HTTPS from the internet")
        acknowledge(
            self.alb_security_group,
            "AwsSolutions-EC23",
            "The students' front door is a public HTTPS site: port 443 only, and every page behind it "
            "signs the student in with Cognito first (each tool's API checks its own credentials).",
        )
        self.task_security_group = ec2.SecurityGroup(
            self,
            "ToolTasksSecurityGroup",
            vpc=vpc,
            description="ApraNova shared tools' tasks: in from the front door only; out HTTPS and PostgreSQL",
            allow_all_outbound=False,
        )
        self.proxy_security_group = ec2.SecurityGroup(
            self,
            "WorkspaceProxySecurityGroup",
            vpc=vpc,
            description="ApraNova workspace proxy: in from the front door; out to workspaces and HTTPS",
            allow_all_outbound=False,
        )
        for group in (self.task_security_group, self.proxy_security_group):
            group.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "HTTPS out (images, packages, AWS APIs)")
        self.task_security_group.add_egress_rule(
            ec2.Peer.ipv4(VPC_CIDR), ec2.Port.tcp(PORT), "PostgreSQL: the tools' metadata and the students' databases"
        )
        # The proxy reads the student's workspace row (the application's database, through the RDS
        # proxy) and forwards to code-server in the student's task (the workspaces' rule admits it).
        self.proxy_security_group.add_egress_rule(ec2.Peer.ipv4(VPC_CIDR), ec2.Port.tcp(PORT), "PostgreSQL")
        self.proxy_security_group.add_egress_rule(
            ec2.Peer.ipv4(VPC_CIDR), ec2.Port.tcp(WORKSPACE_PORT), "code-server in the student's task"
        )
        # The main stack's groups admit these, with the rules kept here (the main stack is near
        # CloudFormation's resource limit).
        for rule_id, group_id, source, reason in (
            ("AppDatabaseFromTools", app_database_security_group_id, self.task_security_group, "tools' metadata"),
            ("AppDatabaseProxyFromProxy", app_database_proxy_security_group_id, self.proxy_security_group, "proxy"),
            # Superset, JupyterHub's single-user servers (in this group) and Prefect's flows connect
            # students to their own databases.
            ("StudentsDatabaseFromTools", students_server_security_group_id, self.task_security_group, "students"),
        ):
            ec2.CfnSecurityGroupIngress(
                self,
                rule_id,
                group_id=group_id,
                source_security_group_id=source.security_group_id,
                ip_protocol="tcp",
                from_port=PORT,
                to_port=PORT,
                description=f"PostgreSQL from the shared tools ({reason})",
            )

        # --- images ---------------------------------------------------------------------------------
        self.quay_cache = ecr.CfnPullThroughCacheRule(
            self,
            "QuayCache",
            ecr_repository_prefix=f"quay-{stage}",
            upstream_registry="quay",
            upstream_registry_url=QUAY,
        )
        self.execution_role = iam.Role(
            self,
            "ExecutionRole",
            assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com").with_conditions(
                {"StringEquals": {"aws:SourceAccount": stack.account}}
            ),
            description=f"ApraNova shared tools' ECS agent ({stage})",
        )
        cache_prefixes = [f"quay-{stage}", *([docker_hub_cache_prefix] if docker_hub_cache_prefix else [])]
        self.execution_role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=[
                    "ecr:BatchCheckLayerAvailability",
                    "ecr:BatchGetImage",
                    "ecr:BatchImportUpstreamImage",
                    "ecr:CreateRepository",
                    "ecr:GetDownloadUrlForLayer",
                ],
                resources=[
                    stack.format_arn(service="ecr", resource="repository", resource_name=f"{prefix}/*")
                    for prefix in cache_prefixes
                ],
            )
        )
        self.execution_role.add_to_principal_policy(
            iam.PolicyStatement(actions=["ecr:GetAuthorizationToken"], resources=["*"])
        )
        for prefix in cache_prefixes:
            acknowledge(
                self.execution_role,
                f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ecr:<AWS::Region>:<AWS::AccountId>:repository/{prefix}/*]",
                "ECR's pull-through cache makes one repository per cached upstream image under the rule's "
                "prefix at the first pull: the tools' ECS agent may create, import and pull those only.",
            )
        acknowledge(
            self.execution_role,
            "AwsSolutions-IAM5[Resource::*]",
            "ecr:GetAuthorizationToken takes no resource: it only issues the registry login token.",
        )

        self.database_secrets = secrets.database_secrets
        self.admin_secrets = secrets.admin_secrets
        self.signing_secrets = secrets.signing_secrets

        # --- the services ---------------------------------------------------------------------------
        self.cluster = ecs.Cluster(
            self,
            "Cluster",
            vpc=vpc,
            cluster_name=f"apranova-{stage}-tools",
            container_insights_v2=ecs.ContainerInsights.ENABLED,
        )
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            retention=logs.RetentionDays.THREE_MONTHS if production else logs.RetentionDays.ONE_MONTH,
            removal_policy=removal,
        )
        private = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)
        self.services: dict[str, ecs.FargateService] = {}
        builders: dict[str, Callable[..., ecs.FargateTaskDefinition]] = {
            "superset": self._superset,
            "prefect": self._prefect,
            "jupyterhub": self._jupyterhub,
        }
        for tool in built_tools:
            task = builders[tool](app_database_host=app_database_host, workspace_cluster=workspace_cluster, vpc=vpc)
            self.services[tool] = self._service(tool, task, private, production)
        self.services["workspace"] = self._service(
            "workspace",
            self._proxy(proxy_environment or {}),
            private,
            production,
            security_group=self.proxy_security_group,
        )

        # --- the front door -------------------------------------------------------------------------
        self.load_balancer = elbv2.ApplicationLoadBalancer(
            self,
            "FrontDoor",
            vpc=vpc,
            internet_facing=True,
            security_group=self.alb_security_group,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC),
            drop_invalid_header_fields=True,
        )
        if Token.is_unresolved(stack.region):
            # ELB's log delivery account is per region: an environment-agnostic stack cannot name it.
            acknowledge(
                self.load_balancer,
                "AwsSolutions-ELB2",
                "An environment-agnostic stage (no account and region in context) cannot enable access "
                "logs (ELB's log delivery account is per region); a stage pinned to its region, as prod "
                "must be, logs every request to the bucket below.",
            )
        else:
            access_logs = s3.Bucket(
                self,
                "FrontDoorLogs",
                encryption=s3.BucketEncryption.S3_MANAGED,
                enforce_ssl=True,
                block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
                removal_policy=removal,
                auto_delete_objects=not production,
                lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(365 if production else 30))],
            )
            acknowledge(
                access_logs,
                "AwsSolutions-S1",
                "This bucket holds the front door's access logs; logging it into itself would loop.",
            )
            self.load_balancer.log_access_logs(access_logs, prefix="front-door")
        # The proxy trusts identity tokens signed for this load balancer only.
        required(self.proxy_task.default_container, "the proxy's container").add_environment(
            "LOAD_BALANCER_ARN", self.load_balancer.load_balancer_arn
        )
        self.certificate = self._certificate(front_door)
        self.listener = self.load_balancer.add_listener(
            "Https",
            port=443,
            certificates=[self.certificate],
            ssl_policy=elbv2.SslPolicy.RECOMMENDED_TLS,
            open=False,
            default_action=elbv2.ListenerAction.fixed_response(
                404, content_type="text/plain", message_body="Not found"
            ),
        )
        hosts = [f"{TOOL_HOSTS[service]}.{front_door.domain}" for service in self.services]
        self.auth_domain = cognito.UserPoolDomain(
            self,
            "SignInDomain",
            user_pool=user_pool,
            cognito_domain=cognito.CognitoDomainOptions(
                domain_prefix=front_door.auth_domain_prefix or f"apranova-{stage}-tools"
            ),
        )
        self.auth_client = cognito.UserPoolClient(
            self,
            "FrontDoorClient",
            user_pool=user_pool,
            generate_secret=True,  # the load balancer is a confidential client
            o_auth=cognito.OAuthSettings(
                flows=cognito.OAuthFlows(authorization_code_grant=True),
                scopes=[cognito.OAuthScope.OPENID, cognito.OAuthScope.EMAIL],
                callback_urls=[f"https://{host}/oauth2/idpresponse" for host in hosts],
            ),
            supported_identity_providers=[cognito.UserPoolClientIdentityProvider.COGNITO],
            prevent_user_existence_errors=True,
            access_token_validity=Duration.hours(1),
            id_token_validity=Duration.hours(1),
        )
        priority = 1
        for service, fargate in self.services.items():
            host = f"{TOOL_HOSTS[service]}.{front_door.domain}"
            targets = elbv2.ApplicationTargetGroup(
                self,
                f"{service.capitalize()}Targets",
                vpc=vpc,
                port=self._port(service),
                protocol=elbv2.ApplicationProtocol.HTTP,
                target_type=elbv2.TargetType.IP,
                targets=[fargate],
                health_check=elbv2.HealthCheck(path=self._health_path(service), healthy_http_codes="200-399"),
                deregistration_delay=Duration.seconds(30),
            )
            for path in TOOL_API_PATHS.get(service, []):
                self.listener.add_action(
                    f"{service.capitalize()}Api",
                    priority=priority,
                    conditions=[
                        elbv2.ListenerCondition.host_headers([host]),
                        elbv2.ListenerCondition.path_patterns([path]),
                    ],
                    action=elbv2.ListenerAction.forward([targets]),
                )
                priority += 1
            self.listener.add_action(
                f"{service.capitalize()}SignedIn",
                priority=100 + priority,
                conditions=[elbv2.ListenerCondition.host_headers([host])],
                action=elbv2_actions.AuthenticateCognitoAction(
                    user_pool=user_pool,
                    user_pool_client=self.auth_client,
                    user_pool_domain=self.auth_domain,
                    scope="openid email",
                    session_timeout=Duration.hours(8),
                    next=elbv2.ListenerAction.forward([targets]),
                ),
            )
            priority += 1
            # The task's own group (not the students' database client group the service also has).
            group_of_task = self.proxy_security_group if service == "workspace" else self.task_security_group
            group_of_task.add_ingress_rule(self.alb_security_group, ec2.Port.tcp(self._port(service)), "the front door")
            self.alb_security_group.add_egress_rule(
                group_of_task, ec2.Port.tcp(self._port(service)), f"{service} behind the front door"
            )
        # The load balancer talks to Cognito's token endpoint (HTTPS) and to the targets' ports only.
        self.alb_security_group.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "Cognito's token endpoint")
        if front_door.hosted_zone_id:
            zone = self._zone(front_door)
            for service in self.services:
                route53.ARecord(
                    self,
                    f"{service.capitalize()}Alias",
                    zone=zone,
                    record_name=f"{TOOL_HOSTS[service]}.{front_door.domain}",
                    target=route53.RecordTarget.from_alias(route53_targets.LoadBalancerTarget(self.load_balancer)),
                )

        for tool in built_tools:
            ssm.StringParameter(
                self,
                f"{tool.capitalize()}Url",
                parameter_name=f"{ssm_prefix}/tools/{tool}/url",
                string_value=self.urls[tool],
                description=f"ApraNova {stage}: {tool}'s base URL, behind the front door",
            )

    # --- pieces --------------------------------------------------------------------------------------

    @staticmethod
    def _port(service: str) -> int:
        return PROXY_PORT if service == "workspace" else TOOL_PORTS[service]

    @staticmethod
    def _health_path(service: str) -> str:
        return {"superset": "/health", "prefect": "/api/health", "jupyterhub": "/hub/health", "workspace": "/healthz"}[
            service
        ]

    def _zone(self, front_door: FrontDoorSettings) -> route53.IHostedZone:
        if not hasattr(self, "_hosted_zone"):
            self._hosted_zone = route53.HostedZone.from_hosted_zone_attributes(
                self, "Zone", hosted_zone_id=str(front_door.hosted_zone_id), zone_name=front_door.domain
            )
        return self._hosted_zone

    def _certificate(self, front_door: FrontDoorSettings) -> acm.ICertificate:
        if front_door.certificate_arn:
            return acm.Certificate.from_certificate_arn(self, "Certificate", front_door.certificate_arn)
        return acm.Certificate(
            self,
            "Certificate",
            domain_name=f"*.{front_door.domain}",
            validation=acm.CertificateValidation.from_dns(self._zone(front_door)),
        )

    def image(self, tool: str) -> ecs.ContainerImage:
        """The tool's official image through this account's pull-through cache, by digest when pinned."""
        registry, repository, tag = TOOL_IMAGES[tool]
        reference = f"@{self._digests[tool]}" if tool in self._digests else f":{tag}"
        stack = Stack.of(self)
        ecr_host = f"{stack.account}.dkr.ecr.{stack.region}.{stack.url_suffix}"
        if registry == "quay":
            return ecs.ContainerImage.from_registry(f"{ecr_host}/quay-{self._stage}/{repository}{reference}")
        if self._docker_hub_prefix:
            return ecs.ContainerImage.from_registry(f"{ecr_host}/{self._docker_hub_prefix}/{repository}{reference}")
        # No Docker Hub credentials for a cache (a dev stage): pulled from Docker Hub itself.
        return ecs.ContainerImage.from_registry(f"{repository}{reference}")

    def _task(self, tool: str, cpu: int, memory: int) -> ecs.FargateTaskDefinition:
        task = ecs.FargateTaskDefinition(
            self,
            f"{tool.capitalize()}Task",
            cpu=cpu,
            memory_limit_mib=memory,
            execution_role=self.execution_role,
            family=f"apranova-{self._stage}-{tool}",
            runtime_platform=ecs.RuntimePlatform(
                cpu_architecture=ecs.CpuArchitecture.X86_64, operating_system_family=ecs.OperatingSystemFamily.LINUX
            ),
        )
        acknowledge(
            task,
            "AwsSolutions-ECS2",
            "The environment holds only names and addresses (database host and name, cluster, URLs, "
            "ports); every password, key and token comes from Secrets Manager or SSM as a secret.",
        )
        return task

    def _logging(self, tool: str) -> ecs.LogDriver:
        return ecs.LogDrivers.aws_logs(stream_prefix=tool, log_group=self.log_group)

    def _database_secrets(self, tool: str) -> dict[str, ecs.Secret]:
        secret = self.database_secrets[tool]
        return {
            "DB_USER": ecs.Secret.from_secrets_manager(secret, "username"),
            "DB_PASSWORD": ecs.Secret.from_secrets_manager(secret, "password"),
        }

    def _database_tls(self) -> tuple[str, dict[str, str], str]:
        """TLS to the application's database: (the sslmode, the container's environment, the shell
        step that writes the CA file). With the stack's region known: ``verify-full`` against that
        region's RDS root CAs (the instance's certificate and name are checked); an
        environment-agnostic stack cannot pick the region's CAs, so it encrypts (``require``)."""
        region = Stack.of(self).region
        if Token.is_unresolved(region):
            return "require", {}, ""
        pem = tls.ca_bundle_pem(region)
        return (
            "verify-full",
            {"DB_CA_BUNDLE_PEM": pem, "PGSSLROOTCERT": DB_CA_FILE},
            f'printf "%s" "$DB_CA_BUNDLE_PEM" > {DB_CA_FILE} && ',
        )

    def _superset(self, *, app_database_host: str, **_: object) -> ecs.FargateTaskDefinition:
        task = self._task("superset", 1024, 2048)
        sslmode, tls_environment, write_ca = self._database_tls()
        config = ssm.StringParameter(
            self,
            "SupersetConfig",
            parameter_name=f"{self._prefix}/tools/superset/config",
            description="ApraNova: superset_config.py of the shared Superset",
            string_value="\n".join(
                [
                    "import os",
                    "SECRET_KEY = os.environ['SUPERSET_SECRET_KEY']",
                    "SQLALCHEMY_DATABASE_URI = (f\"postgresql+psycopg2://{os.environ['DB_USER']}:{os.environ['DB_PASSWORD']}\"",
                    f"    f\"@{{os.environ['DB_HOST']}}:5432/{{os.environ['DB_NAME']}}?sslmode={sslmode}\")",
                    "ENABLE_PROXY_FIX = True  # behind the front door: the scheme and host it was reached by",
                    "TALISMAN_ENABLED = True",
                    "SESSION_COOKIE_SECURE = True",
                    "WTF_CSRF_ENABLED = True",
                ]
            ),
        )
        admin = self.admin_secrets["superset"]
        task.add_container(
            "superset",
            image=self.image("superset"),
            logging=self._logging("superset"),
            port_mappings=[ecs.PortMapping(container_port=TOOL_PORTS["superset"])],
            environment={
                "DB_HOST": app_database_host,
                "DB_NAME": TOOL_DATABASE_NAMES["superset"],
                "SUPERSET_CONFIG_PATH": "/app/superset_home/superset_config.py",
                **tls_environment,
            },
            secrets={
                **self._database_secrets("superset"),
                "SUPERSET_CONFIG": ecs.Secret.from_ssm_parameter(config),
                "SUPERSET_SECRET_KEY": ecs.Secret.from_secrets_manager(self.signing_secrets["superset"]),
                "ADMIN_USERNAME": ecs.Secret.from_secrets_manager(admin, "username"),
                "ADMIN_PASSWORD": ecs.Secret.from_secrets_manager(admin, "password"),
            },
            # The database and its role exist (the migration); the schema and the provisioner's
            # admin account are made idempotently at every start.
            entry_point=["sh", "-c"],
            command=[
                write_ca + 'printf "%s" "$SUPERSET_CONFIG" > /app/superset_home/superset_config.py'
                " && superset db upgrade"
                ' && (superset fab create-admin --username "$ADMIN_USERNAME"'
                " --firstname ApraNova --lastname Provisioner"
                ' --email provisioner@apranova.invalid --password "$ADMIN_PASSWORD" || true)'
                " && superset init"
                " && exec gunicorn -w 4 -k gthread --threads 8 -b 0.0.0.0:8088 --timeout 120"
                " 'superset.app:create_app()'"
            ],
        )
        return task

    def _prefect(self, *, app_database_host: str, **_: object) -> ecs.FargateTaskDefinition:
        task = self._task("prefect", 512, 1024)
        admin = self.admin_secrets["prefect"]
        sslmode, tls_environment, write_ca = self._database_tls()
        task.add_container(
            "prefect",
            image=self.image("prefect"),
            logging=self._logging("prefect"),
            port_mappings=[ecs.PortMapping(container_port=TOOL_PORTS["prefect"])],
            environment={
                "DB_HOST": app_database_host,
                "DB_NAME": TOOL_DATABASE_NAMES["prefect"],
                "PREFECT_UI_API_URL": f"{self.urls['prefect']}/api",
                "PREFECT_SERVER_API_HOST": "0.0.0.0",  # noqa: S104 - inside the task; the SG admits the front door only
                **tls_environment,
            },
            secrets={
                **self._database_secrets("prefect"),
                "ADMIN_USERNAME": ecs.Secret.from_secrets_manager(admin, "username"),
                "ADMIN_PASSWORD": ecs.Secret.from_secrets_manager(admin, "password"),
            },
            entry_point=["sh", "-c"],
            # asyncpg takes libpq's sslmode names as ``ssl`` (and the CA file from PGSSLROOTCERT).
            command=[
                write_ca + 'export PREFECT_API_DATABASE_CONNECTION_URL="postgresql+asyncpg://$DB_USER:$DB_PASSWORD'
                f'@$DB_HOST:5432/$DB_NAME?ssl={sslmode}"'
                ' PREFECT_SERVER_API_AUTH_STRING="$ADMIN_USERNAME:$ADMIN_PASSWORD"'
                " && exec prefect server start --host 0.0.0.0 --port 4200"
            ],
        )
        return task

    def _jupyterhub(
        self, *, app_database_host: str, workspace_cluster: ecs.ICluster, vpc: ec2.IVpc, **_: object
    ) -> ecs.FargateTaskDefinition:
        task = self._task("jupyterhub", 512, 1024)
        stack = Stack.of(self)
        sslmode, tls_environment, write_ca = self._database_tls()
        # The one-time sign-in page of the tools API's links, the same module the local hub runs.
        login = ssm.StringParameter(
            self,
            "JupyterhubLogin",
            parameter_name=f"{self._prefix}/tools/jupyterhub/login-module",
            description="ApraNova: jupyterhub_login.py (the hub's /hub/apranova-login page)",
            string_value=HUB_LOGIN_MODULE.read_text(),
        )
        # The hub starts each student's single-user server as a Fargate task in the workspaces'
        # cluster (FargateSpawner), in the tools' security group, reaching the students' database.
        config = ssm.StringParameter(
            self,
            "JupyterhubConfig",
            parameter_name=f"{self._prefix}/tools/jupyterhub/config",
            description="ApraNova: jupyterhub_config.py of the shared JupyterHub",
            string_value="\n".join(
                [
                    "import os",
                    "from fargatespawner import FargateSpawner, FargateSpawnerECSRoleAuthentication",
                    "c.JupyterHub.bind_url = 'http://0.0.0.0:8000'",
                    "c.JupyterHub.hub_connect_url = f\"http://{os.environ['HUB_HOST']}:8081\"",
                    "c.JupyterHub.hub_bind_url = 'http://0.0.0.0:8081'",
                    "c.JupyterHub.db_url = (f\"postgresql://{os.environ['DB_USER']}:{os.environ['DB_PASSWORD']}\"",
                    f"    f\"@{{os.environ['DB_HOST']}}:5432/{{os.environ['DB_NAME']}}?sslmode={sslmode}\")",
                    "c.JupyterHub.cookie_secret = bytes.fromhex(os.environ['COOKIE_SECRET'].encode().hex()[:64])",
                    "c.JupyterHub.services = [{'name': 'apranova-provisioner',",
                    "    'api_token': os.environ['PROVISIONER_TOKEN']}]",
                    "c.JupyterHub.load_roles = [{'name': 'apranova-provisioner', 'services': ['apranova-provisioner'],",
                    "    'scopes': ['admin:users', 'servers', 'tokens']}]",
                    # Students arrive only through the tools API's one-time links (a ticket the
                    # provisioner made); the hub has no password of its own to check.
                    "import sys",
                    "sys.path.insert(0, '/srv/jupyterhub')",
                    "from jupyterhub.auth import Authenticator",
                    "from jupyterhub_login import TicketLoginMixin",
                    "class ApraNovaAuthenticator(TicketLoginMixin, Authenticator):",
                    "    async def authenticate(self, handler, data):",
                    "        return None",
                    "c.JupyterHub.authenticator_class = ApraNovaAuthenticator",
                    "c.Authenticator.allow_all = False",
                    "c.Authenticator.allow_existing_users = True",
                    "c.JupyterHub.spawner_class = FargateSpawner",
                    "c.FargateSpawner.authentication_class = FargateSpawnerECSRoleAuthentication",
                    "c.FargateSpawner.aws_region = os.environ['AWS_REGION']",
                    "c.FargateSpawner.aws_ecs_host = f\"ecs.{os.environ['AWS_REGION']}.amazonaws.com\"",
                    "c.FargateSpawner.notebook_port = 8888",
                    "c.FargateSpawner.notebook_scheme = 'http'",
                    "c.FargateSpawner.get_run_task_args = lambda spawner: {",
                    "    'cluster': os.environ['SPAWN_CLUSTER'],",
                    "    'taskDefinition': os.environ['SPAWN_TASK_DEFINITION'],",
                    "    'launchType': 'FARGATE', 'count': 1, 'startedBy': 'jupyterhub',",
                    "    'networkConfiguration': {'awsvpcConfiguration': {'assignPublicIp': 'DISABLED',",
                    "        'subnets': os.environ['SPAWN_SUBNETS'].split(','),",
                    "        'securityGroups': os.environ['SPAWN_SECURITY_GROUPS'].split(',')}},",
                    "    'overrides': {'containerOverrides': [{'name': 'notebook',",
                    "        'command': spawner.cmd + [f'--port={spawner.notebook_port}'],",
                    "        'environment': [{'name': n, 'value': v} for n, v in spawner.get_env().items()]}]}}",
                ]
            ),
        )
        notebook = self._task("notebook", 512, 2048)
        notebook.add_container(
            "notebook",
            image=self.image("jupyterhub"),
            logging=self._logging("notebook"),
            port_mappings=[ecs.PortMapping(container_port=8888)],
            entry_point=["sh", "-c"],
            command=['pip install --no-cache-dir "jupyterlab==4.3.4" && exec jupyterhub-singleuser "$@"', "--"],
        )
        subnets = vpc.select_subnets(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS).subnet_ids
        secrets = self.admin_secrets["jupyterhub"]
        task.add_container(
            "jupyterhub",
            image=self.image("jupyterhub"),
            logging=self._logging("jupyterhub"),
            port_mappings=[
                ecs.PortMapping(container_port=TOOL_PORTS["jupyterhub"]),
                ecs.PortMapping(container_port=8081),
            ],
            environment={
                "DB_HOST": app_database_host,
                "DB_NAME": TOOL_DATABASE_NAMES["jupyterhub"],
                "SPAWN_CLUSTER": workspace_cluster.cluster_arn,
                "SPAWN_TASK_DEFINITION": notebook.task_definition_arn,
                "SPAWN_SUBNETS": ",".join(subnets),
                "SPAWN_SECURITY_GROUPS": self.task_security_group.security_group_id,
                **tls_environment,
            },
            secrets={
                **self._database_secrets("jupyterhub"),
                "HUB_CONFIG": ecs.Secret.from_ssm_parameter(config),
                "HUB_LOGIN": ecs.Secret.from_ssm_parameter(login),
                "COOKIE_SECRET": ecs.Secret.from_secrets_manager(self.signing_secrets["jupyterhub"]),
                "PROVISIONER_TOKEN": ecs.Secret.from_secrets_manager(secrets, "api-token"),
            },
            entry_point=["sh", "-c"],
            command=[
                write_ca + f'pip install --no-cache-dir "{FARGATE_SPAWNER}" "psycopg2-binary==2.9.10"'
                ' && export HUB_HOST="$(hostname -i | cut -d" " -f1)"'
                ' && printf "%s" "$HUB_CONFIG" > /srv/jupyterhub/jupyterhub_config.py'
                ' && printf "%s" "$HUB_LOGIN" > /srv/jupyterhub/jupyterhub_login.py'
                " && exec jupyterhub -f /srv/jupyterhub/jupyterhub_config.py"
            ],
        )
        # The hub's task role starts, watches and stops the notebook tasks of exactly that definition.
        notebook_family = stack.format_arn(
            service="ecs", resource="task-definition", resource_name=f"apranova-{self._stage}-notebook:*"
        )
        task.task_role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["ecs:RunTask"],
                resources=[notebook_family],
                conditions={"ArnEquals": {"ecs:cluster": workspace_cluster.cluster_arn}},
            )
        )
        task.task_role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["ecs:DescribeTasks", "ecs:StopTask"],
                resources=[
                    stack.format_arn(
                        service="ecs", resource="task", resource_name=f"apranova-{self._stage}-workspaces/*"
                    )
                ],
                conditions={"ArnEquals": {"ecs:cluster": workspace_cluster.cluster_arn}},
            )
        )
        task.task_role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["iam:PassRole"], resources=[self.execution_role.role_arn, notebook.task_role.role_arn]
            )
        )
        acknowledge(
            task.task_role,
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ecs:<AWS::Region>:<AWS::AccountId>:task-definition/"
            f"apranova-{self._stage}-notebook:*]",
            "RunTask on any revision of the notebook task definition (its revision changes with each deploy), "
            "in the workspaces' cluster only.",
        )
        acknowledge(
            task.task_role,
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ecs:<AWS::Region>:<AWS::AccountId>:task/"
            f"apranova-{self._stage}-workspaces/*]",
            "Task ids are made at run time: describing and stopping is limited to tasks of the workspaces' "
            "cluster (ecs:cluster).",
        )
        return task

    def _proxy(self, environment: Mapping[str, str]) -> ecs.FargateTaskDefinition:
        task = self._task("workspace-proxy", 256, 512)
        task.add_container(
            "proxy",
            # Built from the repository root, which the build sees only these paths of.
            image=ecs.ContainerImage.from_asset(
                str(ROOT),
                file="proxy/Dockerfile",
                ignore_mode=IgnoreMode.DOCKER,
                exclude=PROXY_BUILD_EXCLUDE,
                platform=ecr_assets.Platform.LINUX_AMD64,
            ),
            logging=self._logging("workspace-proxy"),
            port_mappings=[ecs.PortMapping(container_port=PROXY_PORT)],
            environment={**environment, "PROXY_PORT": str(PROXY_PORT)},
        )
        self.proxy_task = task
        return task

    def _service(
        self,
        service: str,
        task: ecs.FargateTaskDefinition,
        subnets: ec2.SubnetSelection,
        production: bool,
        security_group: ec2.ISecurityGroup | None = None,
    ) -> ecs.FargateService:
        return ecs.FargateService(
            self,
            f"{service.capitalize()}Service",
            cluster=self.cluster,
            task_definition=task,
            desired_count=1,
            vpc_subnets=subnets,
            assign_public_ip=False,
            security_groups=[security_group or self.task_security_group],
            min_healthy_percent=0 if service in ("jupyterhub", "superset") else 100,
            max_healthy_percent=200,
            circuit_breaker=ecs.DeploymentCircuitBreaker(rollback=True),
            health_check_grace_period=Duration.minutes(5),
        )


class ToolSecrets(NestedStack):
    """The built tools' credentials, generated in Secrets Manager (a nested stack of their own: the
    migration reads them before the tools start, and the tools' nested stack waits for the migration
    to have made their databases). ``database_secrets``, ``admin_secrets``, ``signing_secrets``."""

    def __init__(
        self, scope: Construct, id: str, *, stage: str, production: bool, built_tools: tuple[str, ...]
    ) -> None:
        super().__init__(scope, id, description=f"ApraNova ({stage}): the shared tools' credentials")
        removal = RemovalPolicy.RETAIN if production else RemovalPolicy.DESTROY
        self.database_secrets: dict[str, secretsmanager.Secret] = {}
        for tool in built_tools:
            self.database_secrets[tool] = secretsmanager.Secret(
                self,
                f"{tool.capitalize()}DatabaseSecret",
                description=f"ApraNova {stage}: {tool}'s own database login on the application's instance",
                generate_secret_string=secretsmanager.SecretStringGenerator(
                    secret_string_template=json.dumps(
                        {"username": TOOL_DATABASE_NAMES[tool], "dbname": TOOL_DATABASE_NAMES[tool]}
                    ),
                    generate_string_key="password",
                    exclude_punctuation=True,  # goes into a connection URL
                    password_length=40,
                ),
                removal_policy=removal,
            )
        admin_fields = {
            "superset": {"username": "apranova-provisioner"},
            "jupyterhub": {"service": "apranova-provisioner"},
            "prefect": {"username": "apranova"},
        }
        admin_keys = {"superset": "password", "jupyterhub": "api-token", "prefect": "password"}
        self.admin_secrets: dict[str, secretsmanager.Secret] = {}
        for tool in built_tools:
            self.admin_secrets[tool] = secretsmanager.Secret(
                self,
                f"{tool.capitalize()}AdminSecret",
                description=f"ApraNova {stage}: {tool}'s administrative credential (the provisioning steps')",
                generate_secret_string=secretsmanager.SecretStringGenerator(
                    secret_string_template=json.dumps(admin_fields[tool]),
                    generate_string_key=admin_keys[tool],
                    exclude_punctuation=True,
                    password_length=48,
                ),
                removal_policy=removal,
            )
        # Signing keys the tools need and nobody else reads.
        self.signing_secrets = {
            tool: secretsmanager.Secret(
                self,
                f"{tool.capitalize()}SigningKey",
                description=f"ApraNova {stage}: {tool}'s session signing key",
                generate_secret_string=secretsmanager.SecretStringGenerator(
                    exclude_punctuation=True, password_length=64
                ),
                removal_policy=removal,
            )
            for tool in built_tools
            if tool in ("superset", "jupyterhub")
        }
        for secret in [*self.database_secrets.values(), *self.admin_secrets.values(), *self.signing_secrets.values()]:
            acknowledge(
                secret,
                "AwsSolutions-SMG4",
                "A tool's own credential that its server reads only at start: rotating it needs the tool "
                "restarted with the new value (docs/operations.md, shared tools), not a Lambda rotation.",
            )
