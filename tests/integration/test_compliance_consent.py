"""Policies and consent through the real handlers (``functions.compliance.handler``; the admin,
curriculum, payments and auth handlers for what the versions in force gate), on the real
PostgreSQL. The module has a database of its own: it publishes policy versions."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from functions.admin.handler import lambda_handler as admin
from functions.auth.handler import lambda_handler as auth
from functions.compliance.handler import lambda_handler as compliance
from functions.curriculum.handler import lambda_handler as curriculum
from functions.payments.handler import lambda_handler as payments
from tests.integration.governance_support import (
    SOURCE_IP,
    USER_AGENT,
    Person,
    call,
    error_code,
    fresh_database,
    make_person,
)

ACCEPT = "/api/compliance/accept-consent/"
MINE = "/api/compliance/my-consents/"


@pytest.fixture(scope="module")
def module_url(database_url: str, make_database) -> Iterator[str]:
    with fresh_database(make_database, "apranova_consent") as url:
        yield url


@pytest.fixture(scope="module")
def staff(pg) -> dict[str, Person]:
    return {"admin": make_person(pg, "admin"), "trainer": make_person(pg, "trainer")}


def in_force(pg) -> dict[str, str]:
    return pg.execute(
        "SELECT privacy_version_in_force() AS privacy_version, terms_version_in_force() AS terms_version"
    ).fetchone()


def consents_of(pg, who: Person) -> list[dict[str, Any]]:
    return pg.execute(
        "SELECT id, privacy_policy_version, terms_version, source, host(ip_address) AS ip, user_agent"
        " FROM user_consents WHERE user_id = %s ORDER BY id",
        (who.id,),
    ).fetchall()


def audit_of(pg, action: str, who: Person) -> list[dict[str, Any]]:
    return pg.execute(
        "SELECT actor_id::text AS actor_id, actor_role, subject_id::text AS subject_id, resource_type, resource_id,"
        " details, host(ip_address) AS ip, user_agent, request_id FROM audit_logs"
        " WHERE action = %s AND subject_id = %s ORDER BY id",
        (action, who.id),
    ).fetchall()


def zulu(moment: datetime) -> str:
    """A time as the API writes it."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def next_version(pg, table: str) -> str:
    """One major version above every version of ``table`` (versions compare as numbers)."""
    rows = pg.execute(f"SELECT version FROM {table}").fetchall()  # noqa: S608 - a constant of the test
    return f"{max(int(r['version'].split('.')[0]) for r in rows) + 1}.0"


# --- the documents (public) -------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "kind", "table"), [
    ("/api/compliance/privacy-policy/", "privacy", "privacy_policies"),
    ("/api/compliance/terms/", "terms", "terms_of_service"),
])  # fmt: skip
def test_the_document_in_force_is_public(pg, path, kind, table) -> None:
    status, headers, body = call(compliance, "GET", path)
    assert status == 200, body
    row = pg.execute(
        f"SELECT version, content, summary, effective_at FROM {table} WHERE version = "  # noqa: S608
        + ("privacy_version_in_force()" if kind == "privacy" else "terms_version_in_force()")
    ).fetchone()
    assert body == {
        "kind": kind,
        "version": row["version"],
        "content": row["content"],
        "summary": row["summary"],
        "effective_at": zulu(row["effective_at"]),
        "upcoming": None,
    }
    assert headers["cache-control"] == "public, max-age=60"
    # A signed-in caller reads the same document.
    assert call(compliance, "GET", path, make_person(pg))[2] == body


# --- accepting ------------------------------------------------------------------------------------------


def test_accepting_the_versions_in_force_records_the_consent_and_audits_it(pg) -> None:
    ada = make_person(pg, consent=False)
    versions = in_force(pg)

    status, headers, body = call(compliance, "POST", ACCEPT, ada, versions)

    assert status == 201, body
    assert headers["cache-control"] == "no-store"
    (row,) = consents_of(pg, ada)
    assert (row["privacy_policy_version"], row["terms_version"], row["source"]) == (
        versions["privacy_version"],
        versions["terms_version"],
        "ACCEPT",
    )
    assert (row["ip"], row["user_agent"]) == (SOURCE_IP, USER_AGENT)
    assert body["id"] == row["id"] and body["in_force"] is True and body["source"] == "ACCEPT"
    assert (body["ip_address"], body["user_agent"]) == (SOURCE_IP, USER_AGENT)
    (audit,) = audit_of(pg, "CONSENT_ACCEPTED", ada)
    assert (audit["actor_id"], audit["actor_role"], audit["resource_type"], audit["resource_id"]) == (
        ada.id,
        "student",
        "user_consent",
        str(row["id"]),
    )
    assert audit["details"] == versions
    assert (audit["ip"], audit["user_agent"]) == (SOURCE_IP, USER_AGENT) and audit["request_id"]

    # Accepting the same versions again is idempotent: 200 with the same consent, nothing written.
    status, _, again = call(compliance, "POST", ACCEPT, ada, versions)
    assert status == 200 and again == body
    assert len(consents_of(pg, ada)) == 1 and len(audit_of(pg, "CONSENT_ACCEPTED", ada)) == 1


