"""Bounds on retention periods that are not legal minimums but limits the system itself needs.

Shared by the admin route that changes the periods (``PUT /api/admin/retention-policies/``: a value
outside its bounds is 422) and the compliance jobs that apply them (they clamp a row that holds a
value outside the bounds, e.g. one set before a bound existed), so both read the same numbers.
See docs/decisions.md ("Issue 7: erasure").
"""

from __future__ import annotations

# USER_DATA is the grace period between a deletion request and the purge: an admin must not be able
# to postpone every erasure indefinitely (the purge must follow "without undue delay", GDPR Art. 17).
MAX_DELETION_GRACE_DAYS = 90
# ABANDONED_CHECKOUTS: a pay-first checkout can still be paid after its session ends (a delayed
# payment method such as a bank debit settles days later, a webhook is retried for up to 3 days):
# its email is needed until then to link or create the account.
MIN_ABANDONED_CHECKOUT_DAYS = 30

# resource_type -> (minimum days, maximum days); a type not listed is bounded by the table only.
PERIOD_BOUNDS: dict[str, tuple[int | None, int | None]] = {
    "USER_DATA": (None, MAX_DELETION_GRACE_DAYS),
    "ABANDONED_CHECKOUTS": (MIN_ABANDONED_CHECKOUT_DAYS, None),
}


def clamp(resource_type: str, days: int) -> int:
    """``days`` brought within the bounds of ``resource_type``."""
    low, high = PERIOD_BOUNDS.get(resource_type, (None, None))
    if low is not None:
        days = max(days, low)
    if high is not None:
        days = min(days, high)
    return days
