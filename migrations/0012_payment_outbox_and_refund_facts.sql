-- 0012: the payments outbox, and the facts refund eligibility is decided on.
--
-- payment_outbox: what a Stripe event (or the reconcile job) decided must happen outside the
-- database - start the enrollment or deprovision execution, refund a payment that cannot be
-- fulfilled, expire a Checkout Session that must no longer be paid. A row is written in the same
-- transaction as the payment change that calls for it, and carried out only after that commit
-- (the webhook right away, the reconcile job for whatever is left): a workflow never reads a
-- payment before it is committed, and a start that fails after the commit is not lost. Every
-- action is idempotent (a deterministic execution name, a Stripe idempotency key, an expiry that
-- is done once expired), so carrying a row out twice does it once. ``key`` names the action on its
-- object (``enroll:<payment>``, ``refund:<payment>``, ``expire:<session>``): at most one row each.
-- Rows hold ids only; what the action needs is read from the payment when it is carried out.
CREATE TABLE payment_outbox (
    id          bigserial   PRIMARY KEY,
    key         text        NOT NULL UNIQUE,
    action      text        NOT NULL CHECK (action IN ('START_ENROLLMENT', 'START_DEPROVISION', 'REFUND', 'EXPIRE_SESSION')),
    payment_id  uuid        NOT NULL REFERENCES payments (id) ON DELETE RESTRICT,
    target      text,
    reason      text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    attempts    integer     NOT NULL DEFAULT 0,
    last_error  text,
    done_at     timestamptz
);

-- The reconcile job's work list: rows not yet carried out, oldest first.
CREATE INDEX payment_outbox_pending ON payment_outbox (created_at, id) WHERE done_at IS NULL;
CREATE INDEX payment_outbox_payment ON payment_outbox (payment_id);

-- progress_high_water: the most required steps of a track a student has ever had completed at
-- once. Unticking a step lowers today's progress, never this; refund eligibility reads it (with
-- the submissions, which are never deleted while the account lives), so it only grows.
CREATE TABLE progress_high_water (
    student_id      uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    track           text        NOT NULL REFERENCES tracks (code) ON UPDATE RESTRICT ON DELETE RESTRICT,
    completed_steps integer     NOT NULL CHECK (completed_steps >= 0),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (student_id, track)
);

-- Kept by the database itself on every completed step, whichever code path completes it.
CREATE FUNCTION progress_high_water_note() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    track_code text;
    done integer;
BEGIN
    SELECT t.code INTO track_code
    FROM projects pr JOIN tracks t ON t.id = pr.track_id WHERE pr.id = NEW.project_id;
    IF track_code IS NULL THEN
        RETURN NULL;
    END IF;
    SELECT count(*) INTO done
    FROM step_completions sc
    JOIN projects pr ON pr.id = sc.project_id AND pr.is_active
    JOIN project_steps s ON s.id = sc.step_id AND s.is_active AND NOT s.is_optional
    JOIN tracks t ON t.id = pr.track_id
    WHERE sc.student_id = NEW.student_id AND t.code = track_code;
    INSERT INTO progress_high_water AS h (student_id, track, completed_steps)
    VALUES (NEW.student_id, track_code, done)
    ON CONFLICT (student_id, track) DO UPDATE
        SET completed_steps = greatest(h.completed_steps, EXCLUDED.completed_steps), updated_at = now()
        WHERE EXCLUDED.completed_steps > h.completed_steps;
    RETURN NULL;
END;
$$;

CREATE TRIGGER step_completions_high_water AFTER INSERT ON step_completions
    FOR EACH ROW EXECUTE FUNCTION progress_high_water_note();

-- Students who completed steps before this migration: their progress today is the floor.
INSERT INTO progress_high_water (student_id, track, completed_steps)
SELECT sc.student_id, t.code, count(*)
FROM step_completions sc
JOIN projects pr ON pr.id = sc.project_id AND pr.is_active
JOIN project_steps s ON s.id = sc.step_id AND s.is_active AND NOT s.is_optional
JOIN tracks t ON t.id = pr.track_id
JOIN users u ON u.id = sc.student_id
GROUP BY sc.student_id, t.code
ON CONFLICT DO NOTHING;
