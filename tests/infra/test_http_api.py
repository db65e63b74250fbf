"""The HTTP API construct with an authorizer: routes that need a token get it, public ones don't."""

from __future__ import annotations

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_apigatewayv2_authorizers as authorizers
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_lambda as lambda_
from aws_cdk.assertions import Match, Template

from apranova.routes import Access, Route
from cdk.constructs.http_api import HttpApi

TABLE = (
    Route("GET", "/api/health/", "health", Access.PUBLIC),
    Route("GET", "/api/auth/user/", "auth", Access.USER),
    Route("POST", "/api/admin/users/{id}/role/", "admin", Access.ADMIN),
    Route("POST", "/api/payments/webhook/", "payments", Access.STRIPE),
    Route("GET", "/api/docs/", "local", Access.PUBLIC, local_only=True),
)


def _functions(stack: Stack, names: list[str]) -> dict[str, lambda_.IFunction]:
    return {
        name: lambda_.Function(
            stack,
            f"Fn-{name}",
            runtime=lambda_.Runtime.PYTHON_3_12,
            handler="index.handler",
            code=lambda_.Code.from_inline("def handler(event, context):\n    return {}\n"),
        )
        for name in names
    }


def _api(stack: Stack, authorizer=None) -> HttpApi:
    return HttpApi(
        stack,
        "Api",
        functions=_functions(stack, ["health", "auth", "admin", "payments"]),
        spa_origin="https://app.example.com",
        authorizer=authorizer,
        route_table=TABLE,
        fallback_function="health",
    )


def test_routes_that_need_a_token_get_the_user_pool_authorizer():
    stack = Stack(App(), "AuthorizerTest")
    pool = cognito.UserPool(stack, "Users")
    client = pool.add_client("Spa")
    _api(stack, authorizers.HttpUserPoolAuthorizer("Cognito", pool, user_pool_clients=[client]))
    template = Template.from_stack(stack)

    template.resource_count_is("AWS::ApiGatewayV2::Authorizer", 1)
    template.has_resource_properties("AWS::ApiGatewayV2::Authorizer", {"AuthorizerType": "JWT"})
    routes = {
        r["Properties"]["RouteKey"]: r["Properties"]
        for r in template.find_resources("AWS::ApiGatewayV2::Route").values()
    }
    assert routes["GET /api/auth/user"]["AuthorizationType"] == "JWT"
    assert routes["POST /api/admin/users/{id}/role"]["AuthorizationType"] == "JWT"
    assert "AuthorizerId" in routes["POST /api/admin/users/{id}/role"]
    for public in ("GET /api/health", "POST /api/payments/webhook", "$default"):
        assert routes[public]["AuthorizationType"] == "NONE"
        assert "AuthorizerId" not in routes[public]
    assert "GET /api/docs" not in routes
    template.has_resource_properties(
        "AWS::ApiGatewayV2::Api",
        {"CorsConfiguration": Match.object_like({"AllowOrigins": ["https://app.example.com"]})},
    )


def test_a_route_that_needs_a_token_without_an_authorizer_fails_the_synth():
    with pytest.raises(ValueError, match="no authorizer"):
        _api(Stack(App(), "NoAuthorizer"))


def test_a_route_whose_function_is_not_deployed_fails_the_synth():
    stack = Stack(App(), "MissingFunction")
    with pytest.raises(ValueError, match="not deployed"):
        HttpApi(stack, "Api", functions=_functions(stack, ["health"]), spa_origin="https://x", route_table=TABLE)
