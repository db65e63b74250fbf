"""The register of personal data: every table and column of the application database, and every
other place (S3 prefix, SSM path, Cognito attribute, tool account) that holds data about a person,
with its purpose, legal basis, retention and how the export and the purge treat it.

This module is the register's one source. ``docs/personal-data.md`` is generated from it
(``python -m functions.compliance.register > docs/personal-data.md``; a test fails when the committed
file differs), the export worker reads a person's rows and writes its README from it, and the purge
finds a person's rows through the same selectors. A test compares the tables and columns named here
with the live schema of a migrated database: a new column that is not classified here fails it.

Column categories:
- ``identifier``: names the person or is a key to them (user id, email, name, IP address, user
  agent, a Stripe customer id, a name in another system);
- ``content``: what the person wrote or uploaded, or what others wrote about them (feedback);
- ``about``: facts about the person (statuses, times, amounts): personal data while the row is
  linked to them;
- ``none``: not personal data (catalogue, configuration, bookkeeping).

A selector is a SQL condition on the table (aliased ``t``) with the parameters ``%(user_id)s`` and
``%(email)s`` that selects the rows about one person. A column's ``only_when`` is a condition under
which the export shows its value to that person; otherwise the value belongs to someone else (an
admin's IP address on an audit row about the student) and is exported as null (GDPR Art. 15(4)).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from apranova.vocabulary import user_exports_prefix, user_uploads_prefix


class Category(StrEnum):
    IDENTIFIER = "identifier"
    CONTENT = "content"
    ABOUT = "about"
    NONE = "none"


class Purge(StrEnum):
    """What the purge does with a table's rows about the person."""

    DELETED = "deleted"
    ANONYMISED = "anonymised"  # rows kept, the personal references cleared or made opaque
    KEPT_OPAQUE = "kept with an opaque reference"  # legal retention: user reference -> subject_ref
    REFERENCE_CLEARED = "reference cleared"  # another person's row naming them (reviewer, publisher)
    NOT_PERSONAL = "not personal"


@dataclass(frozen=True)
class Column:
    name: str
    category: Category
    note: str = ""
    # The condition under which the export shows this value to the person (else null: another's data).
    only_when: str = ""
    # What the purge does with this column when it differs from the table's treatment.
    purge: str = ""

    @property
    def personal(self) -> bool:
        return self.category is not Category.NONE


@dataclass(frozen=True)
class Table:
    name: str
    purpose: str
    columns: tuple[Column, ...]
    purge: Purge
    legal_basis: str = ""
    retention: str = ""
    # The data_retention_policies row that governs the table (the retention sweep reads it).
    retention_policy: str | None = None
    # Selects the person's rows (see the module doc); empty for tables without personal data.
    selector: str = ""
    # Why a table with personal data is not exported (empty: it is exported).
    export_excluded: str = ""
    purge_note: str = ""
    order_by: str = ""

    @property
    def personal(self) -> bool:
        return any(column.personal for column in self.columns)

    @property
    def exported(self) -> bool:
        return self.personal and not self.export_excluded

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)


@dataclass(frozen=True)
class Store:
    """Personal data outside the application database."""

    kind: str  # S3 | SSM | Cognito | EFS | PostgreSQL | Tool | Stripe | Step Functions | Logs
    location: str
    holds: str
    purpose: str
    legal_basis: str
    retention: str
    export: str
    purge: str
    # The key in the export's data.json where this store's data is (empty: not in data.json).
    export_key: str = ""


# --- legal bases (GDPR Art. 6) -------------------------------------------------------------------------

CONTRACT = "Contract, Art. 6(1)(b): needed to provide the course the person signed up and paid for."
STAFF = "Contract, Art. 6(1)(b): the trainer's or admin's work on the platform."
TAX = "Legal obligation, Art. 6(1)(c): tax and accounting law requires payment records to be kept."
CONSENT_PROOF = "Legal obligation, Art. 6(1)(c) and 7(1): we must be able to show what was accepted, when."
SECURITY = "Legitimate interests, Art. 6(1)(f): security, fraud prevention and accountability of sensitive actions."
RIGHTS = "Legal obligation, Art. 6(1)(c): answering the person's data-protection requests (Art. 15, 17)."

# --- retention -----------------------------------------------------------------------------------------

WHILE_ACCOUNT = (
    "While the account exists; erased by the purge once a deletion request's grace period (USER_DATA, at most "
    "90 days) ends."
)
PAYMENT_YEARS = "7 years (PAYMENT_DATA, a legal requirement); anonymised by the purge, never deleted early."
# A pay-first checkout never paid (pending, failed, expired) and never linked to an account.
ABANDONED = (
    "a pay-first checkout never paid and never linked to an account, 30 days after its last change "
    "(ABANDONED_CHECKOUTS, not less: a delayed payment can still complete)"
)


def _c(name: str, category: Category = Category.ABOUT, note: str = "", **rest: str) -> Column:
    return Column(name, category, note, **rest)


