"""SQL of the trainer domain. Every query is parameterised; the optional filters are fixed SQL
fragments of ours composed with ``psycopg.sql``, so each variant is a plain, index-backed query.
Writes take the caller's cursor so that they commit with the audit row that describes them."""

from __future__ import annotations

from typing import Any

from psycopg import Cursor, sql

from apranova import db

# --- students and their progress ---------------------------------------------------------------------

# The page of students is chosen first (index-ordered, LIMIT inside), then each of its rows gets its
# progress from per-student index lookups: the cost follows the page size, not the number of students.
# A trainer's page walks trainer_assignments_trainer (trainer_id, assigned_at, student_id); an
# admin's walks users_role_created (role, created_at, id) or users_track_created with a track.
_STUDENTS = """
WITH page AS (
    {page}
)
SELECT page.id::text AS id, u.email::text AS email, u.name, t.code AS track, u.enrollment_status,
       u.enrolled_at, u.completed_at, ta.trainer_id::text AS trainer_id, ta.assigned_at, page.sort_at,
       cur.id AS current_project_id, cur.number AS current_project_number,
       cur.title AS current_project_title, cur.status AS current_project_status,
       coalesce(totals.steps_total, 0) AS steps_total, coalesce(totals.projects_total, 0) AS projects_total,
       (SELECT count(*) FROM step_completions sc
        JOIN project_steps ps ON ps.id = sc.step_id AND ps.is_active AND NOT ps.is_optional
        JOIN projects p ON p.id = sc.project_id AND p.is_active AND p.track_id = u.track_id
        WHERE sc.student_id = page.id) AS steps_completed,
       (SELECT count(*) FROM student_progress sp
        JOIN projects p ON p.id = sp.project_id AND p.is_active AND p.track_id = u.track_id
        WHERE sp.student_id = page.id AND sp.status = 'APPROVED') AS projects_approved,
       (SELECT max(s.submitted_at) FROM submissions s WHERE s.student_id = page.id) AS last_submission_at,
       (SELECT max(sc.completed_at) FROM step_completions sc WHERE sc.student_id = page.id) AS last_step_at,
       (SELECT count(*) FROM submissions w WHERE w.student_id = page.id AND w.status = 'PENDING')
           AS waiting_submissions
FROM page
JOIN users u ON u.id = page.id
LEFT JOIN tracks t ON t.id = u.track_id
LEFT JOIN trainer_assignments ta ON ta.student_id = page.id
LEFT JOIN LATERAL (
    SELECT p.id, p.number, p.title, sp.status
    FROM student_progress sp JOIN projects p ON p.id = sp.project_id AND p.is_active AND p.track_id = u.track_id
    WHERE sp.student_id = page.id AND sp.status <> 'APPROVED'
    ORDER BY p.number LIMIT 1
) cur ON true
LEFT JOIN LATERAL (
    SELECT count(DISTINCT p.id) AS projects_total, count(ps.id) AS steps_total
    FROM projects p LEFT JOIN project_steps ps ON ps.project_id = p.id AND ps.is_active AND NOT ps.is_optional
    WHERE p.track_id = u.track_id AND p.is_active
) totals ON true
ORDER BY page.sort_at, page.id
"""

_TRAINER_PAGE = """
    SELECT ta.student_id AS id, ta.assigned_at AS sort_at
    FROM trainer_assignments ta JOIN users su ON su.id = ta.student_id AND su.deleted_at IS NULL
    WHERE ta.trainer_id = %(trainer)s {track} {after}
    ORDER BY ta.assigned_at, ta.student_id
    LIMIT %(limit)s
"""

_ADMIN_PAGE = """
    SELECT su.id, su.created_at AS sort_at
    FROM users su
    WHERE su.role = 'student' AND su.track_id IS NOT NULL AND su.deleted_at IS NULL {track} {after}
    ORDER BY su.created_at, su.id
    LIMIT %(limit)s
"""

_ADMIN_TRACK = "AND su.track_id = (SELECT id FROM tracks WHERE code = %(track)s)"
_ADMIN_AFTER = "AND (su.created_at, su.id) > (%(after_at)s::timestamptz, %(after_id)s::uuid)"
_TRAINER_TRACK = "AND ta.track = %(track)s"
_TRAINER_AFTER = "AND (ta.assigned_at, ta.student_id) > (%(after_at)s::timestamptz, %(after_id)s::uuid)"


