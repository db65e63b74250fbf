"""The local Cognito: moto's user pools, with the codes Cognito mails and checks (docs/principles.md §6, §11).

moto sends no code at all and accepts any: ``ConfirmSignUp`` never looks at the code, ``ForgotPassword``
hands its code back in a response header, and ``ResendConfirmationCode`` is not implemented. ``install``
patches moto's cognito-idp backend and responses (for every moto server and ``mock_aws`` in this
process) so that, as in Cognito:

- ``SignUp`` and ``ResendConfirmationCode`` mail a six-digit code valid for 24 hours; a resend replaces
  the earlier code; a confirmed user cannot be confirmed again;
- ``ForgotPassword`` (the pay-first set-password code too) mails a code valid for 1 hour, to a verified
  address only; a new request replaces the earlier code;
- ``ConfirmSignUp`` and ``ConfirmForgotPassword`` accept only the mailed, unexpired code, once:
  a wrong code is ``CodeMismatchException``, an expired one ``ExpiredCodeException``; the new password
  must meet the pool's policy.

The messages land in SES's sent messages (the local mailbox, ``GET /_local/mailbox``), from the pool's
sender, with the pool's verification subject and message, as Cognito's own emails arrive in AWS.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
import threading
import time
from typing import Any

from moto.cognitoidp.exceptions import (
    CodeMismatchException,
    ExpiredCodeException,
    InvalidParameterException,
    NotAuthorizedError,
    ResourceNotFoundError,
    UserNotFoundError,
)
from moto.cognitoidp.models import CognitoIdpBackend, CognitoIdpUser, UserStatus, cognitoidp_backends
from moto.cognitoidp.responses import CognitoIdpResponse
from moto.core.responses import ActionResult
from moto.ses.models import Message, ses_backends
from moto.ses.utils import get_random_message_id

from apranova import user_pool_settings

# Cognito's documented code lifetimes.
SIGN_UP_CODE_SECONDS = 24 * 3600
RESET_CODE_SECONDS = 3600
# Cognito's own sender when the pool has no SES configuration.
COGNITO_SENDER = "no-reply@verificationemail.com"
CODE_PATTERN = re.compile(r"\b(\d{6})\b")

_lock = threading.Lock()
_offset = 0.0  # seconds added to the clock: lets a test make codes old without sleeping


def now() -> float:
    return time.time() + _offset


def advance_clock(seconds: float) -> None:
    """Test control: the codes' clock moves ``seconds`` ahead (as if that much time passed)."""
    global _offset
    _offset += seconds


def reset_clock() -> None:
    global _offset
    _offset = 0.0


# --- codes ----------------------------------------------------------------------------------------


def _codes(user: CognitoIdpUser) -> dict[str, dict[str, Any]]:
    # Kept on moto's user object, so the local stack's saved state carries them across restarts.
    if not hasattr(user, "apranova_codes"):
        user.apranova_codes = {}  # type: ignore[attr-defined]
    return user.apranova_codes  # type: ignore[attr-defined,no-any-return]


def _issue(backend: CognitoIdpBackend, user: CognitoIdpUser, purpose: str, lifetime: int) -> None:
    """A new code replaces the earlier one of that purpose, and is mailed to the user's address."""
    code = f"{secrets.randbelow(1_000_000):06d}"
    with _lock:
        _codes(user)[purpose] = {"code": code, "expires_at": now() + lifetime}
    _mail(backend, user, code)


def _check(user: CognitoIdpUser, purpose: str, given: str | None) -> None:
    """Accepts the mailed code once; anything else is refused with Cognito's error."""
    with _lock:
        issued = _codes(user).get(purpose)
        if issued is None or not secrets.compare_digest(str(given or ""), issued["code"]):
            raise CodeMismatchException("Invalid verification code provided, please try again.")
        if now() > issued["expires_at"]:
            raise ExpiredCodeException("Invalid code provided, please request a code again.")
        del _codes(user)[purpose]


def _pool_of(backend: CognitoIdpBackend, user: CognitoIdpUser) -> Any:
    return backend.user_pools[user.user_pool_id]


def _mail(backend: CognitoIdpBackend, user: CognitoIdpUser, code: str) -> None:
    address = user.attribute_lookup.get("email")
    if not address:
        return
    config = _pool_of(backend, user).extended_config
    template = config.get("VerificationMessageTemplate") or {}
    subject = template.get("EmailSubject") or config.get("EmailVerificationSubject") or "Your verification code"
    body = template.get("EmailMessage") or config.get("EmailVerificationMessage") or "Your verification code is {####}."
    sender = (config.get("EmailConfiguration") or {}).get("From") or COGNITO_SENDER
    message = Message(
        get_random_message_id(), sender, subject, body.replace("{####}", code), {"ToAddresses": [address]}
    )
    message.sent_at = dt.datetime.fromtimestamp(time.time(), dt.UTC).isoformat()  # type: ignore[attr-defined]
    ses = ses_backends[backend.account_id][backend.region_name]
    ses.sent_messages.append(message)


def _pool_for_client(client_id: str) -> tuple[CognitoIdpBackend, Any]:
    for regions in cognitoidp_backends.values():
        for region, backend in regions.items():
            if region == "global":
                continue
            for pool in backend.user_pools.values():
                if client_id in pool.clients:
                    return backend, pool
    raise ResourceNotFoundError(client_id)


def _prevents_existence_errors(pool: Any, client_id: str) -> bool:
    return pool.clients[client_id].extended_config.get("PreventUserExistenceErrors") == "ENABLED"