def _none(*names: str) -> tuple[Column, ...]:
    return tuple(Column(name, Category.NONE) for name in names)


ID, CONTENT, ABOUT = Category.IDENTIFIER, Category.CONTENT, Category.ABOUT

# Rows of payments that are the person's: linked to their account, or a pay-first checkout with their
# email that no account has been linked to yet.
_PAYMENTS_OF = (
    "t.user_id = %(user_id)s OR (t.user_id IS NULL AND t.subject_ref IS NULL AND t.customer_email = %(email)s::citext)"
)
_THEIR_PAYMENT_IDS = "SELECT p.id FROM payments p WHERE p.user_id = %(user_id)s"

TABLES: tuple[Table, ...] = (
    Table(
        "users",
        "The account: who the person is, their role, track, enrollment and provisioning state.",
        (
            _c("id", ID, "The Cognito user's sub."),
            _c("email", ID),
            _c("name", ID),
            _c("role"),
            _c("track_id"),
            _c("enrollment_status"),
            _c("enrollment_payment_id", ID, "The payment the current enrollment came from."),
            _c("email_verified"),
            _c("tools_provisioned"),
            _c("provisioning_status"),
            _c("provisioning_error", CONTENT, "Why provisioning failed (names the person's tool accounts)."),
            _c("provisioned_at"),
            _c("enrolled_at"),
            _c("completed_at"),
            _c("last_login_at"),
            _c(
                "sessions_valid_after",
                ABOUT,
                "When the person's sessions last ended (logout, password change, role change, ...): "
                "access tokens issued before are refused.",
            ),
            _c("is_active"),
            _c("deleted_at"),
            _c("created_at"),
            _c("updated_at"),
            _c("has_trainer", ABOUT, "Whether the person has an assigned trainer (kept from trainer_assignments)."),
        ),
        Purge.DELETED,
        legal_basis=CONTRACT,
        retention=WHILE_ACCOUNT,
        retention_policy="USER_DATA",
        selector="t.id = %(user_id)s",
        purge_note="Deleted last: the user id itself is personal data. Foreign keys cascade into the person's own "
        "rows and clear references to them in other people's rows.",
        order_by="t.id",
    ),
    Table(
        "user_consents",
        "Each acceptance of the privacy policy and terms: versions, time, IP address and user agent.",
        (
            _c("id", Category.NONE),
            _c("user_id", ID),
            _c("payment_id", ID, "The pay-first checkout the consent was given in."),
            _c("privacy_policy_version"),
            _c("terms_version"),
            _c("accepted_at"),
            _c("ip_address", ID),
            _c("user_agent", ID),
            _c("source"),
        ),
        Purge.DELETED,
        legal_basis=CONSENT_PROOF,
        retention=f"{WHILE_ACCOUNT} The consent given in {ABANDONED}: deleted by the retention sweep.",
        retention_policy="USER_DATA",
        selector=f"t.user_id = %(user_id)s OR t.payment_id IN ({_THEIR_PAYMENT_IDS})",
        order_by="t.accepted_at, t.id",
    ),
    Table(
        "payments",
        "Payments for a track: amount, status, Stripe references, refunds and disputes.",
        (
            _c("id", Category.NONE),
            _c("user_id", ID, purge="replaced by subject_ref (set to null)"),
            _c("subject_ref", ID, "The opaque reference that replaces the person after the purge."),
            _c(
                "customer_email",
                ID,
                "Pay-first checkout: the email given to Stripe (cleared by the retention sweep once abandoned).",
                purge="cleared",
            ),
            _c(
                "customer_name",
                ID,
                "Pay-first checkout: the name given to Stripe (cleared by the retention sweep once abandoned).",
                purge="cleared",
            ),
            _c("track"),
            _c("amount_cents"),
            _c("currency"),
            _c("status"),
            _c("kind"),
            _c("stripe_checkout_session_id", ID, "Stripe's reference (pseudonymous).", purge="kept: financial record"),
            _c("stripe_payment_intent_id", ID, "Stripe's reference (pseudonymous).", purge="kept: financial record"),
            _c("stripe_customer_id", ID, "Stripe's customer (pseudonymous).", purge="kept: financial record"),
            _c("stripe_charge_id", ID, "Stripe's reference (pseudonymous).", purge="kept: financial record"),
            _c("refunded_amount_cents"),
            _c("disputed"),
            _c("dispute_status"),
            _c("failure_message"),
            _c("idempotency_key"),
            _c("created_at"),
            _c("updated_at"),
            _c("succeeded_at"),
            _c("refunded_at"),
            _c("account_created"),
            _c("enrollment_execution", ABOUT, "The workflow execution the payment started."),
        ),
        Purge.KEPT_OPAQUE,
        legal_basis=TAX,
        retention=f"{PAYMENT_YEARS} The buyer's email and name on {ABANDONED}: cleared by the retention sweep "
        "(the row stays; a payment that succeeded, was refunded or disputed keeps them until it is linked or the "
        "person purged).",
        retention_policy="PAYMENT_DATA",
        selector=_PAYMENTS_OF,
        purge_note="Rows are never deleted (a trigger forbids it): user_id becomes null and subject_ref an opaque "
        "reference shared with the person's deletion request; customer email and name are cleared.",
        order_by="t.created_at, t.id",
    ),
    Table(
        "refund_requests",
        "Refund requests on a payment and the admin's decision.",
        (
            _c("id", Category.NONE),
            _c("payment_id", ID),
            _c("user_id", ID, purge="cleared (the payment keeps the opaque reference)"),
            _c("reason", CONTENT, "The person's reason.", only_when="t.user_id = %(user_id)s", purge="cleared"),
            _c("amount_cents"),
            _c("status"),
            _c("decided_by", ID, "The deciding admin.", purge="cleared when that admin is purged"),
            _c("decided_at"),
            _c("decision_reason", CONTENT),
            _c("stripe_refund_id", ID, "Stripe's reference (pseudonymous).", purge="kept: financial record"),
            _c("failure_message"),
            _c("created_at"),
            _c("updated_at"),
        ),
        Purge.KEPT_OPAQUE,
        legal_basis=TAX,
        retention=PAYMENT_YEARS,
        retention_policy="PAYMENT_DATA",
        selector=f"t.user_id = %(user_id)s OR t.decided_by = %(user_id)s OR t.payment_id IN ({_THEIR_PAYMENT_IDS})",
        purge_note="Financial records: kept with the payment; the person's user id and free-text reason are cleared.",
        order_by="t.created_at, t.id",
    ),
    Table(
        "stripe_events",
        "The Stripe webhook events processed for a payment (no payload is stored).",
        (
            _c("event_id", Category.NONE),
            _c("type", Category.NONE),
            _c("stripe_created_at", Category.NONE),
            _c("received_at", Category.NONE),
            _c("processed_at", Category.NONE),
            _c("payment_id", ID, "Links the event to the person's payment."),
            _c("outcome", Category.NONE),
        ),
        Purge.KEPT_OPAQUE,
        legal_basis=TAX,
        retention="90 days (LOGS).",
        retention_policy="LOGS",
        selector=f"t.payment_id IN ({_THEIR_PAYMENT_IDS})",
        purge_note="Kept: they point at the payment, which the purge anonymises; the retention sweep deletes them.",
        order_by="t.received_at, t.event_id",
    ),
    Table(
        "payment_outbox",
        "What a payment change calls for outside the database (start a workflow, refund, expire a checkout), "
        "carried out after the change commits; ids only.",
        (
            _c("id", Category.NONE),
            _c("key", Category.NONE),
            _c("action", Category.NONE),
            _c("payment_id", ID, "Links the action to the person's payment."),
            _c("target", Category.NONE, "A Stripe Checkout Session id to expire."),
            _c("reason", Category.NONE),
            _c("created_at", Category.NONE),
            _c("attempts", Category.NONE),
            _c("last_error", Category.NONE),
            _c("done_at", Category.NONE),
        ),
        Purge.KEPT_OPAQUE,
        legal_basis=TAX,
        retention=PAYMENT_YEARS,
        selector=f"t.payment_id IN ({_THEIR_PAYMENT_IDS})",
        purge_note="Kept: they point at the payment, which the purge anonymises.",
        order_by="t.created_at, t.id",
    ),
    Table(
        "stripe_customers",
        "The person's customer record at Stripe (its id).",
        (
            _c("id", Category.NONE),
            _c("user_id", ID),
            _c("stripe_customer_id", ID, "Stripe's customer (pseudonymous)."),
            _c("created_at"),
            _c("updated_at"),
        ),
        Purge.DELETED,
        legal_basis=CONTRACT,
        retention=WHILE_ACCOUNT,
        retention_policy="USER_DATA",
        selector="t.user_id = %(user_id)s",
        purge_note="Deleted (cascade from users); the payments keep their own Stripe customer id as financial record.",
        order_by="t.id",
    ),
    Table(
        "privacy_policies",
        "Published privacy policy versions.",
        (
            *_none("id", "version", "content", "summary", "effective_at", "is_active"),
            _c("published_by", ID, "The admin who published the version."),
            *_none("created_at", "updated_at"),
        ),
        Purge.REFERENCE_CLEARED,
        legal_basis=STAFF,
        retention="Forever (the texts people accepted); the publisher reference while their account exists.",
        selector="t.published_by = %(user_id)s",
        purge_note="published_by is set to null when the publishing admin is purged.",
        order_by="t.id",
    ),
    Table(
        "terms_of_service",
        "Published terms of service versions.",
        (
            *_none("id", "version", "content", "summary", "effective_at", "is_active"),
            _c("published_by", ID, "The admin who published the version."),
            *_none("created_at", "updated_at"),
        ),
        Purge.REFERENCE_CLEARED,
        legal_basis=STAFF,
        retention="Forever (the texts people accepted); the publisher reference while their account exists.",
        selector="t.published_by = %(user_id)s",
        purge_note="published_by is set to null when the publishing admin is purged.",
        order_by="t.id",
    ),
    Table(
        "audit_logs",
        "The append-only trail of sensitive actions by or about the person.",
        (
            _c("id", Category.NONE),
            _c("occurred_at"),
            _c("action"),
            _c("actor_id", ID, purge="cleared"),
            _c("actor_role"),
            _c("subject_id", ID, purge="cleared"),
            _c("resource_type"),
            _c("resource_id", ID, "May be the person's user id or the id of their row.", purge="cleared"),
            _c(
                "details",
                CONTENT,
                "Ids and states of the action; never a secret.",
                purge="cleared on rows about the person; where they only acted on someone else (a review, a role "
                "change), their id, email and name inside are replaced with [erased] and the other person's "
                "facts stay",
            ),
            _c("ip_address", ID, only_when="t.actor_id = %(user_id)s", purge="cleared"),
            _c("user_agent", ID, only_when="t.actor_id = %(user_id)s", purge="cleared"),
            _c("request_id", Category.NONE),
        ),
        Purge.ANONYMISED,
        legal_basis=SECURITY,
        retention="365 days (AUDIT_LOGS), then deleted by the retention sweep; rows about payments and refunds "
        "are kept as long as the payment records (PAYMENT_DATA, a legal requirement). The IP address and user "
        f"agent on the rows of {ABANDONED}: cleared by the retention sweep.",
        retention_policy="AUDIT_LOGS",
        selector="t.actor_id = %(user_id)s OR t.subject_id = %(user_id)s",
        purge_note="Kept for the rest of their period with every personal reference cleared (the trigger lets only "
        "the purge and the sweep do it); the ACCOUNT_PURGED row names only the opaque reference.",
        order_by="t.occurred_at, t.id",
    ),
    Table(
        "data_retention_policies",
        "How long each kind of data is kept.",
        _none(
            "id",
            "resource_type",
            "retention_days",
            "legal_minimum_days",
            "description",
            "is_active",
            "legal_requirement",
            "created_at",
            "updated_at",
        ),
        Purge.NOT_PERSONAL,
    ),
    Table(
        "data_export_requests",
        "The person's requests for a copy of their data, and where the archive is.",
        (
            _c("id", Category.NONE),
            _c("user_id", ID),
            _c("status"),
            _c("s3_key", ID, "Contains the user id."),
            _c("size_bytes"),
            _c("error"),
            _c("requested_at"),
            _c("completed_at"),
            _c("expires_at"),
            _c("build_lease_until", Category.NONE, "While a worker builds the archive."),
            _c("created_at"),
            _c("updated_at"),
        ),
        Purge.DELETED,
        legal_basis=RIGHTS,
        retention="The archive 7 days after it is ready (EXPORTS); the request row 7 days after it has ended "
        "(EXPIRED or FAILED), else while the account exists.",
        retention_policy="EXPORTS",
        selector="t.user_id = %(user_id)s",
        order_by="t.requested_at, t.id",
    ),
    Table(
        "deletion_requests",
        "The person's account deletion request, its grace period and the purge's progress.",
        (
            _c("id", Category.NONE),
            _c("user_id", ID, purge="set to null when the user row is deleted"),
            _c("subject_ref", ID, "The opaque reference shared with the anonymised payments."),
            _c("status"),
            _c("reason", CONTENT, "The person's reason.", purge="cleared"),
            _c("requested_at"),
            _c("scheduled_for"),
            _c("cancelled_at"),
            _c("started_at"),
            _c("completed_at"),
            _c("completed_steps", Category.NONE),
            _c("attempts", Category.NONE),
            _c("last_error", Category.NONE),
            _c("purge_lease_until", Category.NONE, "While a purge run works on the request."),
            _c("created_at"),
            _c("updated_at"),
        ),
        Purge.ANONYMISED,
        legal_basis=RIGHTS,
        retention="A completed request is kept, with only the opaque reference, as proof that the erasure was "
        "done; a cancelled one is deleted 365 days after the cancel (AUDIT_LOGS).",
        selector="t.user_id = %(user_id)s",
        order_by="t.requested_at, t.id",
    ),
    Table(
        "student_database_credentials",
        "The DP student's own schema and login role in the students' database, and the SSM parameter NAME "
        "of its password (the password itself is only in SSM).",
        (
            _c("user_id", ID),
            _c("database_name", Category.NONE),
            _c("schema_name", ID, "Derived from the user id."),
            _c("role_name", ID, "Derived from the user id."),
            _c("password_parameter_name", ID, "An SSM parameter name, never the password."),
            _c("created_at"),
            _c("updated_at"),
        ),
        Purge.DELETED,
        legal_basis=CONTRACT,
        retention=WHILE_ACCOUNT,
        retention_policy="USER_DATA",
        selector="t.user_id = %(user_id)s",
        purge_note="Deleted after the deprovision workflow dropped the role and schema.",
        order_by="t.user_id",
    ),
    Table(
        "tool_provisioning",
        "One record per tool provisioned for the person (database, Superset, Prefect, JupyterHub, workspace).",
        (
            _c("user_id", ID),
            _c("tool"),
            _c("status"),
            _c("external_id", ID, "The person's id in the tool (user id, access point, task)."),
            _c("access_url", ID),
            _c("details", ID, "Tool-specific names of the person's accounts."),
            _c("error", CONTENT, "Why the last attempt failed."),
            _c("attempts"),
            _c("provisioned_at"),
            _c("deprovisioned_at"),
            _c("last_activity_at"),
            _c("payment_id", ID, "The payment whose enrollment provisioned the tool."),
            _c("created_at"),
            _c("updated_at"),
        ),
        Purge.DELETED,
        legal_basis=CONTRACT,
        retention=WHILE_ACCOUNT,
        retention_policy="USER_DATA",
        selector="t.user_id = %(user_id)s",
        order_by="t.tool",
    ),
    Table(
        "trainer_profiles",
        "A trainer's capacity and whether they take new students.",
        (_c("user_id", ID), _c("max_students"), _c("accepting_students"), _c("created_at"), _c("updated_at")),
        Purge.DELETED,
        legal_basis=STAFF,
        retention=WHILE_ACCOUNT,
        retention_policy="USER_DATA",
        selector="t.user_id = %(user_id)s",
        order_by="t.user_id",
    ),
    Table(
        "trainer_assignments",
        "Which trainer a student is assigned to, and by whom.",
        (
            _c("student_id", ID),
            _c("trainer_id", ID),
            _c("track"),
            _c("assigned_at"),
            _c("assigned_by", ID, "The admin who assigned.", purge="cleared when that admin is purged"),
        ),
        Purge.DELETED,
        legal_basis=CONTRACT,
        retention=WHILE_ACCOUNT,
        retention_policy="USER_DATA",
        selector="t.student_id = %(user_id)s OR t.trainer_id = %(user_id)s OR t.assigned_by = %(user_id)s",
        purge_note="Deleted (cascade) when the student or the trainer is purged.",
        order_by="t.assigned_at, t.student_id",
    ),
    Table(
        "student_progress",
        "The student's status in each unlocked project.",
        (
            _c("student_id", ID),
            _c("project_id"),
            _c("status"),
            _c("unlocked_at"),
            _c("started_at"),
            _c("submitted_at"),
            _c("approved_at"),
            _c("created_at"),
            _c("updated_at"),
        ),
        Purge.DELETED,
        legal_basis=CONTRACT,
        retention=WHILE_ACCOUNT,
        retention_policy="USER_DATA",
        selector="t.student_id = %(user_id)s",
        order_by="t.project_id",
    ),
    Table(
        "step_completions",
        "The steps the student marked done.",
        (_c("student_id", ID), _c("project_id"), _c("step_id"), _c("completed_at")),
        Purge.DELETED,
        legal_basis=CONTRACT,
        retention=WHILE_ACCOUNT,
        retention_policy="USER_DATA",
        selector="t.student_id = %(user_id)s",
        order_by="t.project_id, t.step_id",
    ),
    Table(
        "progress_high_water",
        "The most required steps of a track the student ever had completed at once (refund eligibility).",
        (_c("student_id", ID), _c("track"), _c("completed_steps"), _c("updated_at")),
        Purge.DELETED,
        legal_basis=CONTRACT,
        retention=WHILE_ACCOUNT,
        retention_policy="USER_DATA",
        selector="t.student_id = %(user_id)s",
        order_by="t.track",
    ),
    Table(
        "submissions",
        "The student's submitted work (links, commits, text, uploaded files) and the trainer's review of it; "
        "for a trainer, the reviews they made.",
        (
            _c("id", Category.NONE),
            _c("student_id", ID),
            _c("project_id"),
            _c("deliverable_id"),
            _c("attempt"),
            _c("submission_url", CONTENT, only_when="t.student_id = %(user_id)s"),
            _c("commit_sha", CONTENT, only_when="t.student_id = %(user_id)s"),
            _c("submission_text", CONTENT, only_when="t.student_id = %(user_id)s"),
            _c(
                "file_key",
                CONTENT,
                "The uploaded file's S3 key (contains the user id).",
                only_when="t.student_id = %(user_id)s",
            ),
            _c("file_size", ABOUT, only_when="t.student_id = %(user_id)s"),
            _c("file_content_type", ABOUT, only_when="t.student_id = %(user_id)s"),
            _c("status"),
            _c("feedback", CONTENT, "The trainer's feedback on the student's work."),
            _c("reviewed_by", ID, "The reviewing trainer.", purge="cleared when that trainer is purged"),
            _c("reviewed_at"),
            _c("submitted_at"),
            _c("updated_at"),
            _c(
                "trainer_id",
                ID,
                "The student's assigned trainer, copied from trainer_assignments for the review queue.",
                purge="cleared when the assignment ends (the trainer is purged or reassigned)",
            ),
        ),
        Purge.DELETED,
        legal_basis=CONTRACT,
        retention=WHILE_ACCOUNT + " Uploaded files: SUBMISSIONS (730 days).",
        retention_policy="SUBMISSIONS",
        selector="t.student_id = %(user_id)s OR t.reviewed_by = %(user_id)s",
        order_by="t.submitted_at, t.id",
    ),
    Table(
        "tracks",
        "The catalogue: tracks and their prices.",
        _none(
            "id",
            "code",
            "name",
            "description",
            "icon",
            "duration_weeks",
            "price_cents",
            "currency",
            "is_active",
            "created_at",
            "updated_at",
        ),
        Purge.NOT_PERSONAL,
    ),
    Table(
        "projects",
        "The catalogue: each track's projects.",
        _none(
            "id",
            "track_id",
            "number",
            "title",
            "subtitle",
            "description",
            "project_type",
            "tech_stack",
            "tools",
            "estimated_hours",
            "dataset_key",
            "github_template_repo",
            "is_active",
            "created_at",
            "updated_at",
        ),
        Purge.NOT_PERSONAL,
    ),
    Table(
        "project_steps",
        "The catalogue: each project's steps.",
        _none(
            "id",
            "project_id",
            "number",
            "title",
            "description",
            "estimated_minutes",
            "is_optional",
            "resources",
            "is_active",
            "created_at",
            "updated_at",
        ),
        Purge.NOT_PERSONAL,
    ),
    Table(
        "deliverables",
        "The catalogue: each project's deliverables and their upload limits.",
        _none(
            "id",
            "project_id",
            "number",
            "title",
            "description",
            "deliverable_type",
            "is_required",
            "accepted_content_types",
            "max_file_bytes",
            "is_active",
            "created_at",
            "updated_at",
        ),
        Purge.NOT_PERSONAL,
    ),
    Table(
        "schema_migrations",
        "Which migrations ran (bookkeeping of the schema).",
        _none("name", "checksum", "applied_at"),
        Purge.NOT_PERSONAL,
    ),
    # The admin's daily rollups (migration 0020): counts and sums per day and key, kept by triggers
    # from the rows above; a purged person's rows leave them as their rows are deleted.
    Table(
        "stats_revenue_daily",
        "Paid payments per day, track and currency, in shards: how many, and their amounts (the admin's charts).",
        _none("day", "track", "currency", "shard", "payments", "gross_cents", "refunded_cents"),
        Purge.NOT_PERSONAL,
    ),
    Table(
        "stats_enrollments_daily",
        "Students enrolled per day and track (the admin's charts).",
        _none("day", "track_id", "shard", "enrollments"),
        Purge.NOT_PERSONAL,
    ),
    Table(
        "stats_provisioning_daily",
        "Tool records per day of their last change, tool and status (the admin's charts).",
        _none("day", "tool", "status", "shard", "count"),
        Purge.NOT_PERSONAL,
    ),
    Table(
        "stats_refunds_daily",
        "Refund requests per day and currency, by status, and their amounts (the admin's charts).",
        _none(
            "day",
            "currency",
            "shard",
            "requested",
            "approved",
            "rejected",
            "pending",
            "failed",
            "requested_cents",
            "approved_cents",
        ),
        Purge.NOT_PERSONAL,
    ),
    # Migration 0021: duration histograms and student counters, kept the same way.
    Table(
        "stats_submission_hist",
        "Submissions per day, week or all time, status and duration bin: review turnaround and "
        "waiting time (the admin's charts).",
        _none("series", "grain", "period", "status", "bin", "count"),
        Purge.NOT_PERSONAL,
    ),
    Table(
        "stats_students",
        "Students per track and enrollment status, in shards (the admin's totals).",
        _none("track_id", "status", "shard", "count"),
        Purge.NOT_PERSONAL,
    ),
)

