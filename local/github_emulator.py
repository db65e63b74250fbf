"""A small GitHub for the local stack and the tests (docs/principles.md §11: an emulator for every outside
service we call, never the real host), as the Stripe emulator is for Stripe.

It serves the GitHub REST API the submissions function calls, in GitHub's shapes and errors:

- ``GET /repos/{owner}/{repo}``: the repository (404 ``Not Found`` when there is none);
- ``GET /repos/{owner}/{repo}/commits/{ref}``: the commit ``ref`` names (``HEAD``, a branch, a full
  SHA or a unique prefix of 7 or more): 404 for no repository, 409 ``Git Repository is empty.``,
  422 ``No commit found for SHA: <ref>``.

Owner and repository names match case-insensitively, as on GitHub. A request with an
``Authorization`` header whose token the emulator was not given is 401 ``Bad credentials`` (GitHub
refuses a bad token even for public data); without one it is answered anonymously.

Test controls (what a person would do on github.com): ``POST /_test/repos`` with ``{"owner", "repo",
"default_branch"?}`` creates a public repository; ``POST /_test/repos/{owner}/{repo}/commits`` with
``{"message", "branch"?}`` pushes a commit and answers its ``sha``. State is saved as JSON.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

DOCS = "https://docs.github.com/rest"
_ROUTES = Map(
    [
        Rule("/repos/<owner>/<repo>", endpoint="repo", methods=["GET"]),
        Rule("/repos/<owner>/<repo>/commits/<path:ref>", endpoint="commit", methods=["GET"]),
        Rule("/_test/repos", endpoint="create_repo", methods=["POST"]),
        Rule("/_test/repos/<owner>/<repo>/commits", endpoint="push", methods=["POST"]),
    ]
)
MIN_PREFIX = 7


class GitHubEmulator:
    def __init__(self, tokens: set[str] | None = None) -> None:
        self.tokens = set(tokens or ())
        self._lock = threading.Lock()
        # "owner/repo" in lower case → {owner, name, default_branch, branches: {name: sha}, commits: {sha: {...}}}
        self.repos: dict[str, dict[str, Any]] = {}
        self.requests: list[dict[str, Any]] = []  # what was asked (a test tells whether GitHub was called)

    # -- state -----------------------------------------------------------------------------------

    def create_repo(self, owner: str, repo: str, default_branch: str = "main") -> dict[str, Any]:
        with self._lock:
            key = f"{owner}/{repo}".lower()
            if key not in self.repos:
                self.repos[key] = {
                    "owner": owner,
                    "name": repo,
                    "default_branch": default_branch,
                    "branches": {},
                    "commits": {},
                }
            return self.repos[key]

    def push(self, owner: str, repo: str, message: str, branch: str | None = None) -> str:
        """A new commit on ``branch`` (the default branch when None); its SHA."""
        with self._lock:
            found = self.repos.get(f"{owner}/{repo}".lower())
            if found is None:
                raise KeyError(f"{owner}/{repo}")
            branch = branch or found["default_branch"]
            parent = found["branches"].get(branch)
            sha = hashlib.sha1(  # noqa: S324 - a commit id, as git makes it, not a secret
                f"{owner}/{repo}\n{branch}\n{parent}\n{message}\n{len(found['commits'])}".encode()
            ).hexdigest()
            found["commits"][sha] = {"message": message, "parent": parent, "branch": branch}
            found["branches"][branch] = sha
            return sha

    def save(self, path: Path) -> None:
        with self._lock:
            data = json.dumps({"repos": self.repos}, indent=1)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(data)
        tmp.replace(path)

    def load(self, path: Path) -> None:
        if path.exists():
            with self._lock:
                self.repos = json.loads(path.read_text())["repos"]

    # -- HTTP ------------------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        self.requests.append({"method": request.method, "path": request.path, "headers": dict(request.headers)})
        return self._answer(request)(environ, start_response)

    def _answer(self, request: Request) -> Response:
        try:
            endpoint, args = _ROUTES.bind_to_environ(request.environ).match()
        except Exception:  # noqa: BLE001 - an unknown path or method is GitHub's 404
            return _error(404, "Not Found")
        if endpoint in ("create_repo", "push"):
            return self._control(endpoint, request, args)
        scheme, _, token = (request.headers.get("Authorization") or "").partition(" ")
        if scheme and (scheme.lower() not in ("bearer", "token") or token.strip() not in self.tokens):
            return _error(401, "Bad credentials")
        with self._lock:
            found = self.repos.get(f"{args['owner']}/{args['repo']}".lower())
            if found is None:
                return _error(404, "Not Found")
            if endpoint == "repo":
                return _json(200, _repo(found))
            return self._commit(found, args["ref"])

    def _commit(self, found: dict[str, Any], ref: str) -> Response:
        if not found["commits"]:
            return _error(409, "Git Repository is empty.")
        name = found["default_branch"] if ref == "HEAD" else ref
        sha = found["branches"].get(name)
        if sha is None and len(ref) >= MIN_PREFIX:
            matches = [s for s in found["commits"] if s.startswith(ref.lower())]
            sha = matches[0] if len(matches) == 1 else None
        if sha is None:
            return _error(422, f"No commit found for SHA: {ref}")
        commit = found["commits"][sha]
        full_name = f"{found['owner']}/{found['name']}"
        return _json(
            200,
            {
                "sha": sha,
                "commit": {"message": commit["message"]},
                "parents": [{"sha": commit["parent"]}] if commit["parent"] else [],
                "html_url": f"https://github.com/{full_name}/commit/{sha}",
            },
        )

    def _control(self, endpoint: str, request: Request, args: Mapping[str, Any]) -> Response:
        body = request.get_json(silent=True) or {}
        if endpoint == "create_repo":
            if not body.get("owner") or not body.get("repo"):
                return _error(422, "owner and repo are required")
            found = self.create_repo(body["owner"], body["repo"], body.get("default_branch") or "main")
            return _json(201, _repo(found))
        try:
            sha = self.push(args["owner"], args["repo"], str(body.get("message") or "work"), body.get("branch"))
        except KeyError:
            return _error(404, "Not Found")
        return _json(201, {"sha": sha})


def _repo(found: dict[str, Any]) -> dict[str, Any]:
    full_name = f"{found['owner']}/{found['name']}"
    return {
        "name": found["name"],
        "full_name": full_name,
        "owner": {"login": found["owner"]},
        "private": False,
        "default_branch": found["default_branch"],
        "html_url": f"https://github.com/{full_name}",
    }


def _json(status: int, body: Any) -> Response:
    return Response(json.dumps(body), status=status, content_type="application/json; charset=utf-8")


def _error(status: int, message: str) -> Response:
    return _json(status, {"message": message, "documentation_url": DOCS, "status": str(status)})
