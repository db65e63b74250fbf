"""Secrets from SSM SecureString, decrypted and cached for a few minutes per warm environment
(Powertools Parameters), so a rotated secret is picked up without a redeploy."""

from __future__ import annotations

from aws_lambda_powertools.utilities import parameters

from functions.payments.config import settings


def secret(name: str) -> str:
    value = parameters.get_parameter(name, decrypt=True, max_age=settings().secrets_max_age_seconds)
    return str(value)


def reset() -> None:
    parameters.clear_caches()
