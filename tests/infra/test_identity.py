"""The user pool, its SPA client and groups, and how the API and the functions use them."""

from __future__ import annotations

import pytest
from aws_cdk.assertions import Template

from apranova import inventory, routes
from apranova.inventory import Trigger
from cdk.stacks.apranova_stack import COGNITO_FUNCTIONS
from tests.infra.stack_support import function_ids as _function_ids

# The Cognito admin actions of the route functions, as their inventory rows list them.
COGNITO_ACTIONS = {
    f.name: tuple(sorted(a for a in f.actions if a.startswith("cognito-idp:")))
    for f in inventory.of(Trigger.ROUTE)
    if any(a.startswith("cognito-idp:") for a in f.actions)
}

DEPLOYED = [r for r in routes.ROUTES if not r.local_only]


def _only(template, type_: str) -> tuple[str, dict]:
    (found,) = template.find_resources(type_).items()
    return found


def test_pool_signs_in_with_email_under_a_strong_password_policy(template):
    pool_id, pool = _only(template, "AWS::Cognito::UserPool")
    props = pool["Properties"]
    assert props["UsernameAttributes"] == ["email"]
    assert props["AutoVerifiedAttributes"] == ["email"]
    assert props["UsernameConfiguration"] == {"CaseSensitive": False}
    assert props["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is False  # self sign-up
    assert props["Policies"]["PasswordPolicy"] == {
        "MinimumLength": 12,
        "RequireUppercase": True,
        "RequireLowercase": True,
        "RequireNumbers": True,
        "RequireSymbols": True,
        "TemporaryPasswordValidityDays": 3,
    }
    assert props["AccountRecoverySetting"] == {"RecoveryMechanisms": [{"Name": "verified_email", "Priority": 1}]}
    assert props["MfaConfiguration"] == "OFF"
    assert props["UserPoolTier"] == "ESSENTIALS"
    assert props["VerificationMessageTemplate"]["DefaultEmailOption"] == "CONFIRM_WITH_CODE"
    assert props["EmailConfiguration"] == {"EmailSendingAccount": "COGNITO_DEFAULT"}
    # Not production: no deletion protection, removed with the stack.
    assert props.get("DeletionProtection", "INACTIVE") == "INACTIVE"
    assert pool["DeletionPolicy"] == "Delete"


def test_groups_with_precedence(template):
    groups = {
        g["Properties"]["GroupName"]: g["Properties"]
        for g in template.find_resources("AWS::Cognito::UserPoolGroup").values()
    }
    assert {name: g["Precedence"] for name, g in groups.items()} == {"admins": 0, "trainers": 1, "students": 2}
    pool_id, _ = _only(template, "AWS::Cognito::UserPool")
    assert all(g["UserPoolId"] == {"Ref": pool_id} for g in groups.values())


def test_spa_client_password_and_refresh_only_short_tokens_revocable_no_secret(template):
    _, client = _only(template, "AWS::Cognito::UserPoolClient")
    props = client["Properties"]
    assert sorted(props["ExplicitAuthFlows"]) == ["ALLOW_REFRESH_TOKEN_AUTH", "ALLOW_USER_PASSWORD_AUTH"]
    assert props.get("GenerateSecret", False) is False
    assert props["PreventUserExistenceErrors"] == "ENABLED"
    assert props["EnableTokenRevocation"] is True
    assert props["AccessTokenValidity"] == 15
    assert props["IdTokenValidity"] == 15
    assert props["RefreshTokenValidity"] == 30 * 24 * 60
    assert props["TokenValidityUnits"] == {"AccessToken": "minutes", "IdToken": "minutes", "RefreshToken": "minutes"}
    assert props["AllowedOAuthFlowsUserPoolClient"] is False
    assert "AllowedOAuthFlows" not in props
    assert sorted(props["WriteAttributes"]) == ["email", "name"]


def test_authorizer_guards_every_token_route_and_no_public_one(template):
    if not any(route.access.needs_token for route in DEPLOYED):
        # CDK creates the authorizer when the first route binds it.
        assert template.find_resources("AWS::ApiGatewayV2::Authorizer") == {}
        return
    authorizer_id, authorizer = _only(template, "AWS::ApiGatewayV2::Authorizer")
    pool_id, _ = _only(template, "AWS::Cognito::UserPool")
    client_id, _ = _only(template, "AWS::Cognito::UserPoolClient")
    config = authorizer["Properties"]
    assert config["AuthorizerType"] == "JWT"
    assert config["IdentitySource"] == ["$request.header.Authorization"]
    assert config["JwtConfiguration"]["Audience"] == [{"Ref": client_id}]
    issuer = config["JwtConfiguration"]["Issuer"]["Fn::Join"][1]
    assert issuer[0] == "https://cognito-idp." and issuer[-1] == {"Ref": pool_id}

    by_key = {
        r["Properties"]["RouteKey"]: r["Properties"]
        for r in template.find_resources("AWS::ApiGatewayV2::Route").values()
    }
    for route in DEPLOYED:
        props = by_key[route.gateway_key]
        if route.access.needs_token:
            assert props["AuthorizationType"] == "JWT", route.key
            assert props["AuthorizerId"] == {"Ref": authorizer_id}, route.key
        else:
            assert props["AuthorizationType"] == "NONE", route.key
            assert "AuthorizerId" not in props and "AuthorizationScopes" not in props, route.key
    assert by_key["$default"]["AuthorizationType"] == "NONE"


POOL_JOBS = {"compliance-export", "compliance-purge"}


def test_the_functions_that_call_the_pool_know_it_and_no_other(template):
    """The code that reads the pool's settings (apranova.cognito) runs in these functions only; that
    none misses them is checked against each function's settings (tests/infra/test_tools.py)."""
    pool_id, _ = _only(template, "AWS::Cognito::UserPool")
    client_id, _ = _only(template, "AWS::Cognito::UserPoolClient")
    functions = template.find_resources("AWS::Lambda::Function")
    ids = _function_ids(template)
    assert COGNITO_FUNCTIONS <= set(routes.functions())
    for name, logical_id in ids.items():
        env = functions[logical_id]["Properties"]["Environment"]["Variables"]
        # The payments reconcile job creates pay-first accounts as the webhook does (a lost webhook).
        if name in COGNITO_FUNCTIONS or name == "payments-reconcile":
            assert env["COGNITO_USER_POOL_ID"] == {"Ref": pool_id}, name
            assert env["COGNITO_CLIENT_ID"] == {"Ref": client_id}, name
        elif name in POOL_JOBS:
            # The export reads the person's attributes, the purge deletes them: the pool, no client.
            assert env["COGNITO_USER_POOL_ID"] == {"Ref": pool_id}, name
            assert "COGNITO_CLIENT_ID" not in env, name
        else:
            assert not [k for k in env if k.startswith("COGNITO_")], name


def _cognito_statements(template, function: str) -> list[dict]:
    """The cognito-idp statements of ``function``'s role (its default policy)."""
    role = template.find_resources("AWS::Lambda::Function")[_function_ids(template)[function]]["Properties"]["Role"]
    role_id = role["Fn::GetAtt"][0]
    found = []
    for policy in template.find_resources("AWS::IAM::Policy").values():
        if {"Ref": role_id} not in policy["Properties"]["Roles"]:
            continue
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            if any(a.startswith("cognito-idp:") for a in actions):
                found.append({**statement, "Action": sorted(actions)})
    return found


@pytest.mark.parametrize("function", sorted(COGNITO_ACTIONS))
def test_cognito_admin_actions_are_scoped_to_the_pool(template, function):
    if function not in routes.functions():
        pytest.skip(f"the route table has no {function} function yet")
    pool_id, _ = _only(template, "AWS::Cognito::UserPool")
    (statement,) = _cognito_statements(template, function)
    assert statement["Effect"] == "Allow"
    assert statement["Action"] == sorted(COGNITO_ACTIONS[function])
    assert statement["Resource"] == {"Fn::GetAtt": [pool_id, "Arn"]}


def test_only_auth_admin_and_the_payments_webhook_get_cognito_permissions(template):
    for name in routes.functions():
        if name not in COGNITO_ACTIONS:
            assert _cognito_statements(template, name) == [], name
    assert set(COGNITO_ACTIONS["auth"]) == {
        "cognito-idp:AdminAddUserToGroup",
        "cognito-idp:AdminDeleteUser",
        "cognito-idp:AdminUserGlobalSignOut",  # a password reset ends every session
    }
    assert set(COGNITO_ACTIONS["admin"]) == {
        "cognito-idp:AdminAddUserToGroup",
        "cognito-idp:AdminRemoveUserFromGroup",
    }
    # Pay first: find or create the account, give it a password nobody knows, make it a student.
    assert set(COGNITO_ACTIONS["payments-webhook"]) == {
        "cognito-idp:AdminAddUserToGroup",
        "cognito-idp:AdminCreateUser",
        "cognito-idp:AdminGetUser",
        "cognito-idp:AdminSetUserPassword",
    }


def test_outputs_name_the_pool_client_and_issuer(template):
    outputs = template.to_json()["Outputs"]
    pool_id, _ = _only(template, "AWS::Cognito::UserPool")
    assert outputs["UserPoolId"]["Value"] == {"Ref": pool_id}
    assert "Ref" in outputs["UserPoolClientId"]["Value"]
    issuer = outputs["JwtIssuer"]["Value"]["Fn::Join"][1]
    assert issuer[0] == "https://cognito-idp." and issuer[-1] == {"Ref": pool_id}


def _production_pool(context: dict) -> dict:
    from cdk.app import build

    # Production refuses to synthesize without its context: the complete example supplies the rest.
    _app, stack = build(
        {"aws:cdk:bundling-stacks": [], "stage": "prod", "contextFile": "cdk/context/prod.example.json", **context}
    )
    ((_, pool),) = Template.from_stack(stack).find_resources("AWS::Cognito::UserPool").items()
    return pool


@pytest.mark.parametrize(
    ("identity", "sender"),
    [("apranova.example", "no-reply@apranova.example"), ("team@apranova.example", "team@apranova.example")],
)
def test_production_pool_is_protected_and_sends_through_the_given_ses_identity(identity, sender):
    arn = f"arn:aws:ses:eu-west-1:111122223333:identity/{identity}"
    pool = _production_pool({"sesSenderArn": arn})
    assert pool["DeletionPolicy"] == "Retain" and pool["UpdateReplacePolicy"] == "Retain"
    assert pool["Properties"]["DeletionProtection"] == "ACTIVE"
    assert pool["Properties"]["EmailConfiguration"] == {
        "EmailSendingAccount": "DEVELOPER",
        "From": f"ApraNova <{sender}>",
        "SourceArn": arn,
    }


def test_a_sender_that_is_not_an_ses_identity_fails_the_synth():
    from cdk.app import build

    with pytest.raises(ValueError, match="SES identity"):
        build({"aws:cdk:bundling-stacks": [], "sesSenderArn": "arn:aws:s3:::some-bucket/x"})
