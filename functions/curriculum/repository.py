"""SQL of the curriculum domain. Every query is parameterised and runs on the environment's connection.

A student's page is one statement: statuses come from ``student_progress`` (no row = LOCKED) and
step counts from ``step_completions``, both keyed by student first, joined to the catalogue rows of
the student's track. Lateral aggregates keep each lookup on those keys, so a page costs the same
with a thousand students or a hundred thousand.
"""

from __future__ import annotations

from typing import Any

from apranova import db

_ACTIVE_TRACKS = """
SELECT t.code, t.name, t.description, t.icon, t.duration_weeks AS weeks, t.price_cents, t.currency,
       (SELECT count(*) FROM projects p WHERE p.track_id = t.id AND p.is_active) AS project_count
FROM tracks t
WHERE t.is_active
ORDER BY t.code
"""


def active_tracks() -> list[dict[str, Any]]:
    return db.connection().execute(_ACTIVE_TRACKS).fetchall()


# One row per active project of the student's track, in order, with the track and the student's
# enrollment repeated on each (and one row of project columns all null when the track has none).
# Progress counts the active required steps; optional steps are extra.
_TRACK_PROJECTS = """
SELECT t.code, t.name, t.description, t.icon, t.duration_weeks AS weeks,
       u.enrollment_status, u.enrolled_at, u.completed_at,
       i.id, i.number, i.title, i.subtitle, i.estimated_hours, i.status, i.steps_total, i.steps_done
FROM users u
JOIN tracks t ON t.id = u.track_id
LEFT JOIN LATERAL (
    SELECT p.id, p.number, p.title, p.subtitle, p.estimated_hours,
           coalesce(sp.status, 'LOCKED') AS status, st.total AS steps_total, st.done AS steps_done
    FROM projects p
    LEFT JOIN student_progress sp ON sp.student_id = u.id AND sp.project_id = p.id
    CROSS JOIN LATERAL (
        SELECT count(*) AS total, count(c.step_id) AS done
        FROM project_steps s
        LEFT JOIN step_completions c ON c.student_id = u.id AND c.project_id = p.id AND c.step_id = s.id
        WHERE s.project_id = p.id AND s.is_active AND NOT s.is_optional
    ) st
    WHERE p.track_id = t.id AND p.is_active
) i ON true
WHERE u.id = %(student)s
ORDER BY i.number
"""


def track_projects(cur: Any, student_id: str) -> list[dict[str, Any]]:
    return cur.execute(_TRACK_PROJECTS, {"student": student_id}).fetchall()


# The whole detail page in one statement: steps and deliverables come back as JSON arrays.
_PROJECT_DETAIL = """
SELECT p.id, p.number, p.title, p.subtitle, p.description, p.estimated_hours, p.tech_stack, p.tools,
       p.dataset_key IS NOT NULL AS has_dataset,
       coalesce(sp.status, 'LOCKED') AS status, sp.unlocked_at, sp.started_at, sp.submitted_at, sp.approved_at,
       coalesce((
           SELECT json_agg(json_build_object(
                      'id', s.id, 'number', s.number, 'title', s.title, 'description', s.description,
                      'minutes', s.estimated_minutes, 'is_optional', s.is_optional, 'resources', s.resources,
                      'completed', c.step_id IS NOT NULL, 'completed_at', c.completed_at
                  ) ORDER BY s.number)
           FROM project_steps s
           LEFT JOIN step_completions c
               ON c.student_id = %(student)s AND c.project_id = p.id AND c.step_id = s.id
           WHERE s.project_id = p.id AND s.is_active
       ), '[]'::json) AS steps,
       coalesce((
           SELECT json_agg(json_build_object(
                      'id', d.id, 'number', d.number, 'title', d.title, 'description', d.description,
                      'deliverable_type', d.deliverable_type, 'is_required', d.is_required,
                      'accepted_content_types', d.accepted_content_types, 'max_file_bytes', d.max_file_bytes,
                      'latest_submission', CASE WHEN latest.id IS NOT NULL THEN json_build_object(
                          'id', latest.id, 'attempt', latest.attempt, 'status', latest.status,
                          'submitted_at', latest.submitted_at, 'feedback', latest.feedback,
                          'reviewed_at', latest.reviewed_at
                      ) END
                  ) ORDER BY d.number)
           FROM deliverables d
           LEFT JOIN LATERAL (
               SELECT x.id, x.attempt, x.status, x.submitted_at, x.feedback, x.reviewed_at
               FROM submissions x
               WHERE x.student_id = %(student)s AND x.project_id = d.project_id AND x.deliverable_id = d.id
                 AND x.status <> 'SUPERSEDED'
               ORDER BY x.attempt DESC
               LIMIT 1
           ) latest ON true
           WHERE d.project_id = p.id AND d.is_active
       ), '[]'::json) AS deliverables
FROM projects p
LEFT JOIN student_progress sp ON sp.student_id = %(student)s AND sp.project_id = p.id
WHERE p.id = %(project)s AND p.track_id = %(track)s AND p.is_active
"""


