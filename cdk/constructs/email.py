"""Email through SES: the sender's identity, the configuration set every function sends through, and
what happens to bounces and complaints.

- **Identity**: without ``sesSenderArn`` the stack creates the SES domain identity of the sender's
  domain (Easy DKIM; the three CNAME records to publish are stack outputs) and keeps it when the
  stack is deleted or stops managing it, though not when the deploy that created it fails (its
  name would block the retry). With ``sesSenderArn`` the operator already has a verified identity
  (which the user pool sends through too), and the stack creates none; nor does it for the dev
  placeholder sender, a reserved domain nobody can verify. An identity exists once per account and
  region: once verified, pass it as ``sesSenderArn`` (the retained identity then simply stays), and
  so does a second stage in the same account and region.
- **Configuration set** ``apranova-<stage>`` (``EMAIL_CONFIGURATION_SET``: apranova.mail names it on
  every send): reputation metrics on; addresses that bounce or complain go on the account's
  suppression list, so SES stops sending to them; bounces, complaints and rejections are published
  to the ``EmailEvents`` topic (KMS-encrypted, TLS only; the ops email is subscribed), and sends,
  deliveries, bounces and complaints are counted in CloudWatch per configuration set for the
  dashboard. The bounce and complaint rate alarms are in cdk/constructs/operations.py.
"""

from __future__ import annotations

from aws_cdk import CfnOutput, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_ses as ses
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from cdk.constructs.nag import acknowledge

# The sender when the operator configures none: a reserved domain, so a dev stack synthesizes and
# deploys, and SES refuses to send until a verified sender is configured (docs/operations.md).
PLACEHOLDER_SENDER = "no-reply@apranova.example"
# Outside production the stage is expected to stay in the SES sandbox, where SES delivers only to
# verified identities and authorizes the send against the recipient's identity as well: the senders
# may send to any identity of the account, as this stage's sender only (docs/operations.md, Email).
SANDBOX_SID = "SesSandboxVerifiedRecipients"
# SES tags every message with its configuration set under this name: the CloudWatch dimension.
CONFIGURATION_SET_DIMENSION = "ses:configuration-set"
PUBLISHED_EVENTS = (ses.EmailSendingEvent.BOUNCE, ses.EmailSendingEvent.COMPLAINT, ses.EmailSendingEvent.REJECT)
COUNTED_EVENTS = (
    ses.EmailSendingEvent.SEND,
    ses.EmailSendingEvent.DELIVERY,
    ses.EmailSendingEvent.BOUNCE,
    ses.EmailSendingEvent.COMPLAINT,
    ses.EmailSendingEvent.REJECT,
)


