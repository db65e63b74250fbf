"""GitHub's REST API, for one question: which commit is a repository's ref (HEAD by default) at now.

Public repositories only. Authenticated when the operator stored a token in SSM
(``GITHUB_TOKEN_PARAM``, a SecureString: 5,000 requests an hour), anonymous otherwise (60 an hour
per address, and every function shares the NAT's address). The token is read at use through
Powertools Parameters and cached a few minutes, its absence too, so storing, rotating or removing
it takes effect without a deploy.

The outcome is one of: the 40-hex SHA, ``RepositoryNotFound`` (no such repository, not public, or
no commit at that ref: the student's input is wrong) or ``GitHubUnavailable`` (GitHub could not
answer: network, timeout, rate limit, 5xx). Nothing from the response body but the SHA is used or
logged, and never the token.
"""

from __future__ import annotations

import re
import threading
import time
from urllib.parse import quote

import requests

from apranova.observability import logger

SHA = re.compile(r"^[0-9a-f]{40}$")
HEADERS = {
    "Accept": "application/vnd.github+json",
    "X-GitHub-Api-Version": "2022-11-28",
    "User-Agent": "apranova-submissions",
}


# How long a token (or its absence) is trusted before SSM is asked again.
TOKEN_MAX_AGE_SECONDS = 300

_absent_lock = threading.Lock()
_absent_until: dict[str, float] = {}


def token(parameter_name: str | None, *, max_age: int = TOKEN_MAX_AGE_SECONDS) -> str | None:
    """The GitHub token stored in the SSM parameter ``parameter_name``, or None when no parameter is
    configured, it does not exist or is empty (then the calls go out anonymously)."""
    if not parameter_name:
        return None
    with _absent_lock:
        if _absent_until.get(parameter_name, 0.0) > time.monotonic():
            return None
    from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

    from apranova import secrets

    try:
        value = secrets.ssm_parameter(parameter_name, max_age=max_age).strip()
    except GetParameterError as error:
        # Usually ParameterNotFound (the operator has not stored one); a denied or failed read
        # must not stop submissions either: anonymous calls still work, only slower to exhaust.
        logger.info(
            "no GitHub token: calling GitHub anonymously", extra={"error_class": type(error.__cause__).__name__}
        )
        value = ""
    if not value:
        with _absent_lock:
            _absent_until[parameter_name] = time.monotonic() + max_age
        return None
    return value


def reset() -> None:
    """Forget a cached absence (tests; the token's own cache is Powertools')."""
    with _absent_lock:
        _absent_until.clear()


class RepositoryNotFound(Exception):
    """The repository does not exist (or is not public), or it has no commit at the ref."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class GitHubUnavailable(Exception):
    """GitHub did not give an answer we can act on; the request can be retried."""


def resolve_commit(
    api_url: str, owner: str, repo: str, ref: str = "HEAD", *, timeout: float = 5.0, token: str | None = None
) -> str:
    """The full SHA of ``ref`` in ``owner/repo``; with ``token``, as that token's user."""
    url = f"{api_url.rstrip('/')}/repos/{quote(owner, safe='')}/{quote(repo, safe='')}/commits/{quote(ref, safe='/')}"
    try:
        headers = {**HEADERS, "Authorization": f"Bearer {token}"} if token else HEADERS
        response = requests.get(url, headers=headers, timeout=(min(timeout, 3.0), timeout), allow_redirects=True)
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
