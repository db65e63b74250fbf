"""A bench student who exists where the routes look: in moto's Cognito (started as the local stack
starts it) and in the bench database, so authenticated routes answer 200 rather than 404."""

from __future__ import annotations

import dataclasses
import secrets
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench import config

EMAIL = "bench.student@example.com"


@dataclasses.dataclass(frozen=True)
class Student:
    sub: str
    email: str
    password: str
    refresh: str
    moto_url: str  # the bench's moto server, for sections that need more of it

    @property
    def claims(self) -> dict[str, Any]:
        return {"sub": self.sub, "email": self.email, "token_use": "access", "cognito:groups": "[students]"}


@contextmanager
def bench_student(database_url: str) -> Iterator[Student]:
    """moto with the local stack's pool, one verified student in it and in the database; the
    functions' settings point at them for the run (subprocesses inherit the environment)."""
    import logging

    import psycopg
    import pytest

    from local import moto_stack

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's per-request lines
    moto = moto_stack.MotoServer()
    moto.start()
    try:
        with pytest.MonkeyPatch.context() as mp:
            with tempfile.TemporaryDirectory() as state:
                boot = moto_stack.bootstrap(moto.url, Path(state), spa_origin="http://localhost:5173")
            mp.setenv("AWS_ENDPOINT_URL", moto.url)
            mp.setenv("COGNITO_USER_POOL_ID", boot.user_pool_id)
            mp.setenv("COGNITO_CLIENT_ID", boot.client_id)
            cognito = moto_stack.client("cognito-idp", moto.url)
            password = "Bench-" + secrets.token_urlsafe(12) + "1a!"
            user = cognito.admin_create_user(
                UserPoolId=boot.user_pool_id,
                Username=EMAIL,
                MessageAction="SUPPRESS",
                UserAttributes=[{"Name": "email", "Value": EMAIL}, {"Name": "email_verified", "Value": "true"}],
            )["User"]
            sub = next(a["Value"] for a in user["Attributes"] if a["Name"] == "sub")
            cognito.admin_set_user_password(
                UserPoolId=boot.user_pool_id, Username=EMAIL, Password=password, Permanent=True
            )
            cognito.admin_add_user_to_group(UserPoolId=boot.user_pool_id, Username=EMAIL, GroupName="students")
            with psycopg.connect(database_url, autocommit=True) as conn:
                conn.execute(
                    "INSERT INTO users (id, email, name, role, email_verified) VALUES (%s, %s, %s, 'student', true)",
                    (sub, EMAIL, "Bench Student"),
                )
            tokens = cognito.initiate_auth(
                ClientId=boot.client_id,
                AuthFlow="USER_PASSWORD_AUTH",
                AuthParameters={"USERNAME": EMAIL, "PASSWORD": password},
            )["AuthenticationResult"]
            yield Student(sub, EMAIL, password, tokens["RefreshToken"], moto.url)
    finally:
        moto.stop()


def personalise(routes: tuple[config.BenchRoute, ...], student: Student) -> tuple[config.BenchRoute, ...]:
    """The routes with the student's claims and body values filled in."""
    values = {"email": student.email, "password": student.password, "refresh": student.refresh}
    return tuple(
        dataclasses.replace(
            route,
            claims=student.claims if route.claims is not None else None,
            body=route.body.format(**values) if route.body else None,
        )
        for route in routes
    )
