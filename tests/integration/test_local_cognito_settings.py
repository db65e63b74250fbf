"""The local stack's moto user pool has the settings CDK deploys (apranova.user_pool_settings)."""

from __future__ import annotations

import pytest

from apranova import user_pool_settings
from local import moto_stack


@pytest.fixture(scope="module")
def moto_url():
    server = moto_stack.MotoServer()
    server.start()
    yield server.url
    server.stop()


@pytest.fixture(scope="module")
def booted(moto_url, tmp_path_factory):
    cognito = moto_stack.client("cognito-idp", moto_url)
    # A pool left by an older state dir whose client and groups predate the current settings:
    # the bootstrap brings them in line.
    old = cognito.create_user_pool(PoolName=moto_stack.POOL_NAME, **moto_stack.pool_settings())["UserPool"]["Id"]
    cognito.create_user_pool_client(
        UserPoolId=old, ClientName=moto_stack.CLIENT_NAME, ExplicitAuthFlows=["ALLOW_USER_SRP_AUTH"]
    )
    cognito.create_group(UserPoolId=old, GroupName="admins", Precedence=9)
    state = tmp_path_factory.mktemp("state")
    moto_stack.bootstrap(moto_url, state, spa_origin="http://localhost:5173")
    boot = moto_stack.bootstrap(moto_url, state, spa_origin="http://localhost:5173")  # idempotent
    assert boot.user_pool_id == old
    yield cognito, boot
    moto_stack._ignore(("ResourceNotFoundException",), cognito.delete_user_pool, UserPoolId=boot.user_pool_id)


def test_pool_matches_the_deployed_password_policy_and_sign_in(booted):
    cognito, boot = booted
    pool = cognito.describe_user_pool(UserPoolId=boot.user_pool_id)["UserPool"]
    policy = user_pool_settings.PASSWORD_POLICY
    assert pool["Policies"]["PasswordPolicy"] == {
        "MinimumLength": policy.min_length,
        "RequireUppercase": True,
        "RequireLowercase": True,
        "RequireNumbers": True,
        "RequireSymbols": True,
        "TemporaryPasswordValidityDays": 3,
    }
    assert policy.min_length == 12
    assert pool["UsernameAttributes"] == ["email"]
    assert pool["AutoVerifiedAttributes"] == ["email"]
    assert pool["MfaConfiguration"] == "OFF"
    assert pool["AccountRecoverySetting"] == {"RecoveryMechanisms": [{"Priority": 1, "Name": "verified_email"}]}


def test_client_matches_the_deployed_flows_lifetimes_and_revocation(booted):
    cognito, boot = booted
    client = cognito.describe_user_pool_client(UserPoolId=boot.user_pool_id, ClientId=boot.client_id)["UserPoolClient"]
    assert sorted(client["ExplicitAuthFlows"]) == ["ALLOW_REFRESH_TOKEN_AUTH", "ALLOW_USER_PASSWORD_AUTH"]
    assert "ClientSecret" not in client
    assert client["PreventUserExistenceErrors"] == "ENABLED"
    assert client["EnableTokenRevocation"] is True
    assert client["AccessTokenValidity"] == client["IdTokenValidity"] == 15
    assert client["RefreshTokenValidity"] == 30
    assert client["TokenValidityUnits"] == {"AccessToken": "minutes", "IdToken": "minutes", "RefreshToken": "days"}
    clients = cognito.list_user_pool_clients(UserPoolId=boot.user_pool_id, MaxResults=60)["UserPoolClients"]
    assert [c["ClientName"] for c in clients] == [moto_stack.CLIENT_NAME]


def test_groups_have_the_deployed_precedence(booted):
    cognito, boot = booted
    groups = cognito.list_groups(UserPoolId=boot.user_pool_id)["Groups"]
    assert {g["GroupName"]: g["Precedence"] for g in groups} == {"admins": 0, "trainers": 1, "students": 2}


def test_dev_users_passwords_satisfy_the_policy(booted):
    cognito, boot = booted
    for user in boot.dev_users.values():
        tokens = cognito.initiate_auth(
            ClientId=boot.client_id,
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": user["email"], "PASSWORD": user["password"]},
        )["AuthenticationResult"]
        assert tokens["AccessToken"] and tokens["RefreshToken"]
        assert len(user["password"]) >= 12


def test_a_pool_with_other_settings_asks_for_a_reset(moto_url, booted, tmp_path):
    cognito = moto_stack.client("cognito-idp", moto_url)
    cognito.delete_user_pool(UserPoolId=booted[1].user_pool_id)
    stale = cognito.create_user_pool(
        PoolName=moto_stack.POOL_NAME,
        UsernameAttributes=["email"],
        Policies={"PasswordPolicy": {"MinimumLength": 8}},
    )["UserPool"]["Id"]
    try:
        with pytest.raises(moto_stack.StalePoolError, match="Policies.*make dev-reset"):
            moto_stack.bootstrap(moto_url, tmp_path, spa_origin="http://localhost:5173")
    finally:
        cognito.delete_user_pool(UserPoolId=stale)
