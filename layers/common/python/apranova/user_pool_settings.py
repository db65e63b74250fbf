"""The user pool's settings as plain data: CDK deploys them and the local stack bootstraps moto with
them, so the two pools cannot drift. No boto3 and no CDK here: the local stack must not import CDK,
the deployment must not import the local stack, and both already import this package.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PasswordPolicy:
    min_length: int = 12
    require_uppercase: bool = True
    require_lowercase: bool = True
    require_digits: bool = True
    require_symbols: bool = True
    # An admin-created account must set its own password within this many days.
    temporary_password_validity_days: int = 3


PASSWORD_POLICY = PasswordPolicy()

# An SPA: short-lived access and ID tokens, a refresh token of weeks that logout revokes.
ACCESS_TOKEN_MINUTES = 15
ID_TOKEN_MINUTES = 15
REFRESH_TOKEN_DAYS = 30

# The email Cognito sends with a code: sign-up verification, its resend and forgot-password (the
# pay-first set-password code too). ``{####}`` is where Cognito puts the code.
VERIFICATION_EMAIL_SUBJECT = "Your ApraNova verification code"
VERIFICATION_EMAIL_MESSAGE = "Your ApraNova verification code is {####}"

# The app client's only flows: the API's login sends the password to Cognito (USER_PASSWORD_AUTH)
# and refreshes with the refresh token. No SRP, no admin flow, no custom challenge.
EXPLICIT_AUTH_FLOWS = ("ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH")

# Group → precedence (lower wins when Cognito must pick one group's role, e.g. for an IAM role).
GROUP_PRECEDENCE = {"admins": 0, "trainers": 1, "students": 2}
