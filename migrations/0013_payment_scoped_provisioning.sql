-- 0013: what a payment's enrollment provisioned, so a refund takes back only that.
--
-- users.enrollment_payment_id: the payment the current enrollment came from (set by the enrollment
-- workflow's Enroll step for a paid enrollment; NULL for an administrator's enrollment). A refund
-- or lost dispute of a payment ends the enrollment and unassigns the trainer only when it is this
-- payment; a refund of a payment that enrolled nobody (a second track, a duplicate) changes nothing.
-- tool_provisioning.payment_id: the payment whose enrollment provisioned the tool (copied from the
-- user's enrollment when the tool step runs, so a re-provisioning keeps it). The refund's
-- deprovision removes the tools of that payment only; an account purge removes every tool.
-- tool_provisioning.status NOT_CONFIGURED: the tool is not configured in this deployment (no URL
-- parameter, e.g. dev): a deprovision records it and goes on instead of failing.
ALTER TABLE users ADD COLUMN enrollment_payment_id uuid REFERENCES payments (id) ON DELETE SET NULL;
ALTER TABLE tool_provisioning ADD COLUMN payment_id uuid REFERENCES payments (id) ON DELETE SET NULL;

ALTER TABLE tool_provisioning DROP CONSTRAINT tool_provisioning_status_check;
ALTER TABLE tool_provisioning ADD CONSTRAINT tool_provisioning_status_check
    CHECK (status IN ('NOT_STARTED', 'IN_PROGRESS', 'SUCCEEDED', 'FAILED', 'DEPROVISIONING', 'DEPROVISIONED',
                      'NOT_CONFIGURED'));

-- Enrollments made before this migration: the latest paid (or since refunded) payment for the
-- user's track made it; the user's tool records are that enrollment's.
UPDATE users u SET enrollment_payment_id = (
    SELECT p.id FROM payments p JOIN tracks t ON t.code = p.track
    WHERE p.user_id = u.id AND t.id = u.track_id
      AND p.status IN ('SUCCEEDED', 'PARTIALLY_REFUNDED', 'REFUNDED')
    ORDER BY p.succeeded_at DESC NULLS LAST, p.created_at DESC, p.id
    LIMIT 1
)
WHERE u.track_id IS NOT NULL AND u.enrollment_status <> 'PENDING_PAYMENT';

UPDATE tool_provisioning tp SET payment_id = u.enrollment_payment_id
FROM users u
WHERE u.id = tp.user_id AND u.enrollment_payment_id IS NOT NULL;
