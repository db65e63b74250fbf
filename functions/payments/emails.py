"""The emails the payment flows promise, rendered here. No secrets and no codes: links go to the
SPA, and the set-password code is sent by Cognito itself."""

from __future__ import annotations

from typing import Any

from apranova.mail import Email


def _money(amount_cents: int, currency: str) -> str:
    return f"{amount_cents / 100:,.2f} {currency.upper()}"


def _hello(contact: dict[str, Any]) -> str:
    return f"Hello {contact.get('name') or 'there'},"


def payment_failed(contact: dict[str, Any], payment: dict[str, Any], spa_origin: str) -> Email:
    return Email(
        to=(contact["email"],),
        subject="Your ApraNova payment did not go through",
        text=(
            f"{_hello(contact)}\n\n"
            f"Your payment of {_money(payment['amount_cents'], payment['currency'])} for the "
            f"{payment['track']} track was declined by the card issuer. No money was taken.\n\n"
            f"You can try again with another card: {spa_origin}/tracks/{payment['track']}\n\n"
            "The ApraNova team"
        ),
    )


def set_password(contact: dict[str, Any], payment: dict[str, Any], spa_origin: str) -> Email:
    return Email(
        to=(contact["email"],),
        subject="Your ApraNova account is ready: set your password",
        text=(
            f"{_hello(contact)}\n\n"
            f"Thank you for your payment for the {payment['track']} track. We created your ApraNova "
            "account with this email address.\n\n"
            "To choose your password, open the page below and enter the verification code we send you "
            f"in a separate email:\n{spa_origin}/set-password\n\n"
            "If you did not make this purchase, reply to this email.\n\n"
            "The ApraNova team"
        ),
    )


def refund_requested(contact: dict[str, Any], request: dict[str, Any]) -> Email:
    return Email(
        to=(contact["email"],),
        subject="We received your refund request",
        text=(
            f"{_hello(contact)}\n\n"
            f"We received your request to refund {_money(request['amount_cents'], request['currency'])} "
            f"for the {request['track']} track. An administrator will review it and you will hear from "
            "us by email.\n\nThe ApraNova team"
        ),
    )


def refund_decided(contact: dict[str, Any], request: dict[str, Any]) -> Email:
    amount = _money(request["amount_cents"], request["currency"])
    if request["status"] == "APPROVED":
        subject = "Your refund was approved"
        body = (
            f"Your refund of {amount} for the {request['track']} track was approved. It is on its way "
            "to your card and usually arrives within 5 to 10 business days."
        )
    else:
        subject = "Your refund request was declined"
        body = (
            f"Your request to refund {amount} for the {request['track']} track was declined.\n\n"
            f"Reason: {request.get('decision_reason') or 'not given'}"
        )
    return Email(to=(contact["email"],), subject=subject, text=f"{_hello(contact)}\n\n{body}\n\nThe ApraNova team")
