-- 0005: GDPR: policy versions, consents, the audit log, retention policies, export and deletion
-- requests.
--
-- privacy_policies / terms_of_service: immutable published texts by version. is_active marks the
-- version in force, at most one per table (partial unique index). A version published for a
-- future date is inserted with is_active = false and switched on (old off, new on, one
-- transaction) once effective_at has passed; the effective_at index finds it.
-- user_consents: one row per acceptance (history is kept). FKs to the version columns make an
-- unknown version impossible. A pay-first checkout captures consent before any account exists:
-- that row holds payment_id and gets user_id when the account is created, so the recorded time,
-- IP and user agent are those of the real acceptance.
-- audit_logs: append-only. A trigger rejects UPDATE, DELETE and TRUNCATE unless the transaction
-- ran `SET LOCAL apranova.retention_sweep = 'on'` (the retention sweep and the purge, issue 7);
-- even then an UPDATE may only anonymise the personal references (actor_id, subject_id,
-- resource_id, details, ip_address, user_agent) - never what happened or when. There is no FK to
-- users so the trail survives a purge.
-- data_retention_policies: a row with legal_requirement carries legal_minimum_days, below which
-- retention_days cannot go.
-- deletion_requests: the grace-period schedule and the purge's resumable progress
-- (completed_steps); user_id is SET NULL when the purge finally deletes the user, subject_ref
-- keeps the opaque reference shared with the anonymised payments.

