-- 0008: what a payment started.
--
-- account_created: a pay-first (anonymous) checkout created the account it is linked to (the
-- success page tells the buyer to look for the set-password email instead of logging in).
-- enrollment_execution: the enrollment workflow execution the payment started (its name is
-- derived from the payment id, so there is at most one).
ALTER TABLE payments ADD COLUMN account_created boolean NOT NULL DEFAULT false;
ALTER TABLE payments ADD COLUMN enrollment_execution text;
