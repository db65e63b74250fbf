"""Request and response models of the auth API. Requests forbid unknown fields: a ``role`` (or any
other field the server owns) sent by a client is a 422, never silently dropped or applied."""

from __future__ import annotations

import re
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from apranova.fields import AcceptTrue, PlainName, check_email
from apranova.user_pool_settings import PASSWORD_POLICY
from apranova.vocabulary import EnrollmentStatus, Role

# The user pool's password policy (the one CDK deploys and the local stack bootstraps): checked
# here first so that the 422 names the rule; Cognito's InvalidPasswordException maps to the same.
PASSWORD_MIN_LENGTH = PASSWORD_POLICY.min_length
SYMBOLS = "^$*.[]{}()?\"!@#%&/\\,><':;|_~`=+-"


def check_password(value: str) -> str:
    if len(value) < PASSWORD_MIN_LENGTH:
        raise ValueError(f"password_too_short: at least {PASSWORD_MIN_LENGTH} characters")
    if not re.search(r"[A-Z]", value):
        raise ValueError("password_no_uppercase: needs an uppercase letter")
    if not re.search(r"[a-z]", value):
        raise ValueError("password_no_lowercase: needs a lowercase letter")
    if not re.search(r"\d", value):
        raise ValueError("password_no_digit: needs a digit")
    if not any(ch in SYMBOLS for ch in value):
        raise ValueError("password_no_symbol: needs a symbol")
    return value


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_max_length=2048)


Email = Field(max_length=254, examples=["ada@example.com"])
# The policy as a JSON Schema pattern for clients (and the API's property tests); check_password
# stays the check, so that a 422 names the rule that failed.
PASSWORD_PATTERN = (
    "^(?=.*[A-Z])(?=.*[a-z])(?=.*[0-9])(?=.*["
    + "".join("\\" + ch if ch in "\\[]^-" else ch for ch in SYMBOLS)
    + "])"
    + f".{{{PASSWORD_MIN_LENGTH},256}}$"
)
Password = Field(
    max_length=256,
    json_schema_extra={"minLength": PASSWORD_MIN_LENGTH, "pattern": PASSWORD_PATTERN},
    description=f"At least {PASSWORD_MIN_LENGTH} characters with an uppercase and a lowercase letter, a digit and "
    "a symbol.",
)


class Registration(Strict):
    email: str = Email
    password: str = Password
    name: PlainName
    accept_privacy: AcceptTrue = Field(description="Must be true: the privacy policy and terms are accepted.")
    privacy_version: str = Field(max_length=20, examples=["1.0"])
    terms_version: str = Field(max_length=20, examples=["1.0"])

    _email = field_validator("email")(check_email)
    _password = field_validator("password")(check_password)


class VerifyEmail(Strict):
    email: str = Email
    code: str = Field(min_length=1, max_length=128)

    _email = field_validator("email")(check_email)


class EmailOnly(Strict):
    email: str = Email

    _email = field_validator("email")(check_email)


class Login(Strict):
    email: str = Email
    password: str = Field(min_length=1, max_length=256)

    _email = field_validator("email")(check_email)


class RefreshRequest(Strict):
    # Browsers send nothing here: their refresh token is the HttpOnly cookie (docs/principles.md §12).
    refresh: str | None = Field(default=None, min_length=1, max_length=8192)


class LogoutRequest(Strict):
    refresh: str | None = Field(default=None, max_length=8192)


class ResetConfirm(Strict):
    email: str = Email
    code: str = Field(min_length=1, max_length=128)
    new_password: str = Password

    _email = field_validator("email")(check_email)
    _password = field_validator("new_password")(check_password)


class PasswordChange(Strict):
    old_password: str = Field(min_length=1, max_length=256)
    new_password: str = Password

    _password = field_validator("new_password")(check_password)


class ProfilePatch(Strict):
    """The allow-list: the only profile fields a user may change themself."""

    name: PlainName


class Consent(BaseModel):
    privacy_version: str | None
    terms_version: str | None
    current: bool


STUDENT_ONLY = "A student's; null for a trainer or an admin (staff neither enroll nor get tools)."


class Profile(BaseModel):
    """The caller's account. The learning fields describe a student's enrollment: for staff
    (trainer, admin) they are null rather than a student's defaults (no ``PENDING_PAYMENT``, no
    ``privacy_accepted: false`` for an account that never enrolls); ``consent`` is anyone's."""

    id: str
    email: str
    name: str
    role: Role
    track: str | None = Field(description=f"The enrolled track's code. {STUDENT_ONLY}")
    enrollment_status: EnrollmentStatus | None = Field(description=STUDENT_ONLY)
    tools_provisioned: bool | None = Field(description=STUDENT_ONLY)
    provisioning_status: str | None = Field(description=STUDENT_ONLY)
    privacy_accepted: bool | None = Field(
        description=f"Whether the policies in force are accepted (a student must, to learn). {STUDENT_ONLY}"
    )
    consent: Consent
    # Set while the account is scheduled for deletion (the SPA offers the cancel until then).
    deletion_scheduled_for: datetime | None = None


class LoginResult(BaseModel):
    access: str
    refresh: str
    id_token: str
    expires_in: int
    user: Profile | None


class RefreshResult(BaseModel):
    access: str
    refresh: str
    expires_in: int


class Message(BaseModel):
    detail: str


class Registered(BaseModel):
    id: str
    email: str
    email_verified: bool = False
    detail: str
