"""ApraNova-<stage>: the API, its functions, the common layer, the user pool, the database and the
buckets."""

from __future__ import annotations

from aws_cdk import Arn, ArnFormat, CfnOutput, Duration, RemovalPolicy, Stack, triggers
from aws_cdk import aws_apigatewayv2_authorizers as authorizers
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from constructs import Construct

from apranova import routes
from cdk.constructs.common_layer import CommonLayer
from cdk.constructs.database import Database
from cdk.constructs.http_api import HttpApi
from cdk.constructs.identity import Identity
from cdk.constructs.nag import acknowledge
from cdk.constructs.python_function import PythonFunction
from cdk.constructs.storage import Storage

# Functions that query the database: they run in the VPC and reach it through the proxy. They sit
# in the private subnets with egress, which is also how the payments functions reach Stripe.
DATABASE_FUNCTIONS = frozenset({"health", "curriculum", "auth", "admin", "payments", "payments-webhook"})
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
# The workflows a function starts, by the environment variable that names the state machine. Only
# the webhook starts executions (enrollment on payment, deprovisioning on a full refund or a lost
# dispute); the API function's refund approval goes through Stripe and comes back as a webhook.
WORKFLOW_STARTERS = {"payments-webhook": ("ENROLLMENT_STATE_MACHINE_ARN", "DEPROVISION_STATE_MACHINE_ARN")}
# Functions that send email (students' notices, operator alerts) through SES.
EMAIL_FUNCTIONS = PAYMENT_FUNCTIONS
# The sender when the operator configures none: a reserved domain, so a dev stack synthesizes and
# deploys, and SES refuses to send until a verified sender is configured (docs/operations.md).
DEFAULT_EMAIL_SENDER = "no-reply@apranova.example"


def parameter_name(stage: str, suffix: str) -> str:
    return f"/apranova/{stage}/{suffix}"


def _state_machine_arn(arn: str, context_key: str) -> str:
    parts = Arn.split(arn, ArnFormat.COLON_RESOURCE_NAME)
    if parts.service != "states" or parts.resource != "stateMachine" or not parts.resource_name:
        raise ValueError(f"{context_key} must be a Step Functions state machine ARN, not {arn!r}")
    return arn


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
        enrollment_state_machine_arn: str | None = None,
        deprovision_state_machine_arn: str | None = None,
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
        email_env = {"EMAIL_SENDER": email_sender, **({"OPS_EMAIL": ops_email} if ops_email else {})}
        workflows = {
            "ENROLLMENT_STATE_MACHINE_ARN": enrollment_state_machine_arn
            and _state_machine_arn(enrollment_state_machine_arn, "enrollmentStateMachineArn"),
            "DEPROVISION_STATE_MACHINE_ARN": deprovision_state_machine_arn
            and _state_machine_arn(deprovision_state_machine_arn, "deprovisionStateMachineArn"),
        }

        production = stage == "prod"
        removal = RemovalPolicy.RETAIN if production else RemovalPolicy.DESTROY
        retention = logs.RetentionDays.SIX_MONTHS if production else logs.RetentionDays.ONE_MONTH

        layer = CommonLayer(self, "CommonLayer").layer
        database = Database(self, "Database", stage=stage, production=production)
        storage = Storage(self, "Storage")
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

        def environment(name: str) -> dict[str, str]:
            env = dict(cognito_env)
            if name in PAYMENT_FUNCTIONS:
                env.update(payment_env)
            if name in EMAIL_FUNCTIONS:
                env.update(email_env)
            for variable in PAYMENT_SECRETS.get(name, ()):
                env[variable] = parameter_name(stage, STRIPE_PARAMETERS[variable])
            for variable in WORKFLOW_STARTERS.get(name, ()):
                if workflows[variable]:
                    env[variable] = workflows[variable]
            return env

        self.functions: dict[str, PythonFunction] = {}
        for name in routes.functions():
            needs_db = name in DATABASE_FUNCTIONS
            self.functions[name] = function(name, vpc=database.vpc if needs_db else None, environment=environment(name))
            if needs_db:
                database.connect_function(self.functions[name])
        # Granted only to the functions the route table deploys.
        for name, actions in COGNITO_ACTIONS.items():
            if name in self.functions:
                self.functions[name].role.add_to_principal_policy(
                    iam.PolicyStatement(actions=list(actions), resources=[identity.user_pool.user_pool_arn])
                )
        self._grant_payments(stage, email_sender, workflows)

        self.migrate = function(
            "migrate",
            vpc=database.vpc,
            memory_size=1024,
            timeout=Duration.minutes(5),
            extra_paths=["migrations"],
            environment={"DATASETS_BUCKET": storage.datasets.bucket_name},
            description=f"ApraNova migrations, seed and datasets ({stage}); run by a deploy trigger",
        )
        database.connect_migrations(self.migrate)
        self._grant_datasets(storage)
        # Migrations run on every deploy that changes the migrate function (its code carries the
        # SQL files), after the database exists and before new API code is deployed.
        self.migration_trigger = triggers.Trigger(
            self,
            "RunMigrations",
            handler=self.migrate.function,
            execute_after=[database.instance, database.proxy, storage.datasets, self.migrate],
            # Only the functions' code: their security groups are referenced by the proxy's rules.
            execute_before=[fn.function.node.default_child for fn in self.functions.values()],
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
        CfnOutput(self, "UserPoolId", value=identity.user_pool.user_pool_id)
        CfnOutput(self, "UserPoolClientId", value=identity.client.user_pool_client_id)
        CfnOutput(self, "JwtIssuer", value=identity.issuer)
        stripe_routes = [r for r in routes.ROUTES if r.access is routes.Access.STRIPE and not r.local_only]
        if stripe_routes:
            CfnOutput(
                self,
                "StripeWebhookUrl",
                value=f"{self.api.url}{stripe_routes[0].path.lstrip('/')}",
                description="The endpoint to register in Stripe (Developers > Webhooks)",
            )

    def _grant_payments(self, stage: str, email_sender: str, workflows: dict[str, str | None]) -> None:
        """Exactly what the payments functions call: their Stripe parameters, SES as the sender,
        and (the webhook) the configured state machines."""
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
        for name in sorted(EMAIL_FUNCTIONS & set(self.functions)):
            self.functions[name].role.add_to_principal_policy(
                iam.PolicyStatement(actions=["ses:SendEmail"], resources=identities)
            )

        for name, variables in WORKFLOW_STARTERS.items():
            arns = [workflows[v] for v in variables if workflows[v]]
            if name in self.functions and arns:
                self.functions[name].role.add_to_principal_policy(
                    iam.PolicyStatement(actions=["states:StartExecution"], resources=arns)
                )

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
