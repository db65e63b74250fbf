"""ApraNova-<stage>: the API, its functions, the common layer, the user pool, the database, the
buckets, the enrollment and deprovision workflows with their step functions, the per-student tools'
infrastructure (students' database access, workspaces) and the scheduled idle-workspace stopper."""

from __future__ import annotations

import re
from collections.abc import Mapping

import jsii
from aws_cdk import ArnFormat, CfnOutput, Duration, IStableStringProducer, Lazy, RemovalPolicy, Stack, triggers
from aws_cdk import aws_apigatewayv2_authorizers as authorizers
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_logs as logs
from aws_cdk import aws_scheduler as scheduler
from constructs import Construct

from apranova import inventory, routes
from apranova.inventory import Network
from cdk.constructs.cfn import resource_of
from cdk.constructs.common_layer import CommonLayer
from cdk.constructs.database import APP_USER, PORT, Database
from cdk.constructs.email import PLACEHOLDER_SENDER, Email
from cdk.constructs.http_api import HttpApi
from cdk.constructs.identity import Identity
from cdk.constructs.nag import acknowledge
from cdk.constructs.operations import Operations
from cdk.constructs.python_function import PythonFunction
from cdk.constructs.schedules import Schedules
from cdk.constructs.shared_tools import FrontDoorSettings, SharedTools, ToolSecrets
from cdk.constructs.storage import EXPORTS_PREFIX, SUBMISSIONS_PREFIX, Storage
from cdk.constructs.student_tools import STUDENTS_DB_NAME, StudentTools
from cdk.constructs.students_database import STUDENTS_DATABASE_MODES, StudentsDatabase
from cdk.constructs.web_hosting import WebHosting
from cdk.constructs.workflows import Workflows
from cdk.constructs.workspaces import DEFAULT_IMAGE, Workspaces
from functions.provision.catalog import STEP_FUNCTIONS, TOOL_STEPS

# Every function's handler, trigger, network placement, limits, schedule and AWS actions are its row
# in the function inventory (apranova/inventory.py); tests/infra/test_inventory.py holds this stack
# to it. What follows is what a row does not say: which settings each function is given.

# The functions whose code reads the user pool's settings (apranova.cognito): the others are not
# given its ids, whatever they could do with them.
COGNITO_FUNCTIONS = frozenset({"auth", "admin", "payments-webhook", "compliance"})
# Repository paths a route function's asset carries besides its own folder (bundled at the same
# path, so they import as packages): the tools API uses the provisioners' code (the workspace).
FUNCTION_EXTRA_PATHS = {"tools": ("functions/provision",)}
# A daily job whose run failed may be retried for an hour; after that the next day's run resumes it.
DAILY_EVENT_AGE = Duration.hours(1)
RECONCILE_ALERT = "Reconcile found payments left behind"  # functions/payments/reconcile_service.py
# The workflow steps that send email (the welcome email; operator alerts).
EMAIL_STEPS = frozenset({"provision-welcome-email", "provision-alert-ops", "provision-assign-trainer"})
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
# Functions that send email (students' notices, operator alerts) through SES: the payments ones, the
# submissions function (submission received, to the student and the trainer) and the trainer
# function (review results, project unlocked, track completed).
# auth: a sign-up with an address that has an account emails its owner (with a sign-in link).
EMAIL_FUNCTIONS = PAYMENT_FUNCTIONS | {"submissions", "trainer", "compliance", "auth"}
# Of those, the ones that also alert the operators (apranova.alerts reads OPS_EMAIL).
ALERT_FUNCTIONS = PAYMENT_FUNCTIONS
# Functions whose emails link to the SPA (SPA_ORIGIN); the payments ones get it with their checkout URLs.
SPA_LINK_FUNCTIONS = frozenset({"submissions", "trainer", "compliance", "auth"})
# The sender when the operator configures none: a reserved domain, so a dev stack synthesizes and
# deploys, and SES refuses to send until a verified sender is configured (docs/operations.md).
DEFAULT_EMAIL_SENDER = PLACEHOLDER_SENDER
# The cost profiles (``-c costProfile=...``, docs/operations.md): standard, or lean for a cheap dev
# stage (a NAT instance, no interface endpoints, every VPC function routed through the NAT).
COST_PROFILES = ("standard", "lean")
# The optional GitHub token (a SecureString the operator creates): the submissions function sends
# it when present (5,000 requests an hour instead of 60 per NAT address).
GITHUB_TOKEN_PARAMETER = "github/token"  # noqa: S105 - a parameter name, not a token


def parameter_name(stage: str, suffix: str) -> str:
    return f"/apranova/{stage}/{suffix}"


def _schedule_of(fn: PythonFunction) -> scheduler.ScheduleExpression:
    """The function's schedule, as its inventory row gives it."""
    expression = inventory.get(fn.name).schedule
    if expression is None:
        raise ValueError(f"{fn.name} has no schedule in the function inventory")
    return scheduler.ScheduleExpression.expression(expression)


def _period_of(fn: PythonFunction) -> Duration:
    """How often a ``rate(N minutes)`` schedule runs the function (an alarm's period)."""
    found = re.fullmatch(r"rate\((\d+) minutes?\)", inventory.get(fn.name).schedule or "")
    if found is None:
        raise ValueError(f"{fn.name}: not a rate in minutes")
    return Duration.minutes(int(found.group(1)))


@jsii.implements(IStableStringProducer)
class _WebOrigin:
    """The web app's origin on its distribution's generated domain, for the settings made before the
    web hosting stack (which needs the API) exists: the functions' links and checkout URLs."""

    def __init__(self, stack: ApraNovaStack) -> None:
        self.stack = stack

    def produce(self) -> str:
        return self.stack.web.origin


