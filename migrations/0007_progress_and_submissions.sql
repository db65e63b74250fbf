-- 0007: a student's progress through the curriculum and their submissions.
--
-- student_progress: one row per (student, project) once the project is unlocked; no row means
-- LOCKED. step_completions and submissions carry project_id and reference student_progress with a
-- composite FK, so a step can only be completed and a deliverable only submitted for a project the
-- student has a progress row for, and composite FKs to project_steps/deliverables (project_id, id)
-- prove the step or deliverable belongs to that project. The app still checks the status (rule 4:
-- students never write review state or unlocks); the schema makes the impossible unrepresentable.
-- Everything here is the student's personal data: ON DELETE CASCADE from users (the purge);
-- catalogue rows are RESTRICT (the catalogue is never deleted).
-- One student's project statuses and step completions come from one indexed query: both tables
-- are keyed by student_id first.
-- submissions: every attempt is kept (attempt 1, 2, ...); at most one PENDING attempt per
-- (student, deliverable) (a new attempt supersedes the pending one); a decided attempt records
-- who reviewed it and when, and a change request carries feedback.

CREATE TABLE student_progress (
    student_id   uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    project_id   integer     NOT NULL REFERENCES projects (id) ON DELETE RESTRICT,
    status       text        NOT NULL DEFAULT 'UNLOCKED'
        CHECK (status IN ('LOCKED', 'UNLOCKED', 'IN_PROGRESS', 'SUBMITTED', 'CHANGES_REQUESTED', 'APPROVED')),
    unlocked_at  timestamptz,
    started_at   timestamptz,
    submitted_at timestamptz,
    approved_at  timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (student_id, project_id),
    CONSTRAINT student_progress_unlocked CHECK (status = 'LOCKED' OR unlocked_at IS NOT NULL),
    CONSTRAINT student_progress_approved CHECK (status <> 'APPROVED' OR approved_at IS NOT NULL)
);

CREATE TRIGGER student_progress_updated_at BEFORE UPDATE ON student_progress
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
-- Stats and admin views by project and status.
CREATE INDEX student_progress_project_status ON student_progress (project_id, status);

CREATE TABLE step_completions (
    student_id   uuid        NOT NULL,
    project_id   integer     NOT NULL,
    step_id      integer     NOT NULL,
    completed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (student_id, step_id),
    FOREIGN KEY (student_id, project_id) REFERENCES student_progress (student_id, project_id) ON DELETE CASCADE,
    FOREIGN KEY (project_id, step_id) REFERENCES project_steps (project_id, id) ON DELETE RESTRICT
);

-- A student's completed steps per project (progress percent, project detail).
CREATE INDEX step_completions_student_project ON step_completions (student_id, project_id);

CREATE TABLE submissions (
    id                uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    student_id        uuid        NOT NULL,
    project_id        integer     NOT NULL,
    deliverable_id    integer     NOT NULL,
    attempt           integer     NOT NULL CHECK (attempt > 0),
    submission_url    text        CHECK (submission_url IS NULL OR submission_url ~* '^https?://'),
    commit_sha        text        CHECK (commit_sha IS NULL OR commit_sha ~ '^[0-9a-f]{7,64}$'),
    submission_text   text,
    file_key          text,
    file_size         bigint      CHECK (file_size > 0),
    file_content_type text,
    status            text        NOT NULL DEFAULT 'PENDING'
        CHECK (status IN ('PENDING', 'APPROVED', 'CHANGES_REQUESTED', 'SUPERSEDED')),
    feedback          text,
    reviewed_by       uuid        REFERENCES users (id) ON DELETE SET NULL,
    reviewed_at       timestamptz,
    submitted_at      timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (student_id, deliverable_id, attempt),
    FOREIGN KEY (student_id, project_id) REFERENCES student_progress (student_id, project_id) ON DELETE CASCADE,
    FOREIGN KEY (project_id, deliverable_id) REFERENCES deliverables (project_id, id) ON DELETE RESTRICT,
    CONSTRAINT submissions_has_content CHECK (num_nonnulls(submission_url, submission_text, file_key) > 0),
    CONSTRAINT submissions_file_fields CHECK ((file_key IS NULL) = (file_size IS NULL)
                                              AND (file_key IS NULL) = (file_content_type IS NULL)),
    CONSTRAINT submissions_reviewed CHECK (status NOT IN ('APPROVED', 'CHANGES_REQUESTED') OR reviewed_at IS NOT NULL),
    CONSTRAINT submissions_changes_have_feedback
        CHECK (status <> 'CHANGES_REQUESTED' OR nullif(btrim(feedback), '') IS NOT NULL)
);

CREATE TRIGGER submissions_updated_at BEFORE UPDATE ON submissions
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
-- One pending attempt per deliverable and student.
CREATE UNIQUE INDEX submissions_one_pending ON submissions (student_id, deliverable_id) WHERE status = 'PENDING';
-- My submissions, newest first (keyset).
CREATE INDEX submissions_student_submitted ON submissions (student_id, submitted_at DESC, id DESC);
-- Review queue (pending, oldest first) and the admin list filtered by status (keyset).
CREATE INDEX submissions_status_submitted ON submissions (status, submitted_at, id);
-- Admin list unfiltered.
CREATE INDEX submissions_submitted ON submissions (submitted_at, id);
-- Latest attempt of each deliverable of a project for a student (project detail).
CREATE INDEX submissions_student_project ON submissions (student_id, project_id, deliverable_id, attempt DESC);
-- Review turnaround stats.
CREATE INDEX submissions_reviewed ON submissions (reviewed_at) WHERE reviewed_at IS NOT NULL;
