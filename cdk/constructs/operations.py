"""Operations: the ops topic, the alarms and the dashboard.

Built last in the stack, it looks the stack over instead of taking a list: every house function
(``PythonFunction``: API functions, workflow steps, scheduled functions, the migration) gets an
Errors and a Throttles alarm, every state machine a failed- and a timed-out-executions alarm, every
dead-letter queue a depth alarm (any other queue an age-of-oldest-message alarm), so whatever the
stack gains is watched without an edit here. Besides those: the API's 5xx rate and p95/p99 latency,
the database's CPU, connections and free storage, and SES's bounce and complaint rates.

Every function's log group also has a metric filter on the ``ALERT: ...`` lines of
``apranova.alerts`` (``alert_filter_pattern``), all counted in one metric of the stage
(``Alerts-<stage>`` in the house namespace) whose alarm pages on the first alert.

Every alarm notifies the ops topic (KMS-encrypted with a key CloudWatch may use, TLS only, the ops
email subscribed when ``opsEmail`` is set). Missing data never alarms: a function nobody called has
no datapoints, and that is fine.

It is a nested stack: its ~70 alarms and ~30 metric filters would otherwise count against the main
stack's limit of 500 resources. CloudFormation passes it the names it watches as parameters (CDK wires them).
"""

from __future__ import annotations

from collections.abc import Iterable

from aws_cdk import CfnOutput, Duration, NestedStack, RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct, IConstruct

from apranova.alerts import ALERT_PREFIX
from cdk.constructs.database import Database
from cdk.constructs.email import CONFIGURATION_SET_DIMENSION, Email
from cdk.constructs.http_api import HttpApi
from cdk.constructs.python_function import METRICS_NAMESPACE, PythonFunction
from cdk.constructs.schedules import Schedules
from cdk.constructs.students_database import StudentsDatabase

PERIOD = Duration.minutes(5)
# The API: more than 5 % of requests answered 5xx (once at least 10 came in a period), p95 above a
# second or p99 above three, in 3 periods running; single slow cold starts do not page anyone.
API_5XX_PERCENT = 5
API_MIN_REQUESTS = 10
API_P95_MS = 1000
API_P99_MS = 3000
# A function whose concurrency is capped on purpose throttles in a burst by design (its callers retry):
# only throttling for 3 periods running means work is piling up.
CAPPED_THROTTLE_PERIODS = 3
# The database: CPU above 80 % for 15 minutes, connections above 80 % of max_connections, less than
# 2 GiB of storage left (storage autoscaling grows it up to the maximum; this fires near the end).
DB_CPU_PERCENT = 80
DB_CONNECTIONS_FRACTION = 0.8
DB_FREE_STORAGE_BYTES = 2 * 1024**3
# SES reviews an account at a 5 % bounce rate or a 0.1 % complaint rate (and pauses it at twice
# those): the alarms fire at half, with time to act. The account's rates are what SES enforces.
SES_BOUNCE_RATE = 0.025
SES_COMPLAINT_RATE = 0.0005
SES_PERIOD = Duration.hours(1)
# A queue that is not a dead-letter queue alarms when its oldest message waits this long.
QUEUE_MAX_AGE = Duration.hours(1)


def alert_metric_name(stage: str) -> str:
    """The metric the ``ALERT`` log lines of a stage are counted in (stages may share an account)."""
    return f"Alerts-{stage}"


def alert_filter_pattern() -> logs.IFilterPattern:
    """The JSON log lines (Powertools) whose message starts with ``apranova.alerts.ALERT_PREFIX``."""
    return logs.FilterPattern.string_value("$.message", "=", f"{ALERT_PREFIX}*")


def _unique(construct: IConstruct) -> str:
    """A readable construct id from a construct's path below the stack (ids are unique per path)."""
    return "-".join(construct.node.path.split("/")[1:])