def _delivery(user: CognitoIdpUser | None, username: str) -> dict[str, str]:
    address = (user.attribute_lookup.get("email") if user else None) or username
    first, _, domain = address.partition("@")
    return {"Destination": f"{first[:1]}***@{domain[:1]}***", "DeliveryMedium": "EMAIL", "AttributeName": "email"}


# --- the patched operations -----------------------------------------------------------------------

_original: dict[str, Any] = {}


def _sign_up(self: CognitoIdpBackend, client_id: str, username: str, password: str, attributes: Any) -> Any:
    user, details = _original["sign_up"](self, client_id, username, password, attributes)
    if user.status == UserStatus.UNCONFIRMED:
        _issue(self, user, "sign_up", SIGN_UP_CODE_SECONDS)
        details = details or _delivery(user, username)
    return user, details


def _confirm_sign_up_response(self: CognitoIdpResponse) -> Any:
    client_id = self._get_param("ClientId")
    username = self._get_param("Username")
    backend, pool = _pool_for_client(client_id)
    user = pool._get_user(username)
    if user is None:
        raise UserNotFoundError("Username/client id combination not found.")
    if user.status != UserStatus.UNCONFIRMED:
        status = getattr(user.status, "value", user.status)
        raise NotAuthorizedError(f"User cannot be confirmed. Current status is {status}")
    _check(user, "sign_up", self._get_param("ConfirmationCode"))
    result = _original["confirm_sign_up_response"](self)
    # The pool verifies email automatically: confirming the code verifies the address.
    user.update_attributes([{"Name": "email_verified", "Value": "true"}])
    return result


def _resend_confirmation_code_response(self: CognitoIdpResponse) -> ActionResult:
    client_id = self._get_param("ClientId")
    username = self._get_param("Username")
    backend, pool = _pool_for_client(client_id)
    user = pool._get_user(username)
    if user is None:
        if _prevents_existence_errors(pool, client_id):
            return ActionResult({"CodeDeliveryDetails": _delivery(None, username)})
        raise UserNotFoundError("Username/client id combination not found.")
    if user.status != UserStatus.UNCONFIRMED:
        raise InvalidParameterException("User is already confirmed.")
    _issue(backend, user, "sign_up", SIGN_UP_CODE_SECONDS)
    return ActionResult({"CodeDeliveryDetails": _delivery(user, username)})


def _forgot_password(self: CognitoIdpBackend, client_id: str, username: str) -> tuple[None, dict[str, Any]]:
    _backend, pool = _pool_for_client(client_id)
    user = pool._get_user(username)
    if user is None:
        if _prevents_existence_errors(pool, client_id):
            return None, {"CodeDeliveryDetails": _delivery(None, username)}
        raise UserNotFoundError("Username/client id combination not found.")
    if user.attribute_lookup.get("email_verified") != "true":
        raise InvalidParameterException(
            "Cannot reset password for the user as there is no registered/verified email or phone_number"
        )
    _issue(self, user, "forgot_password", RESET_CODE_SECONDS)
    # No code in the answer: it went to the mailbox (moto would send it back in a header).
    return None, {"CodeDeliveryDetails": _delivery(user, username)}


def _forgot_password_response(self: CognitoIdpResponse) -> Any:
    result = _original["forgot_password_response"](self)
    self.response_headers.pop("x-moto-forgot-password-confirmation-code", None)
    return result


def _confirm_forgot_password(
    self: CognitoIdpBackend, client_id: str, username: str, password: str, confirmation_code: str
) -> None:
    _backend, pool = _pool_for_client(client_id)
    user = pool._get_user(username)
    if user is None:
        raise UserNotFoundError("Username/client id combination not found.")
    self._validate_password(pool.id, password)
    _check(user, "forgot_password", confirmation_code)
    user.password = password
    if user.status == UserStatus.RESET_REQUIRED:
        user.status = UserStatus.CONFIRMED


def install() -> None:
    """Patches moto once per process (idempotent)."""
    if _original:
        return
    _original["sign_up"] = CognitoIdpBackend.sign_up
    _original["confirm_sign_up_response"] = CognitoIdpResponse.confirm_sign_up
    _original["forgot_password_response"] = CognitoIdpResponse.forgot_password
    CognitoIdpBackend.sign_up = _sign_up  # type: ignore[method-assign]
    CognitoIdpBackend.forgot_password = _forgot_password  # type: ignore[method-assign,assignment]
    CognitoIdpBackend.confirm_forgot_password = _confirm_forgot_password  # type: ignore[method-assign]
    CognitoIdpResponse.confirm_sign_up = _confirm_sign_up_response  # type: ignore[method-assign]
    CognitoIdpResponse.forgot_password = _forgot_password_response  # type: ignore[method-assign]
    CognitoIdpResponse.resend_confirmation_code = _resend_confirmation_code_response  # type: ignore[attr-defined]


# --- reading the mailbox (tests, scripts) ---------------------------------------------------------


def is_code_email(item: dict[str, Any]) -> bool:
    return item.get("subject") in (user_pool_settings.VERIFICATION_EMAIL_SUBJECT, "Your verification code")


def mailed_code(mailbox: list[dict[str, Any]], address: str) -> str:
    """The newest code Cognito mailed to ``address``, from mailbox items (newest first), as a person
    reads it from the email."""
    for item in mailbox:
        if address.lower() in [to.lower() for to in item["to"]] and is_code_email(item):
            found = CODE_PATTERN.search(item.get("body_text") or item.get("body_html") or "")
            if found:
                return found.group(1)
    raise LookupError(f"no code was mailed to {address}")