class Email(Construct):
    """``sender``: the From address of the functions' emails; ``ses_sender_arn``: the operator's
    existing identity (then none is created here)."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        stage: str,
        sender: str,
        ses_sender_arn: str | None = None,
        ops_email: str | None = None,
        production: bool = False,
    ) -> None:
        super().__init__(scope, id)
        stack = Stack.of(self)
        self.sender = sender
        self.sandbox = not production
        self.domain = sender.split("@")[1]
        self.configuration_set_name = f"apranova-{stage}"
        self.configuration_set_arn = stack.format_arn(
            service="ses", resource="configuration-set", resource_name=self.configuration_set_name
        )

        # SES publishes to the encrypted topic with this key: the AWS-managed aws/sns key cannot
        # grant SES (its policy is AWS's), so the topic has a key of its own.
        self.key = kms.Key(
            self,
            "EventsKey",
            alias=f"alias/apranova-{stage}-email-events",
            description=f"ApraNova {stage}: the SES bounce and complaint notifications topic",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN if production else RemovalPolicy.DESTROY,
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="SesPublishesEmailEvents",
                principals=[iam.ServicePrincipal("ses.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],  # in a key policy: this key
                conditions={"StringEquals": {"aws:SourceAccount": stack.account}},
            )
        )
        self.events = sns.Topic(
            self,
            "Events",
            display_name=f"ApraNova {stage} email bounces and complaints",
            master_key=self.key,
            enforce_ssl=True,
        )
        if ops_email:
            self.events.add_subscription(subscriptions.EmailSubscription(ops_email))

        self.configuration_set = ses.ConfigurationSet(
            self,
            "ConfigurationSet",
            configuration_set_name=self.configuration_set_name,
            reputation_metrics=True,
            sending_enabled=True,
            suppression_reasons=ses.SuppressionReasons.BOUNCES_AND_COMPLAINTS,
            # Opportunistic TLS to the recipient's server: requiring it would silently drop mail to
            # the few servers without TLS, and no email of ours carries a secret (apranova.mail).
            tls_policy=ses.ConfigurationSetTlsPolicy.OPTIONAL,
        )
        # CDK adds the topic policy statement that lets SES publish for this configuration set only.
        self.configuration_set.add_event_destination(
            "ToTopic",
            destination=ses.EventDestination.sns_topic(self.events),
            events=list(PUBLISHED_EVENTS),
        )
        self.configuration_set.add_event_destination(
            "ToCloudWatch",
            destination=ses.EventDestination.cloud_watch_dimensions(
                [
                    ses.CloudWatchDimension(
                        name=CONFIGURATION_SET_DIMENSION,
                        source=ses.CloudWatchDimensionSource.MESSAGE_TAG,
                        default_value=self.configuration_set_name,
                    )
                ]
            ),
            events=list(COUNTED_EVENTS),
        )

        self.identity: ses.EmailIdentity | None = None
        if not ses_sender_arn and sender != PLACEHOLDER_SENDER:
            self.identity = ses.EmailIdentity(
                self,
                "Identity",
                identity=ses.Identity.domain(self.domain),
                configuration_set=self.configuration_set,
            )
            # Verified once (DNS records published), kept: switching to ``sesSenderArn`` or deleting
            # a stage must not delete the identity production mail depends on. But a failed first
            # create removes it: a leftover identity of the same name would fail the retry.
            self.identity.apply_removal_policy(RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE)
            for number, record in enumerate(self.identity.dkim_records, start=1):
                CfnOutput(
                    stack,
                    f"EmailDkimRecord{number}",
                    value=f"{record.name} CNAME {record.value}",
                    description=f"Publish in the DNS of {self.domain} so SES verifies the sender (Easy DKIM)",
                )

    def grant_send(self, role: iam.IRole) -> None:
        """``ses:SendEmail`` as the sender through the configuration set; outside production also to
        the account's verified identities (the SES sandbox: see ``SANDBOX_SID``)."""
        role.add_to_principal_policy(iam.PolicyStatement(actions=["ses:SendEmail"], resources=self.sending_arns()))
        if not self.sandbox:
            return
        stack = Stack.of(self)
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid=SANDBOX_SID,
                actions=["ses:SendEmail"],
                resources=[stack.format_arn(service="ses", resource="identity", resource_name="*")],
                conditions={"StringEquals": {"ses:FromAddress": self.sender}},
            )
        )
        acknowledge(
            role,
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ses:<AWS::Region>:<AWS::AccountId>:identity/*]",
            "In the SES sandbox a send is also authorized against each recipient's verified identity, "
            "whose names are the testers' addresses, unknown to the template; only as this stage's "
            "sender (ses:FromAddress), and only outside production.",
        )

    def sending_arns(self) -> list[str]:
        """What ``ses:SendEmail`` is authorized against: the identity verified for the From address
        (the address itself or its domain, in this account and region) and the configuration set."""
        stack = Stack.of(self)
        identities = [
            stack.format_arn(service="ses", resource="identity", resource_name=name)
            for name in (self.sender, self.domain)
        ]
        return [*identities, self.configuration_set_arn]
