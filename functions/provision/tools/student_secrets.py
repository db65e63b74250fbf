"""A student's tool password as an SSM SecureString: the one place the provisioners keep secrets."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError


def _not_found(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ParameterNotFound"


def exists(ssm: Any, name: str) -> bool:
    try:
        ssm.get_parameter(Name=name, WithDecryption=False)
    except ClientError as exc:
        if _not_found(exc):
            return False
        raise
    return True


def put(ssm: Any, name: str, password: str, *, description: str, kms_key_id: str | None) -> None:
    request: dict[str, Any] = {
        "Name": name,
        "Value": password,
        "Type": "SecureString",
        "Overwrite": True,
        "Description": description,
    }
    if kms_key_id:
        request["KeyId"] = kms_key_id
    ssm.put_parameter(**request)


def delete(ssm: Any, name: str) -> bool:
    """Deletes the parameter; False when there was none."""
    try:
        ssm.delete_parameter(Name=name)
    except ClientError as exc:
        if not _not_found(exc):
            raise
        return False
    return True
