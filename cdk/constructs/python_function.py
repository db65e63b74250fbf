"""The house Python function: every Lambda of ApraNova is built by this construct.

Python 3.12 on arm64 (Graviton: cheaper per ms, and the layer's wheels are built for it), JSON
logs into a log group with explicit retention, active X-Ray tracing, Powertools' service name and
metrics namespace, the common layer, and the code bundled locally (no Docker) as the package
``functions.<folder>`` so the handler path is the same in AWS as in the repository. A function's
folder and handler module come from the route table (``routes.function_folder`` /
``routes.handler_module``): usually ``functions/<name>/handler.py``, but a function may share
another's folder (the payments webhook is ``functions.payments.webhook``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from aws_cdk import AssetHashType, BundlingOptions, Duration, RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from apranova import routes
from cdk.constructs.bundling import ROOT, UNUSED_IMAGE, CopyBundler, tree_hash
from cdk.constructs.nag import acknowledge
from cdk.constructs.network import function_subnets

RUNTIME = lambda_.Runtime.PYTHON_3_12
ARCHITECTURE = lambda_.Architecture.ARM_64
METRICS_NAMESPACE = "ApraNova"
# What Lambda needs to attach a function to a VPC (AWSLambdaVPCAccessExecutionRole's EC2 part):
# these actions support no resource-level scoping.
VPC_ACCESS_ACTIONS = [
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
]


def function_sources(folder: str, extra_paths: Sequence[str] = ()) -> list[Path]:
    """What an asset holds: the ``functions`` package marker, the code folder ``functions/<folder>``,
    extras. Functions sharing a folder get identical assets (CDK uploads it once)."""
    path = ROOT / "functions" / folder
    if not path.is_dir():
        raise ValueError(f"no function folder functions/{folder}/")
    return [ROOT / "functions" / "__init__.py", path, *(ROOT / extra for extra in extra_paths)]


def handler_path(name: str) -> str:
    """The Lambda ``Handler`` of function ``name``: its module's ``lambda_handler``."""
    return f"{routes.handler_module(name)}.lambda_handler"


def function_code(folder: str, extra_paths: Sequence[str] = ()) -> lambda_.Code:
    sources = function_sources(folder, extra_paths)
    return lambda_.Code.from_asset(
        str(ROOT),
        asset_hash_type=AssetHashType.CUSTOM,
        asset_hash=tree_hash(sources),
        bundling=BundlingOptions(image=UNUSED_IMAGE, local=CopyBundler(sources)),
    )


class PythonFunction(Construct):
    """One Lambda function ``name``: ``lambda_handler`` of ``routes.handler_module(name)``, with the
    code of ``functions/<routes.function_folder(name)>/``.

    ``extra_paths`` are repository paths bundled at their repository-relative place: the migrate
    function takes ``migrations`` (a folder beside the package), the tools function
    ``functions/provision`` (another package of ``functions``, importable as in the repository);
    ``vpc`` puts the function in the VPC: in the isolated subnets that reach AWS through interface
    endpoints, or with ``egress`` in the private subnets routed to the NAT gateway (only for a
    function that calls the internet: cdk/constructs/network.py). ``reserved_concurrency`` caps (and
    reserves) the concurrent runs, for a function whose downstream must be protected.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        name: str,
        layer: lambda_.ILayerVersion,
        stage: str,
        environment: Mapping[str, str] | None = None,
        memory_size: int = 512,
        timeout: Duration | None = None,
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH,
        removal_policy: RemovalPolicy = RemovalPolicy.DESTROY,
        vpc: ec2.IVpc | None = None,
        egress: bool = False,
        reserved_concurrency: int | None = None,
        extra_paths: Sequence[str] = (),
        description: str | None = None,
        handler_module: str | None = None,
    ) -> None:
        """``handler_module`` overrides the route table's (the workflow steps are not routes)."""
        super().__init__(scope, id)
        if egress and vpc is None:
            raise ValueError(f"{name}: egress applies to a function in the VPC (outside it, it has the internet)")
        self.name = name
        self.reserved_concurrency = reserved_concurrency
        # An explicit log group (not the deprecated log_retention custom resource): retention and
        # removal are plain CloudFormation, and the role may write to this group only.
        self.log_group = logs.LogGroup(self, "Logs", retention=log_retention, removal_policy=removal_policy)
        # Our own role instead of the AWS managed execution policies: logs go to this function's
        # group only, and every grant added later lands in this role's default policy.
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"ApraNova {name} function ({stage})",
        )
        self.log_group.grant_write(self.role)
        if vpc is not None:
            self.role.add_to_principal_policy(iam.PolicyStatement(actions=VPC_ACCESS_ACTIONS, resources=["*"]))
        self.function = lambda_.Function(
            self,
            "Function",
            description=description or f"ApraNova {name} ({stage})",
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler=f"{handler_module}.lambda_handler" if handler_module else handler_path(name),
            code=function_code(
                handler_module.split(".")[1] if handler_module else routes.function_folder(name), extra_paths
            ),
            layers=[layer],
            memory_size=memory_size,
            timeout=timeout or Duration.seconds(10),
            tracing=lambda_.Tracing.ACTIVE,
            logging_format=lambda_.LoggingFormat.JSON,
            application_log_level_v2=lambda_.ApplicationLogLevel.INFO,
            system_log_level_v2=lambda_.SystemLogLevel.WARN,
            log_group=self.log_group,
            role=self.role,
            environment={
                "STAGE": stage,
                "POWERTOOLS_SERVICE_NAME": name,
                "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
                **(environment or {}),
            },
            vpc=vpc,
            vpc_subnets=function_subnets(egress=egress) if vpc else None,
            reserved_concurrent_executions=reserved_concurrency,
        )

        acknowledge(
            self.function,
            "AwsSolutions-L1",
            "Python 3.12 is the project's pinned runtime: the common layer's binary wheels "
            "(psycopg-binary, pydantic-core, cryptography) are built for cp312; the runtime and the "
            "layer move together in one change.",
        )
        acknowledge(
            self.role,
            "AwsSolutions-IAM5[Resource::*]",
            "Only actions that AWS does not scope to a resource: X-Ray "
            "PutTraceSegments/PutTelemetryRecords (active tracing) and, for functions in the VPC, "
            "the EC2 network-interface actions Lambda needs to attach it. tests/infra checks that "
            "no other action is granted on '*'.",
        )

    def add_environment(self, key: str, value: str) -> None:
        self.function.add_environment(key, value)
