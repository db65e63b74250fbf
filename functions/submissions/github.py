"""GitHub's REST API, for one question: which commit is a repository's ref (HEAD by default) at now.

Unauthenticated (public repositories; GitHub allows 60 such requests an hour per address). The
outcome is one of: the 40-hex SHA, ``RepositoryNotFound`` (no such repository, not public, or no
commit at that ref: the student's input is wrong) or ``GitHubUnavailable`` (GitHub could not answer:
network, timeout, rate limit, 5xx). Nothing from the response body but the SHA is used or logged.
"""

from __future__ import annotations

import re
from urllib.parse import quote

import requests

from apranova.observability import logger

SHA = re.compile(r"^[0-9a-f]{40}$")
HEADERS = {
    "Accept": "application/vnd.github+json",
    "X-GitHub-Api-Version": "2022-11-28",
    "User-Agent": "apranova-submissions",
}


class RepositoryNotFound(Exception):
    """The repository does not exist (or is not public), or it has no commit at the ref."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class GitHubUnavailable(Exception):
    """GitHub did not give an answer we can act on; the request can be retried."""


def resolve_commit(api_url: str, owner: str, repo: str, ref: str = "HEAD", *, timeout: float = 5.0) -> str:
    """The full SHA of ``ref`` in ``owner/repo``."""
    url = f"{api_url.rstrip('/')}/repos/{quote(owner, safe='')}/{quote(repo, safe='')}/commits/{quote(ref, safe='/')}"
    try:
        response = requests.get(url, headers=HEADERS, timeout=(min(timeout, 3.0), timeout), allow_redirects=True)
    except requests.RequestException as error:
        logger.warning("github unreachable", extra={"error_class": type(error).__name__})
        raise GitHubUnavailable(type(error).__name__) from None
    status = response.status_code
    if status == 200:
        try:
            sha = str(response.json().get("sha", "")).lower()
        except (ValueError, AttributeError):
            sha = ""
        if SHA.match(sha):
            return sha
        logger.warning("github answered without a commit sha", extra={"status": status})
        raise GitHubUnavailable("no sha in the answer")
    if status == 404:
        raise RepositoryNotFound("repository_not_found")
    if status in (409, 422):  # 409: the repository is empty; 422: no commit for that ref
        raise RepositoryNotFound("no_commit")
    logger.warning("github refused the commit lookup", extra={"status": status})
    raise GitHubUnavailable(f"status {status}")
