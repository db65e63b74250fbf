"""Property-based tests of the API against its own OpenAPI document (schemathesis, every check on).

The whole local stack runs (``python -m local.stack``: the real handlers behind the local API
Gateway, PostgreSQL through PgBouncer, moto, the Stripe emulator), and every operation of
``docs/openapi.json`` is fuzzed as five callers: anonymous, a student who has not paid, an enrolled
student, a trainer and an admin. Examples are few and derandomized so the run stays short and
repeatable; what it finds is fixed in the code, never by loosening a check (docs/decisions.md names
the two expectations widened, and why).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import requests
import schemathesis
from schemathesis.core.parameters import ParameterLocation

from local import openapi
from tests.e2e.test_local_stack import Stack, _cognito, _free_port

ROLES = ("anonymous", "student", "enrolled", "trainer", "admin")
PASSWORD = "Fuzz-Passw0rd-Long!"
# Per operation and caller: enough to cross every branch the schema describes, few enough that five
# callers over every operation stay within a couple of minutes on a 2-core machine.
MAX_EXAMPLES = 3

ACCEPTED = ["2xx", "3xx", "401", "402", "403", "404", "409", "429", "5xx"]
# Operations that check a secret the schema cannot describe answer a well-formed wrong one with 400:
# a mailed code (Cognito's CodeMismatch), the current password, the Stripe signature (an HMAC of
# the body with the endpoint's secret). Only there is 400 an acceptance of well-formed data.
SECRET_CHECKED = (
    "POST /api/auth/verify-email/",
    "POST /api/auth/password/reset/confirm/",
    "POST /api/auth/password/change/",
    "POST /api/payments/webhook/",
)
# Rules no schema can state, answered with 422 naming them: between parameters (OpenAPI describes
# each alone), about the clock, or about rows an operator maintains.
STATE_CHECKED = {
    "POST /api/admin/policies/": "a version takes effect now or later, within a year",
    "PUT /api/admin/retention-policies/": "a policy that exists, kept above its legal minimum",
    "GET /api/admin/stats/": "from before to, a range the bucket allows",
    "GET /api/admin/audit-logs/": "from before to",
    "GET /api/trainer/submissions/": "a project filter names a project (of the track filter)",
    "POST /api/admin/users/{id}/assign-trainer/": "the trainer is a trainer of the student's track",
    "POST /api/admin/users/{id}/enroll/": "the track is on offer",
}
CREDENTIAL_CHECKS = "".join(
    f"""
[[operations]]
include-name = "{name}"
checks.positive_data_acceptance.expected-statuses = {json.dumps([*ACCEPTED, status])}
"""
    for names, status in ((SECRET_CHECKED, "400"), (STATE_CHECKED, "422"))
    for name in names
)

CONFIG = f"""
[generation]
max-examples = {MAX_EXAMPLES}
deterministic = true
database = "none"
# The API refuses U+0000 in any string (PostgreSQL text cannot hold it) with a 422 naming the field:
# JSON Schema has no way to say so once for every string of the document.
allow-x00 = false

[phases.coverage]
enabled = false

[checks.positive_data_acceptance]
# 402: the caller has not paid (a state of the account, like 403, not a property of the request).
expected-statuses = {json.dumps(ACCEPTED)}
{CREDENTIAL_CHECKS}"""


@schemathesis.hook
def map_case(context: Any, case: Any) -> Any:
    """A page's cursor is minted by the server (base64url of the last row's sort key): no schema can
    describe one that names a row, so a well-formed query carries none (tests/integration covers a
    forged cursor's 422); a malformed one is still sent."""
    meta = case.meta
    positive = meta is None or not meta.is_negative_at(ParameterLocation.QUERY)
    if positive and isinstance(case.query, dict):
        case.query.pop("cursor", None)
    return case


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, make_database) -> Iterator[Stack]:
    state = tmp_path_factory.mktemp("fuzz-state") / "state"
    started = Stack(state, make_database("apranova_fuzz"), _free_port())
    yield started
    started.stop(timeout=60)  # a loaded machine takes more than a few seconds to stop every tool
    started.drop_students_database()


def _student(stack: Stack, *, enrolled: bool) -> dict[str, str]:
    """A verified student (Cognito user in the students group and its row); enrolled in DP if asked."""
    info = stack.info
    client = _cognito(info)
    pool = info["cognito"]["user_pool_id"]
    email = f"fuzz-{uuid.uuid4().hex[:8]}@example.com"
    created = client.admin_create_user(
        UserPoolId=pool,
        Username=email,
        MessageAction="SUPPRESS",
        UserAttributes=[{"Name": "email", "Value": email}, {"Name": "email_verified", "Value": "true"}],
    )
    client.admin_set_user_password(UserPoolId=pool, Username=email, Password=PASSWORD, Permanent=True)
    client.admin_add_user_to_group(UserPoolId=pool, Username=email, GroupName="students")
    sub = next(a["Value"] for a in created["User"]["Attributes"] if a["Name"] == "sub")
    with psycopg.connect(stack.database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO users (id, email, name, role, track_id, email_verified, enrollment_status)"
            " VALUES (%s, %s, 'Fuzz Student', 'student', (SELECT id FROM tracks WHERE code = 'DP'), true, %s)",
            (sub, email, "ENROLLED" if enrolled else "PENDING_PAYMENT"),
        )
    return {"email": email, "password": PASSWORD}


