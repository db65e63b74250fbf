"""The authorization matrix, walked from the route table: every route whose access needs a token
refuses an anonymous call with 401, in the function itself (its guard) and at the gateway (the
local server's JWT check, which mirrors API Gateway's authorizer), and refuses tokens that are
not a valid access token of our pool and client. Later issues add role rows (403) to the walk."""

from __future__ import annotations

import importlib
import time
import uuid

import jwt
import pytest
from werkzeug.test import Client

from apranova import routes
from local import moto_stack
from local.jwt_check import JwtCheck
from local.server import LocalApi
from tests.integration.auth_support import PASSWORD, call, idp, make_pool, moto_url

PROTECTED = [r for r in routes.ROUTES if r.access.needs_token and not r.local_only]


def concrete(path: str) -> str:
    return path.replace("{id}", str(uuid.uuid4())).replace("{step_id}", str(uuid.uuid4()))


def test_the_table_protects_what_the_design_says():
    keys = {r.key for r in PROTECTED}
    assert {
        "POST /api/auth/logout/",
        "POST /api/auth/password/change/",
        "GET /api/auth/user/",
        "PATCH /api/auth/user/",
        "POST /api/admin/users/{id}/role/",
    } <= keys
    assert routes.ROUTES_BY_KEY["POST /api/admin/users/{id}/role"].access is routes.Access.ADMIN


@pytest.mark.parametrize("route", PROTECTED, ids=lambda r: r.key)
def test_the_function_refuses_an_anonymous_call(route, database_url):
    handler = importlib.import_module(routes.handler_module(route.function)).lambda_handler
    status, body = call(handler, route.method, concrete(route.path), {})
    assert status == 401 and body["error"]["code"] == "not_authenticated"


@pytest.fixture(scope="module")
def gateway():
    pool = make_pool()
    other = make_pool()
    client = idp()
    email = f"m-{uuid.uuid4().hex[:8]}@example.com"
    for target in (pool, other):
        client.admin_create_user(UserPoolId=target["user_pool_id"], Username=email, MessageAction="SUPPRESS")
        client.admin_set_user_password(
            UserPoolId=target["user_pool_id"], Username=email, Password=PASSWORD, Permanent=True
        )

    def tokens(target):
        return client.initiate_auth(
            ClientId=target["client_id"],
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": email, "PASSWORD": PASSWORD},
        )["AuthenticationResult"]

    check = JwtCheck(
        moto_url=moto_url(),
        region=moto_stack.REGION,
        user_pool_id=pool["user_pool_id"],
        client_id=pool["client_id"],
    )
    api = LocalApi(jwt_check=check, openapi=dict, mailbox=list)
    mine, theirs = tokens(pool), tokens(other)
    claims = jwt.decode(mine["AccessToken"], options={"verify_signature": False})
    head, payload, signature = mine["AccessToken"].split(".")
    expired = jwt.encode(
        {**claims, "exp": int(time.time()) - 60, "iat": int(time.time()) - 3600},
        _moto_key(),
        algorithm="RS256",
        headers={"kid": jwt.get_unverified_header(mine["AccessToken"])["kid"]},
    )
    wrong_client = jwt.encode(
        {**claims, "client_id": "someone-else"},
        _moto_key(),
        algorithm="RS256",
        headers={"kid": jwt.get_unverified_header(mine["AccessToken"])["kid"]},
    )
    bad = {
        "none": None,
        "garbage": "Bearer not.a.jwt",
        "not bearer": f"Basic {mine['AccessToken']}",
        "id token": f"Bearer {mine['IdToken']}",
        "other pool": f"Bearer {theirs['AccessToken']}",
        "tampered": f"Bearer {head}.{payload[:-4]}AAAA.{signature}",
        "expired": f"Bearer {expired}",
        "wrong audience": f"Bearer {wrong_client}",
    }
    return Client(api), bad


def _moto_key():
    import gzip
    import json
    from importlib import resources

    data = (resources.files("moto") / "cognitoidp/resources/jwks-private.json.gz").read_bytes()
    return jwt.PyJWK(json.loads(gzip.decompress(data))).key


@pytest.mark.parametrize("route", PROTECTED, ids=lambda r: r.key)
def test_the_gateway_refuses_calls_without_a_valid_access_token(route, gateway):
    client, bad = gateway
    for name, header in bad.items():
        headers = {"Authorization": header} if header else {}
        response = client.open(concrete(route.path), method=route.method, json={}, headers=headers)
        assert response.status_code == 401, (name, response.get_data(as_text=True))
        assert response.json == {"message": "Unauthorized"}
