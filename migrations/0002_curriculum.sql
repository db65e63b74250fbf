-- 0002: the catalogue: tracks, their projects, each project's steps and deliverables.
--
-- Rows here are owned by the seed (functions/migrate/seed.py), which upserts them by natural key:
-- tracks(code), projects(track_id, number), project_steps(project_id, number),
-- deliverables(project_id, number). Nothing is ever deleted: student progress and submissions
-- reference steps and deliverables, so FKs into the catalogue are ON DELETE RESTRICT and a step
-- or deliverable dropped from the catalogue is only marked is_active = false.
-- Money is integer cents plus an upper-case ISO 4217 code; the price the API charges comes from
-- tracks, never from a request.
-- projects.tools names the per-student tools a project uses (lower case, the same names as
-- tool_provisioning.tool in upper case).
-- The (project_id, id) unique keys exist so that student tables can carry project_id and prove
-- with a composite FK that a step/deliverable belongs to that project.

CREATE TABLE tracks (
    id             serial PRIMARY KEY,
    code           text        NOT NULL UNIQUE CHECK (code ~ '^[A-Z][A-Z0-9_]{0,15}$'),
    name           text        NOT NULL CHECK (btrim(name) <> ''),
    description    text        NOT NULL DEFAULT '',
    icon           text,
    duration_weeks integer     NOT NULL CHECK (duration_weeks > 0),
    price_cents    integer     NOT NULL CHECK (price_cents > 0),
    currency       char(3)     NOT NULL DEFAULT 'USD' CHECK (currency ~ '^[A-Z]{3}$'),
    is_active      boolean     NOT NULL DEFAULT true,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE projects (
    id                   serial PRIMARY KEY,
    track_id             integer     NOT NULL REFERENCES tracks (id) ON DELETE RESTRICT,
    number               smallint    NOT NULL CHECK (number > 0),
    title                text        NOT NULL CHECK (btrim(title) <> ''),
    subtitle             text        NOT NULL DEFAULT '',
    description          text        NOT NULL DEFAULT '',
    project_type         text        NOT NULL CHECK (project_type IN ('INTERNAL', 'CAPSTONE')),
    tech_stack           text[]      NOT NULL DEFAULT '{}',
    tools                text[]      NOT NULL DEFAULT '{}'
        CHECK (tools <@ ARRAY['student_database', 'superset', 'prefect', 'jupyter', 'workspace']::text[]),
    estimated_hours      integer     NOT NULL CHECK (estimated_hours > 0),
    dataset_key          text        CHECK (dataset_key IS NULL OR dataset_key ~ '^[A-Za-z0-9!_.*''()/-]+$'),
    github_template_repo text,
    is_active            boolean     NOT NULL DEFAULT true,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    UNIQUE (track_id, number),
    UNIQUE (track_id, id)
);

CREATE TABLE project_steps (
    id                serial PRIMARY KEY,
    project_id        integer     NOT NULL REFERENCES projects (id) ON DELETE RESTRICT,
    number            smallint    NOT NULL CHECK (number > 0),
    title             text        NOT NULL CHECK (btrim(title) <> ''),
    description       text        NOT NULL DEFAULT '',
    estimated_minutes integer     NOT NULL CHECK (estimated_minutes > 0),
    is_optional       boolean     NOT NULL DEFAULT false,
    resources         jsonb       NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(resources) = 'array'),
    is_active         boolean     NOT NULL DEFAULT true,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (project_id, number),
    UNIQUE (project_id, id)
);

-- FILE deliverables list the content types an upload may have and its size limit; the other
-- types have neither (the presigned POST is built from these columns).
CREATE TABLE deliverables (
    id                     serial PRIMARY KEY,
    project_id             integer     NOT NULL REFERENCES projects (id) ON DELETE RESTRICT,
    number                 smallint    NOT NULL CHECK (number > 0),
    title                  text        NOT NULL CHECK (btrim(title) <> ''),
    description            text        NOT NULL DEFAULT '',
    deliverable_type       text        NOT NULL CHECK (deliverable_type IN ('LINK', 'GITHUB', 'FILE', 'TEXT')),
    is_required            boolean     NOT NULL DEFAULT true,
    accepted_content_types text[]      NOT NULL DEFAULT '{}',
    max_file_bytes         bigint      CHECK (max_file_bytes > 0),
    is_active              boolean     NOT NULL DEFAULT true,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    UNIQUE (project_id, number),
    UNIQUE (project_id, id),
    CONSTRAINT deliverables_file_fields CHECK (
        CASE WHEN deliverable_type = 'FILE'
             THEN cardinality(accepted_content_types) > 0 AND max_file_bytes IS NOT NULL
             ELSE cardinality(accepted_content_types) = 0 AND max_file_bytes IS NULL
        END
    )
);

CREATE TRIGGER tracks_updated_at BEFORE UPDATE ON tracks
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER projects_updated_at BEFORE UPDATE ON projects
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER project_steps_updated_at BEFORE UPDATE ON project_steps
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER deliverables_updated_at BEFORE UPDATE ON deliverables
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