def project_detail(cur: Any, student_id: str, track_id: int, project_id: int) -> dict[str, Any] | None:
    return cur.execute(_PROJECT_DETAIL, {"student": student_id, "track": track_id, "project": project_id}).fetchone()


# A project of the student's track with the student's status (null: no row, LOCKED), its dataset key,
# and ``step_id`` when the given step is an active step of this project.
_PROJECT_STATE = """
SELECT p.id, sp.status, sp.unlocked_at, sp.started_at, p.dataset_key, s.id AS step_id
FROM projects p
LEFT JOIN student_progress sp ON sp.student_id = %(student)s AND sp.project_id = p.id
LEFT JOIN project_steps s ON s.project_id = p.id AND s.id = %(step)s AND s.is_active
WHERE p.id = %(project)s AND p.track_id = %(track)s AND p.is_active
"""


def project_state(
    cur: Any, student_id: str, track_id: int, project_id: int, step_id: int | None = None
) -> dict[str, Any] | None:
    params = {"student": student_id, "track": track_id, "project": project_id, "step": step_id}
    return cur.execute(_PROJECT_STATE, params).fetchone()


# UNLOCKED → IN_PROGRESS, only from UNLOCKED: concurrent starts change the row once.
_START = """
UPDATE student_progress sp SET status = 'IN_PROGRESS', started_at = coalesce(sp.started_at, now())
FROM projects p
WHERE sp.student_id = %(student)s AND sp.project_id = %(project)s AND sp.status = 'UNLOCKED'
  AND p.id = sp.project_id AND p.track_id = %(track)s AND p.is_active
RETURNING sp.project_id AS id, sp.status, sp.unlocked_at, sp.started_at
"""


def start_project(cur: Any, student_id: str, track_id: int, project_id: int) -> dict[str, Any] | None:
    return cur.execute(_START, {"student": student_id, "track": track_id, "project": project_id}).fetchone()


def complete_step(cur: Any, student_id: str, project_id: int, step_id: int) -> None:
    cur.execute(
        """
        INSERT INTO step_completions (student_id, project_id, step_id) VALUES (%s, %s, %s)
        ON CONFLICT (student_id, step_id) DO NOTHING
        """,
        (student_id, project_id, step_id),
    )


def uncomplete_step(cur: Any, student_id: str, project_id: int, step_id: int) -> None:
    cur.execute(
        "DELETE FROM step_completions WHERE student_id = %s AND step_id = %s AND project_id = %s",
        (student_id, step_id, project_id),
    )


_STEP_STATE = """
SELECT (SELECT completed_at FROM step_completions WHERE student_id = %(student)s AND step_id = %(step)s)
           AS completed_at,
       count(*) AS steps_total, count(c.step_id) AS steps_done
FROM project_steps s
LEFT JOIN step_completions c ON c.student_id = %(student)s AND c.project_id = s.project_id AND c.step_id = s.id
WHERE s.project_id = %(project)s AND s.is_active AND NOT s.is_optional
"""


def step_state(cur: Any, student_id: str, project_id: int, step_id: int) -> dict[str, Any]:
    return cur.execute(_STEP_STATE, {"student": student_id, "project": project_id, "step": step_id}).fetchone()
