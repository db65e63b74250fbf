"""The payments domain's parts of the stack: the reconcile job and its alarm, and the payments
functions' Stripe parameters, email and workflows."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from aws_cdk import ArnFormat, Duration
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs

from cdk.constructs.cfn import resource_of
from cdk.constructs.database import Database
from cdk.constructs.identity import Identity
from cdk.constructs.nag import acknowledge
from cdk.constructs.python_function import PythonFunction
from cdk.domains.common import parameter_name, period_of, schedule_of

# The payments functions (functions/payments/config.py reads their settings).
PAYMENT_FUNCTIONS = frozenset({"payments", "payments-webhook"})
# The Stripe secrets are SecureString parameters the operator creates under /apranova/<stage>/
# (CloudFormation cannot create SecureStrings; docs/operations.md): each environment variable
# names one parameter, and a function may read exactly the parameters it is given.
STRIPE_PARAMETERS = {
    "STRIPE_API_KEY_PARAM": "stripe/api-key",
    "STRIPE_WEBHOOK_SECRET_PARAM": "stripe/webhook-secret",
}
PAYMENT_SECRETS = {
    "payments": ("STRIPE_API_KEY_PARAM",),
    # The webhook verifies signatures with the signing secret, and calls Stripe only to refund a
    # payment that cannot be fulfilled and to expire the payer's other checkouts.
    "payments-webhook": ("STRIPE_WEBHOOK_SECRET_PARAM", "STRIPE_API_KEY_PARAM"),
}
# The workflows a function starts, by the environment variable that names the state machine: the
# webhook (enrollment on payment, deprovisioning on a full refund or a lost dispute) and the admin
# function; the API function's refund approval goes through Stripe and comes back as a webhook.
WORKFLOW_STARTERS = {
    "payments-webhook": ("ENROLLMENT_STATE_MACHINE_ARN", "DEPROVISION_STATE_MACHINE_ARN"),
    # Manual enrollment and re-provisioning run the enrollment workflow.
    "admin": ("ENROLLMENT_STATE_MACHINE_ARN",),
}
RECONCILE_ALERT = "Reconcile found payments left behind"  # functions/payments/reconcile_service.py

if TYPE_CHECKING:
    from cdk.stacks.apranova_stack import ApraNovaStack


def reconcile_alarm(stack: ApraNovaStack, stage: str) -> None:
    """The reconcile job found a payment left behind: its alert line is counted (a metric filter on
    its log group) and one is enough for the operations topic, beside the alert email."""
    from aws_cdk import aws_cloudwatch as cw
    from aws_cdk import aws_cloudwatch_actions as cw_actions

    metric_filter = logs.MetricFilter(
        stack,
        "ReconcileFindings",
        log_group=stack.reconcile.log_group,
        filter_pattern=logs.FilterPattern.string_value("$.message", "=", f"ALERT: {RECONCILE_ALERT}"),
        metric_namespace="ApraNova",
        metric_name=f"{stage}-reconcile-findings",
        metric_value="1",
    )
    alarm = cw.Alarm(
        stack,
        "ReconcileFindingsAlarm",
        metric=metric_filter.metric(period=period_of(stack.reconcile), statistic=cw.Stats.SUM),
        threshold=1,
        evaluation_periods=1,
        comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
        alarm_name=f"apranova-{stage}-reconcile-findings",
        alarm_description=f"ApraNova {stage}: the reconcile job found a paid student left behind or a lost webhook",
    )
    alarm.add_alarm_action(cw_actions.SnsAction(stack.operations.topic))


def reconcile_job(
    stack: ApraNovaStack, function, *, stage: str, database: Database, identity: Identity, env: Mapping[str, str]
) -> PythonFunction:
    """The reconcile job (functions/payments/reconcile.py), on its row's schedule: lost webhooks
    (asks Stripe), paid payments that started nothing, the outbox. It does what the webhook does,
    so it gets the webhook's grants: the Stripe API key, the pool actions of pay-first accounts,
    both state machines and SES; what it finds is alerted (logged at ERROR and emailed)."""
    job = function(
        "payments-reconcile",
        environment={
            **env,
            "STRIPE_API_KEY_PARAM": parameter_name(stage, STRIPE_PARAMETERS["STRIPE_API_KEY_PARAM"]),
            "ENROLLMENT_STATE_MACHINE_ARN": stack.workflows.enrollment.state_machine_arn,
            "DEPROVISION_STATE_MACHINE_ARN": stack.workflows.deprovision.state_machine_arn,
        },
        description=f"ApraNova payments reconcile ({stage}); run by a schedule",
    )
    grant_secure_parameters(stack, job.role, [STRIPE_PARAMETERS["STRIPE_API_KEY_PARAM"]], stage)
    stack._grant_cognito(job, identity)
    stack.workflows.enrollment.grant_start_execution(job.role)
    stack.workflows.deprovision.grant_start_execution(job.role)
    # Whether a paid enrollment's run failed, before it is started again (reconcile_service).
    job.role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["states:DescribeExecution"],
            resources=[
                stack.format_arn(
                    service="states",
                    resource="execution",
                    resource_name=f"{stack.workflows.enrollment.state_machine_name}:*",
                    arn_format=ArnFormat.COLON_RESOURCE_NAME,
                )
            ],
        )
    )
    acknowledge(
        job.role,
        "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:"
        f"<{stack.get_logical_id(resource_of(stack.workflows.enrollment))}.Name>:*]",
        "The reconcile job reads the status of the enrollment runs paid payments started (named after "
        "each payment, unknown to the template) before it starts a failed one again; DescribeExecution "
        "only, on this one state machine's executions.",
    )
    stack.email.grant_send(job.role)
    stack.schedules.add(
        "Reconcile",
        job.function,
        schedule_of(job),
        description=f"ApraNova {stage}: no paid student left behind (lost webhooks, unstarted enrollments)",
        max_event_age=Duration.minutes(5),
    )
    return job


def grant_payments(stack: ApraNovaStack, stage: str, email_sender: str) -> None:
    """Exactly what the payments functions call: their Stripe parameters, SES as the sender (the
    email steps too), and the state machines the webhook and the admin function start."""
    for name, variables in PAYMENT_SECRETS.items():
        if name not in stack.functions:
            continue
        role = stack.functions[name].role
        grant_secure_parameters(stack, role, [STRIPE_PARAMETERS[variable] for variable in variables], stage)

    stack._grant_sending_and_workflows()


def grant_secure_parameters(stack: ApraNovaStack, role: iam.IRole, suffixes: list[str], stage: str) -> None:
    """Reading and decrypting exactly these operator-made SecureString parameters (the Stripe
    secrets, the GitHub token)."""
    arns = [
        stack.format_arn(
            service="ssm",
            resource="parameter",
            resource_name=parameter_name(stage, suffix).lstrip("/"),
            arn_format=ArnFormat.SLASH_RESOURCE_NAME,
        )
        for suffix in suffixes
    ]
    role.add_to_principal_policy(iam.PolicyStatement(actions=["ssm:GetParameter"], resources=arns))
    # Decrypting the SecureString: the key is the account's aws/ssm key (or the operator's
    # own), whose id the template cannot know. Only through SSM, and only for the ciphertext
    # of these parameters: SSM binds each value to its ARN in the encryption context.
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["kms:Decrypt"],
            resources=[stack.format_arn(service="kms", resource="key", resource_name="*")],
            conditions={
                "StringEquals": {
                    "kms:ViaService": f"ssm.{stack.region}.{stack.url_suffix}",
                    "kms:EncryptionContext:PARAMETER_ARN": arns,
                }
            },
        )
    )
    acknowledge(
        role,
        "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:kms:<AWS::Region>:<AWS::AccountId>:key/*]",
        "kms:Decrypt for operator-made SecureString parameters (Stripe secrets, the GitHub token), "
        "whose key (aws/ssm or the operator's) has an id the template cannot know; the statement is "
        "limited to calls through SSM in this region (kms:ViaService) for exactly these parameters' "
        "ARNs (kms:EncryptionContext:PARAMETER_ARN).",
    )
