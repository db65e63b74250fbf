"""The students' own PostgreSQL instance (issue 15 item 3), a nested stack.

DP students sign in to PostgreSQL with a password, run whatever SQL they like and may hold a
connection for hours: on the instance that holds the application's data, a student's runaway query
would slow every API call and a student's session would sit beside payments and personal data.
So in AWS their databases live on an instance of their own (``-c studentsDatabase=dedicated``, the
default; ``shared`` puts them back on the application's instance, for a cheap dev stage:
docs/operations.md). No RDS Proxy: students and the shared tools connect to the endpoint directly
(the proxy's IAM authentication does not serve password roles made at run time), and the
student-database step signs in as the master user with TLS verified against the layer's bundle.

Like the application's instance: PostgreSQL 16 encrypted with a key of its own (rotated yearly,
retained: the final snapshot of a deleted stage is unreadable without it), TLS forced, only the
master user may set passwords (``rds.restrict_password_commands``), automated backups, Multi-AZ and
deletion protection in production, the master secret rotated every 30 days without an immediate
rotation at creation, the logs exported to named groups with a retention. Its security group lets
in only what the stack says (the student-database step, the watchdog, the migration, the rotation
function, the shared tools' client group, the operator's access instance when asked for).

It is a nested stack for CloudFormation's 500-resource limit of the main stack (docs/decisions.md).
"""

from __future__ import annotations

from aws_cdk import Duration, NestedStack, RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_rds as rds
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from cdk.constructs.cfn import required
from cdk.constructs.database import LOG_EXPORTS, PORT
from cdk.constructs.nag import acknowledge
from cdk.constructs.network import DATA_SUBNETS, EGRESS_SUBNETS, INTERNAL_SUBNETS

# Where the students' databases live: their own instance, or the application's (dev only).
STUDENTS_DATABASE_MODES = ("dedicated", "shared")
# The instance's master user: the provisioner's admin role, owner of every student database.
STUDENTS_MASTER_USER = "apranova_students_admin"
# The admin database the provisioner signs in to and takes its locks in (STUDENTS_DB_NAME in the
# functions): created with the instance, and the migration makes sure it exists (a restore, shared).
STUDENTS_DB_NAME = "apranova_students"
# max_connections of a db.t4g.micro (dev) and a db.t4g.medium (prod): LEAST(memory / 9531392, 5000).
# Each student may hold 5 (the role's connection limit: psql, Superset, JupyterHub, Prefect).
STUDENTS_MAX_CONNECTIONS = {False: 80, True: 400}
# Server settings beside TLS and the password restriction: who signed in and out (a student's
# sessions, the watchdog's terminations), lock waits and large temporary files (a student's query
# spilling to disk). No statement logging: students' SQL is their coursework, not an audit trail.
STUDENTS_SERVER_PARAMETERS = {
    "rds.force_ssl": "1",
    # Only rds_password members (the master user, through rds_superuser) may set passwords: a
    # student cannot change theirs away from the one in SSM.
    "rds.restrict_password_commands": "1",
    "log_connections": "1",
    "log_disconnections": "1",
    "log_lock_waits": "1",
    "log_temp_files": "102400",  # kB: a statement spilling more than 100 MiB to disk is logged
}


