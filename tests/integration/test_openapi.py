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


def test_the_document_declares_every_status_with_our_error_body() -> None:
    document = json.loads(openapi.DOCUMENT.read_text())
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas  # Powertools' {"detail": [...]} is not what we answer
    assert schemas["Error"]["required"] == ["error", "detail"]
    for route in routes.ROUTES:
        if route.local_only:
            continue
        responses = document["paths"][route.path][route.method.lower()]["responses"]
        assert {"422", "429", "503"} <= set(responses), route.key
        if route.access.needs_token:
            assert "401" in responses, route.key
        for status, response in responses.items():
            if status.startswith(("4", "5")):
                schema = response["content"]["application/json"]["schema"]
                assert "#/components/schemas/Error" in json.dumps(schema), (route.key, status)


def test_success_statuses_are_the_real_ones() -> None:
    document = json.loads(openapi.DOCUMENT.read_text())

    def successes(key: str) -> set[str]:
        method, path = key.split(" ")
        return {s for s in document["paths"][path][method.lower()]["responses"] if s.startswith("2")}

    assert successes("POST /api/auth/registration/") == {"201"}
    assert successes("POST /api/compliance/export-data/") == {"202"}
    assert successes("POST /api/compliance/accept-consent/") == {"200", "201"}
    assert successes("GET /api/curriculum/tracks/") == {"200"}


def test_enforced_limits_are_in_the_schema() -> None:
    document = json.loads(openapi.DOCUMENT.read_text())
    schemas = document["components"]["schemas"]
    assert schemas["Registration"]["properties"]["email"]["format"] == "email"
    assert schemas["Registration"]["properties"]["password"]["minLength"] >= 12
    assert schemas["TrackChoice"]["properties"]["track"]["enum"] == ["DP", "FSD"]
    limit = next(
        p for p in document["paths"]["/api/payments/my-payments/"]["get"]["parameters"] if p["name"] == "limit"
    )
    assert (limit["schema"]["minimum"], limit["schema"]["maximum"]) == (1, 100)
    webhook = document["paths"]["/api/payments/webhook/"]["post"]
    assert webhook["parameters"][0]["name"] == "Stripe-Signature" and webhook["parameters"][0]["required"]
    assert webhook["requestBody"]["required"]
    review = schemas["ReviewRequest"]
    assert review["if"]["properties"]["decision"]["const"] == "request_changes"
    assert "feedback" in review["then"]["required"]


def test_links_lead_from_what_is_created_to_where_it_is_read() -> None:
    document = json.loads(openapi.DOCUMENT.read_text())
    operation_ids = {op["operationId"] for ops in document["paths"].values() for op in ops.values()}
    links = document["paths"]["/api/payments/create-checkout-session/"]["post"]["responses"]["201"]["links"]
    assert links["PaymentStatus"]["parameters"] == {"id": "$response.body#/payment_id"}
    export = document["paths"]["/api/compliance/export-data/"]["post"]["responses"]["202"]["links"]
    assert export["Export"]["parameters"] == {"id": "$response.body#/id"}
    for ops in document["paths"].values():
        for op in ops.values():
            for response in op["responses"].values():
                for link in response.get("links", {}).values():
                    assert link["operationId"] in operation_ids


def test_a_typed_client_generates_from_the_committed_document(tmp_path) -> None:
    """The web app's types: openapi-typescript (pinned in package.json) reads the document cleanly."""
    import shutil
    import subprocess

    binary = openapi.ROOT / "node_modules" / ".bin" / "openapi-typescript"
    assert binary.exists(), "run `make setup` (npm ci installs openapi-typescript)"
    node = shutil.which("node", path=str(openapi.ROOT / "node_modules" / ".bin"))
    out = tmp_path / "api.d.ts"
    done = subprocess.run(
        [str(binary), str(openapi.DOCUMENT), "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": f"{openapi.ROOT / 'node_modules' / '.bin'}:/usr/bin:/bin", "HOME": str(tmp_path)},
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    types = out.read_text()
    assert "paths" in types and '"/api/payments/create-checkout-session/"' in types
    assert node is not None
