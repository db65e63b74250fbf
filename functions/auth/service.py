"""Auth use cases: Cognito does identities, passwords and tokens; the database keeps the account,
its consent and the audit trail. Dependencies (the pool) are passed in."""

from __future__ import annotations

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
    TooManyRequests,
    Unauthorized,
    ValidationFailed,
)
from apranova.identity import Caller
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


def register(pool: Pool, request: Registration, info: RequestInfo) -> dict[str, Any]:
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
    taken = Conflict("An account with this email already exists.", code="email_taken")
    if repository.email_exists(request.email):
        raise taken
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
            raise taken from None
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
            raise taken from None
        raise
    return {
        "id": user_id,
        "email": request.email,
        "email_verified": False,
        "detail": "Account created. Check your email for the verification code.",
    }


def verify_email(pool: Pool, email: str, code: str, info: RequestInfo) -> None:
    try:
        pool.client.confirm_sign_up(ClientId=pool.client_id, Username=email, ConfirmationCode=code)
    except ClientError as error:
        name = error_code(error)
        if name in ("CodeMismatchException", "ExpiredCodeException", "UserNotFoundException"):
            raise InvalidRequest("The verification code is not valid.", code="invalid_code") from None
        if name != "NotAuthorizedException":  # already confirmed: verifying again is harmless
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


def login(pool: Pool, email: str, password: str, info: RequestInfo) -> LoginResult:
    try:
        result = pool.client.initiate_auth(
            ClientId=pool.client_id,
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": email, "PASSWORD": password},
        )
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
        repository.record_login(cur, user_id)
        info.audit(
            cur,
            "LOGIN",
            actor_id=user_id,
            subject_id=user_id,
            resource_type="user",
            resource_id=user_id,
        )
    row = repository.profile(user_id)
    return LoginResult(
        access=tokens["AccessToken"],
        refresh=tokens["RefreshToken"],
        id_token=tokens["IdToken"],
        expires_in=int(tokens["ExpiresIn"]),
        user=to_profile(row) if row else None,
    )


def refresh(pool: Pool, refresh_token: str) -> RefreshResult:
    try:
        result = pool.client.initiate_auth(
            ClientId=pool.client_id, AuthFlow="REFRESH_TOKEN_AUTH", AuthParameters={"REFRESH_TOKEN": refresh_token}
        )
    except ClientError as error:
        if error_code(error) in ("NotAuthorizedException", "UserNotFoundException", "ResourceNotFoundException"):
            raise Unauthorized("The refresh token is not valid.", code="token_not_valid") from None
        raise (_throttled(error) or error) from None
    tokens = result["AuthenticationResult"]
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
            raise InvalidRequest("The reset code is not valid.", code="invalid_code") from None
        if name == "InvalidPasswordException":
            raise _weak_password("new_password") from None
        raise (_throttled(error) or error) from None
    with db.transaction() as cur:
        user_id = repository.user_id_by_email(cur, request.email)
        info.audit(
            cur,
            "PASSWORD_RESET",
            actor_id=user_id,
            subject_id=user_id,
            resource_type="user" if user_id else None,
            resource_id=user_id,
        )


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
    with db.transaction() as cur:
        info.audit(
            cur,
            "PASSWORD_CHANGE",
            actor=caller,
            subject_id=caller.user_id,
            resource_type="user",
            resource_id=caller.user_id,
        )


# --- profile ------------------------------------------------------------------------------------


def to_profile(row: dict[str, Any]) -> Profile:
    accepted = (row["consent_privacy_version"], row["consent_terms_version"])
    current = accepted[0] is not None and accepted == (row["active_privacy_version"], row["active_terms_version"])
    return Profile(
        id=row["id"],
        email=row["email"],
        name=row["name"],
        role=row["role"],
        track=row["track"],
        enrollment_status=row["enrollment_status"],
        tools_provisioned=row["tools_provisioned"],
        provisioning_status=row["provisioning_status"],
        privacy_accepted=current,
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
