"""A small in-memory Stripe emulator for the local stack and tests (docs/principles.md §6, §9)."""

from local.stripe_emulator.app import StripeEmulator, sign_payload

__all__ = ["StripeEmulator", "sign_payload"]