class ApraNovaStack(Stack):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        stage: str,
        web_domain: str | None = None,
        web_certificate_arn: str | None = None,
        ses_sender_arn: str | None = None,
        email_sender: str = DEFAULT_EMAIL_SENDER,
        ops_email: str | None = None,
        workspace_image: str = DEFAULT_IMAGE,
        workspace_url_template: str | None = None,
        tool_urls: Mapping[str, str] | None = None,
        throttle_rate: int = 100,
        throttle_burst: int = 200,
        cost_profile: str = "standard",
        database_access: bool = False,
        workspace_image_cache_secret_arn: str | None = None,
        api_domain_name: str | None = None,
        api_certificate_arn: str | None = None,
        students_database: str = "dedicated",
        front_door: FrontDoorSettings | None = None,
        tool_image_digests: Mapping[str, str] | None = None,
        **kwargs,
    ) -> None:
        super().__init__(scope, id, **kwargs)
        # Context checked before anything is built: a bad value fails the synth at once, by name.
        if email_sender.count("@") != 1 or not email_sender.split("@")[1]:
            raise ValueError(f"emailSender must be an email address, not {email_sender!r}")
        # The web app's origin (the web hosting stack, below): a custom domain's, known now, or the
        # distribution's generated one, known once the distribution exists. Every email link, the
        # checkout's return URLs and CORS (the API's, the uploads bucket's) name it.
        static_origin = f"https://{web_domain}" if web_domain else None
        spa = static_origin or Lazy.string(_WebOrigin(self))
        payment_env = {
            "SPA_ORIGIN": spa,
            # Stripe replaces {CHECKOUT_SESSION_ID} when it redirects the student back.
            "CHECKOUT_SUCCESS_URL": f"{spa}/payment/success?session_id={{CHECKOUT_SESSION_ID}}",
            "CHECKOUT_CANCEL_URL": f"{spa}/payment/cancelled",
        }
        production = stage == "prod"
        # The SES identity and configuration set every email goes through (bounces and complaints).
        self.email = Email(
            self,
            "Email",
            stage=stage,
            sender=email_sender,
            ses_sender_arn=ses_sender_arn,
            ops_email=ops_email,
            production=production,
        )
        email_env = {"EMAIL_SENDER": email_sender, "EMAIL_CONFIGURATION_SET": self.email.configuration_set_name}
        alert_env = {"OPS_EMAIL": ops_email} if ops_email else {}

        removal = RemovalPolicy.RETAIN if production else RemovalPolicy.DESTROY
        retention = logs.RetentionDays.SIX_MONTHS if production else logs.RetentionDays.ONE_MONTH

        layer = CommonLayer(self, "CommonLayer").layer
        if cost_profile not in COST_PROFILES:
            raise ValueError(f"costProfile must be one of {', '.join(COST_PROFILES)}, not {cost_profile!r}")
        if students_database not in STUDENTS_DATABASE_MODES or (production and students_database != "dedicated"):
            raise ValueError(
                f"studentsDatabase must be dedicated in production, or shared elsewhere, not {students_database!r}"
            )
        database = Database(
            self,
            "Database",
            stage=stage,
            production=production,
            lean=cost_profile == "lean",
            cognito_endpoint=front_door is None,
        )
        if database_access:
            # An operator's way in to the isolated database, only while asked for (docs/operations.md).
            database.add_operator_access()
        storage = Storage(self, "Storage", spa_origin=static_origin)
        identity = Identity(self, "Identity", stage=stage, production=production, ses_sender_arn=ses_sender_arn)
        self.identity = identity
        cognito_env = {
            "COGNITO_USER_POOL_ID": identity.user_pool.user_pool_id,
            "COGNITO_CLIENT_ID": identity.client.user_pool_client_id,
        }

        def function(name: str, **options) -> PythonFunction:
            """``name``'s function as its inventory row says: handler, network, limits, and its
            connection to the database; ``options`` give it its settings."""
            row = inventory.get(name)
            in_vpc = row.network is not Network.OUTSIDE
            fn = PythonFunction(
                self,
                f"Fn-{name}",
                name=name,
                layer=layer,
                stage=stage,
                log_retention=retention,
                removal_policy=removal,
                handler_module=row.handler,
                vpc=database.vpc if in_vpc else None,
                # The lean profile has no interface endpoints: all its VPC functions go out by the NAT.
                # Once the user pool has a domain (the tools' front door), Cognito refuses PrivateLink:
                # its callers go out by the NAT instead of the cognito-idp endpoint.
                egress=in_vpc
                and (
                    row.network is Network.EGRESS
                    or database.lean
                    or (front_door is not None and any(a.startswith("cognito-idp:") for a in row.actions))
                ),
                reserved_concurrency=row.reserved_concurrency,
                timeout=Duration.seconds(row.timeout_s),
                memory_size=row.memory_mb,
                **options,
            )
            if row.uses_database:
                database.connect_function(fn)
            return fn

        # The students' own instance (a nested stack), unless this stage shares the application's.
        self.students_database = (
            StudentsDatabase(
                self, "StudentsDatabase", stage=stage, vpc=database.vpc, production=production, lean=database.lean
            )
            if students_database == "dedicated"
            else None
        )
        if database_access and self.students_database is not None:
            self.students_database.allow_from(database.operator_access_group, "operator port forwarding")
        # What the per-student tools share, and where the workspaces run.
        tools = StudentTools(
            self, "Tools", stage=stage, database=database, production=production, tool_urls=tool_urls,
            students_database=self.students_database,
        )  # fmt: skip
        self.tools = tools
        workspaces = Workspaces(
            self,
            "Workspaces",
            vpc=database.vpc,
            stage=stage,
            tools=tools,
            image=workspace_image,
            # Behind the front door, the workspace link is the proxy's host (never a private IP).
            url_template=workspace_url_template or (f"{front_door.url('workspace')}/" if front_door else None),
            production=production,
            log_retention=retention,
            removal_policy=removal,
            image_cache_secret_arn=workspace_image_cache_secret_arn,
        )
        self.workspaces = workspaces

        def environment(name: str) -> dict[str, str]:
            env = dict(cognito_env) if name in COGNITO_FUNCTIONS else {}
            if name == "curriculum":
                env["DATASETS_BUCKET"] = storage.datasets.bucket_name
            if name == "submissions":
                env["UPLOADS_BUCKET"] = storage.uploads.bucket_name
                env["GITHUB_TOKEN_PARAM"] = parameter_name(stage, GITHUB_TOKEN_PARAMETER)
            if name == "trainer":  # signs download links of the files it reviews
                env["UPLOADS_BUCKET"] = storage.uploads.bucket_name
            if name in SPA_LINK_FUNCTIONS:
                env["SPA_ORIGIN"] = spa
            if name == "tools":
                env.update(tools.students_db_environment())
                env.update(workspaces.environment())
            if name in PAYMENT_FUNCTIONS:
                env.update(payment_env)
            if name in EMAIL_FUNCTIONS:
                env.update(email_env)
            if name in ALERT_FUNCTIONS:
                env.update(alert_env)
            for variable in PAYMENT_SECRETS.get(name, ()):
                env[variable] = parameter_name(stage, STRIPE_PARAMETERS[variable])
            for variable in WORKFLOW_STARTERS.get(name, ()):
                if workflows[variable]:
                    env[variable] = workflows[variable]
            return env

        # The workflow steps (one function each, each with only its own settings and grants) and the
        # state machines that invoke them.
        tool_of_step = {step: tool for tool, step in TOOL_STEPS.items()}
        self.steps: dict[str, PythonFunction] = {}
        for name in STEP_FUNCTIONS:
            env = {**email_env, **alert_env} if name in EMAIL_STEPS else {}
            if name == "provision-welcome-email":
                env["SPA_ORIGIN"] = spa
            self.steps[name] = function(name, environment=env)
            if name in tool_of_step:
                self._tool_step(tool_of_step[name], self.steps[name], tools, workspaces)
        self.workflows = Workflows(
            self,
            "Workflows",
            steps={name: fn.function for name, fn in self.steps.items()},
            stage=stage,
            log_retention=retention,
            removal_policy=removal,
        )
        workflows = {
            "ENROLLMENT_STATE_MACHINE_ARN": self.workflows.enrollment.state_machine_arn,
            "DEPROVISION_STATE_MACHINE_ARN": self.workflows.deprovision.state_machine_arn,
        }

        self.functions: dict[str, PythonFunction] = {}
        for name in routes.functions():
            self.functions[name] = function(
                name, environment=environment(name), extra_paths=FUNCTION_EXTRA_PATHS.get(name, ())
            )
        if "tools" in self.functions:
            # The student reads their own tool passwords; the workspace routes start and stop tasks.
            role = self.functions["tools"].role
            tools.grant_student_secrets(role, ["db-password", "superset-password", "workspace-password"], decrypt=True)
            workspaces.grant_start_stop(role)
            # jupyter-access asks the hub for the student's one-time sign-in link.
            tools.grant_tool_parameters(role, "jupyterhub")
        # The Cognito admin actions each route function's row lists, on this stack's user pool only
        # (the auth function's other calls, SignUp, InitiateAuth, ..., are authorized by the client id
        # or the caller's own token, not by IAM).
        for fn in self.functions.values():
            self._grant_cognito(fn, identity)
        self._grant_payments(stage, email_sender)
        if "submissions" in self.functions:
            self._grant_secure_parameters(self.functions["submissions"].role, [GITHUB_TOKEN_PARAMETER], stage)

        self.migrate = function(
            "migrate",
            extra_paths=["migrations"],
            environment={"DATASETS_BUCKET": storage.datasets.bucket_name},
            description=f"ApraNova migrations, seed and datasets ({stage}); run by a deploy trigger",
        )
        database.connect_migrations(self.migrate)
        # The students' admin database and the closed maintenance databases, on the students' server.
        tools.connect_migrations(self.migrate)
        # The shared tools and their front door (a nested stack), unless there is no domain for it.
        self.shared_tools = (
            self._shared_tools(
                stage=stage,
                production=production,
                front_door=front_door,
                database=database,
                identity=identity,
                tools=tools,
                workspaces=workspaces,
                built=tuple(tool for tool in ("superset", "prefect", "jupyterhub") if tool not in (tool_urls or {})),
                image_digests=tool_image_digests or {},
            )
            if front_door is not None
            else None
        )
        self._grant_datasets(storage)
        self._grant_learning(storage)

        # Running workspaces nobody uses are stopped every few minutes.
        self.idle_stopper = function(
            "workspace-idle-stopper",
            environment=workspaces.environment(),
            description=f"ApraNova idle-workspace stopper ({stage}); run by a schedule",
        )
        workspaces.grant_idle_stop(self.idle_stopper.role)
        self.schedules = Schedules(self, "Schedules", stage=stage)
        self.schedules.add(
            "IdleWorkspaces",
            self.idle_stopper.function,
            _schedule_of(self.idle_stopper),
            description=f"ApraNova {stage}: stop idle workspaces",
        )
        self.student_db_watchdog = self._student_database_watchdog(function, stage=stage, tools=tools, vpc=database.vpc)
        self.compliance_jobs = self._compliance(
            function,
            stage=stage,
            database=database,
            storage=storage,
            identity=identity,
            tools=tools,
            env={**email_env, **alert_env, "SPA_ORIGIN": spa},
        )
        self.reconcile = self._payments_reconcile(
            function, stage=stage, database=database, identity=identity,
            env={**payment_env, **email_env, **alert_env, **cognito_env},
        )  # fmt: skip
        # Migrations run on every deploy that changes the migrate function (its code carries the
        # SQL files), after the database exists and before new API code is deployed.
        self.migration_trigger = triggers.Trigger(
            self,
            "RunMigrations",
            handler=self.migrate.function,
            # After the master secret's rotation schedule exists (created without rotating), so
            # nothing changes the password while the migrations sign in with it.
            execute_after=[
                database.instance,
                database.proxy,
                database.rotation_schedule,
                *(
                    [self.students_database.instance, self.students_database.rotation_schedule]
                    if self.students_database is not None
                    else []
                ),
                storage.datasets,
                self.migrate,
            ],
            # Only the functions' code: their security groups are referenced by the proxy's rules.
            # Every function that reads the database waits for the schema it expects.
            execute_before=[
                resource_of(fn.function)
                for fn in [
                    *self.functions.values(),
                    *self.steps.values(),
                    self.idle_stopper,
                    *self.compliance_jobs.values(),
                    self.reconcile,
                ]
            ],
            timeout=Duration.minutes(6),
        )
        if self.shared_tools is not None:
            # The tools start once the migration has made their roles and databases.
            self.shared_tools.node.add_dependency(self.migration_trigger)

        self.api = HttpApi(
            self,
            "Api",
            functions={name: fn.function for name, fn in self.functions.items()},
            spa_origin=static_origin,
            # API Gateway checks the signature, issuer (the pool), expiry and that ``aud`` or
            # ``client_id`` is the SPA client; the scope check refuses ID tokens.
            authorizer=authorizers.HttpUserPoolAuthorizer(
                "Cognito", identity.user_pool, user_pool_clients=[identity.client]
            ),
            throttle_rate=throttle_rate,
            throttle_burst=throttle_burst,
            domain_name=api_domain_name,
            certificate_arn=api_certificate_arn,
            log_retention=retention,
            removal_policy=removal,
        )

        # The web app behind CloudFront, /api/* to the API (a nested stack: docs/operations.md).
        self.web = WebHosting(
            self,
            "Web",
            stage=stage,
            api_id=self.api.api.api_id,
            uploads=storage.uploads,
            access_logs=storage.access_logs,
            domain_name=web_domain,
            certificate_arn=web_certificate_arn,
        )
        if static_origin is None:
            self.web.apply_cors()
        CfnOutput(self, "WebUrl", value=self.web.url, description="The web app (and /api/* on the same origin)")
        if web_domain:
            CfnOutput(
                self,
                "WebDomainTarget",
                value=self.web.distribution.distribution_domain_name,
                description=f"Point {web_domain} here (a CNAME, or a Route 53 alias; docs/operations.md)",
            )
        CfnOutput(self, "ApiUrl", value=self.api.url)
        if self.api.domain is not None:
            CfnOutput(
                self,
                "ApiDomainTarget",
                value=self.api.domain.regional_domain_name,
                description=f"Point {api_domain_name} here (a CNAME, or a Route 53 alias; docs/operations.md)",
            )
        CfnOutput(self, "DatasetsBucket", value=storage.datasets.bucket_name)
        CfnOutput(self, "UploadsBucket", value=storage.uploads.bucket_name)
        CfnOutput(self, "UserPoolId", value=identity.user_pool.user_pool_id)
        CfnOutput(self, "UserPoolClientId", value=identity.client.user_pool_client_id)
        CfnOutput(self, "JwtIssuer", value=identity.issuer)
        CfnOutput(self, "EnrollmentStateMachineArn", value=self.workflows.enrollment.state_machine_arn)
        CfnOutput(self, "DeprovisionStateMachineArn", value=self.workflows.deprovision.state_machine_arn)
        CfnOutput(
            self,
            "StudentsDatabaseHost",
            value=tools.students_db_host,
            description=f"The students' database ({STUDENTS_DB_NAME}) that DP students and the shared tools connect to",
        )
        CfnOutput(
            self,
            "StudentsDatabaseClientSecurityGroup",
            value=tools.students_db_clients.security_group_id,
            description="Attach to the shared tools (Superset, JupyterHub, Prefect) that connect to the students' DB",
        )
        CfnOutput(self, "WorkspaceCluster", value=workspaces.cluster.cluster_name)
        stripe_routes = [r for r in routes.ROUTES if r.access is routes.Access.STRIPE and not r.local_only]
        if stripe_routes:
            CfnOutput(
                self,
                "StripeWebhookUrl",
                value=f"{self.api.url}{stripe_routes[0].path.lstrip('/')}",
                description="The endpoint to register in Stripe (Developers > Webhooks)",
            )

        # Keep this last: it gives every function, state machine and queue built above its alarms.
        self.operations = Operations(
            self,
            "Operations",
            stage=stage,
            api=self.api,
            database=database,
            students_database=self.students_database,
            email=self.email,
            ops_email=ops_email,
            production=production,
        )
        self._reconcile_alarm(stage)

    def _shared_tools(
        self,
        *,
        stage: str,
        production: bool,
        front_door: FrontDoorSettings,
        database: Database,
        identity: Identity,
        tools: StudentTools,
        workspaces: Workspaces,
        built: tuple[str, ...],
        image_digests: Mapping[str, str],
    ) -> SharedTools:
        """The tools the operator did not bring, the workspace proxy and the load balancer in front of
        them (cdk/constructs/shared_tools.py), and what the main stack gives them: the way into the
        workspaces (from the proxy only), the proxy's database login (IAM, through the RDS proxy, as
        the application user: it only reads), and the migration's work for them (each tool's role and
        database; the provisioning steps' admin credentials copied into their SSM SecureStrings)."""
        # The credentials first (the migration reads them); the tools wait for the migration.
        tool_secrets = ToolSecrets(self, "ToolSecrets", stage=stage, production=production, built_tools=built)
        shared = SharedTools(
            self,
            "SharedTools",
            secrets=tool_secrets,
            stage=stage,
            vpc=database.vpc,
            production=production,
            front_door=front_door,
            user_pool=identity.user_pool,
            ssm_prefix=tools.prefix,
            app_database_security_group_id=database.instance.connections.security_groups[0].security_group_id,
            app_database_proxy_security_group_id=database.proxy.connections.security_groups[0].security_group_id,
            app_database_host=database.instance.db_instance_endpoint_address,
            students_server_security_group_id=tools.server.connections.security_groups[0].security_group_id,
            workspace_cluster=workspaces.cluster,
            built_tools=built,
            image_digests=image_digests,
            docker_hub_cache_prefix=f"dockerhub-{stage}" if workspaces.cache_rule is not None else None,
            proxy_environment={
                "WORKSPACE_CLUSTER": workspaces.cluster.cluster_arn,
                "DB_HOST": database.proxy.endpoint,
                "DB_PORT": str(PORT),
                "DB_NAME": "apranova",
                "DB_USER": APP_USER,
            },
        )
        if workspaces.cache_rule is not None:
            shared.node.add_dependency(workspaces.cache_rule)
        workspaces.allow_from_front_door(shared.proxy_security_group)
        proxy_role = shared.proxy_task.task_role
        database.proxy.grant_connect(proxy_role, APP_USER)
        proxy_role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["ecs:DescribeTasks"],
                resources=[
                    self.format_arn(service="ecs", resource="task", resource_name=f"apranova-{stage}-workspaces/*")
                ],
                conditions={"ArnEquals": {"ecs:cluster": workspaces.cluster.cluster_arn}},
            )
        )
        proxy_role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["ecs:ListTasks"],
                resources=["*"],
                conditions={"ArnEquals": {"ecs:cluster": workspaces.cluster.cluster_arn}},
            )
        )
        acknowledge(
            proxy_role,
            "AwsSolutions-IAM5[Resource::*]",
            "ecs:ListTasks takes only a container instance ARN (none on Fargate): limited to the workspaces' "
            "cluster by the ecs:cluster condition; the proxy lists one student's tasks by startedBy.",
        )
        acknowledge(
            proxy_role,
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ecs:<AWS::Region>:<AWS::AccountId>:task/"
            f"apranova-{stage}-workspaces/*]",
            "Task ids are made at run time: the proxy describes tasks of the workspaces' cluster only (ecs:cluster).",
        )
        # The migration makes each tool's role and database, and hands the admin credentials on.
        migrate = self.migrate
        migrate.function.add_environment("SSM_PREFIX", tools.prefix)
        migrate.function.add_environment(
            "TOOL_DATABASES",
            self.to_json_string({tool: shared.database_secrets[tool].secret_arn for tool in built}),
        )
        migrate.function.add_environment(
            "TOOL_ADMIN_SECRETS",
            self.to_json_string({tool: shared.admin_secrets[tool].secret_arn for tool in built}),
        )
        for tool in built:
            shared.database_secrets[tool].grant_read(migrate.role)
            shared.admin_secrets[tool].grant_read(migrate.role)
        migrate.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["ssm:PutParameter"],
                resources=[tools.parameter_arn(f"tools/{tool}/*") for tool in built],
            )
        )
        for tool in built:
            acknowledge(
                migrate.role,
                f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ssm:<AWS::Region>:<AWS::AccountId>:parameter{tools.prefix}/tools/{tool}/*]",
                f"The migration writes {tool}'s admin credential parameters (SecureStrings CloudFormation "
                "cannot create) from the stack's secret: this stage's tool folder only.",
            )
        for service, url in shared.urls.items():
            CfnOutput(self, f"{service.capitalize()}Url", value=url, description=f"The {service} front door")
        CfnOutput(
            self,
            "ToolsFrontDoorTarget",
            value=shared.load_balancer.load_balancer_dns_name,
            description=f"Point *.{front_door.domain} here when the stack does not manage its DNS (docs/operations.md)",
        )
        return shared

    def _reconcile_alarm(self, stage: str) -> None:
        """The reconcile job found a payment left behind: its alert line is counted (a metric filter on
        its log group) and one is enough for the operations topic, beside the alert email."""
        from aws_cdk import aws_cloudwatch as cw
        from aws_cdk import aws_cloudwatch_actions as cw_actions

        metric_filter = logs.MetricFilter(
            self,
            "ReconcileFindings",
            log_group=self.reconcile.log_group,
            filter_pattern=logs.FilterPattern.string_value("$.message", "=", f"ALERT: {RECONCILE_ALERT}"),
            metric_namespace="ApraNova",
            metric_name=f"{stage}-reconcile-findings",
            metric_value="1",
        )
        alarm = cw.Alarm(
            self,
            "ReconcileFindingsAlarm",
            metric=metric_filter.metric(period=_period_of(self.reconcile), statistic=cw.Stats.SUM),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            alarm_name=f"apranova-{stage}-reconcile-findings",
            alarm_description=f"ApraNova {stage}: the reconcile job found a paid student left behind or a lost webhook",
        )
        alarm.add_alarm_action(cw_actions.SnsAction(self.operations.topic))

    def _student_database_watchdog(self, function, *, stage: str, tools: StudentTools, vpc) -> PythonFunction:
        """Every minute: the time limit students cannot lift (functions/provision/student_database_watchdog.py),
        with the student-database step's settings and admin connection."""
        watchdog = function(
            "student-database-watchdog",
            environment={
                "SSM_PREFIX": tools.prefix,
                "STUDENTS_DB_NAME": STUDENTS_DB_NAME,
                **tools.students_db_environment(),
            },
            description=f"ApraNova student-database watchdog ({stage}); run by a schedule",
        )
        tools.connect_admin(watchdog)
        # A missed minute is made up by the next run: no retries that would overlap it.
        self.schedules.add(
            "StudentDatabaseWatchdog",
            watchdog.function,
            _schedule_of(watchdog),
            description=f"ApraNova {stage}: end student statements past the time limit",
            retry_attempts=0,
            max_event_age=Duration.seconds(60),
        )
        return watchdog

    def _tool_step(self, tool: str, step: PythonFunction, tools: StudentTools, workspaces: Workspaces) -> None:
        """A tool step's settings (its provisioner's settings class) and exactly its grants."""
        role = step.role
        env: dict[str, str] = {"SSM_PREFIX": tools.prefix}
        if tool == "STUDENT_DATABASE":
            env.update(tools.students_db_environment())
            env.update({"STUDENTS_DB_NAME": STUDENTS_DB_NAME, "STUDENTS_DB_KMS_KEY_ID": tools.key.key_arn})
            tools.connect_admin(step)
            # It writes the password, and reads it back to set it again on every run (a student may
            # have changed it: PostgreSQL lets any role change its own password).
            tools.grant_student_secrets(role, ["db-password"], write=True, decrypt=True)
        elif tool == "SUPERSET":
            env.update(tools.students_db_environment())
            # The students' instance forces TLS (rds.force_ssl): Superset verifies it too, with the
            # region's RDS root CAs the provisioner hands it as the connection's server_cert.
            env.update({"SUPERSET_KMS_KEY_ID": tools.key.key_arn, "SUPERSET_DB_SSLMODE": "verify-full"})
            tools.grant_tool_parameters(role, "superset")
            tools.grant_student_secrets(role, ["db-password"], decrypt=True)
            tools.grant_student_secrets(role, ["superset-password"], write=True)
        elif tool == "JUPYTER":
            tools.grant_tool_parameters(role, "jupyterhub")
        elif tool == "PREFECT":
            tools.grant_tool_parameters(role, "prefect")
        elif tool == "WORKSPACE":
            env.update(workspaces.environment())
            workspaces.grant_provision(role)
        else:  # a tool added to the catalog needs its settings and grants here
            raise ValueError(f"no settings or grants for the {tool} step")
        for key, value in env.items():
            step.add_environment(key, value)

    def _payments_reconcile(
        self, function, *, stage: str, database: Database, identity: Identity, env: Mapping[str, str]
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
                "ENROLLMENT_STATE_MACHINE_ARN": self.workflows.enrollment.state_machine_arn,
                "DEPROVISION_STATE_MACHINE_ARN": self.workflows.deprovision.state_machine_arn,
            },
            description=f"ApraNova payments reconcile ({stage}); run by a schedule",
        )
        self._grant_secure_parameters(job.role, [STRIPE_PARAMETERS["STRIPE_API_KEY_PARAM"]], stage)
        self._grant_cognito(job, identity)
        self.workflows.enrollment.grant_start_execution(job.role)
        self.workflows.deprovision.grant_start_execution(job.role)
        # Whether a paid enrollment's run failed, before it is started again (reconcile_service).
        job.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["states:DescribeExecution"],
                resources=[
                    self.format_arn(
                        service="states",
                        resource="execution",
                        resource_name=f"{self.workflows.enrollment.state_machine_name}:*",
                        arn_format=ArnFormat.COLON_RESOURCE_NAME,
                    )
                ],
            )
        )
        acknowledge(
            job.role,
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:"
            f"<{self.get_logical_id(resource_of(self.workflows.enrollment))}.Name>:*]",
            "The reconcile job reads the status of the enrollment runs paid payments started (named after "
            "each payment, unknown to the template) before it starts a failed one again; DescribeExecution "
            "only, on this one state machine's executions.",
        )
        self.email.grant_send(job.role)
        self.schedules.add(
            "Reconcile",
            job.function,
            _schedule_of(job),
            description=f"ApraNova {stage}: no paid student left behind (lost webhooks, unstarted enrollments)",
            max_event_age=Duration.minutes(5),
        )
        return job

    def _grant_cognito(self, fn: PythonFunction, identity: Identity) -> None:
        """The Cognito admin actions the function's inventory row lists, on this stack's pool only."""
        actions = sorted(a for a in inventory.get(fn.name).actions if a.startswith("cognito-idp:"))
        if actions:
            fn.role.add_to_principal_policy(
                iam.PolicyStatement(actions=actions, resources=[identity.user_pool.user_pool_arn])
            )

    def _grant_payments(self, stage: str, email_sender: str) -> None:
        """Exactly what the payments functions call: their Stripe parameters, SES as the sender (the
        email steps too), and the state machines the webhook and the admin function start."""
        for name, variables in PAYMENT_SECRETS.items():
            if name not in self.functions:
                continue
            role = self.functions[name].role
            self._grant_secure_parameters(role, [STRIPE_PARAMETERS[variable] for variable in variables], stage)

        self._grant_sending_and_workflows()

    def _grant_secure_parameters(self, role: iam.IRole, suffixes: list[str], stage: str) -> None:
        """Reading and decrypting exactly these operator-made SecureString parameters (the Stripe
        secrets, the GitHub token)."""
        arns = [
            self.format_arn(
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
                resources=[self.format_arn(service="kms", resource="key", resource_name="*")],
                conditions={
                    "StringEquals": {
                        "kms:ViaService": f"ssm.{self.region}.{self.url_suffix}",
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

    def _grant_sending_and_workflows(self) -> None:
        """SES for every sender (the email steps too); the state machines the webhook and the admin
        function start."""
        # SES authorizes the send against the identity verified for the From address (the address
        # itself or its domain, in this account and region) and the configuration set.
        senders = [self.functions[name] for name in sorted(EMAIL_FUNCTIONS & set(self.functions))]
        senders += [self.steps[name] for name in sorted(EMAIL_STEPS)]
        for function in senders:
            self.email.grant_send(function.role)

        machines = {
            "ENROLLMENT_STATE_MACHINE_ARN": self.workflows.enrollment,
            "DEPROVISION_STATE_MACHINE_ARN": self.workflows.deprovision,
        }
        for name, variables in WORKFLOW_STARTERS.items():
            for variable in variables:
                if name in self.functions:
                    machines[variable].grant_start_execution(self.functions[name].role)

    def _compliance(
        self,
        function,
        *,
        stage: str,
        database: Database,
        storage: Storage,
        identity: Identity,
        tools: StudentTools,
        env: Mapping[str, str],
    ) -> dict[str, PythonFunction]:
        """The GDPR jobs (export worker, daily purge, daily retention sweep) and the compliance API's
        grants: each role gets exactly the buckets' prefixes, the key, the pool actions and the
        workflow its code calls."""
        storage_env = {
            "UPLOADS_BUCKET": storage.uploads.bucket_name,
            "EXPORTS_BUCKET": storage.exports.bucket_name,
            "EXPORTS_KMS_KEY_ID": storage.exports_key.key_arn,
        }
        pool_env = {"COGNITO_USER_POOL_ID": identity.user_pool.user_pool_id}
        worker = function(
            "compliance-export",
            environment={**storage_env, **pool_env, **env},
            description=f"ApraNova data export builder ({stage}); started by the export route",
        )
        purge = function(
            "compliance-purge",
            environment={
                **storage_env,
                **pool_env,
                **env,
                "SSM_PREFIX": tools.prefix,
                "DEPROVISION_STATE_MACHINE_ARN": self.workflows.deprovision.state_machine_arn,
            },
            description=f"ApraNova account purge after the grace period ({stage}); run daily",
        )
        sweep = function(
            "compliance-retention",
            environment={**storage_env, **env},
            description=f"ApraNova retention sweep ({stage}); run daily",
        )
        jobs = {fn.name: fn for fn in (worker, purge, sweep)}

        uploads, exports, key = storage.uploads, storage.exports, storage.exports_key
        user_uploads = uploads.arn_for_objects(f"{SUBMISSIONS_PREFIX}*")
        user_exports = exports.arn_for_objects(f"{EXPORTS_PREFIX}*")
        people_files = ((uploads, SUBMISSIONS_PREFIX, user_uploads), (exports, EXPORTS_PREFIX, user_exports))

        def listing(role: iam.IRole, bucket, prefix: str, *, versions: bool = False) -> None:
            actions = ["s3:ListBucket", "s3:ListBucketVersions"] if versions else ["s3:ListBucket"]
            role.add_to_principal_policy(
                iam.PolicyStatement(
                    actions=actions,
                    resources=[bucket.bucket_arn],
                    conditions={"StringLike": {"s3:prefix": [f"{prefix}*"]}},
                )
            )

        # The worker reads the person's uploads, writes the archive (SSE-KMS: S3 asks the key for a
        # data key on the writer's behalf) and reads the person from the pool.
        listing(worker.role, uploads, SUBMISSIONS_PREFIX)
        worker.role.add_to_principal_policy(iam.PolicyStatement(actions=["s3:GetObject"], resources=[user_uploads]))
        # It deletes the archive again when the person or the request went away meanwhile (export_service).
        worker.role.add_to_principal_policy(
            iam.PolicyStatement(actions=["s3:PutObject", "s3:DeleteObject"], resources=[user_exports])
        )
        key.grant(worker.role, "kms:GenerateDataKey", "kms:Decrypt")
        worker.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["cognito-idp:AdminGetUser", "cognito-idp:AdminListGroupsForUser"],
                resources=[identity.user_pool.user_pool_arn],
            )
        )
        # The route starts the worker and signs download links (a presigned GET of an SSE-KMS object
        # works with the signer's s3:GetObject and kms:Decrypt).
        api = self.functions.get("compliance")
        if api is not None:
            api.function.add_environment("EXPORT_FUNCTION_NAME", worker.function.function_name)
            for variable, value in storage_env.items():
                api.function.add_environment(variable, value)
            # The unqualified function only (grant_invoke would add every version and alias).
            api.role.add_to_principal_policy(
                iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=[worker.function.function_arn])
            )
            api.role.add_to_principal_policy(iam.PolicyStatement(actions=["s3:GetObject"], resources=[user_exports]))
            key.grant_decrypt(api.role)
        # A failed build is retried twice by Lambda, then its event lands with the schedules' dead letters.
        worker.function.configure_async_invoke(
            retry_attempts=2,
            max_event_age=Duration.hours(1),
            on_failure=destinations.SqsDestination(self.schedules.dead_letters),
        )

        # The purge: the deprovision workflow, the person's objects (every version), their SSM
        # parameters and their Cognito user.
        self.workflows.deprovision.grant_start_execution(purge.role)
        purge.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["states:DescribeExecution"],
                resources=[
                    self.format_arn(
                        service="states",
                        resource="execution",
                        resource_name=f"{self.workflows.deprovision.state_machine_name}:*",
                        arn_format=ArnFormat.COLON_RESOURCE_NAME,
                    )
                ],
            )
        )
        for bucket, prefix, objects in people_files:
            listing(purge.role, bucket, prefix, versions=True)
            purge.role.add_to_principal_policy(
                iam.PolicyStatement(actions=["s3:DeleteObject", "s3:DeleteObjectVersion"], resources=[objects])
            )
        purge.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["ssm:GetParametersByPath", "ssm:DeleteParameter", "ssm:DeleteParameters"],
                resources=[tools.parameter_arn("students"), tools.parameter_arn("students/*")],
            )
        )
        purge.role.add_to_principal_policy(
            iam.PolicyStatement(actions=["cognito-idp:AdminDeleteUser"], resources=[identity.user_pool.user_pool_arn])
        )
        acknowledge(
            purge.role,
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:"
            f"<{self.get_logical_id(resource_of(self.workflows.deprovision))}.Name>:*]",
            "The purge polls the deprovision executions it started (named after each deletion request, "
            "unknown to the template); DescribeExecution only, on this one state machine's executions.",
        )
        acknowledge(
            purge.role,
            f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ssm:<AWS::Region>:<AWS::AccountId>:parameter"
            f"{tools.prefix}/students/*]",
            "A purged student's tool passwords live under <prefix>/students/<user id>/, a path per person "
            "the template cannot know; the purge reads names by path and deletes them for the one person "
            "being erased, and nothing outside the students' path.",
        )
        # The worker emails "your export is ready", the purge alerts the operators.
        for job in (worker, purge):
            self.email.grant_send(job.role)
        # The sweep deletes expired exports and the files of purged users.
        for bucket, prefix, objects in people_files:
            listing(sweep.role, bucket, prefix, versions=True)
            sweep.role.add_to_principal_policy(
                iam.PolicyStatement(actions=["s3:DeleteObject", "s3:DeleteObjectVersion"], resources=[objects])
            )

        for role in (worker.role, purge.role, sweep.role, *([api.role] if api is not None else [])):
            acknowledge(
                role,
                f"AwsSolutions-IAM5[Resource::<{self.get_logical_id(resource_of(exports))}.Arn>/{EXPORTS_PREFIX}*]",
                "Exports are exports/<user id>/<export id>.zip, one key per request; the code touches only "
                "the calling or purged person's own keys (checked in the service), so the role needs the "
                "exports prefix, nothing else in the bucket.",
            )
        for role in (worker.role, purge.role, sweep.role):
            acknowledge(
                role,
                f"AwsSolutions-IAM5[Resource::<{self.get_logical_id(resource_of(uploads))}.Arn>/{SUBMISSIONS_PREFIX}*]",
                "Students' files are submissions/<user id>/...; the export reads and the purge and sweep "
                "delete one person's prefix at a time, so the role needs the submissions prefix only.",
            )

        self.schedules.add(
            "Purge",
            purge.function,
            _schedule_of(purge),
            description=f"ApraNova {stage}: erase accounts whose grace period has ended",
            max_event_age=DAILY_EVENT_AGE,
        )
        self.schedules.add(
            "RetentionSweep",
            sweep.function,
            _schedule_of(sweep),
            description=f"ApraNova {stage}: delete what has outlived its retention policy",
            max_event_age=DAILY_EVENT_AGE,
        )
        return jobs

    def _grant_datasets(self, storage: Storage) -> None:
        """The migration uploads the course datasets: read and write objects, list the bucket.

        Explicit actions rather than grant_read/grant_put, whose ``s3:GetObject*``/``s3:Abort*``
        wildcards include more than the seed needs.
        """
        bucket = storage.datasets
        role = self.migrate.role
        role.add_to_principal_policy(iam.PolicyStatement(actions=["s3:ListBucket"], resources=[bucket.bucket_arn]))
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=["s3:GetObject", "s3:PutObject"], resources=[bucket.arn_for_objects("*")])
        )
        bucket_id = self.get_logical_id(resource_of(bucket))
        acknowledge(
            role,
            f"AwsSolutions-IAM5[Resource::<{bucket_id}.Arn>/*]",
            "The migration writes the datasets under keys the seed chooses, in a bucket that "
            "holds nothing but those datasets; object actions need an object ARN.",
        )

    def _grant_learning(self, storage: Storage) -> None:
        """The curriculum function signs dataset links; the submissions function signs upload forms
        and download links, and checks an uploaded file, under the submissions prefix only. A
        presigned URL works with the permissions of the role that signed it."""
        if "curriculum" in self.functions:
            datasets = storage.datasets
            role = self.functions["curriculum"].role
            role.add_to_principal_policy(
                iam.PolicyStatement(actions=["s3:GetObject"], resources=[datasets.arn_for_objects("*")])
            )
            acknowledge(
                role,
                f"AwsSolutions-IAM5[Resource::<{self.get_logical_id(resource_of(datasets))}.Arn>/*]",
                "The curriculum function signs download links for the course datasets, whose keys the "
                "seed chooses, in a bucket that holds nothing but those datasets; read only, and the "
                "service signs only the dataset of a project the student may open.",
            )
        if "submissions" in self.functions:
            uploads = storage.uploads
            role = self.functions["submissions"].role
            objects = uploads.arn_for_objects(f"{SUBMISSIONS_PREFIX}*")
            role.add_to_principal_policy(
                iam.PolicyStatement(actions=["s3:GetObject", "s3:PutObject"], resources=[objects])
            )
            # Listing lets a HEAD of a missing key answer 404 rather than 403; only under the prefix.
            role.add_to_principal_policy(
                iam.PolicyStatement(
                    actions=["s3:ListBucket"],
                    resources=[uploads.bucket_arn],
                    conditions={"StringLike": {"s3:prefix": [f"{SUBMISSIONS_PREFIX}*"]}},
                )
            )
            acknowledge(
                role,
                f"AwsSolutions-IAM5[Resource::<{self.get_logical_id(resource_of(uploads))}.Arn>/{SUBMISSIONS_PREFIX}*]",
                "Students' files live under submissions/<user id>/<deliverable id>/<random id>/, keys "
                "made per upload; the function signs upload forms and download links and checks an "
                "upload, for the calling student's own prefix only (checked in the service), so the "
                "role needs the whole submissions prefix, and nothing else in the bucket.",
            )
        if "trainer" in self.functions:
            uploads = storage.uploads
            role = self.functions["trainer"].role
            # Read only: the trainer function signs download links of the files its reviewers open.
            role.add_to_principal_policy(
                iam.PolicyStatement(
                    actions=["s3:GetObject"], resources=[uploads.arn_for_objects(f"{SUBMISSIONS_PREFIX}*")]
                )
            )
            acknowledge(
                role,
                f"AwsSolutions-IAM5[Resource::<{self.get_logical_id(resource_of(uploads))}.Arn>/{SUBMISSIONS_PREFIX}*]",
                "A reviewer opens the file of a submission by any student they review; the service "
                "signs a link only for a submission of the caller's own students (admins: any), so "
                "the role reads the submissions prefix, nothing else in the bucket, and writes nothing.",
            )
