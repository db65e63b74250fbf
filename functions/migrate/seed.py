"""The idempotent seed: the catalogue, the first policy versions and the retention defaults.

Every row is upserted by its natural key with ``ON CONFLICT ... DO UPDATE ... WHERE (columns) IS
DISTINCT FROM (excluded columns)``, so a second run writes nothing: no row's content or
``updated_at`` changes. Nothing is ever deleted. What the seed owns and what it leaves alone:

- tracks, projects: the catalogue's content columns (names, texts, price, hours, stacks, tools,
  dataset key). ``is_active`` is only set on insert: switching a track off is an operator's call
  that a deploy must not undo.
- steps, deliverables: everything, including ``is_active``: a step or deliverable that disappears
  from the catalogue is deactivated (students' completions and submissions keep pointing at it).
- privacy policy and terms: the catalogue's version is the first one, inserted only while the table
  has none. Any row whose effective_at has passed is a candidate for the version in force
  (migration 0010), so a later catalogue version inserted by a deploy would replace an admin's
  publication; later versions are published through the admin route instead. A published text is
  never rewritten (people accepted that text).
- retention policies: inserted with the default period; later runs keep the period an admin set and
  only refresh the description and the legal floor (raising the period to a new legal minimum).
"""

from __future__ import annotations

from collections import Counter
from types import ModuleType, SimpleNamespace
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import tuple_row
from psycopg.types.json import Jsonb

from functions.migrate import catalogue as default_catalogue

# pg_advisory_xact_lock key, distinct from the migration runner's: concurrent seeds serialise.
SEED_LOCK_KEY = int.from_bytes(b"apraseed", "big")

TRACK_COLUMNS = ["name", "description", "icon", "duration_weeks", "price_cents", "currency"]
PROJECT_COLUMNS = [
    "title",
    "subtitle",
    "description",
    "project_type",
    "tech_stack",
    "tools",
    "estimated_hours",
    "dataset_key",
]
STEP_COLUMNS = ["title", "description", "estimated_minutes", "is_optional", "resources", "is_active"]
DELIVERABLE_COLUMNS = [
    "title",
    "description",
    "deliverable_type",
    "is_required",
    "accepted_content_types",
    "max_file_bytes",
    "is_active",
]
TABLES = [
    "tracks",
    "projects",
    "project_steps",
    "deliverables",
    "privacy_policies",
    "terms_of_service",
    "data_retention_policies",
]


def seed_database(conn: psycopg.Connection, catalogue: ModuleType | SimpleNamespace | None = None) -> dict[str, int]:
    """Upsert the catalogue in one transaction; returns how many rows each table got inserted/updated."""
    cat = catalogue or default_catalogue
    counts: Counter[str] = Counter({f"{table}_{what}": 0 for table in TABLES for what in ("inserted", "updated")})
    counts.update({"project_steps_deactivated": 0, "deliverables_deactivated": 0})
    with conn.transaction(), conn.cursor(row_factory=tuple_row) as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (SEED_LOCK_KEY,))
        track_ids = {}
        for track in cat.TRACKS:
            values = {"code": track["code"], **{c: track[c] for c in TRACK_COLUMNS}}
            track_ids[track["code"]] = _upsert(cur, counts, "tracks", ["code"], values, TRACK_COLUMNS)
        for project in cat.PROJECTS:
            values = {"track_id": track_ids[project["track"]], "number": project["number"]}
            values.update({c: project[c] for c in PROJECT_COLUMNS})
            project_id = _upsert(cur, counts, "projects", ["track_id", "number"], values, PROJECT_COLUMNS)
            for step in project["steps"]:
                values = {"project_id": project_id, "number": step["number"], "is_active": True}
                values.update({c: step[c] for c in STEP_COLUMNS if c != "is_active"})
                values["resources"] = Jsonb(values["resources"])
                _upsert(cur, counts, "project_steps", ["project_id", "number"], values, STEP_COLUMNS)
            for deliverable in project["deliverables"]:
                values = {"project_id": project_id, "number": deliverable["number"], "is_active": True}
                values.update({c: deliverable[c] for c in DELIVERABLE_COLUMNS if c != "is_active"})
                _upsert(cur, counts, "deliverables", ["project_id", "number"], values, DELIVERABLE_COLUMNS)
            for table, items in (("project_steps", project["steps"]), ("deliverables", project["deliverables"])):
                counts[f"{table}_deactivated"] += _deactivate_missing(cur, table, project_id, items)
        _policy(cur, counts, "privacy_policies", cat.PRIVACY_POLICY)
        _policy(cur, counts, "terms_of_service", cat.TERMS_OF_SERVICE)
        for policy in cat.RETENTION_POLICIES:
            _retention(cur, counts, policy)
    return dict(counts)


