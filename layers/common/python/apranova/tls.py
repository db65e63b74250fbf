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


def verified() -> dict[str, str]:
    """libpq connection parameters that refuse a server whose certificate or host name is wrong."""
    return {"sslmode": "verify-full", "sslrootcert": os.environ.get("DB_CA_BUNDLE") or str(RDS_CA_BUNDLE)}
