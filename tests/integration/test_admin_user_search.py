"""The admin console's user search (issue 18): ``?q=`` is the start of the email or of the name, in
any case, from an index of each (migration 0019); ``?provisioning=`` filters by provisioning status.

Through the real handler on the admin tests' own database (fixtures of test_admin_users).
"""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest

from functions.admin import repository
from tests.integration import test_admin_users as admin_tests
from tests.integration.test_admin_users import World, call

module_url, world, admin = admin_tests.module_url, admin_tests.world, admin_tests.admin

USERS = "/api/admin/users/"


@pytest.fixture(scope="module")
def people(world: World) -> dict[str, dict[str, Any]]:
    tag = uuid.uuid4().hex[:6]
    made = {
        "ada": world.user("student", "DP", "ENROLLED", email=f"ada.{tag}@search.test", name=f"Lovelace{tag} Ada"),
        "grace": world.user("student", "FSD", "ENROLLED", email=f"g.{tag}@search.test", name=f"Hopper{tag} Grace"),
        "trainer": world.user("trainer", "DP", email=f"coach.{tag}@search.test", name=f"Lovelace{tag} Byron"),
    }
    world.conn.execute("UPDATE users SET provisioning_status = 'FAILED' WHERE id = %s", (made["grace"]["id"],))
    return {**made, "tag": {"id": tag}}


def found(admin: dict[str, Any], **query: str) -> set[str]:
    status, body = call("GET", USERS, admin, query={**query, "limit": "100"})
    assert status == 200, body
    return {item["id"] for item in body["items"]}


def test_search_by_the_start_of_the_email_or_the_name_in_any_case(people, admin) -> None:
    tag = people["tag"]["id"]
    ada, grace, trainer = people["ada"]["id"], people["grace"]["id"], people["trainer"]["id"]
    assert found(admin, q=f"ADA.{tag}") == {ada}  # the email, any case
    assert found(admin, q=f"lovelace{tag}") == {ada, trainer}  # the name, any case
    assert found(admin, q=f"HOPPER{tag} g") == {grace}
    assert found(admin, q=f"lovelace{tag}", role="trainer") == {trainer}
    assert found(admin, q=f"Ada Lovelace{tag}") == set()  # the start, not anywhere
    assert found(admin, q=f"{tag}") == set()


def test_provisioning_filter(people, admin) -> None:
    tag = people["tag"]["id"]
    assert found(admin, provisioning="FAILED", q=f"g.{tag}") == {people["grace"]["id"]}
    assert people["grace"]["id"] not in found(admin, provisioning="SUCCEEDED")
    assert people["ada"]["id"] in found(admin, provisioning="NOT_STARTED", q=f"ada.{tag}")


@pytest.mark.parametrize(
    "query",
    [{"provisioning": "failed"}, {"provisioning": "BROKEN"}, {"q": ""}, {"q": "x" * 255}, {"name": "ada"}],
)
def test_bad_search_parameters_are_422(admin, query: dict[str, str]) -> None:
    status, body = call("GET", USERS, admin, query=query)
    assert status == 422, body


def test_the_search_reads_the_prefix_indexes(module_url: str) -> None:
    """The plan of the statement the route sends, with sequential scans priced out: the prefix is a
    range of each index (a plan that could not use them would still scan the table)."""
    from apranova import db
    from bench.scale import _Recorder

    recorder = _Recorder()
    connection = db.connection()
    previous = connection.cursor_factory
    connection.cursor_factory = recorder.cursor_class()
    try:
        repository.users(None, None, None, "Ada", None, 20)
    finally:
        connection.cursor_factory = previous
    query, params = recorder.statements[-1]
    with psycopg.connect(module_url, autocommit=True) as conn:
        text = query.as_string(conn)
        conn.execute("SET enable_seqscan = off")
        plan = "\n".join(row[0] for row in conn.execute("EXPLAIN " + text, params).fetchall())
    assert "users_email_prefix" in plan and "users_name_prefix" in plan, plan
