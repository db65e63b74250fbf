"""The payments secrets (Stripe API key, webhook signing secret) from SSM SecureString, read at use:
cached a few minutes per warm environment and re-read at once when Stripe refuses them
(``apranova.secrets``), so a rotated secret is picked up without a redeploy."""

from __future__ import annotations

from apranova import secrets as shared_secrets
from functions.payments.config import settings


def secret(name: str, *, force: bool = False) -> str:
    return shared_secrets.ssm_parameter(name, max_age=settings().secrets_max_age_seconds, force=force)


def reset() -> None:
    shared_secrets.reset()
