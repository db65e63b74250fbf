"""The HTTP API, built from the route table so the deployed routes cannot drift from the code.

One Lambda integration per function; one route per non-local route of ``apranova.routes``; the
``$default`` route goes to the fallback function, so an unknown path or method gets our JSON 404
or 405 rather than API Gateway's plain one. Routes whose access needs a token get the authorizer;
a table that asks for a token with no authorizer configured fails the synth instead of deploying
an open route.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import jsii
from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from apranova import routes
from cdk.constructs.nag import acknowledge

# One JSON object per request. Deliberately without the query string, headers or the
# authorizer's claims: no token or personal detail beyond the caller's IP reaches the logs.
ACCESS_LOG_FORMAT = {
    "requestId": "$context.requestId",
    "requestTime": "$context.requestTime",
    "ip": "$context.identity.sourceIp",
    "httpMethod": "$context.httpMethod",
    "routeKey": "$context.routeKey",
    "status": "$context.status",
    "protocol": "$context.protocol",
    "responseLength": "$context.responseLength",
    "latency": "$context.responseLatency",
    "integrationLatency": "$context.integrationLatency",
    "integrationError": "$context.integrationErrorMessage",
}


@jsii.implements(apigwv2.IAccessLogSettings)
class _AccessLogSettings:
    def __init__(self, log_group: logs.ILogGroup) -> None:
        self._destination = apigwv2.LogGroupLogDestination(log_group)

    @property
    def destination(self) -> apigwv2.IAccessLogDestination:
        return self._destination

    @property
    def format(self) -> apigw.AccessLogFormat:
        return apigw.AccessLogFormat.custom(json.dumps(ACCESS_LOG_FORMAT, separators=(",", ":")))


class HttpApi(Construct):
    """``functions`` maps a function folder name to its deployed Lambda function."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        functions: Mapping[str, lambda_.IFunction],
        spa_origin: str,
        authorizer: apigwv2.IHttpRouteAuthorizer | None = None,
        route_table: Sequence[routes.Route] = routes.ROUTES,
        fallback_function: str = routes.FALLBACK_FUNCTION,
        throttle_rate: int = 100,
        throttle_burst: int = 200,
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH,
        removal_policy: RemovalPolicy = RemovalPolicy.DESTROY,
    ) -> None:
        super().__init__(scope, id)
        deployed = [route for route in route_table if not route.local_only]
        missing = sorted(({r.function for r in deployed} | {fallback_function}) - set(functions))
        if missing:
            raise ValueError(f"the route table names functions that are not deployed: {missing}")
        unprotected = [r.key for r in deployed if r.access.needs_token and authorizer is None]
        if unprotected:
            raise ValueError(f"routes need a token but the API has no authorizer: {unprotected}")

        # Scoped to the API, not to each route: one permission per function keeps the Lambda
        # resource policy small however many routes a function serves.
        self.integrations = {
            name: integrations.HttpLambdaIntegration(f"{name}-integration", fn, scope_permission_to_route=False)
            for name, fn in sorted(functions.items())
        }
        methods = sorted({r.method for r in deployed})
        self.api = apigwv2.HttpApi(
            self,
            "Api",
            description="ApraNova API (built from apranova.routes)",
            create_default_stage=False,
            default_integration=self.integrations[fallback_function],
            cors_preflight=apigwv2.CorsPreflightOptions(
                allow_origins=[spa_origin],
                allow_methods=[apigwv2.CorsHttpMethod(m) for m in [*methods, "OPTIONS"]],
                allow_headers=["authorization", "content-type"],
                max_age=Duration.hours(1),
            ),
        )
        self.access_logs = logs.LogGroup(self, "AccessLogs", retention=log_retention, removal_policy=removal_policy)
        self.stage = apigwv2.HttpStage(
            self,
            "DefaultStage",
            http_api=self.api,
            stage_name="$default",
            auto_deploy=True,
            throttle=apigwv2.ThrottleSettings(rate_limit=throttle_rate, burst_limit=throttle_burst),
            access_log_settings=_AccessLogSettings(self.access_logs),
        )

        self.routes: dict[str, apigwv2.HttpRoute] = {}
        for route in deployed:
            self.routes[route.key] = apigwv2.HttpRoute(
                self,
                f"Route {route.key}",
                http_api=self.api,
                route_key=apigwv2.HttpRouteKey.with_(route.gateway_path, apigwv2.HttpMethod(route.method)),
                integration=self.integrations[route.function],
                authorizer=authorizer if route.access.needs_token else None,
            )
            if not route.access.needs_token:
                acknowledge(
                    self.routes[route.key],
                    "AwsSolutions-APIG4",
                    f"{route.key} is {route.access.value} in the route table: it is called "
                    "without a token (a Stripe-signed webhook checks its signature in the handler).",
                )
        # $default is the catch-all that answers unknown routes with a JSON 404/405.
        default_route = self.api.node.find_child("DefaultRoute")
        acknowledge(
            default_route,
            "AwsSolutions-APIG4",
            "$default only serves the fallback function's 404/405 answers for unmatched "
            "requests; it returns no data and needs no caller identity.",
        )

    @property
    def url(self) -> str:
        return self.stage.url
