"""The right to erasure, as the account holder asks for it: schedule the deletion of the account
after a grace period (the password re-checked), or cancel it during that period.

Nothing is destroyed here. The daily purge (purge/service.py) erases a due account; until then the
account works as before, so "cancel restores everything" holds by construction: cancelling only
closes the request. The request signs the person out on every device (their refresh tokens stop
working); logging in again still works, which is how they reach the cancel. See docs/decisions.md,
"Issue 7: erasure".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from apranova import db, retention_bounds
from apranova.audit import AuditAction, RequestInfo
from apranova.cognito import error_code
from apranova.errors import Conflict, Forbidden, NotFound, ServiceUnavailable, TooManyRequests
from apranova.identity import Caller, end_sessions
from apranova.mail import Email, plain
from apranova.observability import logger
from functions.compliance.erasure import repository
from functions.compliance.erasure.models import DeleteAccountRequest
from functions.compliance.settings import ErasureSettings

UNIQUE_VIOLATION = "23505"
# Cognito answers that say nothing about the request (its quota is spent, or it failed inside): the
# same request may succeed a moment later. TooManyFailedAttemptsException is about the person's own
# attempts, a 429 like the login's.
TRANSIENT_COGNITO_CODES = frozenset({"TooManyRequestsException", "LimitExceededException", "InternalErrorException"})
RETRY_AFTER_SECONDS = "30"


@dataclass(frozen=True)
class Pool:
    client: Any  # boto3 cognito-idp
    user_pool_id: str
    client_id: str


Send = Callable[[Email], Any]


def _already_requested(existing: dict[str, Any] | None) -> Conflict:
    details = [{"id": existing["id"], "status": existing["status"]}] if existing else []
    return Conflict(
        "A deletion of this account is already scheduled.", code="deletion_already_requested", details=details
    )


def _unavailable(operation: str, error: Exception) -> ServiceUnavailable:
    """503: Cognito is busy or out of reach. Nothing was written (see request_deletion), so the same
    request can simply be sent again."""
    logger.warning(
        "cognito unavailable", extra={"operation": operation, "error": error_code(error) or type(error).__name__}
    )
    return ServiceUnavailable(
        "The sign-in service is busy; nothing was changed. Try again in a moment.",
        headers={"Retry-After": RETRY_AFTER_SECONDS},
    )


def _check_password(pool: Pool, email: str, password: str) -> None:
    """The password, proven the way the login proves it (the app client's USER_PASSWORD_AUTH flow).

    The tokens Cognito answers with are not kept: the global sign-out that follows revokes them.
    """
    # Imported here: botocore is loaded by the client this call uses, not at cold start for every route.
    from botocore.exceptions import ClientError, HTTPClientError
    from botocore.exceptions import ConnectionError as AwsConnectionError

    try:
        pool.client.initiate_auth(
            ClientId=pool.client_id,
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": email, "PASSWORD": password},
        )
    except ClientError as error:
        code = error_code(error)
        if code == "TooManyFailedAttemptsException":
            raise TooManyRequests("Too many attempts; try again later.", headers={"Retry-After": "60"}) from None
        if code in TRANSIENT_COGNITO_CODES:
            raise _unavailable("InitiateAuth", error) from None
        if code == "UserNotConfirmedException":  # Cognito says so only once the password was right
            return
        if code in ("NotAuthorizedException", "UserNotFoundException", "PasswordResetRequiredException"):
            raise Forbidden("The password is not correct.", code="wrong_password") from None
        raise
    except (AwsConnectionError, HTTPClientError) as error:
        raise _unavailable("InitiateAuth", error) from None


def _sign_out_everywhere(pool: Pool, email: str) -> None:
    """Revokes every refresh token of the account. By email, the name they sign in with: AWS
    resolves the alias, and moto revokes only the tokens issued under the name given."""
    from botocore.exceptions import ClientError, HTTPClientError
    from botocore.exceptions import ConnectionError as AwsConnectionError

    try:
        pool.client.admin_user_global_sign_out(UserPoolId=pool.user_pool_id, Username=email)
    except ClientError as error:
        if error_code(error) in TRANSIENT_COGNITO_CODES:
            raise _unavailable("AdminUserGlobalSignOut", error) from None
        raise
    except (AwsConnectionError, HTTPClientError) as error:
        raise _unavailable("AdminUserGlobalSignOut", error) from None


def grace_days(settings: ErasureSettings) -> int:
    """The active USER_DATA policy's period, else the setting; never more than
    ``MAX_DELETION_GRACE_DAYS`` whatever the row says (the admin route refuses more; a row set
    before that bound, or by hand, is capped here): erasure cannot be postponed indefinitely."""
    days = repository.grace_days_from_policy() or settings.deletion_grace_days
    return retention_bounds.clamp("USER_DATA", days)


def request_deletion(
    pool: Pool,
    caller: Caller,
    request: DeleteAccountRequest,
    info: RequestInfo,
    settings: ErasureSettings,
    send: Send,
) -> dict[str, Any]:
    account = repository.account(caller.user_id)
    if account is None:
        raise NotFound("No account for this user.")
    existing = repository.open_request(caller.user_id)
    if existing is not None:
        raise _already_requested(existing)
    _check_password(pool, account["email"], request.password)
    days = grace_days(settings)
    try:
        with db.transaction() as cur:
            created = repository.insert_request(cur, caller.user_id, request.reason, days)
            info.audit(
                cur,
                AuditAction.DELETION_REQUESTED,
                actor=caller,
                subject_id=caller.user_id,
                resource_type="deletion_request",
                resource_id=created["id"],
                details={"scheduled_for": created["scheduled_for"].isoformat(), "grace_days": days},
            )
            # Inside the transaction: if Cognito refuses or is unavailable (503), nothing is
            # scheduled and the person may retry; if the commit fails after it, they were only
            # signed out. Never a scheduled deletion whose sign-out did not happen.
            _sign_out_everywhere(pool, account["email"])
            # Cognito's sign-out leaves access tokens valid until they expire: the API refuses
            # them from the next request on.
            end_sessions(cur, caller.user_id)
    except Exception as error:
        if getattr(error, "sqlstate", None) == UNIQUE_VIOLATION:  # a concurrent second request
            raise _already_requested(repository.open_request(caller.user_id)) from None
        raise
    _send_quietly(send, scheduled_email(account, created["scheduled_for"], settings.spa_origin))
    return {"id": created["id"], "status": created["status"], "scheduled_for": created["scheduled_for"]}


def cancel_deletion(caller: Caller, info: RequestInfo, settings: ErasureSettings, send: Send) -> dict[str, Any]:
    # Also an account the purge has started on (marked deleted): its answer is 409, not 404.
    account = repository.account(caller.user_id, include_deleted=True)
    if account is None:
        raise NotFound("No account for this user.")
    with db.transaction() as cur:
        current = repository.lock_open_request(cur, caller.user_id)
        if current is None:
            raise Conflict("No deletion of this account is scheduled.", code="no_deletion_scheduled")
        if current["status"] != "SCHEDULED":
            raise Conflict("The deletion of this account is already under way.", code="deletion_in_progress")
        cancelled = repository.cancel(cur, current["id"])
        info.audit(
            cur,
            AuditAction.DELETION_CANCELLED,
            actor=caller,
            subject_id=caller.user_id,
            resource_type="deletion_request",
            resource_id=cancelled["id"],
            details={"was_scheduled_for": current["scheduled_for"].isoformat()},
        )
    _send_quietly(send, cancelled_email(account, settings.spa_origin))
    return {"id": cancelled["id"], "status": cancelled["status"], "cancelled_at": cancelled["cancelled_at"]}


# --- emails ----------------------------------------------------------------------------------------


def _send_quietly(send: Send, email: Email) -> None:
    """The request stands once committed; a failed email is logged for the operators (the person
    sees the scheduled date in the answer too)."""
    try:
        send(email)
    except Exception:  # noqa: BLE001 - the use case already committed
        logger.exception("erasure email not sent", extra={"subject": email.subject})


def _day(moment: datetime) -> str:
    return moment.strftime("%d %B %Y, %H:%M UTC")


def scheduled_email(account: dict[str, Any], scheduled_for: datetime, spa_origin: str) -> Email:
    greeting = f"Hello {plain(account.get('name'))}," if plain(account.get("name")) else "Hello,"
    text = f"""{greeting}

We received your request to delete your ApraNova account. Your account and your personal data will be erased on {_day(scheduled_for)}.

Changed your mind? Until then you can cancel: log in to ApraNova at {spa_origin} and cancel the deletion from your account page. Nothing is erased before that date.

For your security we signed you out on every device.

What the erasure does: your profile, sign-in, progress, submissions and uploaded files, tool accounts and data exports are deleted. Payment records are kept for the period the law requires (7 years), without your name or email address.

If you did not ask for this, log in and cancel the deletion, then change your password.

The ApraNova team
"""  # noqa: E501 - an email paragraph is one line
    return Email(
        to=(account["email"],),
        subject="Your ApraNova account is scheduled for deletion",
        text=text,
        links=(spa_origin,),
    )


def cancelled_email(account: dict[str, Any], spa_origin: str) -> Email:
    greeting = f"Hello {plain(account.get('name'))}," if plain(account.get("name")) else "Hello,"
    text = f"""{greeting}

The deletion of your ApraNova account was cancelled. Nothing was erased: your account, progress and tools are as you left them.

You can keep learning at {spa_origin}.

If you did not cancel the deletion yourself, change your password.

The ApraNova team
"""  # noqa: E501 - an email paragraph is one line
    return Email(
        to=(account["email"],), subject="Your ApraNova account deletion was cancelled", text=text, links=(spa_origin,)
    )
