"""Secrets read at use (docs/principles.md §8 rule 17): cached a few minutes, re-read when they stop working.

A secret (an SSM SecureString, a Secrets Manager JSON secret) is read through Powertools Parameters
and cached in the warm environment for ``max_age`` seconds, so a rotation reaches every environment
within that time without a redeploy. A call that fails because the secret was rotated under it (a
Stripe ``AuthenticationError``, PostgreSQL's "password authentication failed", a webhook signature
that does not verify) re-reads the secret at once and tries once more with the new value
(``use_with_rotation``). Forced re-reads of one secret are spaced out: a stream of forged webhooks
or a wrong key must not turn into a stream of SSM calls.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

import psycopg

from apranova.observability import logger

DEFAULT_MAX_AGE_SECONDS = 300
# At most one forced re-read of a given secret per interval (per warm environment). Failures anyone
# can cause (a forged webhook signature) use a longer interval than those only our own calls meet.
FORCED_REREAD_INTERVAL_SECONDS = 1.0

S = TypeVar("S")
R = TypeVar("R")

_lock = threading.Lock()
_last_forced: dict[str, float] = {}


def ssm_parameter(name: str, *, max_age: int = DEFAULT_MAX_AGE_SECONDS, force: bool = False) -> str:
    """The decrypted value of an SSM (SecureString) parameter, cached for ``max_age`` seconds."""
    from aws_lambda_powertools.utilities import parameters

    return str(parameters.get_parameter(name, decrypt=True, max_age=max_age, force_fetch=force))


def secrets_manager_json(secret_id: str, *, max_age: int = DEFAULT_MAX_AGE_SECONDS, force: bool = False) -> dict:
    """A Secrets Manager secret holding JSON (the RDS master secret), cached for ``max_age`` seconds."""
    from aws_lambda_powertools.utilities import parameters

    value = parameters.get_secret(secret_id, transform="json", max_age=max_age, force_fetch=force)
    if not isinstance(value, dict):
        raise ValueError(f"secret {secret_id} does not hold a JSON object")
    return value


def _may_force(key: str, interval: float) -> bool:
    now = time.monotonic()
    with _lock:
        last = _last_forced.get(key)
        if last is not None and now - last < interval:
            return False
        _last_forced[key] = now
        return True


def use_with_rotation(
    key: str,
    read: Callable[[bool], S],
    use: Callable[[S], R],
    *,
    rejected: Callable[[BaseException], bool],
    reread_interval: float = FORCED_REREAD_INTERVAL_SECONDS,
) -> R:
    """``use(read(False))``; when that fails with an error ``rejected`` says means "this secret is no
    longer valid", re-read the secret (``read(True)``) and, if it changed, ``use`` the new value once.

    ``key`` names the secret for the re-read spacing and the log (never its value).
    """
    current = read(False)
    try:
        return use(current)
    except Exception as error:
        if not rejected(error) or not _may_force(key, reread_interval):
            raise
        fresh = read(True)
        if fresh == current:
            raise
        logger.info("secret changed since it was cached: using the new value", extra={"secret": key})
        return use(fresh)


def postgres_password_rejected(error: BaseException) -> bool:
    """True for PostgreSQL's refusal of a password (SQLSTATE 28P01; libpq reports it as text)."""
    if not isinstance(error, psycopg.OperationalError):
        return False
    return error.sqlstate == "28P01" or "password authentication failed" in str(error)


def reset() -> None:
    """Forget every cached secret and the re-read spacing (tests; a settings change)."""
    from aws_lambda_powertools.utilities import parameters

    parameters.clear_caches()
    with _lock:
        _last_forced.clear()
