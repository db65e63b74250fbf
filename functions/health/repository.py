"""The health function's only query."""

from __future__ import annotations

from apranova import db


def database_answers() -> bool:
    import psycopg

    try:
        db.connection().execute("SELECT 1").fetchone()
    except psycopg.Error:
        db.reset()
        return False
    return True
