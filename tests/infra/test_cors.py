"""The deployed HTTP API's CORS is the setting the local server answers with (apranova.cors)."""

from __future__ import annotations

from apranova import cors


def _cors_configuration(template) -> dict:
    (api,) = template.find_resources("AWS::ApiGatewayV2::Api").values()
    return api["Properties"]["CorsConfiguration"]


def _expected(spa_origin: str) -> dict:
    policy = cors.policy(spa_origin)
    return {
        "AllowOrigins": list(policy.allow_origins),
        "AllowMethods": list(policy.allow_methods),
        "AllowHeaders": list(policy.allow_headers),
        "AllowCredentials": policy.allow_credentials,
        "MaxAge": policy.max_age_seconds,
    }


def test_the_dev_stack_s_api_is_given_the_shared_setting_by_the_web_hosting_stack(template):
    """On the distribution's generated domain the API's template names no origin (a cycle): the web
    hosting stack sets the same configuration (tests/infra/test_web_hosting.py checks its values)."""
    (api,) = template.find_resources("AWS::ApiGatewayV2::Api").values()
    assert "CorsConfiguration" not in api["Properties"]


def test_a_configured_stage_allows_its_spa_origin_without_the_trailing_slash(configured):
    _, template = configured
    assert _cors_configuration(template) == _expected("https://app.apranova.example")
    assert _cors_configuration(template)["AllowOrigins"] == ["https://app.apranova.example"]