CREATE TABLE privacy_policies (
    id           serial PRIMARY KEY,
    version      text        NOT NULL UNIQUE CHECK (version ~ '^[0-9]+(\.[0-9]+)*$'),
    content      text        NOT NULL CHECK (btrim(content) <> ''),
    summary      text        NOT NULL DEFAULT '',
    effective_at timestamptz NOT NULL,
    is_active    boolean     NOT NULL DEFAULT false,
    published_by uuid        REFERENCES users (id) ON DELETE SET NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE terms_of_service (
    id           serial PRIMARY KEY,
    version      text        NOT NULL UNIQUE CHECK (version ~ '^[0-9]+(\.[0-9]+)*$'),
    content      text        NOT NULL CHECK (btrim(content) <> ''),
    summary      text        NOT NULL DEFAULT '',
    effective_at timestamptz NOT NULL,
    is_active    boolean     NOT NULL DEFAULT false,
    published_by uuid        REFERENCES users (id) ON DELETE SET NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE UNIQUE INDEX privacy_policies_one_active ON privacy_policies ((true)) WHERE is_active;
CREATE UNIQUE INDEX terms_of_service_one_active ON terms_of_service ((true)) WHERE is_active;
CREATE INDEX privacy_policies_effective ON privacy_policies (effective_at);
CREATE INDEX terms_of_service_effective ON terms_of_service (effective_at);
CREATE TRIGGER privacy_policies_updated_at BEFORE UPDATE ON privacy_policies
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER terms_of_service_updated_at BEFORE UPDATE ON terms_of_service
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE user_consents (
    id                     bigserial PRIMARY KEY,
    user_id                uuid        REFERENCES users (id) ON DELETE CASCADE,
    payment_id             uuid        REFERENCES payments (id) ON DELETE RESTRICT,
    privacy_policy_version text        NOT NULL REFERENCES privacy_policies (version) ON UPDATE RESTRICT ON DELETE RESTRICT,
    terms_version          text        NOT NULL REFERENCES terms_of_service (version) ON UPDATE RESTRICT ON DELETE RESTRICT,
    accepted_at            timestamptz NOT NULL DEFAULT now(),
    ip_address             inet,
    user_agent             text        CHECK (length(user_agent) <= 1024),
    source                 text        NOT NULL CHECK (source IN ('SIGNUP', 'ANONYMOUS_CHECKOUT', 'ACCEPT', 'ADMIN')),
    CONSTRAINT user_consents_belongs_somewhere CHECK (user_id IS NOT NULL OR payment_id IS NOT NULL)
);

-- My consents (newest first) and "has this user accepted the active versions?".
CREATE INDEX user_consents_user ON user_consents (user_id, accepted_at DESC) WHERE user_id IS NOT NULL;
CREATE INDEX user_consents_payment ON user_consents (payment_id) WHERE payment_id IS NOT NULL;

CREATE TABLE audit_logs (
    id            bigserial PRIMARY KEY,
    occurred_at   timestamptz NOT NULL DEFAULT now(),
    action        text        NOT NULL CHECK (action ~ '^[A-Z][A-Z0-9_]*$'),
    actor_id      uuid,
    actor_role    text,
    subject_id    uuid,
    resource_type text,
    resource_id   text,
    details       jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(details) = 'object'),
    ip_address    inet,
    user_agent    text,
    request_id    text
);

CREATE FUNCTION audit_logs_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' OR coalesce(current_setting('apranova.retention_sweep', true), '') <> 'on' THEN
        RAISE EXCEPTION 'audit_logs is append-only: % is not allowed', TG_OP
            USING ERRCODE = 'restrict_violation',
                  HINT = 'Only the retention sweep and the purge (SET LOCAL apranova.retention_sweep = on) may delete or anonymise rows.';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    IF NEW.id IS DISTINCT FROM OLD.id
       OR NEW.occurred_at IS DISTINCT FROM OLD.occurred_at
       OR NEW.action IS DISTINCT FROM OLD.action
       OR NEW.actor_role IS DISTINCT FROM OLD.actor_role
       OR NEW.resource_type IS DISTINCT FROM OLD.resource_type
       OR NEW.request_id IS DISTINCT FROM OLD.request_id THEN
        RAISE EXCEPTION 'audit_logs row %: only personal references may be anonymised', OLD.id
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER audit_logs_guard BEFORE UPDATE OR DELETE ON audit_logs
    FOR EACH ROW EXECUTE FUNCTION audit_logs_guard();
CREATE TRIGGER audit_logs_no_truncate BEFORE TRUNCATE ON audit_logs
    FOR EACH STATEMENT EXECUTE FUNCTION audit_logs_guard();

-- Admin audit list keyset on (occurred_at, id), unfiltered or by actor / subject / action; the
-- retention sweep deletes by occurred_at; export and purge find a user's rows by actor/subject.
CREATE INDEX audit_logs_occurred ON audit_logs (occurred_at, id);
CREATE INDEX audit_logs_actor ON audit_logs (actor_id, occurred_at, id) WHERE actor_id IS NOT NULL;
CREATE INDEX audit_logs_subject ON audit_logs (subject_id, occurred_at, id) WHERE subject_id IS NOT NULL;
CREATE INDEX audit_logs_action ON audit_logs (action, occurred_at, id);
CREATE INDEX audit_logs_resource ON audit_logs (resource_type, resource_id) WHERE resource_id IS NOT NULL;

CREATE TABLE data_retention_policies (
    id                 serial PRIMARY KEY,
    resource_type      text        NOT NULL UNIQUE CHECK (resource_type ~ '^[A-Z][A-Z0-9_]*$'),
    retention_days     integer     NOT NULL CHECK (retention_days > 0),
    legal_minimum_days integer     CHECK (legal_minimum_days > 0),
    description        text        NOT NULL DEFAULT '',
    is_active          boolean     NOT NULL DEFAULT true,
    legal_requirement  boolean     NOT NULL DEFAULT false,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT retention_legal_minimum_known CHECK (NOT legal_requirement OR legal_minimum_days IS NOT NULL),
    CONSTRAINT retention_not_below_legal_minimum CHECK (retention_days >= coalesce(legal_minimum_days, 1))
);

CREATE TRIGGER data_retention_policies_updated_at BEFORE UPDATE ON data_retention_policies
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE data_export_requests (
    id           uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id      uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    status       text        NOT NULL DEFAULT 'PENDING' CHECK (status IN ('PENDING', 'READY', 'FAILED', 'EXPIRED')),
    s3_key       text,
    size_bytes   bigint      CHECK (size_bytes >= 0),
    error        text,
    requested_at timestamptz NOT NULL DEFAULT now(),
    completed_at timestamptz,
    expires_at   timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT data_export_ready_has_object CHECK (status <> 'READY' OR (s3_key IS NOT NULL AND expires_at IS NOT NULL))
);

CREATE TRIGGER data_export_requests_updated_at BEFORE UPDATE ON data_export_requests
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
-- My exports / "one per 24 hours"; at most one export being built per user.
CREATE INDEX data_export_requests_user ON data_export_requests (user_id, requested_at DESC);
CREATE UNIQUE INDEX data_export_requests_one_pending ON data_export_requests (user_id) WHERE status = 'PENDING';
-- The retention sweep: ready exports past their expiry.
CREATE INDEX data_export_requests_expiring ON data_export_requests (expires_at) WHERE status = 'READY';

CREATE TABLE deletion_requests (
    id              uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id         uuid        REFERENCES users (id) ON DELETE SET NULL,
    subject_ref     text,
    status          text        NOT NULL DEFAULT 'SCHEDULED'
        CHECK (status IN ('SCHEDULED', 'CANCELLED', 'IN_PROGRESS', 'COMPLETED')),
    reason          text,
    requested_at    timestamptz NOT NULL DEFAULT now(),
    scheduled_for   timestamptz NOT NULL,
    cancelled_at    timestamptz,
    started_at      timestamptz,
    completed_at    timestamptz,
    completed_steps text[]      NOT NULL DEFAULT '{}',
    attempts        integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT deletion_requests_after_request CHECK (scheduled_for >= requested_at),
    CONSTRAINT deletion_requests_cancelled CHECK ((status = 'CANCELLED') = (cancelled_at IS NOT NULL)),
    CONSTRAINT deletion_requests_completed CHECK ((status = 'COMPLETED') = (completed_at IS NOT NULL))
);

CREATE TRIGGER deletion_requests_updated_at BEFORE UPDATE ON deletion_requests
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
-- A second deletion request → 409; cancel finds the open one.
CREATE UNIQUE INDEX deletion_requests_one_open ON deletion_requests (user_id)
    WHERE status IN ('SCHEDULED', 'IN_PROGRESS');
-- The daily purge: open requests that are due (including ones a crash left IN_PROGRESS).
CREATE INDEX deletion_requests_due ON deletion_requests (scheduled_for)
    WHERE status IN ('SCHEDULED', 'IN_PROGRESS');
