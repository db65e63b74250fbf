"""The Cognito user pool, as the auth, admin and compliance functions reach it.

Cognito owns identities and passwords; its groups are the roles (``users.role`` mirrors them).
boto3 is imported on first use: functions that only read claims never pay for it. boto3 honours
``AWS_ENDPOINT_URL`` (or ``AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER``), which the local stack and
the tests point at moto.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from apranova.identity import ROLE_BY_GROUP
from apranova.settings import BaseSettings, load

GROUP_BY_ROLE = {role: group for group, role in ROLE_BY_GROUP.items()}


class CognitoSettings(BaseSettings):
    cognito_user_pool_id: str
    cognito_client_id: str


@cache
def settings() -> CognitoSettings:
    return load(CognitoSettings)


@cache
def client() -> Any:
    """One client per warm environment (creating one costs tens of milliseconds). Only the region is
    read, so a job that knows the pool but no app client (the export worker, the purge) uses it too."""
    import boto3

    return boto3.client("cognito-idp", region_name=load(BaseSettings).aws_region)


def reset() -> None:
    """Forget the settings and the client (tests that point at another pool)."""
    settings.cache_clear()
    client.cache_clear()


def error_code(error: Exception) -> str:
    """The Cognito error code of a botocore ``ClientError`` (empty for anything else)."""
    response = getattr(error, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def set_role(username: str, role: str) -> None:
    """Puts the user in the group of ``role`` and takes them out of the other role groups.

    Added first, removed after: a failure half-way leaves the user with more groups (the highest
    wins), never with none.
    """
    pool = settings().cognito_user_pool_id
    cognito = client()
    cognito.admin_add_user_to_group(UserPoolId=pool, Username=username, GroupName=GROUP_BY_ROLE[role])
    for other_role, group in GROUP_BY_ROLE.items():
        if other_role != role:
            cognito.admin_remove_user_from_group(UserPoolId=pool, Username=username, GroupName=group)
