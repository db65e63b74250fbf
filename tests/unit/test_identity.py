import pytest

from apranova.identity import Caller, caller_from_event, issued_at, parse_groups


def test_groups_from_the_http_api_authorizer_string_form():
    assert parse_groups("[admins trainers]") == {"admins", "trainers"}
    assert parse_groups("students") == {"students"}
    assert parse_groups(["students"]) == {"students"}
    assert parse_groups(None) == frozenset()
    assert parse_groups("[]") == frozenset()


def test_role_is_the_highest_group():
    assert Caller("u", frozenset({"students"})).role == "student"
    assert Caller("u", frozenset({"trainers", "admins"})).role == "admin"
    assert Caller("u", frozenset({"somethingelse"})).role is None
    assert Caller("u", frozenset({"admins"})).is_trainer
    assert not Caller("u", frozenset({"trainers"})).is_admin


def test_caller_comes_only_from_the_authorizer_claims():
    event = {"headers": {"x-user-id": "forged"}, "body": '{"sub": "forged"}', "requestContext": {}}
    assert caller_from_event(event) is None
    claims = {"sub": "abc", "token_use": "access", "cognito:groups": "[students]"}
    event["requestContext"]["authorizer"] = {"jwt": {"claims": claims}}
    caller = caller_from_event(event)
    assert caller == Caller("abc", frozenset({"students"}), None)


def test_an_id_token_is_not_a_session():
    # API Gateway's authorizer lets a Cognito ID token through (its aud is the client id).
    claims = {"sub": "abc", "token_use": "id", "aud": "client", "cognito:groups": "[admins]"}
    assert caller_from_event({"requestContext": {"authorizer": {"jwt": {"claims": claims}}}}) is None
    del claims["token_use"]
    assert caller_from_event({"requestContext": {"authorizer": {"jwt": {"claims": claims}}}}) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1700000000", 1700000000), (1700000000, 1700000000), ("9" * 30, None), ("-5", None), ("1.5", None),
     (True, None), (None, None)],
)  # fmt: skip
def test_issued_at_is_whole_seconds_that_fit_a_bigint(value, expected):
    """``iat`` as the authorizer passes it (a string); anything else is no proof of a session (401)."""
    assert issued_at({"iat": value}) == expected
