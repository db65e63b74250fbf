"""The tools function's settings and AWS clients, made once per warm environment.

Per-student secrets are read from SSM on every request, never cached: a reprovision may reset a
password, and a warm environment serves many students.
"""

from __future__ import annotations

from functools import cache
from typing import Any, Literal

from pydantic import Field

from apranova.errors import ServiceUnavailable
from apranova.settings import BaseSettings, load

_TRANSIENT = frozenset({"ThrottlingException", "InternalServerError", "ServiceUnavailable", "KMSInternalException"})


class ToolsSettings(BaseSettings):
    ssm_prefix: str = Field(pattern=r"^/[A-Za-z0-9_.\-/]*[A-Za-z0-9_.\-]$")
    # Where students connect to their database (the students' database endpoint they are given).
    students_db_host: str = Field(min_length=1)
    students_db_port: int = Field(5432, ge=1, le=65535)
    # In connection_uri: TLS required in AWS (RDS offers it); the local stack's PostgreSQL has none.
    students_db_sslmode: Literal["disable", "prefer", "require", "verify-ca", "verify-full"] = "require"


@cache
def settings() -> ToolsSettings:
    return load(ToolsSettings)


@cache
def _ssm() -> Any:
    import boto3
    from botocore.config import Config

    config = Config(connect_timeout=3, read_timeout=10, retries={"mode": "standard", "max_attempts": 3})
    return boto3.client("ssm", region_name=settings().aws_region, config=config)


def secret(name: str) -> str | None:
    """The decrypted SecureString ``name``; None when it does not exist."""
    # Imported here: botocore is loaded by the client this call uses, not at cold start for every route.
    from botocore.exceptions import ClientError

    try:
        return str(_ssm().get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"])
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code")
        if code == "ParameterNotFound":
            return None
        if code in _TRANSIENT:
            raise ServiceUnavailable(
                "The credential store is busy; try again shortly.", headers={"Retry-After": "1"}
            ) from None
        raise


@cache
def workspace() -> Any:
    """The workspace provisioner (its settings are needed by the workspace routes only)."""
    from functions.provision.tools.workspace import from_environment

    return from_environment()


@cache
def jupyterhub() -> Any:
    """The JupyterHub provisioner: the jupyter-access route asks it for a sign-in link."""
    from functions.provision.tools.jupyterhub import JupyterHubProvisioner, JupyterHubSettings

    return JupyterHubProvisioner(_ssm(), load(JupyterHubSettings))


def reset() -> None:
    settings.cache_clear()
    _ssm.cache_clear()
    workspace.cache_clear()
    jupyterhub.cache_clear()
