"""Request and response models of the payments API.

Requests forbid unknown fields: a price, amount or currency sent by a client is a 422 (the server
takes them from the track), never silently ignored.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from apranova.fields import UUID_PATTERN, AcceptTrue, PlainName, check_email

TrackCode = Field(pattern=r"^[A-Z][A-Z0-9_]{0,15}$", examples=["DP"], description="A track code, e.g. DP or FSD.")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_max_length=2048)


class TrackChoice(Strict):
    track: str = TrackCode


class AnonymousCheckout(Strict):
    track: str = TrackCode
    email: str = Field(max_length=254, examples=["ada@example.com"])
    name: PlainName  # plain text on one line: no CR/LF or other control characters (422)
    accept_privacy: AcceptTrue = Field(description="Must be true: the privacy policy and terms are accepted.")
    privacy_version: str = Field(max_length=20, examples=["1.0"])
    terms_version: str = Field(max_length=20, examples=["1.0"])

    _email = field_validator("email")(check_email)


class RefundRequestCreate(Strict):
    payment_id: str = Field(pattern=UUID_PATTERN, description="The payment's id.")
    reason: str = Field(min_length=1, max_length=2000)


# What str.strip() takes away, and U+FEFF: a "blank" reason is one of these only. The schema's
# pattern (ECMAScript's \s is the same set less U+001C..U+001F and U+0085, plus U+FEFF) asks for one
# character outside the set, so a client validating against the schema and this check agree.
_BLANK = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680"
    "\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000\ufeff"
)
_NOT_BLANK_PATTERN = "[^\\s\\u001c-\\u001f\\u0085]"


def _trimmed_not_blank(value: str) -> str:
    value = value.strip(_BLANK)
    if not value:
        raise PydanticCustomError("blank", "must not be blank (spaces only)")
    return value


class RefundRejection(Strict):
    """The reason is shown to the student and kept in the audit row: trimmed, and never blank (422)."""

    reason: Annotated[
        str,
        Field(min_length=1, max_length=2000, json_schema_extra={"pattern": _NOT_BLANK_PATTERN}),
        AfterValidator(_trimmed_not_blank),
    ]


class RefundApproval(Strict):
    note: str | None = Field(default=None, max_length=2000)


class CheckoutSession(BaseModel):
    checkout_url: str
    session_id: str
    payment_id: str


class PaymentIntentCreated(BaseModel):
    client_secret: str = Field(description="For Stripe.js confirmCardPayment; not a credential to our API.")
    payment_id: str


class SessionStatus(BaseModel):
    payment_status: str
    enrolled: bool
    account_created: bool


class Payment(BaseModel):
    id: str
    track: str
    amount_cents: int
    currency: str
    status: str
    created_at: datetime
    refunded_amount_cents: int
    succeeded_at: datetime | None = None


class AdminPayment(Payment):
    user_id: str | None
    email: str | None = Field(description="Who paid: the account's email, else the checkout's customer email.")
    name: str | None = Field(description="Who paid: the account's name, else the checkout's customer name.")
    kind: str
    stripe_checkout_session_id: str | None
    stripe_payment_intent_id: str | None
    stripe_charge_id: str | None
    disputed: bool
    dispute_status: str | None
    failure_message: str | None


class PaymentPage(BaseModel):
    items: list[Payment]
    next_cursor: str | None = None


class AdminPaymentPage(BaseModel):
    items: list[AdminPayment]
    next_cursor: str | None = None


class RefundRequest(BaseModel):
    id: str
    payment_id: str
    user_id: str | None
    reason: str | None
    amount_cents: int
    currency: str
    track: str
    status: str
    created_at: datetime
    decided_at: datetime | None = None
    decision_reason: str | None = None
    stripe_refund_id: str | None = None


class RefundRequestPage(BaseModel):
    items: list[RefundRequest]
    next_cursor: str | None = None