class StudentsDatabase(NestedStack):
    """``instance``, ``secret`` (the master user's), ``rotation_schedule``, ``key``, ``max_connections``."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        stage: str,
        vpc: ec2.IVpc,
        production: bool,
        lean: bool = False,
    ) -> None:
        super().__init__(scope, id, description=f"ApraNova ({stage}): the students' PostgreSQL instance")
        identifier = f"apranova-{stage}-students"
        self.max_connections = STUDENTS_MAX_CONNECTIONS[production]
        engine = rds.DatabaseInstanceEngine.postgres(version=rds.PostgresEngineVersion.VER_16)
        self.key = kms.Key(
            self,
            "Key",
            alias=f"alias/apranova-{stage}-students-database",
            description=f"ApraNova {stage}: the students' instance's storage, snapshots and Performance Insights",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.instance = rds.DatabaseInstance(
            self,
            "Instance",
            engine=engine,
            instance_type=ec2.InstanceType.of(
                ec2.InstanceClass.BURSTABLE4_GRAVITON,
                ec2.InstanceSize.MEDIUM if production else ec2.InstanceSize.MICRO,
            ),
            vpc=vpc,
            vpc_subnets=ec2.SubnetSelection(subnet_group_name=DATA_SUBNETS),
            port=PORT,
            database_name=STUDENTS_DB_NAME,
            credentials=rds.Credentials.from_generated_secret(STUDENTS_MASTER_USER),
            parameter_group=rds.ParameterGroup(
                self, "Parameters", engine=engine, parameters=dict(STUDENTS_SERVER_PARAMETERS)
            ),
            storage_encrypted=True,
            storage_encryption_key=self.key,
            enable_performance_insights=True,
            performance_insight_encryption_key=self.key,
            performance_insight_retention=rds.PerformanceInsightRetention.DEFAULT,  # 7 days, no charge
            allocated_storage=20,
            max_allocated_storage=100,
            multi_az=production,
            deletion_protection=production,
            backup_retention=Duration.days(14 if production else 7),
            delete_automated_backups=not production,
            removal_policy=RemovalPolicy.SNAPSHOT,
            instance_identifier=identifier,
            cloudwatch_logs_exports=list(LOG_EXPORTS),
            auto_minor_version_upgrade=True,
            publicly_accessible=False,
        )
        # RDS writes exports to /aws/rds/instance/<id>/<log>: groups made first get a retention.
        for log in LOG_EXPORTS:
            group = logs.LogGroup(
                self,
                f"Logs-{log}",
                log_group_name=f"/aws/rds/instance/{identifier}/{log}",
                retention=logs.RetentionDays.ONE_MONTH,
                # A fixed name: kept on delete, removed when the create that made it rolls back.
                removal_policy=RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE if production else RemovalPolicy.DESTROY,
            )
            self.instance.node.add_dependency(group)
        self.secret = required(self.instance.secret, "the students' instance's generated master secret")
        # As the application's: no rotation when the schedule is created (the first deploy's
        # migration reads the secret meanwhile); Secrets Manager only tests the function then.
        self.rotation = self.instance.add_rotation_single_user(
            automatically_after=Duration.days(30),
            vpc_subnets=ec2.SubnetSelection(subnet_group_name=EGRESS_SUBNETS if lean else INTERNAL_SUBNETS),
            rotate_immediately_on_update=False,
        )
        (self.rotation_schedule,) = [
            c for c in self.secret.node.find_all() if isinstance(c, secretsmanager.CfnRotationSchedule)
        ]

        if not production:
            acknowledge(
                self.instance,
                "AwsSolutions-RDS3",
                "Single-AZ outside production: a dev stage's student databases can wait for a restore; "
                "prod's students' instance is Multi-AZ (same construct, production=True).",
            )
            acknowledge(
                self.instance,
                "AwsSolutions-RDS10",
                "Deletion protection is on in production only, so dev stacks can be torn down; a final "
                "snapshot is still taken (RemovalPolicy.SNAPSHOT).",
            )
        acknowledge(
            self.instance,
            "AwsSolutions-RDS11",
            "The default PostgreSQL port: students' tools (Superset, JupyterHub, Prefect, psql) expect "
            "it, and the instance is in isolated subnets reachable only from the groups the stack "
            "names; another port adds no protection.",
        )

    def allow_from(self, peer: ec2.IConnectable, description: str) -> None:
        """PostgreSQL from ``peer`` (a function, the tools' client group, the operator's instance)."""
        self.instance.connections.allow_default_port_from(peer, description)
