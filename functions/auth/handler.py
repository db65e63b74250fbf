"""The auth API function: sign-up with consent, email verification, sessions, passwords, profile."""

from __future__ import annotations

from functools import cache

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.shared.cookies import Cookie, SameSite

from apranova import cognito, mail
from apranova.api import caller, create_app, lambda_entry, request_info
from apranova.audit import RequestInfo
from apranova.errors import Unauthorized
from apranova.settings import BaseSettings, load
from apranova.user_pool_settings import REFRESH_TOKEN_DAYS
from functions.auth import service
from functions.auth.models import (
    EmailOnly,
    Login,
    LoginResult,
    LogoutRequest,
    Message,
    PasswordChange,
    Profile,
    ProfilePatch,
    RefreshRequest,
    RefreshResult,
    Registered,
    Registration,
    ResetConfirm,
    VerifyEmail,
)

app = create_app()
NO_STORE = {"Cache-Control": "no-store"}


class AuthSettings(BaseSettings):
    spa_origin: str  # the sign-in link of the email to an address that already has an account


@cache
def settings() -> AuthSettings:
    return load(AuthSettings)


def _pool() -> service.Pool:
    settings = cognito.settings()
    return service.Pool(cognito.client(), settings.cognito_user_pool_id, settings.cognito_client_id)


def _info() -> RequestInfo:
    return request_info(app)


def _access_token() -> str:
    """The caller's access token: the authorizer has verified it before the function runs."""
    scheme, _, token = (app.current_event.headers.get("authorization") or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Authentication credentials were not provided or are not valid.")
    return token.strip()


def _json(status: int, body: object, cookies: list[Cookie] | None = None) -> Response:
    return Response(
        status_code=status, content_type=content_types.APPLICATION_JSON, body=body, headers=NO_STORE, cookies=cookies
    )


# The browser's refresh token (docs/principles.md §12): HttpOnly (no script reads it), Secure, SameSite=Strict
# (no other site's request carries it) and sent only to the refresh and logout routes.
REFRESH_COOKIE = "apranova_refresh"
REFRESH_COOKIE_PATH = "/api/auth/"


def _refresh_cookie(token: str) -> Cookie:
    return Cookie(
        name=REFRESH_COOKIE,
        value=token,
        path=REFRESH_COOKIE_PATH,
        secure=True,
        http_only=True,
        same_site=SameSite.STRICT_MODE,
        max_age=REFRESH_TOKEN_DAYS * 24 * 3600,
    )


def _cleared_refresh_cookie() -> Cookie:
    return Cookie(
        name=REFRESH_COOKIE,
        value="",
        path=REFRESH_COOKIE_PATH,
        secure=True,
        http_only=True,
        same_site=SameSite.STRICT_MODE,
        max_age=0,
    )


# A readable hint that a refresh cookie exists (no secret in it), so that the web app asks for a
# new access token on start only when there is a session to restore.
SESSION_HINT_COOKIE = "apranova_session"


def _session_cookies(token: str) -> list[Cookie]:
    hint = Cookie(
        name=SESSION_HINT_COOKIE,
        value="1",
        path="/",
        secure=True,
        same_site=SameSite.STRICT_MODE,
        max_age=REFRESH_TOKEN_DAYS * 24 * 3600,
    )
    return [_refresh_cookie(token), hint]


def _cleared_session_cookies() -> list[Cookie]:
    hint = Cookie(name=SESSION_HINT_COOKIE, value="", path="/", secure=True, same_site=SameSite.STRICT_MODE, max_age=0)
    return [_cleared_refresh_cookie(), hint]


def _cookie_refresh_token() -> str | None:
    """The refresh token from the request's cookie (HTTP API payload 2.0 lists cookies apart)."""
    for cookie in app.current_event.cookies or []:
        name, _, value = cookie.strip().partition("=")
        if name == REFRESH_COOKIE and value:
            return value
    return None


def _tell_owner(email: str) -> None:
    mail.send(service.someone_tried_to_register(email, settings().spa_origin))


@app.post("/api/auth/registration/", summary="Create a student account (consent to the active policy and terms)")
def register(request: Registration) -> Response[Registered]:
    registered = service.register(_pool(), request, _info(), _tell_owner)
    return _json(201, Registered.model_validate(registered))


@app.post("/api/auth/verify-email/", summary="Confirm the email address with the emailed code")
def verify_email(request: VerifyEmail) -> Response[Message]:
    service.verify_email(_pool(), request.email, request.code, _info())
    return _json(200, Message(detail="Email verified."))


@app.post("/api/auth/resend-verification/", summary="Send the verification code again")
def resend_verification(request: EmailOnly) -> Response[Message]:
    service.resend_verification(_pool(), request.email)
    return _json(202, Message(detail=service.RESEND_SENT))


@app.post("/api/auth/login/", summary="Log in with email and password")
def login(request: Login) -> Response[LoginResult]:
    result = service.login(_pool(), request.email, request.password, _info())
    return _json(200, result, cookies=_session_cookies(result.refresh))


@app.post("/api/auth/token/refresh/", summary="A new access token for a refresh token")
def refresh(request: RefreshRequest | None = None) -> Response[RefreshResult]:
    token = (request.refresh if request else None) or _cookie_refresh_token()
    if not token:
        raise Unauthorized("No refresh token was sent.", code="token_not_valid")
    result = service.refresh(_pool(), token)
    return _json(200, result, cookies=_session_cookies(token))


@app.post("/api/auth/logout/", summary="Log out: the refresh token stops working")
def logout(request: LogoutRequest | None = None) -> Response[Message]:
    service.logout(_pool(), caller(app), _access_token(), _info())
    return _json(200, Message(detail="Logged out."), cookies=_cleared_session_cookies())


@app.post("/api/auth/password/reset/", summary="Email a password reset code")
def password_reset(request: EmailOnly) -> Response[Message]:
    service.request_password_reset(_pool(), request.email)
    return _json(202, Message(detail=service.RESET_SENT))


@app.post("/api/auth/password/reset/confirm/", summary="Set a new password with the emailed code")
def password_reset_confirm(request: ResetConfirm) -> Response[Message]:
    service.confirm_password_reset(_pool(), request, _info())
    return _json(200, Message(detail="Password has been reset."))


@app.post("/api/auth/password/change/", summary="Change the password of the signed-in account")
def password_change(request: PasswordChange) -> Response[Message]:
    service.change_password(_pool(), caller(app), _access_token(), request, _info())
    return _json(200, Message(detail="Password changed."))


@app.get("/api/auth/user/", summary="The signed-in account's profile")
def get_user() -> Response[Profile]:
    return _json(200, service.get_profile(caller(app)))


@app.patch("/api/auth/user/", summary="Change the profile (name only)")
def patch_user(request: ProfilePatch) -> Response[Profile]:
    return _json(200, service.update_profile(caller(app), request.name, _info()))


lambda_handler = lambda_entry(app)