def students(trainer_id: str | None, track: str | None, after: list[Any] | None, limit: int) -> list[dict[str, Any]]:
    """A page of students (``limit`` rows at most): ``trainer_id``'s assigned ones, or every student
    with a track when ``trainer_id`` is None (admins)."""
    if trainer_id is None:
        page = sql.SQL(_ADMIN_PAGE).format(
            track=sql.SQL(_ADMIN_TRACK if track else ""), after=sql.SQL(_ADMIN_AFTER if after else "")
        )
    else:
        page = sql.SQL(_TRAINER_PAGE).format(
            track=sql.SQL(_TRAINER_TRACK if track else ""), after=sql.SQL(_TRAINER_AFTER if after else "")
        )
    params = {
        "trainer": trainer_id,
        "track": track,
        "after_at": after[0] if after else None,
        "after_id": after[1] if after else None,
        "limit": limit,
    }
    return db.connection().execute(sql.SQL(_STUDENTS).format(page=page), params).fetchall()


# --- the review queue --------------------------------------------------------------------------------

SUBMISSION_COLUMNS = """
    s.id::text AS id, s.student_id::text AS student_id, s.project_id, s.deliverable_id, s.attempt, s.status,
    s.submission_url, s.commit_sha, s.submission_text, s.file_key, s.file_size, s.file_content_type,
    s.feedback, s.reviewed_by::text AS reviewed_by, s.reviewed_at, s.submitted_at
"""

# Oldest first on (submitted_at, id), stopping after a page: a trainer's queue walks
# submissions_trainer_queue (trainer_id, status, submitted_at, id) INCLUDE (project_id), the
# submission's copy of its student's trainer (migration 0019), so its cost follows the page, not the
# trainer's load; an admin's walks submissions_status_submitted (status, submitted_at, id). The
# track and project filters are checked on the index entries (project_id).
_QUEUE = """
SELECT {columns},
       u.name AS student_name, u.email::text AS student_email,
       p.number AS project_number, p.title AS project_title, t.code AS track,
       d.title AS deliverable_title, d.deliverable_type,
       floor(extract(epoch FROM (
           CASE s.status WHEN 'PENDING' THEN now() WHEN 'SUPERSEDED' THEN s.updated_at ELSE s.reviewed_at END
       ) - s.submitted_at))::bigint AS waiting_seconds
FROM submissions s
JOIN users u ON u.id = s.student_id
JOIN projects p ON p.id = s.project_id
JOIN tracks t ON t.id = p.track_id
JOIN deliverables d ON d.id = s.deliverable_id
WHERE s.status = %(status)s {trainer} {project} {track} {after}
ORDER BY s.submitted_at, s.id
LIMIT %(limit)s
"""

_QUEUE_TRAINER = "AND s.trainer_id = %(trainer)s"
_QUEUE_PROJECT = "AND s.project_id = %(project)s"
# A short list of ids (a track has a handful of projects), so the filter is checked on the index.
_QUEUE_TRACK = "AND s.project_id = ANY (%(track_projects)s::int[])"
_QUEUE_AFTER = "AND (s.submitted_at, s.id) > (%(after_at)s::timestamptz, %(after_id)s::uuid)"


def queue_filters(track: str | None, project: int | None) -> dict[str, Any]:
    """What the queue's filters name: whether the track exists and its projects' ids, whether the
    project exists and its track. One statement, sent only when a filter is given."""
    return db.one(
        db.connection().execute(
            """
        SELECT (SELECT count(*) FROM tracks WHERE code = %(track)s) > 0 AS track_exists,
               (SELECT coalesce(array_agg(p.id ORDER BY p.id), '{}')
                FROM projects p JOIN tracks t ON t.id = p.track_id WHERE t.code = %(track)s) AS track_projects,
               (SELECT t.code FROM projects p JOIN tracks t ON t.id = p.track_id WHERE p.id = %(project)s)
                   AS project_track
        """,
            {"track": track, "project": project},
        )
    )


def queue(
    trainer_id: str | None,
    status: str,
    after: list[Any] | None,
    limit: int,
    *,
    project: int | None = None,
    track_projects: list[int] | None = None,
) -> list[dict[str, Any]]:
    query = sql.SQL(_QUEUE).format(
        columns=sql.SQL(SUBMISSION_COLUMNS),
        trainer=sql.SQL(_QUEUE_TRAINER if trainer_id else ""),
        project=sql.SQL(_QUEUE_PROJECT if project is not None else ""),
        track=sql.SQL(_QUEUE_TRACK if track_projects is not None else ""),
        after=sql.SQL(_QUEUE_AFTER if after else ""),
    )
    params = {
        "trainer": trainer_id,
        "status": status,
        "project": project,
        "track_projects": track_projects,
        "after_at": after[0] if after else None,
        "after_id": after[1] if after else None,
        "limit": limit,
    }
    return db.connection().execute(query, params).fetchall()


