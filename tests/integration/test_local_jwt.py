"""The local JWT check accepts what API Gateway's Cognito authorizer accepts, and nothing else.

Tokens are issued by moto's Cognito; the bad ones are signed with moto's own (public, static) key
so that only the claim under test is wrong.
"""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Iterator
from importlib import resources
from typing import Any

import jwt
import pytest

from local import moto_stack
from local.jwt_check import JwtCheck, Unauthorized, api_gateway_claims

PASSWORD = "Local-Passw0rd!"


@pytest.fixture(scope="module")
def pool() -> Iterator[dict[str, Any]]:
    server = moto_stack.MotoServer()
    server.start()
    cognito = moto_stack.client("cognito-idp", server.url)
    pool_id = cognito.create_user_pool(PoolName="jwt-test", UsernameAttributes=["email"])["UserPool"]["Id"]
    client_id = cognito.create_user_pool_client(
        UserPoolId=pool_id, ClientName="spa", ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH"]
    )["UserPoolClient"]["ClientId"]
    cognito.create_group(UserPoolId=pool_id, GroupName="admins")
    cognito.create_group(UserPoolId=pool_id, GroupName="trainers")
    cognito.admin_create_user(UserPoolId=pool_id, Username="a@example.com", MessageAction="SUPPRESS")
    cognito.admin_set_user_password(UserPoolId=pool_id, Username="a@example.com", Password=PASSWORD, Permanent=True)
    for group in ("admins", "trainers"):
        cognito.admin_add_user_to_group(UserPoolId=pool_id, Username="a@example.com", GroupName=group)
    tokens = cognito.initiate_auth(
        ClientId=client_id,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": "a@example.com", "PASSWORD": PASSWORD},
    )["AuthenticationResult"]
    check = JwtCheck(moto_url=server.url, region=moto_stack.REGION, user_pool_id=pool_id, client_id=client_id)
    yield {"check": check, "tokens": tokens, "pool_id": pool_id, "client_id": client_id}
    server.stop()


def _moto_key() -> jwt.PyJWK:
    data = (resources.files("moto") / "cognitoidp/resources/jwks-private.json.gz").read_bytes()
    return jwt.PyJWK(json.loads(gzip.decompress(data)))


def _sign(claims: dict[str, Any], kid: str = "dummy") -> str:
    return jwt.encode(claims, _moto_key().key, algorithm="RS256", headers={"kid": kid})


def _claims(pool: dict[str, Any], **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": f"https://cognito-idp.{moto_stack.REGION}.amazonaws.com/{pool['pool_id']}",
        "sub": "6f1c1f5e-0000-4000-8000-000000000001",
        "client_id": pool["client_id"],
        "token_use": "access",
        "iat": now,
        "exp": now + 600,
        "cognito:groups": ["admins"],
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def test_accepts_a_moto_issued_access_token(pool: dict[str, Any]) -> None:
    claims = pool["check"].verify(pool["tokens"]["AccessToken"])
    assert claims["token_use"] == "access"
    assert sorted(claims["cognito:groups"]) == ["admins", "trainers"]
    rendered = api_gateway_claims(claims)
    assert rendered["cognito:groups"] in ("[admins trainers]", "[trainers admins]")
    assert all(isinstance(v, str) for v in rendered.values())


def test_accepts_a_bearer_header(pool: dict[str, Any]) -> None:
    assert pool["check"].verify_header(f"Bearer {pool['tokens']['AccessToken']}")["sub"]


def test_a_crafted_token_with_good_claims_passes(pool: dict[str, Any]) -> None:
    # Proves the rejections below are caused by the one claim each of them changes.
    assert pool["check"].verify(_sign(_claims(pool)))["sub"]


@pytest.mark.parametrize(
    "changes",
    [
        # Times are offsets from when the test runs, not from collection: a long run must not age them.
        pytest.param({"exp": -60, "iat": -3700}, id="expired"),
        pytest.param({"nbf": 600}, id="not-yet-valid"),
        pytest.param({"client_id": "another-client"}, id="wrong-client"),
        pytest.param({"token_use": "id", "client_id": None, "aud": "x"}, id="id-token"),
        pytest.param({"iss": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_other"}, id="wrong-pool"),
        pytest.param({"token_use": None}, id="no-token-use"),
    ],
)
def test_rejects_a_bad_claim(pool: dict[str, Any], changes: dict[str, Any]) -> None:
    now = int(time.time())
    changes = {k: now + v if k in ("exp", "iat", "nbf") else v for k, v in changes.items()}
    with pytest.raises(Unauthorized):
        pool["check"].verify(_sign(_claims(pool, **changes)))


def test_rejects_the_real_id_token(pool: dict[str, Any]) -> None:
    with pytest.raises(Unauthorized):
        pool["check"].verify(pool["tokens"]["IdToken"])


def test_rejects_a_tampered_signature(pool: dict[str, Any]) -> None:
    header, payload, signature = pool["tokens"]["AccessToken"].split(".")
    flipped = ("A" if signature[10] != "A" else "B").join((signature[:10], signature[11:]))
    with pytest.raises(Unauthorized):
        pool["check"].verify(f"{header}.{payload}.{flipped}")


def test_rejects_a_tampered_payload(pool: dict[str, Any]) -> None:
    header, _, signature = pool["tokens"]["AccessToken"].split(".")
    forged = jwt.utils.base64url_encode(json.dumps(_claims(pool, sub="someone-else")).encode()).decode()
    with pytest.raises(Unauthorized):
        pool["check"].verify(f"{header}.{forged}.{signature}")


def test_rejects_an_unknown_key(pool: dict[str, Any]) -> None:
    with pytest.raises(Unauthorized):
        pool["check"].verify(_sign(_claims(pool), kid="other"))


def test_rejects_an_unsigned_token(pool: dict[str, Any]) -> None:
    token = jwt.encode(_claims(pool), key=None, algorithm="none", headers={"kid": "dummy"})
    with pytest.raises(Unauthorized):
        pool["check"].verify(token)


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer ", "Basic abc", "Bearer garbage", "Bearer a.b.c"])
def test_rejects_garbage(pool: dict[str, Any], header: str | None) -> None:
    with pytest.raises(Unauthorized):
        pool["check"].verify_header(header)


def test_a_token_older_than_the_pools_access_token_validity_is_refused(pool: dict[str, Any]) -> None:
    # moto writes exp an hour after iat; the pool (and so Cognito) says 15 minutes.
    now = int(time.time())
    fresh = _sign(_claims(pool, iat=now - 14 * 60, exp=now + 46 * 60))
    assert pool["check"].verify(fresh)["sub"]
    stale = _sign(_claims(pool, iat=now - 16 * 60, exp=now + 44 * 60))
    with pytest.raises(Unauthorized, match="validity"):
        pool["check"].verify(stale)
    # A real moto token too, once 15 minutes have passed on the check's clock.
    token = pool["tokens"]["AccessToken"]
    issued = jwt.decode(token, options={"verify_signature": False})["iat"]
    later = JwtCheck(
        moto_url=pool["check"].jwks_url.split(f"/{pool['pool_id']}/")[0],
        region=moto_stack.REGION,
        user_pool_id=pool["pool_id"],
        client_id=pool["client_id"],
        clock=lambda: issued + 15 * 60 + 1,
    )
    with pytest.raises(Unauthorized, match="validity"):
        later.verify(token)
