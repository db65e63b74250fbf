"""The emails the payment flows promise, rendered here. No secrets and no codes: links go to the
SPA, and the set-password code is sent by Cognito itself. Only the links built here are links
(``Email.links``), and an email that may go to an address nobody verified (a pay-first checkout's)
carries no text the payer typed, not even a name (docs/principles.md §8 rule 16)."""

from __future__ import annotations

from typing import Any

from apranova import spa
from apranova.mail import Email, plain


def _money(amount_cents: int, currency: str) -> str:
    return f"{amount_cents / 100:,.2f} {currency.upper()}"


def _track(row: dict[str, Any]) -> str:
    """The track as people know it ("Data Professional"), never its code: every payment and refund
    row the repository reads carries the track's name (``track_name``)."""
    return f"{row['track_name']} track"


def _hello(contact: dict[str, Any]) -> str:
    """For a signed-in account's own address: the name they gave, as plain text."""
    return f"Hello {plain(contact.get('name'), 'there')},"


def payment_failed(contact: dict[str, Any], payment: dict[str, Any], spa_origin: str) -> Email:
    """May go to a pay-first checkout's address, which nobody verified: no name, nothing typed."""
    retry = f"{spa_origin}/tracks/{payment['track']}"
    return Email(
        to=(contact["email"],),
        subject="Your ApraNova payment did not go through",
        text=(
            "Hello,\n\n"
            f"Your payment of {_money(payment['amount_cents'], payment['currency'])} for the "
            f"{_track(payment)} was declined by the card issuer. No money was taken.\n\n"
            f"You can try again with another card: {retry}\n\n"
            "The ApraNova team"
        ),
        links=(retry,),
    )


def set_password(contact: dict[str, Any], payment: dict[str, Any], spa_origin: str) -> Email:
    """To the address of an account a pay-first checkout created: not verified yet, so no name. The
    page comes with the address filled in; the code itself is Cognito's own email."""
    page = spa.page(spa_origin, "set_password", email=contact["email"])
    return Email(
        to=(contact["email"],),
        subject="Your ApraNova account is ready: set your password",
        text=(
            "Hello,\n\n"
            f"Thank you for your payment for the {_track(payment)}. We created your ApraNova "
            "account with this email address.\n\n"
            "To choose your password, open the page below and enter the verification code we send you "
            f"in a separate email:\n{page}\n\n"
            "If you did not make this purchase, reply to this email.\n\n"
            "The ApraNova team"
        ),
        links=(page,),
    )


def refund_requested(contact: dict[str, Any], request: dict[str, Any]) -> Email:
    return Email(
        to=(contact["email"],),
        subject="We received your refund request",
        text=(
            f"{_hello(contact)}\n\n"
            f"We received your request to refund {_money(request['amount_cents'], request['currency'])} "
            f"for the {_track(request)}. An administrator will review it and you will hear from "
            "us by email.\n\nThe ApraNova team"
        ),
    )


def refund_decided(contact: dict[str, Any], request: dict[str, Any]) -> Email:
    amount = _money(request["amount_cents"], request["currency"])
    if request["status"] == "APPROVED":
        subject = "Your refund was approved"
        body = (
            f"Your refund of {amount} for the {_track(request)} was approved. It is on its way "
            "to your card and usually arrives within 5 to 10 business days."
        )
    else:
        subject = "Your refund request was declined"
        body = (
            f"Your request to refund {amount} for the {_track(request)} was declined.\n\n"
            f"Reason: {request.get('decision_reason') or 'not given'}"
        )
    return Email(to=(contact["email"],), subject=subject, text=f"{_hello(contact)}\n\n{body}\n\nThe ApraNova team")


# Why a payment that arrived was refunded at once (the codes the webhook decides on).
UNFULFILLABLE_REASONS = {
    "already_enrolled": "your account is already enrolled in a track, and one account takes one track at a time",
    "already_paid": "your account already has a payment for a track, so this one could not be used",
    "account_exists": (
        "an ApraNova account already exists for this email address; to buy a track for it, sign in "
        "and pay from your account"
    ),
    "account_unavailable": "the account for this payment can no longer be enrolled",
}


def payment_refunded_unfulfillable(email: str, payment: dict[str, Any], reason: str, spa_origin: str) -> Email:
    """To the payer of a payment we cannot fulfil. No name or other text the payer typed: the address
    may belong to someone who never signed in to us."""
    why = UNFULFILLABLE_REASONS.get(reason, UNFULFILLABLE_REASONS["account_unavailable"])
    return Email(
        to=(email,),
        subject="Your ApraNova payment is being refunded",
        text=(
            "Hello,\n\n"
            f"We received a payment of {_money(payment['amount_cents'], payment['currency'])} for the "
            f"{_track(payment)}, but we cannot give you access for it: {why}.\n\n"
            "We have refunded the full amount to your card; it usually arrives within 5 to 10 business "
            f"days. Nothing else about your account changed.\n\nSign in: {spa_origin}/login\n\n"
            "The ApraNova team"
        ),
        links=(f"{spa_origin}/login",),
    )
