"""docs/openapi.json is generated from the code and must not drift from it."""

from __future__ import annotations

import json

from apranova import routes
from local import openapi


def test_committed_document_matches_the_code() -> None:
    assert openapi.DOCUMENT.exists(), "docs/openapi.json is missing: run `make openapi`"
    assert openapi.DOCUMENT.read_text() == openapi.render(openapi.build()), (
        "docs/openapi.json is out of date: run `make openapi`"
    )


def test_every_api_route_is_documented_and_nothing_else() -> None:
    document = json.loads(openapi.DOCUMENT.read_text())
    documented = {(method.upper(), path) for path, ops in document["paths"].items() for method in ops}
    table = {(r.method, r.path) for r in routes.ROUTES if not r.local_only}
    assert documented == table


def test_protected_routes_carry_the_bearer_scheme() -> None:
    document = openapi.build()
    assert document["openapi"].startswith("3.1")
    assert document["info"]["title"] == "ApraNova API"
    for route in routes.ROUTES:
        if route.local_only:
            continue
        operation = document["paths"][route.path][route.method.lower()]
        assert bool(operation.get("security")) == route.access.needs_token, route.key


def test_check_mode_reports_drift(tmp_path, monkeypatch) -> None:
    stale = tmp_path / "openapi.json"
    stale.write_text("{}\n")
    monkeypatch.setattr(openapi, "DOCUMENT", stale)
    monkeypatch.setattr(openapi, "ROOT", tmp_path)
    assert openapi.main(["--check"]) == 1
    assert openapi.main(["--write"]) == 0
    assert openapi.main(["--check"]) == 0
