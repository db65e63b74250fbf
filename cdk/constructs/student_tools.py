"""What the per-student tools share: the SSM prefix, the key of the students' secrets, the students'
database, the shared tools' URL parameters, and the grants that read and write them.

Per-student secrets (``{prefix}/students/<user id>/<tool>-password``) are SecureStrings that the
workflow steps write with this stack's customer-managed key, so every grant on them names that key
and the exact parameter path pattern (``kms:EncryptionContext:PARAMETER_ARN``: SSM binds each
ciphertext to its parameter). The shared tools' admin credentials (``{prefix}/tools/<tool>/...``)
are SecureStrings the operator creates (CloudFormation cannot create SecureStrings) with a key the
template cannot know: their decrypt grant is ``key/*``, but only through SSM and only for those
parameters. A tool's base URL is a plain String parameter: created here when the operator passes it
as context, else by the operator (docs/operations.md lists every name).

The students' databases live on the students' own PostgreSQL instance (cdk/constructs/
students_database.py), or on the application's when the stage shares it (``studentsDatabase=shared``,
dev only); never behind the proxy: the student-database step and the watchdog sign in as that
instance's master user to create roles and databases and end sessions. Shared tools that connect
students to it (Superset, JupyterHub, Prefect workers) get in through the ``StudentsDatabaseClients``
security group, which the operator attaches to them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

from aws_cdk import ArnFormat, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_rds as rds
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from cdk.constructs.database import PORT, VPC_CIDR, Database
from cdk.constructs.nag import acknowledge
from cdk.constructs.python_function import PythonFunction
from cdk.constructs.students_database import STUDENTS_DB_NAME, StudentsDatabase
from functions.provision.tools.student_database import SPARE_DATABASES

__all__ = ["STUDENTS_DB_NAME", "StudentTools"]
# The shared tools' SSM parameters, as the provisioners read them (functions/provision/tools/):
# tool folder under {prefix}/tools/ → the parameter leaves. "url" is a String, the rest SecureStrings.
TOOL_PARAMETERS: dict[str, tuple[str, ...]] = {
    "superset": ("url", "admin-username", "admin-password"),
    "jupyterhub": ("url", "api-token"),
    "prefect": ("url", "auth-string"),
}
# Context key of each tool's base URL (optional: the operator may create the parameter instead).
URL_CONTEXT = {"superset": "supersetUrl", "jupyterhub": "jupyterhubUrl", "prefect": "prefectUrl"}
KMS_ACKNOWLEDGMENT = "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:kms:<AWS::Region>:<AWS::AccountId>:key/*]"


def ssm_prefix(stage: str) -> str:
    return f"/apranova/{stage}"


def tool_url(key: str, value: str) -> str:
    """A shared tool's base URL from context: ``http(s)://host[:port][/path]``, nothing else."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise ValueError(f"{key} must be an http(s) base URL, not {value!r}")
    if parts.username or parts.password:
        raise ValueError(f"{key} must not hold credentials")
    return value.rstrip("/")