def test_staff_accept_too_and_a_signup_consent_in_force_is_already_enough(pg, staff) -> None:
    status, _, body = call(compliance, "POST", ACCEPT, staff["trainer"], in_force(pg))
    assert status == 200 and body["source"] == "SIGNUP"  # the trainer's sign-up consent is in force


@pytest.mark.parametrize("versions", [
    {"privacy_version": "0.9", "terms_version": "same"},
    {"privacy_version": "same", "terms_version": "0.9"},
    {"privacy_version": "77.0", "terms_version": "77.0"},
])  # fmt: skip
def test_versions_not_in_force_are_409_with_the_versions_in_force(pg, versions) -> None:
    ada = make_person(pg, consent=False)
    current = in_force(pg)
    body = {k: current[k] if v == "same" else v for k, v in versions.items()}
    status, _, answer = call(compliance, "POST", ACCEPT, ada, body)
    assert status == 409 and error_code(answer) == "consent_outdated", answer
    assert answer["error"]["details"] == [
        {"field": "body.privacy_version", "current": current["privacy_version"]},
        {"field": "body.terms_version", "current": current["terms_version"]},
    ]
    assert consents_of(pg, ada) == [] and audit_of(pg, "CONSENT_ACCEPTED", ada) == []


@pytest.mark.parametrize("body", [
    {},
    {"privacy_version": "1.0"},
    {"privacy_version": "1.0", "terms_version": "v1"},
    {"privacy_version": "1.0", "terms_version": "1.0", "accepted_at": "2020-01-01T00:00:00Z"},
    {"privacy_version": 1, "terms_version": "1.0"},
    ["1.0", "1.0"],
])  # fmt: skip
def test_a_malformed_acceptance_is_422_and_writes_nothing(pg, body) -> None:
    ada = make_person(pg, consent=False)
    status, _, answer = call(compliance, "POST", ACCEPT, ada, body)
    assert status == 422 and error_code(answer) == "validation_error", answer
    assert consents_of(pg, ada) == []


def test_anonymous_callers_are_401(pg) -> None:
    for method, path, body in (("POST", ACCEPT, in_force(pg)), ("GET", MINE, None)):
        status, _, answer = call(compliance, method, path, None, body)
        assert status == 401 and error_code(answer) == "not_authenticated", (path, answer)


def test_a_deleted_account_cannot_accept(pg) -> None:
    ghost = make_person(pg, consent=False)
    pg.execute("UPDATE users SET deleted_at = now() WHERE id = %s", (ghost.id,))
    status, _, answer = call(compliance, "POST", ACCEPT, ghost, in_force(pg))
    # Erasure started: every session of the account ended (the guard), nothing is accepted.
    assert status == 401 and error_code(answer) == "session_ended"
    assert consents_of(pg, ghost) == []


# --- my consents ------------------------------------------------------------------------------------------


def test_my_consents_are_mine_newest_first_in_keyset_pages(pg) -> None:
    ada, bob = make_person(pg, consent=False), make_person(pg)
    versions = in_force(pg)
    base = datetime(2031, 1, 1, tzinfo=UTC)
    for n in range(5):  # two share their time: the id breaks the tie
        pg.execute(
            "INSERT INTO user_consents (user_id, privacy_policy_version, terms_version, source, accepted_at)"
            " VALUES (%s, %s, %s, 'ACCEPT', %s)",
            (ada.id, versions["privacy_version"], versions["terms_version"], base + timedelta(hours=min(n, 3))),
        )
    expected = [
        r["id"]
        for r in pg.execute(
            "SELECT id FROM user_consents WHERE user_id = %s ORDER BY accepted_at DESC, id DESC", (ada.id,)
        )
    ]
    assert len(expected) == 5

    seen: list[int] = []
    cursor = None
    for _ in range(5):
        query = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        status, headers, page = call(compliance, "GET", MINE, ada, query=query)
        assert status == 200 and headers["cache-control"] == "no-store", page
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == expected
    item = call(compliance, "GET", MINE, ada)[2]["items"][0]
    assert set(item) == {
        "id", "privacy_version", "terms_version", "accepted_at", "source", "ip_address", "user_agent", "in_force",
    }  # fmt: skip
    assert item["in_force"] is True
    # Bob sees only his own.
    assert [i["source"] for i in call(compliance, "GET", MINE, bob)[2]["items"]] == ["SIGNUP"]


@pytest.mark.parametrize("query", [{"limit": "0"}, {"limit": "abc"}, {"cursor": "not-a-cursor"},
                                   {"cursor": "WyJ4IiwgInkiXQ"}])  # fmt: skip
def test_bad_paging_is_422(pg, query) -> None:
    status, _, answer = call(compliance, "GET", MINE, make_person(pg), query=query)
    assert status == 422, answer


# --- versions published for later, and the gate they become ----------------------------------------------


