"""The seed: idempotent, complete, and never destructive."""

from __future__ import annotations

import copy
import uuid
from types import SimpleNamespace

import psycopg
import pytest
from psycopg.rows import dict_row

from functions.migrate import catalogue
from functions.migrate.dataset import DATASET_KEY
from functions.migrate.runner import discover, migrate
from functions.migrate.seed import TABLES, seed_database

STUDENT_TABLES = ["users", "student_progress", "step_completions", "submissions", "user_consents"]


def _connect(url: str) -> psycopg.Connection:
    return psycopg.connect(url, autocommit=True, row_factory=dict_row)


def _dump(conn, tables) -> dict[str, list[dict]]:
    return {table: conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall() for table in tables}


def _catalogue(**changes) -> SimpleNamespace:
    names = ["TRACKS", "PROJECTS", "PRIVACY_POLICY", "TERMS_OF_SERVICE", "RETENTION_POLICIES"]
    cat = SimpleNamespace(**{name: copy.deepcopy(getattr(catalogue, name)) for name in names})
    for name, value in changes.items():
        setattr(cat, name, value)
    return cat


@pytest.fixture
def fresh(make_database):
    url = make_database("apranova_seed")
    with _connect(url) as conn:
        migrate(conn)
        yield conn


def _enrolled_student_with_work(conn) -> str:
    """A DP student with progress, a completed step, a submission and a consent."""
    user = str(uuid.uuid4())
    conn.execute(
        "INSERT INTO users (id, email, name, track_id, enrollment_status)"
        " VALUES (%s, %s, 'Ada', (SELECT id FROM tracks WHERE code = 'DP'), 'ENROLLED')",
        (user, f"ada-{user[:8]}@example.com"),
    )
    project = conn.execute(
        "SELECT p.id FROM projects p JOIN tracks t ON t.id = p.track_id WHERE t.code = 'DP' AND p.number = 1"
    ).fetchone()["id"]
    conn.execute(
        "INSERT INTO student_progress (student_id, project_id, status, unlocked_at, started_at)"
        " VALUES (%s, %s, 'IN_PROGRESS', now(), now())",
        (user, project),
    )
    conn.execute(
        "INSERT INTO step_completions (student_id, project_id, step_id)"
        " SELECT %s, project_id, id FROM project_steps WHERE project_id = %s",
        (user, project),
    )
    conn.execute(
        "INSERT INTO submissions (student_id, project_id, deliverable_id, attempt, submission_url)"
        " SELECT %s, project_id, id, 1, 'https://superset.example.com/dashboard/1'"
        " FROM deliverables WHERE project_id = %s AND number = 1",
        (user, project),
    )
    conn.execute(
        "INSERT INTO user_consents (user_id, privacy_policy_version, terms_version, source, ip_address)"
        " VALUES (%s, '1.0', '1.0', 'SIGNUP', '198.51.100.7')",
        (user,),
    )
    return user


def test_seeding_twice_changes_nothing(fresh):
    first = seed_database(fresh)
    assert first["tracks_inserted"] == 2 and first["projects_inserted"] == 6
    assert first["project_steps_inserted"] == 34 and first["deliverables_inserted"] == 19
    assert first["privacy_policies_inserted"] == first["terms_of_service_inserted"] == 1
    assert first["data_retention_policies_inserted"] == 7
    before = _dump(fresh, TABLES)
    second = seed_database(fresh)
    assert set(second.values()) == {0}, second
    assert _dump(fresh, TABLES) == before  # every column of every row, updated_at included


