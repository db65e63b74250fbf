"""A trainer's or admin's profile carries no student fields: null, not a student's defaults
(``PENDING_PAYMENT``, ``privacy_accepted: false``); a student's carries them all."""

from __future__ import annotations

import json
import uuid

import pytest

from functions.auth.handler import lambda_handler
from local.events import LambdaContext, http_api_event

STUDENT_FIELDS = ("track", "enrollment_status", "tools_provisioned", "provisioning_status", "privacy_accepted")


@pytest.mark.parametrize("role", ["trainer", "admin", "student"])
def test_profile_fields_follow_the_role(conn, role: str) -> None:
    user_id = str(uuid.uuid4())
    email = f"profile-{user_id[:8]}@example.com"
    conn.execute(
        "INSERT INTO users (id, email, name, role, email_verified) VALUES (%s, %s, 'Pat Staff', %s, true)",
        (user_id, email, role),
    )
    try:
        claims = {"sub": user_id, "token_use": "access", "cognito:groups": f"[{role}s]", "email": email}
        response = lambda_handler(http_api_event("GET", "/api/auth/user/", claims=claims), LambdaContext("auth"))
        assert response["statusCode"] == 200, response
        profile = json.loads(response["body"])
        assert (profile["id"], profile["role"], profile["name"]) == (user_id, role, "Pat Staff")
        assert set(STUDENT_FIELDS) <= set(profile) and "consent" in profile
        if role == "student":
            assert profile["enrollment_status"] == "PENDING_PAYMENT" and profile["privacy_accepted"] is False
            assert profile["tools_provisioned"] is False and profile["provisioning_status"]
        else:
            assert {field: profile[field] for field in STUDENT_FIELDS} == dict.fromkeys(STUDENT_FIELDS)
    finally:
        conn.execute("DELETE FROM users WHERE id = %s", (user_id,))
