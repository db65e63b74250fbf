"""The words more than one domain uses: the statuses the database's CHECK constraints allow, the
roles, the deliverable types, where people's files live in S3 (also read by CDK for the buckets'
grants and lifecycle), and the consent rule. One definition each, so the API models, the services
and the infrastructure cannot drift apart.
"""

from __future__ import annotations

from typing import Literal, get_args

Role = Literal["student", "trainer", "admin"]
# users.enrollment_status (migrations/0001_initial.sql)
EnrollmentStatus = Literal["PENDING_PAYMENT", "ENROLLED", "COMPLETED", "REFUNDED", "SUSPENDED"]
# A learner: the statuses that open the curriculum (apranova/learning.py).
LearningStatus = Literal["ENROLLED", "COMPLETED"]
# payments.status
PaymentStatus = Literal["PENDING", "SUCCEEDED", "FAILED", "EXPIRED", "REFUNDED", "PARTIALLY_REFUNDED", "DISPUTED"]
# refund_requests.status
RefundRequestStatus = Literal["PENDING", "APPROVED", "REJECTED", "FAILED"]
# submissions.status
SubmissionStatus = Literal["PENDING", "APPROVED", "CHANGES_REQUESTED", "SUPERSEDED"]
# A trainer's decision on a submission, and the status it leaves.
ReviewedStatus = Literal["APPROVED", "CHANGES_REQUESTED"]
# student_progress.status, as the database holds it and as the API shows it (lower case).
ProgressStatus = Literal["LOCKED", "UNLOCKED", "IN_PROGRESS", "SUBMITTED", "CHANGES_REQUESTED", "APPROVED"]
ProjectStatus = Literal["locked", "unlocked", "in_progress", "submitted", "changes_requested", "approved"]
DeliverableType = Literal["LINK", "GITHUB", "FILE", "TEXT"]
# data_export_requests.status
ExportStatus = Literal["PENDING", "READY", "FAILED", "EXPIRED"]

ENROLLMENT_STATUSES: tuple[str, ...] = get_args(EnrollmentStatus)
LEARNING_STATUSES: tuple[str, ...] = get_args(LearningStatus)
SUBMISSION_STATUSES: tuple[str, ...] = get_args(SubmissionStatus)

# --- where people's files live (one prefix per person, so an erasure deletes a prefix) ----------------

SUBMISSIONS_PREFIX = "submissions/"  # the uploads bucket: submissions/<user>/<deliverable>/<file>
EXPORTS_PREFIX = "exports/"  # the exports bucket: exports/<user>/<request>.zip


def user_uploads_prefix(user_id: str) -> str:
    return f"{SUBMISSIONS_PREFIX}{user_id}/"


def deliverable_uploads_prefix(user_id: str, deliverable_id: int | str) -> str:
    return f"{SUBMISSIONS_PREFIX}{user_id}/{deliverable_id}/"


def user_exports_prefix(user_id: str) -> str:
    return f"{EXPORTS_PREFIX}{user_id}/"


# --- the consent rule -------------------------------------------------------------------------------

# A person's consent is current when one of their consent rows names both policy versions in force
# (the newest published version of each whose effective date has come: the SQL functions of
# migrations/0010_policies_in_force.sql). Every check (the learner, the buyer, the profile) uses this fragment
# with the user's id column in place of {user_id}.
CONSENT_CURRENT_SQL = """EXISTS (
    SELECT 1 FROM user_consents c
    WHERE c.user_id = {user_id}
      AND c.privacy_policy_version = privacy_version_in_force()
      AND c.terms_version = terms_version_in_force()
)"""


def consent_current_sql(user_id_column: str) -> str:
    return CONSENT_CURRENT_SQL.format(user_id=user_id_column)
