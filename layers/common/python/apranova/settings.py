"""Validated settings, read once per Lambda environment from environment variables.

A function declares the settings it needs as a pydantic model; ``load`` reads each field from the
upper-cased environment variable of the same name and fails at cold start with a message that names
every missing or invalid key. Secrets are never settings: they are SSM parameter *names* here.
"""

from __future__ import annotations

import os
from functools import cache
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from apranova.errors import ConfigurationError


class BaseSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    stage: str = "local"
    aws_region: str = "us-east-1"


class DatabaseSettings(BaseSettings):
    """How to reach the application database.

    Locally ``DATABASE_URL`` (no password: trust or a socket). In AWS the functions reach RDS Proxy
    at ``DB_HOST`` with an IAM authentication token, so no password exists in the environment.
    """

    database_url: str | None = None
    db_host: str | None = None
    db_port: int = 5432
    db_name: str = "apranova"
    db_user: str = "apranova_app"
    db_connect_timeout: int = 5
    # No statement timeout here: RDS Proxy refuses it as a startup option; it is the login role's
    # default (migration 0014).


S = TypeVar("S", bound=BaseModel)


def load(model: type[S], environ: dict[str, str] | None = None) -> S:
    env = os.environ if environ is None else environ
    values = {}
    for name in model.model_fields:
        key = name.upper()
        if key in env and env[key] != "":
            values[name] = env[key]
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = str(err["loc"][0]).upper() if err["loc"] else "?"
            problems.append(f"{key} ({'missing' if err['type'] == 'missing' else err['msg']})")
        raise ConfigurationError(f"invalid settings for {model.__name__}: " + ", ".join(problems)) from None


@cache
def database_settings() -> DatabaseSettings:
    settings = load(DatabaseSettings)
    if not settings.database_url and not settings.db_host:
        raise ConfigurationError("invalid settings for DatabaseSettings: DATABASE_URL or DB_HOST (missing)")
    return settings