TABLES_BY_NAME: dict[str, Table] = {table.name: table for table in TABLES}


def table(name: str) -> Table:
    return TABLES_BY_NAME[name]


def exported_tables() -> tuple[Table, ...]:
    return tuple(t for t in TABLES if t.exported)


# --- outside the application database --------------------------------------------------------------------

STUDENT_PARAMETERS = "{ssm_prefix}/students/{user_id}/"


def uploads_prefix(user_id: str) -> str:
    """Where the person's uploaded files are in the uploads bucket."""
    return user_uploads_prefix(user_id)


def exports_prefix(user_id: str) -> str:
    """Where the person's export archives are in the exports bucket."""
    return user_exports_prefix(user_id)


def export_key(user_id: str, export_id: str) -> str:
    return f"{exports_prefix(user_id)}{export_id}.zip"


def student_parameters_path(ssm_prefix: str, user_id: str) -> str:
    """The SSM path under which every secret of the person's tools is (get_parameters_by_path)."""
    return STUDENT_PARAMETERS.format(ssm_prefix=ssm_prefix.rstrip("/"), user_id=user_id)


_COGNITO_EXPORT = "Included: data.json `cognito`."
_COGNITO_PURGE = "Deleted with the Cognito user (admin_delete_user)."

STORES: tuple[Store, ...] = (
    Store(
        "S3",
        "uploads bucket, `submissions/<user_id>/<deliverable_id>/<uuid>/<file name>`",
        "The files the student uploaded as deliverables (also uploads never submitted).",
        "Review of the student's work.",
        CONTRACT,
        "While the account exists, at most 730 days (SUBMISSIONS); versions of deleted objects expire in 30 days.",
        "Included: `files/` in the archive, listed in data.json `files`.",
        "Deleted (every version).",
        export_key="files",
    ),
    Store(
        "S3",
        "exports bucket, `exports/<user_id>/<export_id>.zip` (KMS-encrypted)",
        "The archives of the person's data exports.",
        "The right of access (Art. 15).",
        RIGHTS,
        "7 days after it is ready (EXPORTS), then deleted by the retention sweep.",
        "Excluded: an archive of earlier exports would only repeat this one; data.json `data_export_requests` "
        "lists them.",
        "Deleted.",
    ),
    Store(
        "SSM",
        "`<ssm prefix>/students/<user_id>/` (db-password, superset-password, workspace-password: SecureString)",
        "The passwords of the student's tool accounts.",
        "The student signs in to their tools.",
        CONTRACT,
        WHILE_ACCOUNT,
        "Excluded: secrets are never exported; the parameter names are (data.json "
        "`student_database_credentials`), and the student sees the passwords through the tools routes.",
        "Deleted.",
    ),
    Store(
        "Cognito",
        "user pool attribute `sub`",
        "The user's id (also users.id).",
        "Identity.",
        CONTRACT,
        WHILE_ACCOUNT,
        _COGNITO_EXPORT,
        _COGNITO_PURGE,
        export_key="cognito",
    ),
    Store(
        "Cognito",
        "user pool attributes `email`, `email_verified`",
        "The sign-in email and whether it was verified.",
        "Signing in, account emails.",
        CONTRACT,
        WHILE_ACCOUNT,
        _COGNITO_EXPORT,
        _COGNITO_PURGE,
        export_key="cognito",
    ),
    Store(
        "Cognito",
        "user pool attribute `name`",
        "The person's name.",
        "Addressing the person.",
        CONTRACT,
        WHILE_ACCOUNT,
        _COGNITO_EXPORT,
        _COGNITO_PURGE,
        export_key="cognito",
    ),
    Store(
        "Cognito",
        "user status, enabled flag, creation and modification times, MFA settings",
        "The account's state at Cognito.",
        "Signing in.",
        CONTRACT,
        WHILE_ACCOUNT,
        _COGNITO_EXPORT,
        _COGNITO_PURGE,
        export_key="cognito",
    ),
    Store(
        "Cognito",
        "group membership (`students`, `trainers`, `admins`)",
        "The person's role.",
        "Access control.",
        CONTRACT,
        WHILE_ACCOUNT,
        _COGNITO_EXPORT,
        _COGNITO_PURGE,
        export_key="cognito",
    ),
    Store(
        "Cognito",
        "password verifier, refresh tokens, devices",
        "Cognito's own credentials of the account.",
        "Signing in.",
        CONTRACT,
        WHILE_ACCOUNT,
        "Excluded: secrets are never exported (and Cognito does not reveal them).",
        _COGNITO_PURGE,
    ),
    Store(
        "PostgreSQL",
        "students' database: schema and login role `s_<hash of user id>`",
        "The DP student's own tables and data.",
        "The student's exercises.",
        CONTRACT,
        WHILE_ACCOUNT,
        "Excluded: the student has direct access with their credentials and can dump it themselves (pg_dump).",
        "Dropped by the deprovision workflow (DROP OWNED BY, DROP ROLE); the purge checks they are gone.",
    ),
    Store(
        "EFS",
        "workspace access point, directory `/students/<user_id>`",
        "The FSD student's files in their browser workspace.",
        "The student's exercises.",
        CONTRACT,
        WHILE_ACCOUNT,
        "Excluded: the student downloads them from their workspace (code-server) at any time.",
        "Deleted by the deprovision workflow (access point and directory).",
    ),
    Store(
        "Tool",
        "Superset user `student_<hash of user id>` (with the person's email), JupyterHub user (the user id), "
        "Prefect work pool `student-<hash of user id>`",
        "The student's accounts (and work pool) in the shared tools.",
        "The student signs in to their tools.",
        CONTRACT,
        WHILE_ACCOUNT,
        "Included as references: data.json `tool_provisioning` (ids and names in each tool); what the student "
        "made in a tool is theirs to download there.",
        "Deleted by the deprovision workflow.",
    ),
    Store(
        "Stripe",
        "Stripe customer (`stripe_customers.stripe_customer_id`), Checkout Session and PaymentIntent metadata",
        "The customer's email and name with our user id in its metadata (a pay-first checkout: the email typed "
        "there); the user id in each payment's metadata. Card details are Stripe's alone.",
        "Taking payments and refunds: Stripe is our payment processor.",
        CONTRACT,
        "Kept by Stripe under its own obligations as a payment institution; we do not delete it.",
        "Excluded: held by Stripe; data.json `payments` and `stripe_customers` give its references.",
        "Not erased by the purge (docs/decisions.md, Issue 7: erasure): Stripe keeps its own financial records; "
        "our payments keep only the opaque reference and Stripe's ids.",
    ),
    Store(
        "Step Functions",
        "execution input and history of the `enrollment` and `deprovision` state machines",
        "The user id, track and payment id each execution started with, and the errors of failed steps.",
        "Enrolling the student and provisioning or taking back their tools.",
        CONTRACT,
        "90 days after the execution ends (the service's retention of a Standard workflow's history).",
        "Excluded: operational records of each run; data.json `payments` (`enrollment_execution`) and "
        "`audit_logs` record the runs.",
        "Not erased by the purge: the history expires with the service's retention (90 days).",
    ),
    Store(
        "Logs",
        "CloudWatch Logs of the functions",
        "Request ids, user ids of callers; never emails, passwords, tokens or card data.",
        "Operating and securing the service.",
        SECURITY,
        "90 days (LOGS), by the log groups' retention.",
        "Excluded: operational logs keyed by request, not by person; the audit trail (exported) records the "
        "person's sensitive actions.",
        "Expire with the log groups' retention.",
    ),
)


