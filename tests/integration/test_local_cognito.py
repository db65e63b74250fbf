"""The local Cognito mails its codes and accepts only those (local/cognito.py), through the real auth
routes: sign-up verification, resend and forgot-password, as a person reads them from the mailbox."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from botocore.exceptions import ClientError

from apranova import user_pool_settings
from functions.auth.handler import lambda_handler as auth
from local import cognito as local_cognito
from local.moto_stack import mailbox
from tests.integration.auth_support import (
    PASSWORD,
    call,
    idp,
    mailed_code,
    other_than,
)

VERIFY = "/api/auth/verify-email/"
RESEND = "/api/auth/resend-verification/"
RESET = "/api/auth/password/reset/"
RESET_CONFIRM = "/api/auth/password/reset/confirm/"


# The module's Cognito user pool and the policy versions in force: tests/integration/conftest.py.
pytestmark = pytest.mark.usefixtures("pool")


@pytest.fixture(autouse=True)
def clock() -> Iterator[None]:
    yield
    local_cognito.reset_clock()


def codes_to(email: str) -> list[dict]:
    return [m for m in mailbox() if email in m["to"] and local_cognito.is_code_email(m)]


def sign_up(versions: dict[str, str]) -> str:
    email = f"code-{uuid.uuid4().hex[:10]}@example.com"
    body = {"email": email, "password": PASSWORD, "name": "Cody", "accept_privacy": True, **versions}
    assert call(auth, "POST", "/api/auth/registration/", body)[0] == 201
    return email


def verify(email: str, code: str) -> tuple[int, dict]:
    return call(auth, "POST", VERIFY, {"email": email, "code": code})


def refused_as_invalid(answer: tuple[int, dict]) -> bool:
    return answer[0] == 400 and answer[1]["error"]["code"] == "invalid_code"


def cognito_error(call_: object, **kwargs: object) -> str:
    with pytest.raises(ClientError) as raised:
        call_(**kwargs)  # type: ignore[operator]
    return raised.value.response["Error"]["Code"]


def test_sign_up_mails_a_code_and_only_that_code_verifies(pool, versions) -> None:
    email = sign_up(versions)
    (message,) = codes_to(email)
    assert message["subject"] == user_pool_settings.VERIFICATION_EMAIL_SUBJECT
    code = mailed_code(email)
    assert message["body_text"] == user_pool_settings.VERIFICATION_EMAIL_MESSAGE.replace("{####}", code)

    assert refused_as_invalid(verify(email, other_than(code)))
    assert call(auth, "POST", "/api/auth/login/", {"email": email, "password": PASSWORD})[0] == 403
    assert verify(email, code)[0] == 200
    assert call(auth, "POST", "/api/auth/login/", {"email": email, "password": PASSWORD})[0] == 200
    # Spent: the same code again is the answer for a confirmed address.
    assert refused_as_invalid(verify(email, code))
    user = idp().admin_get_user(UserPoolId=pool["user_pool_id"], Username=email)
    attributes = {a["Name"]: a["Value"] for a in user["UserAttributes"]}
    assert user["UserStatus"] == "CONFIRMED" and attributes["email_verified"] == "true"


def test_cognito_names_a_wrong_and_an_expired_code_as_cognito_does(pool, versions) -> None:
    email = sign_up(versions)
    code = mailed_code(email)
    client = idp()
    confirm = client.confirm_sign_up
    assert cognito_error(confirm, ClientId=pool["client_id"], Username=email, ConfirmationCode="1") == (
        "CodeMismatchException"
    )
    local_cognito.advance_clock(24 * 3600 + 1)  # the sign-up code lives 24 hours
    assert cognito_error(confirm, ClientId=pool["client_id"], Username=email, ConfirmationCode=code) == (
        "ExpiredCodeException"
    )
    assert refused_as_invalid(verify(email, code))


def test_resend_mails_a_new_code_and_the_old_one_stops_working(pool, versions) -> None:
    email = sign_up(versions)
    first = mailed_code(email)
    status, answer = call(auth, "POST", RESEND, {"email": email})
    assert status == 202, answer
    assert len(codes_to(email)) == 2
    second = mailed_code(email)
    if second == first:  # one chance in a million: ask once more
        call(auth, "POST", RESEND, {"email": email})
        second = mailed_code(email)
    assert refused_as_invalid(verify(email, first))
    assert verify(email, second)[0] == 200
    # A confirmed account gets no code, and the answer is the same as for anyone.
    assert call(auth, "POST", RESEND, {"email": email}) == (status, answer)
    assert len(codes_to(email)) == 2


def test_resend_for_an_unknown_address_mails_nothing_and_answers_alike(pool, versions) -> None:
    email = f"nobody-{uuid.uuid4().hex[:8]}@example.com"
    known = call(auth, "POST", RESEND, {"email": sign_up(versions)})
    assert call(auth, "POST", RESEND, {"email": email}) == known
    assert codes_to(email) == []


def test_forgot_password_mails_a_code_that_is_replaced_by_the_next_and_lives_an_hour(pool, versions) -> None:
    email = sign_up(versions)
    assert verify(email, mailed_code(email))[0] == 200
    assert call(auth, "POST", RESET, {"email": email})[0] == 202
    first = mailed_code(email)
    assert call(auth, "POST", RESET, {"email": email})[0] == 202
    second = mailed_code(email)
    new_password = "Brand-New-Passw0rd!"
    assert refused_as_invalid(
        call(auth, "POST", RESET_CONFIRM, {"email": email, "code": first, "new_password": new_password})
    )
    assert refused_as_invalid(
        call(auth, "POST", RESET_CONFIRM, {"email": email, "code": other_than(second), "new_password": new_password})
    )
    local_cognito.advance_clock(3600 + 1)  # a reset code lives one hour
    expired = idp().confirm_forgot_password
    assert (
        cognito_error(
            expired, ClientId=pool["client_id"], Username=email, ConfirmationCode=second, Password=new_password
        )
        == "ExpiredCodeException"
    )
    local_cognito.reset_clock()
    assert call(auth, "POST", RESET, {"email": email})[0] == 202
    third = mailed_code(email)
    assert call(auth, "POST", RESET_CONFIRM, {"email": email, "code": third, "new_password": new_password})[0] == 200
    assert call(auth, "POST", "/api/auth/login/", {"email": email, "password": new_password})[0] == 200
    # Spent once used.
    again = {"email": email, "code": third, "new_password": "Yet-Another-Passw0rd!"}
    assert refused_as_invalid(call(auth, "POST", RESET_CONFIRM, again))


def test_no_reset_code_for_an_unverified_address_or_an_unknown_one(pool, versions) -> None:
    email = sign_up(versions)
    unknown = f"nobody-{uuid.uuid4().hex[:8]}@example.com"
    assert call(auth, "POST", RESET, {"email": email}) == call(auth, "POST", RESET, {"email": unknown})
    assert len(codes_to(email)) == 1  # only the sign-up code
    assert codes_to(unknown) == []


def test_the_code_is_never_in_cognitos_answer(pool, versions) -> None:
    email = sign_up(versions)
    assert verify(email, mailed_code(email))[0] == 200
    response = idp().forgot_password(ClientId=pool["client_id"], Username=email)
    code = mailed_code(email)
    assert code not in str(response) and "x-moto-forgot-password-confirmation-code" not in str(response)
