"""Payments: Stripe Checkout and PaymentIntents, the signed webhook, refunds."""