def _upsert(
    cur: psycopg.Cursor, counts: Counter[str], table: str, keys: list[str], values: dict[str, Any], update: list[str]
) -> int:
    """Insert or, when a listed column differs, update the row with these key values; return its id."""
    columns = list(values)
    target = sql.Identifier(table)
    changed = sql.SQL(", ").join(sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c)) for c in update)
    current = sql.SQL(", ").join(sql.SQL("{}.{}").format(target, sql.Identifier(c)) for c in update)
    incoming = sql.SQL(", ").join(sql.SQL("EXCLUDED.{}").format(sql.Identifier(c)) for c in update)
    query = sql.SQL(
        "INSERT INTO {table} ({columns}) VALUES ({values}) ON CONFLICT ({keys}) DO UPDATE SET {changed}"
        " WHERE ({current}) IS DISTINCT FROM ({incoming}) RETURNING id, (xmax = 0) AS inserted"
    ).format(
        table=target,
        columns=sql.SQL(", ").join(map(sql.Identifier, columns)),
        values=sql.SQL(", ").join(sql.Placeholder() * len(columns)),
        keys=sql.SQL(", ").join(map(sql.Identifier, keys)),
        changed=changed,
        current=current,
        incoming=incoming,
    )
    cur.execute(query, list(values.values()))
    row = cur.fetchone()
    if row is not None:
        counts[f"{table}_{'inserted' if row[1] else 'updated'}"] += 1
        return row[0]
    where = sql.SQL(" AND ").join(sql.SQL("{} = %s").format(sql.Identifier(k)) for k in keys)
    cur.execute(sql.SQL("SELECT id FROM {} WHERE {}").format(target, where), [values[k] for k in keys])
    found = cur.fetchone()
    assert found is not None  # the conflicting row exists: we hold its lock
    return found[0]


def _deactivate_missing(cur: psycopg.Cursor, table: str, project_id: int, items: list[dict[str, Any]]) -> int:
    cur.execute(
        sql.SQL(
            "UPDATE {} SET is_active = false WHERE project_id = %s AND is_active AND NOT (number = ANY(%s))"
        ).format(sql.Identifier(table)),
        (project_id, [item["number"] for item in items]),
    )
    return cur.rowcount


def _policy(cur: psycopg.Cursor, counts: Counter[str], table: str, policy: dict[str, str]) -> None:
    cur.execute(
        sql.SQL(
            "INSERT INTO {table} (version, content, summary, effective_at, is_active)"
            " SELECT %s, %s, %s, now(), true WHERE NOT EXISTS (SELECT 1 FROM {table})"
            " ON CONFLICT (version) DO NOTHING RETURNING id"
        ).format(table=sql.Identifier(table)),
        (policy["version"], policy["content"], policy["summary"]),
    )
    if cur.fetchone() is not None:
        counts[f"{table}_inserted"] += 1


def _retention(cur: psycopg.Cursor, counts: Counter[str], policy: dict[str, Any]) -> None:
    cur.execute(
        """
        INSERT INTO data_retention_policies AS t
            (resource_type, retention_days, legal_minimum_days, legal_requirement, description)
        VALUES (%(resource_type)s, %(retention_days)s, %(legal_minimum_days)s, %(legal_requirement)s, %(description)s)
        ON CONFLICT (resource_type) DO UPDATE SET
            description = EXCLUDED.description,
            legal_requirement = EXCLUDED.legal_requirement,
            legal_minimum_days = EXCLUDED.legal_minimum_days,
            retention_days = greatest(t.retention_days, coalesce(EXCLUDED.legal_minimum_days, 1))
        WHERE (t.description, t.legal_requirement, t.legal_minimum_days)
              IS DISTINCT FROM (EXCLUDED.description, EXCLUDED.legal_requirement, EXCLUDED.legal_minimum_days)
           OR t.retention_days < coalesce(EXCLUDED.legal_minimum_days, 1)
        RETURNING (xmax = 0) AS inserted
        """,
        policy,
    )
    row = cur.fetchone()
    if row is not None:
        counts[f"data_retention_policies_{'inserted' if row[0] else 'updated'}"] += 1
