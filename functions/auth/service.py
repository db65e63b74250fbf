"""Auth use cases: Cognito does identities, passwords and tokens; the database keeps the account,
its consent and the audit trail. Dependencies (the pool) are passed in."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
from botocore.exceptions import ClientError

from apranova import db
from apranova.audit import RequestInfo
from apranova.cognito import GROUP_BY_ROLE, error_code
from apranova.errors import (
    AppError,
    Conflict,
    Forbidden,
    InvalidRequest,
    NotFound,
    ServiceUnavailable,
    TooManyRequests,
    Unauthorized,
    ValidationFailed,
)
from apranova.identity import Caller, end_sessions
from apranova.mail import Email
from apranova.observability import logger
from functions.auth import repository
from functions.auth.models import (
    Consent,
    LoginResult,
    PasswordChange,
    Profile,
    RefreshResult,
    Registration,
    ResetConfirm,
)


@dataclass(frozen=True)
class Pool:
    client: Any  # boto3 cognito-idp
    user_pool_id: str
    client_id: str


INVALID_CREDENTIALS = "Unable to log in with the provided credentials."
# The same answer for a new address and one that has an account (no account enumeration).
REGISTERED = "Check your email to finish signing up."
# Emails the owner of an address someone signed up with again (given the address).
TellOwner = Callable[[str], Any]
RESET_SENT = "If an account exists for this email, a reset code has been sent to it."
RESEND_SENT = "If an unverified account exists for this email, a new verification code has been sent."


def _weak_password(field: str) -> ValidationFailed:
    return ValidationFailed(
        "The password does not meet the password policy.",
        details=[{"field": f"body.{field}", "code": "password_policy", "message": "rejected by the password policy"}],
    )


def _throttled(error: ClientError) -> AppError | None:
    if error_code(error) in ("TooManyRequestsException", "LimitExceededException", "TooManyFailedAttemptsException"):
        return TooManyRequests("Too many attempts; try again later.", headers={"Retry-After": "60"})
    return None


# --- registration ---------------------------------------------------------------------------------


def register(pool: Pool, request: Registration, info: RequestInfo, tell_owner: TellOwner) -> dict[str, Any]:
    """Creates the account, or, for an address that has one, emails its owner instead: both answer
    the same 201, so the route does not tell who has an account (the admin's address included)."""
    active = repository.active_versions()
    if (request.privacy_version, request.terms_version) != (active.get("privacy_version"), active.get("terms_version")):
        raise Conflict(
            "The privacy policy or terms you accepted are not the current ones.",
            code="consent_outdated",
            details=[
                {"field": "body.privacy_version", "current": active.get("privacy_version")},
                {"field": "body.terms_version", "current": active.get("terms_version")},
            ],
        )
    if repository.email_exists(request.email):
        return _tell_owner(request.email, tell_owner)
    try:
        created = pool.client.sign_up(
            ClientId=pool.client_id,
            Username=request.email,
            Password=request.password,
            UserAttributes=[{"Name": "email", "Value": request.email}, {"Name": "name", "Value": request.name}],
        )
    except ClientError as error:
        code = error_code(error)
        if code == "UsernameExistsException":
            return _tell_owner(request.email, tell_owner)
        if code == "InvalidPasswordException":
            raise _weak_password("password") from None
        if code == "InvalidParameterException":
            raise ValidationFailed("The email address is not valid.", details=[{"field": "body.email"}]) from None
        raise (_throttled(error) or error) from None
    user_id = created["UserSub"]
    try:
        pool.client.admin_add_user_to_group(
            UserPoolId=pool.user_pool_id, Username=request.email, GroupName=GROUP_BY_ROLE["student"]
        )
        with db.transaction() as cur:
            repository.insert_user(cur, user_id=user_id, email=request.email, name=request.name)
            repository.insert_consent(
                cur,
                user_id=user_id,
                privacy_version=request.privacy_version,
                terms_version=request.terms_version,
                ip_address=info.ip_address,
                user_agent=(info.user_agent or "")[:1024] or None,
            )
            info.audit(
                cur,
                "SIGNUP",
                actor_id=user_id,
                subject_id=user_id,
                resource_type="user",
                resource_id=user_id,
                details={"privacy_version": request.privacy_version, "terms_version": request.terms_version},
            )
    except BaseException as failure:
        # Nothing is left behind: no Cognito user without its row.
        try:
            pool.client.admin_delete_user(UserPoolId=pool.user_pool_id, Username=request.email)
        except Exception:  # noqa: BLE001 - the original failure is what the caller must see
            logger.exception("could not remove the Cognito user of a failed registration", extra={"sub": user_id})
        if isinstance(failure, Exception) and getattr(failure, "sqlstate", None) == "23505":
            return _tell_owner(request.email, tell_owner)
        raise
    return _registered(user_id, request.email)


def _registered(user_id: str, email: str) -> dict[str, Any]:
    return {"id": user_id, "email": email, "email_verified": False, "detail": REGISTERED}


def _tell_owner(email: str, tell_owner: TellOwner) -> dict[str, Any]:
    """Someone signed up with an address that has an account: its owner hears of it, the caller gets
    what a new sign-up gets. The id is a fresh one that names nothing (a new account's is as random).
    A failed send is logged, never answered differently."""
    try:
        tell_owner(email)
    except Exception:  # noqa: BLE001 - the answer must not depend on it
        logger.exception("could not email the owner of an address used to sign up again")
    return _registered(str(uuid.uuid4()), email)


def someone_tried_to_register(email: str, spa_origin: str) -> Email:
    """No text from the request: the person who signed up may not be the address's owner."""
    sign_in = f"{spa_origin}/login"
    return Email(
        to=(email,),
        subject="Someone tried to create an ApraNova account with your email address",
        text=(
            "Hello,\n\n"
            "Someone just tried to create a new ApraNova account with this email address. You already "
            "have an account, so nothing was created and nothing about your account changed.\n\n"
            f"If it was you, sign in instead: {sign_in}\n\n"
            'If you do not remember your password, choose "Forgot password" on that page to reset it. '
            "If it was not you, you can ignore this email.\n\n"
            "The ApraNova team"
        ),
        links=(sign_in,),
    )


def verify_email(pool: Pool, email: str, code: str, info: RequestInfo) -> None:
    """One answer for every address that is not waiting for this code: unknown, already verified and
    a wrong code are the same 400 (the route does not tell which addresses have accounts)."""
    invalid = InvalidRequest("The verification code is not valid.", code="invalid_code")
    account = repository.account_state(email)
    if account is None or account["email_verified"]:
        raise invalid
    try:
        pool.client.confirm_sign_up(ClientId=pool.client_id, Username=email, ConfirmationCode=code)
    except ClientError as error:
        name = error_code(error)
        if name in ("CodeMismatchException", "ExpiredCodeException", "UserNotFoundException", "NotAuthorizedException"):
            raise invalid from None
        raise (_throttled(error) or error) from None
    with db.transaction() as cur:
        user_id = repository.mark_email_verified(cur, email)
        if user_id:
            info.audit(
                cur,
                "EMAIL_VERIFIED",
                actor_id=user_id,
                subject_id=user_id,
                resource_type="user",
                resource_id=user_id,
            )


def resend_verification(pool: Pool, email: str) -> None:
    """The same answer whether or not the account exists (no account enumeration)."""
    try:
        pool.client.resend_confirmation_code(ClientId=pool.client_id, Username=email)
    except ClientError as error:
        logger.info("resend verification not sent", extra={"cognito_error": error_code(error)})


# --- sessions -----------------------------------------------------------------------------------


def issued_at(access_token: str) -> int:
    """The ``iat`` of a token Cognito just handed us over TLS (the authorizer verifies it on use)."""
    return int(jwt.decode(access_token, options={"verify_signature": False})["iat"])


def wait_out(sessions_ended: int, sleep: Callable[[float], None] = time.sleep) -> None:
    """Sleeps into the second after ``sessions_ended``: tokens have whole-second ``iat``, and one of
    the second that ended the sessions is refused (it may predate the end)."""
    sleep(max(0.0, sessions_ended + 1 - time.time()) + 0.05)


def stale(access_token: str, sessions_ended: int | None) -> bool:
    """Whether the API's guard would refuse this new token (issued in the second sessions ended)."""
    return sessions_ended is not None and issued_at(access_token) <= sessions_ended


def _authenticate(pool: Pool, email: str, password: str) -> dict[str, Any]:
    return pool.client.initiate_auth(
        ClientId=pool.client_id,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": email, "PASSWORD": password},
    )


def login(pool: Pool, email: str, password: str, info: RequestInfo) -> LoginResult:
    try:
        result = _authenticate(pool, email, password)
    except ClientError as error:
        name = error_code(error)
        if name == "UserNotConfirmedException":  # Cognito says so only once the password was right
            raise Forbidden("Verify your email address before logging in.", code="email_not_verified") from None
        if name == "PasswordResetRequiredException":
            raise Forbidden("Reset your password before logging in.", code="password_reset_required") from None
        if name in ("NotAuthorizedException", "UserNotFoundException"):
            with db.transaction() as cur:
                known = repository.user_id_by_email(cur, email)
                info.audit(
                    cur,
                    "LOGIN_FAILED",
                    subject_id=known,
                    resource_type="user" if known else None,
                    resource_id=known,
                )
            raise Unauthorized(INVALID_CREDENTIALS, code="invalid_credentials") from None
        raise (_throttled(error) or error) from None
    tokens = result.get("AuthenticationResult")
    if not tokens:  # a challenge (new password, MFA) this API does not offer
        raise Forbidden("This account needs an action the API does not support.", code="challenge_required")
    # The sub of the token Cognito just handed us over TLS; the authorizer verifies it on use.
    user_id = jwt.decode(tokens["IdToken"], options={"verify_signature": False})["sub"]
    with db.transaction() as cur:
        account = repository.record_login(cur, user_id)
        if account is not None and not account["is_active"]:
            # Cognito knows the password; the account is switched off here. Its tokens would be
            # refused on every request, so none are handed out (the stamp is rolled back).
            raise Forbidden("This account is disabled.", code="account_disabled")
        info.audit(
            cur,
            "LOGIN",
            actor_id=user_id,
            subject_id=user_id,
            resource_type="user",
            resource_id=user_id,
        )
    ended = account["sessions_ended"] if account else None
    if ended is not None and stale(tokens["AccessToken"], ended):
        # Signed in within the second their sessions ended (a login right after a password change
        # or a logout): the API would refuse these tokens, so ask again in the next second. Rare,
        # and costs at most a second; the unused refresh token is never handed out.
        wait_out(ended)
        tokens = _fresh_login(pool, email, password, ended)
    row = repository.profile(user_id)
    return LoginResult(
        access=tokens["AccessToken"],
        refresh=tokens["RefreshToken"],
        id_token=tokens["IdToken"],
        expires_in=int(tokens["ExpiresIn"]),
        user=to_profile(row) if row else None,
    )


def _fresh_login(pool: Pool, email: str, password: str, ended: int) -> dict[str, Any]:
    try:
        tokens = _authenticate(pool, email, password)["AuthenticationResult"]
    except ClientError as error:
        raise (_throttled(error) or error) from None
    if stale(tokens["AccessToken"], ended):  # Cognito's clock behind ours: let the client retry
        raise ServiceUnavailable("Signing in is briefly unavailable; try again.", headers={"Retry-After": "1"})
    return tokens


def _refreshed(pool: Pool, refresh_token: str) -> dict[str, Any]:
    try:
        result = pool.client.initiate_auth(
            ClientId=pool.client_id, AuthFlow="REFRESH_TOKEN_AUTH", AuthParameters={"REFRESH_TOKEN": refresh_token}
        )
    except ClientError as error:
        if error_code(error) in ("NotAuthorizedException", "UserNotFoundException", "ResourceNotFoundException"):
            raise Unauthorized("The refresh token is not valid.", code="token_not_valid") from None
        raise (_throttled(error) or error) from None
    return result["AuthenticationResult"]


def refresh(pool: Pool, refresh_token: str) -> RefreshResult:
    tokens = _refreshed(pool, refresh_token)
    # A refresh in the second a role change ended the sessions (the refresh token itself survives a
    # role change) would hand out a refused token: wait that second out and refresh again.
    user_id = jwt.decode(tokens["AccessToken"], options={"verify_signature": False}).get("sub")
    ended = repository.sessions_ended(user_id) if user_id else None
    if ended is not None and stale(tokens["AccessToken"], ended):
        wait_out(ended)
        tokens = _refreshed(pool, refresh_token)
    # Cognito does not rotate refresh tokens: echo the one sent so clients storing both keep working.
    return RefreshResult(access=tokens["AccessToken"], refresh=refresh_token, expires_in=int(tokens["ExpiresIn"]))


def logout(pool: Pool, caller: Caller, access_token: str, info: RequestInfo) -> None:
    """Signs the caller out: Cognito revokes their refresh tokens and the access tokens issued from them.

    GlobalSignOut rather than RevokeToken: moto (the local stack and tests) implements no
    RevokeToken, and GlobalSignOut is enforced by both, so what is tested is what runs in AWS.
    """
    try:
        pool.client.global_sign_out(AccessToken=access_token)
    except ClientError as error:
        if error_code(error) != "NotAuthorizedException":  # already signed out
            raise (_throttled(error) or error) from None
    with db.transaction() as cur:
        # Access tokens are not revoked by Cognito's sign-out until they expire: the API refuses
        # them from the next request on (the guard reads this).
        end_sessions(cur, caller.user_id)
        info.audit(
            cur,
            "LOGOUT",
            actor=caller,
            subject_id=caller.user_id,
            resource_type="user",
            resource_id=caller.user_id,
        )


# --- passwords ----------------------------------------------------------------------------------


def request_password_reset(pool: Pool, email: str) -> None:
    """Cognito emails a code; the answer is the same whether or not the account exists."""
    try:
        pool.client.forgot_password(ClientId=pool.client_id, Username=email)
    except ClientError as error:
        throttled = _throttled(error)
        if throttled:
            raise throttled from None
        logger.info("password reset not sent", extra={"cognito_error": error_code(error)})


def confirm_password_reset(pool: Pool, request: ResetConfirm, info: RequestInfo) -> None:
    """Sets the new password, then ends every session of the account: its refresh tokens are
    revoked (AdminUserGlobalSignOut) and its access tokens refused. An address without an account
    answers as a wrong code does."""
    invalid = InvalidRequest("The reset code is not valid.", code="invalid_code")
    account = repository.account_state(request.email)
    if account is None:
        raise invalid
    try:
        pool.client.confirm_forgot_password(
            ClientId=pool.client_id,
            Username=request.email,
            ConfirmationCode=request.code,
            Password=request.new_password,
        )
    except ClientError as error:
        name = error_code(error)
        if name in ("CodeMismatchException", "ExpiredCodeException", "UserNotFoundException"):
            raise invalid from None
        if name == "InvalidPasswordException":
            raise _weak_password("new_password") from None
        raise (_throttled(error) or error) from None
    user_id = account["id"]
    with db.transaction() as cur:
        end_sessions(cur, user_id)
        info.audit(
            cur,
            "PASSWORD_RESET",
            actor_id=user_id,
            subject_id=user_id,
            resource_type="user",
            resource_id=user_id,
        )
        # Inside the transaction: if the sign-out fails, the reset is not recorded as done and the
        # person is told so (the password itself has changed; signing in works).
        _sign_out_everywhere(pool, request.email)


def change_password(pool: Pool, caller: Caller, access_token: str, request: PasswordChange, info: RequestInfo) -> None:
    try:
        pool.client.change_password(
            AccessToken=access_token, PreviousPassword=request.old_password, ProposedPassword=request.new_password
        )
    except ClientError as error:
        name = error_code(error)
        if name == "NotAuthorizedException":
            # A 400, not a 401: the session is fine, the old password is not.
            raise InvalidRequest("The current password is not correct.", code="wrong_password") from None
        if name == "InvalidPasswordException":
            raise _weak_password("new_password") from None
        raise (_throttled(error) or error) from None
    # The old password may be known to someone else: every session ends, this one included (the
    # client signs in again with the new password; the refresh tokens no longer work).
    try:
        pool.client.global_sign_out(AccessToken=access_token)
    except ClientError as error:
        if error_code(error) != "NotAuthorizedException":
            raise (_throttled(error) or error) from None
    with db.transaction() as cur:
        end_sessions(cur, caller.user_id)
        info.audit(
            cur,
            "PASSWORD_CHANGE",
            actor=caller,
            subject_id=caller.user_id,
            resource_type="user",
            resource_id=caller.user_id,
        )


def _sign_out_everywhere(pool: Pool, email: str) -> None:
    """Revokes every refresh token of the account. By email, the name they sign in with: AWS
    resolves the alias, and moto revokes only the tokens issued under the name given."""
    try:
        pool.client.admin_user_global_sign_out(UserPoolId=pool.user_pool_id, Username=email)
    except ClientError as error:
        if error_code(error) != "UserNotFoundException":
            raise (_throttled(error) or error) from None


# --- profile ------------------------------------------------------------------------------------


def to_profile(row: dict[str, Any]) -> Profile:
    accepted = (row["consent_privacy_version"], row["consent_terms_version"])
    current = accepted[0] is not None and accepted == (row["active_privacy_version"], row["active_terms_version"])
    student = row["role"] == "student"  # staff have no enrollment: null, not a student's defaults
    return Profile(
        id=row["id"],
        email=row["email"],
        name=row["name"],
        role=row["role"],
        track=row["track"] if student else None,
        enrollment_status=row["enrollment_status"] if student else None,
        tools_provisioned=row["tools_provisioned"] if student else None,
        provisioning_status=row["provisioning_status"] if student else None,
        privacy_accepted=current if student else None,
        consent=Consent(privacy_version=accepted[0], terms_version=accepted[1], current=current),
        deletion_scheduled_for=row.get("deletion_scheduled_for"),
    )


def get_profile(caller: Caller) -> Profile:
    row = repository.profile(caller.user_id)
    if row is None:
        raise NotFound("No account for this user.")
    return to_profile(row)


def update_profile(caller: Caller, name: str, info: RequestInfo) -> Profile:
    with db.transaction() as cur:
        if not repository.update_name(cur, caller.user_id, name):
            raise NotFound("No account for this user.")
        info.audit(
            cur,
            "PROFILE_UPDATE",
            actor=caller,
            subject_id=caller.user_id,
            resource_type="user",
            resource_id=caller.user_id,
            details={"fields": ["name"]},
        )
    return get_profile(caller)