def test_the_catalogue_is_what_the_facts_say(conn):
    tracks = {r["code"]: r for r in conn.execute("SELECT * FROM tracks")}
    assert (tracks["DP"]["price_cents"], tracks["DP"]["currency"], tracks["DP"]["icon"]) == (49900, "USD", "database")
    assert (tracks["FSD"]["price_cents"], tracks["FSD"]["currency"], tracks["FSD"]["icon"]) == (59900, "USD", "code")
    assert {t["duration_weeks"] for t in tracks.values()} == {12}
    projects = conn.execute(
        "SELECT t.code, p.* FROM projects p JOIN tracks t ON t.id = p.track_id ORDER BY t.code, p.number"
    ).fetchall()
    by_track = {code: [p for p in projects if p["code"] == code] for code in tracks}
    assert [p["number"] for p in by_track["DP"]] == [1, 2, 3] and [p["number"] for p in by_track["FSD"]] == [1, 2, 3]
    assert [p["estimated_hours"] for p in projects] == [40, 45, 60, 30, 50, 70]
    assert [p["project_type"] for p in projects] == ["INTERNAL", "INTERNAL", "CAPSTONE"] * 2
    assert [p["subtitle"] for p in projects][:3] == [
        "Internal project",
        "Internal project",
        "Capstone (external cloud)",
    ]
    assert [sorted(p["tools"]) for p in projects] == [
        ["jupyter", "student_database", "superset"],
        ["jupyter", "prefect", "student_database"],
        [],
        ["workspace"],
        ["workspace"],
        [],
    ]
    assert by_track["DP"][0]["dataset_key"] == DATASET_KEY
    assert all(p["description"] and p["tech_stack"] for p in projects)

    minutes = conn.execute(
        "SELECT t.code, p.number, array_agg(s.estimated_minutes ORDER BY s.number) AS minutes,"
        " array_agg(s.number ORDER BY s.number) FILTER (WHERE s.is_optional) AS optional"
        " FROM project_steps s JOIN projects p ON p.id = s.project_id JOIN tracks t ON t.id = p.track_id"
        " GROUP BY t.code, p.number ORDER BY t.code, p.number"
    ).fetchall()
    assert [(m["code"], m["number"], m["minutes"], m["optional"]) for m in minutes] == [
        ("DP", 1, [180, 120, 240, 90, 300, 120], None),
        ("DP", 2, [60, 180, 150, 120, 240, 150], None),
        ("DP", 3, [120, 180, 240, 300, 180, 120], None),
        ("FSD", 1, [240, 180, 90, 60], [4]),
        ("FSD", 2, [300, 360, 120, 240, 180, 180], None),
        ("FSD", 3, [360, 420, 180, 240, 240, 180], None),
    ]

    deliverables = conn.execute(
        "SELECT t.code, p.number AS project, d.* FROM deliverables d JOIN projects p ON p.id = d.project_id"
        " JOIN tracks t ON t.id = p.track_id ORDER BY t.code, p.number, d.number"
    ).fetchall()
    types: dict[tuple[str, int], list[str]] = {}
    for d in deliverables:
        types.setdefault((d["code"], d["project"]), []).append(d["deliverable_type"])
    assert types == {
        ("DP", 1): ["LINK", "GITHUB", "FILE", "GITHUB"],
        ("DP", 2): ["GITHUB", "FILE", "TEXT", "FILE"],
        ("DP", 3): ["LINK", "GITHUB", "FILE"],
        ("FSD", 1): ["LINK", "GITHUB"],
        ("FSD", 2): ["LINK", "GITHUB", "FILE"],
        ("FSD", 3): ["LINK", "GITHUB", "FILE"],
    }
    optional = [(d["code"], d["project"], d["title"]) for d in deliverables if not d["is_required"]]
    assert optional == [("DP", 1, "Python cleaning script")]
    files = {d["title"]: d["accepted_content_types"] for d in deliverables if d["deliverable_type"] == "FILE"}
    assert files["PDF insights report"] == ["application/pdf"]
    assert "video/mp4" in files["Demo video of real-time notifications"]


def test_policies_and_retention_defaults(conn):
    for table in ("privacy_policies", "terms_of_service"):
        active = conn.execute(f"SELECT * FROM {table} WHERE is_active").fetchall()
        assert [p["version"] for p in active] == ["1.0"]
        assert active[0]["content"] and active[0]["summary"]
    privacy = conn.execute("SELECT content FROM privacy_policies WHERE version = '1.0'").fetchone()["content"]
    for must in ("Amazon Web Services", "Stripe", "payment", "submit", "consent", "export", "delete"):
        assert must.lower() in privacy.lower(), must
    retention = {
        r["resource_type"]: (r["retention_days"], r["legal_requirement"])
        for r in conn.execute("SELECT * FROM data_retention_policies")
    }
    assert retention == {
        "LOGS": (90, False),
        "AUDIT_LOGS": (365, False),
        "USER_DATA": (30, False),
        "PAYMENT_DATA": (2555, True),
        "SUBMISSIONS": (730, False),
        "EXPORTS": (7, False),
        "ABANDONED_CHECKOUTS": (30, False),
    }


def test_seeding_never_deletes_student_data(fresh):
    seed_database(fresh)
    user = _enrolled_student_with_work(fresh)
    before = _dump(fresh, STUDENT_TABLES)
    # The catalogue drops a step and a deliverable that the student has completed / submitted.
    projects = copy.deepcopy(catalogue.PROJECTS)
    projects[0]["steps"] = projects[0]["steps"][1:]
    projects[0]["deliverables"] = projects[0]["deliverables"][1:]
    counts = seed_database(fresh, _catalogue(PROJECTS=projects))
    assert (counts["project_steps_deactivated"], counts["deliverables_deactivated"]) == (1, 1)
    assert _dump(fresh, STUDENT_TABLES) == before
    gone = fresh.execute(
        "SELECT s.is_active FROM step_completions c JOIN project_steps s ON s.id = c.step_id"
        " WHERE c.student_id = %s AND s.number = 1",
        (user,),
    ).fetchone()
    assert gone == {"is_active": False}  # kept, only deactivated
    # Put back in the catalogue, it comes back active — still the same row.
    counts = seed_database(fresh)
    assert (counts["project_steps_updated"], counts["deliverables_updated"]) == (1, 1)
    assert _dump(fresh, STUDENT_TABLES) == before
    assert fresh.execute("SELECT bool_and(is_active) AS ok FROM project_steps").fetchone()["ok"]


