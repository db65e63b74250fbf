"""The route table is the single source of routes: every function serves exactly its rows."""

from __future__ import annotations

import importlib

import pytest

from apranova import routes
from apranova.routes import Access, Route

DEPLOYED = [r for r in routes.ROUTES if not r.local_only]


def test_route_keys_are_unique():
    keys = [r.key for r in routes.ROUTES]
    assert len(keys) == len(set(keys))


def test_paths_keep_the_trailing_slash_of_the_contract():
    for route in routes.ROUTES:
        assert route.path.startswith("/api/")
        assert route.path.endswith("/") or route.path.endswith(".json"), route.path


@pytest.mark.parametrize("function", routes.functions())
def test_every_function_has_a_lambda_handler(function: str):
    module = importlib.import_module(routes.handler_module(function))
    assert callable(module.lambda_handler)


@pytest.mark.parametrize("function", sorted({r.function for r in DEPLOYED}))
def test_each_function_serves_exactly_its_routes_in_the_table(function: str):
    app = importlib.import_module(routes.handler_module(function)).app
    served = {(r.method, r.path) for r in app._static_routes + app._dynamic_routes}
    assert served == {(r.method, r.resolver_path) for r in DEPLOYED if r.function == function}


def test_match_finds_the_route_and_the_allowed_methods():
    route, allowed = routes.match("GET", "/api/curriculum/tracks/")
    assert route is not None and route.function == "curriculum"
    assert allowed == ["GET"]
    route, allowed = routes.match("POST", "/api/curriculum/tracks/")
    assert route is None and allowed == ["GET"]
    assert routes.match("GET", "/api/nowhere/") == (None, [])
    # Without the trailing slash it is another path, as in API Gateway.
    assert routes.match("GET", "/api/curriculum/tracks") == (None, [])


def test_path_parameters_are_read_from_the_path():
    route = Route("GET", "/api/curriculum/projects/{id}/steps/{step_id}/", "curriculum", Access.STUDENT)
    assert routes.path_parameters(route, "/api/curriculum/projects/7/steps/12/") == {"id": "7", "step_id": "12"}
    assert route.resolver_path == "/api/curriculum/projects/<id>/steps/<step_id>/"


def test_only_token_access_levels_need_a_token():
    assert {a for a in Access if a.needs_token} == {Access.USER, Access.STUDENT, Access.TRAINER, Access.ADMIN}
