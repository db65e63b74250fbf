"""The local GitHub (local/github_emulator.py) answers the submissions function's real client
(functions/submissions/github.py) as GitHub does: repositories and commits created over HTTP, as a
person pushes them, resolved by HEAD, branch and SHA prefix; GitHub's errors for the rest."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from werkzeug.serving import WSGIRequestHandler, make_server

from functions.submissions import github
from local.github_emulator import GitHubEmulator


class Quiet(WSGIRequestHandler):
    def log_request(self, *args: object) -> None:
        pass


@pytest.fixture
def emulator() -> Iterator[tuple[GitHubEmulator, str]]:
    import threading

    app = GitHubEmulator(tokens={"ghp_local_token"})
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield app, f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()


def push(url: str, owner: str, repo: str, message: str, branch: str | None = None) -> str:
    answer = requests.post(
        f"{url}/_test/repos/{owner}/{repo}/commits", json={"message": message, "branch": branch}, timeout=10
    )
    assert answer.status_code == 201, answer.text
    return answer.json()["sha"]


def test_a_pushed_repository_resolves_by_head_branch_and_prefix(emulator) -> None:
    _app, url = emulator
    created = requests.post(f"{url}/_test/repos", json={"owner": "Ada-L", "repo": "kpi.sql"}, timeout=10)
    assert created.status_code == 201 and created.json()["default_branch"] == "main"
    first = push(url, "Ada-L", "kpi.sql", "schema")
    head = push(url, "Ada-L", "kpi.sql", "queries")
    feature = push(url, "Ada-L", "kpi.sql", "kpis", branch="feature/kpis")
    assert len({first, head, feature}) == 3 and all(github.SHA.match(s) for s in (first, head, feature))

    assert github.resolve_commit(url, "ada-l", "KPI.sql") == head  # names match case-insensitively
    assert github.resolve_commit(url, "Ada-L", "kpi.sql", "feature/kpis") == feature
    assert github.resolve_commit(url, "Ada-L", "kpi.sql", first[:7]) == first
    assert github.resolve_commit(url, "Ada-L", "kpi.sql", "main", token="ghp_local_token") == head
    repo = requests.get(f"{url}/repos/Ada-L/kpi.sql", timeout=10).json()
    assert (repo["full_name"], repo["private"]) == ("Ada-L/kpi.sql", False)


def test_githubs_errors_for_what_is_not_there(emulator) -> None:
    app, url = emulator
    app.create_repo("ada", "empty")
    app.create_repo("ada", "kpi")
    push(url, "ada", "kpi", "work")
    with pytest.raises(github.RepositoryNotFound) as missing:
        github.resolve_commit(url, "ada", "nope")
    assert missing.value.reason == "repository_not_found"
    with pytest.raises(github.RepositoryNotFound) as empty:
        github.resolve_commit(url, "ada", "empty")
    assert empty.value.reason == "no_commit"
    with pytest.raises(github.RepositoryNotFound) as unknown_ref:
        github.resolve_commit(url, "ada", "kpi", "no-such-branch")
    assert unknown_ref.value.reason == "no_commit"
    # A bad token is refused even for a public repository, as GitHub does: not the student's fault.
    with pytest.raises(github.GitHubUnavailable):
        github.resolve_commit(url, "ada", "kpi", token="ghp_wrong")
    answer = requests.get(f"{url}/repos/ada/nope", timeout=10)
    assert answer.status_code == 404 and answer.json()["message"] == "Not Found"
    assert app.requests[-1]["path"] == "/repos/ada/nope"


def test_repositories_survive_a_restart(tmp_path: Path) -> None:
    app = GitHubEmulator()
    app.create_repo("ada", "kpi")
    sha = app.push("ada", "kpi", "work")
    app.save(tmp_path / "github.json")
    again = GitHubEmulator()
    again.load(tmp_path / "github.json")
    assert again.repos["ada/kpi"]["branches"]["main"] == sha
