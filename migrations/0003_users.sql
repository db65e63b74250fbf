-- 0003: users, one row per Cognito user.
--
-- users.id IS the Cognito `sub` (no default: the row is created with the id Cognito issued).
-- Cognito owns passwords, so there is no password column; tool URLs that could carry secrets are
-- not stored here either (tool_provisioning holds plain access URLs per tool).
-- role mirrors the Cognito group and is only ever written by signup (student) or the audited
-- admin route. A user with an enrollment beyond PENDING_PAYMENT must have a track.
-- Erasure (issue 7): the purge sets deleted_at when it starts, erases everything it must, and
-- finally DELETEs the row, because the id itself (the Cognito sub) is personal data. Every FK
-- to users therefore says what a purge does: personal rows CASCADE, payment records RESTRICT (the
-- purge must first swap the user reference for an opaque subject_ref), reviewer/decider
-- references SET NULL.
-- Indexes serve the admin users list (filters role / track / status, keyset on (created_at, id)
-- in either direction) and trainer selection (active trainers of a track).

CREATE TABLE users (
    id                  uuid        PRIMARY KEY,
    email               citext      NOT NULL UNIQUE CHECK (email ~ '^[^@\s]+@[^@\s]+$'),
    name                text        NOT NULL DEFAULT '' CHECK (length(name) <= 200),
    role                text        NOT NULL DEFAULT 'student' CHECK (role IN ('student', 'trainer', 'admin')),
    track_id            integer     REFERENCES tracks (id) ON DELETE RESTRICT,
    enrollment_status   text        NOT NULL DEFAULT 'PENDING_PAYMENT'
        CHECK (enrollment_status IN ('PENDING_PAYMENT', 'ENROLLED', 'COMPLETED', 'REFUNDED', 'SUSPENDED')),
    email_verified      boolean     NOT NULL DEFAULT false,
    tools_provisioned   boolean     NOT NULL DEFAULT false,
    provisioning_status text        NOT NULL DEFAULT 'NOT_STARTED'
        CHECK (provisioning_status IN ('NOT_STARTED', 'IN_PROGRESS', 'SUCCEEDED', 'FAILED', 'DEPROVISIONED')),
    provisioning_error  text,
    provisioned_at      timestamptz,
    enrolled_at         timestamptz,
    completed_at        timestamptz,
    last_login_at       timestamptz,
    is_active           boolean     NOT NULL DEFAULT true,
    deleted_at          timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_enrolled_have_a_track CHECK (enrollment_status = 'PENDING_PAYMENT' OR track_id IS NOT NULL)
);

CREATE TRIGGER users_updated_at BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- Admin list: unfiltered and per filter, all keyset on (created_at, id).
CREATE INDEX users_created ON users (created_at, id);
CREATE INDEX users_role_created ON users (role, created_at, id);
CREATE INDEX users_track_created ON users (track_id, created_at, id);
CREATE INDEX users_status_created ON users (enrollment_status, created_at, id);
-- Least-loaded trainer of a track; "is this the last admin?".
CREATE INDEX users_trainers_by_track ON users (track_id) WHERE role = 'trainer' AND is_active;