class StudentTools(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        stage: str,
        database: Database,
        production: bool,
        tool_urls: Mapping[str, str] | None = None,
        students_database: StudentsDatabase | None = None,
    ) -> None:
        """``students_database``: the students' own instance; None shares the application's."""
        super().__init__(scope, id)
        self.prefix = ssm_prefix(stage)
        self.students_database = students_database
        # The instance students sign in to, and its master secret (the provisioner's admin login).
        self.server: rds.DatabaseInstance = students_database.instance if students_database else database.instance
        self.server_secret: secretsmanager.ISecret = students_database.secret if students_database else database.secret
        # Losing the key loses every stored student password (reprovisioning makes new ones).
        self.key = kms.Key(
            self,
            "StudentSecretsKey",
            alias=f"alias/apranova-{stage}-student-secrets",
            description=f"ApraNova {stage}: per-student tool passwords in SSM",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN if production else RemovalPolicy.DESTROY,
        )
        self.students_db_clients = ec2.SecurityGroup(
            self,
            "StudentsDatabaseClients",
            vpc=database.vpc,
            description="Shared tools that connect students to their database (Superset, JupyterHub, Prefect)",
            allow_all_outbound=False,
        )
        self.server.connections.allow_default_port_from(
            self.students_db_clients, "shared tools to the students' database"
        )
        # An inline egress rule: without one, CloudFormation gives the group EC2's default "all
        # outbound" rule (CDK writes the rule above as a separate resource), which would widen the
        # egress of every host the operator attaches the group to.
        self.students_db_clients.add_egress_rule(
            ec2.Peer.ipv4(VPC_CIDR), ec2.Port.tcp(PORT), "PostgreSQL within the VPC only"
        )
        for tool, url in (tool_urls or {}).items():
            ssm.StringParameter(
                self,
                f"{tool.capitalize()}Url",
                parameter_name=f"{self.prefix}/tools/{tool}/url",
                string_value=tool_url(URL_CONTEXT[tool], url),
                description=f"ApraNova {stage}: the shared {tool} deployment's base URL",
            )

    # --- names -----------------------------------------------------------------------------------

    @property
    def students_db_host(self) -> str:
        """Where students and the tools connect: the instance endpoint (TLS is forced there)."""
        return self.server.db_instance_endpoint_address

    def parameter_arn(self, suffix: str) -> str:
        """The ARN of ``{prefix}/<suffix>`` (``*`` allowed in ``suffix``)."""
        return Stack.of(self).format_arn(
            service="ssm",
            resource="parameter",
            resource_name=f"{self.prefix}/{suffix}".lstrip("/"),
            arn_format=ArnFormat.SLASH_RESOURCE_NAME,
        )

    def student_parameter_arn(self, leaf: str) -> str:
        return self.parameter_arn(f"students/*/{leaf}")

    def student_secret_finding(self, leaf: str) -> str:
        """cdk-nag's IAM5 finding for a grant on every student's ``leaf`` parameter."""
        return (
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ssm:<AWS::Region>:<AWS::AccountId>:"
            f"parameter{self.prefix}/students/*/{leaf}]"
        )

    # --- grants ----------------------------------------------------------------------------------

    def _via_ssm(self) -> str:
        stack = Stack.of(self)
        return f"ssm.{stack.region}.{stack.url_suffix}"

    def grant_student_secrets(
        self, role: iam.IRole, leaves: Iterable[str], *, write: bool = False, decrypt: bool = False
    ) -> None:
        """``ssm:GetParameter`` (and Put/Delete with ``write``) on ``{prefix}/students/*/<leaf>``;
        ``kms:Encrypt`` with ``write`` and ``kms:Decrypt`` with ``decrypt``, on this key, through SSM,
        for those parameters only."""
        leaves = sorted(leaves)
        arns = [self.student_parameter_arn(leaf) for leaf in leaves]
        actions = ["ssm:GetParameter", *(["ssm:DeleteParameter", "ssm:PutParameter"] if write else [])]
        role.add_to_principal_policy(iam.PolicyStatement(actions=actions, resources=arns))
        kms_actions = [*(["kms:Decrypt"] if decrypt else []), *(["kms:Encrypt"] if write else [])]
        if kms_actions:
            role.add_to_principal_policy(
                iam.PolicyStatement(
                    actions=kms_actions,
                    resources=[self.key.key_arn],
                    conditions={
                        "StringEquals": {"kms:ViaService": self._via_ssm()},
                        "StringLike": {"kms:EncryptionContext:PARAMETER_ARN": arns},
                    },
                )
            )
        for leaf in leaves:
            acknowledge(
                role,
                self.student_secret_finding(leaf),
                f"Every student's {leaf} parameter: the user id is known only at run time. The path "
                "is this stage's and the parameter's own leaf name, nothing broader.",
            )

    def grant_tool_parameters(self, role: iam.IRole, tool: str) -> None:
        """``ssm:GetParameter`` on exactly the shared tool's parameters, and decrypting them (their
        key is the operator's) through SSM for exactly those parameters."""
        arns = [self.parameter_arn(f"tools/{tool}/{leaf}") for leaf in TOOL_PARAMETERS[tool]]
        role.add_to_principal_policy(iam.PolicyStatement(actions=["ssm:GetParameter"], resources=arns))
        stack = Stack.of(self)
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["kms:Decrypt"],
                resources=[stack.format_arn(service="kms", resource="key", resource_name="*")],
                conditions={
                    "StringEquals": {
                        "kms:ViaService": self._via_ssm(),
                        "kms:EncryptionContext:PARAMETER_ARN": arns,
                    }
                },
            )
        )
        acknowledge(
            role,
            KMS_ACKNOWLEDGMENT,
            f"kms:Decrypt for the operator's {tool} SecureString parameters, whose key (aws/ssm or the "
            "operator's) has an id the template cannot know; limited to calls through SSM in this "
            "region (kms:ViaService) for exactly these parameters' ARNs (kms:EncryptionContext:PARAMETER_ARN).",
        )

    def connect_admin(self, function: PythonFunction) -> None:
        """The student-database step and the watchdog: straight to the students' instance (not the
        proxy) as its master user, whose secret they may read, into the students' admin database;
        the watchdog keeps the spare databases the step takes."""
        fn = function.function
        self.server.connections.allow_default_port_from(fn, f"{function.name} to the students' database")
        function.role.add_to_principal_policy(
            iam.PolicyStatement(actions=["secretsmanager:GetSecretValue"], resources=[self.server_secret.secret_arn])
        )
        for key, value in {
            "STUDENTS_DB_ADMIN_SECRET_ARN": self.server_secret.secret_arn,
            "STUDENTS_DB_ADMIN_HOST": self.students_db_host,
            "STUDENTS_DB_SPARE_DATABASES": str(SPARE_DATABASES),
        }.items():
            fn.add_environment(key, value)

    def connect_migrations(self, function: PythonFunction) -> None:
        """The migration makes sure the students' admin database exists and closes the maintenance
        databases to PUBLIC on the instance students sign in to. Shared: the application's instance,
        which the migration already reaches (``Database.connect_migrations``); dedicated: the
        students' own, as its master user (``STUDENTS_DB_SECRET_ARN``)."""
        fn = function.function
        fn.add_environment("STUDENTS_DB_NAME", STUDENTS_DB_NAME)
        if self.students_database is None:
            return
        self.server.connections.allow_default_port_from(fn, "migrations to the students' database")
        function.role.add_to_principal_policy(
            iam.PolicyStatement(actions=["secretsmanager:GetSecretValue"], resources=[self.server_secret.secret_arn])
        )
        fn.add_environment("STUDENTS_DB_SECRET_ARN", self.server_secret.secret_arn)

    def students_db_environment(self) -> dict[str, str]:
        return {"STUDENTS_DB_HOST": self.students_db_host, "STUDENTS_DB_PORT": str(PORT)}
