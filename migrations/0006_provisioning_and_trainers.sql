-- 0006: per-student tools and trainer assignment.
--
-- student_database_credentials names a DP student's schema and login role in the students'
-- database and the SSM SecureString parameter NAME holding the password. There is deliberately
-- no password or connection-string column (design §8 rule 5); the name checks keep the values
-- usable as bare PostgreSQL identifiers.
-- tool_provisioning: one row per (user, tool), written by the enrollment and deprovision
-- workflows so a re-run finds its work done. access_url is a plain URL, never one with a token or
-- password in it; tool-specific ids (EFS access point, ECS task ARN, Superset user id ...) go in
-- external_id/details. last_activity_at drives the idle-workspace stopper.
-- trainer_assignments: at most one trainer per student (student_id is the key); deleting a
-- trainer unassigns their students (CASCADE), the assigning admin is only a SET NULL reference.
-- trainer_profiles: optional per-trainer capacity override and an "accepting students" switch;
-- a trainer without a row takes the configured default capacity.

CREATE TABLE student_database_credentials (
    user_id                 uuid        PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    database_name           text        NOT NULL CHECK (database_name ~ '^[a-z_][a-z0-9_]{0,62}$'),
    schema_name             text        NOT NULL UNIQUE CHECK (schema_name ~ '^[a-z_][a-z0-9_]{0,62}$'),
    role_name               text        NOT NULL UNIQUE CHECK (role_name ~ '^[a-z_][a-z0-9_]{0,62}$'),
    password_parameter_name text        NOT NULL UNIQUE CHECK (password_parameter_name ~ '^/[A-Za-z0-9_.\-/]+$'),
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now()
);

CREATE TRIGGER student_database_credentials_updated_at BEFORE UPDATE ON student_database_credentials
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE tool_provisioning (
    user_id           uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    tool              text        NOT NULL CHECK (tool IN ('STUDENT_DATABASE', 'SUPERSET', 'PREFECT', 'JUPYTER', 'WORKSPACE')),
    status            text        NOT NULL DEFAULT 'NOT_STARTED'
        CHECK (status IN ('NOT_STARTED', 'IN_PROGRESS', 'SUCCEEDED', 'FAILED', 'DEPROVISIONING', 'DEPROVISIONED')),
    external_id       text,
    access_url        text        CHECK (access_url IS NULL OR access_url ~ '^https?://[^@\s]+$'),
    details           jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(details) = 'object'),
    error             text,
    attempts          integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    provisioned_at    timestamptz,
    deprovisioned_at  timestamptz,
    last_activity_at  timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, tool)
);

CREATE TRIGGER tool_provisioning_updated_at BEFORE UPDATE ON tool_provisioning
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
-- Operations: failed provisioning to look at / re-run.
CREATE INDEX tool_provisioning_failed ON tool_provisioning (updated_at) WHERE status = 'FAILED';
-- The idle-workspace stopper.
CREATE INDEX tool_provisioning_workspace_activity ON tool_provisioning (last_activity_at)
    WHERE tool = 'WORKSPACE' AND status = 'SUCCEEDED';

CREATE TABLE trainer_profiles (
    user_id             uuid        PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    max_students        integer     CHECK (max_students > 0),
    accepting_students  boolean     NOT NULL DEFAULT true,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);

CREATE TRIGGER trainer_profiles_updated_at BEFORE UPDATE ON trainer_profiles
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE trainer_assignments (
    student_id  uuid        PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    trainer_id  uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    track       text        NOT NULL REFERENCES tracks (code) ON UPDATE RESTRICT ON DELETE RESTRICT,
    assigned_at timestamptz NOT NULL DEFAULT now(),
    assigned_by uuid        REFERENCES users (id) ON DELETE SET NULL,
    CONSTRAINT trainer_assignments_not_self CHECK (student_id <> trainer_id)
);

-- A trainer's students (newest first, keyset) and each trainer's load.
CREATE INDEX trainer_assignments_trainer ON trainer_assignments (trainer_id, assigned_at, student_id);
