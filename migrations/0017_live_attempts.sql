-- 0017: an attempt number counts real resubmissions.
--
-- A student who replaces a pending attempt before it is reviewed has not tried again: the new
-- attempt keeps the number of the one it supersedes (attempt 1 replaced is still attempt 1), and
-- only an attempt after a decision (changes requested) takes the next number. So the number is
-- unique among the live attempts (not superseded) of a deliverable, and the live attempt with the
-- highest number is the deliverable's latest; superseded rows stay as the history.

ALTER TABLE submissions DROP CONSTRAINT submissions_student_id_deliverable_id_attempt_key;

CREATE UNIQUE INDEX submissions_live_attempt ON submissions (student_id, deliverable_id, attempt)
    WHERE status <> 'SUPERSEDED';

COMMENT ON COLUMN submissions.attempt IS
    '1 for the first submission of a deliverable, +1 after each decided attempt; a pending attempt replaced before review keeps its number (the replaced row is SUPERSEDED).';
