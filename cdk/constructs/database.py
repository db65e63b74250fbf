"""The network and the application database.

A two-AZ VPC (cdk/constructs/network.py): isolated subnets for the database and the proxy, isolated
subnets with interface endpoints for the functions that call only AWS, private subnets with egress
for the few that call the internet (one NAT gateway outside production). PostgreSQL 16 encrypted
with a customer-managed key (rotated yearly; Performance Insights encrypted with it too), TLS
forced, automated backups, Multi-AZ and deletion protection in production, the master credentials
generated into Secrets Manager (rotated every 30 days) and used only by the migrations and the
student-database step. The API functions reach the database through RDS Proxy with TLS and IAM
authentication end to end: no application password exists anywhere.
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Aspects, CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_rds as rds
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from cdk.constructs.cfn import required
from cdk.constructs.nag import acknowledge
from cdk.constructs.network import DATA_SUBNETS, EGRESS_SUBNETS, INTERNAL_SUBNETS, Endpoints
from cdk.constructs.python_function import PythonFunction

DB_NAME = "apranova"
APP_USER = "apranova_app"
MASTER_USER = "apranova_admin"
PORT = 5432
# The VPC's address range (CDK's default, spelled out so rules can name it as a literal).
VPC_CIDR = "10.0.0.0/16"
LOG_EXPORTS = ("postgresql", "upgrade")
# RDS's default max_connections for PostgreSQL is LEAST(DBInstanceClassMemory / 9531392, 5000): about
# 80 on a db.t4g.micro (dev) and 400 on a db.t4g.medium (prod). The connections alarm fires at 80 %.
MAX_CONNECTIONS = {False: 80, True: 400}


# The lean profile's NAT: a small Graviton instance instead of a NAT gateway (docs/operations.md).
NAT_INSTANCE_TYPE = "t4g.nano"


class Database(Construct):
    """``lean``: the cheap non-production profile (``-c costProfile=lean``): a NAT instance instead of
    the NAT gateway and no interface endpoints; every function in the VPC reaches AWS through the NAT."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        stage: str,
        production: bool,
        lean: bool = False,
        cognito_endpoint: bool = True,
    ) -> None:
        """``cognito_endpoint``: False once the user pool has a domain (the tools' front door), which
        Cognito's PrivateLink refuses: the functions calling Cognito then go out by the NAT."""
        super().__init__(scope, id)
        if lean and production:
            raise ValueError("the lean cost profile is for non-production stages only")
        identifier = f"apranova-{stage}"
        self.lean = lean
        self.max_connections = MAX_CONNECTIONS[production]
        self.nat_instance: ec2.NatInstanceProviderV2 | None = None
        if lean:
            self.nat_instance = ec2.NatProvider.instance_v2(
                instance_type=ec2.InstanceType(NAT_INSTANCE_TYPE),
                default_allowed_traffic=ec2.NatTrafficDirection.OUTBOUND_ONLY,
            )
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr(VPC_CIDR),
            max_azs=2,
            nat_gateways=2 if production else 1,
            nat_gateway_provider=self.nat_instance,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24),
                ec2.SubnetConfiguration(
                    name=EGRESS_SUBNETS, subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS, cidr_mask=22
                ),
                ec2.SubnetConfiguration(name=DATA_SUBNETS, subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=24),
                # Last, so that adding it left the other groups' address ranges where they were.
                ec2.SubnetConfiguration(
                    name=INTERNAL_SUBNETS, subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=22
                ),
            ],
            # S3 traffic (datasets, uploads) stays off the NAT gateway.
            gateway_endpoints={"S3": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.S3)},
        )
        self.vpc.add_flow_log(
            "FlowLog",
            destination=ec2.FlowLogDestination.to_cloud_watch_logs(
                logs.LogGroup(
                    self,
                    "FlowLogs",
                    retention=logs.RetentionDays.THREE_MONTHS,
                    removal_policy=RemovalPolicy.RETAIN if production else RemovalPolicy.DESTROY,
                )
            ),
            traffic_type=ec2.FlowLogTrafficType.REJECT,
        )
        if self.nat_instance is not None:
            self._lean_nat()
        # The lean profile has none: its functions reach AWS through the NAT instance.
        self.endpoints = (
            None if lean else Endpoints(self, "Endpoints", vpc=self.vpc, cidr=VPC_CIDR, cognito=cognito_endpoint)
        )

        engine = rds.DatabaseInstanceEngine.postgres(version=rds.PostgresEngineVersion.VER_16)
        isolated = ec2.SubnetSelection(subnet_group_name=DATA_SUBNETS)
        # The storage, its automated backups and snapshots, and Performance Insights' data. Retained
        # in every stage: the final snapshot of a deleted stack is unreadable without it.
        self.key = kms.Key(
            self,
            "Key",
            alias=f"alias/apranova-{stage}-database",
            description=f"ApraNova {stage}: the PostgreSQL instance's storage, snapshots and Performance Insights",
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
            vpc=self.vpc,
            vpc_subnets=isolated,
            port=PORT,
            database_name=DB_NAME,
            credentials=rds.Credentials.from_generated_secret(MASTER_USER),
            parameter_group=rds.ParameterGroup(
                self,
                "Parameters",
                engine=engine,
                # TLS only; and only rds_password members (the master user, through rds_superuser)
                # may set passwords: a student cannot change theirs away from the one in SSM.
                parameters={"rds.force_ssl": "1", "rds.restrict_password_commands": "1"},
            ),
            iam_authentication=True,
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
        # RDS writes exports to /aws/rds/instance/<id>/<log>; creating those groups first gives them
        # a retention without the deprecated LogRetention custom resource.
        for log in LOG_EXPORTS:
            group = logs.LogGroup(
                self,
                f"Logs-{log}",
                log_group_name=f"/aws/rds/instance/{identifier}/{log}",
                retention=logs.RetentionDays.ONE_MONTH,
                # A fixed name: kept on delete, but removed when the create that made it rolls back
                # (a plain Retain would leave the name taken and fail the retry).
                removal_policy=RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE if production else RemovalPolicy.DESTROY,
            )
            self.instance.node.add_dependency(group)
        self.secret = required(self.instance.secret, "the database's generated master secret")
        # The rotation function calls Secrets Manager through its interface endpoint (private DNS).
        # No rotation when the schedule is created: the first deploy's migrations read the secret
        # while CloudFormation creates it, and an immediate rotation would change the password
        # under them. Secrets Manager only tests the rotation function then (testSecret).
        self.rotation = self.instance.add_rotation_single_user(
            automatically_after=Duration.days(30),
            vpc_subnets=ec2.SubnetSelection(subnet_group_name=EGRESS_SUBNETS if lean else INTERNAL_SUBNETS),
            rotate_immediately_on_update=False,
        )
        (self.rotation_schedule,) = [
            c for c in self.secret.node.find_all() if isinstance(c, secretsmanager.CfnRotationSchedule)
        ]
        # With IAM end to end, the proxy itself signs in to PostgreSQL with a token as the app user.
        # The grant names the user on any instance of this account and region, not the instance's
        # DbiResourceId: a restored instance (docs/operations.md, Restore) has a new resource id,
        # and CloudFormation would keep the old one in the policy, so the proxy could not sign in
        # after a restore. The proxy only connects to its registered target.
        proxy_role = iam.Role(self, "ProxyRole", assumed_by=iam.ServicePrincipal("rds.amazonaws.com"))
        proxy_role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["rds-db:connect"],
                resources=[
                    Stack.of(self).format_arn(
                        service="rds-db",
                        resource="dbuser",
                        resource_name=f"*/{APP_USER}",
                        arn_format=ArnFormat.COLON_RESOURCE_NAME,
                    )
                ],
            )
        )
        acknowledge(
            proxy_role,
            f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:rds-db:<AWS::Region>:<AWS::AccountId>:dbuser:*/{APP_USER}]",
            "The proxy signs in as the application user on its registered target; the instance's "
            "resource id changes when it is restored from a snapshot, so the grant names the user "
            "(this account and region) rather than the id, and the proxy's target decides the instance.",
        )
        self.proxy = rds.DatabaseProxy(
            self,
            "Proxy",
            proxy_target=rds.ProxyTarget.from_instance(self.instance),
            vpc=self.vpc,
            vpc_subnets=isolated,
            require_tls=True,
            iam_auth=True,
            # Client → proxy and proxy → database both with IAM tokens: the proxy needs no
            # per-user secret, and apranova_app has no password (the migration grants rds_iam).
            default_auth_scheme=rds.DefaultAuthScheme.IAM_AUTH,
            debug_logging=False,
            role=proxy_role,
        )

        if not production:
            acknowledge(
                self.instance,
                "AwsSolutions-RDS3",
                "Single-AZ outside production: a dev database can wait for a restore; prod is "
                "Multi-AZ (same construct, production=True).",
            )
            acknowledge(
                self.instance,
                "AwsSolutions-RDS10",
                "Deletion protection is on in production only, so dev stacks can be torn down; a "
                "final snapshot is still taken (RemovalPolicy.SNAPSHOT).",
            )
        acknowledge(
            self.instance,
            "AwsSolutions-RDS11",
            "The default PostgreSQL port: the instance is in isolated subnets, reachable only from "
            "the proxy's and the migration function's security groups; another port adds no "
            "protection.",
        )

    def add_operator_access(self) -> ec2.Instance:
        """``-c databaseAccess=true``: a tiny instance an operator reaches with SSM Session Manager to
        forward a local port to the database (docs/operations.md, Reaching the database). No SSH, no
        key pair, no inbound rule: the SSM agent dials out (through the NAT) and the operator's
        session is authorized by IAM and logged by CloudTrail. Deploy without the flag to remove it."""
        self.operator_access_group = ec2.SecurityGroup(
            self,
            "OperatorAccessSecurityGroup",
            vpc=self.vpc,
            description="ApraNova operator access instance: no inbound; HTTPS to SSM, PostgreSQL to the database",
            allow_all_outbound=False,
        )
        self.operator_access_group.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "the SSM agent to SSM")
        self.instance.connections.allow_default_port_from(self.operator_access_group, "operator port forwarding")
        role = iam.Role(
            self,
            "OperatorAccessRole",
            assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"),
            description="ApraNova operator access instance: the SSM agent only",
            managed_policies=[iam.ManagedPolicy.from_aws_managed_policy_name("AmazonSSMManagedInstanceCore")],
        )
        self.operator_access = ec2.Instance(
            self,
            "OperatorAccess",
            vpc=self.vpc,
            vpc_subnets=ec2.SubnetSelection(subnet_group_name=EGRESS_SUBNETS),
            instance_type=ec2.InstanceType(NAT_INSTANCE_TYPE),
            machine_image=ec2.MachineImage.latest_amazon_linux2023(cpu_type=ec2.AmazonLinuxCpuType.ARM_64),
            security_group=self.operator_access_group,
            role=role,
            require_imdsv2=True,
            block_devices=[
                ec2.BlockDevice(device_name="/dev/xvda", volume=ec2.BlockDeviceVolume.ebs(8, encrypted=True))
            ],
        )
        acknowledge(
            role,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonSSMManagedInstanceCore]",
            "AmazonSSMManagedInstanceCore is what the SSM agent needs to register and open sessions, "
            "kept current by AWS; the instance does nothing else and exists only while an operator "
            "asks for it (databaseAccess).",
        )
        acknowledge(
            self.operator_access,
            "AwsSolutions-EC28",
            "A port-forwarding hop created on demand for an operator session: detailed monitoring "
            "would watch an instance that does no work of its own.",
        )
        acknowledge(
            self.operator_access,
            "AwsSolutions-EC29",
            "Meant to be removed (deploy without databaseAccess) after the operator's work; it holds "
            "no data, so termination protection would only get in the way.",
        )
        CfnOutput(
            Stack.of(self),
            "OperatorAccessInstance",
            value=self.operator_access.instance_id,
            description="aws ssm start-session --target <this> with AWS-StartPortForwardingSessionToRemoteHost (docs)",
        )
        return self.operator_access

    def _lean_nat(self) -> None:
        """The lean profile's NAT instance forwards what the VPC sends out, and answers nothing else."""
        assert self.nat_instance is not None
        self.nat_instance.connections.allow_from(
            ec2.Peer.ipv4(VPC_CIDR), ec2.Port.all_traffic(), "the VPC's traffic to the internet"
        )
        for gateway in self.nat_instance.gateway_instances:
            # IMDSv2 only (a launch template with HttpTokens required), as on the access instance.
            Aspects.of(gateway).add(ec2.InstanceRequireImdsv2Aspect())
            # The root volume encrypted (the provider offers no block device setting).
            gateway.instance.block_device_mappings = [
                ec2.CfnInstance.BlockDeviceMappingProperty(
                    device_name="/dev/xvda", ebs=ec2.CfnInstance.EbsProperty(encrypted=True, volume_type="gp3")
                )
            ]
            acknowledge(
                gateway,
                "AwsSolutions-EC28",
                "The lean profile's NAT instance only forwards packets; the basic five-minute metrics "
                "are enough for a dev stage, which chose this profile to save money.",
            )
            acknowledge(
                gateway,
                "AwsSolutions-EC29",
                "The lean profile's NAT instance holds no data: terminated, a deploy makes it again; "
                "termination protection would only stop the stage from being torn down.",
            )

    def connect_function(self, function: PythonFunction) -> None:
        """Lets an API function reach the database through the proxy as the application user."""
        fn = function.function
        self.proxy.connections.allow_from(fn, ec2.Port.tcp(PORT), f"{function.name} to the RDS proxy")
        self.proxy.grant_connect(fn, APP_USER)
        for key, value in {
            "DB_HOST": self.proxy.endpoint,
            "DB_PORT": str(PORT),
            "DB_NAME": DB_NAME,
            "DB_USER": APP_USER,
        }.items():
            fn.add_environment(key, value)

    def connect_migrations(self, function: PythonFunction) -> None:
        """The migration function connects straight to the instance as the master user."""
        fn = function.function
        self.instance.connections.allow_default_port_from(fn, "migrations to the database")
        self.secret.grant_read(fn)
        fn.add_environment("DB_SECRET_ARN", self.secret.secret_arn)
        fn.add_environment("DB_NAME", DB_NAME)
        fn.add_environment("DB_APP_USER", APP_USER)
