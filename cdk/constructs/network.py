"""Where functions sit in the VPC, and the interface endpoints that let most of them do without the
internet.

Three subnet groups (cdk/constructs/database.py builds the VPC with them):

- ``functions`` (private, a route to the NAT gateway): only the functions that call something on
  the internet: Stripe (``payments``), GitHub (``submissions``) and the shared tools' admin APIs
  (the Superset, Prefect and JupyterHub steps), plus the workspace tasks that pull their image;
- ``internal`` (isolated, no route out): every other function in the VPC, the master secret's
  rotation function and the interface endpoints;
- ``data`` (isolated): the database instance and the proxy.

A function in ``internal`` reaches AWS only through the endpoints below (S3 through the gateway
endpoint on every route table). The list is what the code calls from inside the VPC:

========================  ==================================================================
service                   called by
========================  ==================================================================
``secretsmanager``        the migration and the student-database step (the master secret),
                          the rotation function
``ssm``                   payments (Stripe parameters), tools and the tool steps (students'
                          and tools' parameters)
``email`` (SES API v2)    every function that sends email (``email-smtp`` is SMTP, unused)
``states``                functions that start a workflow (webhook, admin, compliance)
``cognito-idp``           auth, admin, the webhook (pay-first accounts); works only while the
                          user pool has no domain (Cognito refuses PrivateLink then)
``ecs``,                  the workspace step, the tools function, the idle stopper
``elasticfilesystem``
``xray``                  the X-Ray SDK's segments (active tracing) from isolated functions
``lambda``                the compliance API (starts the export worker, an asynchronous Invoke)
========================  ==================================================================

Not needed: STS (Lambda hands functions their credentials), KMS (SSM and S3 decrypt server-side;
no code calls KMS), RDS (an IAM token is signed locally), CloudWatch Logs (the Lambda service
writes logs and delivers asynchronous results, not the function's network interface).
"""

from __future__ import annotations

from aws_cdk import aws_ec2 as ec2
from constructs import Construct

EGRESS_SUBNETS = "functions"
INTERNAL_SUBNETS = "internal"
DATA_SUBNETS = "data"

# Construct id → the AWS service's interface endpoint (see the table above).
INTERFACE_ENDPOINTS: dict[str, ec2.InterfaceVpcEndpointAwsService] = {
    "SecretsManager": ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
    "Ssm": ec2.InterfaceVpcEndpointAwsService.SSM,
    "Email": ec2.InterfaceVpcEndpointAwsService.EMAIL,
    "StepFunctions": ec2.InterfaceVpcEndpointAwsService.STEP_FUNCTIONS,
    "CognitoIdp": ec2.InterfaceVpcEndpointAwsService.COGNITO_IDP,
    "Ecs": ec2.InterfaceVpcEndpointAwsService.ECS,
    "ElasticFileSystem": ec2.InterfaceVpcEndpointAwsService.ELASTIC_FILESYSTEM,
    "XRay": ec2.InterfaceVpcEndpointAwsService.XRAY,
    "Lambda": ec2.InterfaceVpcEndpointAwsService.LAMBDA_,
}


def function_subnets(*, egress: bool) -> ec2.SubnetSelection:
    """Where a VPC function's network interfaces go: a NAT route only when it calls the internet."""
    return ec2.SubnetSelection(subnet_group_name=EGRESS_SUBNETS if egress else INTERNAL_SUBNETS)


class Endpoints(Construct):
    """The interface endpoints (private DNS on, HTTPS from inside the VPC only), one interface in each
    availability zone in every stage: functions run in both zones, and a dev stage no longer depends
    on its first zone alone. A zone that does not offer one of these services fails the deploy,
    naming the endpoint (docs/operations.md, Network, says what to do). The cheaper path for a dev
    stage is the lean profile (no interface endpoints at all).
    """

    def __init__(self, scope: Construct, id: str, *, vpc: ec2.IVpc, cidr: str, cognito: bool = True) -> None:
        """``cidr``: the VPC's address range as a literal (cdk-nag checks rules it can read).
        ``cognito``: False when the user pool has a domain (the tools' front door): Cognito refuses
        every request through an endpoint then, and its private DNS would capture the NAT path."""
        super().__init__(scope, id)
        subnets = ec2.SubnetSelection(subnet_group_name=INTERNAL_SUBNETS)
        # One group for every endpoint: HTTPS in from the VPC, nothing out (an endpoint only answers).
        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=vpc,
            description="ApraNova interface endpoints: HTTPS from within the VPC",
            allow_all_outbound=False,
        )
        self.security_group.add_ingress_rule(ec2.Peer.ipv4(cidr), ec2.Port.tcp(443), "HTTPS from within the VPC")
        self.endpoints = {
            name: ec2.InterfaceVpcEndpoint(
                self,
                name,
                vpc=vpc,
                service=service,
                subnets=subnets,
                private_dns_enabled=True,
                security_groups=[self.security_group],
                open=False,
            )
            for name, service in INTERFACE_ENDPOINTS.items()
            if cognito or name != "CognitoIdp"
        }