# --- one submission ------------------------------------------------------------------------------------

# The submission, its student's assigned trainer (for the ownership check), and the student's earlier
# attempts at the same deliverable (index submissions_student_project), in one statement.
_DETAIL = """
SELECT {columns},
       u.name AS student_name, u.email::text AS student_email,
       p.number AS project_number, p.title AS project_title,
       d.title AS deliverable_title, d.deliverable_type,
       ta.trainer_id::text AS trainer_id,
       coalesce((
           SELECT json_agg(json_build_object(
                      'id', e.id, 'attempt', e.attempt, 'status', e.status, 'submitted_at', e.submitted_at,
                      'submission_url', e.submission_url, 'commit_sha', e.commit_sha,
                      'submission_text', e.submission_text, 'file_key', e.file_key, 'feedback', e.feedback,
                      'reviewed_by', e.reviewed_by, 'reviewed_at', e.reviewed_at
                  ) ORDER BY e.submitted_at DESC, e.id DESC)
           FROM submissions e
           WHERE e.student_id = s.student_id AND e.project_id = s.project_id AND e.deliverable_id = s.deliverable_id
             AND (e.submitted_at, e.id) < (s.submitted_at, s.id)
       ), '[]'::json) AS earlier_attempts
FROM submissions s
JOIN users u ON u.id = s.student_id
JOIN projects p ON p.id = s.project_id
JOIN deliverables d ON d.id = s.deliverable_id
LEFT JOIN trainer_assignments ta ON ta.student_id = s.student_id
WHERE s.id = %s
"""


def submission_detail(submission_id: str) -> dict[str, Any] | None:
    query = sql.SQL(_DETAIL).format(columns=sql.SQL(SUBMISSION_COLUMNS))
    return db.connection().execute(query, (submission_id,)).fetchone()


# --- the review ------------------------------------------------------------------------------------


def submission_owner(cur: Cursor[Any], submission_id: str) -> dict[str, Any] | None:
    """Whose submission it is and who trains them (no lock: only to find what to lock)."""
    return cur.execute(
        """
        SELECT s.student_id::text AS student_id, s.project_id, ta.trainer_id::text AS trainer_id
        FROM submissions s LEFT JOIN trainer_assignments ta ON ta.student_id = s.student_id
        WHERE s.id = %s
        """,
        (submission_id,),
    ).fetchone()


def lock_progress(cur: Cursor[Any], student_id: str, project_id: int) -> None:
    """The student's progress row for the project, locked first: the order every writer of a
    project's submissions takes (progress, then submission), so a review and a resubmission of the
    same project queue up instead of deadlocking."""
    cur.execute(
        "SELECT 1 FROM student_progress WHERE student_id = %s AND project_id = %s FOR UPDATE",
        (student_id, project_id),
    )


def submission_for_update(cur: Cursor[Any], submission_id: str) -> dict[str, Any] | None:
    """The submission, locked: a second reviewer waits here and then sees the first one's decision."""
    return cur.execute(
        sql.SQL(
            """
            SELECT {columns}, u.email::text AS student_email, u.name AS student_name,
                   p.number AS project_number, p.title AS project_title, d.title AS deliverable_title
            FROM submissions s
            JOIN users u ON u.id = s.student_id
            JOIN projects p ON p.id = s.project_id
            JOIN deliverables d ON d.id = s.deliverable_id
            WHERE s.id = %s
            FOR UPDATE OF s
            """
        ).format(columns=sql.SQL(SUBMISSION_COLUMNS)),
        (submission_id,),
    ).fetchone()


def decide(cur: Cursor[Any], submission_id: str, status: str, feedback: str | None, reviewer: str) -> dict[str, Any]:
    """The decision on a pending submission the caller has locked (``submission_for_update``)."""
    return db.one(
        cur.execute(
            sql.SQL(
                """
            UPDATE submissions s SET status = %s, feedback = %s, reviewed_by = %s, reviewed_at = now()
            WHERE s.id = %s AND s.status = 'PENDING'
            RETURNING {columns}
            """
            ).format(columns=sql.SQL(SUBMISSION_COLUMNS)),
            (status, feedback, reviewer, submission_id),
        )
    )


def project(cur: Cursor[Any], project_id: int) -> dict[str, Any] | None:
    return cur.execute(
        "SELECT p.id, p.number, p.title, t.code AS track, t.name AS track_name"
        " FROM projects p JOIN tracks t ON t.id = p.track_id WHERE p.id = %s",
        (project_id,),
    ).fetchone()
