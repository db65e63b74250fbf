"""SQL of the curriculum domain. Every query is parameterised and runs on the environment's connection."""

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