class Operations(NestedStack):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        stage: str,
        api: HttpApi,
        database: Database,
        email: Email,
        ops_email: str | None = None,
        production: bool = False,
        students_database: StudentsDatabase | None = None,
    ) -> None:
        super().__init__(scope, id, description=f"ApraNova ({stage}): alarms, the ops topic and the dashboard")
        stack = Stack.of(scope)  # the stack being watched (``self`` is the nested one)
        self._stage = stage
        self.alarms: dict[str, cw.Alarm] = {}

        # CloudWatch publishes to the encrypted topic with this key (aws/sns cannot grant it).
        self.key = kms.Key(
            self,
            "TopicKey",
            alias=f"alias/apranova-{stage}-operations",
            description=f"ApraNova {stage}: the operations alarm topic",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN if production else RemovalPolicy.DESTROY,
        )
        cloudwatch = iam.ServicePrincipal("cloudwatch.amazonaws.com")
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsPublish",
                principals=[cloudwatch],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],  # in a key policy: this key
                conditions={"StringEquals": {"aws:SourceAccount": self.account}},
            )
        )
        self.topic = sns.Topic(
            self, "Topic", display_name=f"ApraNova {stage} operations", master_key=self.key, enforce_ssl=True
        )
        # The topic's policy replaces SNS's default one: the alarms of this account must be let in.
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsPublish",
                principals=[cloudwatch],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={
                    "StringEquals": {"aws:SourceAccount": self.account},
                    "ArnLike": {"aws:SourceArn": self.format_arn(service="cloudwatch", resource="alarm:*")},
                },
            )
        )
        if ops_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(ops_email))
        self._action = actions.SnsAction(self.topic)

        everything = stack.node.find_all()
        functions = [c for c in everything if isinstance(c, PythonFunction)]
        machines = [c for c in everything if isinstance(c, sfn.StateMachine)]
        queues = [c for c in everything if isinstance(c, sqs.Queue)]
        dead_letters = self._dead_letter_queues(everything, queues)

        for function in functions:
            self._function_alarms(function)
        self._alert_alarm(functions)
        for machine in machines:
            name = _unique(machine)
            self._alarm(
                f"{name}-Failed",
                machine.metric_failed(period=PERIOD, statistic=cw.Stats.SUM),
                threshold=1,
                description=f"{name}: an execution failed (see the state machine's executions and log group)",
            )
            self._alarm(
                f"{name}-TimedOut",
                machine.metric_timed_out(period=PERIOD, statistic=cw.Stats.SUM),
                threshold=1,
                description=f"{name}: an execution timed out",
            )
        for queue in queues:
            name = _unique(queue)
            if queue in dead_letters:
                self._alarm(
                    f"{name}-Depth",
                    queue.metric_approximate_number_of_messages_visible(period=PERIOD, statistic=cw.Stats.MAXIMUM),
                    threshold=1,
                    description=f"{name}: a dead letter arrived (a scheduled run or an event that failed every retry)",
                )
            else:
                self._alarm(
                    f"{name}-Age",
                    queue.metric_approximate_age_of_oldest_message(period=PERIOD, statistic=cw.Stats.MAXIMUM),
                    threshold=QUEUE_MAX_AGE.to_seconds(),
                    description=f"{name}: a message has waited over {QUEUE_MAX_AGE.to_hours()} h",
                )
        self._api_alarms(api)
        self._database_alarms(database.instance, database.max_connections, "Database", "the database")
        if students_database is not None:
            self._database_alarms(
                students_database.instance,
                students_database.max_connections,
                "StudentsDatabase",
                "the students' database",
            )
        self._email_alarms()
        self.dashboard = self._dashboard(api, database, email, functions, machines, queues)

        CfnOutput(stack, "OpsTopicArn", value=self.topic.topic_arn, description="Alarms notify this topic")
        CfnOutput(
            stack,
            "DashboardUrl",
            value=(
                f"https://{stack.region}.console.aws.amazon.com/cloudwatch/home?region={stack.region}"
                f"#dashboards:name={self.dashboard.dashboard_name}"
            ),
        )

    # --- alarms -------------------------------------------------------------------------------------

    def _alarm(
        self,
        id: str,
        metric: cw.IMetric,
        *,
        threshold: float,
        description: str,
        periods: int = 1,
        comparison: cw.ComparisonOperator = cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        percentile: bool = False,
    ) -> cw.Alarm:
        alarm = cw.Alarm(
            self,
            id,
            metric=metric,
            threshold=threshold,
            evaluation_periods=periods,
            datapoints_to_alarm=periods,
            comparison_operator=comparison,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            # Named for the email an operator reads: apranova-<stage>-<what>.
            alarm_name=f"apranova-{self._stage}-{id}",
            alarm_description=f"ApraNova {self._stage}: {description}",
            # A percentile over a handful of requests is one request's latency: wait for more.
            evaluate_low_sample_count_percentile="ignore" if percentile else None,
        )
        alarm.add_alarm_action(self._action)
        self.alarms[id] = alarm
        return alarm

    def _function_alarms(self, function: PythonFunction) -> None:
        fn = function.function
        self._alarm(
            f"{function.name}-Errors",
            fn.metric_errors(period=PERIOD, statistic=cw.Stats.SUM),
            threshold=1,
            description=f"{function.name}: a run ended in an unhandled error (see its log group)",
        )
        capped = function.reserved_concurrency is not None
        self._alarm(
            f"{function.name}-Throttles",
            fn.metric_throttles(period=PERIOD, statistic=cw.Stats.SUM),
            threshold=1,
            periods=CAPPED_THROTTLE_PERIODS if capped else 1,
            description=(
                f"{function.name}: throttled for {CAPPED_THROTTLE_PERIODS * 5} minutes at its reserved concurrency "
                f"({function.reserved_concurrency})"
                if capped
                else f"{function.name}: invocations throttled (the account's concurrency is exhausted)"
            ),
        )

    def _alert_alarm(self, functions: list[PythonFunction]) -> None:
        """An ``ALERT`` line in any function's log counts once in the stage's alert metric; one
        alert in a period pages (the line itself, with its details, is in the function's log)."""
        for function in functions:
            logs.MetricFilter(
                self,
                f"{function.name}-AlertFilter",
                log_group=function.log_group,
                filter_pattern=alert_filter_pattern(),
                metric_namespace=METRICS_NAMESPACE,
                metric_name=alert_metric_name(self._stage),
                metric_value="1",
            )
        self._alarm(
            "Alerts",
            cw.Metric(
                namespace=METRICS_NAMESPACE,
                metric_name=alert_metric_name(self._stage),
                period=PERIOD,
                statistic=cw.Stats.SUM,
            ),
            threshold=1,
            description=f"a function logged an alert: see the {ALERT_PREFIX.strip()} line in its log group",
        )

    @staticmethod
    def _dead_letter_queues(everything: Iterable[IConstruct], queues: list[sqs.Queue]) -> set[sqs.IQueue]:
        """Queues that receive what failed: the schedules' queue, any queue's or function's
        dead-letter queue, any queue named as one."""
        found: set[sqs.IQueue] = set()
        for construct in everything:
            if isinstance(construct, Schedules):
                found.add(construct.dead_letters)
            if isinstance(construct, (sqs.Queue, lambda_.Function)) and construct.dead_letter_queue is not None:
                dlq = construct.dead_letter_queue
                found.add(dlq.queue if isinstance(dlq, sqs.DeadLetterQueue) else dlq)
        found.update(q for q in queues if "deadletter" in q.node.id.lower().replace("-", ""))
        return found

    def _api_alarms(self, api: HttpApi) -> None:
        http = api.api
        rate = cw.MathExpression(
            expression=f"IF(requests >= {API_MIN_REQUESTS}, 100 * errors / requests, 0)",
            using_metrics={
                "errors": http.metric_server_error(period=PERIOD, statistic=cw.Stats.SUM),
                "requests": http.metric_count(period=PERIOD, statistic=cw.Stats.SUM),
            },
            label="5xx %",
            period=PERIOD,
        )
        self._alarm(
            "Api-5xxRate",
            rate,
            threshold=API_5XX_PERCENT,
            periods=3,
            comparison=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
            description=f"the API answered more than {API_5XX_PERCENT} % of requests with a 5xx for 15 minutes",
        )
        for statistic, limit in (("p95", API_P95_MS), ("p99", API_P99_MS)):
            self._alarm(
                f"Api-Latency{statistic.upper()}",
                http.metric_latency(period=PERIOD, statistic=statistic),
                threshold=limit,
                periods=3,
                comparison=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
                percentile=True,
                description=f"the API's {statistic} latency was above {limit} ms for 15 minutes",
            )

    def _database_alarms(self, instance, max_connections: int, name: str, what: str) -> None:
        """CPU, connections and free storage of an instance (the application's; the students')."""
        self._alarm(
            f"{name}-Cpu",
            instance.metric_cpu_utilization(period=PERIOD, statistic=cw.Stats.AVERAGE),
            threshold=DB_CPU_PERCENT,
            periods=3,
            comparison=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
            description=f"{what}'s CPU was above {DB_CPU_PERCENT} % for 15 minutes",
        )
        connections = int(max_connections * DB_CONNECTIONS_FRACTION)
        self._alarm(
            f"{name}-Connections",
            instance.metric_database_connections(period=PERIOD, statistic=cw.Stats.MAXIMUM),
            threshold=connections,
            periods=2,
            description=f"{connections} or more connections to {what} (of about {max_connections})",
        )
        self._alarm(
            f"{name}-FreeStorage",
            instance.metric_free_storage_space(period=PERIOD, statistic=cw.Stats.MINIMUM),
            threshold=DB_FREE_STORAGE_BYTES,
            comparison=cw.ComparisonOperator.LESS_THAN_THRESHOLD,
            description=f"less than 2 GiB of storage left on {what}",
        )

    def _email_alarms(self) -> None:
        for metric, limit, what in (
            ("Reputation.BounceRate", SES_BOUNCE_RATE, "bounce"),
            ("Reputation.ComplaintRate", SES_COMPLAINT_RATE, "complaint"),
        ):
            self._alarm(
                f"Email-{what.capitalize()}Rate",
                cw.Metric(namespace="AWS/SES", metric_name=metric, period=SES_PERIOD, statistic=cw.Stats.MAXIMUM),
                threshold=limit,
                comparison=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
                description=(
                    f"the account's SES {what} rate is above {limit:.2%} (SES reviews the account at twice that): "
                    "see the email events topic and the suppression list"
                ),
            )

    # --- dashboard ----------------------------------------------------------------------------------

    def _dashboard(
        self,
        api: HttpApi,
        database: Database,
        email: Email,
        functions: list[PythonFunction],
        machines: list[sfn.StateMachine],
        queues: list[sqs.Queue],
    ) -> cw.Dashboard:
        http = api.api
        instance = database.instance
        per_set = {CONFIGURATION_SET_DIMENSION: email.configuration_set_name}
        dashboard = cw.Dashboard(
            self, "Dashboard", dashboard_name=f"apranova-{self._stage}", default_interval=Duration.hours(6)
        )
        dashboard.add_widgets(
            cw.AlarmStatusWidget(
                title="Alarms",
                alarms=list(self.alarms.values()),
                width=24,
                height=4,
                sort_by=cw.AlarmStatusWidgetSortBy.STATE_UPDATED_TIMESTAMP,
            )
        )
        dashboard.add_widgets(
            cw.GraphWidget(
                title="API requests",
                left=[
                    http.metric_count(period=PERIOD, statistic=cw.Stats.SUM, label="requests"),
                    http.metric_client_error(period=PERIOD, statistic=cw.Stats.SUM, label="4xx"),
                    http.metric_server_error(period=PERIOD, statistic=cw.Stats.SUM, label="5xx"),
                ],
                width=12,
            ),
            cw.GraphWidget(
                title="API latency (ms)",
                left=[http.metric_latency(period=PERIOD, statistic=s, label=s) for s in ("p50", "p95", "p99")],
                width=12,
            ),
        )
        dashboard.add_widgets(
            cw.GraphWidget(
                title="Function errors",
                left=[f.function.metric_errors(period=PERIOD, statistic=cw.Stats.SUM, label=f.name) for f in functions],
                width=12,
            ),
            cw.GraphWidget(
                title="Function throttles",
                left=[
                    f.function.metric_throttles(period=PERIOD, statistic=cw.Stats.SUM, label=f.name) for f in functions
                ],
                width=12,
            ),
        )
        dashboard.add_widgets(
            cw.GraphWidget(
                title="Workflow executions",
                left=[
                    metric
                    for m in machines
                    for metric in (
                        m.metric_started(period=PERIOD, statistic=cw.Stats.SUM, label=f"{m.node.id} started"),
                        m.metric_failed(period=PERIOD, statistic=cw.Stats.SUM, label=f"{m.node.id} failed"),
                        m.metric_timed_out(period=PERIOD, statistic=cw.Stats.SUM, label=f"{m.node.id} timed out"),
                    )
                ],
                width=12,
            ),
            cw.GraphWidget(
                title="Queues (messages waiting)",
                left=[
                    q.metric_approximate_number_of_messages_visible(
                        period=PERIOD, statistic=cw.Stats.MAXIMUM, label=_unique(q)
                    )
                    for q in queues
                ],
                width=12,
            ),
        )
        dashboard.add_widgets(
            cw.GraphWidget(
                title="Database CPU (%)",
                left=[instance.metric_cpu_utilization(period=PERIOD)],
                width=8,
            ),
            cw.GraphWidget(
                title="Database connections",
                left=[instance.metric_database_connections(period=PERIOD, statistic=cw.Stats.MAXIMUM)],
                width=8,
            ),
            cw.GraphWidget(
                title="Database free storage (bytes)",
                left=[instance.metric_free_storage_space(period=PERIOD, statistic=cw.Stats.MINIMUM)],
                width=8,
            ),
        )
        dashboard.add_widgets(
            cw.GraphWidget(
                title="SES reputation (account)",
                left=[
                    cw.Metric(
                        namespace="AWS/SES", metric_name=name, period=SES_PERIOD, statistic=cw.Stats.MAXIMUM, label=name
                    )
                    for name in ("Reputation.BounceRate", "Reputation.ComplaintRate")
                ],
                width=12,
            ),
            cw.GraphWidget(
                title=f"Email through {email.configuration_set_name}",
                left=[
                    cw.Metric(
                        namespace="AWS/SES",
                        metric_name=name,
                        dimensions_map=per_set,
                        period=SES_PERIOD,
                        statistic=cw.Stats.SUM,
                        label=name.lower(),
                    )
                    for name in ("Send", "Delivery", "Bounce", "Complaint", "Reject")
                ],
                width=12,
            ),
        )
        return dashboard