class Callers:
    """Each role's access token, signed in again when a case ended the session (logout)."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.users = {
            "student": _student(stack, enrolled=False),
            # The stateful walk's own unpaid student: what the other cases did to "student" (a live
            # payment, an ended session) cannot change where the walk's links lead.
            "walker": _student(stack, enrolled=False),
            "linker": _student(stack, enrolled=False),
            "enrolled": _student(stack, enrolled=True),
            "trainer": stack.info["dev_users"]["trainer_dp"],
            "admin": stack.info["dev_users"]["admin"],
        }
        self.tokens: dict[str, str] = {}
        for role in self.users:
            self._accept_policies(role)

    def _sign_in(self, role: str) -> str:
        user = self.users[role]
        answer = requests.post(
            self.stack.url("/api/auth/login/"), json={"email": user["email"], "password": user["password"]}, timeout=30
        )
        assert answer.status_code == 200, answer.text
        return answer.json()["access"]

    def token(self, role: str) -> str:
        if role not in self.tokens:
            self.tokens[role] = self._sign_in(role)
        return self.tokens[role]

    def headers(self, role: str) -> dict[str, str]:
        return {} if role == "anonymous" else {"Authorization": f"Bearer {self.token(role)}"}

    def _accept_policies(self, role: str) -> None:
        versions = requests.get(self.stack.url("/api/compliance/privacy-policy/"), timeout=30).json()
        terms = requests.get(self.stack.url("/api/compliance/terms/"), timeout=30).json()
        answer = requests.post(
            self.stack.url("/api/compliance/accept-consent/"),
            json={"privacy_version": versions["version"], "terms_version": terms["version"]},
            headers=self.headers(role),
            timeout=30,
        )
        assert answer.status_code in (200, 201), answer.text

    def after(self, role: str, case: Any, response: Any) -> None:
        """A session the case ended (logout) is replaced: later cases run signed in, as a client would."""
        if role != "anonymous" and (response.status_code == 401 or case.path == "/api/auth/logout/"):
            self.tokens.pop(role, None)
            time.sleep(1.05)  # a token in the same second as the logout counts as ended


@pytest.fixture(scope="module")
def callers(stack: Stack) -> Callers:
    return Callers(stack)


@pytest.fixture(scope="module")
def api_url(stack: Stack) -> str:
    # DOCUMENT is what the code builds; tests/integration/test_openapi.py holds the committed
    # docs/openapi.json (and so what the stack serves) to the same.
    return stack.info["api_url"]


DOCUMENT = openapi.build()
schema = schemathesis.openapi.from_dict(DOCUMENT, config=schemathesis.Config.from_str(CONFIG))


@pytest.mark.slow
@pytest.mark.parametrize("role", ROLES)
@schema.parametrize()
def test_every_operation_keeps_its_contract(case: Any, role: str, callers: Callers, api_url: str) -> None:
    response = case.call(base_url=api_url, headers=callers.headers(role))
    try:
        case.validate_response(response)
    except Exception as failure:
        if response.status_code >= 500:  # the traceback is in the stack's log
            raise AssertionError(f"{failure}\n--- the stack's log ---\n{callers.stack.output()}") from failure
        raise
    finally:
        callers.after(role, case, response)


@pytest.mark.slow
def test_links_lead_from_what_is_created_to_where_it_is_read(callers: Callers, api_url: str) -> None:
    """Stateful: sequences of calls that follow the document's links (a checkout to its payment and
    session, an export to its status, a list to its first item), as the student who has not paid."""
    from hypothesis import HealthCheck, Phase
    from hypothesis import settings as hypothesis_settings

    machine = schema.as_state_machine()
    answered: set[tuple[str, str, int]] = set()

    class StudentJourney(machine):  # type: ignore[misc, valid-type]
        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"base_url": api_url, "headers": callers.headers("walker")}

        def after_call(self, response: Any, case: Any) -> None:
            answered.add((case.method, case.path, response.status_code))
            callers.after("walker", case, response)

    StudentJourney.run(
        settings=hypothesis_settings(
            max_examples=8,
            stateful_step_count=4,
            deadline=None,
            derandomize=True,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
    )
    # The checkout's documented link leads to its payment (its id is in no schema). Whether the walk
    # above happens to take that step depends on what earlier cases left behind (a logout, a live
    # payment), so the link is also followed here, as the document states it.
    if ("GET", "/api/payments/status/{id}/", 200) not in answered:
        links = DOCUMENT["paths"]["/api/payments/create-checkout-session/"]["post"]["responses"]["201"]["links"]
        expression = links["PaymentStatus"]["parameters"]["id"]
        assert expression == "$response.body#/payment_id"
        headers = callers.headers("linker")
        created = requests.post(f"{api_url}/api/payments/create-checkout-session/", json={"track": "DP"},
                                headers=headers, timeout=30)  # fmt: skip
        assert created.status_code == 201, created.text
        followed = requests.get(f"{api_url}/api/payments/status/{created.json()['payment_id']}/", headers=headers,
                                timeout=30)  # fmt: skip
        assert followed.status_code == 200, followed.text
        assert followed.json()["id"] == created.json()["payment_id"]
