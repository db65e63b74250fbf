"""The enrollment and deprovision state machines (Step Functions Standard).

Every task is a ``lambda:invoke`` of one step function (functions/provision/catalog.py) with the
function ARN as the resource (``payload_response_only``): the definition the local stack and the
workflow tests execute in moto is exactly this one, taken from the synthesized template.

Enrollment: RecordPayment → Enroll → Choice(track): DP → Parallel[StudentDatabase → Superset,
Prefect, Jupyter] · FSD → Workspace → AssignTrainer → UnlockFirstProject → SendWelcomeEmail.
Transient errors retry with backoff by name; anything else is caught → RecordProvisioningFailure →
AlertOps → Fail. The welcome email's failure is caught on its own and ends in success: an email
never undoes an enrollment.

Deprovision: every tool's deprovision in its own Parallel branch (each tolerant of a tool never
provisioned, skipping a tool that is not configured, and leaving alone a tool another payment's
enrollment provisioned) → RecordDeprovisioned. A tool outage retries for hours in its own branch and
is then caught there as PENDING, so it never blocks the other tools; RecordDeprovisioned records
what was taken back and fails the run (recorded and alerted) when anything is still pending.

Every task retries Lambda's own errors (throttling above a step's reserved concurrency among them)
with full jitter and a long ceiling: a burst waits instead of failing. Both machines' first states
copy exactly the fields of their input contract (apranova/workflow_inputs.py).
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from apranova.workflow_inputs import STATE_FIELDS
from cdk.constructs.cfn import resource_of
from cdk.constructs.nag import acknowledge
from functions.provision.catalog import DP_TOOLS, FSD_TOOLS, LAMBDA_SERVICE_ERRORS, TOOL_STEPS, TRANSIENT_ERRORS

STEP_NAMES = {
    "STUDENT_DATABASE": "StudentDatabase",
    "SUPERSET": "Superset",
    "PREFECT": "Prefect",
    "JUPYTER": "Jupyter",
    "WORKSPACE": "Workspace",
}

# Lambda's own errors (throttling): 2 s doubling to at most 5 min a wait, full jitter, ~35 min in all.
SERVICE_RETRY = {"interval": 2, "backoff_rate": 2.0, "max_attempts": 12, "max_delay": 300}
# A tool down while it is taken back: 5 min doubling to at most an hour, ~5 h in all (less with
# jitter); its branch then records it as pending and the run is alerted.
OUTAGE_RETRY = {"interval": 300, "backoff_rate": 2.0, "max_attempts": 8, "max_delay": 3600}


class Workflows(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        steps: Mapping[str, lambda_.IFunction],
        stage: str,
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH,
        removal_policy: RemovalPolicy = RemovalPolicy.DESTROY,
        retry_interval_seconds: int = 2,
        retry_attempts: int = 4,
    ) -> None:
        super().__init__(scope, id)
        self._steps = steps
        self._retry_interval = Duration.seconds(retry_interval_seconds)
        self._retry_attempts = retry_attempts
        self.enrollment = self._machine(
            "Enrollment", f"apranova-{stage}-enrollment", self._enrollment(), log_retention, removal_policy
        )
        self.deprovision = self._machine(
            "Deprovision",
            f"apranova-{stage}-deprovision",
            self._deprovision(),
            log_retention,
            removal_policy,
            timeout_hours=24,  # a tool outage is retried for hours (OUTAGE_RETRY)
        )

    # --- building blocks ----------------------------------------------------------------------------

    def _task(
        self, id: str, step: str, *, result_path: str | None = "$", retry: bool = True, outage: bool = False
    ) -> tasks.LambdaInvoke:
        """One step; ``outage``: a tool taken back, whose transient errors retry for hours."""
        task = tasks.LambdaInvoke(
            self,
            id,
            lambda_function=self._steps[step],
            payload_response_only=True,
            retry_on_service_exceptions=False,  # the service retry below replaces CDK's default one
            result_path=sfn.JsonPath.DISCARD if result_path is None else result_path,
        )
        task.add_retry(
            errors=list(LAMBDA_SERVICE_ERRORS),
            interval=Duration.seconds(SERVICE_RETRY["interval"]),
            backoff_rate=SERVICE_RETRY["backoff_rate"],
            max_attempts=SERVICE_RETRY["max_attempts"],
            max_delay=Duration.seconds(SERVICE_RETRY["max_delay"]),
            jitter_strategy=sfn.JitterType.FULL,
        )
        if outage:
            task.add_retry(
                errors=list(TRANSIENT_ERRORS),
                interval=Duration.seconds(OUTAGE_RETRY["interval"]),
                backoff_rate=OUTAGE_RETRY["backoff_rate"],
                max_attempts=OUTAGE_RETRY["max_attempts"],
                max_delay=Duration.seconds(OUTAGE_RETRY["max_delay"]),
                jitter_strategy=sfn.JitterType.FULL,
            )
        elif retry:
            task.add_retry(
                errors=list(TRANSIENT_ERRORS),
                interval=self._retry_interval,
                backoff_rate=2,
                max_attempts=self._retry_attempts,
            )
        return task

    def _failure(self, prefix: str) -> sfn.IChainable:
        """RecordProvisioningFailure → AlertOps → Fail (the caught error is in ``$.error``)."""
        record = self._task(f"{prefix}RecordProvisioningFailure", "provision-record-failure")
        alert = self._task(f"{prefix}AlertOps", "provision-alert-ops")
        return record.next(alert).next(sfn.Fail(self, f"{prefix}Failed", error="ProvisioningFailed"))

    @staticmethod
    def _catch(state: sfn.TaskStateBase | sfn.Parallel, handler: sfn.IChainable) -> None:
        state.add_catch(handler, errors=[sfn.Errors.ALL], result_path="$.error")

    def _tools(self, prefix: str, tools: tuple[str, ...], after: dict[str, str] | None = None) -> sfn.Parallel:
        """One branch per tool; a tool named in ``after`` runs after the tool it needs, in its branch."""
        after = after or {}
        tasks_by_tool = {t: self._task(f"{prefix}{STEP_NAMES[t]}", TOOL_STEPS[t], result_path=None) for t in tools}
        parallel = sfn.Parallel(self, f"{prefix}Tools", result_path=sfn.JsonPath.DISCARD)
        for tool in tools:
            if tool in after:
                continue  # runs in the branch of the tool it follows
            followers = [t for t, needed in after.items() if needed == tool]
            branch = sfn.Chain.start(tasks_by_tool[tool])
            for follower in followers:
                branch = branch.next(tasks_by_tool[follower])
            parallel.branch(branch)
        return parallel

    def _start(self, prefix: str, workflow: str, action: str) -> tuple[sfn.Pass, sfn.Pass]:
        """The first two states: name the run, then keep only the input contract's fields, which
        every start site sends (apranova/workflow_inputs.py)."""
        start = sfn.Pass(
            self,
            f"Start{prefix}",
            result=sfn.Result.from_object({"workflow": workflow, "action": action}),
            result_path="$.run",
        )
        flatten = sfn.Pass(
            self,
            f"{prefix}Run",
            parameters={
                **{f"{field}.$": f"$.{field}" for field in STATE_FIELDS},
                "workflow.$": "$.run.workflow",
                "action.$": "$.run.action",
            },
        )
        return start, flatten

    # --- the machines -------------------------------------------------------------------------------

    def _enrollment(self) -> sfn.IChainable:
        failure = self._failure("Enrollment")
        start, flatten = self._start("Enrollment", "enrollment", "provision")
        record_payment = self._task("RecordPayment", "provision-record-payment")
        # A payment not committed yet (or still PENDING) is transient: waited for with backoff,
        # about two minutes in all, never a permanent failure (functions/provision/steps/record_payment.py).
        record_payment.add_retry(
            errors=["PaymentNotYetSettled"], interval=Duration.seconds(1), backoff_rate=2, max_attempts=7
        )
        enroll = self._task("Enroll", "provision-enroll")
        # Superset's database connection is the student's own database: it follows that step in its
        # branch instead of waiting for it through a retry.
        dp_tools = self._tools("Dp", DP_TOOLS, after={"SUPERSET": "STUDENT_DATABASE"})
        workspace = self._task("Workspace", TOOL_STEPS[FSD_TOOLS[0]], result_path=None)
        assign = self._task("AssignTrainer", "provision-assign-trainer")
        unlock = self._task("UnlockFirstProject", "provision-unlock-first-project")
        welcome = self._task("SendWelcomeEmail", "provision-welcome-email")
        unknown_track = sfn.Pass(
            self,
            "UnknownTrack",
            result=sfn.Result.from_object(
                {"Error": "InvalidInput", "Cause": '{"errorMessage": "no tools for this track"}'}
            ),
            result_path="$.error",
        )
        enrolled = sfn.Succeed(self, "Enrolled")
        email_failed = sfn.Pass(self, "WelcomeEmailNotSent", result_path=sfn.JsonPath.DISCARD).next(
            sfn.Succeed(self, "EnrolledWithoutWelcomeEmail")
        )
        for state in (record_payment, enroll, dp_tools, workspace, assign, unlock):
            self._catch(state, failure)
        welcome.add_catch(email_failed, errors=[sfn.Errors.ALL], result_path="$.email_error")
        unknown_track.next(failure)

        after_tools = assign.next(unlock).next(welcome).next(enrolled)
        by_track = (
            sfn.Choice(self, "ByTrack")
            .when(sfn.Condition.string_equals("$.track", "DP"), dp_tools.next(after_tools))
            .when(sfn.Condition.string_equals("$.track", "FSD"), workspace.next(after_tools))
            .otherwise(unknown_track)
        )
        return start.next(flatten).next(record_payment).next(enroll).next(by_track)

    def _deprovision(self) -> sfn.IChainable:
        failure = self._failure("Deprovision")
        start, flatten = self._start("Deprovision", "deprovision", "deprovision")
        # Each branch ends with its tool's outcome (DEPROVISIONED, NOT_CONFIGURED, NOT_THIS_PAYMENT,
        # or PENDING with the error once its retries are spent): the list is $.tools.
        tools = sfn.Parallel(self, "DeprovisionTools", result_path="$.tools")
        for tool in (*DP_TOOLS, *FSD_TOOLS):
            name = f"Deprovision{STEP_NAMES[tool]}"
            task = self._task(name, TOOL_STEPS[tool], outage=True)
            pending = sfn.Pass(
                self,
                f"{name}Pending",
                parameters={"tool": tool, "action": "deprovision", "outcome": "PENDING", "error.$": "$.error"},
            )
            task.add_catch(pending, errors=[sfn.Errors.ALL], result_path="$.error")
            tools.branch(task)
        done = self._task("RecordDeprovisioned", "provision-record-deprovisioned")
        self._catch(tools, failure)
        self._catch(done, failure)
        return start.next(flatten).next(tools).next(done).next(sfn.Succeed(self, "Deprovisioned"))

    def _machine(
        self,
        id: str,
        name: str,
        definition: sfn.IChainable,
        retention: logs.RetentionDays,
        removal: RemovalPolicy,
        timeout_hours: int = 2,
    ) -> sfn.StateMachine:
        log_group = logs.LogGroup(self, f"{id}Logs", retention=retention, removal_policy=removal)
        machine = sfn.StateMachine(
            self,
            id,
            state_machine_name=name,
            state_machine_type=sfn.StateMachineType.STANDARD,
            definition_body=sfn.DefinitionBody.from_chainable(definition),
            timeout=Duration.hours(timeout_hours),
            tracing_enabled=True,
            logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=True),
        )
        acknowledge(
            machine.role,
            "AwsSolutions-IAM5[Resource::*]",
            "Only actions AWS does not scope to a resource: X-Ray PutTraceSegments/"
            "PutTelemetryRecords/GetSamplingRules/GetSamplingTargets (tracing) and the CloudWatch "
            "Logs delivery actions Step Functions needs to log to its log group.",
        )
        for step in self._steps.values():
            stack_id = Stack.of(self).get_logical_id(resource_of(step))
            acknowledge(
                machine.role,
                f"AwsSolutions-IAM5[Resource::<{stack_id}.Arn>:*]",
                "lambda:InvokeFunction on the versions and aliases of exactly this step function "
                "(CDK grants the function ARN and its qualified ARNs together).",
            )
        return machine
