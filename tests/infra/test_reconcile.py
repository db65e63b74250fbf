"""The payments reconcile job in the stack: its function (the payments package, in the VPC with a
way to Stripe), its schedule, and exactly the webhook's powers: the Stripe API key, the pool's
pay-first actions, starting both state machines, sending email."""

from __future__ import annotations

from tests.infra.stack_support import function_ids, function_props, resources, role_statements, statements_with

NAME = "payments-reconcile"


def test_the_reconcile_function_runs_the_payments_job_in_the_vpc(template):
    props = function_props(template, NAME)
    assert props["Handler"] == "functions.payments.reconcile.lambda_handler"
    assert "VpcConfig" in props
    assert props["ReservedConcurrentExecutions"] == 1
    variables = props["Environment"]["Variables"]
    assert variables["STRIPE_API_KEY_PARAM"].endswith("/stripe/api-key")
    for variable in ("ENROLLMENT_STATE_MACHINE_ARN", "DEPROVISION_STATE_MACHINE_ARN", "COGNITO_USER_POOL_ID",
                     "EMAIL_SENDER"):  # fmt: skip
        assert variables.get(variable), variable
    # One asset for the payments package: the job runs the same code as the webhook.
    assert props["Code"]["S3Key"] == function_props(template, "payments-webhook")["Code"]["S3Key"]


def test_the_reconcile_job_runs_every_ten_minutes_with_retries_and_a_dead_letter_queue(template):
    target_id = function_ids(template)[NAME]
    (schedule,) = [
        s["Properties"]
        for s in resources(template, "AWS::Scheduler::Schedule").values()
        if s["Properties"]["Target"]["Arn"]["Fn::GetAtt"][0] == target_id
    ]
    assert schedule["ScheduleExpression"] == "rate(10 minutes)"
    assert schedule["Target"]["RetryPolicy"]["MaximumRetryAttempts"] == 2
    assert schedule["Target"]["DeadLetterConfig"]["Arn"]


def test_the_reconcile_job_may_do_what_the_webhook_does_and_no_more(template):
    statements = role_statements(template, NAME)
    ssm = statements_with(statements, "ssm:")
    assert [s["Action"] for s in ssm] == [["ssm:GetParameter"]]
    assert all(arn.endswith("/stripe/api-key") for s in ssm for arn in s["Resource"])
    starts = statements_with(statements, "states:StartExecution")
    machines = {arn for s in starts for arn in s["Resource"]}
    assert len(machines) == 2 and all("Workflows" in arn for arn in machines)
    # It reads its enrollment runs' status (a failed one is started again), and nothing else of them.
    (describe,) = statements_with(statements, "states:DescribeExecution")
    assert describe["Action"] == ["states:DescribeExecution"]
    assert not statements_with(statements, "states:StopExecution")
    cognito = {a for s in statements_with(statements, "cognito-idp:") for a in s["Action"]}
    assert cognito == {
        "cognito-idp:AdminAddUserToGroup",
        "cognito-idp:AdminCreateUser",
        "cognito-idp:AdminGetUser",
        "cognito-idp:AdminSetUserPassword",
    }
    assert statements_with(statements, "ses:SendEmail")
    assert not statements_with(statements, "s3:")


def test_the_webhook_may_refund_through_stripe(template):
    variables = function_props(template, "payments-webhook")["Environment"]["Variables"]
    assert variables["STRIPE_API_KEY_PARAM"].endswith("/stripe/api-key")


def test_what_the_reconcile_job_finds_raises_an_alarm_to_the_operations_topic(template):
    from functions.payments.reconcile_service import ALERT

    (metric_filter,) = resources(template, "AWS::Logs::MetricFilter").values()
    props = metric_filter["Properties"]
    assert ALERT in props["FilterPattern"] and props["MetricTransformations"][0]["MetricValue"] == "1"
    (alarm,) = [
        a["Properties"]
        for a in resources(template, "AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("MetricName") == props["MetricTransformations"][0]["MetricName"]
    ]
    assert alarm["Threshold"] == 1 and alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["AlarmActions"]  # the operations topic (the nested stack's output)
