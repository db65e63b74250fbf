"""Who the load balancer says signed in: the ``x-amzn-oidc-data`` JWT, verified.

An Application Load Balancer with ``authenticate-cognito`` adds ``x-amzn-oidc-data`` (the user's
claims, an ES256 JWT whose header names the key id ``kid`` and the load balancer ``signer``) and
``x-amzn-oidc-identity`` (the ``sub``). Anyone who reaches the proxy some other way could set those
headers, so the JWT's signature is checked against the key the region publishes at
``https://public-keys.auth.elb.<region>.amazonaws.com/<kid>``, the signer must be our load balancer,
and the token must not have expired. ALB pads its base64url segments with ``=`` and signs the
segments as sent, which common JWT libraries refuse: the signature (raw ``r || s``) is checked here
with ``cryptography`` over the segments exactly as received.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

DATA_HEADER = "x-amzn-oidc-data"
IDENTITY_HEADER = "x-amzn-oidc-identity"
KEY_URL = "https://public-keys.auth.elb.{region}.amazonaws.com/{kid}"
_KID = re.compile(r"^[A-Za-z0-9-]{1,128}$")
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

KeyFetcher = Callable[[str], str]


class NotSignedIn(Exception):
    """The request carries no identity the proxy can trust (answered 401)."""


class NotYours(NotSignedIn):
    """A verified identity asking, through the plain identity header, for someone else's (403)."""


@dataclass(frozen=True)
class Identity:
    user_id: str  # the Cognito sub, which is our users.id
    email: str | None


def fetch_key(url: str) -> str:
    """The PEM public key at ``url`` (the ALB key endpoint)."""
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - an https URL we build
        return response.read().decode("ascii")


class KeyCache:
    """Public keys by id: the endpoint's keys do not change, so each is fetched once."""

    def __init__(self, region: str, fetch: KeyFetcher = fetch_key, key_url: str = KEY_URL) -> None:
        self._region = region
        self._fetch = fetch
        self._key_url = key_url  # the local stack's front door publishes its key elsewhere
        self._keys: dict[str, str] = {}
        self._lock = threading.Lock()

    def get(self, kid: str) -> str:
        if not _KID.match(kid):
            raise NotSignedIn("the token names no valid key id")
        with self._lock:
            if kid not in self._keys:
                try:
                    self._keys[kid] = self._fetch(self._key_url.format(region=self._region, kid=kid))
                except OSError:  # urllib's HTTPError (no such key) and network errors alike
                    raise NotSignedIn("the token's key is unknown to the key endpoint") from None
            return self._keys[kid]


def _decode(segment: str) -> bytes:
    segment = segment.rstrip("=")
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _json(segment: str) -> dict:
    try:
        value = json.loads(_decode(segment))
    except (ValueError, UnicodeDecodeError):
        raise NotSignedIn("the identity token is malformed") from None
    if not isinstance(value, dict):
        raise NotSignedIn("the identity token is malformed")
    return value


def _signature_holds(pem: str, signing_input: bytes, signature: bytes) -> bool:
    key = serialization.load_pem_public_key(pem.encode("ascii"))
    if not isinstance(key, ec.EllipticCurvePublicKey) or len(signature) != 64:
        return False
    der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
    try:
        key.verify(der, signing_input, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


def verify(headers: dict[str, str], *, keys: KeyCache, load_balancer_arn: str, leeway: int = 0) -> Identity:
    """The identity in ``headers`` (lower-case names), or ``NotSignedIn``."""
    token = headers.get(DATA_HEADER)
    if not token:
        raise NotSignedIn("no identity from the load balancer")
    parts = token.strip().split(".")
    if len(parts) != 3:
        raise NotSignedIn("the identity token is malformed")
    header = _json(parts[0])
    if header.get("alg") != "ES256":
        raise NotSignedIn("the identity token is not ES256")
    if header.get("signer") != load_balancer_arn:
        raise NotSignedIn("the identity token was not signed by our load balancer")
    key = keys.get(str(header.get("kid") or ""))
    try:
        signature = _decode(parts[2])
    except ValueError:
        raise NotSignedIn("the identity token is malformed") from None
    if not _signature_holds(key, f"{parts[0]}.{parts[1]}".encode("ascii"), signature):
        raise NotSignedIn("the identity token does not verify (signature)")
    claims = _json(parts[1])
    if not isinstance(claims.get("exp"), int) or claims["exp"] + leeway < time.time():
        raise NotSignedIn("the identity token does not verify (expired)")
    if not claims.get("sub"):
        raise NotSignedIn("the identity token names nobody")
    sub = str(claims["sub"])
    if not _UUID.match(sub):
        raise NotSignedIn("the identity is not one of our users")
    # The plain header must say the same (the load balancer sets both).
    if headers.get(IDENTITY_HEADER) not in (None, sub):
        raise NotYours("the identity headers disagree: this is not your workspace")
    email = claims.get("email")
    return Identity(user_id=sub, email=str(email) if email else None)
