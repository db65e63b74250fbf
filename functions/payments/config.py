"""The payments functions' settings (environment variables, read once per environment).

Secrets are not settings: the Stripe API key and the webhook signing secret live in SSM
SecureString parameters whose *names* are configured here.
"""

from __future__ import annotations

from functools import cache

from apranova.settings import BaseSettings, load


class PaymentSettings(BaseSettings):
    stripe_api_key_param: str | None = None
    stripe_webhook_secret_param: str | None = None
    # Empty in AWS (the SDK's default, Stripe itself); the local stack's Stripe emulator otherwise.
    stripe_api_base: str | None = None
    # Stripe replaces {CHECKOUT_SESSION_ID} in the success URL.
    checkout_success_url: str = "http://localhost:5173/payment/success?session_id={CHECKOUT_SESSION_ID}"
    checkout_cancel_url: str = "http://localhost:5173/payment/cancelled"
    spa_origin: str = "http://localhost:5173"
    enrollment_state_machine_arn: str | None = None
    deprovision_state_machine_arn: str | None = None
    refund_window_days: int = 7
    refund_max_progress_percent: int = 20
    email_sender: str | None = None
    ops_email: str | None = None
    # How long the decrypted secrets are cached in a warm environment.
    secrets_max_age_seconds: int = 300


@cache
def settings() -> PaymentSettings:
    return load(PaymentSettings)
