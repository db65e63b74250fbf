"""SQL of the provision domain on the application database. Every query is parameterised."""

from __future__ import annotations

from typing import Any

from apranova import db


def active_user_exists(user_id: str) -> bool:
    row = db.connection().execute("SELECT 1 FROM users WHERE id = %s AND deleted_at IS NULL", (user_id,)).fetchone()
    return row is not None


def student_database_credentials(user_id: str) -> dict[str, Any] | None:
    return (
        db.connection()
        .execute(
            """
            SELECT database_name, schema_name, role_name, password_parameter_name
            FROM student_database_credentials WHERE user_id = %s
            """,
            (user_id,),
        )
        .fetchone()
    )


def upsert_student_database_credentials(
    *, user_id: str, database_name: str, schema_name: str, role_name: str, password_parameter_name: str
) -> None:
    """One row per student: names and the SSM parameter name of the password, never the password."""
    db.connection().execute(
        """
        INSERT INTO student_database_credentials
            (user_id, database_name, schema_name, role_name, password_parameter_name)
        VALUES (%s, %s, %s, %s, %s)
        ON CONFLICT (user_id) DO UPDATE SET
            database_name = EXCLUDED.database_name,
            schema_name = EXCLUDED.schema_name,
            role_name = EXCLUDED.role_name,
            password_parameter_name = EXCLUDED.password_parameter_name
        WHERE (student_database_credentials.database_name, student_database_credentials.schema_name,
               student_database_credentials.role_name, student_database_credentials.password_parameter_name)
              IS DISTINCT FROM
              (EXCLUDED.database_name, EXCLUDED.schema_name, EXCLUDED.role_name, EXCLUDED.password_parameter_name)
        """,
        (user_id, database_name, schema_name, role_name, password_parameter_name),
    )


def delete_student_database_credentials(user_id: str) -> None:
    db.connection().execute("DELETE FROM student_database_credentials WHERE user_id = %s", (user_id,))
