"""Policies and consent use cases.

The versions in force are the database's (migration 0010: the latest effective_at that has
passed), so a version an admin publishes for a later date changes nothing until that time.

Accepting is idempotent: when the caller's latest consent already is to the versions in force,
nothing is written (no second row, no audit row) and that consent is returned with 200; otherwise
a new consent row (source ACCEPT, with time, IP and user agent) and its CONSENT_ACCEPTED audit row
are written in one transaction and returned with 201. The consent history is append-only.
"""

from __future__ import annotations

from typing import Any

from apranova import db
from apranova.audit import AuditAction, RequestInfo
from apranova.errors import Conflict, Forbidden, NotFound
from apranova.identity import Caller
from apranova.pagination import Page, build_page, parse_limit, timestamp_id_keyset
from functions.compliance.consent import repository
from functions.compliance.consent.models import ConsentAcceptance

LABEL = {"privacy": "privacy policy", "terms": "terms of service"}


def policy(kind: str) -> dict[str, Any]:
    row = repository.policy(kind)
    if row is None or row["version"] is None:
        raise NotFound(f"No {LABEL[kind]} is in force yet.")
    upcoming = None
    if row["upcoming_version"] is not None:
        upcoming = {"version": row["upcoming_version"], "effective_at": row["upcoming_effective_at"]}
    return {
        "kind": kind,
        "version": row["version"],
        "content": row["content"],
        "summary": row["summary"],
        "effective_at": row["effective_at"],
        "upcoming": upcoming,
    }


def accept(caller: Caller, request: ConsentAcceptance, info: RequestInfo) -> tuple[dict[str, Any], bool]:
    """The consent to the versions in force and whether it was recorded now (False: it already was)."""
    with db.transaction() as cur:
        if not repository.lock_account(cur, caller.user_id):
            raise Forbidden("This account is not available.", code="account_unavailable")
        in_force = repository.versions_in_force(cur)
        if (request.privacy_version, request.terms_version) != (in_force["privacy_version"], in_force["terms_version"]):
            raise Conflict(
                "Only the privacy policy and terms in force can be accepted.",
                code="consent_outdated",
                details=[
                    {"field": "body.privacy_version", "current": in_force["privacy_version"]},
                    {"field": "body.terms_version", "current": in_force["terms_version"]},
                ],
            )
        latest = repository.latest_consent(cur, caller.user_id)
        if latest is not None and latest["in_force"]:
            return latest, False
        consent = repository.insert_consent(
            cur,
            user_id=caller.user_id,
            privacy_version=request.privacy_version,
            terms_version=request.terms_version,
            ip_address=info.ip_address,
            user_agent=(info.user_agent or "")[:1024] or None,
        )
        info.audit(
            cur,
            AuditAction.CONSENT_ACCEPTED,
            actor=caller,
            subject_id=caller.user_id,
            resource_type="user_consent",
            resource_id=str(consent["id"]),
            details={"privacy_version": request.privacy_version, "terms_version": request.terms_version},
        )
    return consent, True


def my_consents(caller: Caller, cursor: str | None, limit: str | None) -> Page[dict[str, Any]]:
    size = parse_limit(limit)
    rows = repository.consents(caller.user_id, timestamp_id_keyset(cursor), size)
    return build_page(rows, size, lambda r: (r["accepted_at"].isoformat(), r["id"]))