def test_a_catalogue_change_updates_only_the_changed_rows(fresh):
    seed_database(fresh)
    before = _dump(fresh, ["tracks", "projects"])
    tracks = copy.deepcopy(catalogue.TRACKS)
    tracks[0]["price_cents"] = 54900
    counts = seed_database(fresh, _catalogue(TRACKS=tracks))
    assert counts["tracks_updated"] == 1 and counts["projects_updated"] == 0
    after = _dump(fresh, ["tracks", "projects"])
    assert after["projects"] == before["projects"]
    changed = [(b, a) for b, a in zip(before["tracks"], after["tracks"], strict=True) if b != a]
    assert len(changed) == 1
    old, new = changed[0]
    assert new["price_cents"] == 54900 and new["updated_at"] > old["updated_at"]
    assert {k for k in old if old[k] != new[k]} == {"price_cents", "updated_at"}


def test_operator_decisions_survive_a_reseed(fresh):
    seed_database(fresh)
    fresh.execute("UPDATE tracks SET is_active = false WHERE code = 'FSD'")
    fresh.execute("UPDATE data_retention_policies SET retention_days = 180 WHERE resource_type = 'AUDIT_LOGS'")
    with fresh.transaction():  # an admin published v1.1
        fresh.execute("UPDATE privacy_policies SET is_active = false WHERE is_active")
        fresh.execute(
            "INSERT INTO privacy_policies (version, content, summary, effective_at, is_active)"
            " VALUES ('1.1', 'new text', 'new', now(), true)"
        )
    seed_database(fresh)
    assert not fresh.execute("SELECT is_active FROM tracks WHERE code = 'FSD'").fetchone()["is_active"]
    assert (
        fresh.execute(
            "SELECT retention_days FROM data_retention_policies WHERE resource_type = 'AUDIT_LOGS'"
        ).fetchone()["retention_days"]
        == 180
    )
    assert [r["version"] for r in fresh.execute("SELECT version FROM privacy_policies WHERE is_active")] == ["1.1"]


def test_the_session_database_is_seeded(conn):
    counts = conn.execute(
        "SELECT t.code, count(p.id) AS n FROM tracks t LEFT JOIN projects p ON p.track_id = t.id GROUP BY t.code"
    ).fetchall()
    assert {r["code"]: r["n"] for r in counts} == {"DP": 3, "FSD": 3}


def test_the_deploy_handler_migrates_seeds_and_uploads_once(make_database, monkeypatch):
    import boto3
    from moto import mock_aws

    from functions.migrate.handler import lambda_handler
    from local.events import LambdaContext

    url = make_database("apranova_handler")
    monkeypatch.delenv("DB_SECRET_ARN", raising=False)
    monkeypatch.delenv("DB_APP_USER", raising=False)
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("DATASETS_BUCKET", "apranova-datasets")
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="apranova-datasets")
        first = lambda_handler({"RequestType": "Create"}, LambdaContext("migrate"))
        assert first["applied"] == [m.name for m in discover()]
        assert first["seeded"]["tracks_inserted"] == 2 and first["dataset_key"] == DATASET_KEY
        etag = s3.head_object(Bucket="apranova-datasets", Key=DATASET_KEY)["ETag"]
        second = lambda_handler({"RequestType": "Update"}, LambdaContext("migrate"))
        assert second["applied"] == [] and set(second["seeded"].values()) == {0}
        assert s3.head_object(Bucket="apranova-datasets", Key=DATASET_KEY)["ETag"] == etag
    with _connect(url) as conn:
        assert conn.execute("SELECT dataset_key FROM projects WHERE dataset_key IS NOT NULL").fetchall() == [
            {"dataset_key": DATASET_KEY}
        ]


def test_the_cli_migrates_and_seeds(make_database, capsys):
    from functions.migrate.__main__ import main

    url = make_database("apranova_cli")
    assert main(["--database-url", url]) == 0
    assert f"applied {len(discover())} migration(s)" in capsys.readouterr().out
    assert main(["--database-url", url]) == 0
    out = capsys.readouterr().out
    assert "none pending" in out and "seed: no changes" in out
