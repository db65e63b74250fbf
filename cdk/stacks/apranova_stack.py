"""ApraNova-<stage>: the API, its functions, the common layer, the user pool, the database, the
buckets, the enrollment and deprovision workflows with their step functions, the per-student tools'
infrastructure (students' database access, workspaces) and the scheduled idle-workspace stopper."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import ArnFormat, CfnOutput, Duration, RemovalPolicy, Stack, triggers
from aws_cdk import aws_apigatewayv2_authorizers as authorizers
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_scheduler as scheduler
from constructs import Construct

from apranova import routes
from cdk.constructs.common_layer import CommonLayer
from cdk.constructs.database import Database
from cdk.constructs.http_api import HttpApi
from cdk.constructs.identity import Identity
from cdk.constructs.nag import acknowledge
from cdk.constructs.python_function import PythonFunction
from cdk.constructs.schedules import Schedules
from cdk.constructs.storage import SUBMISSIONS_PREFIX, Storage
from cdk.constructs.student_tools import STUDENTS_DB_NAME, StudentTools
from cdk.constructs.workflows import Workflows
from cdk.constructs.workspaces import DEFAULT_IMAGE, Workspaces
from functions.provision.catalog import STEP_FUNCTIONS, TOOL_STEPS

# Functions that query the database: they run in the VPC and reach it through the proxy. They sit
# in the private subnets with egress, which is also how the payments functions reach Stripe.
# The submissions function also calls GitHub's API (resolving a commit) through the NAT.
DATABASE_FUNCTIONS = frozenset(
    {"health", "curriculum", "auth", "admin", "payments", "payments-webhook", "tools", "submissions", "trainer"}
)
# The functions whose code reads the user pool's settings (apranova.cognito): the others are not
# given its ids, whatever they could do with them.
COGNITO_FUNCTIONS = frozenset({"auth", "admin", "payments-webhook"})
# Repository paths a route function's asset carries besides its own folder (bundled at the same
# path, so they import as packages): the tools API uses the provisioners' code (the workspace).
FUNCTION_EXTRA_PATHS = {"tools": ("functions/provision",)}
# Functions run by a schedule (EventBridge Scheduler), by name → handler module.
SCHEDULED_FUNCTIONS = {"workspace-idle-stopper": "functions.provision.idle"}
IDLE_STOPPER_RATE = Duration.minutes(10)
# The workflow steps that send email (the welcome email; operator alerts) and the one that needs no
# database (it only emails the operators, so it stays out of the VPC).
EMAIL_STEPS = frozenset({"provision-welcome-email", "provision-alert-ops", "provision-assign-trainer"})
STEPS_WITHOUT_DATABASE = frozenset({"provision-alert-ops"})
# The tool steps call shared tools over HTTP (JupyterHub may wait for a server to stop).
TOOL_STEP_TIMEOUT = Duration.minutes(2)
STEP_TIMEOUT = Duration.seconds(60)
# The Cognito admin actions a function may take, on this stack's user pool only. The auth function's
# other calls (SignUp, InitiateAuth, GlobalSignOut, ...) are authorized by the client id or the
# caller's own token, not by IAM.
COGNITO_ACTIONS = {
    # Sign-up puts the user in students and deletes the Cognito user when the database rows
    # fail (compensation). Exactly what the code calls: widen it when the code does.
    "auth": (
        "cognito-idp:AdminAddUserToGroup",
        "cognito-idp:AdminDeleteUser",
    ),
    # Role changes move a user between groups.
    "admin": (
        "cognito-idp:AdminAddUserToGroup",
        "cognito-idp:AdminRemoveUserFromGroup",
    ),
    # Pay first: a completed anonymous checkout finds the account by email or creates it (with a
    # password nobody knows, so the student sets one through the forgot-password code) in students.
    "payments-webhook": (
        "cognito-idp:AdminAddUserToGroup",
        "cognito-idp:AdminCreateUser",
        "cognito-idp:AdminGetUser",
        "cognito-idp:AdminSetUserPassword",
    ),
}
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
    # The webhook never calls Stripe: it verifies signatures with the signing secret only.
    "payments-webhook": ("STRIPE_WEBHOOK_SECRET_PARAM",),
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
EMAIL_FUNCTIONS = PAYMENT_FUNCTIONS | {"submissions", "trainer"}
# Of those, the ones that also alert the operators (apranova.alerts reads OPS_EMAIL).
ALERT_FUNCTIONS = PAYMENT_FUNCTIONS
# Functions whose emails link to the SPA (SPA_ORIGIN); the payments ones get it with their checkout URLs.
SPA_LINK_FUNCTIONS = frozenset({"submissions", "trainer"})
# The sender when the operator configures none: a reserved domain, so a dev stack synthesizes and
# deploys, and SES refuses to send until a verified sender is configured (docs/operations.md).
DEFAULT_EMAIL_SENDER = "no-reply@apranova.example"


def parameter_name(stage: str, suffix: str) -> str:
    return f"/apranova/{stage}/{suffix}"


class ApraNovaStack(Stack):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        stage: str,
        spa_origin: str,
        ses_sender_arn: str | None = None,
        email_sender: str = DEFAULT_EMAIL_SENDER,
        ops_email: str | None = None,
        workspace_image: str = DEFAULT_IMAGE,
        workspace_url_template: str | None = None,
        tool_urls: Mapping[str, str] | None = None,
        throttle_rate: int = 100,
        throttle_burst: int = 200,
        **kwargs,
    ) -> None:
        super().__init__(scope, id, **kwargs)
        # Context checked before anything is built: a bad value fails the synth at once, by name.
        if email_sender.count("@") != 1 or not email_sender.split("@")[1]:
            raise ValueError(f"emailSender must be an email address, not {email_sender!r}")
        spa = spa_origin.rstrip("/")
        payment_env = {
            "SPA_ORIGIN": spa,
            # Stripe replaces {CHECKOUT_SESSION_ID} when it redirects the student back.
            "CHECKOUT_SUCCESS_URL": f"{spa}/payment/success?session_id={{CHECKOUT_SESSION_ID}}",
            "CHECKOUT_CANCEL_URL": f"{spa}/payment/cancelled",
        }
        email_env = {"EMAIL_SENDER": email_sender}
        alert_env = {"OPS_EMAIL": ops_email} if ops_email else {}

        production = stage == "prod"
        removal = RemovalPolicy.RETAIN if production else RemovalPolicy.DESTROY
        retention = logs.RetentionDays.SIX_MONTHS if production else logs.RetentionDays.ONE_MONTH

        layer = CommonLayer(self, "CommonLayer").layer
        database = Database(self, "Database", stage=stage, production=production)
        storage = Storage(self, "Storage", spa_origin=spa)
        identity = Identity(self, "Identity", stage=stage, production=production, ses_sender_arn=ses_sender_arn)
        self.identity = identity
        cognito_env = {
            "COGNITO_USER_POOL_ID": identity.user_pool.user_pool_id,
            "COGNITO_CLIENT_ID": identity.client.user_pool_client_id,
        }

        def function(name: str, **options) -> PythonFunction:
            return PythonFunction(
                self,
                f"Fn-{name}",
                name=name,
                layer=layer,
                stage=stage,
                log_retention=retention,
                removal_policy=removal,
                **options,
            )

        # What the per-student tools share, and where the workspaces run.
        tools = StudentTools(self, "Tools", stage=stage, database=database, production=production, tool_urls=tool_urls)
        self.tools = tools
        workspaces = Workspaces(
            self,
            "Workspaces",
            vpc=database.vpc,
            stage=stage,
            tools=tools,
            image=workspace_image,
            url_template=workspace_url_template,
            production=production,
            log_retention=retention,
            removal_policy=removal,
        )
        self.workspaces = workspaces

        def environment(name: str) -> dict[str, str]:
            env = dict(cognito_env) if name in COGNITO_FUNCTIONS else {}
            if name == "curriculum":
                env["DATASETS_BUCKET"] = storage.datasets.bucket_name
            if name == "submissions":
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
        for name, module in STEP_FUNCTIONS.items():
            needs_db = name not in STEPS_WITHOUT_DATABASE
            env = {**email_env, **alert_env} if name in EMAIL_STEPS else {}
            if name == "provision-welcome-email":
                env["SPA_ORIGIN"] = spa
            self.steps[name] = function(
                name,
                handler_module=module,
                vpc=database.vpc if needs_db else None,
                timeout=TOOL_STEP_TIMEOUT if name in tool_of_step else STEP_TIMEOUT,
                environment=env,
            )
            if needs_db:
                database.connect_function(self.steps[name])
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
            needs_db = name in DATABASE_FUNCTIONS
            self.functions[name] = function(
                name,
                vpc=database.vpc if needs_db else None,
                environment=environment(name),
                extra_paths=FUNCTION_EXTRA_PATHS.get(name, ()),
            )
            if needs_db:
                database.connect_function(self.functions[name])
        if "tools" in self.functions:
            # The student reads their own tool passwords; the workspace routes start and stop tasks.
            role = self.functions["tools"].role
            tools.grant_student_secrets(role, ["db-password", "superset-password", "workspace-password"], decrypt=True)
            workspaces.grant_start_stop(role)
        # Granted only to the functions the route table deploys.
        for name, actions in COGNITO_ACTIONS.items():
            if name in self.functions:
                self.functions[name].role.add_to_principal_policy(
                    iam.PolicyStatement(actions=list(actions), resources=[identity.user_pool.user_pool_arn])
                )
        self._grant_payments(stage, email_sender)

        self.migrate = function(
            "migrate",
            vpc=database.vpc,
            memory_size=1024,
            timeout=Duration.minutes(5),
            extra_paths=["migrations"],
            # STUDENTS_DB_NAME: the students' database the migration creates beside the app's.
            environment={"DATASETS_BUCKET": storage.datasets.bucket_name, "STUDENTS_DB_NAME": STUDENTS_DB_NAME},
            description=f"ApraNova migrations, seed and datasets ({stage}); run by a deploy trigger",
        )
        database.connect_migrations(self.migrate)
        self._grant_datasets(storage)
        self._grant_learning(storage)

        # Running workspaces nobody uses are stopped every few minutes.
        (idle_name, idle_module), *_ = SCHEDULED_FUNCTIONS.items()
        self.idle_stopper = function(
            idle_name,
            handler_module=idle_module,
            vpc=database.vpc,
            timeout=Duration.minutes(2),
            environment=workspaces.environment(),
            description=f"ApraNova idle-workspace stopper ({stage}); run by a schedule",
        )
        database.connect_function(self.idle_stopper)
        workspaces.grant_idle_stop(self.idle_stopper.role)
        self.schedules = Schedules(self, "Schedules", stage=stage)
        self.schedules.add(
            "IdleWorkspaces",
            self.idle_stopper.function,
            scheduler.ScheduleExpression.rate(IDLE_STOPPER_RATE),
            description=f"ApraNova {stage}: stop idle workspaces",
        )
        # Migrations run on every deploy that changes the migrate function (its code carries the
        # SQL files), after the database exists and before new API code is deployed.
        self.migration_trigger = triggers.Trigger(
            self,
            "RunMigrations",
            handler=self.migrate.function,
            execute_after=[database.instance, database.proxy, storage.datasets, self.migrate],
            # Only the functions' code: their security groups are referenced by the proxy's rules.
            # Every function that reads the database waits for the schema it expects.
            execute_before=[
                fn.function.node.default_child
                for fn in [*self.functions.values(), *self.steps.values(), self.idle_stopper]
            ],
            timeout=Duration.minutes(6),
        )

        self.api = HttpApi(
            self,
            "Api",
            functions={name: fn.function for name, fn in self.functions.items()},
            spa_origin=spa_origin,
            # API Gateway checks the signature, issuer (the pool), expiry and that ``aud`` or
            # ``client_id`` is the SPA client; the scope check refuses ID tokens.
            authorizer=authorizers.HttpUserPoolAuthorizer(
                "Cognito", identity.user_pool, user_pool_clients=[identity.client]
            ),
            throttle_rate=throttle_rate,
            throttle_burst=throttle_burst,
            log_retention=retention,
            removal_policy=removal,
        )

        CfnOutput(self, "ApiUrl", value=self.api.url)
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

    def _tool_step(self, tool: str, step: PythonFunction, tools: StudentTools, workspaces: Workspaces) -> None:
        """A tool step's settings (its provisioner's settings class) and exactly its grants."""
        role = step.role
        env: dict[str, str] = {"SSM_PREFIX": tools.prefix}
        if tool == "STUDENT_DATABASE":
            env.update(tools.students_db_environment())
            env.update({"STUDENTS_DB_NAME": STUDENTS_DB_NAME, "STUDENTS_DB_KMS_KEY_ID": tools.key.key_arn})
            tools.connect_admin(step)
            # It writes the password and never reads it back (existence is checked without decryption).
            tools.grant_student_secrets(role, ["db-password"], write=True)
        elif tool == "SUPERSET":
            env.update(tools.students_db_environment())
            # The students' database forces TLS (rds.force_ssl); Superset's connection must ask for it.
            env.update({"SUPERSET_KMS_KEY_ID": tools.key.key_arn, "SUPERSET_DB_SSLMODE": "require"})
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

    def _grant_payments(self, stage: str, email_sender: str) -> None:
        """Exactly what the payments functions call: their Stripe parameters, SES as the sender (the
        email steps too), and the state machines the webhook and the admin function start."""
        for name, variables in PAYMENT_SECRETS.items():
            if name not in self.functions:
                continue
            role = self.functions[name].role
            arns = [
                self.format_arn(
                    service="ssm",
                    resource="parameter",
                    resource_name=parameter_name(stage, STRIPE_PARAMETERS[variable]).lstrip("/"),
                    arn_format=ArnFormat.SLASH_RESOURCE_NAME,
                )
                for variable in variables
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
                "kms:Decrypt for the Stripe SecureString parameters, whose key (aws/ssm or the "
                "operator's) has an id the template cannot know; the statement is limited to calls "
                "through SSM in this region (kms:ViaService) for exactly these parameters' ARNs "
                "(kms:EncryptionContext:PARAMETER_ARN).",
            )

        # SES authorizes the send against the identity verified for the From address: the address
        # itself or its domain, in this account and region.
        domain = email_sender.split("@")[1]
        identities = [
            self.format_arn(service="ses", resource="identity", resource_name=identity)
            for identity in (email_sender, domain)
        ]
        senders = [self.functions[name] for name in sorted(EMAIL_FUNCTIONS & set(self.functions))]
        senders += [self.steps[name] for name in sorted(EMAIL_STEPS)]
        for function in senders:
            function.role.add_to_principal_policy(iam.PolicyStatement(actions=["ses:SendEmail"], resources=identities))

        machines = {
            "ENROLLMENT_STATE_MACHINE_ARN": self.workflows.enrollment,
            "DEPROVISION_STATE_MACHINE_ARN": self.workflows.deprovision,
        }
        for name, variables in WORKFLOW_STARTERS.items():
            for variable in variables:
                if name in self.functions:
                    machines[variable].grant_start_execution(self.functions[name].role)

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
        bucket_id = self.get_logical_id(bucket.node.default_child)
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
                f"AwsSolutions-IAM5[Resource::<{self.get_logical_id(datasets.node.default_child)}.Arn>/*]",
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
                f"AwsSolutions-IAM5[Resource::<{self.get_logical_id(uploads.node.default_child)}.Arn>/"
                f"{SUBMISSIONS_PREFIX}*]",
                "Students' files live under submissions/<user id>/<deliverable id>/<random id>/, keys "
                "made per upload; the function signs upload forms and download links and checks an "
                "upload, for the calling student's own prefix only (checked in the service), so the "
                "role needs the whole submissions prefix, and nothing else in the bucket.",
            )