def test_a_scheduled_version_changes_nothing_until_its_time_then_gates_payment_and_curriculum(pg, staff) -> None:
    ada = make_person(pg)  # enrolled, project 1 unlocked, consented to the versions in force
    before = in_force(pg)
    version = next_version(pg, "privacy_policies")
    effective_at = datetime.now(UTC) + timedelta(hours=1)
    published = {
        "kind": "privacy",
        "version": version,
        "content": "The new privacy policy.",
        "summary": "Clearer retention periods.",
        "effective_at": effective_at.isoformat(),
    }
    status, _, body = call(admin, "POST", "/api/admin/policies/", staff["admin"], published)
    assert status == 201 and body["in_force"] is False, body

    # Nothing changes for anyone until then; the SPA can warn about the upcoming version.
    assert in_force(pg) == before
    document = call(compliance, "GET", "/api/compliance/privacy-policy/")[2]
    assert document["version"] == before["privacy_version"]
    assert document["upcoming"] == {"version": version, "effective_at": zulu(effective_at)}
    assert call(curriculum, "GET", "/api/curriculum/projects/", ada)[0] == 200
    profile = call(auth, "GET", "/api/auth/user/", ada)[2]
    assert profile["privacy_accepted"] is True and profile["consent"]["current"] is True
    early = call(compliance, "POST", ACCEPT, ada, {**before, "privacy_version": version})
    assert early[0] == 409 and early[2]["error"]["details"][0]["current"] == before["privacy_version"]

    # Its time comes (moved back with SQL rather than waited for).
    pg.execute("UPDATE privacy_policies SET effective_at = now() WHERE version = %s", (version,))
    now_in_force = {**before, "privacy_version": version}
    assert in_force(pg) == now_in_force
    status, _, answer = call(curriculum, "GET", "/api/curriculum/projects/", ada)
    assert status == 403 and error_code(answer) == "consent_required", answer
    assert answer["error"]["details"] == [now_in_force]
    status, _, answer = call(payments, "POST", "/api/payments/create-checkout-session/", ada, {"track": "DP"})
    assert status == 403 and error_code(answer) == "consent_required", answer
    profile = call(auth, "GET", "/api/auth/user/", ada)[2]
    assert profile["privacy_accepted"] is False and profile["consent"]["current"] is False
    assert call(compliance, "GET", "/api/compliance/privacy-policy/")[2]["upcoming"] is None

    # Accepting the new versions opens the gates again.
    status, _, consent = call(compliance, "POST", ACCEPT, ada, now_in_force)
    assert status == 201 and consent["privacy_version"] == version, consent
    assert call(curriculum, "GET", "/api/curriculum/projects/", ada)[0] == 200
    status, _, answer = call(payments, "POST", "/api/payments/create-checkout-session/", ada, {"track": "DP"})
    assert status == 409 and error_code(answer) == "already_enrolled", answer  # past the consent check
    profile = call(auth, "GET", "/api/auth/user/", ada)[2]
    assert profile["consent"] == {"privacy_version": version, "terms_version": before["terms_version"], "current": True}
    history = call(compliance, "GET", MINE, ada)[2]["items"]
    assert [(c["privacy_version"], c["in_force"]) for c in history] == [
        (version, True),
        (before["privacy_version"], False),
    ]


def test_the_version_in_force_is_the_latest_effective_that_has_passed(pg) -> None:
    """The database functions themselves (migration 0010), inside a transaction rolled back."""
    with pg.transaction(force_rollback=True):
        seeded = in_force(pg)["terms_version"]
        add = "INSERT INTO terms_of_service (version, content, effective_at) VALUES (%s, 'text', now() + %s)"
        pg.execute(add, ("70.0", timedelta(days=1)))  # scheduled
        assert in_force(pg)["terms_version"] == seeded
        pg.execute(add, ("60.0", timedelta(0)))  # effective now
        assert in_force(pg)["terms_version"] == "60.0"
        pg.execute(add, ("61.0", timedelta(0)))  # the same instant: the one published last
        assert in_force(pg)["terms_version"] == "61.0"
        pg.execute("UPDATE terms_of_service SET effective_at = now() - interval '1 day' WHERE version = '70.0'")
        assert in_force(pg)["terms_version"] == "61.0"  # effective earlier than 61.0: not the latest


def test_each_environment_of_the_function_serves_its_own_signed_in_caller(pg) -> None:
    """The compliance routes are Powertools Routers, which read request state from the last resolver
    that included them. The local stack runs a second environment as a fresh copy of the handler
    module whose resolver includes the same routers; the first environment must still see its own
    caller (401 here meant the caller was read from the other environment's resolver)."""
    from local.environments import Environments

    environments = Environments()
    handler = "functions.compliance.handler:lambda_handler"
    student = make_person(pg, "student")
    with environments.borrow("compliance", handler) as first, environments.borrow("compliance", handler) as second:
        assert first.module is not second.module  # the copy's resolver included the routers last
        for environment in (first, second):
            status, _, body = call(environment.handler, "GET", MINE, student)
            assert status == 200, body
            assert [c["privacy_version"] for c in body["items"]] == [in_force(pg)["privacy_version"]]
