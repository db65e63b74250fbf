"""EventBridge Scheduler schedules that invoke functions, with retries and one dead-letter queue.

Each schedule invokes its function asynchronously through a role that may invoke exactly that
function. Two kinds of failure, one dead-letter queue (SQS, encrypted, TLS only) for an operator to
see: an invocation the scheduler cannot deliver is retried by the scheduler, a run that raises is
retried by Lambda (the function's asynchronous invocation settings); each ``retry_attempts`` times
while the event is younger than ``max_event_age`` (shorter than the interval, so retries never pile
onto the next run), then the event goes to the queue. The idle-workspace stopper is the first; the
purge and retention sweeps join it.
"""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as targets
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from cdk.constructs.cfn import resource_of
from cdk.constructs.nag import acknowledge


class Schedules(Construct):
    def __init__(self, scope: Construct, id: str, *, stage: str) -> None:
        super().__init__(scope, id)
        self._stage = stage
        self.dead_letters = sqs.Queue(
            self,
            "DeadLetters",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        acknowledge(
            self.dead_letters,
            "AwsSolutions-SQS3",
            "This queue is itself the dead-letter queue of the scheduled invocations; a queue behind it "
            "would only move the same messages once more.",
        )
        self.schedules: dict[str, scheduler.Schedule] = {}

    def add(
        self,
        id: str,
        function: lambda_.IFunction,
        expression: scheduler.ScheduleExpression,
        *,
        description: str,
        retry_attempts: int = 2,
        max_event_age: Duration | None = None,
    ) -> scheduler.Schedule:
        max_event_age = max_event_age or Duration.minutes(5)
        role = iam.Role(
            self,
            f"{id}Role",
            assumed_by=iam.ServicePrincipal("scheduler.amazonaws.com").with_conditions(
                {"StringEquals": {"aws:SourceAccount": Stack.of(self).account}}
            ),
            description=f"ApraNova {self._stage}: the {id} schedule invokes its function",
        )
        schedule = scheduler.Schedule(
            self,
            id,
            schedule=expression,
            description=description,
            target=targets.LambdaInvoke(
                function,
                role=role,
                dead_letter_queue=self.dead_letters,
                retry_attempts=retry_attempts,
                max_event_age=max_event_age,
            ),
        )
        function.configure_async_invoke(
            retry_attempts=retry_attempts,
            max_event_age=max_event_age,
            on_failure=destinations.SqsDestination(self.dead_letters),
        )
        function_id = Stack.of(self).get_logical_id(resource_of(function))
        acknowledge(
            role,
            f"AwsSolutions-IAM5[Resource::<{function_id}.Arn>:*]",
            "lambda:InvokeFunction on the versions and aliases of exactly the scheduled function (CDK "
            "grants the function ARN and its qualified ARNs together).",
        )
        self.schedules[id] = schedule
        return schedule
