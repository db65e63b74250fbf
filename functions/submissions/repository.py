"""SQL of the submissions domain. Every query is parameterised; reads run on the environment's
connection, writes on the caller's cursor so that they commit with the audit row describing them."""

from __future__ import annotations

from typing import Any

from psycopg import Cursor, sql

from apranova import db

# A submission as the student sees it (with its deliverable's title and type and its project).
_COLUMNS = sql.SQL(
    """
    s.id::text AS id, s.deliverable_id, d.title AS deliverable_title, d.deliverable_type,
    s.project_id, p.number AS project_number, s.attempt, s.status, s.submitted_at,
    s.submission_url, s.commit_sha, s.submission_text, s.file_key, s.file_size, s.file_content_type,
    s.feedback, s.reviewed_at
    """
)
_FROM = sql.SQL("submissions s JOIN deliverables d ON d.id = s.deliverable_id JOIN projects p ON p.id = s.project_id")

# One statement: the deliverable (of the student's track, active), its project's status for this
# student (NULL: no progress row, i.e. locked) and the status of the student's latest attempt.
_TARGET = """
SELECT d.id AS deliverable_id, d.project_id, d.title AS deliverable_title, d.deliverable_type,
       d.accepted_content_types, d.max_file_bytes, p.number AS project_number, p.title AS project_title,
       sp.status AS project_status,
       (SELECT s.status FROM submissions s
        WHERE s.student_id = %(student)s AND s.project_id = d.project_id AND s.deliverable_id = d.id
          AND s.status <> 'SUPERSEDED'
        ORDER BY s.attempt DESC LIMIT 1) AS latest_status
FROM deliverables d
JOIN projects p ON p.id = d.project_id
LEFT JOIN student_progress sp ON sp.student_id = %(student)s AND sp.project_id = d.project_id
WHERE d.id = %(deliverable)s AND d.is_active AND p.is_active AND p.track_id = %(track)s
"""


def target(student_id: str, track_id: int, deliverable_id: int) -> dict[str, Any] | None:
    params = {"student": student_id, "track": track_id, "deliverable": deliverable_id}
    return db.connection().execute(_TARGET, params).fetchone()


# --- writing an attempt (inside the caller's transaction) -------------------------------------------


def lock_progress(cur: Cursor[Any], student_id: str, project_id: int) -> str | None:
    """The project's status for the student, its row locked (submissions of a project serialise)."""
    row = cur.execute(
        "SELECT status FROM student_progress WHERE student_id = %s AND project_id = %s FOR UPDATE",
        (student_id, project_id),
    ).fetchone()
    return row["status"] if row else None


def lock_latest(cur: Cursor[Any], student_id: str, project_id: int, deliverable_id: int) -> dict[str, Any] | None:
    """The latest live attempt, locked: a review of it in flight finishes first, and its outcome is seen."""
    return cur.execute(
        """
        SELECT id::text AS id, attempt, status FROM submissions
        WHERE student_id = %s AND project_id = %s AND deliverable_id = %s AND status <> 'SUPERSEDED'
        ORDER BY attempt DESC LIMIT 1 FOR UPDATE
        """,
        (student_id, project_id, deliverable_id),
    ).fetchone()


def rejected_attempts(student_id: str, deliverable_id: int, limit: int = 10) -> list[dict[str, Any]]:
    """The content of the deliverable's attempts a trainer sent back (newest first, at most ``limit``)."""
    return (
        db.connection()
        .execute(
            """
            SELECT id::text AS id, attempt, submission_url, commit_sha, submission_text, file_key, file_size
            FROM submissions
            WHERE student_id = %s AND deliverable_id = %s AND status = 'CHANGES_REQUESTED'
            ORDER BY attempt DESC LIMIT %s
            """,
            (student_id, deliverable_id, limit),
        )
        .fetchall()
    )


def supersede_pending(cur: Cursor[Any], student_id: str, deliverable_id: int) -> str | None:
    row = cur.execute(
        """
        UPDATE submissions SET status = 'SUPERSEDED'
        WHERE student_id = %s AND deliverable_id = %s AND status = 'PENDING'
        RETURNING id::text AS id
        """,
        (student_id, deliverable_id),
    ).fetchone()
    return row["id"] if row else None


def insert_submission(
    cur: Cursor[Any],
    *,
    student_id: str,
    project_id: int,
    deliverable_id: int,
    attempt: int,
    submission_url: str | None = None,
    commit_sha: str | None = None,
    submission_text: str | None = None,
    file_key: str | None = None,
    file_size: int | None = None,
    file_content_type: str | None = None,
) -> str:
    row = cur.execute(
        """
        INSERT INTO submissions (student_id, project_id, deliverable_id, attempt, submission_url, commit_sha,
                                 submission_text, file_key, file_size, file_content_type)
        VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
        RETURNING id::text AS id
        """,
        (
            student_id,
            project_id,
            deliverable_id,
            attempt,
            submission_url,
            commit_sha,
            submission_text,
            file_key,
            file_size,
            file_content_type,
        ),
    )
    return db.one(row)["id"]


def submission_in(cur: Cursor[Any], student_id: str, submission_id: str) -> dict[str, Any]:
    """A submission the caller has just created in this transaction."""
    query = sql.SQL("SELECT {columns} FROM {source} WHERE s.id = %s AND s.student_id = %s").format(
        columns=_COLUMNS, source=_FROM
    )
    return db.one(cur.execute(query, (submission_id, student_id)))


def trainer_of(cur: Cursor[Any], student_id: str) -> dict[str, Any] | None:
    """The student's assigned trainer's contact (none assigned, or the account gone: None)."""
    return cur.execute(
        """
        SELECT u.id::text AS id, u.email::text AS email, u.name FROM trainer_assignments a
        JOIN users u ON u.id = a.trainer_id
        WHERE a.student_id = %s AND u.deleted_at IS NULL AND u.is_active
        """,
        (student_id,),
    ).fetchone()


# --- reading -----------------------------------------------------------------------------------------


def submission_of(student_id: str, submission_id: str) -> dict[str, Any] | None:
    """The student's own submission; someone else's is None, as is one that does not exist."""
    query = sql.SQL("SELECT {columns} FROM {source} WHERE s.id = %s AND s.student_id = %s").format(
        columns=_COLUMNS, source=_FROM
    )
    return db.connection().execute(query, (submission_id, student_id)).fetchone()


def submissions_of(
    student_id: str,
    *,
    deliverable_id: int | None,
    status: str | None,
    after: list[Any] | None,
    limit: int,
) -> list[dict[str, Any]]:
    """The student's submissions, newest first: index submissions_student_submitted
    (student_id, submitted_at DESC, id DESC), the filters applied on its rows."""
    clauses = [sql.SQL("s.student_id = %s")]
    params: list[Any] = [student_id]
    if deliverable_id is not None:
        clauses.append(sql.SQL("s.deliverable_id = %s"))
        params.append(deliverable_id)
    if status is not None:
        clauses.append(sql.SQL("s.status = %s"))
        params.append(status)
    if after is not None:
        clauses.append(sql.SQL("(s.submitted_at, s.id) < (%s::timestamptz, %s::uuid)"))
        params.extend(after)
    query = sql.SQL(
        "SELECT {columns} FROM {source} WHERE {where} ORDER BY s.submitted_at DESC, s.id DESC LIMIT %s"
    ).format(columns=_COLUMNS, source=_FROM, where=sql.SQL(" AND ").join(clauses))
    return db.connection().execute(query, (*params, limit + 1)).fetchall()