# --- the markdown ----------------------------------------------------------------------------------------


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown() -> str:
    """docs/personal-data.md, generated (see the module doc)."""
    lines = [
        "# Register of personal data",
        "",
        "<!-- Generated from functions/compliance/register.py: edit that module, then run",
        "     `python -m functions.compliance.register > docs/personal-data.md`. A test fails when they differ,",
        "     and another when the live schema has a column this register does not classify. -->",
        "",
        "Every table and column of the application database, and every other place that holds data about a",
        "person, with why we hold it, on what legal basis, for how long, and what the data export (right of",
        "access) and the purge after an account deletion (right to erasure) do with it.",
        "",
        "Column categories: **identifier** (names the person or is a key to them), **content** (what the",
        "person wrote or uploaded, or what others wrote about them), **about** (facts about the person,",
        "personal while linked to them), **none** (not personal data).",
        "",
        "## Summary",
        "",
        "| Table | Personal data | Export | Purge |",
        "|---|---|---|---|",
    ]
    for t in TABLES:
        export = "included" if t.exported else ("excluded" if t.personal else "-")
        lines.append(f"| `{t.name}` | {'yes' if t.personal else 'no'} | {export} | {t.purge.value} |")
    lines += ["", "## Tables with personal data", ""]
    for t in TABLES:
        if not t.personal:
            continue
        lines += [
            f"### `{t.name}`",
            "",
            f"- Purpose: {t.purpose}",
            f"- Legal basis: {t.legal_basis}",
            f"- Retention: {t.retention}"
            + (f" Retention policy: `{t.retention_policy}`." if t.retention_policy else ""),
            f"- The person's rows: `{t.selector}`",
            "- Export: "
            + (f"excluded: {t.export_excluded}" if t.export_excluded else f"included (data.json `{t.name}`)"),
            f"- Purge: {t.purge.value}" + (f". {t.purge_note}" if t.purge_note else ""),
            "",
            "| Column | Category | Notes | Purge |",
            "|---|---|---|---|",
        ]
        for column in t.columns:
            notes = column.note
            if column.only_when:
                notes = (notes + " " if notes else "") + f"Exported only when `{column.only_when}` (else null)."
            lines.append(
                f"| `{column.name}` | {column.category.value} | {_cell(notes)} | {_cell(column.purge or '')} |"
            )
        lines.append("")
    lines += ["## Tables without personal data", ""]
    for t in TABLES:
        if t.personal:
            continue
        lines += [f"- `{t.name}`: {t.purpose} Columns: {', '.join(f'`{c}`' for c in t.column_names)}."]
    lines += [
        "",
        "## Outside the application database",
        "",
        "| Kind | Where | What | Purpose | Legal basis | Retention | Export | Purge |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in STORES:
        cells = (s.kind, s.location, s.holds, s.purpose, s.legal_basis, s.retention, s.export, s.purge)
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown(), end="")
