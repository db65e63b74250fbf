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
from dataclasses import dataclass
from typing import cast

import jsii
from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from apranova import cors, routes
from cdk.constructs.cfn import resource_of
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


@dataclass(frozen=True)
class Throttle:
    """A route's own limit: steady requests per second, and the burst (token bucket) above it."""

    rate: float
    burst: int


# The public routes' own limits, tighter than the stage's (docs/operations.md, API throttling). API
# Gateway counts them over all callers, not per address: they cap what a flood can cost (Cognito and
# SES emails, Stripe sessions, sign-in attempts) rather than shield one user from another. The routes
# that make an email (registration, resend, password reset) together stay below SES's sending rate
# of a new production account (14 a second).
PUBLIC_ROUTE_THROTTLES: dict[str, Throttle] = {
    "POST /api/auth/registration/": Throttle(rate=2, burst=10),
    "POST /api/auth/resend-verification/": Throttle(rate=1, burst=5),
    "POST /api/auth/password/reset/": Throttle(rate=1, burst=5),
    "POST /api/auth/password/reset/confirm/": Throttle(rate=2, burst=10),
    "POST /api/auth/verify-email/": Throttle(rate=5, burst=20),
    "POST /api/auth/login/": Throttle(rate=10, burst=40),
    "POST /api/auth/token/refresh/": Throttle(rate=20, burst=80),
    "POST /api/payments/create-anonymous-checkout/": Throttle(rate=2, burst=10),
    "GET /api/payments/verify-session/": Throttle(rate=10, burst=40),
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
        spa_origin: str | None,
        authorizer: apigwv2.IHttpRouteAuthorizer | None = None,
        route_table: Sequence[routes.Route] = routes.ROUTES,
        fallback_function: str = routes.FALLBACK_FUNCTION,
        throttle_rate: int = 100,
        throttle_burst: int = 200,
        route_throttles: Mapping[str, Throttle] = PUBLIC_ROUTE_THROTTLES,
        domain_name: str | None = None,
        certificate_arn: str | None = None,
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
        # The CORS the local server also answers with (apranova.cors): one setting for both. Without
        # an origin known at synth (the web app on its distribution's generated domain) the web
        # hosting stack sets this same configuration once the distribution exists (web_hosting.py).
        cors_policy = cors.policy(spa_origin, deployed) if spa_origin else None
        self.api = apigwv2.HttpApi(
            self,
            "Api",
            description="ApraNova API (built from apranova.routes)",
            create_default_stage=False,
            default_integration=self.integrations[fallback_function],
            cors_preflight=apigwv2.CorsPreflightOptions(
                allow_origins=list(cors_policy.allow_origins),
                allow_methods=[apigwv2.CorsHttpMethod(m) for m in cors_policy.allow_methods],
                allow_headers=list(cors_policy.allow_headers),
                allow_credentials=cors_policy.allow_credentials,
                max_age=Duration.seconds(cors_policy.max_age_seconds),
            )
            if cors_policy
            else None,
        )
        self.access_logs = logs.LogGroup(self, "AccessLogs", retention=log_retention, removal_policy=removal_policy)
        # An operator's own domain for the API (docs/operations.md, A custom API domain): regional,
        # TLS 1.2 at least, with a certificate of the stack's region; the $default stage at its root.
        self.domain: apigwv2.DomainName | None = None
        if domain_name and certificate_arn:
            self.domain = apigwv2.DomainName(
                self,
                "Domain",
                domain_name=domain_name,
                certificate=acm.Certificate.from_certificate_arn(self, "Certificate", certificate_arn),
                endpoint_type=apigwv2.EndpointType.REGIONAL,
                security_policy=apigwv2.SecurityPolicy.TLS_1_2,
            )
        elif domain_name or certificate_arn:
            raise ValueError("a custom API domain needs both its name and its certificate's ARN")
        self.stage = apigwv2.HttpStage(
            self,
            "DefaultStage",
            http_api=self.api,
            stage_name="$default",
            auto_deploy=True,
            throttle=apigwv2.ThrottleSettings(rate_limit=throttle_rate, burst_limit=throttle_burst),
            access_log_settings=_AccessLogSettings(self.access_logs),
            domain_mapping=apigwv2.DomainMappingOptions(domain_name=self.domain) if self.domain else None,
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
        self._throttle_routes(deployed, route_throttles, throttle_rate, throttle_burst)
        # $default is the catch-all that answers unknown routes with a JSON 404/405.
        default_route = self.api.node.find_child("DefaultRoute")
        acknowledge(
            default_route,
            "AwsSolutions-APIG4",
            "$default only serves the fallback function's 404/405 answers for unmatched "
            "requests; it returns no data and needs no caller identity.",
        )

    def _throttle_routes(
        self, deployed: Sequence[routes.Route], throttles: Mapping[str, Throttle], rate: int, burst: int
    ) -> None:
        """The stage's RouteSettings: each throttled route's own limits (the stage's default applies
        to the rest). Every throttle must name a route of the route table (a renamed route fails
        the synth rather than losing its limit) and stay under the stage's."""
        unknown = sorted(set(throttles) - {route.key for route in routes.ROUTES})
        if unknown:
            raise ValueError(f"route throttles name routes the route table does not have: {unknown}")
        by_key = {route.key: route for route in deployed}
        settings = {}
        for key, throttle in sorted(throttles.items()):
            if key not in by_key:  # an API built from part of the table (tests)
                continue
            if throttle.rate > rate or throttle.burst > burst:
                raise ValueError(f"{key}: a route's throttle must not exceed the stage's ({rate}/s, burst {burst})")
            # RouteSettings is JSON in the resource schema: written with the keys of its
            # DefaultRouteSettings (the typed property CDK renders), not the L1 struct's camelCase.
            settings[by_key[key].gateway_key] = {
                "ThrottlingRateLimit": throttle.rate,
                "ThrottlingBurstLimit": throttle.burst,
            }
            # API Gateway refuses settings for a route key that does not exist yet.
            self.stage.node.add_dependency(self.routes[key])
        cfn_stage = cast(apigwv2.CfnStage, resource_of(self.stage))
        cfn_stage.route_settings = settings

    @property
    def url(self) -> str:
        """The API's base URL (ending in /): the custom domain when there is one."""
        if self.domain is not None:
            return f"https://{self.domain.name}/"
        return self.stage.url
