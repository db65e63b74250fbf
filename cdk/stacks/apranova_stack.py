"""ApraNova-<stage>: the API, its functions, the common layer, the user pool, the database and the
buckets."""

from __future__ import annotations

from aws_cdk import CfnOutput, Duration, RemovalPolicy, Stack, triggers
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

# Functions that query the database: they run in the VPC and reach it through the proxy.
DATABASE_FUNCTIONS = frozenset({"health", "curriculum", "auth", "admin"})
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
}


class ApraNovaStack(Stack):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        stage: str,
        spa_origin: str,
        ses_sender_arn: str | None = None,
        throttle_rate: int = 100,
        throttle_burst: int = 200,
        **kwargs,
    ) -> None:
        super().__init__(scope, id, **kwargs)
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

        self.functions: dict[str, PythonFunction] = {}
        for name in routes.functions():
            needs_db = name in DATABASE_FUNCTIONS
            self.functions[name] = function(name, vpc=database.vpc if needs_db else None, environment=cognito_env)
            if needs_db:
                database.connect_function(self.functions[name])
        # Granted only to the functions the route table deploys.
        for name, actions in COGNITO_ACTIONS.items():
            if name in self.functions:
                self.functions[name].role.add_to_principal_policy(
                    iam.PolicyStatement(actions=list(actions), resources=[identity.user_pool.user_pool_arn])
                )

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
