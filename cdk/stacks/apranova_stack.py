"""ApraNova-<stage>: the API, its functions, the common layer, the user pool, the database, the
buckets, the enrollment and deprovision workflows with their step functions, the per-student tools'
infrastructure (students' database access, workspaces) and the scheduled idle-workspace stopper."""

from __future__ import annotations

from collections.abc import Mapping

import jsii
from aws_cdk import CfnOutput, Duration, IStableStringProducer, Lazy, RemovalPolicy, Stack, triggers
from aws_cdk import aws_apigatewayv2_authorizers as authorizers
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from constructs import Construct

from apranova import inventory, routes
from apranova.inventory import Network
from cdk.constructs.cfn import resource_of
from cdk.constructs.common_layer import CommonLayer
from cdk.constructs.database import Database
from cdk.constructs.email import PLACEHOLDER_SENDER, Email
from cdk.constructs.http_api import HttpApi
from cdk.constructs.identity import Identity
from cdk.constructs.operations import Operations
from cdk.constructs.python_function import PythonFunction
from cdk.constructs.schedules import Schedules
from cdk.constructs.shared_tools import FrontDoorSettings
from cdk.constructs.storage import Storage
from cdk.constructs.student_tools import STUDENTS_DB_NAME, StudentTools
from cdk.constructs.students_database import STUDENTS_DATABASE_MODES, StudentsDatabase
from cdk.constructs.web_hosting import WebHosting
from cdk.constructs.workflows import Workflows
from cdk.constructs.workspaces import DEFAULT_IMAGE, Workspaces
from cdk.domains import compliance, learning, payments, provisioning
from cdk.domains.common import parameter_name, schedule_of
from cdk.domains.payments import PAYMENT_FUNCTIONS, PAYMENT_SECRETS, STRIPE_PARAMETERS, WORKFLOW_STARTERS
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
# The workflow steps that send email (the welcome email; operator alerts).
EMAIL_STEPS = frozenset({"provision-welcome-email", "provision-alert-ops", "provision-assign-trainer"})
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
                provisioning.tool_step(self, tool_of_step[name], self.steps[name], tools, workspaces)
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
        payments.grant_payments(self, stage, email_sender)
        if "submissions" in self.functions:
            payments.grant_secure_parameters(self, self.functions["submissions"].role, [GITHUB_TOKEN_PARAMETER], stage)

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
            provisioning.shared_tools(
                self,
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
        learning.grant_datasets(self, storage)
        learning.grant_learning(self, storage)

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
            schedule_of(self.idle_stopper),
            description=f"ApraNova {stage}: stop idle workspaces",
        )
        self.student_db_watchdog = provisioning.student_database_watchdog(
            self, function, stage=stage, tools=tools, vpc=database.vpc
        )
        self.compliance_jobs = compliance.jobs(
            self,
            function,
            stage=stage,
            database=database,
            storage=storage,
            identity=identity,
            tools=tools,
            env={**email_env, **alert_env, "SPA_ORIGIN": spa},
        )
        self.reconcile = payments.reconcile_job(self,
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
        payments.reconcile_alarm(self, stage)

    def _grant_cognito(self, fn: PythonFunction, identity: Identity) -> None:
        """The Cognito admin actions the function's inventory row lists, on this stack's pool only."""
        actions = sorted(a for a in inventory.get(fn.name).actions if a.startswith("cognito-idp:"))
        if actions:
            fn.role.add_to_principal_policy(
                iam.PolicyStatement(actions=actions, resources=[identity.user_pool.user_pool_arn])
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
