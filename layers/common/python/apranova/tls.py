"""TLS to PostgreSQL in AWS: verify the server's certificate and name (``sslmode=verify-full``).

The CA bundle ships in the layer (``certs/rds-global-bundle.pem``): Amazon RDS's regional root CAs
(RSA2048 G1, RSA4096 G1, ECC384 G1), which sign the instances' certificates, and the Amazon Trust
Services roots, which sign RDS Proxy's. Where it comes from and how to refresh it: docs/decisions.md.
``DB_CA_BUNDLE`` names another PEM file (a private CA; the tests' throwaway server) - the check
itself is never relaxed.
"""

from __future__ import annotations

import os
from pathlib import Path

RDS_CA_BUNDLE = Path(__file__).resolve().parent / "certs" / "rds-global-bundle.pem"


def ca_bundle_path() -> str:
    """The PEM file of the certificate authorities a PostgreSQL server's certificate must chain to."""
    return os.environ.get("DB_CA_BUNDLE") or str(RDS_CA_BUNDLE)


def ca_bundle_pem(region: str | None = None) -> str:
    """The CA bundle's text, for a client that takes certificates rather than a path (Superset's
    ``server_cert``). With ``region``, only that region's RDS root CAs when the bundle names them
    (each certificate of the shipped bundle follows a ``# <CN> ...`` line): 3 certificates, not 92."""
    text = Path(ca_bundle_path()).read_text()
    if not region:
        return text
    blocks = [block for block in text.split("-----END CERTIFICATE-----") if "-----BEGIN CERTIFICATE-----" in block]
    own = [
        block.strip() + "\n-----END CERTIFICATE-----\n"
        for block in blocks
        if f"Amazon RDS {region} Root CA" in block.split("-----BEGIN CERTIFICATE-----")[0]
    ]
    return "".join(own) or text


def verified() -> dict[str, str]:
    """libpq connection parameters that refuse a server whose certificate or host name is wrong."""
    return {"sslmode": "verify-full", "sslrootcert": ca_bundle_path()}
