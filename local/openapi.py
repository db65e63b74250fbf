"""One OpenAPI 3.1 document for the whole API, merged from every function's Powertools resolver.

Only operations of the route table are kept (the table is what API Gateway serves); routes that
need a token are marked with the Cognito bearer scheme. ``python -m local.openapi --write`` writes
``docs/openapi.json``; ``--check`` exits 1 when the committed file differs from the code.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path
from typing import Any

from apranova import routes

ROOT = Path(__file__).resolve().parent.parent
DOCUMENT = ROOT / "docs" / "openapi.json"
TITLE = "ApraNova API"
VERSION = "1.0.0"
SECURITY_SCHEME = "cognito"


def build() -> dict[str, Any]:
    api_routes = {(r.method.lower(), r.path): r for r in routes.ROUTES if not r.local_only}
    paths: dict[str, dict[str, Any]] = {}
    schemas: dict[str, Any] = {}
    for function in routes.functions():
        app = importlib.import_module(routes.handler_module(function)).app
        part = json.loads(app.get_openapi_json_schema(title=TITLE, version=VERSION))
        for path, operations in part.get("paths", {}).items():
            for method, operation in operations.items():
                route = api_routes.get((method, path))
                if route is None or route.function != function:
                    continue  # not served by API Gateway (or served by another function)
                if route.access.needs_token:
                    operation["security"] = [{SECURITY_SCHEME: []}]
                operation.setdefault("tags", [path.split("/")[2] if path.count("/") > 2 else "api"])
                paths.setdefault(path, {})[method] = operation
        for name, schema in part.get("components", {}).get("schemas", {}).items():
            if name in schemas and schemas[name] != schema:
                raise RuntimeError(f"two functions define different OpenAPI schemas named {name!r}")
            schemas[name] = schema
    return {
        "openapi": "3.1.0",
        "info": {
            "title": TITLE,
            "version": VERSION,
            "description": "The ApraNova HTTP API. Generated from the code by `make openapi`; do not edit.",
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                SECURITY_SCHEME: {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "A Cognito access token (POST /api/auth/login/ returns it as `access`).",
                }
            },
        },
    }


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.openapi", description=__doc__)
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--write", action="store_true", help="write docs/openapi.json")
    group.add_argument("--check", action="store_true", help="exit 1 if docs/openapi.json differs from the code")
    args = parser.parse_args(argv)
    text = render(build())
    if args.write:
        DOCUMENT.parent.mkdir(parents=True, exist_ok=True)
        DOCUMENT.write_text(text)
        print(f"wrote {DOCUMENT.relative_to(ROOT)}")
        return 0
    if not DOCUMENT.exists() or DOCUMENT.read_text() != text:
        print(f"{DOCUMENT.relative_to(ROOT)} is out of date: run `make openapi`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
