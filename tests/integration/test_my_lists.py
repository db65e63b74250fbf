"""The reads a web client needs, over real HTTP through the local gateway (payments stack): my
exports and my refund requests (own only, keyset-paged), the admin payment rows with who paid, and
admin lists that refuse a query parameter they do not take (422 naming it) instead of ignoring it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.payments_support import PaymentsStack, start_stack


@pytest.fixture(scope="module")
def stack(database_url: str) -> Iterator[PaymentsStack]:
    yield from start_stack(database_url)


def _paid(stack: PaymentsStack) -> tuple[dict[str, str], str]:
    student = stack.student()
    created = stack.call("POST", "/api/payments/create-checkout-session/", student, json={"track": "DP"})
    assert created.status_code == 201, created.text
    stack.pay(created.json()["session_id"])
    return student, created.json()["payment_id"]


def _walk(stack: PaymentsStack, path: str, who: dict[str, str]) -> list[dict]:
    """Every item of a list, one per page."""
    items, cursor = [], None
    while True:
        answer = stack.call("GET", path, who, params={"limit": 1, **({"cursor": cursor} if cursor else {})})
        assert answer.status_code == 200, answer.text
        page = answer.json()
        assert len(page["items"]) <= 1
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items


def test_my_refund_requests_are_mine_newest_first(stack: PaymentsStack) -> None:
    student, payment_id = _paid(stack)
    older = stack.row(
        "INSERT INTO refund_requests (payment_id, user_id, reason, amount_cents, status, decided_at, decision_reason,"
        " created_at) VALUES (%s, %s, 'First try', 100, 'REJECTED', now() - interval '1 day', 'No',"
        " now() - interval '2 days') RETURNING id::text AS id",
        payment_id,
        student["id"],
    )
    asked = stack.call(
        "POST", "/api/payments/request-refund/", student, json={"payment_id": payment_id, "reason": "Changed my mind"}
    )
    assert asked.status_code == 201, asked.text
    newer = asked.json()

    mine = _walk(stack, "/api/payments/my-refund-requests/", student)
    assert [r["id"] for r in mine] == [newer["id"], older["id"]]
    assert (mine[0]["status"], mine[0]["reason"], mine[0]["payment_id"]) == ("PENDING", "Changed my mind", payment_id)
    assert (mine[1]["status"], mine[1]["decision_reason"]) == ("REJECTED", "No")

    someone_else, _ = _paid(stack)
    answer = stack.call("GET", "/api/payments/my-refund-requests/", someone_else)
    assert answer.json() == {"items": [], "next_cursor": None}
    assert stack.call("GET", "/api/payments/my-refund-requests/").status_code == 401
    assert stack.call("GET", "/api/payments/my-refund-requests/", stack.staff("admin")).status_code == 403
    bad = stack.call("GET", "/api/payments/my-refund-requests/", student, params={"limit": "0"})
    assert bad.status_code == 422


def test_my_exports_are_mine_newest_first_without_links(stack: PaymentsStack) -> None:
    student, other = stack.student(), stack.student()
    made = [
        stack.row(
            "INSERT INTO data_export_requests (user_id, status, s3_key, size_bytes, requested_at, completed_at,"
            " expires_at) VALUES (%s, %s, CASE WHEN %s <> 'PENDING' THEN 'exports/x.zip' END,"
            " CASE WHEN %s <> 'PENDING' THEN 2048 END, now() - make_interval(days => %s),"
            " CASE WHEN %s <> 'PENDING' THEN now() - make_interval(days => %s) END,"
            " CASE WHEN %s <> 'PENDING' THEN now() + make_interval(days => %s) END) RETURNING id::text AS id",
            student["id"], status, status, status, days, status, days, status, expires,
        )["id"]
        for status, days, expires in (("READY", 10, -3), ("READY", 2, 5), ("PENDING", 0, 0))
    ]  # fmt: skip
    stack.row("INSERT INTO data_export_requests (user_id) VALUES (%s) RETURNING id", other["id"])

    mine = _walk(stack, "/api/compliance/exports/", student)
    assert [e["id"] for e in mine] == list(reversed(made))
    # The expired one says so; no item carries a link (an export's own route signs one, audited).
    assert [e["status"] for e in mine] == ["PENDING", "READY", "EXPIRED"]
    assert all(e["download_url"] is None for e in mine)
    assert mine[1]["size_bytes"] == 2048 and mine[1]["expires_at"]
    assert stack.rows("SELECT 1 FROM audit_logs WHERE subject_id = %s AND action = 'DATA_EXPORT'", student["id"]) == []
    assert stack.call("GET", "/api/compliance/exports/").status_code == 401
    forged = stack.call("GET", "/api/compliance/exports/", student, params={"cursor": "bm90LWEta2V5"})
    assert forged.status_code == 422 and forged.json()["error"]["code"] == "invalid_cursor"


def test_admin_payment_rows_say_who_paid(stack: PaymentsStack) -> None:
    student, payment_id = _paid(stack)
    admin = stack.staff("admin")
    listed = stack.call("GET", "/api/admin/payments/", admin, params={"limit": 100}).json()["items"]
    (row,) = [p for p in listed if p["id"] == payment_id]
    assert (row["email"], row["name"], row["user_id"]) == (student["email"], "Ada Student", student["id"])


@pytest.fixture(scope="module")
def admin(stack: PaymentsStack) -> dict[str, str]:
    return stack.staff("admin")


LISTS = ("/api/admin/users/", "/api/admin/submissions/", "/api/admin/audit-logs/", "/api/admin/payments/",
         "/api/admin/refund-requests/")  # fmt: skip


@pytest.mark.parametrize(
    ("path", "unknown"),
    [
        ("/api/admin/users/", "email"),
        ("/api/admin/submissions/", "student"),
        ("/api/admin/audit-logs/", "actor"),
        ("/api/admin/stats/", "limit"),
        ("/api/admin/retention-policies/", "x"),
        ("/api/admin/payments/", "email"),
        ("/api/admin/refund-requests/", "user"),
    ],
)
def test_admin_lists_refuse_unknown_query_parameters(stack: PaymentsStack, admin, path: str, unknown: str) -> None:
    own = {"limit": "5"} if path in LISTS else {}
    answer = stack.call("GET", path, admin, params={unknown: "dana", **own})
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["code"] == "validation_error" and unknown in error["message"]
    assert error["details"] == [
        {"field": f"query.{unknown}", "code": "unknown_parameter", "message": "not a parameter of this route"}
    ]
    # Only the unknown one is refused: the route's own parameters still work.
    assert stack.call("GET", path, admin, params=own).status_code == 200
