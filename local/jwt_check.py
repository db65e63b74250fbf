"""The checks API Gateway's Cognito JWT authorizer makes, against the local (moto) user pool.

API Gateway accepts a token when its RS256 signature verifies with a key of the pool's JWKS, ``iss``
is the pool's issuer, the audience matches (for Cognito access tokens, which carry no ``aud``: the
``client_id`` claim), ``token_use`` is ``access`` and ``exp``/``iat``/``nbf`` hold. It then hands the
function the claims as strings, with lists rendered as ``"[a b]"``.

moto signs every pool's tokens with one static key and always writes the AWS issuer URL, so the
JWKS comes from the moto server while the issuer is the AWS one. moto also writes an ``exp`` an hour
after ``iat`` whatever the app client says; Cognito writes the client's access-token validity (15
minutes: ``apranova.user_pool_settings``). So the check also refuses a token issued longer ago than
that lifetime, and a local token dies when a deployed one would.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import jwt
import requests

from apranova.user_pool_settings import ACCESS_TOKEN_MINUTES


class Unauthorized(Exception):  # noqa: N818 - the authorizer's own word
    """The token is missing or fails a check; the caller gets API Gateway's 401."""


def issuer(region: str, user_pool_id: str) -> str:
    return f"https://cognito-idp.{region}.amazonaws.com/{user_pool_id}"


class JwtCheck:
    def __init__(
        self,
        *,
        moto_url: str,
        region: str,
        user_pool_id: str,
        client_id: str,
        leeway: int = 0,
        access_token_seconds: int = ACCESS_TOKEN_MINUTES * 60,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.jwks_url = f"{moto_url}/{user_pool_id}/.well-known/jwks.json"
        self.issuer = issuer(region, user_pool_id)
        self.client_id = client_id
        self.leeway = leeway
        # The pool's access-token validity: what Cognito would have written as exp - iat.
        self.access_token_seconds = access_token_seconds
        self.clock = clock
        self._keys: dict[str, Any] | None = None
        self._lock = threading.Lock()

    def _signing_keys(self) -> dict[str, Any]:
        """Fetched once and cached, as API Gateway caches the pool's JWKS."""
        with self._lock:
            if self._keys is None:
                response = requests.get(self.jwks_url, timeout=10)
                response.raise_for_status()
                self._keys = {str(key.key_id): key for key in jwt.PyJWKSet.from_dict(response.json()).keys}
            return self._keys

    def verify(self, token: str) -> dict[str, Any]:
        """The token's claims, or ``Unauthorized``."""
        try:
            header = jwt.get_unverified_header(token)
            key = self._signing_keys().get(str(header.get("kid")))
            if key is None or header.get("alg") != "RS256":
                raise Unauthorized("unknown signing key")
            claims = jwt.decode(
                token,
                key=key.key,
                algorithms=["RS256"],
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": ["exp", "iat", "iss", "sub", "token_use"], "verify_aud": False},
            )
        except jwt.PyJWTError as error:
            raise Unauthorized(str(error)) from None
        if claims.get("token_use") != "access":
            raise Unauthorized("not an access token")
        if claims.get("client_id") != self.client_id:
            raise Unauthorized("token issued to another client")
        issued = claims.get("iat")
        if not isinstance(issued, int | float) or isinstance(issued, bool):
            raise Unauthorized("no issue time")
        if self.clock() > issued + self.access_token_seconds + self.leeway:
            raise Unauthorized("token expired (the pool's access-token validity)")
        return claims

    def verify_header(self, authorization: str | None) -> dict[str, Any]:
        if not authorization:
            raise Unauthorized("no token")
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("not a bearer token")
        return self.verify(token.strip())


def api_gateway_claims(claims: dict[str, Any]) -> dict[str, str]:
    """Claims as the HTTP API JWT authorizer passes them: strings, lists as ``"[a b]"``."""
    rendered: dict[str, str] = {}
    for name, value in claims.items():
        if isinstance(value, list | tuple):
            rendered[name] = "[" + " ".join(str(v) for v in value) + "]"
        elif isinstance(value, bool):
            rendered[name] = "true" if value else "false"
        else:
            rendered[name] = str(value)
    return rendered
